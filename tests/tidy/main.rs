//! Tidy tests: the invariants of ARCHITECTURE.md that the compiler cannot hold, checked on the
//! source tree (the way rust-analyzer's `tidy` does), so a change that breaks one fails here
//! with the file and line to fix.
//!
//! Each test names the invariant it guards. They read files only: no build, no network, no
//! process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The crates of the workspace: (name, source directory).
fn crates() -> Vec<(&'static str, PathBuf)> {
    let r = root();
    vec![
        ("wasmgate-http", r.join("crates/http/src")),
        ("wasmgate-abi", r.join("crates/abi/src")),
        ("wasmgate-server", r.join("crates/server/src")),
        ("wasmgate", r.join("host/src")),
        ("wasmgate-sdk", r.join("guest-sdk/src")),
        ("wasmgate-tests", r.join("tests")),
    ]
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The code of a file without comments and string literals, so that the word `unsafe` in a doc
/// comment, a `// SAFETY:` note or a generated source text is not counted as code. Line-based:
/// good enough for this tree, which has no multi-line strings naming the keyword.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, String)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let code = without_strings(l.split("//").next().unwrap_or(""));
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

/// `line` with the contents of its `"..."` literals removed (escapes honoured; a `'"'` char
/// literal is left alone).
fn without_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_string = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => {
                in_string = false;
                out.push('"');
            }
            (true, _) => {}
            (false, '\'') if chars.peek() == Some(&'"') => {
                out.push_str("'\"");
                chars.next();
            }
            (false, '"') => {
                in_string = true;
                out.push('"');
            }
            (false, _) => out.push(c),
        }
    }
    out
}

/// Invariant: `unsafe` lives in one file per crate (the crate's `sys` module, at the boundary
/// with the OS or the ABI), and every crate root denies it everywhere else.
#[test]
fn unsafe_code_lives_only_in_each_crates_sys_module() {
    let allowed: BTreeSet<PathBuf> = [
        "crates/server/src/sys.rs",
        "guest-sdk/src/sys.rs",
        "tests/it/support/sys.rs",
        // The tidy test itself names the keyword it looks for.
        "tests/tidy/main.rs",
    ]
    .iter()
    .map(|p| root().join(p))
    .collect();
    let mut offenders = Vec::new();
    for (_, dir) in crates() {
        for file in rust_files(&dir) {
            if allowed.contains(&file) {
                continue;
            }
            let text = read(&file);
            for (line, code) in code_lines(&text) {
                let words = code.split(|c: char| !c.is_alphanumeric() && c != '_');
                if words.into_iter().any(|w| w == "unsafe") {
                    offenders.push(format!("{}:{line}: {}", file.display(), code.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "`unsafe` outside the sys modules:\n{}",
        offenders.join("\n")
    );
    for root_file in [
        "crates/http/src/lib.rs",
        "crates/abi/src/lib.rs",
        "crates/server/src/lib.rs",
        "host/src/lib.rs",
        "guest-sdk/src/lib.rs",
        "tests/it/main.rs",
    ] {
        let text = read(&root().join(root_file));
        assert!(
            text.contains("#![deny(unsafe_code)]") || text.contains("#![forbid(unsafe_code)]"),
            "{root_file} must deny (or forbid) unsafe_code"
        );
    }
}

/// The top-level module a `.rs` file belongs to, relative to its crate's `src` directory:
/// `server/conn/mod.rs` -> `server`, `routes.rs` -> `routes`, `lib.rs` -> none.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// Whether a file is test code (its imports may reach anywhere).
fn is_test_file(file: &Path) -> bool {
    file.components()
        .any(|c| matches!(c.as_os_str().to_str(), Some("tests" | "tests.rs")))
        || file
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with("_tests.rs"))
}

/// Which top-level modules each top-level module of the crate at `src` names (`crate::x`), from
/// non-test code (a `#[cfg(test)] mod tests` block at the end of a file is cut off).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let Some(from) = top_module(src, &file) else {
            continue;
        };
        if is_test_file(&file) {
            continue;
        }
        let text = read(&file);
        let production = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let deps = graph.entry(from.clone()).or_default();
        for (_, code) in code_lines(production) {
            let mut rest = code.as_str();
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != from {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one, as the list of modules around it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|n| n == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// Invariant: no import cycles between the top-level modules of any crate, so each module can be
/// read (and tested) knowing only what it imports. Method: every `crate::<module>` path in
/// non-test code is an edge from the file's top-level module to `<module>`.
#[test]
fn no_import_cycles_between_modules() {
    for (name, dir) in crates() {
        if name == "wasmgate-tests" {
            continue;
        }
        let graph = module_graph(&dir);
        if let Some(cycle) = find_cycle(&graph) {
            panic!("{name} has an import cycle: {}", cycle.join(" -> "));
        }
    }
}

/// The cycle finder finds cycles (a check that cannot fail would prove nothing).
#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

/// The packages `package` depends on for building (not dev-dependencies), transitively. A
/// workspace crate's own dependencies come from its manifest, because Cargo.lock lists its
/// dev-dependencies too; a registry crate's come from Cargo.lock, which lists only what it needs
/// to build.
fn dependency_closure(package: &str) -> BTreeSet<String> {
    let lock: toml::Table = read(&root().join("Cargo.lock"))
        .parse()
        .expect("Cargo.lock is TOML");
    let packages = lock["package"].as_array().expect("packages");
    let locked_deps = |name: &str| -> Vec<String> {
        packages
            .iter()
            .filter(|p| p["name"].as_str() == Some(name))
            .flat_map(|p| p.get("dependencies").and_then(|d| d.as_array()).cloned())
            .flatten()
            .filter_map(|d| {
                d.as_str()
                    .map(|s| s.split(' ').next().unwrap_or(s).to_string())
            })
            .collect()
    };
    let deps_of = |name: &str| manifest_deps(name).unwrap_or_else(|| locked_deps(name));
    let mut todo = deps_of(package);
    let mut seen = BTreeSet::new();
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone()) {
            todo.extend(deps_of(&p));
        }
    }
    seen
}

/// The `[dependencies]` of a workspace crate's manifest; `None` for a crate outside the workspace.
fn manifest_deps(package: &str) -> Option<Vec<String>> {
    let (_, src) = crates().into_iter().find(|(n, _)| *n == package)?;
    let dir = src.parent().expect("src has a parent");
    let manifest: toml::Table = read(&dir.join("Cargo.toml"))
        .parse()
        .expect("Cargo.toml is TOML");
    Some(
        manifest
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default(),
    )
}

/// Invariant: the protocol crate is usable on its own: no async runtime, no wasm engine, no
/// configuration system in its dependency graph (what `cargo tree -p wasmgate-http` shows).
/// The ABI crate, shared with guests compiled to wasm32, likewise.
#[test]
fn the_protocol_and_abi_crates_depend_on_no_runtime() {
    for package in ["wasmgate-http", "wasmgate-abi"] {
        let deps = dependency_closure(package);
        let forbidden: Vec<&String> = deps
            .iter()
            .filter(|d| {
                d.starts_with("tokio")
                    || d.starts_with("wasmtime")
                    || d.starts_with("wasmgate-server")
                    || *d == "toml"
                    || *d == "serde"
            })
            .collect();
        assert!(
            forbidden.is_empty(),
            "{package} depends on {forbidden:?} (all: {deps:?})"
        );
    }
}

/// Invariant: one statement of each rule. The RFC 9110 token characters are spelled out once
/// (crates/http/src/bytes.rs) and the ABI codec's length-prefixed strings are written once
/// (crates/abi), so host and guest cannot drift apart.
#[test]
fn the_token_rule_and_the_codec_are_written_once() {
    let tchar_literal = "'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`'";
    let tchar_string = "!#$%&'*+-.^_`|~\".contains";
    let mut token_rules = Vec::new();
    let mut codecs = Vec::new();
    for (name, dir) in crates() {
        for file in rust_files(&dir) {
            if file.ends_with("tidy/main.rs") {
                continue; // names the rule it looks for
            }
            let text = read(&file);
            if text.contains(tchar_literal) || text.contains(tchar_string) {
                token_rules.push(file.display().to_string());
            }
            // A length-prefixed string writer: a `u32` length in little-endian followed by the
            // bytes. Only the ABI crate may do that.
            if name != "wasmgate-abi"
                && text.contains("len() as u32).to_le_bytes()")
                && !is_test_file(&file)
            {
                codecs.push(file.display().to_string());
            }
        }
    }
    assert_eq!(
        token_rules,
        [root()
            .join("crates/http/src/bytes.rs")
            .display()
            .to_string()],
        "the tchar rule is written more than once"
    );
    assert!(
        codecs.is_empty(),
        "ABI encoders outside crates/abi: {codecs:?}"
    );
}

/// Invariant: every module says what it owns: each source file of the library crates opens with
/// a `//!` paragraph.
#[test]
fn every_module_opens_with_its_documentation() {
    let mut missing = Vec::new();
    for (name, dir) in crates() {
        if name == "wasmgate-tests" {
            continue;
        }
        for file in rust_files(&dir) {
            let text = read(&file);
            if !text.trim_start().starts_with("//!") {
                missing.push(file.display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "no `//!` paragraph: {missing:#?}");
}
