//! Pre-initialization at load (wizer): a module's `_initialize` (static constructors, the SDK's
//! set-up, a C reactor's start-up) runs once, when the plugin loads, and the memory and globals it
//! leaves are written into a new module image whose data segments start there. Every request's
//! fresh instance then starts from the initialised state and skips the call.
//!
//! This is only sound when initialisation is deterministic and needs nothing from outside: at
//! snapshot time every import traps (no WASI clock, random, environment or files, no `wasmgate`
//! host function). Wizer also refuses what it cannot represent: a module with any instruction
//! that mutates a table or drops a segment (wherever it is, run or not), imported tables,
//! memories or globals, a mutable reference-typed global. Such a module is served as it is and
//! runs `_initialize` per request, as before; the reason is reported, never an error (a panic
//! inside wizer included: the loader catches it).
//! Owns the snapshot run only: what to compile and when is the loader's.

use std::time::Instant;

use wasmtime::{Engine, Instance, Linker, Module, Store, Val};
use wasmtime::{TypedFunc, wasmparser};
use wasmtime_wizer::{InstanceState, SnapshotVal, Wizer};

use super::error;
use super::store::{StoreData, new_store};
use super::wasi::GuestWasi;
use crate::config::PluginLimits;

/// The export pre-initialization runs, and removes from the image it produces.
const INIT_EXPORT: &str = "_initialize";

/// What pre-initialization did with a module, as `wasmgate check` and the load log report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preinit {
    /// The module has no `_initialize`: nothing to do.
    NotNeeded,
    /// The plugin's config turned it off (`preinitialize = false`).
    Off,
    /// Served from a snapshot taken after `_initialize`.
    Applied,
    /// Served as it is, `_initialize` per request, because of this.
    Skipped(String),
}

impl std::fmt::Display for Preinit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Preinit::NotNeeded => f.write_str("not needed (no `_initialize`)"),
            Preinit::Off => f.write_str("off (preinitialize = false)"),
            Preinit::Applied => f.write_str("yes (`_initialize` ran once, at load)"),
            Preinit::Skipped(why) => write!(f, "no ({why}); `_initialize` runs per request"),
        }
    }
}

impl Preinit {
    /// Whether a module loaded with this outcome is what `preinitialize = wanted` would load
    /// (a reload that flips the setting must load the module again).
    pub fn honours(&self, wanted: bool) -> bool {
        match self {
            Preinit::NotNeeded => true,
            Preinit::Off => !wanted,
            Preinit::Applied | Preinit::Skipped(_) => wanted,
        }
    }
}

/// Whether `module` has an `_initialize` to pre-run.
pub(super) fn wanted(module: &Module) -> bool {
    module.get_export(INIT_EXPORT).is_some()
}

/// Runs `binary`'s `_initialize` in a store bounded by `limits` (fuel, memory, `deadline`) and
/// returns the snapshot image, or why there is none. Compiles twice (the instrumented module,
/// then the caller compiles the image); wasmtime's module cache keeps both across restarts.
pub(super) async fn snapshot(
    engine: &Engine,
    binary: &[u8],
    limits: &PluginLimits,
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let wizer = {
        let mut w = Wizer::new();
        w.init_func(INIT_EXPORT);
        w
    };
    let (cx, instrumented) = wizer.instrument(binary).map_err(|e| error::chain(&e))?;
    let module = Module::from_binary(engine, &instrumented).map_err(|e| error::chain(&e))?;
    let mut linker = Linker::<StoreData>::new(engine);
    linker
        .define_unknown_imports_as_traps(&module)
        .map_err(|e| error::chain(&e))?;
    let mut store = new_store(
        engine,
        GuestWasi::empty(),
        None,
        limits.max_memory_bytes,
        limits.fuel,
        deadline,
    )
    .map_err(|e| error::chain(&e))?;
    let instance = linker
        .instantiate_async(&mut store, &module)
        .await
        .map_err(|e| error::chain(&e))?;
    let init: TypedFunc<(), ()> = instance
        .get_typed_func(&mut store, INIT_EXPORT)
        .map_err(|e| error::chain(&e))?;
    init.call_async(&mut store, ()).await.map_err(|e| {
        format!(
            "`_initialize` failed at snapshot time: {}",
            error::chain(&e)
        )
    })?;
    wizer
        .snapshot(&cx, &mut Initialised { store, instance })
        .await
        .map_err(|e| error::chain(&e))
}

/// The initialised instance, as wizer reads it back: its globals and its memory.
struct Initialised {
    store: Store<StoreData>,
    instance: Instance,
}

impl InstanceState for Initialised {
    // Wizer asks only for the globals and memories its instrumentation exported, and refuses
    // reference-typed mutable globals before; a miss is a bug in that pairing, so it panics (the
    // trait has no error path), on the loader's own thread, where the loader catches it.
    async fn global_get(&mut self, name: &str, _: wasmparser::ValType) -> SnapshotVal {
        let global = self
            .instance
            .get_global(&mut self.store, name)
            .expect("wizer's instrumentation exports every global it snapshots");
        match global.get(&mut self.store) {
            Val::I32(x) => SnapshotVal::I32(x),
            Val::I64(x) => SnapshotVal::I64(x),
            Val::F32(x) => SnapshotVal::F32(x),
            Val::F64(x) => SnapshotVal::F64(x),
            Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => unreachable!("reference-typed globals are refused first: {other:?}"),
        }
    }

    async fn memory_contents(&mut self, name: &str, contents: impl FnOnce(&[u8]) + Send) {
        let memory = self
            .instance
            .get_memory(&mut self.store, name)
            .expect("wizer's instrumentation exports every memory it snapshots");
        contents(memory.data(&self.store));
    }
}
