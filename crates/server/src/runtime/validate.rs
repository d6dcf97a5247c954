//! Static checks of a compiled module against the ABI (docs/ABI.md "Exports", "Imports" and, for
//! v2, "Host functions" and "Capabilities") and against its plugin's grants, and what grants its
//! imports call for.
//!
//! Reports every problem at once, each naming what was found and what the ABI expects (or the
//! grant to add), so a plugin author fixes them in one round. Only looks at types: running the
//! module (the `wasmgate_abi_version()` check) is the plugin loader's job, which then asks
//! [`check_version`] what that version allows and, after it, [`check_grants`]: a v1 module that
//! imports a host function is first told it needs ABI v2, the real cause, and only then which
//! grant the import would need. [`needed_grants`] is the same reading of the imports turned into
//! advice, for `wasmgate check` of a module no plugin mounts yet.

use std::collections::HashMap;
use std::fmt::Write as _;

use wasmtime::{ExternType, FuncType, Module, ValType};

use wasmgate_abi::{AbiVersion, HOST_MODULE};

use super::error::{AbiProblem, grant_hint};
use crate::config::PluginGrants;

/// WASI preview 1, the import module of every version.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// What each required export must be. Written the way error messages print them.
const REQUIRED_EXPORTS: [(&str, Expected); 4] = [
    ("memory", Expected::Memory),
    ("wasmgate_abi_version", Expected::Func(&[], &[ValType::I32])),
    (
        "wasmgate_alloc",
        Expected::Func(&[ValType::I32], &[ValType::I32]),
    ),
    (
        "wasmgate_handle",
        Expected::Func(&[ValType::I32, ValType::I32], &[ValType::I64]),
    ),
];

/// Optional exports, each of its type when present: the reactor's initialiser, and v2's
/// declaration that an instance may serve more than one request.
const OPTIONAL_EXPORTS: [(&str, Expected); 2] = [
    ("_initialize", Expected::Func(&[], &[])),
    ("wasmgate_reusable", Expected::Func(&[], &[ValType::I32])),
];

#[derive(Clone, Copy)]
enum Expected {
    Memory,
    Func(&'static [ValType], &'static [ValType]),
}

impl Expected {
    fn describe(&self) -> String {
        match self {
            Expected::Memory => "a 32-bit, non-shared memory".to_string(),
            Expected::Func(p, r) => format!("a function {}", sig(p.iter(), r.iter())),
        }
    }

    fn matches(&self, ty: &ExternType) -> bool {
        match (self, ty) {
            (Expected::Memory, ExternType::Memory(m)) => !m.is_64() && !m.is_shared(),
            (Expected::Func(p, r), ExternType::Func(f)) => {
                same_types(f.params(), p) && same_types(f.results(), r)
            }
            _ => false,
        }
    }
}

fn same_types(got: impl ExactSizeIterator<Item = ValType>, want: &[ValType]) -> bool {
    got.len() == want.len() && got.zip(want).all(|(g, w)| ValType::eq(&g, w))
}

/// `(i32, i32) -> i64`, the notation used in docs/ABI.md.
fn sig<'a>(
    params: impl Iterator<Item = &'a ValType>,
    results: impl Iterator<Item = &'a ValType>,
) -> String {
    let join = |it: &mut dyn Iterator<Item = &'a ValType>| {
        let mut s = String::new();
        for (i, t) in it.enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{t}");
        }
        s
    };
    let p = join(&mut { params });
    let r: Vec<&ValType> = results.collect();
    match r.len() {
        0 => format!("({p}) -> ()"),
        1 => format!("({p}) -> {}", r[0]),
        _ => format!("({p}) -> ({})", join(&mut r.into_iter())),
    }
}

fn describe_func(f: &FuncType) -> String {
    let p: Vec<ValType> = f.params().collect();
    let r: Vec<ValType> = f.results().collect();
    sig(p.iter(), r.iter())
}

pub(crate) fn describe_extern(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => format!("a function {}", describe_func(f)),
        ExternType::Memory(m) => format!(
            "a {}{} memory",
            if m.is_shared() { "shared " } else { "" },
            if m.is_64() { "64-bit" } else { "32-bit" }
        ),
        ExternType::Global(_) => "a global".to_string(),
        ExternType::Table(_) => "a table".to_string(),
        ExternType::Tag(_) => "a tag".to_string(),
    }
}

fn kind_name(ty: &ExternType) -> &'static str {
    match ty {
        ExternType::Func(_) => "function",
        ExternType::Memory(_) => "memory",
        ExternType::Global(_) => "global",
        ExternType::Table(_) => "table",
        ExternType::Tag(_) => "tag",
    }
}

/// Checks imports against the WASI preview 1 signatures the linker defines (`wasi_types`) and the
/// `wasmgate` host functions of the ABI, and the exports against the ABI. Grants are not looked
/// at (that is [`check_grants`], after the version). Empty result = valid.
pub(crate) fn check_module(
    module: &Module,
    wasi_types: &HashMap<String, FuncType>,
) -> Vec<AbiProblem> {
    let mut problems = Vec::new();
    for import in module.imports() {
        let ty = import.ty();
        let (m, name) = (import.module(), import.name());
        let ExternType::Func(f) = &ty else {
            problems.push(AbiProblem::ForbiddenImport {
                module: m.to_string(),
                name: name.to_string(),
                what: kind_name(&ty),
            });
            continue;
        };
        if m == HOST_MODULE {
            problems.extend(check_host_import(name, f));
            continue;
        }
        if m != WASI_MODULE {
            problems.push(AbiProblem::ForbiddenImport {
                module: m.to_string(),
                name: name.to_string(),
                what: "function",
            });
            continue;
        }
        match wasi_types.get(name) {
            None => problems.push(AbiProblem::UnknownWasiFunction {
                name: name.to_string(),
            }),
            Some(want) if !FuncType::eq(f, want) => problems.push(AbiProblem::ImportType {
                module: WASI_MODULE,
                name: name.to_string(),
                found: describe_func(f),
                expected: describe_func(want),
            }),
            Some(_) => {}
        }
    }

    let exports: HashMap<&str, ExternType> = module.exports().map(|e| (e.name(), e.ty())).collect();
    for (name, want) in REQUIRED_EXPORTS {
        match exports.get(name) {
            None => problems.push(AbiProblem::MissingExport {
                name: name.to_string(),
                expected: want.describe(),
            }),
            Some(ty) if !want.matches(ty) => problems.push(AbiProblem::ExportType {
                name: name.to_string(),
                found: describe_extern(ty),
                expected: want.describe(),
            }),
            Some(_) => {}
        }
    }
    for (name, want) in OPTIONAL_EXPORTS {
        if let Some(ty) = exports.get(name)
            && !want.matches(ty)
        {
            problems.push(AbiProblem::ExportType {
                name: name.to_string(),
                found: describe_extern(ty),
                expected: want.describe(),
            });
        }
    }
    problems
}

/// One import from `wasmgate`: a function of the table, of its type.
fn check_host_import(name: &str, f: &FuncType) -> Option<AbiProblem> {
    let Some(def) = wasmgate_abi::host_function(name) else {
        return Some(AbiProblem::UnknownHostFunction {
            name: name.to_string(),
        });
    };
    let params: Vec<ValType> = def
        .wasm_params()
        .into_iter()
        .map(|p| match p {
            wasmgate_abi::ValType::I32 => ValType::I32,
            wasmgate_abi::ValType::I64 => ValType::I64,
        })
        .collect();
    (!(same_types(f.params(), &params) && same_types(f.results(), &[ValType::I32]))).then(|| {
        AbiProblem::ImportType {
            module: HOST_MODULE,
            name: name.to_string(),
            found: describe_func(f),
            expected: sig(params.iter(), [ValType::I32].iter()),
        }
    })
}

/// Every `wasmgate` import whose group the plugin `plugin` is not granted, each with the grant to
/// add. Runs after [`check_module`] (so each import is a function of the table).
pub(crate) fn check_grants(
    module: &Module,
    plugin: &str,
    grants: &PluginGrants,
) -> Vec<AbiProblem> {
    module
        .imports()
        .filter(|i| i.module() == HOST_MODULE)
        .filter_map(|i| Some((i.name(), wasmgate_abi::host_function(i.name())?)))
        .filter(|(_, def)| !grants.includes(def.grant))
        .map(|(name, def)| AbiProblem::NotGranted {
            name: name.to_string(),
            plugin: plugin.to_string(),
            grant: def.grant,
        })
        .collect()
}

/// What a grant gives, as a module's imports call for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A group of `wasmgate` host functions: without its grant the module does not load.
    Host(wasmgate_abi::Grant),
    /// WASI's environment (`environ_get`): optional, `env = [...]` passes host variables in.
    Env,
    /// WASI's files (`path_open`): optional, `dirs = [...]` pre-opens read-only directories.
    Dirs,
}

/// A grant a module's imports call for, with the imports that do: what `wasmgate check` lists
/// for a module before any plugin mounts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantNeed {
    pub need: Need,
    /// The imports that call for it, by name (`kv_get`, `environ_get`), in module order.
    pub imports: Vec<String>,
}

impl GrantNeed {
    /// Whether the module loads only with this grant (a host-function group), as opposed to
    /// merely seeing nothing without it (WASI's environment and files).
    pub fn required(&self) -> bool {
        matches!(self.need, Need::Host(_))
    }

    /// The family's name in `check`'s list: `vars`, `kv`, `outbound HTTP`, `environment`, `files`.
    pub fn family(&self) -> &'static str {
        match self.need {
            Need::Host(wasmgate_abi::Grant::Vars) => "vars",
            Need::Host(wasmgate_abi::Grant::Kv) => "kv",
            Need::Host(wasmgate_abi::Grant::Outbound) => "outbound HTTP",
            Need::Env => "environment",
            Need::Dirs => "files",
        }
    }

    /// What to write in `[plugins.PLUGIN]` for it, and what the imports cannot tell: the names a
    /// module uses are chosen at run time, so only the family is known.
    pub fn advice(&self, plugin: &str) -> String {
        match self.need {
            Need::Host(grant) => {
                let unknown = match grant {
                    wasmgate_abi::Grant::Vars => "which variables it reads",
                    wasmgate_abi::Grant::Kv => "which stores it opens (`kv_open` names them)",
                    wasmgate_abi::Grant::Outbound => "which hosts it calls",
                };
                format!(
                    "{} (its imports do not say {unknown})",
                    grant_hint(grant, plugin)
                )
            }
            Need::Env => format!(
                "optional: `env = [\"NAME\"]` in [plugins.{plugin}] passes host environment \
                 variables (without it the guest's environment is empty)"
            ),
            Need::Dirs => format!(
                "optional: `dirs = [{{ host = \"DIR\", guest = \"/data\" }}]` in \
                 [plugins.{plugin}] pre-opens a directory, read-only (without it the guest sees no \
                 files)"
            ),
        }
    }
}

/// The grants `module`'s imports call for, in the order of [`Need`]: `wasmgate` host-function
/// groups by their grant, WASI's environment and file functions.
pub(crate) fn needed_grants(module: &Module) -> Vec<GrantNeed> {
    let mut needs: Vec<GrantNeed> = Vec::new();
    for import in module.imports() {
        let need = match (import.module(), import.name()) {
            (HOST_MODULE, name) => match wasmgate_abi::host_function(name) {
                Some(def) => Need::Host(def.grant),
                None => continue,
            },
            (WASI_MODULE, "environ_get" | "environ_sizes_get") => Need::Env,
            (WASI_MODULE, "path_open") => Need::Dirs,
            _ => continue,
        };
        match needs.iter_mut().find(|n| n.need == need) {
            Some(n) => n.imports.push(import.name().to_string()),
            None => needs.push(GrantNeed {
                need,
                imports: vec![import.name().to_string()],
            }),
        }
    }
    let order = |n: &GrantNeed| match n.need {
        Need::Host(wasmgate_abi::Grant::Vars) => 0,
        Need::Host(wasmgate_abi::Grant::Kv) => 1,
        Need::Host(wasmgate_abi::Grant::Outbound) => 2,
        Need::Env => 3,
        Need::Dirs => 4,
    };
    needs.sort_by_key(order);
    needs
}

/// What the declared `version` allows beyond the static checks: a v1 module may import nothing
/// from `wasmgate`.
pub(crate) fn check_version(module: &Module, version: AbiVersion) -> Vec<AbiProblem> {
    match version {
        AbiVersion::V2 => Vec::new(),
        AbiVersion::V1 => module
            .imports()
            .filter(|i| i.module() == HOST_MODULE)
            .map(|i| AbiProblem::HostImportInV1 {
                name: i.name().to_string(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_print_like_the_abi_document() {
        let p = [ValType::I32, ValType::I32];
        assert_eq!(sig(p.iter(), [ValType::I64].iter()), "(i32, i32) -> i64");
        assert_eq!(sig([].iter(), [].iter()), "() -> ()");
    }
}
