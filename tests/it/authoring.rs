//! The authoring commands through the real CLI: `check` and `new`.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use crate::support::{Site, repo_root};

/// Runs `wasmgate ARGS` in `dir` to completion: exit code, stdout, stderr.
pub(crate) fn wasmgate(args: &[&str], dir: &Path) -> anyhow::Result<(i32, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmgate-it-server"))
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("running wasmgate {args:?}"))?;
    let code = out
        .status
        .code()
        .with_context(|| format!("wasmgate {args:?} ended by a signal"))?;
    Ok((
        code,
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    ))
}

#[test]
fn check_prints_exports_imports_version_and_limits() -> anyhow::Result<()> {
    let (code, out, err) = wasmgate(&["check", "tests/guests/unreachable.wat"], &repo_root())?;
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
    Ok(())
}

#[test]
fn check_names_what_is_wrong_and_what_the_abi_expects() -> anyhow::Result<()> {
    let (code, _, err) = wasmgate(&["check", "tests/guests/missing_export.wat"], &repo_root())?;
    assert_eq!(code, 1);
    assert!(
        err.contains("wasmgate_handle") && err.contains("(i32, i32) -> i64"),
        "{err}"
    );
    let (code, _, err) = wasmgate(&["check", "tests/guests/bad_import.wat"], &repo_root())?;
    assert_eq!(code, 1);
    assert!(
        err.contains("env") && err.contains("wasi_snapshot_preview1"),
        "{err}"
    );
    let (code, _, err) = wasmgate(&["check", "no/such.wasm"], &repo_root())?;
    assert_eq!(code, 1);
    assert!(err.contains("no/such.wasm"), "{err}");
    Ok(())
}

#[test]
fn new_refuses_with_the_reason_through_the_cli() -> anyhow::Result<()> {
    let site = Site::new("authoring")?;
    let dir = site.dir();
    let (code, out, err) = wasmgate(
        &["new", "api", "--route", "/api/:id", "--method", "POST"],
        dir,
    )?;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("added route POST /api/:id -> api"), "{out}");
    let (code, _, err) = wasmgate(&["new", "api"], dir)?;
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = wasmgate(
        &["new", "other", "--route", "/api/:key", "--method", "POST"],
        dir,
    )?;
    assert_eq!(code, 2, "a would-be config error");
    assert!(
        err.contains("wasmgate.toml:") && err.contains("use one name"),
        "{err}"
    );
    Ok(())
}
