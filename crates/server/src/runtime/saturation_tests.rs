//! The runtime's own pools at their limit: a call never finds the fiber-stack pool empty (one
//! nested hand-back per instance slot is provisioned, and no deeper nesting is allowed), and an
//! empty pool, should one ever be, is the host's overload, never a guest trap.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};

use super::engine::{STACKS_PER_SLOT, total_stacks};
use super::plugin::{Failure, classify};
use super::store::new_store;
use super::tests::{get, limits};
use super::wasi::GuestWasi;
use super::*;
use crate::config::Vars;
use crate::request_id::RequestId;

fn guest(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/guests")
        .join(format!("{name}.wat"))
}

/// A runtime of exactly one instance slot: every call saturates it.
fn one_slot() -> Runtime {
    Runtime::new(&RuntimeSettings {
        max_instances: 1,
        max_memory_bytes: 16 * 1024 * 1024,
        ..RuntimeSettings::default()
    })
    .expect("runtime")
}

fn with_var(name: &str, value: &str) -> Arc<HostEnv> {
    let config = format!("[plugins.p]\nwasm = \"x.wat\"\n[plugins.p.vars]\n{name} = {value:?}\n");
    let config = crate::config::Config::parse(&config, "t.toml".as_ref(), ".".as_ref()).unwrap();
    let vars: Arc<Vars> = config.plugins[0].vars.clone();
    Arc::new(HostEnv::with_vars(vars))
}

fn vars_granted() -> PluginGrants {
    PluginGrants {
        vars: true,
        ..PluginGrants::default()
    }
}

#[test]
fn the_stack_pool_is_two_per_slot_and_refuses_to_overflow() {
    assert_eq!(STACKS_PER_SLOT, 2);
    assert_eq!(total_stacks(1).unwrap(), 2);
    assert_eq!(total_stacks(256).unwrap(), 512);
    // At the limit of a u32 count, and one past it.
    assert_eq!(total_stacks(u32::MAX / 2).unwrap(), u32::MAX - 1);
    let err = total_stacks(u32::MAX / 2 + 1).unwrap_err();
    assert!(err.to_string().contains("fiber stacks"), "{err}");
}

#[tokio::test]
async fn a_host_call_answers_with_every_instance_slot_busy() {
    // One slot, held by the call itself: handing `var_get`'s result back needs a second stack,
    // which a slot-sized pool did not have ("maximum concurrent limit of 1 for fibers").
    let rt = one_slot();
    let p = rt
        .load("greet", &guest("greet_v2"), &vars_granted(), &limits())
        .unwrap();
    let env = with_var("greeting", "hi there");
    for _ in 0..3 {
        let r = p
            .call(&get(""), &limits(), RequestId::from_bits(1), &env, None)
            .await
            .expect("a healthy guest answers on a saturated runtime");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hi there"[..]));
    }
}

#[tokio::test]
async fn a_host_call_from_inside_wasmgate_alloc_is_the_guests_trap_and_costs_no_stack() {
    let rt = one_slot();
    let p = rt
        .load("re", &guest("reentrant_v2"), &vars_granted(), &limits())
        .unwrap();
    let env = with_var("v", "value");
    match p
        .call(&get(""), &limits(), RequestId::from_bits(2), &env, None)
        .await
    {
        Err(CallError::Trap { message, .. }) => assert!(
            message.contains("`wasmgate.var_get` called from inside `wasmgate_alloc`"),
            "{message}"
        ),
        other => panic!("expected the refusal as a trap, got {other:?}"),
    }
    // Refused at depth one, so the stacks came back: the one slot still serves a host call.
    let greet = rt
        .load("greet", &guest("greet_v2"), &vars_granted(), &limits())
        .unwrap();
    let env = with_var("greeting", "still here");
    let r = greet
        .call(&get(""), &limits(), RequestId::from_bits(3), &env, None)
        .await
        .unwrap();
    assert_eq!(r.body, b"still here");
}

/// A real `PoolConcurrencyLimitError`: a second instance in a one-instance pool.
async fn pool_exhausted() -> (wasmtime::Error, wasmtime::Store<StoreData>) {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(1)
        .total_memories(1)
        .total_tables(1)
        .total_stacks(2);
    let mut config = wasmtime::Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, "(module (memory 1))").unwrap();
    let linker = wasmtime::Linker::new(&engine);
    let store = || {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        new_store(
            &engine,
            GuestWasi::empty(),
            None,
            1 << 20,
            1_000_000,
            deadline,
        )
        .unwrap()
    };
    let mut first = store();
    let _held = linker.instantiate_async(&mut first, &module).await.unwrap();
    let mut second = store();
    let err = linker
        .instantiate_async(&mut second, &module)
        .await
        .expect_err("the pool holds one instance");
    (err, second)
}

#[tokio::test]
async fn an_empty_host_pool_is_overloaded_never_a_trap_nor_an_instantiate_failure() {
    let (err, store) = pool_exhausted().await;
    assert!(error::is_pool_exhaustion(&err), "{err:#}");
    let overloaded = |f| match classify(f, &store, &limits(), 7, 512 * 1024) {
        CallError::Overloaded { message, fuel_used } => {
            assert!(message.contains("maximum concurrent limit"), "{message}");
            assert_eq!(fuel_used, 7);
        }
        other => panic!("expected overloaded, got {other:?}"),
    };
    // While instantiating (was: 500 `instantiate`).
    let again = wasmtime::Error::msg(format!("{err:#}"));
    assert!(
        !error::is_pool_exhaustion(&again),
        "text alone proves nothing"
    );
    overloaded(Failure::Instantiate(err));
    // Deep in a running call's chain, as a nested call's failure reaches the guest (was: 500
    // `trap`, a breaker failure).
    let (err, _store) = pool_exhausted().await;
    let nested = err.context("host function `wasmgate.kv_get` failed");
    overloaded(Failure::Wasm(nested));
}
