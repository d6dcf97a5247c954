//! Authoring outside this repository, as a user who installed the binary does: the README's "Your
//! first route" walked as written in an empty directory elsewhere, with the binary installed into
//! a temporary prefix by `cargo install` and nothing of this checkout on any path it is given (no working directory,
//! no `PATH` entry, no cargo variable pointing here). Then the authoring loop's promise: a plugin
//! added with `wasmgate new` while `up --watch` runs is built and served without a restart.
//!
//! Prints how long each step took (the issue's closing note quotes them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::support::{ChildOptions, ChildServer, Site, apply_env, get, repo_root, try_eventually};

/// The commands of the README's "Your first route" block, comments removed, each with the JSON
/// its comment shows (for `curl` lines).
fn first_route_commands() -> anyhow::Result<Vec<(String, Option<String>)>> {
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let section = readme
        .split("## Your first route")
        .nth(1)
        .context("README has a \"Your first route\" section")?;
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .context("a sh block in \"Your first route\"")?;
    Ok(block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| match line.split_once('#') {
            Some((command, comment)) => {
                let comment = comment.trim();
                let json = comment.starts_with('{').then(|| comment.to_string());
                (command.trim().to_string(), json)
            }
            None => (line.trim().to_string(), None),
        })
        .collect())
}

/// `cargo install --path host --root PREFIX`, as the README says (plus the prefix). It shares the
/// target directory of the `cargo test` running us (which holds no build lock while tests run), so
/// it reuses what that build compiled instead of building the binary from nothing; `--locked` and
/// `--offline` because the outer build already resolved and fetched everything.
fn install(prefix: &Path) -> anyhow::Result<PathBuf> {
    let built = Path::new(env!("CARGO_BIN_EXE_wasmgate-it-server"));
    let profile_dir = built.parent().context("the binary's directory")?;
    let target_dir = profile_dir.parent().context("the target directory")?;
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["install", "--locked", "--offline", "--path"])
        .arg(repo_root().join("host"))
        .arg("--root")
        .arg(prefix)
        .arg("--target-dir")
        .arg(target_dir);
    if profile_dir.ends_with("debug") {
        cargo.arg("--debug");
    }
    let out = cargo.output().context("running cargo install")?;
    ensure!(
        out.status.success(),
        "cargo install failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = prefix.join("bin/wasmgate");
    ensure!(
        installed.is_file(),
        "cargo install wrote {}",
        installed.display()
    );
    Ok(installed)
}

/// The environment of a user's shell: `PATH` with the prefix first and nothing inside this
/// repository, and none of the variables the `cargo test` running us sets.
fn user_env(prefix: &Path) -> Vec<(String, Option<String>)> {
    let repo = repo_root();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = vec![prefix.join("bin")];
    dirs.extend(std::env::split_paths(&path).filter(|d| !d.starts_with(&repo)));
    let path = std::env::join_paths(dirs).expect("PATH entries without separators");
    let mut env = vec![
        (
            "PATH".to_string(),
            Some(path.to_string_lossy().into_owned()),
        ),
        ("RUST_LOG".to_string(), Some("info".to_string())),
    ];
    // Where the toolchain and the registry cache live stays; what says "a cargo runs you" goes.
    let keep = ["CARGO_HOME", "RUSTUP_HOME", "RUST_LOG"];
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if (name.starts_with("CARGO") || name.starts_with("RUST")) && !keep.contains(&name.as_str())
        {
            env.push((name, None));
        }
    }
    env
}

/// Runs the installed binary to completion in `dir`; it must succeed. Returns stdout.
fn run(
    program: &Path,
    args: &[&str],
    dir: &Path,
    env: &[(String, Option<String>)],
) -> anyhow::Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    apply_env(&mut cmd, env);
    let out = cmd
        .output()
        .with_context(|| format!("running wasmgate {args:?}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "wasmgate {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// Every file of `dir` (but build output) that mentions `needle`.
fn files_naming(dir: &Path, needle: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            found.extend(files_naming(&path, needle)?);
        } else if std::fs::read(&path)?
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            found.push(path);
        }
    }
    Ok(found)
}

#[test]
fn the_readme_first_route_walks_from_an_installed_binary_in_an_empty_directory()
-> anyhow::Result<()> {
    let commands = first_route_commands()?;
    let site = Site::new("anywhere")?;
    let prefix = site.path("prefix");
    let project = site.path("work/todo-app");
    std::fs::create_dir_all(&project)?;
    ensure!(
        !project.starts_with(repo_root()),
        "the project is outside the repository"
    );
    let env = user_env(&prefix);
    let mut program: Option<PathBuf> = None;
    let mut server: Option<ChildServer> = None;
    let mut timings: Vec<(String, Duration)> = Vec::new();
    for (command, json) in &commands {
        let started = Instant::now();
        let words: Vec<&str> = command.split_whitespace().collect();
        match words.as_slice() {
            ["cargo", "install", "--path", "host", ..] => program = Some(install(&prefix)?),
            ["wasmgate", "up", args @ ..] => {
                let program = program.clone().context("`cargo install` comes first")?;
                let mut args: Vec<&str> = [&["up"][..], args].concat();
                // The README serves on 8080; a test takes a free port.
                args.extend(["--listen", "127.0.0.1:0"]);
                server = Some(ChildServer::start(ChildOptions {
                    dir: project.clone(),
                    program: Some(program),
                    env: env.clone(),
                    ..ChildOptions::new(&args)
                })?);
            }
            ["wasmgate", args @ ..] => {
                let program = program.as_deref().context("`cargo install` comes first")?;
                run(program, args, &project, &env)?;
            }
            ["curl", "-s", url] => {
                let path = url
                    .strip_prefix("localhost:8080")
                    .with_context(|| format!("a localhost:8080 URL in {command}"))?;
                let addr = server.as_ref().context("`wasmgate up` comes first")?.addr();
                let answer = get(addr, path)?;
                ensure!(answer.status == 200, "{command}: {}", answer.text());
                let want: Value = serde_json::from_str(json.as_deref().context("an answer")?)?;
                ensure!(answer.json()? == want, "{command}: {}", answer.text());
            }
            other => bail!("the README runs {other:?}, which this test does not know"),
        }
        timings.push((command.clone(), started.elapsed()));
    }
    let server = server.context("the walk serves its route")?;
    let program = program.context("installed")?;

    // A plugin added while `up --watch` runs is built and served, no restart.
    let started = Instant::now();
    run(
        &program,
        &["new", "other", "--route", "/other/:id"],
        &project,
        &env,
    )?;
    let served = try_eventually(Duration::from_secs(240), || {
        let answer = get(server.addr(), "/other/7")?;
        Ok(answer.status == 200 && answer.json()?["plugin"] == "other")
    })?;
    ensure!(
        served,
        "the plugin added under `up --watch` is served without a restart"
    );
    timings.push((
        "wasmgate new other (served under watch)".into(),
        started.elapsed(),
    ));
    ensure!(
        get(server.addr(), "/todos/1")?.status == 200,
        "the first plugin still serves"
    );

    // Nothing the binary wrote points back at this checkout.
    let repo = repo_root().to_string_lossy().into_owned();
    let naming = files_naming(&project, &repo)?;
    ensure!(naming.is_empty(), "files naming {repo}: {naming:?}");
    server.signal(libc::SIGTERM)?;
    let exited = server.wait(Duration::from_secs(10))?;
    ensure!(exited.code == Some(0), "{}", exited.stderr);
    // At most the reload that sees the new config before the build wrote the module, and it
    // says what is going on.
    ensure!(
        !exited.stderr.contains("cannot read")
            && exited.stderr.matches("not built yet").count() <= 1,
        "reloads keep failing for want of a module:\n{}",
        exited.stderr
    );
    for (command, took) in timings {
        eprintln!("timing: {took:>8.1?}  {command}");
    }
    Ok(())
}
