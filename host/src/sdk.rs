//! The guest SDK this binary carries, and its copy in a project.
//!
//! A plugin crate depends on `wasmgate-sdk` by path, and the SDK is not on a registry: so the
//! binary carries it (packed by `build.rs`) and writes it into the project that uses it, at
//! [`SDK_DIR`] under the project root (beside `plugins/`). A workspace refers to it by a relative
//! path, so a project can be moved, cloned or committed: whoever builds it with `wasmgate build`
//! gets the copy rewritten from their binary when it is missing or differs (the copy's stamp file
//! holds the digest of what was written), so plugins are always built against the SDK of the host
//! that serves them. A workspace that names another SDK (this repository's `guest-sdk`, or one the
//! user chose) is never touched. Owns nothing else: not the workspace's manifest, not cargo.

use std::path::{Path, PathBuf};

mod packed {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// Where a project's copy lives, relative to the project root (the config file's directory).
pub const SDK_DIR: &str = ".wasmgate/sdk";

/// The path a plugin workspace (`<root>/plugins/Cargo.toml`) gives for `wasmgate-sdk`.
pub const WORKSPACE_DEPENDENCY_PATH: &str = "../.wasmgate/sdk/wasmgate-sdk";

/// The stamp file in the copy: the digest of what was written.
const STAMP: &str = ".wasmgate-sdk-digest";

/// Why the SDK could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the guest SDK into {}: {source}", dir.display())]
pub struct SdkError {
    dir: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Makes `<root>/.wasmgate/sdk` this binary's SDK: written whole when missing or stale (into a
/// temporary directory renamed into place, so an interrupted write leaves no half copy), left
/// alone when current. Returns whether it wrote.
pub fn ensure(root: &Path) -> Result<bool, SdkError> {
    let dir = root.join(SDK_DIR);
    let err = |source| SdkError {
        dir: dir.clone(),
        source,
    };
    if std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s.trim() == packed::DIGEST) {
        return Ok(false);
    }
    let tmp = root.join(format!("{SDK_DIR}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (rel, content) in packed::FILES {
        let path = tmp.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        std::fs::write(&path, content).map_err(err)?;
    }
    std::fs::write(tmp.join(STAMP), format!("{}\n", packed::DIGEST)).map_err(err)?;
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another `wasmgate` wrote the same copy meanwhile (two builds at once): that will do.
        if std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s.trim() == packed::DIGEST) {
            return Ok(false);
        }
        return Err(err(e));
    }
    Ok(true)
}

/// Whether the plugin workspace manifest `text` uses the copy this binary manages.
pub fn is_used_by(workspace_manifest: &str) -> bool {
    workspace_manifest.contains(WORKSPACE_DEPENDENCY_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wasmgate-sdk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_packed_sdk_is_standalone_and_complete() {
        let file = |rel: &str| {
            packed::FILES
                .iter()
                .find(|(p, _)| *p == rel)
                .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
                .unwrap_or_else(|| panic!("{rel} is packed"))
        };
        for name in ["wasmgate-sdk", "wasmgate-abi", "wasmgate-http"] {
            let manifest = file(&format!("{name}/Cargo.toml"));
            assert!(!manifest.contains("workspace"), "{manifest}");
            assert!(!manifest.contains("dev-dependencies"), "{manifest}");
            assert!(file(&format!("{name}/src/lib.rs")).contains("//!"));
        }
        let sdk = file("wasmgate-sdk/Cargo.toml");
        assert!(sdk.contains("path = \"../wasmgate-abi\""), "{sdk}");
        assert!(sdk.contains("edition = \"2024\""), "{sdk}");
        assert!(file("c/wasmgate.h").contains("wasmgate"));
        // Nothing names the machine the binary was built on.
        let here = env!("CARGO_MANIFEST_DIR");
        for (rel, content) in packed::FILES {
            let text = String::from_utf8_lossy(content);
            assert!(!text.contains(here), "{rel} names {here}");
        }
    }

    #[test]
    fn ensure_writes_once_and_refreshes_a_stale_or_damaged_copy() {
        let root = temp("ensure");
        assert!(ensure(&root).unwrap(), "written when missing");
        assert!(!ensure(&root).unwrap(), "left alone when current");
        let lib = root.join(SDK_DIR).join("wasmgate-sdk/src/lib.rs");
        std::fs::write(&lib, "edited").unwrap();
        std::fs::write(root.join(SDK_DIR).join(STAMP), "older\n").unwrap();
        assert!(ensure(&root).unwrap(), "a stale copy is rewritten");
        assert_ne!(std::fs::read_to_string(&lib).unwrap(), "edited");
        let leftovers: Vec<_> = std::fs::read_dir(root.join(".wasmgate"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["sdk"], "no temporary directory left");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn an_unwritable_root_is_an_error_naming_the_directory() {
        let root = temp("unwritable");
        std::fs::write(root.join(".wasmgate"), "a file where a directory must be").unwrap();
        let err = ensure(&root).unwrap_err().to_string();
        assert!(err.contains(".wasmgate/sdk"), "{err}");
        std::fs::remove_dir_all(root).unwrap();
    }
}
