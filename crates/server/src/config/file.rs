//! The `wasmgate.toml` file format: raw serde structures, value syntax, cross-field checks.
//!
//! Owns the mapping from TOML text to [`Config`]. Value-level rules (durations, sizes, non-zero
//! counts) live in `Deserialize` impls so the TOML parser reports them with their exact position;
//! cross-field rules (routes name existing plugins, patterns do not conflict, plugin memory fits a
//! pool slot) are checked afterwards against spans kept for that purpose. It must not read anything
//! but the text it is given (variables' sources are read by `vars.rs`, and only when asked to).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::outbound::{AllowEntry, OutboundSettings};
use super::stores::{self, DEFAULT_DATA_DIR, RawStore, StoreConfig};
use super::values::{Count, Count32, Delay, Dur, Listen, Size};
use super::vars::{self, RawVar, Resolve};

use super::{
    Config, ConfigError, DirGrant, HttpLimits, PluginConfig, PluginGrants, PluginLimits,
    PluginSource, ReuseSettings, RouteConfig, RuntimeSettings, ServerSettings, Timeouts,
};
use crate::routes::RouteTable;

/// Where compiled modules are cached unless `[runtime] cache_dir` says otherwise.
pub(crate) const DEFAULT_CACHE_DIR: &str = ".wasmgate/cache";

/// Parses and validates a whole file. `resolve` says whether variables' values are read (and how
/// the host environment is, for `{ env = ".." }` variables) or only their syntax checked.
pub(super) fn parse(
    text: &str,
    source: &Path,
    base_dir: &Path,
    resolve: Resolve<'_>,
) -> Result<Config, ConfigError> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| ConfigError::at(source, text, e.span(), e.message().trim_end()))?;
    let err =
        |span: std::ops::Range<usize>, msg: String| ConfigError::at(source, text, Some(span), msg);

    let server = raw.server.resolve(&err)?;
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

    let outbound = raw.outbound.resolve(base_dir, &err)?;
    let data_dir = base_dir.join(raw.server.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR));
    let mut store_configs: Vec<StoreConfig> = Vec::with_capacity(raw.stores.len());
    for (name, table) in &raw.stores {
        if !stores::is_store_name(name) {
            return Err(err(
                table.span(),
                format!(
                    "store name `{name}` is not valid: use letters, digits, `_` and `-`, starting with a letter"
                ),
            ));
        }
        let store = table
            .get_ref()
            .resolve(name, &data_dir, base_dir)
            .map_err(|(span, message)| err(span.unwrap_or_else(|| table.span()), message))?;
        store_configs.push(store);
    }

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
        let build = match (&table.build, &source) {
            (Some(cmd), PluginSource::File(_)) => Some(cmd.get_ref().clone()),
            (Some(cmd), PluginSource::Crate { .. }) => {
                return Err(err(
                    cmd.span(),
                    format!(
                        "plugin `{name}` has `build` and `crate`: `build` is the command that makes its `wasm` file (a crate is built by cargo)"
                    ),
                ));
            }
            (None, _) => None,
        };
        let mut resolved = Vec::new();
        if let Some(list) = &table.vars {
            for (var, raw) in list.get_ref() {
                if !vars::is_var_name(var) {
                    return Err(err(
                        raw.span(),
                        format!(
                            "`{var}` is not a variable name: use letters, digits, `_`, `-` and `.`, starting with a letter or `_`"
                        ),
                    ));
                }
                let value = vars::resolve(var, raw.get_ref(), base_dir, resolve)
                    .map_err(|message| err(raw.span(), format!("plugin `{name}`: {message}")))?;
                resolved.extend(value.map(|v| (var.clone(), v)));
            }
        }
        for store in &table.kv {
            if !store_configs.iter().any(|s| s.name == *store.get_ref()) {
                let known: Vec<&str> = store_configs.iter().map(|s| s.name.as_str()).collect();
                return Err(err(
                    store.span(),
                    format!(
                        "plugin `{name}` is granted store `{}`, which no [stores.*] table defines (defined: {})",
                        store.get_ref(),
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        let outbound = table
            .allowed_outbound_hosts
            .iter()
            .map(|e| AllowEntry::parse(e.get_ref()).map_err(|m| err(e.span(), m)))
            .collect::<Result<Vec<_>, _>>()?;
        let grants = PluginGrants {
            outbound,
            vars: table.vars.is_some(),
            kv: table.kv.iter().map(|s| s.get_ref().clone()).collect(),
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
        let reuse = table.reuse.as_ref().map(|r| ReuseSettings {
            max_requests: r.max_requests.into(),
            idle_timeout: r
                .idle_timeout
                .map_or(ReuseSettings::DEFAULT_IDLE_TIMEOUT, Into::into),
        });
        plugins.push(PluginConfig {
            name,
            source,
            limits,
            grants,
            vars: std::sync::Arc::new(vars::collect(resolved)),
            build,
            reuse,
            preinitialize: table.preinitialize.unwrap_or(true),
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
        outbound,
        stores: store_configs,
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
    outbound: RawOutbound,
    #[serde(default)]
    stores: BTreeMap<String, Spanned<RawStore>>,
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
    trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
    request_id_header: Option<Spanned<String>>,
    data_dir: Option<String>,
    log_repeat_interval: Option<Spanned<Dur>>,
}

impl RawServer {
    fn resolve(
        &self,
        err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
    ) -> Result<ServerSettings, ConfigError> {
        let mut server = resolve!(self, ServerSettings::default(), {
            listen, max_connections, max_requests_per_connection, watch, watch_debounce, reuse_port,
            drain_delay, log_repeat_interval
        });
        if let Some(list) = &self.trusted_proxies {
            server.trusted_proxies = list
                .get_ref()
                .iter()
                .map(|p| {
                    p.get_ref()
                        .parse()
                        .map_err(|e| err(p.span(), format!("{e}")))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(header) = &self.request_id_header {
            let name = header.get_ref();
            server.request_id_header = if name.is_empty() {
                None
            } else if wasmgate_http::is_token(name.as_bytes()) {
                Some(name.to_ascii_lowercase())
            } else {
                return Err(err(
                    header.span(),
                    format!("`{name}` is not a header name (an HTTP token), nor \"\" to send none"),
                ));
            };
        }
        Ok(server)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOutbound {
    connect_timeout: Option<Spanned<Dur>>,
    max_redirects: Option<Spanned<u32>>,
    request_id_header: Option<Spanned<String>>,
    ca_file: Option<String>,
    #[serde(default)]
    resolve: BTreeMap<String, Spanned<String>>,
}

impl RawOutbound {
    fn resolve(
        &self,
        base_dir: &Path,
        err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
    ) -> Result<OutboundSettings, ConfigError> {
        let mut out = resolve!(self, OutboundSettings::default(), {
            connect_timeout, max_redirects
        });
        if let Some(header) = &self.request_id_header {
            let name = header.get_ref();
            out.request_id_header = match name.as_str() {
                "" => None,
                n if wasmgate_http::is_token(n.as_bytes()) => Some(n.to_ascii_lowercase()),
                n => return Err(err(header.span(), format!("`{n}` is not a header name"))),
            };
        }
        out.ca_file = self.ca_file.as_ref().map(|f| base_dir.join(f));
        for (name, addr) in &self.resolve {
            let ip = addr.get_ref().parse().map_err(|_| {
                err(
                    addr.span(),
                    format!("`{}` is not an IP address (for `{name}`)", addr.get_ref()),
                )
            })?;
            out.resolve.insert(name.to_ascii_lowercase(), ip);
        }
        Ok(out)
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
    outbound_timeout: Option<Spanned<Dur>>,
    outbound_reserve: Option<Spanned<Dur>>,
    max_outbound_request_bytes: Option<Spanned<Size>>,
    max_outbound_response_bytes: Option<Spanned<Size>>,
    max_outbound_calls: Option<Spanned<Count32>>,
    max_outbound_concurrency: Option<Spanned<Count32>>,
}

impl RawPluginLimits {
    fn resolve(&self, defaults: PluginLimits) -> PluginLimits {
        resolve!(self, defaults, {
            fuel, deadline, max_memory_bytes, max_response_bytes,
            max_concurrency, max_queue, breaker_threshold, breaker_backoff, breaker_backoff_max,
            outbound_timeout, outbound_reserve, max_outbound_request_bytes,
            max_outbound_response_bytes,
            max_outbound_calls, max_outbound_concurrency
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    #[serde(rename = "crate")]
    crate_dir: Option<Spanned<String>>,
    wasm: Option<Spanned<String>>,
    build: Option<Spanned<String>>,
    vars: Option<Spanned<BTreeMap<String, Spanned<RawVar>>>>,
    #[serde(default)]
    kv: Vec<Spanned<String>>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<Spanned<String>>,
    reuse: Option<RawReuse>,
    preinitialize: Option<bool>,
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
    outbound_timeout: Option<Spanned<Dur>>,
    outbound_reserve: Option<Spanned<Dur>>,
    max_outbound_request_bytes: Option<Spanned<Size>>,
    max_outbound_response_bytes: Option<Spanned<Size>>,
    max_outbound_calls: Option<Spanned<Count32>>,
    max_outbound_concurrency: Option<Spanned<Count32>>,
}

impl RawPlugin {
    fn resolve(&self, defaults: PluginLimits) -> PluginLimits {
        resolve!(self, defaults, {
            fuel, deadline, max_memory_bytes, max_response_bytes,
            max_concurrency, max_queue, breaker_threshold, breaker_backoff, breaker_backoff_max,
            outbound_timeout, outbound_reserve, max_outbound_request_bytes,
            max_outbound_response_bytes,
            max_outbound_calls, max_outbound_concurrency
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReuse {
    max_requests: Count32,
    idle_timeout: Option<Dur>,
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
