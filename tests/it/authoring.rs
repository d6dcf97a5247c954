//! The authoring commands through the real CLI: `check` and `new`.

use std::process::Command;

use crate::support::repo_root;

fn wasmgate(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmgate-it-server"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_prints_exports_imports_version_and_limits() {
    let (code, out, err) = wasmgate(&["check", "tests/guests/unreachable.wat"], &repo_root());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("tests/guests/unreachable.wat: ok, ABI version 1"),
        "{out}"
    );
    assert!(
        out.contains("wasmgate_handle") && out.contains("function (i32, i32) -> i64"),
        "{out}"
    );
    assert!(out.contains("wasi_snapshot_preview1::fd_write"), "{out}");
    assert!(
        out.contains("fuel 100000000") && out.contains("[plugin_defaults]"),
        "{out}"
    );
}

#[test]
fn check_names_what_is_wrong_and_what_the_abi_expects() {
    let (code, _, err) = wasmgate(&["check", "tests/guests/missing_export.wat"], &repo_root());
    assert_eq!(code, 1);
    assert!(
        err.contains("wasmgate_handle") && err.contains("(i32, i32) -> i64"),
        "{err}"
    );
    let (code, _, err) = wasmgate(&["check", "tests/guests/bad_import.wat"], &repo_root());
    assert_eq!(code, 1);
    assert!(
        err.contains("env") && err.contains("wasi_snapshot_preview1"),
        "{err}"
    );
    let (code, _, err) = wasmgate(&["check", "no/such.wasm"], &repo_root());
    assert_eq!(code, 1);
    assert!(err.contains("no/such.wasm"), "{err}");
}

#[test]
fn new_refuses_with_the_reason_through_the_cli() {
    let dir = std::env::temp_dir().join(format!("wasmgate-authoring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (code, out, err) = wasmgate(
        &["new", "api", "--route", "/api/:id", "--method", "POST"],
        &dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added route POST /api/:id -> api"), "{out}");
    let (code, _, err) = wasmgate(&["new", "api"], &dir);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = wasmgate(
        &["new", "other", "--route", "/api/:key", "--method", "POST"],
        &dir,
    );
    assert_eq!(code, 2, "a would-be config error");
    assert!(
        err.contains("wasmgate.toml:") && err.contains("use one name"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
