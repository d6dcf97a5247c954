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

/// `wasmgate serve --config wasmgate.toml --listen 127.0.0.1:0` in `dir`, for configurations it
/// must refuse before listening: exit code, stdout, stderr.
pub(crate) fn serve_config(dir: &Path) -> anyhow::Result<(i32, String, String)> {
    wasmgate(
        &[
            "serve",
            "--config",
            "wasmgate.toml",
            "--listen",
            "127.0.0.1:0",
        ],
        dir,
    )
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
    assert!(
        err.contains("already exists") && err.contains("--route"),
        "{err}"
    );
    let lines = std::fs::read_to_string(site.path("wasmgate.toml"))?
        .lines()
        .count();
    let (code, _, err) = wasmgate(
        &["new", "other", "--route", "/api/:key", "--method", "POST"],
        dir,
    )?;
    assert_eq!(code, 1, "{err}");
    // The refused text is the addition, not the file: no `wasmgate.toml:LINE` past its end, and
    // the reason once.
    assert!(
        err.contains("cannot add `POST /api/:key` to wasmgate.toml")
            && err.contains("use one name")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert!(
        !err.contains(&format!("wasmgate.toml:{}", lines + 1)),
        "{err}"
    );
    assert_eq!(err.matches("use one name").count(), 1, "{err}");
    assert!(!site.path("plugins/other").exists());
    Ok(())
}

#[test]
fn new_adds_a_route_to_an_existing_plugin() -> anyhow::Result<()> {
    let site = Site::new("authoring-route")?;
    let dir = site.dir();
    let (code, _, err) = wasmgate(&["new", "links", "--route", "/links"], dir)?;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = wasmgate(&["new", "links", "--route", "/l/:code"], dir)?;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("added route GET /l/:code -> links") && out.contains("Router"),
        "{out}"
    );
    assert!(!out.contains("created"), "no second crate: {out}");
    let config = std::fs::read_to_string(site.path("wasmgate.toml"))?;
    assert_eq!(config.matches("[plugins.links]").count(), 1, "{config}");
    assert_eq!(config.matches("plugin = \"links\"").count(), 2, "{config}");
    let manifest = std::fs::read_to_string(site.path("plugins/links/Cargo.toml"))?;
    assert!(
        manifest.contains("serde = { version = \"1\", features = [\"derive\"] }"),
        "{manifest}"
    );
    Ok(())
}

/// A plugin the configuration names but whose crate nobody created gets its crate from `new`, and
/// a route that is already there is refused naming it once and saying whose it is.
#[test]
fn new_creates_a_configured_plugins_missing_crate_and_names_a_duplicate_route_once()
-> anyhow::Result<()> {
    let site = Site::new("authoring-missing")?;
    let dir = site.dir();
    site.replace(
        "wasmgate.toml",
        "[plugins.snippets]\ncrate = \"plugins/snippets\"\n",
    )?;
    let (code, out, err) = wasmgate(
        &[
            "new",
            "snippets",
            "--route",
            "/snippets/:id",
            "--method",
            "DELETE",
        ],
        dir,
    )?;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("created") && out.contains("added route DELETE /snippets/:id -> snippets"),
        "{out}"
    );
    assert!(site.path("plugins/snippets/src/lib.rs").is_file());
    let before = std::fs::read_to_string(site.path("wasmgate.toml"))?;
    let (code, _, err) = wasmgate(
        &[
            "new",
            "snippets",
            "--route",
            "/snippets/:id",
            "--method",
            "DELETE",
        ],
        dir,
    )?;
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches("DELETE /snippets/:id").count(), 1, "{err}");
    assert!(
        err.contains("already there") && err.contains("plugin `snippets`"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(site.path("wasmgate.toml"))?, before);
    Ok(())
}

/// A module whose initial memory is larger than its plugin's `max_memory_bytes` is refused when
/// it loads (not at every request), by `check` and by the server, naming both sizes.
#[test]
fn a_module_starting_above_its_memory_limit_is_refused_at_load() -> anyhow::Result<()> {
    let site = Site::new("authoring-memory")?;
    let ok = std::fs::read_to_string(repo_root().join("tests/guests/ok.wat"))?;
    site.replace(
        "big.wat",
        ok.replace(
            "(memory (export \"memory\") 1)",
            "(memory (export \"memory\") 3)",
        ),
    )?;
    site.replace(
        "wasmgate.toml",
        "[plugins.big]\nwasm = \"big.wat\"\nmax_memory_bytes = \"128KiB\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/big\"\nplugin = \"big\"\n",
    )?;
    let (code, _, err) = wasmgate(&["check", "big.wat"], site.dir())?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("196608 bytes (3 pages") && err.contains("max_memory_bytes = 131072"),
        "{err}"
    );
    let server = site.start()?;
    assert_eq!(server.get("/big")?.status, 503);
    let metrics = server.metrics();
    assert!(
        metrics.contains(r#"wasmgate_plugin_last_error_info{plugin="big",kind="limits",error="#),
        "{metrics}"
    );
    // At the limit it loads.
    site.replace(
        "wasmgate.toml",
        "[plugins.big]\nwasm = \"big.wat\"\nmax_memory_bytes = \"192KiB\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/big\"\nplugin = \"big\"\n",
    )?;
    drop(server);
    let (code, _, err) = wasmgate(&["check", "big.wat"], site.dir())?;
    assert_eq!(code, 0, "{err}");
    Ok(())
}

/// `check` on a file two plugins mount checks it against each one's grants and limits, lists
/// what each is granted, and never prints a variable's value.
#[test]
fn check_shows_every_plugin_mounting_the_file_with_its_grants_but_no_secret() -> anyhow::Result<()>
{
    let site = Site::new("authoring-mounts")?;
    std::fs::copy(
        repo_root().join("tests/guests/greet_v2.wat"),
        site.path("greet.wat"),
    )?;
    std::fs::create_dir_all(site.path("data"))?;
    site.replace(
        "wasmgate.toml",
        "[plugins.a]\nwasm = \"greet.wat\"\nfuel = 1234\ndirs = [{ host = \"data\", guest = \"/data\" }]\n\
         [plugins.a.vars]\ngreeting = { value = \"s3cr3t-value\", secret = true }\n\
         [plugins.b]\nwasm = \"greet.wat\"\nfuel = 5678\n[plugins.b.vars]\n",
    )?;
    let (code, out, err) = wasmgate(&["check", "greet.wat"], site.dir())?;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("plugin `a`") && out.contains("fuel 1234"),
        "{out}"
    );
    assert!(
        out.contains("plugin `b`") && out.contains("fuel 5678"),
        "{out}"
    );
    assert!(out.contains("greeting (literal, secret)"), "{out}");
    assert!(out.contains("/data (read-only)"), "{out}");
    assert!(
        !out.contains("s3cr3t") && !err.contains("s3cr3t"),
        "{out}{err}"
    );
    Ok(())
}

/// A failure's reason is printed once, not once per level of its error chain.
#[test]
fn check_prints_a_load_failure_once() -> anyhow::Result<()> {
    let site = Site::new("authoring-once")?;
    let ok = std::fs::read_to_string(repo_root().join("tests/guests/ok.wat"))?;
    site.replace(
        "trap.wat",
        ok.replace(
            "(func (export \"wasmgate_abi_version\") (result i32) (i32.const 1))",
            "(func (export \"wasmgate_abi_version\") (result i32) unreachable)",
        ),
    )?;
    let (code, _, err) = wasmgate(&["check", "trap.wat"], site.dir())?;
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches("guest trapped").count(), 1, "{err}");
    assert_eq!(err.matches("unreachable").count(), 1, "{err}");
    Ok(())
}

/// `check` of a module before any plugin mounts it: the ABI verdict and the grants its imports
/// will need, exit 0, whatever an unrelated plugin of the config lacks; mounted by a plugin
/// without the grant, the check fails naming the grant; a broken module fails with the ABI's
/// reason, and a v1 module importing a host function is told about the version, not a grant.
#[test]
fn check_lists_the_grants_an_unmounted_module_needs() -> anyhow::Result<()> {
    let site = Site::new("authoring-needs")?;
    std::fs::copy(
        repo_root().join("tests/guests/greet_v2.wat"),
        site.path("greet.wat"),
    )?;
    let needs = "  vars (var_get): add a `[plugins.greet.vars]` table (its imports do not say \
                 which variables it reads)";

    // No config file: the embedded default, which does not mount it.
    let (code, out, err) = wasmgate(&["check", "greet.wat"], site.dir())?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("greet.wat: ok, ABI version 2"), "{out}");
    assert!(
        out.contains("grants it will need (from its imports"),
        "{out}"
    );
    assert!(out.contains(needs), "{out}");
    assert!(out.contains("not mounted by any plugin"), "{out}");

    // A config whose unrelated plugin reads an unset variable and a missing file.
    let unrelated = "[plugins.other]\nwasm = \"other.wat\"\n[plugins.other.vars]\n\
                     key = { env = \"WASMGATE_IT_SURELY_UNSET\" }\ntoken = { file = \"gone\" }\n";
    site.replace("wasmgate.toml", unrelated)?;
    let (code, out, err) = wasmgate(&["check", "greet.wat"], site.dir())?;
    assert_eq!(
        code, 0,
        "an unrelated plugin's variables are not checked: {out}{err}"
    );
    assert!(out.contains(needs), "{out}");
    // ... which `serve` refuses (the check is not lenient by accident: the config is that bad).
    let (code, _, err) = serve_config(site.dir())?;
    assert_eq!(code, 2, "{err}");

    // Mounted without the grant: refused, naming it.
    site.replace(
        "wasmgate.toml",
        format!("{unrelated}[plugins.greet]\nwasm = \"greet.wat\"\n"),
    )?;
    let (code, out, err) = wasmgate(&["check", "greet.wat"], site.dir())?;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(needs),
        "the needs are listed all the same: {out}"
    );
    assert!(
        out.contains("plugin `greet` in wasmgate.toml: refused"),
        "{out}"
    );
    assert!(
        err.contains(
            "import `wasmgate.var_get` is not granted: add a `[plugins.greet.vars]` table"
        ),
        "{err}"
    );
    // Granted, with its variable's source absent here: a note, not a failure.
    site.replace(
        "wasmgate.toml",
        format!(
            "{unrelated}[plugins.greet]\nwasm = \"greet.wat\"\n[plugins.greet.vars]\n\
             greeting = {{ env = \"WASMGATE_IT_SURELY_UNSET\" }}\n"
        ),
    )?;
    let (code, out, err) = wasmgate(&["check", "greet.wat"], site.dir())?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("plugin `greet` in wasmgate.toml: ok"), "{out}");
    assert!(
        out.contains(
            "note: variable `greeting`: the environment variable WASMGATE_IT_SURELY_UNSET is not \
             set here"
        ),
        "{out}"
    );

    // A broken module: the ABI's reason, non-zero.
    std::fs::remove_file(site.path("wasmgate.toml"))?;
    let ok = std::fs::read_to_string(repo_root().join("tests/guests/ok.wat"))?;
    site.replace(
        "broken.wat",
        ok.replace("\"wasmgate_handle\"", "\"wasmgate_handler\""),
    )?;
    let (code, out, err) = wasmgate(&["check", "broken.wat"], site.dir())?;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(
            "missing export `wasmgate_handle`: the ABI expects a function (i32, i32) -> i64"
        ),
        "{err}"
    );
    // A v1 module importing `var_get`: the version is the reason, not a grant.
    let greet = std::fs::read_to_string(site.path("greet.wat"))?;
    site.replace(
        "old.wat",
        greet.replace(
            "(func (export \"wasmgate_abi_version\") (result i32) (i32.const 2))",
            "(func (export \"wasmgate_abi_version\") (result i32) (i32.const 1))",
        ),
    )?;
    let (code, _, err) = wasmgate(&["check", "old.wat"], site.dir())?;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "import `wasmgate.var_get` needs ABI v2 (export `wasmgate_abi_version` returning 2)"
        ),
        "{err}"
    );
    assert!(!err.contains("not granted"), "{err}");
    Ok(())
}

/// The authoring commands need the crate list and the grants, never a deployment's secrets: an
/// unset environment variable or a missing secret file of some plugin fails neither `new` nor
/// `build` (while `serve` refuses that configuration).
#[test]
fn new_and_build_do_not_read_variable_values() -> anyhow::Result<()> {
    let site = Site::new("authoring-values")?;
    let config = "[plugins.other]\nwasm = \"other.wat\"\n[plugins.other.vars]\n\
                  key = { env = \"WASMGATE_IT_SURELY_UNSET\" }\ntoken = { file = \"gone\" }\n";
    site.replace("wasmgate.toml", config)?;
    let (code, _, err) = serve_config(site.dir())?;
    assert_eq!(code, 2, "serving reads the values: {err}");
    let (code, out, err) = wasmgate(&["build"], site.dir())?;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = wasmgate(&["new", "api", "--route", "/api/:id"], site.dir())?;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("added route GET /api/:id -> api"), "{out}");
    Ok(())
}
