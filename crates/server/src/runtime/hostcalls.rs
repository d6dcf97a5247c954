//! ABI v2 host functions: the `wasmgate` import module, linked from the ABI crate's table, and the
//! calling convention of docs/ABI.md "Host functions".
//!
//! Owns the boundary between guest memory and the host services: reading `(ptr, len)` arguments,
//! charging fuel, bounding every wait by the request's deadline, handing results back through a
//! re-entrant `wasmgate_alloc` call (one level deep: a host call from inside that `wasmgate_alloc`
//! is refused as the guest's bug, so a call never needs more than the two fiber stacks its slot is
//! given), and turning every service failure into an [`Errno`] the guest handles. What a function
//! does is delegated to a service that sees plain Rust values and never guest memory. Must not know
//! HTTP or the server.

use std::sync::Arc;
use std::time::Instant;

use wasmgate_abi::{Errno, HOST_FUNCTIONS, HOST_MODULE, HostFn, Param};
use wasmtime::{Caller, Extern, FuncType, Linker, Memory, Trap, Val, ValType};

use super::httpcalls as http;
use super::kvcalls as kv;
use super::store::StoreData;
use crate::config::Vars;
use crate::kv::Store;
use crate::outbound::{Forwarded, PluginClient};
use crate::request_id::RequestId;

/// Fuel one host call costs before its bytes: a host call does work the guest's instruction count
/// does not see, and a guest looping on host calls must still run out of fuel.
pub(crate) const HOST_CALL_FUEL: u64 = 1_000;

/// What a plugin's host functions are bound to: its services as of the routing it was loaded in
/// (a reload that changes its variables binds new ones without recompiling the module).
#[derive(Debug, Default)]
pub struct HostEnv {
    /// The plugin's variables (empty without a `vars` grant).
    pub(crate) vars: Arc<Vars>,
    /// The stores granted to it (`kv = [...]`), by name.
    pub(crate) kv: Vec<Arc<Store>>,
    /// Its outbound HTTP client (`allowed_outbound_hosts`), if it may call anything.
    pub(crate) outbound: Option<Arc<PluginClient>>,
}

impl HostEnv {
    /// The services of a plugin configured with `vars`, granted `kv`, calling out through
    /// `outbound`.
    pub(crate) fn new(
        vars: Arc<Vars>,
        kv: Vec<Arc<Store>>,
        outbound: Option<Arc<PluginClient>>,
    ) -> HostEnv {
        HostEnv { vars, kv, outbound }
    }

    /// A plugin bound to its variables only (tools and benchmarks that run plugins outside a
    /// server).
    pub fn with_vars(vars: Arc<Vars>) -> HostEnv {
        HostEnv::new(vars, Vec::new(), None)
    }
}

/// What a call knows of the inbound request besides its bytes: its id (for the guest's log lines,
/// and forwarded on outbound calls) and its `traceparent` (passed through on outbound calls).
#[derive(Debug, Clone)]
pub struct CallMeta {
    pub id: RequestId,
    pub traceparent: Option<String>,
}

impl From<RequestId> for CallMeta {
    fn from(id: RequestId) -> CallMeta {
        CallMeta {
            id,
            traceparent: None,
        }
    }
}

/// What the host functions of one request need: its plugin's services, its deadline and names
/// for messages. Absent for the load-time check instance, whose host calls answer `unavailable`.
pub(crate) struct HostCtx {
    pub(crate) env: Arc<HostEnv>,
    pub(crate) deadline: Instant,
    pub(crate) plugin: Arc<str>,
    /// Operations made on each granted store (indexed like `env.kv`), against its
    /// `max_ops_per_request`.
    pub(crate) kv_ops: Vec<u32>,
    /// Outbound calls made, against `max_outbound_calls`.
    pub(crate) outbound_calls: u32,
    /// What outbound calls forward of the inbound request.
    pub(crate) forwarded: Forwarded,
}

impl HostCtx {
    pub(crate) fn new(
        env: Arc<HostEnv>,
        deadline: Instant,
        plugin: Arc<str>,
        meta: CallMeta,
    ) -> HostCtx {
        HostCtx {
            kv_ops: vec![0; env.kv.len()],
            outbound_calls: 0,
            forwarded: Forwarded {
                request_id: Some(meta.id.to_string()),
                traceparent: meta.traceparent,
            },
            env,
            deadline,
            plugin,
        }
    }
}

/// A host function's answer: the code, and the bytes to hand back at `ret` (the result on
/// success, a message on failure; empty for none).
pub(super) struct Outcome {
    errno: Errno,
    bytes: Vec<u8>,
}

impl Outcome {
    pub(super) fn ok(bytes: Vec<u8>) -> Outcome {
        Outcome {
            errno: Errno::Ok,
            bytes,
        }
    }

    pub(super) fn fail(errno: Errno, message: impl Into<String>) -> Outcome {
        Outcome {
            errno,
            bytes: message.into().into_bytes(),
        }
    }

    /// The code (what the guest matches on).
    #[cfg(test)]
    pub(super) fn errno(&self) -> Errno {
        self.errno
    }

    /// The bytes handed back, as text (a failure's message).
    #[cfg(test)]
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Defines every function of the ABI table in `linker` under the `wasmgate` module. Which of them
/// a module may import is decided at load by its grants (`validate`), not here.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreData>) -> wasmtime::Result<()> {
    let engine = linker.engine().clone();
    for f in HOST_FUNCTIONS {
        let params = f.wasm_params().into_iter().map(|p| match p {
            wasmgate_abi::ValType::I32 => ValType::I32,
            wasmgate_abi::ValType::I64 => ValType::I64,
        });
        let ty = FuncType::new(&engine, params, [ValType::I32]);
        let def: &'static HostFn = f;
        linker.func_new_async(HOST_MODULE, f.name, ty, move |caller, params, results| {
            Box::new(async move {
                let errno = call(caller, def, params).await?;
                results[0] = Val::I32(errno.code());
                Ok(())
            })
        })?;
    }
    Ok(())
}

/// One host call: arguments in, service, result out. `Err` only for a guest bug the ABI makes a
/// trap (a `ret` outside memory, a host call from inside `wasmgate_alloc`) or fuel running out.
async fn call(
    mut caller: Caller<'_, StoreData>,
    f: &HostFn,
    params: &[Val],
) -> wasmtime::Result<Errno> {
    // Answering would call `wasmgate_alloc` again, one more fiber stack per level, taken from the
    // pool every plugin shares: an unbounded depth would let one guest fail the others' calls.
    if caller.data().called_back {
        wasmtime::bail!(
            "`wasmgate.{}` called from inside `wasmgate_alloc`: the host is handing a result back, \
             and a host function may not be called until `wasmgate_alloc` returns (docs/ABI.md)",
            f.name
        );
    }
    let memory = match caller.get_export("memory").and_then(Extern::into_memory) {
        Some(m) => m,
        None => wasmtime::bail!("`wasmgate.{}` called by a module without memory", f.name),
    };
    charge(&mut caller, HOST_CALL_FUEL)?;
    let ret = param_u32(params, params.len() - 1);
    let ret_range = ret as usize..ret as usize + 8;
    if ret_range.end > memory.data_size(&caller) {
        wasmtime::bail!(
            "`wasmgate.{}`: ret address {ret:#x} is not 8 bytes inside memory",
            f.name
        );
    }
    let outcome = match caller.data().host.as_ref() {
        None => Outcome::fail(
            Errno::Unavailable,
            "host functions are not available while the plugin is being loaded",
        ),
        Some(_) => dispatch(&mut caller, memory, f, params).await,
    };
    charge(&mut caller, outcome.bytes.len() as u64)?;
    let (ptr, len) = match give(&mut caller, memory, &outcome.bytes).await? {
        Some(placed) => placed,
        None => return Ok(finish(&mut caller, memory, ret, (0, 0), Errno::NoMemory)),
    };
    Ok(finish(&mut caller, memory, ret, (ptr, len), outcome.errno))
}

/// Runs the function `f` names with its arguments read from guest memory.
async fn dispatch(
    caller: &mut Caller<'_, StoreData>,
    memory: Memory,
    f: &HostFn,
    params: &[Val],
) -> Outcome {
    let args = match Args::read(caller, memory, params, f) {
        Ok(args) => args,
        Err(outcome) => return outcome,
    };
    let Some(host) = caller.data_mut().host.as_mut() else {
        return Outcome::fail(Errno::Unavailable, "no host services");
    };
    // A store operation is counted (and refused past its limit) before it runs.
    let service = match f.grant {
        wasmgate_abi::Grant::Kv => match kv::admit(host, args.bytes(0)) {
            Ok(store) => Service::Store(store),
            Err(outcome) => return outcome,
        },
        wasmgate_abi::Grant::Outbound => match http::admit(host) {
            Ok(client) => Service::Http(client, host.forwarded.clone()),
            Err(outcome) => return outcome,
        },
        wasmgate_abi::Grant::Vars => Service::Vars,
    };
    let (env, deadline) = (host.env.clone(), host.deadline);
    let plugin = host.plugin.clone();
    let work = async move {
        match service {
            Service::Vars => var_get(&env, &plugin, &args),
            Service::Store(store) => kv::call(f.name, &store, &args, deadline).await,
            Service::Http(client, forwarded) => {
                http::send(&client, &args, &forwarded, deadline).await
            }
        }
    };
    match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::fail(Errno::Timeout, "the request's deadline passed"),
    }
}

/// The service a call was admitted to.
enum Service {
    Vars,
    Store(Arc<Store>),
    Http(Arc<PluginClient>, Forwarded),
}

/// `var_get(name) -> value`.
fn var_get(env: &HostEnv, plugin: &str, args: &Args) -> Outcome {
    let Ok(name) = std::str::from_utf8(args.bytes(0)) else {
        return Outcome::fail(Errno::Invalid, "a variable name must be UTF-8");
    };
    match env.vars.get(name) {
        Some(value) => Outcome::ok(value.as_bytes().to_vec()),
        None => Outcome::fail(
            Errno::NotFound,
            format!("no variable `{name}` in [plugins.{plugin}.vars]"),
        ),
    }
}

/// A call's arguments, in the order of the function's [`Param`]s: byte strings copied out of guest
/// memory (`None` for an absent [`Param::MaybeBytes`]) and numbers.
pub(super) struct Args {
    values: Vec<Arg>,
}

enum Arg {
    Bytes(Option<Vec<u8>>),
    Number(i64),
}

impl Args {
    /// Reads `f`'s arguments from `params` (the raw wasm values). A byte string outside memory
    /// is `invalid`; the bytes copied are charged as fuel.
    fn read(
        caller: &mut Caller<'_, StoreData>,
        memory: Memory,
        params: &[Val],
        f: &HostFn,
    ) -> Result<Args, Outcome> {
        let data = memory.data(&*caller);
        let mut values = Vec::with_capacity(f.args.len());
        let mut at = 0;
        let mut copied = 0u64;
        for (n, param) in f.args.iter().enumerate() {
            let arg = match param {
                Param::Bytes | Param::MaybeBytes => {
                    let (ptr, len) = (param_u32(params, at) as usize, param_u32(params, at + 1));
                    at += 2;
                    if *param == Param::MaybeBytes && len == wasmgate_abi::ABSENT {
                        Arg::Bytes(None)
                    } else {
                        let Some(bytes) = data.get(ptr..ptr.saturating_add(len as usize)) else {
                            return Err(Outcome::fail(
                                Errno::Invalid,
                                format!(
                                    "`wasmgate.{}`: argument {} [{ptr:#x}, +{len}) is outside memory",
                                    f.name,
                                    n + 1
                                ),
                            ));
                        };
                        copied += bytes.len() as u64;
                        Arg::Bytes(Some(bytes.to_vec()))
                    }
                }
                Param::U32 => {
                    at += 1;
                    Arg::Number(i64::from(param_u32(params, at - 1)))
                }
                Param::I64 => {
                    at += 1;
                    Arg::Number(match params.get(at - 1) {
                        Some(Val::I64(v)) => *v,
                        _ => 0,
                    })
                }
            };
            values.push(arg);
        }
        if charge(caller, copied).is_err() {
            return Err(Outcome::fail(Errno::LimitReached, "fuel exhausted"));
        }
        Ok(Args { values })
    }

    /// How many arguments the function takes (before `ret`).
    pub(super) fn count(&self) -> usize {
        self.values.len()
    }

    /// The `n`-th argument as bytes (empty when it is absent or not a byte string).
    pub(super) fn bytes(&self, n: usize) -> &[u8] {
        self.maybe_bytes(n).unwrap_or(&[])
    }

    /// The `n`-th argument as bytes, `None` when it is an absent [`Param::MaybeBytes`].
    pub(super) fn maybe_bytes(&self, n: usize) -> Option<&[u8]> {
        match self.values.get(n) {
            Some(Arg::Bytes(b)) => b.as_deref(),
            _ => None,
        }
    }

    /// The `n`-th argument as a number (0 when it is not one).
    pub(super) fn number(&self, n: usize) -> i64 {
        match self.values.get(n) {
            Some(Arg::Number(v)) => *v,
            _ => 0,
        }
    }
}

/// The `i32` parameter `i` read as unsigned, as the ABI says addresses and sizes are.
fn param_u32(params: &[Val], i: usize) -> u32 {
    match params.get(i) {
        Some(Val::I32(v)) => *v as u32,
        _ => 0,
    }
}

/// Takes `cost` fuel (the base cost of a call, or one per byte moved); out of fuel is the same
/// trap as a guest running out by itself.
fn charge(caller: &mut Caller<'_, StoreData>, cost: u64) -> wasmtime::Result<()> {
    let left = caller.get_fuel()?;
    if left < cost {
        caller.set_fuel(0)?;
        return Err(Trap::OutOfFuel.into());
    }
    caller.set_fuel(left - cost)?;
    Ok(())
}

/// Hands `bytes` to the guest: `Some((0, 0))` for none, else calls `wasmgate_alloc` and copies
/// them there. `None` when the guest could not provide the buffer.
async fn give(
    caller: &mut Caller<'_, StoreData>,
    memory: Memory,
    bytes: &[u8],
) -> wasmtime::Result<Option<(u32, u32)>> {
    if bytes.is_empty() {
        return Ok(Some((0, 0)));
    }
    let Ok(len) = i32::try_from(bytes.len()) else {
        return Ok(None);
    };
    let alloc = caller
        .get_export(wasmgate_abi::exports::ALLOC)
        .and_then(Extern::into_func)
        .ok_or_else(|| wasmtime::format_err!("export `wasmgate_alloc` vanished"))?;
    let alloc = alloc.typed::<i32, i32>(&*caller)?;
    // This call runs on a second fiber stack (wasmtime nests a fiber for a `call_async` from a
    // host function); `called_back` keeps it from nesting further. Not reset when the future is
    // dropped mid-call: that is the deadline, and a store that missed it is never used again.
    caller.data_mut().called_back = true;
    let ptr = alloc.call_async(&mut *caller, len).await;
    caller.data_mut().called_back = false;
    let ptr = ptr? as u32;
    if ptr == 0 || memory.write(&mut *caller, ptr as usize, bytes).is_err() {
        return Ok(None);
    }
    Ok(Some((ptr, len as u32)))
}

/// Stores `(ptr, len)` at `ret` (checked to be inside memory on entry; memory only grows) and
/// returns `errno`.
fn finish(
    caller: &mut Caller<'_, StoreData>,
    memory: Memory,
    ret: u32,
    (ptr, len): (u32, u32),
    errno: Errno,
) -> Errno {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&ptr.to_le_bytes());
    out[4..].copy_from_slice(&len.to_le_bytes());
    // Cannot fail: the range was inside memory when the call began and memory never shrinks.
    let _ = memory.write(&mut *caller, ret as usize, &out);
    errno
}
