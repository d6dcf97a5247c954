//! `wasmgate build`: compiles the plugin crates of `<root>/plugins` (a separate cargo workspace)
//! for `wasm32-wasip1` and returns the `.wasm` files.
//!
//! Owns making sure the wasm target is installed (adding it with rustup when possible, otherwise
//! saying exactly what to run) and invoking cargo so that it can never deadlock with an outer
//! cargo: the plugin build always uses its own target directory, `<root>/plugins/target`.
//! Writes the SDK copy a scaffolded workspace names when it is missing or stale (`sdk.rs`). Must
//! not load or run the modules (that is the runtime's job) and must not edit `plugins/`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The only target plugins are built for (docs/ABI.md: a wasip1 reactor).
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// Why `wasmgate build` failed. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `<root>/plugins/Cargo.toml` does not exist.
    #[error("no plugin workspace at {0} (expected a Cargo.toml there)")]
    NoWorkspace(PathBuf),
    /// The workspace uses the SDK copy this binary manages, and it could not be written.
    #[error(transparent)]
    Sdk(#[from] crate::sdk::SdkError),
    /// A plugin crate's directory has no Cargo.toml.
    #[error("plugin `{name}`: no crate at {dir} (expected a Cargo.toml there)")]
    MissingCrate { name: String, dir: PathBuf },
    /// The wasm target is not installed and could not be added.
    #[error(
        "the Rust target `{WASM_TARGET}` is not installed ({reason}); install it with:\n    {command}"
    )]
    TargetMissing { reason: String, command: String },
    /// A tool (cargo, rustup, rustc) could not be started at all.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// cargo ran and failed; its own diagnostics were already printed to stderr.
    #[error("cargo build of the plugins failed ({status}); see cargo's output above")]
    CargoFailed { status: std::process::ExitStatus },
    /// A plugin's `build` command ran and failed; its output was already printed.
    #[error("plugin `{name}`: its build command `{command}` failed ({status})")]
    CommandFailed {
        name: String,
        command: String,
        status: std::process::ExitStatus,
    },
    /// cargo succeeded but an expected module is not where it should be (e.g. the crate is not a
    /// `cdylib`, or its lib name differs from the package name).
    #[error(
        "plugin `{name}`: cargo succeeded but {path} does not exist (is the crate a `cdylib` whose \
         lib name is `{lib}`?)"
    )]
    MissingOutput {
        name: String,
        lib: String,
        path: PathBuf,
    },
}

impl BuildError {
    /// Stable label for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            BuildError::NoWorkspace(_) => "no_workspace",
            BuildError::Sdk(_) => "sdk",
            BuildError::MissingCrate { .. } => "missing_crate",
            BuildError::TargetMissing { .. } => "target_missing",
            BuildError::Spawn { .. } => "spawn",
            BuildError::CargoFailed { .. } => "cargo_failed",
            BuildError::CommandFailed { .. } => "command_failed",
            BuildError::MissingOutput { .. } => "missing_output",
        }
    }
}

/// Runs each plugin's `build` command (`(plugin name, command)`) with `sh -c` in `root` (the
/// configuration's directory, which relative paths in the command are relative to), one after the
/// other, stopping at the first failure. The commands' output goes to ours.
pub fn run_build_commands(root: &Path, commands: &[(String, String)]) -> Result<(), BuildError> {
    for (name, command) in commands {
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(root)
            .stdin(Stdio::null())
            .status()
            .map_err(|source| BuildError::Spawn {
                program: "sh".to_string(),
                source,
            })?;
        if !status.success() {
            return Err(BuildError::CommandFailed {
                name: name.clone(),
                command: command.clone(),
                status,
            });
        }
    }
    Ok(())
}

/// Builds `crates` (package name, crate directory) of the plugin workspace under `root` in
/// release mode for `wasm32-wasip1`. With `progress`, cargo prints its usual progress; without,
/// it runs `--quiet` (warnings and errors still print in full: cargo's stderr is passed through).
/// Returns `<root>/plugins/target/wasm32-wasip1/release/<lib>.wasm` for each crate, in order.
pub fn build_plugins(
    root: &Path,
    crates: &[(String, PathBuf)],
    progress: bool,
) -> Result<Vec<PathBuf>, BuildError> {
    // Absolute, because cargo runs with the workspace as its working directory: a relative root
    // (`--config wasmgate.toml` gives an empty one) would be resolved twice.
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let workspace = root.join("plugins");
    let manifest = workspace.join("Cargo.toml");
    let Ok(manifest_text) = std::fs::read_to_string(&manifest) else {
        return Err(BuildError::NoWorkspace(workspace));
    };
    // A project scaffolded by `wasmgate new` builds against the SDK of the binary that builds it
    // (written when missing, e.g. in a fresh clone; refreshed after an upgrade).
    if crate::sdk::is_used_by(&manifest_text) && crate::sdk::ensure(&root)? {
        eprintln!(
            "wasmgate: wrote the guest SDK of this wasmgate into {}",
            root.join(crate::sdk::SDK_DIR).display()
        );
    }
    for (name, dir) in crates {
        if !dir.join("Cargo.toml").is_file() {
            return Err(BuildError::MissingCrate {
                name: name.clone(),
                dir: dir.clone(),
            });
        }
    }
    ensure_target(&workspace)?;
    if crates.is_empty() {
        return Ok(Vec::new());
    }

    let target_dir = workspace.join("target");
    let mut cargo = Command::new(cargo_program());
    cargo
        .current_dir(&workspace)
        .arg("build")
        .arg("--release")
        .args(["--target", WASM_TARGET])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    if !progress {
        cargo.arg("--quiet");
    }
    for (name, _) in crates {
        cargo.args(["-p", name]);
    }
    // When we run under an outer cargo (tests, `cargo run`), its settings must not leak into the
    // plugin build: they name the host's target directory (whose build lock the outer cargo may
    // hold: deadlock) or host-only flags.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
    ] {
        cargo.env_remove(var);
    }
    cargo.stdin(Stdio::null());
    let status = cargo.status().map_err(|source| BuildError::Spawn {
        program: "cargo".into(),
        source,
    })?;
    if !status.success() {
        return Err(BuildError::CargoFailed { status });
    }

    let out_dir = target_dir.join(WASM_TARGET).join("release");
    crates
        .iter()
        .map(|(name, _)| {
            let lib = name.replace('-', "_");
            let path = out_dir.join(format!("{lib}.wasm"));
            if path.is_file() {
                Ok(path)
            } else {
                Err(BuildError::MissingOutput {
                    name: name.clone(),
                    lib,
                    path,
                })
            }
        })
        .collect()
}

/// The cargo an outer cargo told us about (same toolchain), else `cargo` from PATH.
fn cargo_program() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Makes sure `wasm32-wasip1` is installed for the toolchain that builds `workspace` (commands
/// run there so a `rust-toolchain.toml` applies): asks rustup, adds the target when missing, and
/// without rustup checks the compiler's sysroot.
fn ensure_target(workspace: &Path) -> Result<(), BuildError> {
    let add_command = format!("rustup target add {WASM_TARGET}");
    match run("rustup", &["target", "list", "--installed"], workspace) {
        Ok(out) if out.status.success() => {
            let listed = String::from_utf8_lossy(&out.stdout);
            if listed.lines().any(|l| l.trim() == WASM_TARGET) {
                return Ok(());
            }
            eprintln!("wasmgate: the `{WASM_TARGET}` target is missing; running `{add_command}`");
            let added = Command::new("rustup")
                .args(["target", "add", WASM_TARGET])
                .current_dir(workspace)
                .stdin(Stdio::null())
                .status();
            match added {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(BuildError::TargetMissing {
                    reason: format!("`{add_command}` failed ({s}), e.g. no network access"),
                    command: add_command,
                }),
                Err(e) => Err(BuildError::TargetMissing {
                    reason: format!("cannot run rustup: {e}"),
                    command: add_command,
                }),
            }
        }
        // No rustup (e.g. a distribution's Rust): look in the compiler's sysroot.
        _ => {
            let out = run("rustc", &["--print", "sysroot"], workspace).map_err(|source| {
                BuildError::Spawn {
                    program: "rustc".into(),
                    source,
                }
            })?;
            let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
                Ok(())
            } else {
                Err(BuildError::TargetMissing {
                    reason: format!(
                        "rustup is not available and {} has no `{WASM_TARGET}` standard library",
                        sysroot.display()
                    ),
                    command: format!(
                        "{add_command}   (with rustup; otherwise install your distribution's \
                         wasm32-wasip1 Rust standard library package)"
                    ),
                })
            }
        }
    }
}

fn run(program: &str, args: &[&str], dir: &Path) -> std::io::Result<std::process::Output> {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_workspace_is_named() {
        let root = std::env::temp_dir().join(format!("wasmgate-nows-{}", std::process::id()));
        let e = build_plugins(&root, &[], false).unwrap_err();
        assert_eq!(e.kind(), "no_workspace");
        assert!(e.to_string().contains("plugins"), "{e}");
    }

    #[test]
    fn an_sdk_copy_that_cannot_be_written_fails_the_build_before_cargo() {
        let root = std::env::temp_dir().join(format!("wasmgate-nosdk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("plugins")).unwrap();
        std::fs::write(
            root.join("plugins/Cargo.toml"),
            format!(
                "[workspace]\nmembers = []\n[workspace.dependencies]\n\
                 wasmgate-sdk = {{ path = \"{}\" }}\n",
                crate::sdk::WORKSPACE_DEPENDENCY_PATH
            ),
        )
        .unwrap();
        // A file where the copy's directory must go.
        std::fs::write(root.join(".wasmgate"), "").unwrap();
        let e = build_plugins(&root, &[], false).unwrap_err();
        assert_eq!(e.kind(), "sdk", "{e}");
        assert!(e.to_string().contains(".wasmgate/sdk"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn builds_a_tiny_plugin_workspace() {
        // Skipped where the target is absent and cannot be added (offline CI without it).
        let root = std::env::temp_dir().join(format!("wasmgate-build-{}", std::process::id()));
        let krate = root.join("plugins/tiny-plugin");
        std::fs::create_dir_all(krate.join("src")).unwrap();
        std::fs::write(
            root.join("plugins/Cargo.toml"),
            "[workspace]\nmembers = [\"tiny-plugin\"]\nresolver = \"3\"\n",
        )
        .unwrap();
        std::fs::write(
            krate.join("Cargo.toml"),
            "[package]\nname = \"tiny-plugin\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             [lib]\ncrate-type = [\"cdylib\"]\n",
        )
        .unwrap();
        std::fs::write(
            krate.join("src/lib.rs"),
            "#[unsafe(no_mangle)] pub extern \"C\" fn wasmgate_abi_version() -> i32 { 1 }\n",
        )
        .unwrap();
        let result = build_plugins(&root, &[("tiny-plugin".into(), krate)], false);
        match result {
            Ok(paths) => {
                assert_eq!(paths.len(), 1);
                assert!(
                    paths[0].ends_with("plugins/target/wasm32-wasip1/release/tiny_plugin.wasm")
                );
                assert!(std::fs::read(&paths[0]).unwrap().starts_with(b"\0asm"));
            }
            Err(BuildError::TargetMissing { .. }) => eprintln!("skipped: {WASM_TARGET} missing"),
            Err(e) => panic!("{e}"),
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
