//! Pre-initialization at load: when `_initialize` runs once at load and requests start from its
//! snapshot, and when the module is served as it is.

use super::tests::{env, get, limits, runtime};
use super::*;
use crate::request_id::RequestId;

/// A v2 guest whose `_initialize` burns ~`ITERATIONS` loop rounds of fuel, then writes its
/// response into memory and bumps a global; `wasmgate_handle` answers what is there (200 with
/// the global as a 4-byte body) and bumps the global again. `IMPORT` is spliced in to give it an
/// import, `CALL` to call it from `_initialize`.
const TEMPLATE: &str = r#"(module
  IMPORT
  (memory (export "memory") 1)
  (global $inits (mut i32) (i32.const 0))
  (func (export "wasmgate_abi_version") (result i32) (i32.const 2))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "_initialize")
    (local $i i32)
    CALL
    (loop $spin
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spin (i32.lt_u (local.get $i) (i32.const ITERATIONS))))
    (i32.store (i32.const 16) (i32.const 200))
    (i32.store (i32.const 20) (i32.const 0))
    (i32.store (i32.const 24) (i32.const 4))
    (global.set $inits (i32.add (global.get $inits) (i32.const 1))))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (i32.store (i32.const 28) (global.get $inits))
    (i64.const 0x0000001000000010)))"#;

fn guest(iterations: u32, import: &str, call: &str) -> String {
    TEMPLATE
        .replace("ITERATIONS", &iterations.to_string())
        .replace("IMPORT", import)
        .replace("CALL", call)
}

/// Per-request fuel below what `_initialize` burns with 1,000,000 rounds.
fn tight() -> PluginLimits {
    PluginLimits {
        fuel: 1_000_000,
        ..limits()
    }
}

fn load(wat: &str, preinitialize: bool) -> Plugin {
    runtime()
        .load_bytes_with(
            "preinit",
            wat.as_bytes(),
            &PluginGrants::default(),
            &tight(),
            preinitialize,
        )
        .unwrap_or_else(|e| panic!("loads: {e}"))
}

/// The global `_initialize` bumped, as the guest answers it.
async fn inits(p: &Plugin) -> Result<u32, CallError> {
    let resp = p
        .call(&get(""), &tight(), RequestId::from_bits(1), &env(), None)
        .await?;
    assert_eq!(resp.status, 200);
    let bytes: [u8; 4] = resp.body.as_slice().try_into().expect("a 4-byte body");
    Ok(u32::from_le_bytes(bytes))
}

#[tokio::test]
async fn initialisation_runs_once_at_load_and_every_request_starts_from_its_state() {
    let p = load(&guest(1_000_000, "", ""), true);
    assert_eq!(p.preinit(), &Preinit::Applied);
    // The loop alone would exhaust the request's fuel: it did not run again.
    for _ in 0..3 {
        assert_eq!(inits(&p).await.unwrap(), 1, "the snapshot's state, once");
    }
    let (exports, _) = p.describe();
    assert!(
        !exports.iter().any(|(name, _)| name == "_initialize"),
        "the image no longer exports `_initialize`: {exports:?}"
    );
}

#[tokio::test]
async fn turned_off_the_module_initialises_in_every_request() {
    let p = load(&guest(1_000_000, "", ""), false);
    assert_eq!(p.preinit(), &Preinit::Off);
    match inits(&p).await {
        Err(e) => assert_eq!(e.kind(), "fuel_exhausted"),
        Ok(n) => panic!("`_initialize` cannot fit the request's fuel, answered {n}"),
    }
    let cheap = load(&guest(10, "", ""), false);
    assert_eq!(inits(&cheap).await.unwrap(), 1);
}

#[tokio::test]
async fn an_initialiser_that_calls_an_import_is_served_as_it_is() {
    let wat = guest(
        10,
        r#"(import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))"#,
        "(drop (call $clock (i32.const 0) (i64.const 0) (i32.const 512)))",
    );
    let p = load(&wat, true);
    match p.preinit() {
        Preinit::Skipped(why) => assert!(why.contains("clock_time_get"), "{why}"),
        other => panic!("expected a skip, got {other:?}"),
    }
    // Served as it is: `_initialize` runs (and reads the clock) in every request.
    assert_eq!(inits(&p).await.unwrap(), 1);
    assert_eq!(inits(&p).await.unwrap(), 1);
}

#[test]
fn an_initialiser_that_traps_is_refused_by_the_load_check_as_before() {
    let wat = guest(10, "", "(unreachable)");
    match runtime().load_bytes(
        "trapping",
        wat.as_bytes(),
        &PluginGrants::default(),
        &tight(),
    ) {
        Err(LoadError::Check { cause, .. }) => assert_eq!(cause.kind(), "trap"),
        other => panic!("expected a check trap, got {other:?}"),
    }
}

#[test]
fn a_module_without_an_initialiser_needs_nothing() {
    let p = super::tests::load("ok");
    assert_eq!(p.preinit(), &Preinit::NotNeeded);
    assert!(p.preinit().honours(true) && p.preinit().honours(false));
    assert!(Preinit::Applied.honours(true) && !Preinit::Applied.honours(false));
    assert!(Preinit::Off.honours(false) && !Preinit::Off.honours(true));
}

#[test]
fn a_mutable_reference_global_cannot_be_snapshotted() {
    let wat = guest(10, "(global $r (mut externref) (ref.null extern))", "");
    let p = load(&wat, true);
    match p.preinit() {
        Preinit::Skipped(why) => assert!(why.contains("reference type"), "{why}"),
        other => panic!("expected a skip, got {other:?}"),
    }
}
