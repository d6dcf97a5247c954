//! The plugin runtime: compiles plugins, checks them against the ABI (docs/ABI.md, versions 1 and
//! 2) and runs each request in a bounded wasm instance: a fresh one by default, a warm one where
//! reuse is on (operator and module both opted in).
//!
//! One [`Runtime`] holds the engine-wide state (engine, WASI linker, instance-slot semaphore and
//! the single epoch ticker); [`Runtime::load`] turns a module into a [`Plugin`];
//! [`Plugin::call`] runs a [`GuestRequest`] and returns a [`GuestResponse`] or a typed
//! [`CallError`]. The runtime never touches sockets, HTTP parsing or status codes: the server
//! maps `CallError::kind()` to a status in one place.
//!
//! Submodules: `engine` (Config, pooling, ticker, wasm features), `store` (per-request limits),
//! `wasi` (guest capabilities and output capture, built lazily), `hostcalls` (the v2 `wasmgate`
//! host functions and their calling convention; `kvcalls`, `httpcalls`), `validate` (static ABI
//! and grant checks), `resources` (what a module declares against the pool and its limits),
//! `preinit` (running `_initialize` once at load, wizer), `warm` (reused instances), `abi`
//! (response bytes to a validated value), `plugin` (call sequence and failure classification),
//! `error`.

mod abi;
mod engine;
mod error;
mod hostcalls;
mod httpcalls;
mod kvcalls;
mod plugin;
mod preinit;
mod resources;
mod store;
mod validate;
mod warm;
mod wasi;

#[cfg(test)]
mod perf_tests;
#[cfg(test)]
mod preinit_tests;
#[cfg(test)]
mod reuse_tests;
#[cfg(test)]
mod saturation_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod v2_tests;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmgate_abi::AbiVersion;
use wasmtime::{Engine, ExternType, FuncType, Linker, Module, Store};

pub use abi::{GuestResponse, ResponseError};
pub use error::{AbiProblem, CallError, LoadError, RuntimeError};
pub use hostcalls::{CallMeta, HostEnv};
pub use plugin::Plugin;
pub use preinit::Preinit;
pub use resources::ResourceProblem;
pub use validate::{GrantNeed, Need};
pub use warm::WarmPool;
pub use wasi::GrantError;
/// One request as the guest sees it: the ABI crate's request, borrowed from the parsed head.
pub use wasmgate_abi::RawRequest as GuestRequest;

use crate::config::{PluginGrants, PluginLimits, RuntimeSettings};
use engine::EpochTicker;
use store::{MemoryLimiter, StoreData};

/// The engine-wide runtime. Create one at startup; plugins loaded from it keep its engine (and
/// its epoch ticker) alive, so the ticker stops once the runtime and all its plugins are dropped.
pub struct Runtime {
    shared: Arc<Shared>,
}

/// What every plugin call needs from the runtime.
pub(crate) struct Shared {
    engine: Engine,
    linker: Linker<StoreData>,
    /// Signature of every `wasi_snapshot_preview1` function the linker provides, for load-time
    /// import checks with readable messages.
    wasi_types: HashMap<String, FuncType>,
    /// One permit per pool slot: a call waits here instead of failing when all slots are busy.
    slots: Arc<tokio::sync::Semaphore>,
    /// Every plugin's warm instances, each holding a slot: evicted when a call finds none free.
    warm: warm::WarmPools,
    /// Calls waiting for a slot: while there are any, a finished instance is not kept warm.
    slot_waiters: std::sync::atomic::AtomicUsize,
    settings: RuntimeSettings,
    _ticker: EpochTicker,
}

impl Runtime {
    /// A runtime without an on-disk module cache (every load compiles).
    pub fn new(settings: &RuntimeSettings) -> Result<Runtime, RuntimeError> {
        Runtime::with_module_cache(settings, None)
    }

    /// A runtime whose compiled modules are cached in `cache_dir`, keyed by module bytes, engine
    /// settings and wasmtime version (wasmtime's own cache), so a restart with unchanged plugins
    /// does not recompile them. A cache directory that cannot be used degrades to compiling, with
    /// a warning: it never stops the server.
    pub fn with_module_cache(
        settings: &RuntimeSettings,
        cache_dir: Option<&Path>,
    ) -> Result<Runtime, RuntimeError> {
        let engine = engine::build_engine(settings, cache_dir)?;
        let mut linker: Linker<StoreData> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |d: &mut StoreData| d.wasi.ctx())
            .map_err(|e| RuntimeError::Engine(error::chain(&e)))?;
        hostcalls::add_to_linker(&mut linker)
            .map_err(|e| RuntimeError::Engine(error::chain(&e)))?;
        let wasi_types = wasi_signatures(&engine, &linker);
        let ticker = EpochTicker::start(&engine, settings.epoch_tick)?;
        Ok(Runtime {
            shared: Arc::new(Shared {
                engine,
                linker,
                wasi_types,
                slots: Arc::new(tokio::sync::Semaphore::new(
                    settings.max_instances.max(1) as usize
                )),
                warm: warm::WarmPools::default(),
                slot_waiters: std::sync::atomic::AtomicUsize::new(0),
                settings: *settings,
                _ticker: ticker,
            }),
        })
    }

    /// Reads and loads a module file: `.wasm` must be a binary module; anything else may be
    /// binary or WebAssembly text (decided by the `\0asm` magic).
    pub fn load(
        &self,
        name: &str,
        path: &Path,
        grants: &PluginGrants,
        limits: &PluginLimits,
    ) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|cause| LoadError::Io {
            plugin: name.to_string(),
            path: path.to_path_buf(),
            cause,
        })?;
        self.load_file_bytes(name, path, &bytes, grants, limits, true)
    }

    /// Loads `bytes` already read from `path` (which only decides how they are interpreted).
    pub fn load_file_bytes(
        &self,
        name: &str,
        path: &Path,
        bytes: &[u8],
        grants: &PluginGrants,
        limits: &PluginLimits,
        preinitialize: bool,
    ) -> Result<Plugin, LoadError> {
        check_magic(name, path, bytes)?;
        self.load_bytes_with(name, bytes, grants, limits, preinitialize)
    }

    /// Loads `bytes` read from `path` as `wasmgate check` does for a module no plugin mounts:
    /// every check of [`Runtime::load_file_bytes`] but the grants, since there are none to check
    /// against yet; [`Plugin::needs`] says what its imports will need. Loaded with no grants:
    /// a host function it calls answers as for an ungranted plugin. For checking, not serving.
    pub fn inspect_file_bytes(
        &self,
        name: &str,
        path: &Path,
        bytes: &[u8],
        limits: &PluginLimits,
        preinitialize: bool,
    ) -> Result<Plugin, LoadError> {
        check_magic(name, path, bytes)?;
        let grants = PluginGrants::default();
        self.load_checked(
            name,
            bytes,
            &grants,
            GrantCheck::Skip,
            limits,
            preinitialize,
        )
    }

    /// [`Runtime::load_bytes_with`], pre-initializing where it applies (the default).
    pub fn load_bytes(
        &self,
        name: &str,
        bytes: &[u8],
        grants: &PluginGrants,
        limits: &PluginLimits,
    ) -> Result<Plugin, LoadError> {
        self.load_bytes_with(name, bytes, grants, limits, true)
    }

    /// Compiles `bytes` (binary or text), checks that it fits a pool slot and `limits`, checks
    /// imports and exports against the ABI and the plugin's grants, pre-initializes it (when
    /// `preinitialize` and it applies: see `preinit`), pre-links against WASI and the host
    /// functions, then runs `_initialize` (if still there) + `wasmgate_abi_version()` on a
    /// throwaway instance and checks what that version allows. Blocks for the compilation;
    /// callable from inside or outside a tokio runtime.
    pub fn load_bytes_with(
        &self,
        name: &str,
        bytes: &[u8],
        grants: &PluginGrants,
        limits: &PluginLimits,
        preinitialize: bool,
    ) -> Result<Plugin, LoadError> {
        self.load_checked(
            name,
            bytes,
            grants,
            GrantCheck::Enforce,
            limits,
            preinitialize,
        )
    }

    /// [`Runtime::load_bytes_with`], checking the `wasmgate` imports against `grants` or not.
    fn load_checked(
        &self,
        name: &str,
        bytes: &[u8],
        grants: &PluginGrants,
        grant_check: GrantCheck,
        limits: &PluginLimits,
        preinitialize: bool,
    ) -> Result<Plugin, LoadError> {
        let plugin_name = || name.to_string();
        let compile_error = |message| LoadError::Compile {
            plugin: plugin_name(),
            message,
        };
        let binary = wat::parse_bytes(bytes).map_err(|e| compile_error(e.to_string()))?;
        let problems = resources::check(&binary, limits.max_memory_bytes);
        if !problems.is_empty() {
            return Err(LoadError::Resources {
                plugin: plugin_name(),
                problems,
            });
        }
        let module = Module::from_binary(&self.shared.engine, &binary)
            .map_err(|e| compile_error(error::chain(&e)))?;
        let problems = validate::check_module(&module, &self.shared.wasi_types);
        if !problems.is_empty() {
            return Err(LoadError::Abi {
                plugin: plugin_name(),
                problems,
            });
        }
        // Loading runs the guest (`_initialize`, `wasmgate_abi_version()`) before its grants are
        // checked, so that a v1 module is told about its version first; that is safe because no
        // host function serves a load-time call (they answer `unavailable`), granted or not.
        let (module, preinit) = self.preinitialize(&binary, module, limits, preinitialize);
        let resolved =
            wasi::ResolvedGrants::resolve(name, grants).map_err(|cause| LoadError::Grant {
                plugin: plugin_name(),
                cause,
            })?;
        let pre = self
            .shared
            .linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Link {
                plugin: plugin_name(),
                message: error::chain(&e),
            })?;
        let mut plugin = Plugin::new(
            name,
            content_hash(bytes),
            grants.clone(),
            resolved,
            pre,
            preinit,
            self.shared.clone(),
        );
        let (version, reusable) = block_on_own_thread(plugin.declared(&self.check_limits()))
            .map_err(|e| LoadError::Check {
                plugin: plugin_name(),
                cause: Box::new(e),
            })?;
        let Some(version) = AbiVersion::from_declared(version) else {
            return Err(LoadError::Abi {
                plugin: plugin_name(),
                problems: vec![AbiProblem::WrongVersion { found: version }],
            });
        };
        // The version's problems first (the real cause), then the grants, all in one report.
        let mut problems = validate::check_version(&module, version);
        if grant_check == GrantCheck::Enforce {
            problems.extend(validate::check_grants(&module, name, grants));
        }
        if !problems.is_empty() {
            return Err(LoadError::Abi {
                plugin: plugin_name(),
                problems,
            });
        }
        plugin.set_declared(version, reusable);
        Ok(plugin)
    }

    /// The bounds of the loader's own guest runs (the snapshot, the version check): the
    /// runtime's memory ceiling and load-check deadline, default fuel.
    fn check_limits(&self) -> PluginLimits {
        PluginLimits {
            max_memory_bytes: self.shared.settings.max_memory_bytes,
            deadline: self.shared.settings.load_check_deadline,
            ..PluginLimits::default()
        }
    }

    /// `module` (compiled from `binary`, already validated) replaced by its pre-initialized
    /// image when that applies and works; otherwise `module` itself, with the reason. The image
    /// must fit the memory limit and pass the ABI checks the original passed, or it is not used.
    fn preinitialize(
        &self,
        binary: &[u8],
        module: Module,
        limits: &PluginLimits,
        wanted: bool,
    ) -> (Module, Preinit) {
        if !preinit::wanted(&module) {
            return (module, Preinit::NotNeeded);
        }
        if !wanted {
            return (module, Preinit::Off);
        }
        let bounds = PluginLimits {
            max_memory_bytes: limits.max_memory_bytes,
            ..self.check_limits()
        };
        let deadline = Instant::now() + bounds.deadline;
        let engine = &self.shared.engine;
        // The snapshot instance takes a pool slot like any call (never one a request holds), and
        // a panic inside wizer costs the optimisation, not the load.
        let run = || {
            block_on_own_thread(async {
                let slot =
                    tokio::time::timeout_at(deadline.into(), plugin::slot_for_load(&self.shared))
                        .await;
                let _slot = match slot {
                    Ok(Ok(slot)) => slot,
                    Ok(Err(why)) => return Ok(Err(why)),
                    Err(_) => return Ok(Err("no instance slot came free in time".into())),
                };
                Ok(preinit::snapshot(engine, binary, &bounds, deadline).await)
            })
            .unwrap_or_else(|e| Err(e.to_string()))
        };
        let image = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .unwrap_or_else(|_| Err("pre-initialization panicked (see the log)".into()));
        let image = image.and_then(|image| {
            if !resources::check(&image, limits.max_memory_bytes).is_empty() {
                return Err("the initialised memory does not fit max_memory_bytes".into());
            }
            let module = Module::from_binary(engine, &image).map_err(|e| error::chain(&e))?;
            if !validate::check_module(&module, &self.shared.wasi_types).is_empty() {
                return Err("the snapshot image does not pass the ABI checks".into());
            }
            Ok(module)
        });
        match image {
            Ok(image) => (image, Preinit::Applied),
            Err(why) => (module, Preinit::Skipped(why)),
        }
    }
}

/// Whether a load checks the module's `wasmgate` imports against its plugin's grants: always when
/// serving; not for `wasmgate check` of a module no plugin mounts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum GrantCheck {
    Enforce,
    Skip,
}

/// A `.wasm` file must be a binary module (text is accepted under any other extension).
fn check_magic(name: &str, path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    if path.extension().is_some_and(|e| e == "wasm") && !bytes.starts_with(b"\0asm") {
        return Err(LoadError::Compile {
            plugin: name.to_string(),
            message: format!(
                "{} is not a wasm binary (no `\\0asm` magic number)",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Runs a guest future to completion on a private current-thread tokio runtime in a scoped
/// thread. Loading is synchronous but the guest can only run through the async API; a private
/// runtime works whether or not the caller is itself inside a tokio runtime (where `block_on`
/// would panic).
fn block_on_own_thread<R: Send>(
    fut: impl Future<Output = Result<R, CallError>> + Send,
) -> Result<R, CallError> {
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| CallError::Instantiate {
                    message: format!("cannot start the load-check runtime: {e}"),
                })?;
            rt.block_on(fut)
        });
        handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn wasi_signatures(engine: &Engine, linker: &Linker<StoreData>) -> HashMap<String, FuncType> {
    let data = StoreData {
        wasi: wasi::GuestWasi::empty(),
        limiter: MemoryLimiter::new(0),
        host: None,
        called_back: false,
    };
    let mut store = Store::new(engine, data);
    let defs: Vec<_> = linker
        .iter(&mut store)
        .filter(|(m, _, _)| *m == validate::WASI_MODULE)
        .map(|(_, n, e)| (n.to_string(), e))
        .collect();
    defs.into_iter()
        .filter_map(|(n, e)| match e.ty(&store) {
            ExternType::Func(f) => Some((n, f)),
            _ => None,
        })
        .collect()
}

/// The content hash plugins are identified by: lowercase hex SHA-256 of the module file's bytes
/// (comparable with `sha256sum`). Reload compares it to skip recompiling unchanged files.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
