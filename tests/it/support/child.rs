//! The real `wasmgate` CLI as a child process, for what only a whole process has: OS signals, exit
//! codes, stderr, descriptor limits, several processes on one port.
//!
//! Owns spawning the binary the tests build (`tests/bin/server.rs`, identical to the real one),
//! finding its port from its one stdout line, waiting until `/ready` says so, and collecting its
//! exit. It must not reach into the process any other way than a user can (arguments, signals,
//! HTTP, stdout/stderr); it never kills anything but its own child.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{answers_200, eventually, repo_root, sys};

/// How long a started server may take to load its plugins and say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// How to run the CLI. Build one with [`ChildOptions::serve`] or [`ChildOptions::new`] and change
/// fields with struct update syntax: `ChildOptions { nofile: Some(64), ..ChildOptions::serve(c) }`.
#[derive(Debug, Clone)]
pub struct ChildOptions {
    /// The command line after `wasmgate`.
    pub args: Vec<String>,
    /// The working directory (where `./wasmgate.toml` and relative paths are looked up).
    pub dir: PathBuf,
    /// `RLIMIT_NOFILE` for the child (soft and hard), to run it out of descriptors.
    pub nofile: Option<u64>,
    /// Wait for the "listening" line and for `/ready` to answer 200 before returning. Off for runs
    /// that are expected to fail before listening.
    pub wait_ready: bool,
    /// Another copy of the binary (an installed one) instead of the one this test run built.
    pub program: Option<PathBuf>,
    /// Environment changes: `(name, Some(value))` sets, `(name, None)` removes.
    pub env: Vec<(String, Option<String>)>,
}

impl ChildOptions {
    /// `wasmgate ARGS` in the repository root, waiting until it is ready.
    pub fn new(args: &[&str]) -> ChildOptions {
        ChildOptions {
            args: args.iter().map(|a| a.to_string()).collect(),
            dir: repo_root(),
            nofile: None,
            wait_ready: true,
            program: None,
            env: Vec::new(),
        }
    }

    /// `wasmgate serve --config CONFIG --listen 127.0.0.1:0` in the repository root, waiting until
    /// it is ready.
    pub fn serve(config: impl AsRef<Path>) -> ChildOptions {
        let config = config.as_ref().to_string_lossy().into_owned();
        ChildOptions::new(&["serve", "--config", &config, "--listen", "127.0.0.1:0"])
    }
}

/// Applies [`ChildOptions::env`]-style changes to `cmd`: `Some` sets, `None` removes.
pub fn apply_env(cmd: &mut Command, env: &[(String, Option<String>)]) {
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
}

/// How a child ended.
#[derive(Debug)]
pub struct Exited {
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Everything it wrote to stderr (its log, its error messages).
    pub stderr: String,
}

/// A running CLI process, killed on drop if it is still running.
pub struct ChildServer {
    child: Child,
    addr: Option<SocketAddr>,
    stderr: Option<JoinHandle<String>>,
}

impl ChildServer {
    /// Spawns the CLI as `options` say (with `RUST_LOG=info`).
    pub fn start(options: ChildOptions) -> anyhow::Result<ChildServer> {
        let program = options
            .program
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_wasmgate-it-server")));
        let mut cmd = Command::new(program);
        apply_env(&mut cmd, &options.env);
        cmd.args(&options.args)
            .current_dir(&options.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info");
        if let Some(limit) = options.nofile {
            sys::limit_nofile_in_child(&mut cmd, limit);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning wasmgate {:?}", options.args))?;
        let mut stderr = child.stderr.take().context("the child's stderr")?;
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut server = ChildServer {
            child,
            addr: None,
            stderr: Some(stderr),
        };
        if options.wait_ready
            && let Err(err) = server.wait_ready()
        {
            let _ = server.child.kill();
            let stderr = server.take_stderr();
            return Err(err.context(format!("wasmgate {:?}; stderr:\n{stderr}", options.args)));
        }
        Ok(server)
    }

    /// Reads the "listening" line for the address, then polls `/ready`: the server listens first and
    /// loads its plugins after.
    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let stdout = self.child.stdout.take().context("the child's stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("wasmgate listening on http://") else {
            bail!("unexpected first stdout line {line:?}");
        };
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("address in {line:?}"))?;
        // Keep draining stdout so that nothing the child prints later can block it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        if !eventually(READY_WITHIN, || answers_200(addr, "/ready")) {
            bail!("{addr} did not become ready within {READY_WITHIN:?}");
        }
        self.addr = Some(addr);
        Ok(())
    }

    /// The address it listens on (known when it was started with `wait_ready`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
            .expect("the address is known only for a child started with wait_ready")
    }

    /// Sends `sig` (SIGTERM, SIGINT, SIGHUP, ...) to the process.
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        sys::signal(self.child.id(), sig)
    }

    /// Waits (at most `within`) for the process to exit; an error, after killing it, if it does not.
    pub fn wait(mut self, within: Duration) -> anyhow::Result<Exited> {
        let end = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let stderr = self.take_stderr();
                bail!("the server did not exit within {within:?}; stderr:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Exited {
            code: status.code(),
            stderr: self.take_stderr(),
        })
    }

    /// Everything written to stderr, once the process has exited or been killed.
    fn take_stderr(&mut self) -> String {
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
