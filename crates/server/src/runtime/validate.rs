//! Static checks of a compiled module against ABI v1 (docs/ABI.md "Exports" and "Imports").
//!
//! Reports every problem at once, each naming what was found and what the ABI expects, so a
//! plugin author fixes them in one round. Only looks at types: running the module (the
//! `wasmgate_abi_version()` check) is the plugin loader's job.

use std::collections::HashMap;
use std::fmt::Write as _;

use wasmtime::{ExternType, FuncType, Module, ValType};

use super::error::AbiProblem;

/// The only import module ABI v1 allows.
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

/// Optional export: when present it must be `() -> ()`.
const INITIALIZE: (&str, Expected) = ("_initialize", Expected::Func(&[], &[]));

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
/// exports against ABI v1. Empty result = valid.
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
    let (name, want) = INITIALIZE;
    if let Some(ty) = exports.get(name)
        && !want.matches(ty)
    {
        problems.push(AbiProblem::ExportType {
            name: name.to_string(),
            found: describe_extern(ty),
            expected: want.describe(),
        });
    }
    problems
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
