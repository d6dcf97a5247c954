//! ABI v2 in the runtime: host functions granted or refused at load, the calling convention
//! (results through a re-entrant `wasmgate_alloc`, messages on failure, arguments out of bounds,
//! `ret` out of bounds, fuel), and the v2 request encoding reaching the guest.

use std::sync::Arc;

use wasmgate_abi::{AbiVersion, Field, RawRequest, tag};

use super::tests::{get, limits, runtime};
use super::*;
use crate::config::Vars;
use crate::request_id::RequestId;

fn guest(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/guests")
        .join(format!("{name}.wat"))
}

fn granted() -> PluginGrants {
    PluginGrants {
        vars: true,
        ..PluginGrants::default()
    }
}

fn vars(pairs: &[(&str, &str)]) -> Arc<HostEnv> {
    let text: String = pairs
        .iter()
        .map(|(k, v)| format!("{k} = {v:?}\n"))
        .collect();
    let config = format!("[plugins.p]\nwasm = \"x.wat\"\n[plugins.p.vars]\n{text}");
    let config = crate::config::Config::parse(&config, "t.toml".as_ref(), ".".as_ref()).unwrap();
    let vars: Arc<Vars> = config.plugins[0].vars.clone();
    Arc::new(HostEnv::with_vars(vars))
}

async fn call_with(p: &Plugin, env: &Arc<HostEnv>, fuel: u64) -> Result<GuestResponse, CallError> {
    let limits = PluginLimits { fuel, ..limits() };
    p.call(&get(""), &limits, RequestId::from_bits(9), env, None)
        .await
}

#[tokio::test]
async fn a_granted_host_call_returns_its_result_through_wasmgate_alloc() {
    let p = runtime()
        .load(
            "greet",
            &guest("greet_v2"),
            &granted(),
            &PluginLimits::default(),
        )
        .unwrap();
    assert_eq!(p.abi_version(), AbiVersion::V2);
    let env = vars(&[("greeting", "hi there")]);
    let r = call_with(&p, &env, limits().fuel).await.unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hi there"[..]));
    // Fuel: the guest's own instructions plus at least the call's base cost.
    assert!(r.fuel_used > hostcalls::HOST_CALL_FUEL, "{}", r.fuel_used);
}

#[tokio::test]
async fn a_failure_is_a_code_and_a_message_not_a_trap() {
    let p = runtime()
        .load(
            "greet",
            &guest("greet_v2"),
            &granted(),
            &PluginLimits::default(),
        )
        .unwrap();
    let r = call_with(&p, &vars(&[("other", "x")]), limits().fuel)
        .await
        .unwrap();
    assert_eq!(r.status, 404, "not_found (1) -> the guest chose 404");
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "no variable `greeting` in [plugins.greet.vars]"
    );
}

#[tokio::test]
async fn host_calls_cost_fuel() {
    let p = runtime()
        .load(
            "greet",
            &guest("greet_v2"),
            &granted(),
            &PluginLimits::default(),
        )
        .unwrap();
    // Enough for the guest's instructions, not for the call's base cost.
    let err = call_with(
        &p,
        &vars(&[("greeting", "hi")]),
        hostcalls::HOST_CALL_FUEL / 2,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "fuel_exhausted", "{err}");
}

#[test]
fn an_ungranted_import_is_refused_at_load_naming_the_grant() {
    let err = runtime()
        .load(
            "greet",
            &guest("greet_v2"),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(
            "import `wasmgate.var_get` is not granted: add a `[plugins.greet.vars]` table"
        ),
        "{msg}"
    );
}

/// A module declaring ABI `abi` that imports each `(module, name, type)` of `imports` and calls none.
fn importing(abi: i32, imports: &[(&str, &str, String)]) -> String {
    let imports: String = imports
        .iter()
        .map(|(m, n, ty)| format!("(import \"{m}\" \"{n}\" (func {ty}))\n"))
        .collect();
    format!(
        r#"(module
          {imports}
          (memory (export "memory") 1)
          (func (export "wasmgate_abi_version") (result i32) (i32.const {abi}))
          (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
          (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const 0)))"#
    )
}

/// The WAT type of host function `f`.
fn host_type(f: &wasmgate_abi::HostFn) -> String {
    let params: Vec<&str> = f
        .wasm_params()
        .into_iter()
        .map(|p| match p {
            wasmgate_abi::ValType::I32 => "i32",
            wasmgate_abi::ValType::I64 => "i64",
        })
        .collect();
    format!("(param {}) (result i32)", params.join(" "))
}

/// Every host function imported by a v1 module is refused first for the version (the real
/// cause), then, in the same report, for its grant: never "add a grant" alone.
#[test]
fn a_v1_module_importing_a_host_function_is_told_it_needs_v2_first() {
    for f in wasmgate_abi::HOST_FUNCTIONS {
        let wat = importing(1, &[("wasmgate", f.name, host_type(f))]);
        let err = runtime()
            .load_bytes(
                "old",
                wat.as_bytes(),
                &PluginGrants::default(),
                &PluginLimits::default(),
            )
            .unwrap_err();
        let LoadError::Abi { problems, .. } = &err else {
            panic!("{}: {err}", f.name)
        };
        assert_eq!(
            problems[0],
            AbiProblem::HostImportInV1 {
                name: f.name.to_string()
            },
            "{}: {err}",
            f.name
        );
        let msg = err.to_string();
        assert!(msg.contains("does not follow the wasmgate ABI"), "{msg}");
        let version = msg
            .find("needs ABI v2 (export `wasmgate_abi_version` returning 2)")
            .unwrap_or_else(|| panic!("{msg}"));
        let grant = msg
            .find("is not granted")
            .unwrap_or_else(|| panic!("{msg}"));
        assert!(version < grant, "{msg}");
        // Granted, only the version remains.
        let all = PluginGrants {
            vars: true,
            kv: vec!["s".into()],
            outbound: vec![crate::config::AllowEntry::parse("https://example.com").unwrap()],
            ..PluginGrants::default()
        };
        let err = runtime()
            .load_bytes("old", wat.as_bytes(), &all, &PluginLimits::default())
            .unwrap_err();
        assert!(
            matches!(&err, LoadError::Abi { problems, .. } if problems.len() == 1),
            "{err}"
        );
    }
}

/// `wasmgate check` of a module nothing mounts: a v2 module without grants loads, and its needs
/// are its imports grouped by grant, WASI's environment and files as optional ones; a module the
/// ABI refuses is still refused.
#[test]
fn an_inspected_module_loads_without_grants_and_lists_what_it_needs() {
    fn host(name: &'static str) -> (&'static str, &'static str, String) {
        let f = wasmgate_abi::host_function(name).unwrap();
        ("wasmgate", name, host_type(f))
    }
    fn wasi(name: &'static str, ty: &str) -> (&'static str, &'static str, String) {
        ("wasi_snapshot_preview1", name, ty.to_string())
    }
    let wat = importing(
        2,
        &[
            wasi(
                "path_open",
                "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)",
            ),
            host("http_send"),
            host("kv_open"),
            wasi("environ_get", "(param i32 i32) (result i32)"),
            host("kv_get"),
            host("var_get"),
        ],
    );
    let path = std::path::Path::new("m.wat");
    let p = runtime()
        .inspect_file_bytes("m", path, wat.as_bytes(), &PluginLimits::default(), true)
        .unwrap();
    let needs: Vec<(Need, Vec<String>)> =
        p.needs().into_iter().map(|n| (n.need, n.imports)).collect();
    let names = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(
        needs,
        [
            (Need::Host(wasmgate_abi::Grant::Vars), names(&["var_get"])),
            (
                Need::Host(wasmgate_abi::Grant::Kv),
                names(&["kv_open", "kv_get"])
            ),
            (
                Need::Host(wasmgate_abi::Grant::Outbound),
                names(&["http_send"])
            ),
            (Need::Env, names(&["environ_get"])),
            (Need::Dirs, names(&["path_open"])),
        ]
    );
    let advice: Vec<String> = p.needs().iter().map(|n| n.advice("m")).collect();
    assert!(
        advice[0].starts_with("add a `[plugins.m.vars]` table"),
        "{advice:?}"
    );
    assert!(
        advice[1].contains("kv = [\"STORE\"]") && advice[1].contains("kv_open"),
        "{advice:?}"
    );
    assert!(advice[2].contains("allowed_outbound_hosts"), "{advice:?}");
    assert!(advice[3].starts_with("optional: `env = "), "{advice:?}");
    assert!(advice[4].starts_with("optional: `dirs = "), "{advice:?}");
    assert_eq!(p.needs().iter().filter(|n| n.required()).count(), 3);

    // Loading it for real still enforces every grant.
    let err = runtime()
        .load_file_bytes(
            "m",
            path,
            wat.as_bytes(),
            &PluginGrants::default(),
            &PluginLimits::default(),
            true,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string().matches("` is not granted: add").count(),
        4,
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("plugin `m` follows the ABI but is not granted what it imports: "),
        "a missing grant is not an ABI fault: {err}"
    );

    // A module the ABI refuses is refused by the inspection too.
    let broken = wat.replace("wasmgate_handle", "wasmgate_handler");
    let err = runtime()
        .inspect_file_bytes("m", path, broken.as_bytes(), &PluginLimits::default(), true)
        .unwrap_err();
    assert!(
        err.to_string().contains("missing export `wasmgate_handle`"),
        "{err}"
    );
    let v1 = importing(1, &[host("var_get")]);
    let err = runtime()
        .inspect_file_bytes("m", path, v1.as_bytes(), &PluginLimits::default(), true)
        .unwrap_err();
    assert!(err.to_string().contains("needs ABI v2"), "{err}");
    assert!(
        !err.to_string().contains("not granted"),
        "no grants are checked: {err}"
    );
}

/// A module around one `var_get` call with the given arguments, answering `200 + errno`.
fn probe(abi: i32, import_type: &str, args: &str) -> String {
    format!(
        r#"(module
          (import "wasmgate" "var_get" (func $var_get {import_type}))
          (memory (export "memory") 1)
          (func (export "wasmgate_abi_version") (result i32) (i32.const {abi}))
          (global $bump (mut i32) (i32.const 1024))
          (func (export "wasmgate_alloc") (param $n i32) (result i32)
            (local $p i32)
            (local.set $p (global.get $bump))
            (global.set $bump (i32.add (local.get $p) (local.get $n)))
            (local.get $p))
          (func (export "wasmgate_handle") (param i32 i32) (result i64)
            (i32.store (i32.const 64) (i32.add (i32.const 200) (call $var_get {args})))
            (i64.const 0x40_0000_000c)))"#
    )
}

const VAR_GET: &str = "(param i32 i32 i32) (result i32)";

#[tokio::test]
async fn arguments_outside_memory_are_invalid_and_a_bad_ret_traps() {
    let load = |wat: &str| {
        runtime().load_bytes(
            "probe",
            wat.as_bytes(),
            &granted(),
            &PluginLimits::default(),
        )
    };
    let env = vars(&[("greeting", "hi")]);
    // name out of bounds: `invalid` (2), a value the guest sees.
    let p = load(&probe(
        2,
        VAR_GET,
        "(i32.const 0xffff0000) (i32.const 8) (i32.const 32)",
    ))
    .unwrap();
    let r = call_with(&p, &env, limits().fuel).await.unwrap();
    assert_eq!(r.status, 202);
    // ret out of bounds: a guest bug, a trap naming it.
    let p = load(&probe(
        2,
        VAR_GET,
        "(i32.const 16) (i32.const 8) (i32.const 0xfffffff0)",
    ))
    .unwrap();
    let err = call_with(&p, &env, limits().fuel).await.unwrap_err();
    assert_eq!(err.kind(), "trap");
    assert!(err.to_string().contains("ret address"), "{err}");
}

#[test]
fn unknown_mistyped_and_v1_host_imports_are_refused() {
    let load = |wat: &str| {
        runtime()
            .load_bytes(
                "probe",
                wat.as_bytes(),
                &granted(),
                &PluginLimits::default(),
            )
            .unwrap_err()
            .to_string()
    };
    let unknown = probe(2, VAR_GET, "(i32.const 16) (i32.const 8) (i32.const 32)")
        .replace("\"var_get\"", "\"var_frob\"");
    let msg = load(&unknown);
    assert!(
        msg.contains("`wasmgate.var_frob` is not a wasmgate host function"),
        "{msg}"
    );
    let msg = load(&probe(
        2,
        "(param i32 i32) (result i32)",
        "(i32.const 16) (i32.const 8)",
    ));
    assert!(
        msg.contains("import `wasmgate.var_get` has type (i32, i32) -> i32, the ABI defines (i32, i32, i32) -> i32"),
        "{msg}"
    );
    let msg = load(&probe(
        1,
        VAR_GET,
        "(i32.const 16) (i32.const 8) (i32.const 32)",
    ));
    assert!(msg.contains("`wasmgate.var_get` needs ABI v2"), "{msg}");
}

#[tokio::test]
async fn a_v2_guest_receives_the_tagged_fields_after_the_body() {
    let p = runtime()
        .load(
            "mirror",
            &guest("mirror_v2"),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap();
    let mut req = get("");
    req.body = b"the body";
    req.fields = vec![
        Field {
            tag: tag::ROUTE,
            value: b"/t",
        },
        Field {
            tag: tag::REQUEST_ID,
            value: b"0000000000000009",
        },
        Field {
            tag: 77,
            value: b"a tag the guest does not know",
        },
    ];
    let r = p
        .call(
            &req,
            &limits(),
            RequestId::from_bits(9),
            &Arc::default(),
            None,
        )
        .await
        .unwrap();
    let seen = RawRequest::decode(&r.body, AbiVersion::V2).unwrap();
    assert_eq!(seen, req);
    // The same request to a v1 guest carries no fields (its layout has no place for them).
    let v1 = runtime()
        .load(
            "echo",
            &guest("echo"),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap();
    assert_eq!(v1.abi_version(), AbiVersion::V1);
    let r = v1
        .call(
            &req,
            &limits(),
            RequestId::from_bits(9),
            &Arc::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.body, b"the body");
}

/// A module that makes one `kv_incr_ttl(store, "k", 1, ttl_ms)` and then one `kv_ttl(store, "k")`
/// per request, answering 200 with a 24-byte body: both codes (`i32` each), then both results
/// (`i64` each, 0 when the call failed).
fn window_probe(store: &str, ttl_ms: i64) -> String {
    format!(
        r#"(module
          (import "wasmgate" "kv_incr_ttl"
            (func $incr_ttl (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
          (import "wasmgate" "kv_ttl" (func $ttl (param i32 i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "{store}")
          (data (i32.const 64) "k")
          (func (export "wasmgate_abi_version") (result i32) (i32.const 2))
          (global $bump (mut i32) (i32.const 4096))
          (func (export "wasmgate_alloc") (param $n i32) (result i32)
            (local $p i32)
            (local.set $p (global.get $bump))
            (global.set $bump (i32.add (local.get $p) (local.get $n)))
            (local.get $p))
          (func (export "wasmgate_handle") (param i32 i32) (result i64)
            (local $e i32)
            (i32.store (i32.const 256) (i32.const 200))
            (i32.store (i32.const 260) (i32.const 0))
            (i32.store (i32.const 264) (i32.const 24))
            (local.set $e (call $incr_ttl (i32.const 0) (i32.const {len}) (i32.const 64)
              (i32.const 1) (i64.const 1) (i64.const {ttl_ms}) (i32.const 128)))
            (i32.store (i32.const 268) (local.get $e))
            (i64.store (i32.const 276) (i64.const 0))
            (if (i32.eqz (local.get $e))
              (then (i64.store (i32.const 276) (i64.load (i32.load (i32.const 128))))))
            (local.set $e (call $ttl (i32.const 0) (i32.const {len}) (i32.const 64)
              (i32.const 1) (i32.const 136)))
            (i32.store (i32.const 272) (local.get $e))
            (i64.store (i32.const 284) (i64.const 0))
            (if (i32.eqz (local.get $e))
              (then (i64.store (i32.const 284) (i64.load (i32.load (i32.const 136))))))
            (i64.const 0x100_0000_0024)))"#,
        len = store.len()
    )
}

/// `(incr code, ttl code, incr result, ttl result)` of one call of a [`window_probe`].
async fn window_call(p: &Plugin, env: &Arc<HostEnv>) -> (i32, i32, i64, i64) {
    let r = call_with(p, env, limits().fuel).await.unwrap();
    assert_eq!((r.status, r.body.len()), (200, 24));
    let b = &r.body;
    let i32_at = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let i64_at = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    (i32_at(0), i32_at(4), i64_at(8), i64_at(16))
}

/// A plugin granted the SQLite store `s` (in `dir`) with `limits`.
fn kv_env(dir: &std::path::Path, limits: crate::config::StoreLimits) -> Arc<HostEnv> {
    use crate::config::{SqliteSync, StoreBackend, StoreConfig};
    let config = StoreConfig {
        name: "s".into(),
        backend: StoreBackend::Sqlite {
            path: dir.join("s.sqlite"),
            sync: SqliteSync::Full,
        },
        limits,
        required: false,
    };
    let metrics = Arc::new(crate::metrics::Metrics::new(crate::metrics::Sources::none()));
    let store = crate::kv::Store::open(&config, metrics).unwrap();
    Arc::new(HostEnv::new(Arc::default(), vec![Arc::new(store)], None))
}

fn kv_grant() -> PluginGrants {
    PluginGrants {
        kv: vec!["s".into()],
        ..PluginGrants::default()
    }
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmgate-v2-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `kv_incr_ttl` and `kv_ttl` through the ABI: the TTL goes to the key the call creates only,
/// the time left comes back as 8 bytes, "no expiry" as -1, and the host's checks (`max_ttl`,
/// the grant, `max_ops_per_request`) answer codes the guest handles.
#[tokio::test]
async fn kv_incr_ttl_opens_a_window_and_kv_ttl_reports_what_is_left() {
    use crate::config::StoreLimits;
    let dir = scratch("window");
    let env = kv_env(&dir, StoreLimits::default());
    let load = |wat: String| {
        runtime()
            .load_bytes("w", wat.as_bytes(), &kv_grant(), &PluginLimits::default())
            .unwrap()
    };
    let p = load(window_probe("s", 60_000));
    let (e1, e2, n, left) = window_call(&p, &env).await;
    assert_eq!((e1, e2, n), (0, 0, 1), "opens the window");
    assert!((59_000..=60_000).contains(&left), "{left}");
    let (e1, e2, n, left_after) = window_call(&p, &env).await;
    assert_eq!((e1, e2, n), (0, 0, 2), "counts into it");
    assert!(left_after <= left, "not extended: {left_after} > {left}");

    // No TTL: the key is created without one, and `kv_ttl` says so with -1.
    let other = scratch("window-none");
    let p = load(window_probe("s", 0));
    assert_eq!(
        window_call(&p, &kv_env(&other, StoreLimits::default())).await,
        (0, 0, 1, wasmgate_abi::NO_EXPIRY)
    );

    // Past `max_ttl`: `too_large` (4), nothing written, so `kv_ttl` finds nothing (1).
    let past = StoreLimits::default().max_ttl.as_millis() as i64 + 1;
    let p = load(window_probe("s", past));
    let past_dir = scratch("window-past");
    let (e1, e2, _, _) = window_call(&p, &kv_env(&past_dir, StoreLimits::default())).await;
    assert_eq!((e1, e2), (4, 1));

    // A store not granted: `denied` (3) for both calls.
    let p = load(window_probe("t", 1000));
    let (e1, e2, _, _) = window_call(&p, &env).await;
    assert_eq!((e1, e2), (3, 3));

    // One operation per request: the second call is `limit_reached` (5).
    let one = StoreLimits {
        max_ops_per_request: 1,
        ..StoreLimits::default()
    };
    let p = load(window_probe("s", 1000));
    let one_dir = scratch("window-one");
    let (e1, e2, n, _) = window_call(&p, &kv_env(&one_dir, one)).await;
    assert_eq!((e1, e2, n), (0, 5, 1));
    for d in [dir, other, past_dir, one_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A module that sends `request` (an encoded outbound request) with
/// `http_send_timeout(request, timeout_ms)` and answers `200 + errno`.
fn send_probe(request: &[u8], timeout_ms: i64) -> String {
    let data: String = request.iter().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
          (import "wasmgate" "http_send_timeout"
            (func $send (param i32 i32 i64 i32) (result i32)))
          (memory (export "memory") 1)
          (data (i32.const 512) "{data}")
          (func (export "wasmgate_abi_version") (result i32) (i32.const 2))
          (global $bump (mut i32) (i32.const 8192))
          (func (export "wasmgate_alloc") (param $n i32) (result i32)
            (local $p i32)
            (local.set $p (global.get $bump))
            (global.set $bump (i32.add (local.get $p) (local.get $n)))
            (local.get $p))
          (func (export "wasmgate_handle") (param i32 i32) (result i64)
            (i32.store (i32.const 64) (i32.add (i32.const 200)
              (call $send (i32.const 512) (i32.const {len}) (i64.const {timeout_ms}) (i32.const 32))))
            (i32.store (i32.const 68) (i32.const 0))
            (i32.store (i32.const 72) (i32.const 0))
            (i64.const 0x40_0000_000c)))"#,
        len = request.len()
    )
}

/// `http_send_timeout`: the guest's bound ends a call to an upstream that never answers, sooner
/// than the host's `outbound_timeout`; a bound of 0 leaves the host's.
#[tokio::test]
async fn http_send_timeout_ends_the_call_at_the_guests_bound() {
    use crate::config::{AllowEntry, OutboundSettings};
    use crate::outbound::{Bounds, Outbound};
    // An upstream that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            open.push(conn);
        }
    });
    let request = wasmgate_abi::OutboundRequest {
        method: b"GET",
        url: url.as_bytes(),
        headers: vec![],
        body: b"",
    }
    .encode()
    .unwrap();
    let allow = AllowEntry::parse("http://127.0.0.1:*").unwrap();
    let plugin_limits = PluginLimits {
        outbound_timeout: std::time::Duration::from_millis(800),
        deadline: std::time::Duration::from_secs(10),
        ..limits()
    };
    let service = Outbound::new(
        &OutboundSettings::default(),
        Arc::new(crate::metrics::Metrics::new(crate::metrics::Sources::none())),
    )
    .unwrap();
    let client = service.client(
        "h",
        std::slice::from_ref(&allow),
        Bounds::of(&plugin_limits),
    );
    let env = Arc::new(HostEnv::new(Arc::default(), Vec::new(), client));
    let grants = PluginGrants {
        outbound: vec![allow],
        ..PluginGrants::default()
    };
    for (timeout_ms, at_least, below) in [(150, 140, 700), (0, 790, 3000)] {
        let p = runtime()
            .load_bytes(
                "h",
                send_probe(&request, timeout_ms).as_bytes(),
                &grants,
                &PluginLimits::default(),
            )
            .unwrap();
        let started = std::time::Instant::now();
        let r = p
            .call(
                &get(""),
                &plugin_limits,
                RequestId::from_bits(9),
                &env,
                None,
            )
            .await
            .unwrap();
        let took = started.elapsed().as_millis();
        assert_eq!(r.status, 208, "timeout (8), timeout_ms = {timeout_ms}");
        assert!(
            (at_least..below).contains(&took),
            "timeout_ms = {timeout_ms}: {took} ms"
        );
    }
    held.abort();
}
