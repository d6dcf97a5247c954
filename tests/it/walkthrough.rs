//! docs/writing-plugins.md, followed literally: the walk-through's commands are run (its
//! `wasmgate` is this build of the CLI), its code block is written where it says, and its requests
//! are sent, expecting exactly the answers the document shows. The document cannot rot.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{ChildServer, RawClient, repo_root};

/// One marked block of the document: the marker's words and the block's text.
struct Block {
    marker: String,
    text: String,
}

fn marked_blocks(doc: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(marker) = line
            .strip_prefix("<!-- walkthrough:")
            .and_then(|m| m.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().expect("a code block after the marker");
        assert!(
            fence.starts_with("```"),
            "marker {marker} must precede a code block"
        );
        let text: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        blocks.push(Block {
            marker: marker.to_string(),
            text: text.join("\n") + "\n",
        });
    }
    blocks
}

fn run(dir: &Path, line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut cmd = match words[0] {
        "wasmgate" => Command::new(env!("CARGO_BIN_EXE_wasmgate-it-server")),
        "cargo" => Command::new(env!("CARGO")),
        other => panic!("the walk-through runs `{other}`, which this test does not know"),
    };
    // The project's own plugins/target: never the cargo that runs this test's target directory.
    let out = cmd
        .args(&words[1..])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "`{line}` failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends one `curl -s [-X M] [-H 'h: v'] 'URL'` line to `addr` and checks `# STATUS JSON`.
fn request(addr: std::net::SocketAddr, curl: &str, expected: &str) {
    let mut method = "GET".to_string();
    let mut headers = String::new();
    let mut url = String::new();
    let parts: Vec<&str> = curl.split('\'').collect();
    let mut words = parts.iter().enumerate().flat_map(|(i, p)| {
        if i % 2 == 1 {
            vec![p.to_string()]
        } else {
            p.split_whitespace().map(str::to_string).collect()
        }
    });
    assert_eq!(words.next().as_deref(), Some("curl"));
    while let Some(w) = words.next() {
        match w.as_str() {
            "-s" => {}
            "-X" => method = words.next().unwrap(),
            "-H" => headers += &format!("{}\r\n", words.next().unwrap()),
            u if u.starts_with("http://localhost:8080") => {
                url = u["http://localhost:8080".len()..].to_string()
            }
            other => panic!("unsupported curl word {other}"),
        }
    }
    let (status, body) = expected.trim_start_matches("# ").split_once(' ').unwrap();
    let mut c = RawClient::connect(addr);
    c.send(format!("{method} {url} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n").as_bytes());
    let resp = c.response();
    assert_eq!(resp.status.to_string(), status, "{curl}: {}", resp.text());
    let want: Value = serde_json::from_str(body).unwrap();
    assert_eq!(resp.json(), want, "{curl}");
}

#[test]
fn the_writing_plugins_walkthrough_works_as_written() {
    let doc = std::fs::read_to_string(repo_root().join("docs/writing-plugins.md")).unwrap();
    let blocks = marked_blocks(&doc);
    assert!(blocks.len() >= 5, "the walk-through's marked blocks");
    let project = std::env::temp_dir().join(format!("wasmgate-walkthrough-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(&project).unwrap();
    let mut server = None;
    for block in &blocks {
        let words: Vec<&str> = block.marker.split(' ').collect();
        match words.as_slice() {
            ["run"] => block.text.lines().for_each(|l| run(&project, l)),
            ["run-in", dir] => block.text.lines().for_each(|l| run(&project.join(dir), l)),
            ["file", path] => std::fs::write(project.join(path), &block.text).unwrap(),
            ["requests"] => {
                let server = server.get_or_insert_with(|| {
                    ChildServer::spawn_in(
                        &project,
                        &["serve", "--listen", "127.0.0.1:0"],
                        None,
                        true,
                    )
                });
                let lines: Vec<&str> = block.text.lines().collect();
                for pair in lines.chunks(2) {
                    request(server.addr(), pair[0], pair[1]);
                }
            }
            other => panic!("unknown walk-through marker {other:?}"),
        }
    }
    assert!(
        server.is_some(),
        "the walk-through ends by calling the plugin"
    );
    drop(server);
    edit_loop_with_up_watch(&project);
    let _ = std::fs::remove_dir_all(&project);
}

/// The authoring loop the walk-through recommends: `wasmgate up --watch` rebuilds the changed
/// plugin on save and hot-swaps it; a compile error is printed in full and the last good version
/// keeps serving.
fn edit_loop_with_up_watch(project: &Path) {
    let config = std::fs::read_to_string(project.join("wasmgate.toml")).unwrap();
    std::fs::write(
        project.join("wasmgate.toml"),
        format!("[server]\nwatch_debounce = \"100ms\"\n{config}"),
    )
    .unwrap();
    let server = ChildServer::spawn_in(
        project,
        &["up", "--watch", "--listen", "127.0.0.1:0"],
        None,
        true,
    );
    let title = |addr| {
        let mut c = RawClient::connect(addr);
        c.send(b"GET /todos/7 HTTP/1.1\r\nHost: x\r\n\r\n");
        c.response().json()["title"].as_str().unwrap().to_string()
    };
    assert_eq!(title(server.addr()), "todo #7");
    let lib = project.join("plugins/todo/src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        source.replace("format!(\"todo #{id}\")", "format!(\"task {id}\")"),
    )
    .unwrap();
    let swapped = crate::support::eventually(std::time::Duration::from_secs(120), || {
        title(server.addr()) == "task 7"
    });
    assert!(
        swapped,
        "saving the source rebuilt and hot-swapped the plugin"
    );
    std::fs::write(
        &lib,
        source.replace("fn todo(req: Request)", "fn todo(req: Request, oops)"),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(15));
    assert_eq!(
        title(server.addr()),
        "task 7",
        "a compile error keeps the last good version serving"
    );
    server.signal(libc::SIGTERM);
    let (code, stderr) = server.wait(std::time::Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("error") && stderr.contains("oops"),
        "cargo's error is printed in full:\n{stderr}"
    );
    assert!(stderr.contains("rebuild failed"), "{stderr}");
}
