//! Runtime tests against real guests: the hand-written WAT files in `tests/guests/` (shared with
//! the HTTP integration tests) plus a few inline modules for load-time refusals.
//!
//! Every runtime-failure guest answers a request with query `ok` normally, so each failure test
//! also shows that the very same `Plugin` works right after a failed call.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::config::DirGrant;
use crate::metrics::LoadErrorKind;
use crate::request_id::RequestId;

/// One runtime for all tests (each runtime reserves address space for its pool).
pub(super) fn runtime() -> &'static Runtime {
    static RT: LazyLock<Runtime> = LazyLock::new(|| {
        Runtime::new(&RuntimeSettings {
            max_instances: 64,
            max_memory_bytes: 64 * 1024 * 1024,
            ..RuntimeSettings::default()
        })
        .expect("runtime")
    });
    &RT
}

/// Held by tests that keep CPUs busy with spinning guests, so they do not skew the fairness
/// measurement (tests of one binary run in parallel).
pub(super) static CPU_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn guest_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/guests")
        .join(format!("{name}.wat"))
}

pub(super) fn load(name: &str) -> Plugin {
    runtime()
        .load(
            name,
            &guest_path(name),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn load_err(name: &str) -> LoadError {
    match runtime().load(
        name,
        &guest_path(name),
        &PluginGrants::default(),
        &PluginLimits::default(),
    ) {
        Ok(_) => panic!("{name} should not load"),
        Err(e) => e,
    }
}

fn load_wat_err(wat: &str) -> LoadError {
    match runtime().load_bytes(
        "inline",
        wat.as_bytes(),
        &PluginGrants::default(),
        &PluginLimits::default(),
    ) {
        Ok(_) => panic!("should not load:\n{wat}"),
        Err(e) => e,
    }
}

pub(super) fn limits() -> PluginLimits {
    PluginLimits {
        fuel: 20_000_000,
        deadline: Duration::from_secs(5),
        max_memory_bytes: 4 * 1024 * 1024,
        max_response_bytes: 8 * 1024 * 1024,
        ..PluginLimits::default()
    }
}

/// A GET with the given query (empty = none).
pub(super) fn get(query: &'static str) -> GuestRequest<'static> {
    GuestRequest {
        method: b"GET",
        target: if query.is_empty() { b"/t" } else { b"/t?ok" },
        path: b"/t",
        query: query.as_bytes(),
        version: b"HTTP/1.1",
        headers: vec![(b"Host", b"localhost")],
        ..GuestRequest::default()
    }
}

/// A plugin bound to no services (no variables).
pub(super) fn env() -> Arc<HostEnv> {
    Arc::new(HostEnv::default())
}

pub(super) async fn call(
    p: &Plugin,
    query: &'static str,
    limits: &PluginLimits,
) -> Result<GuestResponse, CallError> {
    p.call(&get(query), limits, RequestId::from_bits(7), &env(), None)
        .await
}

/// Calls `name` expecting `kind`, then shows the same plugin answers `?ok` normally.
async fn fails_then_recovers(name: &str, limits: &PluginLimits, kind: &str) -> CallError {
    let p = load(name);
    let err = call(&p, "", limits)
        .await
        .expect_err("bad call should fail");
    assert_eq!(err.kind(), kind, "{name}: {err}");
    let ok = call(&p, "ok", &self::limits())
        .await
        .unwrap_or_else(|e| panic!("{name} ?ok: {e}"));
    assert_eq!(
        (ok.status, ok.body.as_slice()),
        (200, &b"ok\n"[..]),
        "{name}"
    );
    assert_eq!(ok.headers, vec![("X-Guest".to_string(), b"ok".to_vec())]);
    err
}

#[tokio::test]
async fn ok_guest_answers() {
    let p = load("ok");
    assert_eq!(p.name(), "ok");
    assert_eq!(p.hash().len(), 64);
    let r = call(&p, "", &limits()).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers, vec![("X-Guest".to_string(), b"ok".to_vec())]);
    assert_eq!(r.body, b"hello from ok.wat\n");
    assert!(r.fuel_used > 0);
}

#[tokio::test]
async fn echo_guest_sees_the_encoded_request() {
    let p = load("echo");
    let req = GuestRequest {
        method: b"POST",
        target: b"/echo/a%20b?x=1",
        path: b"/echo/a%20b",
        query: b"x=1",
        version: b"HTTP/1.0",
        headers: vec![(b"Host", b"h"), (b"X-Bin", b"\xff\x00")],
        params: vec![(b"id", b"42"), (b"rest", b"a/b c")],
        body: b"the body\r\n",
        fields: Vec::new(),
    };
    let r = p
        .call(&req, &limits(), RequestId::from_bits(1), &env(), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.headers, vec![("X-Method".to_string(), b"POST".to_vec())]);
    assert_eq!(r.body, b"the body\r\n");
    // A body larger than the initial page makes the guest allocator grow memory.
    let big = vec![b'z'; 200_000];
    let req = GuestRequest { body: &big, ..req };
    let r = p
        .call(&req, &limits(), RequestId::from_bits(2), &env(), None)
        .await
        .unwrap();
    assert_eq!(r.body, big);
}

#[tokio::test]
async fn no_state_survives_between_requests() {
    let p = load("secret");
    for _ in 0..3 {
        let r = call(&p, "", &limits()).await.unwrap();
        assert_eq!(r.body, b"clean\n");
    }
}

#[tokio::test]
async fn infinite_loop_runs_out_of_fuel() {
    let _cpu = CPU_HEAVY.lock().await;
    let e = fails_then_recovers("infinite_loop", &limits(), "fuel_exhausted").await;
    assert_eq!(e.fuel_used(), limits().fuel);
}

#[tokio::test]
async fn spin_runs_out_of_fuel() {
    let _cpu = CPU_HEAVY.lock().await;
    fails_then_recovers("spin", &limits(), "fuel_exhausted").await;
}

#[tokio::test]
async fn spin_hits_the_deadline_when_fuel_is_plenty() {
    let _cpu = CPU_HEAVY.lock().await;
    let l = PluginLimits {
        fuel: u64::MAX / 2,
        deadline: Duration::from_millis(100),
        ..limits()
    };
    let t = Instant::now();
    let e = fails_then_recovers("spin", &l, "deadline").await;
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(e.fuel_used() > 0);
}

#[tokio::test]
async fn memory_growth_is_a_memory_limit_not_a_trap() {
    let e = fails_then_recovers("memory_growth", &limits(), "memory_limit").await;
    assert!(matches!(e, CallError::MemoryLimit { limit_bytes, .. } if limit_bytes == 4 << 20));
}

#[tokio::test]
async fn deep_recursion_is_a_stack_overflow_trap() {
    let e = fails_then_recovers("deep_recursion", &limits(), "trap").await;
    assert!(e.to_string().contains("stack overflow"), "{e}");
}

#[tokio::test]
async fn unreachable_trap_carries_the_guest_stderr() {
    let e = fails_then_recovers("unreachable", &limits(), "trap").await;
    let tail = e.stderr_tail().unwrap();
    assert!(
        tail.contains("panicked at unreachable.wat:1:1:\nboom!!"),
        "{tail:?}"
    );
    assert!(e.to_string().contains("unreachable"), "{e}");
}

#[tokio::test]
async fn malformed_response_is_invalid() {
    let e = fails_then_recovers("malformed_response", &limits(), "invalid_response").await;
    let CallError::InvalidResponse { reason, .. } = e else {
        unreachable!()
    };
    assert!(
        matches!(
            reason,
            ResponseError::Decode(
                wasmgate_abi::DecodeError::LengthPastEnd { .. }
                    | wasmgate_abi::DecodeError::Truncated { .. }
            )
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn crlf_in_a_header_value_is_invalid() {
    let e = fails_then_recovers("crlf_header", &limits(), "invalid_response").await;
    let CallError::InvalidResponse { reason, .. } = e else {
        unreachable!()
    };
    assert_eq!(
        reason,
        ResponseError::Refused(wasmgate_abi::Refusal::HeaderValue { name: "X-A".into() })
    );
}

#[tokio::test]
async fn oversize_response_is_invalid() {
    let e = fails_then_recovers("oversize_response", &limits(), "invalid_response").await;
    let CallError::InvalidResponse { reason, .. } = e else {
        unreachable!()
    };
    assert!(
        matches!(
            reason,
            ResponseError::Range(wasmgate_abi::RangeError::TooLarge {
                len: 0x0100_0000,
                ..
            })
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn bad_status_is_invalid() {
    let e = fails_then_recovers("bad_status", &limits(), "invalid_response").await;
    let CallError::InvalidResponse { reason, .. } = e else {
        unreachable!()
    };
    assert_eq!(
        reason,
        ResponseError::Refused(wasmgate_abi::Refusal::Status(99))
    );
}

#[test]
fn missing_export_is_named_with_its_expected_type() {
    let e = load_err("missing_export");
    assert_eq!(e.kind(), LoadErrorKind::Abi);
    let msg = e.to_string();
    assert!(msg.contains("missing export `wasmgate_handle`"), "{msg}");
    assert!(msg.contains("(i32, i32) -> i64"), "{msg}");
}

#[test]
fn wrong_abi_version_is_refused() {
    let e = load_err("wrong_abi_version");
    assert!(
        matches!(&e, LoadError::Abi { problems, .. } if problems == &[AbiProblem::WrongVersion { found: 3 }]),
        "{e}"
    );
}

#[test]
fn foreign_import_is_refused() {
    let e = load_err("bad_import");
    assert_eq!(e.kind(), LoadErrorKind::Abi);
    assert!(e.to_string().contains("import `env.foo`"), "{e}");
}

const EXPORTS: &str = r#"
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))"#;

#[test]
fn mistyped_export_names_found_and_expected_types() {
    let wat = format!(
        r#"(module {EXPORTS} (func (export "wasmgate_handle") (param i32) (result i64) (i64.const 0)))"#
    );
    let msg = load_wat_err(&wat).to_string();
    assert!(
        msg.contains(
            "export `wasmgate_handle` is a function (i32) -> i64, the ABI expects a function (i32, i32) -> i64"
        ),
        "{msg}"
    );
}

#[test]
fn mistyped_and_unknown_wasi_imports_are_refused() {
    let wat = format!(
        r#"(module
          (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))
          (import "wasi_snapshot_preview1" "no_such_call" (func))
          {EXPORTS}
          (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const 0)))"#
    );
    let msg = load_wat_err(&wat).to_string();
    assert!(
        msg.contains("import `wasi_snapshot_preview1.fd_write` has type (i32) -> i32, the ABI defines (i32, i32, i32, i32) -> i32"),
        "{msg}"
    );
    assert!(
        msg.contains("`wasi_snapshot_preview1.no_such_call` is not a WASI preview 1 function"),
        "{msg}"
    );
}

#[test]
fn garbage_does_not_compile_and_wasm_extension_needs_a_binary() {
    assert_eq!(load_wat_err("(module").kind(), LoadErrorKind::Compile);
    let path =
        std::env::temp_dir().join(format!("wasmgate-not-binary-{}.wasm", std::process::id()));
    std::fs::write(&path, "(module)").unwrap();
    let e = runtime()
        .load(
            "x",
            &path,
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert_eq!(e.kind(), LoadErrorKind::Compile);
    assert!(e.to_string().contains("not a wasm binary"), "{e}");
    let e = runtime()
        .load(
            "x",
            std::path::Path::new("/nonexistent/x.wasm"),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), LoadErrorKind::Io);
}

#[test]
fn a_granted_directory_must_exist() {
    let grants = PluginGrants {
        env: vec![],
        dirs: vec![DirGrant {
            host: "/nonexistent/dir".into(),
            guest: "/data".into(),
        }],
        ..PluginGrants::default()
    };
    let e = runtime()
        .load("ok", &guest_path("ok"), &grants, &PluginLimits::default())
        .unwrap_err();
    assert_eq!(e.kind(), LoadErrorKind::Grant);
}

/// Reports what the sandbox grants: status = 200 + 10 x (number of env vars) + (1 if fd 3 is a
/// preopened directory).
const GRANTS_PROBE: &str = r#"(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (drop (call $env (i32.const 256) (i32.const 260)))
    (i32.store (i32.const 300)
      (i32.add (i32.const 200)
        (i32.add (i32.mul (i32.load (i32.const 256)) (i32.const 10))
                 (i32.eqz (call $prestat (i32.const 3) (i32.const 264))))))
    (i64.const 0x0000012c0000000c)))"#;

#[tokio::test]
async fn sandbox_is_empty_unless_granted() {
    let bare = runtime()
        .load_bytes(
            "grants",
            GRANTS_PROBE.as_bytes(),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap();
    assert_eq!(call(&bare, "", &limits()).await.unwrap().status, 200);
    let grants = PluginGrants {
        // PATH is set wherever tests run; the other one is not, and is skipped.
        env: vec!["PATH".into(), "WASMGATE_TEST_SURELY_UNSET_VAR".into()],
        dirs: vec![DirGrant {
            host: std::env::temp_dir(),
            guest: "/tmp".into(),
        }],
        ..PluginGrants::default()
    };
    let granted = runtime()
        .load_bytes(
            "grants",
            GRANTS_PROBE.as_bytes(),
            &grants,
            &PluginLimits::default(),
        )
        .unwrap();
    assert_eq!(call(&granted, "", &limits()).await.unwrap().status, 211);
}

/// Sleeps 10 s in WASI `poll_oneoff` (a clock subscription on the monotonic clock): no wasm runs,
/// so no epoch check either; only the call's tokio timeout can end it.
const SLEEPER: &str = r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; subscription at 256: userdata 0 | tag 0 (clock) | id 1 (monotonic) | timeout 10 s | 0 | 0
  (data (i32.const 272) "\01\00\00\00\00\00\00\00" "\00\e4\0b\54\02\00\00\00")
  (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
  (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "wasmgate_handle") (param i32 i32) (result i64)
    (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600)))
    (i64.const 0)))"#;

/// `_initialize` sleeping 300 ms in a host call: the load check waits for it within
/// `load_check_deadline`, and refuses the plugin as `deadline` when that is shorter.
#[test]
fn the_load_check_is_bounded_by_its_own_deadline() {
    let wat = SLEEPER
        .replace(r"\00\e4\0b\54\02\00\00\00", r"\00\a3\e1\11\00\00\00\00")
        .replace(
            r#"(func (export "wasmgate_abi_version")"#,
            r#"(func (export "_initialize")
    (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600))))
  (func (export "wasmgate_abi_version")"#,
        );
    let load = |load_check_deadline| {
        Runtime::new(&RuntimeSettings {
            max_instances: 2,
            max_memory_bytes: 1024 * 1024,
            load_check_deadline,
            ..RuntimeSettings::default()
        })
        .unwrap()
        .load_bytes(
            "slow_init",
            wat.as_bytes(),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
    };
    match load(Duration::from_millis(100)) {
        Err(LoadError::Check { cause, .. }) => assert_eq!(cause.kind(), "deadline"),
        other => panic!("expected a check deadline, got {other:?}"),
    }
    let t = Instant::now();
    load(RuntimeSettings::default().load_check_deadline).expect("a slow but valid plugin loads");
    assert!(t.elapsed() >= Duration::from_millis(300), "_initialize ran");
}

#[tokio::test]
async fn a_guest_asleep_in_a_host_call_still_meets_its_deadline() {
    let p = runtime()
        .load_bytes(
            "sleeper",
            SLEEPER.as_bytes(),
            &PluginGrants::default(),
            &PluginLimits::default(),
        )
        .unwrap();
    let l = PluginLimits {
        deadline: Duration::from_millis(100),
        ..limits()
    };
    let t = Instant::now();
    assert_eq!(call(&p, "", &l).await.unwrap_err().kind(), "deadline");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test]
async fn alloc_returning_zero_or_a_bad_pointer_is_a_trap() {
    for (alloc, needle) in [("0", "returned 0"), ("0x7ffffff0", "not ")] {
        let wat = format!(
            r#"(module
              (memory (export "memory") 1)
              (func (export "wasmgate_abi_version") (result i32) (i32.const 1))
              (func (export "wasmgate_alloc") (param i32) (result i32) (i32.const {alloc}))
              (func (export "wasmgate_handle") (param i32 i32) (result i64) (i64.const 0)))"#
        );
        let p = runtime()
            .load_bytes(
                "alloc",
                wat.as_bytes(),
                &PluginGrants::default(),
                &PluginLimits::default(),
            )
            .unwrap();
        let e = call(&p, "", &limits()).await.unwrap_err();
        assert_eq!(e.kind(), "trap");
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[tokio::test]
async fn a_module_too_big_for_its_memory_limit_fails_as_memory_limit() {
    let p = load("ok");
    let l = PluginLimits {
        max_memory_bytes: 0,
        ..limits()
    };
    assert_eq!(call(&p, "", &l).await.unwrap_err().kind(), "memory_limit");
}

#[tokio::test]
async fn calls_wait_for_a_free_instance_slot() {
    let _cpu = CPU_HEAVY.lock().await;
    let rt = Runtime::new(&RuntimeSettings {
        max_instances: 1,
        max_memory_bytes: 16 * 1024 * 1024,
        ..RuntimeSettings::default()
    })
    .unwrap();
    let g = PluginGrants::default();
    let spin = rt
        .load("spin", &guest_path("spin"), &g, &PluginLimits::default())
        .unwrap();
    let ok = rt
        .load("ok", &guest_path("ok"), &g, &PluginLimits::default())
        .unwrap();
    let slow = PluginLimits {
        fuel: u64::MAX / 2,
        deadline: Duration::from_millis(100),
        ..limits()
    };
    let normal = limits();
    let (a, b) = tokio::join!(call(&spin, "", &slow), call(&ok, "", &normal));
    assert_eq!(a.unwrap_err().kind(), "deadline");
    assert_eq!(b.unwrap().status, 200);
}

/// Collects formatted tracing output.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;
    fn make_writer(&'a self) -> LogBuf {
        self.clone()
    }
}

#[tokio::test]
async fn guest_stderr_is_logged_line_by_line_with_plugin_and_request_id() {
    let p = load("unreachable");
    let buf = LogBuf::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(sub);
    let _ = call(&p, "", &limits()).await;
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("wasmgate::guest"))
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("panicked at unreachable.wat:1:1:"),
        "{log}"
    );
    assert!(lines[1].contains("boom!!"), "{log}");
    for l in lines {
        assert!(
            l.contains("plugin=\"unreachable\"") || l.contains("plugin=unreachable"),
            "{l}"
        );
        assert!(
            l.contains("request_id=0000000000000007") && l.contains("stream=\"stderr\""),
            "{l}"
        );
    }
}

/// The features docs/ABI.md lists as off are refused at load, naming the proposal; those it lists
/// as on compile (the module may still fail the ABI checks, but not for its features).
#[test]
fn wasm_features_off_are_refused_by_name_and_on_ones_compile() {
    for (wat, kind, feature) in [
        (
            "(module (memory i64 1))",
            LoadErrorKind::Compile,
            "memory64",
        ),
        // Caught before compiling, in wasmgate's words (`resources`).
        (
            "(module (memory 1 1 shared))",
            LoadErrorKind::Limits,
            "threads",
        ),
        ("(module (type (struct)))", LoadErrorKind::Compile, "gc"),
        ("(module (tag))", LoadErrorKind::Compile, "exceptions"),
    ] {
        let e = load_wat_err(wat);
        assert_eq!(e.kind(), kind, "{wat}: {e}");
        assert!(e.to_string().contains(feature), "{wat}: {e}");
    }
    for wat in [
        "(module (func (result v128) (v128.const i64x2 0 0)))",
        "(module (func $f (return_call $f)))",
    ] {
        let e = load_wat_err(wat);
        assert_eq!(e.kind(), LoadErrorKind::Abi, "{wat} compiles: {e}");
    }
}
