//! docs/writing-plugins.md, followed literally: the walk-through's commands are run (its
//! `wasmgate` is this build of the CLI), its code blocks are written where they say, and its
//! requests are sent, expecting exactly the answers the document shows; so is the C example of
//! "Writing a plugin in C". The document cannot rot.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::support::{ChildOptions, ChildServer, Site, get, repo_root, try_eventually};

/// One marked block of the document: the marker's words and the block's text.
struct Block {
    marker: String,
    text: String,
}

/// The blocks marked `<!-- KIND:words -->` (the walk-through's are `walkthrough`, the C
/// example's `c-example`).
fn marked_blocks(doc: &str, kind: &str) -> anyhow::Result<Vec<Block>> {
    let mut blocks = Vec::new();
    let mut lines = doc.lines();
    let prefix = format!("<!-- {kind}:");
    while let Some(line) = lines.next() {
        let Some(marker) = line
            .strip_prefix(prefix.as_str())
            .and_then(|m| m.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines
            .next()
            .with_context(|| format!("a code block after the marker {marker}"))?;
        ensure!(
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
    Ok(blocks)
}

/// Runs one command line of the document in `dir` (`wasmgate` is this build of the CLI); it must
/// succeed.
fn run(dir: &Path, line: &str) -> anyhow::Result<()> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut cmd = match words[0] {
        "wasmgate" => Command::new(env!("CARGO_BIN_EXE_wasmgate-it-server")),
        "cargo" => Command::new(env!("CARGO")),
        other => bail!("the walk-through runs `{other}`, which this test does not know"),
    };
    // The project's own plugins/target: never the cargo that runs this test's target directory.
    let out = cmd
        .args(&words[1..])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .with_context(|| format!("running `{line}`"))?;
    ensure!(
        out.status.success(),
        "`{line}` failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Sends one `curl -s [-X M] [-H 'h: v'] [-d 'body'] 'URL'` line to `addr` and checks
/// `# STATUS JSON`, or `# STATUS` for an answer without a body.
fn request(addr: SocketAddr, curl: &str, expected: &str) -> anyhow::Result<()> {
    let mut method = "GET".to_string();
    let mut headers = String::new();
    let mut body = String::new();
    let mut url = String::new();
    let parts: Vec<&str> = curl.split('\'').collect();
    let mut words = parts.iter().enumerate().flat_map(|(i, p)| {
        if i % 2 == 1 {
            vec![p.to_string()]
        } else {
            p.split_whitespace().map(str::to_string).collect()
        }
    });
    ensure!(
        words.next().as_deref() == Some("curl"),
        "not a curl line: {curl}"
    );
    while let Some(w) = words.next() {
        match w.as_str() {
            "-s" => {}
            "-X" => method = words.next().context("-X without a method")?,
            "-H" => headers += &format!("{}\r\n", words.next().context("-H without a header")?),
            "-d" => body = words.next().context("-d without data")?,
            u if u.starts_with("http://localhost:8080") => {
                url = u["http://localhost:8080".len()..].to_string()
            }
            other => bail!("unsupported curl word {other}"),
        }
    }
    ensure!(
        expected.starts_with("# "),
        "`# STATUS [JSON]` after {curl}, got {expected:?}"
    );
    let (status, json) = expected[2..]
        .split_once(' ')
        .unwrap_or((&expected[2..], ""));
    if !body.is_empty() {
        headers += &format!("Content-Length: {}\r\n", body.len());
    }
    let resp = crate::support::exchange(
        addr,
        format!("{method} {url} HTTP/1.1\r\nHost: localhost\r\n{headers}\r\n{body}").as_bytes(),
    )?;
    assert_eq!(resp.status.to_string(), status, "{curl}: {}", resp.text());
    if json.is_empty() {
        assert_eq!(resp.text(), "", "{curl}: no body");
    } else {
        let want: Value =
            serde_json::from_str(json).with_context(|| format!("the document's {json}"))?;
        assert_eq!(resp.json()?, want, "{curl}");
    }
    Ok(())
}

/// Checks a `requests` block: each curl line, then its expected answer, sent to `addr`.
fn requests(addr: SocketAddr, block: &Block) -> anyhow::Result<()> {
    let lines: Vec<&str> = block.text.lines().collect();
    for pair in lines.chunks(2) {
        let [curl, expected] = pair else {
            bail!("a request without its expected answer: {pair:?}");
        };
        request(addr, curl, expected)?;
    }
    Ok(())
}

#[test]
fn the_writing_plugins_walkthrough_works_as_written() -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(repo_root().join("docs/writing-plugins.md"))?;
    let blocks = marked_blocks(&doc, "walkthrough")?;
    assert!(blocks.len() >= 10, "the walk-through's marked blocks");
    let site = Site::new("walkthrough")?;
    let project = site.dir();
    let served = follow(project, &blocks)?;
    assert!(
        served >= 2,
        "both parts of the walk-through end by calling their plugin"
    );
    edit_loop_with_up_watch(project)
}

/// Follows `blocks` in `project`: runs, writes, and checks requests against `wasmgate serve`
/// started in `project`, afresh after anything changed. Returns how many servers were started.
fn follow(project: &Path, blocks: &[Block]) -> anyhow::Result<usize> {
    let mut server: Option<ChildServer> = None;
    let mut started = 0;
    for block in blocks {
        let words: Vec<&str> = block.marker.split(' ').collect();
        if !matches!(words.as_slice(), ["requests"]) {
            // The next requests go to a server that has seen this change.
            server = None;
        }
        match words.as_slice() {
            ["run"] => {
                for line in block.text.lines() {
                    run(project, line)?;
                }
            }
            ["run-in", dir] => {
                for line in block.text.lines() {
                    run(&project.join(dir), line)?;
                }
            }
            ["file", path] => {
                let path = project.join(path);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(path, &block.text)?
            }
            ["requests"] => {
                if server.is_none() {
                    server = Some(ChildServer::start(ChildOptions {
                        dir: project.to_path_buf(),
                        ..ChildOptions::new(&["serve", "--listen", "127.0.0.1:0"])
                    })?);
                    started += 1;
                }
                let addr = server.as_ref().map(ChildServer::addr).context("started")?;
                requests(addr, block)?;
            }
            other => bail!("unknown marker {other:?}"),
        }
    }
    Ok(started)
}

/// "Writing a plugin in C": its source and configuration written as shown, `wasmgate build` (which
/// runs the configuration's clang command), then its requests, in a directory laid out like this
/// repository (the header at `guest-sdk/c/wasmgate.h`).
#[test]
fn the_c_example_builds_and_answers_as_written() -> anyhow::Result<()> {
    let doc = std::fs::read_to_string(repo_root().join("docs/writing-plugins.md"))?;
    let blocks = marked_blocks(&doc, "c-example")?;
    assert!(blocks.len() >= 4, "the C example's marked blocks");
    let site = Site::new("walkthrough-c")?;
    std::fs::create_dir_all(site.path("guest-sdk/c"))?;
    std::fs::copy(
        repo_root().join("guest-sdk/c/wasmgate.h"),
        site.path("guest-sdk/c/wasmgate.h"),
    )?;
    let served = follow(site.dir(), &blocks)?;
    assert_eq!(served, 1, "the C example ends by calling its plugin");
    Ok(())
}

/// The authoring loop the walk-through recommends: `wasmgate up --watch` rebuilds the changed
/// plugin on save and hot-swaps it; a compile error is printed in full and the last good version
/// keeps serving.
fn edit_loop_with_up_watch(project: &Path) -> anyhow::Result<()> {
    let config = std::fs::read_to_string(project.join("wasmgate.toml"))?;
    std::fs::write(
        project.join("wasmgate.toml"),
        format!("[server]\nwatch_debounce = \"100ms\"\n{config}"),
    )?;
    let server = ChildServer::start(ChildOptions {
        dir: project.to_path_buf(),
        ..ChildOptions::new(&["up", "--watch", "--listen", "127.0.0.1:0"])
    })?;
    let addr = server.addr();
    let title = || -> anyhow::Result<String> {
        let json = get(addr, "/todos/7")?.json()?;
        json["title"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no title in {json}"))
    };
    assert_eq!(title()?, "todo #7");
    let lib = project.join("plugins/todo/src/lib.rs");
    let source = std::fs::read_to_string(&lib)?;
    std::fs::write(
        &lib,
        source.replace("format!(\"todo #{id}\")", "format!(\"task {id}\")"),
    )?;
    let swapped = try_eventually(Duration::from_secs(120), || Ok(title()? == "task 7"))?;
    assert!(
        swapped,
        "saving the source rebuilt and hot-swapped the plugin"
    );
    std::fs::write(
        &lib,
        source.replace("fn todo(req: Request)", "fn todo(req: Request, oops)"),
    )?;
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(
        title()?,
        "task 7",
        "a compile error keeps the last good version serving"
    );
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    let stderr = &exited.stderr;
    assert_eq!(exited.code, Some(0), "{stderr}");
    assert!(
        stderr.contains("error") && stderr.contains("oops"),
        "cargo's error is printed in full:\n{stderr}"
    );
    assert!(stderr.contains("rebuild failed"), "{stderr}");
    Ok(())
}
