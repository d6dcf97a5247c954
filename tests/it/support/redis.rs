//! A real `redis-server` on a loopback port, for the key-value tests that run wasmgate against
//! Redis: started in memory only (no snapshot, no append-only file), in a scratch directory the
//! test gives, waited for with `PING`, and stopped by its PID (on drop, at the latest).
//!
//! Owns finding the binary (a clear error naming `./test.sh` when it is missing: nothing is
//! skipped), choosing a free port, and taking the server down and bringing it back on the same
//! port (what an outage looks like to a client). It must not talk Redis beyond `PING`: what a
//! store keeps is asserted through wasmgate, as an operator sees it.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::sys;

/// How long a started server may take to answer `PING`.
const UP_WITHIN: Duration = Duration::from_secs(10);
/// How long a signalled server may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// A running `redis-server`, killed (SIGKILL, by PID) on drop if it is still running.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free loopback port, with its working directory (and log) in `dir`.
    pub fn start(dir: &Path) -> anyhow::Result<RedisServer> {
        // Another test may take the port between our probe and redis binding it: try a few.
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            match RedisServer::start_on(port, dir) {
                Ok(server) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .context("no attempt")?
            .context("starting redis-server on a free port"))
    }

    /// Starts one on `port` (the same port again, after [`RedisServer::stop`]: a restart as
    /// clients see it).
    pub fn start_on(port: u16, dir: &Path) -> anyhow::Result<RedisServer> {
        let binary = binary()?;
        let log_path = dir.join(format!("redis-{port}.log"));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut server = RedisServer {
            port,
            child: Some(child),
        };
        let end = Instant::now() + UP_WITHIN;
        loop {
            if ping(server.addr()).is_ok() {
                return Ok(server);
            }
            let exited = match server.child.as_mut() {
                Some(c) => c.try_wait()?,
                None => None,
            };
            if exited.is_some() || Instant::now() > end {
                server.kill();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!(
                    "redis-server on 127.0.0.1:{port} did not answer PING ({}); its log:\n{log}",
                    match exited {
                        Some(status) => format!("it exited: {status}"),
                        None => format!("within {UP_WITHIN:?}"),
                    }
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The URL a `[stores.NAME]` with `backend = "redis"` points at.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Sends `sig` without waiting for anything (SIGSTOP: a hung server, which accepts connections
    /// and answers nothing; SIGCONT: going on).
    pub fn signal(&self, sig: i32) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("redis-server is stopped")?;
        sys::signal(child.id(), sig).context("signalling redis-server")
    }

    /// Sends `sig` (SIGTERM: a clean shutdown; SIGKILL: a crash) and waits for the process to exit.
    /// Its data is gone (it keeps nothing on disk). A server already stopped is left alone.
    pub fn stop(&mut self, sig: i32) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        sys::signal(child.id(), sig).context("signalling redis-server")?;
        let end = Instant::now() + EXIT_WITHIN;
        while child.try_wait()?.is_none() {
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                bail!("redis-server did not exit within {EXIT_WITHIN:?} of signal {sig}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `redis-server` binary: on `PATH`, or where Debian puts it.
fn binary() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
        .context(
            "redis-server is not installed: ./test.sh installs it (or run `apt-get install -y redis-server`)",
        )
}

/// A loopback port nothing listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `PING` on a fresh connection; an error unless the answer is `+PONG`.
fn ping(addr: SocketAddr) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer)?;
    if &answer != b"+PONG\r\n" {
        bail!(
            "PING answered {:?}",
            String::from_utf8_lossy(&answer).into_owned()
        );
    }
    Ok(())
}
