//! Outbound HTTP for plugins: one call at a time through a client that only reaches what the
//! plugin's allow-list names, never a guarded address by accident, and never for longer or larger
//! than its bounds.
//!
//! Owns the clients (one per plugin and allow-list, each with its connection pool per host), the
//! allow-list check (before any connection), the SSRF guard (on literal addresses here, on DNS
//! answers in `resolver`, on every redirect target in the redirect policy), the bounds
//! (connect and total timeouts never past the inbound request's deadline, a per-plugin
//! concurrency cap, a response size cap), the headers the host adds (User-Agent, the request id,
//! `traceparent`), and the metrics. Each failure is a distinct [`OutboundError`], which the
//! runtime turns into the ABI's error code. It sees plain values, never guest memory.

mod guard;
mod resolver;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::sync::Semaphore;

use crate::config::{AllowEntry, OutboundSettings, PluginLimits};
use crate::metrics::{Metrics, OutboundOutcome};
use resolver::{GuardedResolver, ResolveError};

/// What the host sends as `User-Agent` (a plugin's own comes first).
const USER_AGENT: &str = concat!("wasmgate/", env!("CARGO_PKG_VERSION"));

/// Why an outbound call did not produce a response. Each maps to one ABI error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OutboundError {
    /// The URL (or a redirect's) is not on the plugin's allow-list.
    #[error(
        "{url} is not allowed for plugin `{plugin}`: add \"{entry}\" to its allowed_outbound_hosts"
    )]
    NotAllowed {
        url: String,
        plugin: String,
        entry: String,
    },
    /// The destination is (or resolved to) a guarded address no entry names.
    #[error(
        "{host} is {why} ({addr}), which plugins may not reach unless an allowed_outbound_hosts entry names that address"
    )]
    AddressBlocked {
        host: String,
        addr: IpAddr,
        why: &'static str,
    },
    #[error("cannot resolve {0}")]
    Dns(String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    TooLarge(String),
    #[error(
        "plugin `{plugin}` already has {max} outbound calls in flight (max_outbound_concurrency)"
    )]
    Busy { plugin: String, max: u32 },
    #[error("the upstream broke the protocol: {0}")]
    Protocol(String),
    #[error("{0}")]
    Invalid(String),
}

impl OutboundError {
    fn outcome(&self) -> OutboundOutcome {
        match self {
            OutboundError::NotAllowed { .. } => OutboundOutcome::Denied,
            OutboundError::AddressBlocked { .. } => OutboundOutcome::AddressBlocked,
            OutboundError::Dns(_) => OutboundOutcome::Dns,
            OutboundError::Connect(_) => OutboundOutcome::Connect,
            OutboundError::Timeout(_) => OutboundOutcome::Timeout,
            OutboundError::TooLarge(_) => OutboundOutcome::TooLarge,
            OutboundError::Busy { .. } => OutboundOutcome::Busy,
            OutboundError::Protocol(_) => OutboundOutcome::Protocol,
            OutboundError::Invalid(_) => OutboundOutcome::Invalid,
        }
    }
}

/// One call as the plugin asked for it.
pub(crate) struct Call<'a> {
    pub(crate) method: &'a [u8],
    pub(crate) url: &'a [u8],
    pub(crate) headers: Vec<(&'a [u8], &'a [u8])>,
    pub(crate) body: &'a [u8],
}

/// What the host adds from the inbound request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Forwarded {
    /// The inbound request's id.
    pub(crate) request_id: Option<String>,
    /// The inbound `traceparent` (W3C Trace Context), passed through.
    pub(crate) traceparent: Option<String>,
}

/// An upstream's answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
}

/// One plugin's bounds on its outbound calls (its `max_outbound_*` limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    timeout: Duration,
    max_request_bytes: usize,
    max_response_bytes: usize,
    max_calls: u32,
    max_concurrency: u32,
}

impl Bounds {
    pub(crate) fn of(limits: &PluginLimits) -> Bounds {
        Bounds {
            timeout: limits.outbound_timeout,
            max_request_bytes: limits.max_outbound_request_bytes,
            max_response_bytes: limits.max_outbound_response_bytes,
            max_calls: limits.max_outbound_calls,
            max_concurrency: limits.max_outbound_concurrency,
        }
    }
}

/// The outbound service: settings and the plugins' clients.
pub(crate) struct Outbound {
    settings: OutboundSettings,
    /// Extra trusted roots (`ca_file`), read once.
    roots: Vec<reqwest::Certificate>,
    /// Each plugin's client, replaced when its allow-list or bounds change on a reload (so a
    /// plugin has one client, and its pooled connections survive reloads that keep them).
    clients: Mutex<HashMap<String, Arc<PluginClient>>>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl Outbound {
    /// The service for `settings`; fails when `ca_file` cannot be read or parsed.
    pub(crate) fn new(
        settings: &OutboundSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Outbound, String> {
        let roots = match &settings.ca_file {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    format!("ca_file {} is not PEM certificates: {e}", path.display())
                })?
            }
        };
        Ok(Outbound {
            settings: settings.clone(),
            roots,
            clients: Mutex::default(),
            metrics,
        })
    }

    /// The client of `plugin` allowed to reach `allow` within `bounds` (`None` when it may reach
    /// nothing).
    pub(crate) fn client(
        &self,
        plugin: &str,
        allow: &[AllowEntry],
        bounds: Bounds,
    ) -> Result<Option<Arc<PluginClient>>, String> {
        if allow.is_empty() {
            return Ok(None);
        }
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients
            .get(plugin)
            .filter(|c| *c.allow == *allow && c.bounds == bounds)
        {
            return Ok(Some(c.clone()));
        }
        let client = Arc::new(PluginClient::new(plugin, allow, bounds, self)?);
        clients.insert(plugin.to_string(), client.clone());
        Ok(Some(client))
    }
}

/// One plugin's client: its allow-list, its connection pool, its concurrency cap.
pub(crate) struct PluginClient {
    plugin: String,
    allow: Arc<[AllowEntry]>,
    http: reqwest::Client,
    permits: Semaphore,
    bounds: Bounds,
    /// The request id's header name (`[outbound] request_id_header`).
    request_id_header: Option<String>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for PluginClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginClient")
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

impl PluginClient {
    fn new(
        plugin: &str,
        allow: &[AllowEntry],
        bounds: Bounds,
        service: &Outbound,
    ) -> Result<PluginClient, String> {
        let allow: Arc<[AllowEntry]> = allow.into();
        let settings = &service.settings;
        let policy = {
            let (allow, plugin) = (allow.clone(), plugin.to_string());
            let max = settings.max_redirects as usize;
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > max {
                    return attempt.error(OutboundError::Protocol(format!(
                        "more than {max} redirects (max_redirects)"
                    )));
                }
                match check(&plugin, &allow, attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            })
        };
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .user_agent(USER_AGENT)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(bounds.max_concurrency as usize)
            .redirect(if settings.max_redirects == 0 {
                reqwest::redirect::Policy::none()
            } else {
                policy
            })
            .dns_resolver(Arc::new(GuardedResolver::new(
                settings.resolve.clone(),
                allow.clone(),
            )));
        for root in &service.roots {
            builder = builder.add_root_certificate(root.clone());
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the outbound client: {e}"))?;
        Ok(PluginClient {
            plugin: plugin.to_string(),
            allow,
            http,
            permits: Semaphore::new(bounds.max_concurrency.max(1) as usize),
            bounds,
            request_id_header: settings.request_id_header.clone(),
            metrics: service.metrics.clone(),
        })
    }

    /// Outbound calls one inbound request may make.
    pub(crate) fn max_calls_per_request(&self) -> u32 {
        self.bounds.max_calls
    }

    /// Sends `call`, bounded by the call's timeout and by `deadline` (the inbound request's).
    pub(crate) async fn send(
        &self,
        call: Call<'_>,
        forwarded: &Forwarded,
        deadline: Instant,
    ) -> Result<Answer, OutboundError> {
        let started = Instant::now();
        let until = deadline.min(started + self.bounds.timeout);
        let url = std::str::from_utf8(call.url)
            .ok()
            .and_then(|u| Url::parse(u).ok())
            .ok_or_else(|| {
                OutboundError::Invalid(format!(
                    "{:?} is not an absolute http(s) URL",
                    String::from_utf8_lossy(&call.url[..call.url.len().min(200)])
                ))
            });
        let host = url
            .as_ref()
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let sent = call.body.len() as u64;
        let result = match url {
            Ok(url) => {
                let bounded =
                    tokio::time::timeout_at(until.into(), self.exchange(url, call, forwarded));
                match bounded.await {
                    Ok(r) => r,
                    Err(_) => Err(OutboundError::Timeout(until - started)),
                }
            }
            Err(e) => Err(e),
        };
        let (outcome, status, received) = match &result {
            Ok(a) => (OutboundOutcome::Ok, Some(a.status), a.body.len() as u64),
            Err(e) => (e.outcome(), None, 0),
        };
        self.metrics.outbound_call(
            &self.plugin,
            &host,
            outcome,
            status,
            started.elapsed(),
            (sent, received),
        );
        result
    }

    async fn exchange(
        &self,
        url: Url,
        call: Call<'_>,
        forwarded: &Forwarded,
    ) -> Result<Answer, OutboundError> {
        check(&self.plugin, &self.allow, &url)?;
        if call.body.len() > self.bounds.max_request_bytes {
            return Err(OutboundError::TooLarge(format!(
                "a request body of {} bytes is more than max_outbound_request_bytes ({})",
                call.body.len(),
                self.bounds.max_request_bytes
            )));
        }
        let method = reqwest::Method::from_bytes(call.method)
            .map_err(|_| OutboundError::Invalid("the method is not an HTTP token".into()))?;
        let id_header = self.request_id_header.as_deref();
        let headers = headers(&call.headers, forwarded, id_header)?;
        let _place = match self.permits.try_acquire() {
            Ok(p) => p,
            Err(_) => self
                .permits
                .acquire()
                .await
                .map_err(|_| OutboundError::Busy {
                    plugin: self.plugin.clone(),
                    max: self.bounds.max_concurrency,
                })?,
        };
        let response = self
            .http
            .request(method, url)
            .headers(headers)
            .body(call.body.to_vec())
            .send()
            .await
            .map_err(classify)?;
        let cap = self.bounds.max_response_bytes;
        if response.content_length().is_some_and(|n| n > cap as u64) {
            return Err(too_large(cap));
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect();
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > cap {
                return Err(too_large(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

fn too_large(cap: usize) -> OutboundError {
    OutboundError::TooLarge(format!(
        "the response body is larger than max_outbound_response_bytes ({cap})"
    ))
}

/// Whether `plugin` (allowed `allow`) may call `url`: an entry allows it, and a literal address
/// is not guarded (or an entry names it). Decided before any connection.
fn check(plugin: &str, allow: &[AllowEntry], url: &Url) -> Result<(), OutboundError> {
    let scheme = url.scheme();
    let (host, ip) = match url.host() {
        Some(url::Host::Domain(d)) => (d.to_ascii_lowercase(), None),
        Some(url::Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
        Some(url::Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
        None => {
            return Err(OutboundError::Invalid(format!("{url} has no host")));
        }
    };
    let port = url.port_or_known_default().unwrap_or(0);
    if !matches!(scheme, "http" | "https") {
        return Err(OutboundError::Invalid(format!(
            "{url}: only http and https URLs can be called"
        )));
    }
    if !allow.iter().any(|e| e.allows(scheme, &host, port)) {
        let default = if scheme == "https" { 443 } else { 80 };
        let shown = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let entry = if port == default {
            format!("{scheme}://{shown}")
        } else {
            format!("{scheme}://{shown}:{port}")
        };
        return Err(OutboundError::NotAllowed {
            url: url.to_string(),
            plugin: plugin.to_string(),
            entry,
        });
    }
    if let Some(ip) = ip
        && let Some(why) = guard::classify(ip)
        && !allow.iter().any(|e| e.names_address(ip))
    {
        return Err(OutboundError::AddressBlocked {
            host,
            addr: ip,
            why: why.describe(),
        });
    }
    Ok(())
}

/// The request headers: the plugin's (minus what the host owns), then the forwarded ones (the
/// request id under `id_header`, and `traceparent`), unless the plugin set them itself.
fn headers(
    given: &[(&[u8], &[u8])],
    forwarded: &Forwarded,
    id_header: Option<&str>,
) -> Result<reqwest::header::HeaderMap, OutboundError> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    const HOST_OWNED: [&str; 5] = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "upgrade",
    ];
    let mut map = HeaderMap::new();
    for (name, value) in given {
        let name = HeaderName::from_bytes(name).map_err(|_| {
            OutboundError::Invalid(format!(
                "{:?} is not a header name",
                String::from_utf8_lossy(name)
            ))
        })?;
        if HOST_OWNED.contains(&name.as_str()) {
            return Err(OutboundError::Invalid(format!(
                "the header `{name}` is set by the host"
            )));
        }
        let value = HeaderValue::from_bytes(value).map_err(|_| {
            OutboundError::Invalid(format!("the value of `{name}` has a control character"))
        })?;
        map.append(name, value);
    }
    if let Some(ua) = map.get(reqwest::header::USER_AGENT) {
        let combined = format!("{} {USER_AGENT}", String::from_utf8_lossy(ua.as_bytes()));
        if let Ok(v) = HeaderValue::from_str(&combined) {
            map.insert(reqwest::header::USER_AGENT, v);
        }
    }
    let mut add = |name: &str, value: &Option<String>| {
        if let (Ok(n), Some(Ok(v))) = (
            HeaderName::from_bytes(name.as_bytes()),
            value.as_deref().map(HeaderValue::from_str),
        ) && !map.contains_key(&n)
        {
            map.insert(n, v);
        }
    };
    add("traceparent", &forwarded.traceparent);
    if let Some(header) = id_header {
        add(header, &forwarded.request_id);
    }
    Ok(map)
}

/// Turns a client error into its kind, looking through its causes for the guard's verdicts.
fn classify(e: reqwest::Error) -> OutboundError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(verdict) = c.downcast_ref::<OutboundError>() {
            return verdict.clone();
        }
        if let Some(r) = c.downcast_ref::<ResolveError>() {
            return r.clone().into();
        }
        if is_tls(c) {
            return OutboundError::Protocol(format!("TLS: {c}"));
        }
        cause = c.source();
    }
    if e.is_timeout() {
        OutboundError::Timeout(Duration::ZERO)
    } else if e.is_connect() {
        OutboundError::Connect(chain(&e))
    } else if e.is_redirect() || e.is_body() || e.is_decode() || e.is_request() {
        OutboundError::Protocol(chain(&e))
    } else {
        OutboundError::Connect(chain(&e))
    }
}

/// Whether `e` is a TLS failure: a `rustls::Error`, or `io::Error`s wrapping one (tokio-rustls
/// wraps it in one, the connector in another). An `io::Error`'s `source()` skips the error it
/// wraps, so the walk of `classify` alone never sees it.
fn is_tls(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if e.is::<rustls::Error>() {
            return true;
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => e = inner,
            None => return false,
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
