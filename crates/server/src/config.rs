//! Configuration: `wasmgate.toml` parsed into one validated [`Config`] value.
//!
//! Every limit and timeout of the server lives here as a named, documented field with a default, and
//! is passed explicitly to the code that enforces it. Nothing else in the crate reads files or the
//! environment for settings.

/// The HTTP parser's limits: the protocol crate's own type, filled from `[http]`.
pub use wasmgate_http::Limits as HttpLimits;

/// What one plugin call may consume. Each bound turns a misbehaving guest into one failed request
/// (its own status and metric) instead of a problem for the server. Set per plugin in the config,
/// falling back to `[plugin_defaults]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Fuel (roughly, wasm instructions) one request may burn -> 504 `fuel_exhausted` past it.
    /// Deterministic, so a runaway loop fails the same way on a fast and a slow machine.
    pub fuel: u64,
    /// Wall-clock time one request may take in the guest -> 504 `deadline` past it. Catches what
    /// fuel cannot (a guest blocked in a host call, or a machine too loaded to burn its fuel).
    pub deadline: std::time::Duration,
    /// Largest linear memory the guest may grow to -> 500 `memory_limit` when it tries to go past.
    pub max_memory_bytes: u64,
    /// Largest encoded response the host will read out of the guest -> 502 `invalid_response`.
    pub max_response_bytes: u32,
    /// Calls of this plugin running at once; more wait in its queue (see `guard.rs`).
    pub max_concurrency: usize,
    /// Calls of this plugin waiting for a place under `max_concurrency`; past it -> 503
    /// `overloaded` with `Retry-After`, at once, instead of an unbounded queue.
    pub max_queue: usize,
    /// Consecutive broken calls (`trap`, `memory_limit`, `invalid_response`, `instantiate`) that
    /// open the circuit breaker: the plugin is quarantined -> 503 `quarantined` with `Retry-After`.
    /// Slow calls (`fuel_exhausted`, `deadline`) do not count: `max_concurrency` bounds their cost.
    pub breaker_threshold: u32,
    /// First quarantine period; after it one probe call is let through, and each failed probe
    /// doubles the period up to `breaker_backoff_max`. A successful call closes the breaker.
    pub breaker_backoff: std::time::Duration,
    /// Longest quarantine period.
    pub breaker_backoff_max: std::time::Duration,
    /// Longest one outbound call (`http_send`) may take, from sending to the body's last byte ->
    /// `timeout`. Never past `deadline - outbound_reserve` either, whichever comes first.
    pub outbound_timeout: std::time::Duration,
    /// Time kept back from the request's `deadline` for the guest to answer after an outbound
    /// call: a call still running at `deadline - outbound_reserve` ends with `timeout`, so the
    /// guest sees the failure and answers its own response instead of the request ending in 504
    /// `deadline` (docs/decisions/0006). At most half the `deadline` is kept back, so a short
    /// deadline still leaves the call half of it.
    pub outbound_reserve: std::time::Duration,
    /// Largest request body one outbound call may send -> `too_large`.
    pub max_outbound_request_bytes: usize,
    /// Largest response body one outbound call reads -> `too_large`: an upstream cannot make the
    /// host buffer more (an endless body is cut here).
    pub max_outbound_response_bytes: usize,
    /// Outbound calls one inbound request may make -> `limit_reached` past it: a loop in the
    /// guest cannot fan out without bound.
    pub max_outbound_calls: u32,
    /// Outbound calls of this plugin in flight at once, so connections it holds to upstreams. A
    /// call past it waits for a place, within its own bounds, then fails `busy`.
    pub max_outbound_concurrency: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            fuel: 100_000_000,
            deadline: std::time::Duration::from_secs(1),
            max_memory_bytes: 64 * 1024 * 1024,
            max_response_bytes: 8 * 1024 * 1024,
            max_concurrency: 128,
            max_queue: 256,
            breaker_threshold: 20,
            breaker_backoff: std::time::Duration::from_secs(1),
            breaker_backoff_max: std::time::Duration::from_secs(30),
            outbound_timeout: std::time::Duration::from_secs(10),
            outbound_reserve: std::time::Duration::from_millis(200),
            max_outbound_request_bytes: 1024 * 1024,
            max_outbound_response_bytes: 1024 * 1024,
            max_outbound_calls: 8,
            max_outbound_concurrency: 16,
        }
    }
}

/// Capabilities a plugin gets beyond the default sandbox (stdout/stderr into the log, clocks,
/// random). Empty by default: no files, no environment, no arguments, no host functions. A change
/// here means the module is checked again (its imports must be granted), not just re-bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginGrants {
    /// Environment variables passed through, by name, with the host's current value.
    pub env: Vec<String>,
    /// Host directories pre-opened for the guest, read-only.
    pub dirs: Vec<DirGrant>,
    /// A `[plugins.NAME.vars]` table exists: the module may import `wasmgate.var_get`.
    pub vars: bool,
    /// Stores of `[stores.*]` the plugin may use (`kv = [...]`): the module may import the `kv_*`
    /// functions, and opens only these.
    pub kv: Vec<String>,
    /// Destinations the plugin may call (`allowed_outbound_hosts = [...]`): the module may import
    /// `http_send` and `http_send_timeout`, and reaches only these.
    pub outbound: Vec<AllowEntry>,
}

impl PluginGrants {
    /// Whether these grants include the host-function group `grant` (docs/ABI.md
    /// "Capabilities").
    pub fn includes(&self, grant: wasmgate_abi::Grant) -> bool {
        match grant {
            wasmgate_abi::Grant::Vars => self.vars,
            wasmgate_abi::Grant::Kv => !self.kv.is_empty(),
            wasmgate_abi::Grant::Outbound => !self.outbound.is_empty(),
        }
    }
}

/// One host directory a plugin may read, and the path the guest sees it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    pub host: std::path::PathBuf,
    pub guest: String,
}

/// Engine-wide settings of the wasm runtime: shared by every plugin, fixed at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// How often the one epoch ticker advances the engine's epoch. Guests yield to the async
    /// scheduler at each tick (so guest CPU cannot starve the server) and deadlines are checked at
    /// this granularity.
    pub epoch_tick: std::time::Duration,
    /// Most wasm instances alive at once (the pooling allocator's slot count); bounds the memory
    /// reserved for guests. A request past it waits for a slot.
    pub max_instances: u32,
    /// Largest linear memory any plugin may be configured with: the size of one pool slot.
    pub max_memory_bytes: u64,
    /// Wasm stack a guest may use -> 500 `trap` (stack overflow) past it.
    pub max_stack_bytes: usize,
    /// Linear memory (and table) bytes of a finished instance that are reset by copying instead of
    /// being handed back to the kernel, so that the next instance in the slot neither pays for
    /// `madvise` (page-table work and TLB shootdowns) nor page-faults them back in. On Linux >= 6.7
    /// only the pages the guest actually dirtied are copied, up to this much; on older kernels the
    /// first this-many bytes are always reset, so keep it small there (64KiB). Costs resident
    /// memory: at most this much per pool slot that has been used. See
    /// docs/decisions/0003-performance.md.
    pub keep_resident_bytes: usize,
    /// Wall-clock bound of the load-time check (`_initialize` + `wasmgate_abi_version()` on a
    /// throwaway instance) that every plugin passes before it serves. Generous on purpose: the
    /// check runs off the request path, fuel stops a looping `_initialize` long before it, and a
    /// tight bound would refuse a valid plugin when a loaded machine starves the check's thread.
    /// Only a guest blocked in a host call during initialisation ever meets it.
    pub load_check_deadline: std::time::Duration,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            epoch_tick: std::time::Duration::from_millis(1),
            max_instances: 256,
            max_memory_bytes: 256 * 1024 * 1024,
            max_stack_bytes: 512 * 1024,
            keep_resident_bytes: 1024 * 1024,
            load_check_deadline: std::time::Duration::from_secs(10),
        }
    }
}

mod error;
mod file;
mod outbound;
pub(crate) mod redact;
mod stores;
mod values;
mod vars;

pub use crate::clientaddr::IpNet;
pub use error::ConfigError;
pub use outbound::{AllowEntry, HostPattern, OutboundSettings, Scheme};
pub use stores::{SqliteSync, StoreBackend, StoreConfig, StoreLimits};
use vars::Resolve;
pub use vars::{MAX_VAR_BYTES, Var, VarSource, Vars};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The embedded default configuration: the repository's own `wasmgate.toml`. It is what `serve`
/// uses when no `--config` is given and there is no `wasmgate.toml` in the working directory, and a
/// test checks that its values are exactly the defaults documented on each field here.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../wasmgate.toml");

/// A validated configuration. Building one is the only way to get one, so everything downstream
/// may rely on: routes reference existing plugins, patterns are valid and do not conflict, every
/// limit is non-zero and consistent with the others.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where this configuration came from (a file path, or `<embedded>`), for messages.
    pub source: PathBuf,
    /// The file a reload re-reads: set when the configuration was read from a file.
    pub file: Option<PathBuf>,
    /// Directory relative plugin paths are resolved against: the config file's directory.
    pub base_dir: PathBuf,
    pub server: ServerSettings,
    pub timeouts: Timeouts,
    pub http: HttpLimits,
    pub runtime: RuntimeSettings,
    /// Where compiled modules are cached (`[runtime] cache_dir`, resolved), or `None` when
    /// `module_cache = false`.
    pub module_cache: Option<PathBuf>,
    /// Limits of every plugin that does not set its own.
    pub plugin_defaults: PluginLimits,
    /// The host's outbound HTTP policy (`[outbound]`); each plugin's bounds are in its limits.
    pub outbound: OutboundSettings,
    /// Key-value stores by name, in name order (`[stores.NAME]`).
    pub stores: Vec<StoreConfig>,
    /// Plugins by name, in the order the file lists them.
    pub plugins: Vec<PluginConfig>,
    /// Routes in the order the file lists them.
    pub routes: Vec<RouteConfig>,
}

/// Listener and connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Address to listen on (overridden by `--listen`).
    pub listen: SocketAddr,
    /// Most connections served at once. At the cap the server stops accepting, so further clients
    /// wait in the kernel's backlog instead of being accepted and dropped.
    pub max_connections: usize,
    /// Requests served on one connection before the server closes it (`Connection: close` on the
    /// last), so that long-lived clients rebalance and per-connection state is recycled.
    pub max_requests_per_connection: u64,
    /// Watch the config file and the plugin files, and reload what changed (also `--watch`).
    /// SIGHUP reloads whether or not this is set.
    pub watch: bool,
    /// Quiet period after the last file event before a reload starts, so a file still being
    /// written (an editor, a build, a copy) is read once, whole.
    pub watch_debounce: Duration,
    /// Set `SO_REUSEPORT` on the listener, so several wasmgate processes on one host can share
    /// one address (the kernel balances new connections between them).
    pub reuse_port: bool,
    /// After SIGTERM/SIGINT, how long `/ready` answers 503 while the server still accepts and
    /// serves normally, before it stops accepting: time for a load balancer to notice and stop
    /// sending. Zero stops accepting at once.
    pub drain_delay: Duration,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers are believed when telling plugins the
    /// client's address (docs/ABI.md, v2 field `client_addr`). Empty: every peer is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// The response header that carries each request's id (the id of its log lines and of the
    /// plugin's `request_id` field), so a client can quote it; `None` sends none.
    pub request_id_header: Option<String>,
    /// A per-request warning (a refused or failed plugin call, a failed store operation) is
    /// logged the first time for its kind and plugin or store, then only counted: one line per
    /// this interval says how many more there were. An overload burst of thousands of
    /// rejections is a few lines, not thousands; `/metrics` still counts every one.
    pub log_repeat_interval: Duration,
}

/// Every timeout the server enforces. None of them may be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed to receive a whole request head, counted from its first byte (or from accept
    /// for the first request) -> 408 and close. The slowloris bound: an absolute deadline, not a
    /// per-read one, so trickling a byte at a time does not extend it.
    pub header_read: Duration,
    /// Longest stall while reading a body (no byte received) -> 408 and close.
    pub body_read: Duration,
    /// Longest time to receive a whole body, from the end of its head -> 408 and close. Bounds the
    /// slow-drip client that sends one byte just before each `body_read` stall would expire.
    pub body_total: Duration,
    /// Longest a keep-alive connection may sit between requests -> closed without an answer.
    pub idle: Duration,
    /// Longest stall while writing a response (the client is not reading) -> closed.
    pub write: Duration,
    /// How long graceful shutdown waits for in-flight requests before closing them by force.
    pub shutdown_grace: Duration,
    /// Ceiling of the exponential back-off after accept errors such as EMFILE.
    pub accept_backoff_max: Duration,
    /// After answering and deciding to close, how long to keep reading (and discarding) what the
    /// client still sends, so that closing with unread data does not reset the connection and
    /// destroy the answer before the client reads it (the "lingering close" of RFC 9112 §9.6).
    pub linger: Duration,
}

/// How a plugin's module is obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A crate in `plugins/` built by `wasmgate build` into `plugins/target/wasm32-wasip1/release`.
    Crate { dir: PathBuf, wasm: PathBuf },
    /// A ready `.wasm` or `.wat` file.
    File(PathBuf),
}

impl PluginSource {
    /// The module file the runtime loads.
    pub fn module_path(&self) -> &Path {
        match self {
            PluginSource::Crate { wasm, .. } => wasm,
            PluginSource::File(path) => path,
        }
    }
}

/// One `[plugins.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    pub name: String,
    pub source: PluginSource,
    pub limits: PluginLimits,
    pub grants: PluginGrants,
    /// Its variables, resolved when the configuration was read (empty without a `vars` table;
    /// `grants.vars` says whether the table exists).
    pub vars: std::sync::Arc<Vars>,
    /// The command `wasmgate build` runs (with `sh -c`, in the config's directory) to produce a
    /// `wasm` module, e.g. a C plugin's `clang` line; `None` for ready modules and crates.
    pub build: Option<String>,
    /// Instance reuse, when the operator opts in (`reuse = { ... }`); it happens only if the
    /// module opts in too (docs/ABI.md, `wasmgate_reusable`). `None`: a fresh instance per request.
    pub reuse: Option<ReuseSettings>,
    /// Whether the module's `_initialize` runs once at load and requests start from a snapshot
    /// of what it left (`preinitialize`, default `true`; docs/writing-plugins.md has the rules).
    /// Off, it runs at the start of every request.
    pub preinitialize: bool,
}

/// `[plugins.NAME] reuse = { max_requests = N, idle_timeout = "30s" }`: keep a plugin's instances
/// warm between requests instead of creating a fresh one per request. State a request leaves in
/// an instance (globals, heap) is visible to later requests of the same plugin version; it never
/// crosses to another plugin or version (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReuseSettings {
    /// Requests one instance serves before it is thrown away, so leaks and fragmentation in the
    /// guest stay bounded.
    pub max_requests: u32,
    /// How long an instance may wait unused before it is thrown away (and its pool slot freed).
    pub idle_timeout: std::time::Duration,
}

impl ReuseSettings {
    /// `idle_timeout` when the table leaves it out.
    pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// Methods served; empty means any method (`method = "*"`).
    pub methods: Vec<String>,
    /// The path pattern (`/exact`, `/:param`, `/*rest`), validated by the route table.
    pub pattern: String,
    /// Name of the plugin that answers.
    pub plugin: String,
    /// 1-based line of the entry in its file, for errors found later (pattern conflicts).
    pub line: usize,
}

/// Whether reading a configuration reads its variables' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// Read each source (environment variables, secret files): to serve it.
    Read,
    /// Check each variable's syntax only and read no value, so an unset environment variable or
    /// a missing secret file is not an error ([`Vars::absent_here`] tells which are absent).
    /// For the authoring commands (`check`, `build`, `new`, `up --watch`'s crate list), which
    /// need a module's grants or the crate list, never a deployment's secrets. Never serve such
    /// a configuration: its variables have no values.
    Declared,
}

impl Config {
    /// Reads and validates the file at `path`, with its variables' values (to serve).
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        Config::from_file_with(path, Values::Read)
    }

    /// Reads and validates the file at `path`; `values` says whether variables are read.
    pub fn from_file_with(path: &Path, values: Values) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
        let mut config = Config::parse_with(&text, path, &base_dir_of(path), values)?;
        config.file = Some(path.to_path_buf());
        Ok(config)
    }

    /// The embedded default, with plugin paths relative to `base_dir`.
    pub fn embedded(base_dir: &Path) -> Result<Config, ConfigError> {
        Config::embedded_with(base_dir, Values::Read)
    }

    /// [`Config::embedded`], reading variables or not as `values` says.
    pub fn embedded_with(base_dir: &Path, values: Values) -> Result<Config, ConfigError> {
        Config::parse_with(
            EMBEDDED_DEFAULT,
            Path::new("<embedded wasmgate.toml>"),
            base_dir,
            values,
        )
    }

    /// Parses and validates `text`; `source` names it in errors, `base_dir` anchors relative paths.
    pub fn parse(text: &str, source: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
        Config::parse_with(text, source, base_dir, Values::Read)
    }

    /// [`Config::parse`], reading variables or not as `values` says.
    pub fn parse_with(
        text: &str,
        source: &Path,
        base_dir: &Path,
        values: Values,
    ) -> Result<Config, ConfigError> {
        let resolve = match values {
            Values::Read => Resolve::Values(&|name| std::env::var(name).ok()),
            Values::Declared => Resolve::Declared,
        };
        file::parse(text, source, base_dir, resolve)
    }

    /// The config file this came from, when it came from one (not the embedded default): the file
    /// a reload re-reads.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The plugin called `name`.
    pub fn plugin(&self, name: &str) -> Option<&PluginConfig> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// The plugins built from a crate (`crate = "..."`), as (name, crate directory): what
    /// `wasmgate build` hands to cargo.
    pub fn plugin_crates(&self) -> Vec<(String, std::path::PathBuf)> {
        self.plugins
            .iter()
            .filter_map(|p| match &p.source {
                PluginSource::Crate { dir, .. } => Some((p.name.clone(), dir.clone())),
                PluginSource::File(_) => None,
            })
            .collect()
    }
}

/// The directory a config file's relative paths are anchored at: its own. `wasmgate.toml` has the
/// parent "", which some APIs refuse: "." instead.
fn base_dir_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 1024,
            max_requests_per_connection: 10_000,
            watch: false,
            watch_debounce: Duration::from_millis(200),
            reuse_port: false,
            drain_delay: Duration::ZERO,
            trusted_proxies: Vec::new(),
            request_id_header: Some("x-request-id".to_string()),
            log_repeat_interval: Duration::from_secs(10),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            body_total: Duration::from_secs(120),
            idle: Duration::from_secs(60),
            write: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            accept_backoff_max: Duration::from_secs(1),
            linger: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests;
