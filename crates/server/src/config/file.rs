//! The `wasmgate.toml` file format: raw serde structures, value syntax, cross-field checks.
//!
//! Owns the mapping from TOML text to [`Config`]. Value-level rules (durations, sizes, non-zero
//! counts) live in `Deserialize` impls so the TOML parser reports them with their exact position;
//! cross-field rules (routes name existing plugins, patterns do not conflict, plugin memory fits a
//! pool slot) are checked afterwards against spans kept for that purpose. It must not read anything
//! but the text it is given.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

use super::{
    Config, ConfigError, DirGrant, HttpLimits, PluginConfig, PluginGrants, PluginLimits,
    PluginSource, RouteConfig, RuntimeSettings, ServerSettings, Timeouts,
};
use crate::routes::RouteTable;

/// Where compiled modules are cached unless `[runtime] cache_dir` says otherwise.
pub(crate) const DEFAULT_CACHE_DIR: &str = ".wasmgate/cache";

/// Parses and validates a whole file.
pub(super) fn parse(text: &str, source: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| ConfigError::at(source, text, e.span(), e.message().trim_end()))?;
    let err =
        |span: std::ops::Range<usize>, msg: String| ConfigError::at(source, text, Some(span), msg);

    let server = raw.server.resolve();
    let timeouts = raw.timeouts.resolve();
    let http = raw.http.resolve();
    let runtime = raw.runtime.resolve();
    let module_cache = raw.runtime.cache_dir(base_dir);
    let plugin_defaults = raw.plugin_defaults.resolve(PluginLimits::default());
    check_memory(
        &plugin_defaults,
        &runtime,
        raw.plugin_defaults.max_memory_bytes.as_ref(),
        &err,
    )?;

    let mut plugins = Vec::with_capacity(raw.plugins.len());
    for (name, table) in raw.plugins {
        let span = table.span();
        let table = table.into_inner();
        if !is_plugin_name(&name) {
            return Err(err(
                span,
                format!(
                    "plugin name `{name}` is not valid: use letters, digits, `_` and `-`, starting with a letter"
                ),
            ));
        }
        let source = match (&table.crate_dir, &table.wasm) {
            (Some(dir), None) => {
                let dir = base_dir.join(dir.get_ref());
                let file = format!("{}.wasm", name.replace('-', "_"));
                let wasm = base_dir
                    .join("plugins/target/wasm32-wasip1/release")
                    .join(file);
                PluginSource::Crate { dir, wasm }
            }
            (None, Some(path)) => PluginSource::File(base_dir.join(path.get_ref())),
            (Some(dir), Some(_)) => {
                return Err(err(
                    dir.span(),
                    format!(
                        "plugin `{name}` sets both `crate` and `wasm`: give one (`crate` for a crate in plugins/, `wasm` for a .wasm/.wat file)"
                    ),
                ));
            }
            (None, None) => {
                return Err(err(
                    span,
                    format!(
                        "plugin `{name}` needs `crate = \"plugins/{name}\"` or `wasm = \"path/to/{name}.wasm\"`"
                    ),
                ));
            }
        };
        let limits = table.resolve(plugin_defaults);
        check_memory(&limits, &runtime, table.max_memory_bytes.as_ref(), &err)?;
        let grants = PluginGrants {
            env: table.env,
            dirs: table
                .dirs
                .into_iter()
                .map(|d| DirGrant {
                    host: base_dir.join(d.host),
                    guest: d.guest,
                })
                .collect(),
        };
        plugins.push(PluginConfig {
            name,
            source,
            limits,
            grants,
        });
    }

    let mut routes = Vec::with_capacity(raw.routes.len());
    for entry in &raw.routes {
        let route = entry.get_ref();
        if !plugins.iter().any(|p| p.name == *route.plugin.get_ref()) {
            let known: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
            return Err(err(
                route.plugin.span(),
                format!(
                    "route names plugin `{}`, which no [plugins.*] table defines (defined: {})",
                    route.plugin.get_ref(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        let methods = match route.method.get_ref() {
            MethodSpec::One(m) if m == "*" => Vec::new(),
            MethodSpec::One(m) => vec![m.clone()],
            MethodSpec::Many(ms) => ms.clone(),
        };
        if let Some(bad) = methods.iter().find(|m| !is_method(m)) {
            return Err(err(
                route.method.span(),
                format!(
                    "`{bad}` is not an HTTP method: methods are case-sensitive tokens such as GET, POST, or \"*\" for any"
                ),
            ));
        }
        let line = text[..entry.span().start].matches('\n').count() + 1;
        routes.push(RouteConfig {
            methods,
            pattern: route.path.get_ref().clone(),
            plugin: route.plugin.get_ref().clone(),
            line,
        });
    }
    // Patterns and conflicts are the route table's rules; build one here (leading nowhere) so a
    // bad table is a config error with a position, never a failure at serve time.
    let mut table = RouteTable::with_native_routes(|_| ());
    for (entry, route) in raw.routes.iter().zip(&routes) {
        if let Err(e) = table.insert(&route.methods, &route.pattern, ()) {
            return Err(err(entry.get_ref().path.span(), e.to_string()));
        }
    }

    Ok(Config {
        source: source.to_path_buf(),
        file: None,
        base_dir: base_dir.to_path_buf(),
        server,
        timeouts,
        http,
        runtime,
        module_cache,
        plugin_defaults,
        plugins,
        routes,
    })
}

fn check_memory(
    limits: &PluginLimits,
    runtime: &RuntimeSettings,
    span: Option<&Spanned<Size>>,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<(), ConfigError> {
    match span {
        Some(s) if limits.max_memory_bytes > runtime.max_memory_bytes => Err(err(
            s.span(),
            format!(
                "max_memory_bytes = {} is larger than [runtime] max_memory_bytes = {} (the pool slot size); raise that too",
                limits.max_memory_bytes, runtime.max_memory_bytes
            ),
        )),
        _ => Ok(()),
    }
}

fn is_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A method is a token (RFC 9110 §9.1), by the one token rule of the protocol crate.
fn is_method(m: &str) -> bool {
    wasmgate_http::is_token(m.as_bytes())
}

// ---- raw file structure -------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    runtime: RawRuntime,
    #[serde(default)]
    plugin_defaults: RawPluginLimits,
    #[serde(default)]
    plugins: BTreeMap<String, Spanned<RawPlugin>>,
    #[serde(default)]
    routes: Vec<Spanned<RawRoute>>,
}

/// Fills each field from the file, or from the default when absent.
macro_rules! resolve {
    ($raw:expr, $default:expr, { $($field:ident),* $(,)? }) => {{
        let mut out = $default;
        $( if let Some(v) = &$raw.$field { out.$field = v.get_ref().clone().into(); } )*
        out
    }};
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<Listen>>,
    max_connections: Option<Spanned<Count>>,
    max_requests_per_connection: Option<Spanned<Count>>,
    watch: Option<Spanned<bool>>,
    watch_debounce: Option<Spanned<Dur>>,
    reuse_port: Option<Spanned<bool>>,
    drain_delay: Option<Spanned<Delay>>,
}

impl RawServer {
    fn resolve(&self) -> ServerSettings {
        resolve!(self, ServerSettings::default(), {
            listen, max_connections, max_requests_per_connection, watch, watch_debounce, reuse_port,
            drain_delay
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    header_read: Option<Spanned<Dur>>,
    body_read: Option<Spanned<Dur>>,
    body_total: Option<Spanned<Dur>>,
    idle: Option<Spanned<Dur>>,
    write: Option<Spanned<Dur>>,
    shutdown_grace: Option<Spanned<Dur>>,
    accept_backoff_max: Option<Spanned<Dur>>,
    linger: Option<Spanned<Dur>>,
}

impl RawTimeouts {
    fn resolve(&self) -> Timeouts {
        resolve!(self, Timeouts::default(), {
            header_read, body_read, body_total, idle, write, shutdown_grace, accept_backoff_max, linger
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    max_method_bytes: Option<Spanned<Size>>,
    max_target_bytes: Option<Spanned<Size>>,
    max_header_bytes: Option<Spanned<Size>>,
    max_headers: Option<Spanned<Count>>,
    max_body_bytes: Option<Spanned<Size>>,
    max_chunk_line_bytes: Option<Spanned<Size>>,
    max_trailer_bytes: Option<Spanned<Size>>,
}

impl RawHttp {
    fn resolve(&self) -> HttpLimits {
        resolve!(self, HttpLimits::default(), {
            max_method_bytes, max_target_bytes, max_header_bytes, max_headers,
            max_body_bytes, max_chunk_line_bytes, max_trailer_bytes
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRuntime {
    epoch_tick: Option<Spanned<Dur>>,
    max_instances: Option<Spanned<Count32>>,
    max_memory_bytes: Option<Spanned<Size>>,
    max_stack_bytes: Option<Spanned<Size>>,
    keep_resident_bytes: Option<Spanned<Size>>,
    load_check_deadline: Option<Spanned<Dur>>,
    module_cache: Option<bool>,
    cache_dir: Option<String>,
}

impl RawRuntime {
    /// The module cache directory, relative paths anchored at the config's directory.
    fn cache_dir(&self, base_dir: &Path) -> Option<std::path::PathBuf> {
        let dir = self.cache_dir.as_deref().unwrap_or(DEFAULT_CACHE_DIR);
        // wasmtime's cache wants an absolute directory.
        let dir = base_dir.join(dir);
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        self.module_cache.unwrap_or(true).then_some(dir)
    }

    fn resolve(&self) -> RuntimeSettings {
        resolve!(self, RuntimeSettings::default(), {
            epoch_tick, max_instances, max_memory_bytes, max_stack_bytes, keep_resident_bytes,
            load_check_deadline
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPluginLimits {
    fuel: Option<Spanned<Count>>,
    deadline: Option<Spanned<Dur>>,
    max_memory_bytes: Option<Spanned<Size>>,
    max_response_bytes: Option<Spanned<Size>>,
    max_concurrency: Option<Spanned<Count>>,
    max_queue: Option<Spanned<Count>>,
    breaker_threshold: Option<Spanned<Count32>>,
    breaker_backoff: Option<Spanned<Dur>>,
    breaker_backoff_max: Option<Spanned<Dur>>,
}

impl RawPluginLimits {
    fn resolve(&self, defaults: PluginLimits) -> PluginLimits {
        resolve!(self, defaults, {
            fuel, deadline, max_memory_bytes, max_response_bytes,
            max_concurrency, max_queue, breaker_threshold, breaker_backoff, breaker_backoff_max
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    #[serde(rename = "crate")]
    crate_dir: Option<Spanned<String>>,
    wasm: Option<Spanned<String>>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    dirs: Vec<RawDir>,
    // The limits are spelled out rather than `#[serde(flatten)]`ed from `RawPluginLimits`: serde's
    // flatten loses TOML spans and cannot deny unknown keys.
    fuel: Option<Spanned<Count>>,
    deadline: Option<Spanned<Dur>>,
    max_memory_bytes: Option<Spanned<Size>>,
    max_response_bytes: Option<Spanned<Size>>,
    max_concurrency: Option<Spanned<Count>>,
    max_queue: Option<Spanned<Count>>,
    breaker_threshold: Option<Spanned<Count32>>,
    breaker_backoff: Option<Spanned<Dur>>,
    breaker_backoff_max: Option<Spanned<Dur>>,
}

impl RawPlugin {
    fn resolve(&self, defaults: PluginLimits) -> PluginLimits {
        resolve!(self, defaults, {
            fuel, deadline, max_memory_bytes, max_response_bytes,
            max_concurrency, max_queue, breaker_threshold, breaker_backoff, breaker_backoff_max
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    host: String,
    guest: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    method: Spanned<MethodSpec>,
    path: Spanned<String>,
    plugin: Spanned<String>,
}

#[derive(Deserialize, Clone)]
#[serde(
    untagged,
    expecting = "a method name such as \"GET\", a list of them, or \"*\" for any"
)]
enum MethodSpec {
    One(String),
    Many(Vec<String>),
}

// ---- value syntax -------------------------------------------------------------------------------

/// A non-zero duration written `"250ms"`, `"10s"` or `"2m"`.
#[derive(Clone, Copy)]
struct Dur(Duration);

impl From<Dur> for Duration {
    fn from(d: Dur) -> Duration {
        d.0
    }
}

/// Parses `"250ms"`, `"10s"`, `"2m"`; `None` for anything else or zero.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = s[..split].parse().ok()?;
    let d = match &s[split..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Dur).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid duration `{s}`: expected a non-zero whole number followed by ms, s or m, e.g. \"250ms\", \"10s\", \"2m\""
            ))
        })
    }
}

/// A duration that may be zero (`"0s"`): a delay that can be switched off.
#[derive(Clone, Copy)]
struct Delay(Duration);

impl From<Delay> for Duration {
    fn from(d: Delay) -> Duration {
        d.0
    }
}

impl<'de> Deserialize<'de> for Delay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let zero = s
            .strip_suffix("ms")
            .or_else(|| s.strip_suffix('s'))
            .or_else(|| s.strip_suffix('m'))
            == Some("0");
        match parse_duration(&s) {
            Some(d) => Ok(Delay(d)),
            None if zero => Ok(Delay(Duration::ZERO)),
            None => Err(de::Error::custom(format!(
                "invalid duration `{s}`: expected a whole number followed by ms, s or m, e.g. \"0s\", \"5s\""
            ))),
        }
    }
}

/// A non-zero byte size: an integer, or a string with a unit (`"512KiB"`, `"64MiB"`, `"1GiB"`).
#[derive(Clone, Copy)]
struct Size(u64);

macro_rules! size_into {
    ($($t:ty),*) => {$(
        impl From<Size> for $t {
            fn from(s: Size) -> $t {
                // Validated to fit when deserialized (see `Size::fits`).
                <$t>::try_from(s.0).unwrap_or(<$t>::MAX)
            }
        }
    )*};
}
size_into!(u64, u32, usize);

/// Parses a size with an optional binary unit; `None` for bad syntax, overflow or zero.
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let mult: u64 = match s[split..].trim_start() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
        .filter(|&v| v > 0 && v <= u64::from(u32::MAX) * 16)
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-zero size: a number of bytes, or a string like \"512KiB\", \"64MiB\", \"1GiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .ok()
                    .filter(|&v| v > 0)
                    .map(Size)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "invalid size {v}: must be a positive number of bytes"
                        ))
                    })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).ok_or_else(|| {
                    E::custom(format!(
                        "invalid size `{v}`: expected a positive number with an optional unit B, KiB, MiB or GiB, e.g. \"64MiB\""
                    ))
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A positive whole number (TOML integers are signed 64-bit, so up to `i64::MAX`).
#[derive(Clone, Copy)]
struct Count(u64);

impl From<Count> for u64 {
    fn from(c: Count) -> u64 {
        c.0
    }
}

impl From<Count> for usize {
    fn from(c: Count) -> usize {
        // 64-bit targets only (wasmgate needs 64-bit address space for the pooling allocator).
        usize::try_from(c.0).unwrap_or(usize::MAX)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        u64::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .map(Count)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid value {v}: must be a positive whole number"
                ))
            })
    }
}

/// A positive whole number that must fit 32 bits (counts wasmtime takes as `u32`).
#[derive(Clone, Copy)]
struct Count32(u32);

impl From<Count32> for u32 {
    fn from(c: Count32) -> u32 {
        c.0
    }
}

impl<'de> Deserialize<'de> for Count32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        u32::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .map(Count32)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid value {v}: must be a whole number from 1 to {}",
                    u32::MAX
                ))
            })
    }
}

/// A socket address to listen on.
#[derive(Clone, Copy)]
struct Listen(SocketAddr);

impl From<Listen> for SocketAddr {
    fn from(l: Listen) -> SocketAddr {
        l.0
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Listen).map_err(|_| {
            de::Error::custom(format!(
                "invalid listen address `{s}`: expected IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::]:8080\""
            ))
        })
    }
}
