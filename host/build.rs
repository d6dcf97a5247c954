//! Packs the guest SDK into the binary, so that `wasmgate new` and `wasmgate build` can write a
//! buildable plugin workspace anywhere, with no checkout of this repository and no download.
//!
//! Packs `guest-sdk` and the two crates it depends on (`crates/abi`, `crates/http`): each crate's
//! `src/` as it is, and its `Cargo.toml` made standalone (workspace-inherited keys and
//! dependencies resolved from the root manifest, path dependencies pointing at their packed
//! siblings, dev-dependencies and other targets dropped: a dependency is never tested from there).
//! Also packs the C header. Generates `$OUT_DIR/sdk_files.rs`: the files, and a digest of them all
//! that tells a project's copy is this binary's. Must not read anything outside those crates and
//! the root manifest.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The packed crates: package name and directory relative to the repository root.
const CRATES: [(&str, &str); 3] = [
    ("wasmgate-sdk", "guest-sdk"),
    ("wasmgate-abi", "crates/abi"),
    ("wasmgate-http", "crates/http"),
];

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let repo = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let root_manifest = repo.join("Cargo.toml");
    println!("cargo::rerun-if-changed={}", root_manifest.display());
    let root: toml::Table = read(&root_manifest)
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", root_manifest.display()));

    // (path in the packed tree, file on disk)
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for (name, dir) in CRATES {
        let dir = repo.join(dir);
        println!(
            "cargo::rerun-if-changed={}",
            dir.join("Cargo.toml").display()
        );
        println!("cargo::rerun-if-changed={}", dir.join("src").display());
        let manifest = standalone_manifest(&read(&dir.join("Cargo.toml")), &root, name);
        let written = out.join("sdk").join(name).join("Cargo.toml");
        std::fs::create_dir_all(written.parent().unwrap()).unwrap();
        std::fs::write(&written, manifest).unwrap();
        files.push((format!("{name}/Cargo.toml"), written));
        let mut sources = Vec::new();
        walk(&dir.join("src"), &mut sources);
        sources.sort();
        for path in sources {
            let rel = path
                .strip_prefix(&dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.push((format!("{name}/{rel}"), path));
        }
    }
    let header = repo.join("guest-sdk/c/wasmgate.h");
    println!("cargo::rerun-if-changed={}", header.display());
    files.push(("c/wasmgate.h".to_string(), header));

    // FNV-1a over every path and content: changes whenever any packed byte does.
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            digest = (digest ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    let mut generated =
        String::from("/// The packed SDK: (path under the SDK directory, content).\n");
    generated.push_str("pub(crate) const FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &files {
        feed(rel.as_bytes());
        feed(&[0]);
        feed(&std::fs::read(path).unwrap());
        feed(&[0]);
        let _ = writeln!(
            generated,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    generated.push_str("];\n");
    let _ = writeln!(
        generated,
        "/// A digest of [`FILES`]: a project's copy with another stamp is refreshed.\n\
         pub(crate) const DIGEST: &str = \"{digest:016x}\";"
    );
    std::fs::write(out.join("sdk_files.rs"), generated).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the wasmgate binary packs the guest SDK from this repository: build it from \
             a checkout, e.g. `cargo install --path host`)",
            path.display()
        )
    })
}

fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, into);
        } else {
            into.push(path);
        }
    }
}

/// `text` (a member's manifest) without anything that needs this repository's workspace.
fn standalone_manifest(text: &str, root: &toml::Table, name: &str) -> String {
    let mut manifest: toml::Table = text.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
    let workspace = root["workspace"]
        .as_table()
        .expect("the root manifest is a workspace");
    let inherited_package = workspace["package"]
        .as_table()
        .expect("[workspace.package]");
    let inherited_deps = workspace["dependencies"]
        .as_table()
        .expect("[workspace.dependencies]");
    for section in [
        "dev-dependencies",
        "bench",
        "test",
        "example",
        "bin",
        "lints",
    ] {
        manifest.remove(section);
    }
    let package = manifest["package"].as_table_mut().expect("[package]");
    for (key, value) in package.iter_mut() {
        if is_inherited(value) {
            *value = inherited_package
                .get(key)
                .unwrap_or_else(|| panic!("{name}: `{key}.workspace = true` but the root has none"))
                .clone();
        }
    }
    package.insert("publish".into(), false.into());
    if let Some(deps) = manifest
        .get_mut("dependencies")
        .and_then(|d| d.as_table_mut())
    {
        for (dep, spec) in deps.iter_mut() {
            if CRATES.iter().any(|(packed, _)| packed == dep) {
                let mut local = toml::Table::new();
                local.insert("path".into(), format!("../{dep}").into());
                *spec = local.into();
            } else if is_inherited(spec) {
                let mut resolved = match inherited_deps.get(dep) {
                    Some(toml::Value::String(version)) => {
                        let mut t = toml::Table::new();
                        t.insert("version".into(), version.clone().into());
                        t
                    }
                    Some(toml::Value::Table(t)) => t.clone(),
                    _ => panic!("{name}: dependency `{dep}` inherits from a root that lacks it"),
                };
                if let Some(extra) = spec.get("features").and_then(|f| f.as_array()) {
                    let features = resolved
                        .entry("features")
                        .or_insert_with(|| toml::Value::Array(Vec::new()));
                    if let Some(list) = features.as_array_mut() {
                        list.extend(extra.iter().cloned());
                    }
                }
                *spec = resolved.into();
            }
        }
    }
    format!(
        "# Packed into the wasmgate binary from its repository; written here by `wasmgate new` and\n\
         # refreshed by `wasmgate build` when the binary's copy differs. Do not edit.\n{}",
        toml::to_string(&manifest).expect("a manifest serializes")
    )
}

fn is_inherited(value: &toml::Value) -> bool {
    value
        .as_table()
        .and_then(|t| t.get("workspace"))
        .and_then(toml::Value::as_bool)
        == Some(true)
}
