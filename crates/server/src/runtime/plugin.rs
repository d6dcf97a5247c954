//! A loaded plugin and one call of it: a fresh instance (or a warm one, where reuse is on),
//! `alloc -> write -> handle -> read`, decode, classify failures, tear down or keep warm.
//!
//! Owns the ABI call sequence (docs/ABI.md "Call sequence", both versions), who gets an instance
//! slot and when it goes back, and the mapping of wasmtime errors to [`CallError`] kinds. Must not build engines, parse modules or know HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::{Instant, SystemTime};
use tokio::sync::{OwnedSemaphorePermit, TryAcquireError};

use wasmtime::{
    Extern, Instance, InstancePre, Memory, ModuleExport, Store, Trap, TypedFunc, WasmBacktrace,
};

use super::GuestRequest;
use super::Shared;
use super::abi::{self, GuestResponse, ResponseError};
use super::error::{CallError, DeadlineExceeded, chain, is_pool_exhaustion};
use super::hostcalls::{CallMeta, HostCtx, HostEnv};
use super::preinit::Preinit;
use super::store::{StoreData, arm, new_store};
use super::warm::{Warm, WarmPool};
use super::wasi::{GuestWasi, ResolvedGrants};
use crate::config::{PluginGrants, PluginLimits, ReuseSettings};
use crate::request_id::RequestId;
use wasmgate_abi::AbiVersion;

/// A compiled, validated, pre-linked plugin. Cheap to clone; calls are independent (each gets its
/// own instance, so nothing survives from one request into the next, unless the caller passes a
/// warm pool: docs/ABI.md "Instance reuse").
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
    /// What `wasmgate_abi_version()` declared at load: decides the request encoding.
    version: AbiVersion,
    /// Whether the module declared (v2, `wasmgate_reusable() == 1`) that an instance may serve
    /// more than one request. v1 modules never are: their bump allocators assume one request.
    reusable: bool,
}

struct PluginInner {
    name: Arc<str>,
    hash: String,
    loaded_at: SystemTime,
    grants: PluginGrants,
    resolved: Arc<ResolvedGrants>,
    /// Whether the module imports any `wasmgate` host function: only then does a call carry the
    /// host functions' per-request context.
    uses_host_functions: bool,
    pre: InstancePre<StoreData>,
    /// Whether `pre` is a pre-initialized image (docs/writing-plugins.md), and why not.
    preinit: Preinit,
    /// The initial size of the memory of the module served (the image's, when pre-initialized:
    /// `_initialize` may have grown it), which a reload's `max_memory_bytes` must still fit.
    initial_memory_bytes: u64,
    /// The exports a call uses, resolved once at load so that a call finds them by index instead
    /// of by name.
    exports: Exports,
    /// Keeps the engine, the instance-slot semaphore and the epoch ticker alive for as long as
    /// any plugin can run (a guest without a ticker could never be interrupted).
    shared: Arc<Shared>,
}

/// Export handles of the module (see `wasmtime::Module::get_export_index`); `None` where the
/// module lacks the export, which validation only allows for `_initialize`.
#[derive(Clone, Copy)]
struct Exports {
    initialize: Option<ModuleExport>,
    reusable: Option<ModuleExport>,
    memory: Option<ModuleExport>,
    alloc: Option<ModuleExport>,
    handle: Option<ModuleExport>,
    abi_version: Option<ModuleExport>,
}

impl Exports {
    fn resolve(pre: &InstancePre<StoreData>) -> Exports {
        let index = |name: &str| pre.module().get_export_index(name);
        Exports {
            initialize: index("_initialize"),
            reusable: index("wasmgate_reusable"),
            memory: index("memory"),
            alloc: index("wasmgate_alloc"),
            handle: index("wasmgate_handle"),
            abi_version: index("wasmgate_abi_version"),
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("hash", &self.inner.hash)
            .finish_non_exhaustive()
    }
}

/// `(name, type)` pairs of a module's exports or imports, as [`Plugin::describe`] lists them.
pub type Described = Vec<(String, String)>;

/// Why a call stopped before producing a response; turned into a [`CallError`] once the store's
/// fuel and limiter state can be read.
pub(super) enum Failure {
    /// Instantiation (or the module's start function) failed.
    Instantiate(wasmtime::Error),
    /// A guest function trapped or a host function failed.
    Wasm(wasmtime::Error),
    /// `wasmgate_alloc` returned 0.
    AllocFailed {
        size: usize,
    },
    /// `wasmgate_alloc` returned memory we cannot write the request to.
    BadAllocPtr {
        ptr: u32,
        size: usize,
    },
    Invalid(ResponseError),
}

impl Plugin {
    pub(crate) fn new(
        name: &str,
        hash: String,
        grants: PluginGrants,
        resolved: ResolvedGrants,
        pre: InstancePre<StoreData>,
        preinit: Preinit,
        shared: Arc<Shared>,
    ) -> Plugin {
        let uses_host_functions = pre
            .module()
            .imports()
            .any(|i| i.module() == wasmgate_abi::HOST_MODULE);
        Plugin {
            version: AbiVersion::V1,
            reusable: false,
            inner: Arc::new(PluginInner {
                name: name.into(),
                hash,
                loaded_at: SystemTime::now(),
                grants,
                resolved: Arc::new(resolved),
                uses_host_functions,
                exports: Exports::resolve(&pre),
                initial_memory_bytes: initial_memory_bytes(pre.module()),
                pre,
                preinit,
                shared,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The ABI version the module declared (what its requests are encoded for).
    pub fn abi_version(&self) -> AbiVersion {
        self.version
    }

    /// Records what the load check read: the version, and whether the module declared itself
    /// reusable (ignored for v1).
    pub(crate) fn set_declared(&mut self, version: AbiVersion, reusable: bool) {
        self.version = version;
        self.reusable = reusable && version == AbiVersion::V2;
    }

    /// The pool of warm instances for this plugin when its module declared itself reusable
    /// (`None` otherwise: every request then gets a fresh instance), known to the runtime so that
    /// its idle instances give their slots back when fresh calls need them. `max_idle`: the most
    /// instances kept idle (the plugin's `max_concurrency`).
    pub fn warm_pool(&self, settings: ReuseSettings, max_idle: usize) -> Option<Arc<WarmPool>> {
        if !self.reusable {
            return None;
        }
        let pool = WarmPool::new(settings, max_idle);
        self.inner.shared.warm.register(&pool);
        Some(pool)
    }

    /// Whether an instance of this module may serve more than one request (docs/ABI.md,
    /// `wasmgate_reusable`); reuse also needs the operator's `reuse` setting.
    pub fn reusable(&self) -> bool {
        self.reusable
    }

    /// The initial memory of the module as served, in bytes.
    pub(crate) fn initial_memory_bytes(&self) -> u64 {
        self.inner.initial_memory_bytes
    }

    /// Whether requests start from a snapshot taken after `_initialize` ran at load, and why not.
    pub fn preinit(&self) -> &Preinit {
        &self.inner.preinit
    }

    /// SHA-256 of the module file, lowercase hex (compare with `sha256sum`).
    pub fn hash(&self) -> &str {
        &self.inner.hash
    }

    pub fn loaded_at(&self) -> SystemTime {
        self.inner.loaded_at
    }

    /// The module's exports and imports, each as `(name, type)` with types written as in
    /// docs/ABI.md (e.g. `func (i32, i32) -> i64`), for `wasmgate check`.
    pub fn describe(&self) -> (Described, Described) {
        let module = self.inner.pre.module();
        let exports = module
            .exports()
            .map(|e| {
                (
                    e.name().to_string(),
                    super::validate::describe_extern(&e.ty()),
                )
            })
            .collect();
        let imports = module
            .imports()
            .map(|i| {
                (
                    format!("{}::{}", i.module(), i.name()),
                    super::validate::describe_extern(&i.ty()),
                )
            })
            .collect();
        (exports, imports)
    }

    /// The grants its imports call for, by family, with the imports that call for each: what
    /// `wasmgate check` tells the author of a module no plugin mounts yet.
    pub fn needs(&self) -> Vec<super::GrantNeed> {
        super::validate::needed_grants(self.inner.pre.module())
    }

    /// The grants this plugin was loaded with (a reload with other grants needs a new load).
    pub fn grants(&self) -> &PluginGrants {
        &self.inner.grants
    }

    /// Runs one request in a fresh instance, or in a warm one from `warm` when this module
    /// declared itself reusable (an instance that answered goes back to `warm`). Must be polled inside a tokio runtime with time
    /// enabled. The deadline covers everything from this call on, including waiting for a free
    /// instance slot: the guest yields every epoch tick, and a `tokio` timeout backstops the
    /// case where it sits in a host call (e.g. a WASI sleep) and never reaches an epoch check.
    pub async fn call(
        &self,
        req: &GuestRequest<'_>,
        limits: &PluginLimits,
        meta: impl Into<CallMeta>,
        env: &Arc<HostEnv>,
        warm: Option<&Arc<WarmPool>>,
    ) -> Result<GuestResponse, CallError> {
        let meta = meta.into();
        let request_id = meta.id;
        let deadline = Instant::now() + limits.deadline;
        let encoded = req
            .encode(self.version)
            .map_err(|_| CallError::MemoryLimit {
                limit_bytes: limits.max_memory_bytes,
                stderr_tail: String::new(),
                fuel_used: 0,
            })?;
        let max_response = limits.max_response_bytes;
        let host = self
            .inner
            .uses_host_functions
            .then(|| HostCtx::new(env.clone(), deadline, self.inner.name.clone(), meta));
        let exports = self.inner.exports;
        // Boxed: the call's state (wasmtime's async call futures, the timeout, the slot wait) is
        // several KiB, and unboxed it would be part of every connection task's future, idle
        // keep-alive connections included (bench/memory.py measures that).
        let result = Box::pin(self.run(
            Some(request_id),
            host,
            limits,
            deadline,
            warm.filter(|_| self.reusable),
            |store, instance| Box::pin(handle(store, instance, exports, encoded, max_response)),
        ))
        .await;
        let (mut response, fuel_used, reused) = result?;
        response.fuel_used = fuel_used;
        response.reused = reused;
        Ok(response)
    }

    /// `_initialize` + `wasmgate_abi_version()` (and `wasmgate_reusable()` when exported) on a
    /// throwaway instance, as the loader's check: the declared version, and whether the module
    /// declares itself reusable.
    pub(crate) async fn declared(&self, limits: &PluginLimits) -> Result<(i32, bool), CallError> {
        let deadline = Instant::now() + limits.deadline;
        let exports = self.inner.exports;
        let result = self
            .run(None, None, limits, deadline, None, |store, instance| {
                Box::pin(async move {
                    let f: TypedFunc<(), i32> = typed(
                        instance,
                        store,
                        &exports.abi_version,
                        "wasmgate_abi_version",
                    )?;
                    let version = f.call_async(&mut *store, ()).await.map_err(Failure::Wasm)?;
                    let reusable = match exports.reusable {
                        None => false,
                        Some(_) => {
                            let f: TypedFunc<(), i32> =
                                typed(instance, store, &exports.reusable, "wasmgate_reusable")?;
                            f.call_async(&mut *store, ()).await.map_err(Failure::Wasm)? == 1
                        }
                    };
                    Ok((version, reusable))
                })
            })
            .await;
        result.map(|(declared, _fuel, _reused)| declared)
    }

    /// The common frame of a call: an instance — a warm one from `warm` when there is one, else
    /// a fresh one (store with all limits, instance slot, instantiation + `_initialize`) — then
    /// `body`; afterwards failures are classified with the store's state. An instance that
    /// answered goes back to `warm` (when given) for the next request; one that failed in any way
    /// is dropped. Returns `body`'s result, the fuel burned, and whether the instance was reused.
    async fn run<R>(
        &self,
        request_id: Option<RequestId>,
        host: Option<HostCtx>,
        limits: &PluginLimits,
        deadline: Instant,
        warm: Option<&Arc<WarmPool>>,
        body: impl for<'s> FnOnce(&'s mut Store<StoreData>, Instance) -> BodyFuture<'s, R>,
    ) -> Result<(R, u64, bool), CallError> {
        let shared = &self.inner.shared;
        let instantiate = |message: String| CallError::Instantiate { message };
        // Declared before the store, so dropped after it on every path (locals drop in reverse):
        // a slot goes back only once its instance is gone, or the next waiter could find the
        // pool still full and fail to instantiate.
        let mut slot: Option<OwnedSemaphorePermit> = None;
        let mut ready = None;
        let mut served = 0;
        let mut store = match warm.and_then(|p| p.take()) {
            Some(w) => {
                slot = Some(w.slot);
                ready = Some(w.instance);
                served = w.served;
                let mut store = w.store;
                arm(&mut store, limits.max_memory_bytes, limits.fuel, deadline)
                    .map_err(|e| instantiate(chain(&e)))?;
                store.data_mut().host = host;
                store.data_mut().wasi.next_request(request_id);
                store
            }
            None => {
                let wasi = GuestWasi::new(
                    self.inner.name.clone(),
                    request_id,
                    self.inner.resolved.clone(),
                )
                .map_err(|e| instantiate(e.to_string()))?;
                new_store(
                    &shared.engine,
                    wasi,
                    host,
                    limits.max_memory_bytes,
                    limits.fuel,
                    deadline,
                )
                .map_err(|e| instantiate(chain(&e)))?
            }
        };
        let reused = ready.is_some();

        let outcome = tokio::time::timeout_at(deadline.into(), async {
            let instance = match ready.take() {
                Some(instance) => instance,
                None => {
                    slot = Some(acquire_slot(shared).await?);
                    self.instantiate(&mut store).await?
                }
            };
            let r = body(&mut store, instance).await?;
            Ok((r, instance))
        })
        .await;

        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        store.data().wasi.finish();
        match outcome {
            Err(_elapsed) => Err(CallError::Deadline {
                deadline: limits.deadline,
                fuel_used,
            }),
            Ok(Ok((r, instance))) => {
                if let Some(pool) = warm
                    && let Some(slot) = slot.take()
                {
                    pool.give_back(Warm::new(store, instance, slot, served + 1));
                    // A call waiting for a slot must not wait behind an idle instance (it may
                    // have looked at the pools just before this one came back).
                    if shared.slot_waiters.load(Ordering::SeqCst) > 0 {
                        shared.warm.evict_one();
                    }
                }
                Ok((r, fuel_used, reused))
            }
            Ok(Err(f)) => Err(classify(
                f,
                &store,
                limits,
                fuel_used,
                shared.settings.max_stack_bytes,
            )),
        }
    }

    /// A fresh instance in `store`, with `_initialize` run.
    async fn instantiate(&self, store: &mut Store<StoreData>) -> Result<Instance, Failure> {
        let instance = self
            .inner
            .pre
            .instantiate_async(&mut *store)
            .await
            .map_err(Failure::Instantiate)?;
        let init = self.inner.exports.initialize.as_ref();
        let init = init.and_then(|e| instance.get_module_export(&mut *store, e));
        if let Some(init) = init.and_then(Extern::into_func) {
            let init: TypedFunc<(), ()> = init.typed(&*store).map_err(Failure::Wasm)?;
            init.call_async(&mut *store, ())
                .await
                .map_err(Failure::Wasm)?;
        }
        Ok(instance)
    }
}

/// An instance slot: a free one, else one taken back from an idle warm instance (any plugin's),
/// else the next one freed. A call that has to wait is counted in `slot_waiters`, so that an
/// instance coming back meanwhile is evicted rather than kept warm on its slot.
async fn acquire_slot(shared: &Shared) -> Result<OwnedSemaphorePermit, Failure> {
    if let Some(slot) = try_slot(shared)? {
        return Ok(slot);
    }
    let _waiting = SlotWaiter::new(&shared.slot_waiters);
    // Look again now that finishing calls can see us: one may have given its instance back in
    // between.
    if let Some(slot) = try_slot(shared)? {
        return Ok(slot);
    }
    shared
        .slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| slots_closed())
}

/// A slot for the loader's own instance (pre-initialization), by the same rules as a call's.
pub(super) async fn slot_for_load(shared: &Shared) -> Result<OwnedSemaphorePermit, String> {
    acquire_slot(shared)
        .await
        .map_err(|_| "the instance slots are closed".to_string())
}

/// A free slot, evicting idle warm instances until one is free; `None` when none is left to
/// evict.
fn try_slot(shared: &Shared) -> Result<Option<OwnedSemaphorePermit>, Failure> {
    loop {
        match shared.slots.clone().try_acquire_owned() {
            Ok(slot) => return Ok(Some(slot)),
            Err(TryAcquireError::NoPermits) if shared.warm.evict_one() => continue,
            Err(TryAcquireError::NoPermits) => return Ok(None),
            Err(TryAcquireError::Closed) => return Err(slots_closed()),
        }
    }
}

/// One call counted in `Shared::slot_waiters` for as long as it lives (a cancelled wait too).
struct SlotWaiter<'a>(&'a AtomicUsize);

impl<'a> SlotWaiter<'a> {
    fn new(count: &'a AtomicUsize) -> SlotWaiter<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        SlotWaiter(count)
    }
}

impl Drop for SlotWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn slots_closed() -> Failure {
    Failure::Instantiate(wasmtime::format_err!("instance slots closed"))
}

/// The initial size of `module`'s memory in bytes (0 without one; validation requires it).
fn initial_memory_bytes(module: &wasmtime::Module) -> u64 {
    module
        .exports()
        .find_map(|e| match e.ty() {
            wasmtime::ExternType::Memory(m) => Some(m.minimum().saturating_mul(m.page_size())),
            _ => None,
        })
        .unwrap_or(0)
}

type BodyFuture<'s, R> = std::pin::Pin<Box<dyn Future<Output = Result<R, Failure>> + Send + 's>>;

/// Steps 2-5 of the ABI call sequence.
async fn handle(
    store: &mut Store<StoreData>,
    instance: Instance,
    exports: Exports,
    encoded: Vec<u8>,
    max_response: u32,
) -> Result<GuestResponse, Failure> {
    let memory: Memory = exports
        .memory
        .as_ref()
        .and_then(|e| instance.get_module_export(&mut *store, e))
        .and_then(Extern::into_memory)
        .ok_or_else(|| Failure::Wasm(wasmtime::format_err!("export `memory` vanished")))?;
    let alloc: TypedFunc<i32, i32> = typed(instance, store, &exports.alloc, "wasmgate_alloc")?;
    let handle: TypedFunc<(i32, i32), i64> =
        typed(instance, store, &exports.handle, "wasmgate_handle")?;

    let size = encoded.len();
    let n = i32::try_from(size).map_err(|_| Failure::AllocFailed { size })?;
    let p = alloc
        .call_async(&mut *store, n)
        .await
        .map_err(Failure::Wasm)? as u32;
    if p == 0 {
        return Err(Failure::AllocFailed { size });
    }
    memory
        .write(&mut *store, p as usize, &encoded)
        .map_err(|_| Failure::BadAllocPtr { ptr: p, size })?;
    drop(encoded);

    let r = handle
        .call_async(&mut *store, (p as i32, n))
        .await
        .map_err(Failure::Wasm)?;
    let (ptr, len) = wasmgate_abi::split_handle_result(r);
    let data = memory.data(&*store);
    let range = wasmgate_abi::response_range(ptr, len, max_response, data.len())
        .map_err(|e| Failure::Invalid(e.into()))?;
    abi::decode_response(&data[range]).map_err(Failure::Invalid)
}

/// The exported function `export` (named `name`, for the error) with its type checked.
fn typed<P, R>(
    instance: Instance,
    store: &mut Store<StoreData>,
    export: &Option<ModuleExport>,
    name: &str,
) -> Result<TypedFunc<P, R>, Failure>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    let func = export
        .as_ref()
        .and_then(|e| instance.get_module_export(&mut *store, e))
        .and_then(Extern::into_func)
        .ok_or_else(|| {
            Failure::Wasm(wasmtime::format_err!(
                "failed to find function export `{name}`"
            ))
        })?;
    func.typed::<P, R>(&*store).map_err(Failure::Wasm)
}

/// Turns a failure into its [`CallError`]. Order matters: an empty host pool is the host's
/// overload whatever the guest was doing (never a trap: docs/ABI.md); deadline and fuel are exact
/// causes; then a prior memory denial explains whatever trap followed it; then the trap itself.
pub(super) fn classify(
    f: Failure,
    store: &Store<StoreData>,
    limits: &PluginLimits,
    fuel_used: u64,
    max_stack_bytes: usize,
) -> CallError {
    let denied = store.data().limiter.denied();
    let memory_limit = || CallError::MemoryLimit {
        limit_bytes: limits.max_memory_bytes,
        stderr_tail: store.data().wasi.stderr_tail(),
        fuel_used,
    };
    let trap_with = |message: String, backtrace: String| CallError::Trap {
        message,
        backtrace,
        stderr_tail: store.data().wasi.stderr_tail(),
        fuel_used,
    };
    let trap = |message: String| trap_with(message, String::new());
    let (e, instantiating) = match f {
        Failure::Instantiate(e) => (e, true),
        Failure::Wasm(e) => (e, false),
        Failure::AllocFailed { .. } if denied => return memory_limit(),
        Failure::AllocFailed { size } => {
            return trap(format!("`wasmgate_alloc({size})` returned 0"));
        }
        Failure::BadAllocPtr { ptr, size } => {
            return trap(format!(
                "`wasmgate_alloc({size})` returned {ptr:#x}, which is not {size} bytes inside memory"
            ));
        }
        Failure::Invalid(reason) => {
            return CallError::InvalidResponse { reason, fuel_used };
        }
    };
    if is_pool_exhaustion(&e) {
        return CallError::Overloaded {
            message: chain(&e),
            fuel_used,
        };
    }
    if e.downcast_ref::<DeadlineExceeded>().is_some() {
        return CallError::Deadline {
            deadline: limits.deadline,
            fuel_used,
        };
    }
    let trap_code = e.downcast_ref::<Trap>().copied();
    if trap_code == Some(Trap::OutOfFuel) {
        return CallError::FuelExhausted { fuel: limits.fuel };
    }
    if denied {
        return memory_limit();
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return trap(format!("guest called proc_exit({})", exit.0));
    }
    if instantiating && trap_code.is_none() {
        return CallError::Instantiate { message: chain(&e) };
    }
    let backtrace = e
        .downcast_ref::<WasmBacktrace>()
        .map(short_backtrace)
        .unwrap_or_default();
    let message = match trap_code {
        Some(Trap::StackOverflow) => format!(
            "stack overflow (wasm stack limit of {} bytes exhausted)",
            max_stack_bytes
        ),
        // The trap's own description, without the backtrace context wasmtime wraps it in.
        Some(code) => code.to_string(),
        None => chain(&e),
    };
    trap_with(message, backtrace)
}

/// The innermost `BACKTRACE_FRAMES` frames, one per line (a stack overflow has thousands).
fn short_backtrace(bt: &WasmBacktrace) -> String {
    const BACKTRACE_FRAMES: usize = 8;
    let frames = bt.frames();
    let mut out: Vec<String> = frames
        .iter()
        .take(BACKTRACE_FRAMES)
        .map(|f| {
            let module = f.module().name().unwrap_or("<module>");
            let func = f.func_name().unwrap_or("<function>");
            match f.module_offset() {
                Some(off) => format!("{module}!{func} @ {off:#x}"),
                None => format!("{module}!{func} (func {})", f.func_index()),
            }
        })
        .collect();
    if frames.len() > BACKTRACE_FRAMES {
        out.push(format!(
            "... {} more frames",
            frames.len() - BACKTRACE_FRAMES
        ));
    }
    out.join("\n")
}
