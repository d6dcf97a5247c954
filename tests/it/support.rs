//! Test support: servers on 127.0.0.1:0 (in-process or as a child process), a raw client, the
//! sample plugins, metric lookups.
//!
//! The only `unsafe` of the test crate lives here (lowering `RLIMIT_NOFILE` in a child before exec).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wasmgate::app::App;
use wasmgate::config::Config;
use wasmgate::server::{self, Summary, shutdown};

/// The repository root (where `wasmgate.toml` and `plugins/` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the sample plugins once per test run (into `plugins/target`, never cargo's own target
/// directory, so this cannot wait on the build lock of the `cargo test` that runs us).
pub fn sample_plugins_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let config = Config::embedded(&repo_root()).unwrap();
        let crates: Vec<(String, PathBuf)> = config
            .plugins
            .iter()
            .filter_map(|p| match &p.source {
                wasmgate::config::PluginSource::Crate { dir, .. } => {
                    Some((p.name.clone(), dir.clone()))
                }
                _ => None,
            })
            .collect();
        wasmgate::builder::build_plugins(&repo_root(), &crates, false)
            .expect("building the sample plugins");
    });
}

/// A server running in this process on its own runtime, stopped (gracefully) on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    trigger: shutdown::Trigger,
    thread: Option<std::thread::JoinHandle<Summary>>,
}

impl TestServer {
    /// Starts a server from config text (paths relative to the repository root) on 127.0.0.1:0.
    pub fn start(toml: &str) -> TestServer {
        let config =
            Config::parse(toml, Path::new("test.toml"), &repo_root()).expect("test config");
        TestServer::start_config(config)
    }

    pub fn start_config(mut config: Config) -> TestServer {
        capture_logs();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        let (trigger, signal) = shutdown::channel();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener =
                    wasmgate::bind(config.server.listen, config.server.reuse_port).unwrap();
                let watch = config.server.watch;
                let app = Arc::new(App::new(config).unwrap());
                wasmgate::watch::spawn(app.clone(), watch, signal.clone());
                tx.send((listener.local_addr().unwrap(), app.clone()))
                    .unwrap();
                server::run(listener, app, signal).await
            })
        });
        let (addr, app) = rx.recv().expect("server started");
        TestServer {
            addr,
            app,
            trigger,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Triggers shutdown and waits for the drain to finish.
    pub fn stop(mut self) -> Summary {
        self.trigger.trigger();
        self.thread.take().unwrap().join().unwrap()
    }

    /// The current `/metrics` text, read in-process.
    pub fn metrics(&self) -> String {
        self.app.metrics.render()
    }

    /// Reads a metric sample (`name{labels}` exactly as exposed) from the current metrics.
    pub fn metric(&self, sample: &str) -> f64 {
        metric(&self.metrics(), sample).unwrap_or(0.0)
    }

    pub fn connect(&self) -> RawClient {
        RawClient::connect(self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.trigger.trigger();
            let _ = thread.join();
        }
    }
}

/// The value of one sample line of a Prometheus text exposition.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// A blocking raw TCP client: send exact bytes, read exact responses.
pub struct RawClient {
    pub stream: TcpStream,
    pending: Vec<u8>,
}

/// One parsed response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

impl RawClient {
    /// Connects, or `None` when the server no longer accepts (it is shutting down).
    pub fn try_connect(addr: SocketAddr) -> Option<RawClient> {
        let stream = TcpStream::connect(addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        Some(RawClient {
            stream,
            pending: Vec::new(),
        })
    }

    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        RawClient {
            stream,
            pending: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) -> &mut Self {
        self.stream.write_all(bytes).expect("send");
        self
    }

    /// Reads one response (Content-Length framed, or to EOF without one). `head_only` for HEAD.
    pub fn response_to(&mut self, head_only: bool) -> RawResponse {
        let head_end = loop {
            if let Some(i) = find(&self.pending, b"\r\n\r\n") {
                break i + 4;
            }
            assert!(
                self.fill() > 0,
                "connection closed before a response head; got {:?}",
                String::from_utf8_lossy(&self.pending)
            );
        };
        let head = String::from_utf8(self.pending[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "status line {status_line:?}"
        );
        let status = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        self.pending.drain(..head_end);
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap());
        let body = match length {
            _ if head_only || status == 100 || status == 204 || status == 304 => Vec::new(),
            Some(n) => {
                while self.pending.len() < n {
                    assert!(self.fill() > 0, "connection closed mid-body");
                }
                self.pending.drain(..n).collect()
            }
            None => {
                while self.fill() > 0 {}
                std::mem::take(&mut self.pending)
            }
        };
        RawResponse {
            status,
            headers,
            body,
        }
    }

    pub fn response(&mut self) -> RawResponse {
        self.response_to(false)
    }

    /// True when the server has closed the connection (EOF) with nothing more to read.
    pub fn is_closed(&mut self) -> bool {
        self.pending.is_empty() && self.fill() == 0
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `request` on a fresh connection and reads one response.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut c = RawClient::connect(addr);
    c.send(request);
    c.response()
}

/// Polls `cond` until it holds or `within` passes.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Whether `GET path` is answered 200 right now. A refused, reset or cut-short exchange is
/// `false`, not a panic, so it can be polled with [`eventually`] while a server starts or recovers.
pub fn answers_200(addr: SocketAddr, path: &str) -> bool {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    std::panic::catch_unwind(|| exchange(addr, request.as_bytes()).status == 200).unwrap_or(false)
}

/// The real CLI as a child process.
pub struct ChildServer {
    pub child: Child,
    pub addr: Option<SocketAddr>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl ChildServer {
    /// Runs `wasmgate ARGS` with an optional `RLIMIT_NOFILE`. Waits for the "listening" line when
    /// `expect_listen`.
    pub fn spawn(args: &[&str], nofile: Option<u64>, expect_listen: bool) -> ChildServer {
        ChildServer::spawn_in(&repo_root(), args, nofile, expect_listen)
    }

    /// As [`ChildServer::spawn`], in the working directory `dir`.
    pub fn spawn_in(
        dir: &Path,
        args: &[&str],
        nofile: Option<u64>,
        expect_listen: bool,
    ) -> ChildServer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmgate-it-server"));
        cmd.args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info");
        if let Some(limit) = nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: the closure runs in the forked child before exec and only calls setrlimit,
            // which is async-signal-safe, on a stack value.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("spawn the server");
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut addr = None;
        if expect_listen {
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            let text = line
                .trim()
                .strip_prefix("wasmgate listening on http://")
                .unwrap_or_else(|| panic!("unexpected stdout {line:?}"));
            let listening: SocketAddr = text.parse().unwrap();
            addr = Some(listening);
            // Plugins load after the server listens: wait until it says it is ready.
            let ready = eventually(Duration::from_secs(30), || answers_200(listening, "/ready"));
            assert!(ready, "the server became ready");
        }
        ChildServer {
            child,
            addr,
            stderr: Some(stderr),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr.unwrap()
    }

    pub fn signal(&self, sig: i32) {
        let rc = signal_pid(self.child.id(), sig);
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for exit (bounded), returning the exit code and everything written to stderr.
    pub fn wait(mut self, within: Duration) -> (Option<i32>, String) {
        let end = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("server did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.code(), self.stderr.take().unwrap().join().unwrap())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `sig` to the process `pid` (one of this test's children); returns kill(2)'s result.
pub fn signal_pid(pid: u32, sig: i32) -> i32 {
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
    unsafe { libc::kill(pid as i32, sig) }
}

/// Closes `stream` with a reset (RST) instead of a FIN: `SO_LINGER` with a zero timeout.
pub fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid `struct linger` that outlives the call, its size is passed, and
    // the descriptor is open (owned by `stream`, closed only when it drops below).
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    drop(stream);
}

/// Everything the in-process servers logged, shared by every test of this binary.
static LOGS: OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = OnceLock::new();

/// Installs (once) a global subscriber that keeps every log line, so tests can check that an
/// event was logged. Lines are plain text with `key=value` fields.
fn capture_logs() {
    LOGS.get_or_init(|| {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = LogWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

#[derive(Clone)]
struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Is there a log line containing every one of `needles`? (Waits briefly: events are written by
/// server threads.)
pub fn logs_contain(needles: &[&str]) -> bool {
    eventually(Duration::from_secs(2), || {
        let logs = LOGS
            .get()
            .map(|l| String::from_utf8_lossy(&l.lock().unwrap()).into_owned())
            .unwrap_or_default();
        logs.lines()
            .any(|line| needles.iter().all(|n| line.contains(n)))
    })
}

/// Everything logged so far (for failure messages).
pub fn logs() -> String {
    LOGS.get()
        .map(|l| String::from_utf8_lossy(&l.lock().unwrap()).into_owned())
        .unwrap_or_default()
}

/// A hand-written ABI v1 guest answering 200, `x-version: N`, body `version N\n` (N one digit).
pub fn versioned_guest(n: u8) -> String {
    assert!(n <= 9);
    let wat = std::fs::read_to_string(repo_root().join("tests/guests/ok.wat")).unwrap();
    let data_start = wat.find("  (data (i32.const 16)").unwrap();
    let data_end = wat[data_start..].find(")\n\n").unwrap() + data_start + 2;
    let data = format!(
        "  (data (i32.const 16)\n    \"\\c8\\00\\00\\00\" \"\\01\\00\\00\\00\" \"\\09\\00\\00\\00\" \"x-version\" \"\\01\\00\\00\\00\" \"{n}\" \"\\0a\\00\\00\\00\" \"version {n}\\0a\")\n"
    );
    wat[..data_start].to_string()
        + &data
        + &wat[data_end..].replace("0x000000100000002f", "0x0000001000000028")
}

/// Samples of one client thread: when each request started, and how long it took.
pub type Samples = Vec<(Instant, Duration)>;

/// The version a response of a [`versioned_guest`] came from, asserting that it is a 200 and
/// wholly from one version (header and body agree).
pub fn version_of(resp: &RawResponse) -> u8 {
    assert_eq!(resp.status, 200, "{}", resp.text());
    let header: u8 = resp
        .header("x-version")
        .expect("x-version")
        .parse()
        .unwrap();
    assert_eq!(
        resp.text(),
        format!("version {header}\n"),
        "header and body from one version"
    );
    header
}

/// Client threads hammering `GET /v` at `addr` until `stop`: half keep-alive, half a new
/// connection per request. Every response must pass [`version_of`]; a failure panics the thread,
/// which the joiner sees.
pub fn versioned_load(
    addr: SocketAddr,
    clients: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<std::thread::JoinHandle<Samples>> {
    (0..clients)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut conn = RawClient::connect(addr);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    if i % 2 == 1 {
                        conn = RawClient::connect(addr);
                    }
                    conn.send(b"GET /v HTTP/1.1\r\nHost: x\r\n\r\n");
                    let resp = conn.response();
                    version_of(&resp);
                    samples.push((started, started.elapsed()));
                    // A well-behaved client: the server (or nginx, after keepalive_requests)
                    // may end a keep-alive connection with its last answer.
                    if resp.header("connection") == Some("close") {
                        conn = RawClient::connect(addr);
                    }
                }
                samples
            })
        })
        .collect()
}

/// The `/metrics` text of the server at `addr`, over HTTP (for child processes).
pub fn scrape(addr: SocketAddr) -> String {
    exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").text()
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (tests that hold a thousand
/// connections in-process need more than the usual 1024); returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` that outlives both calls; setrlimit only reads it.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}

/// Tests that flood the machine with connections (storms, a thousand tricklers) and tests that
/// must see every request succeed under load (hot reload, the balancer, fairness) take this lock,
/// so the former never run beside the latter.
pub fn exclusive_network() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}
