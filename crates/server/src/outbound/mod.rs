//! Outbound HTTP for plugins: one call at a time through a client that only reaches what the
//! plugin's allow-list names, never a guarded address by accident, and never for longer, larger
//! or with more connections than its bounds.
//!
//! Owns the service (one client per plugin and allow-list, each with its connection pool per
//! destination), the order of a call (parse, allow-list, headers, a place among the plugin's calls
//! in flight, then the exchange under one deadline), the per-plugin bounds, the metrics, and the
//! error values, which the runtime turns into the ABI's error codes. The parts: `request` (what
//! may be sent: allow-list verdict, headers), `exchange` (send, redirects, body cap), `connector`
//! (the connection cap, DNS through `resolver` and the SSRF guard `guard`, TCP, TLS through `tls`).
//! It sees plain values, never guest memory.

mod connector;
mod exchange;
mod guard;
mod request;
mod resolver;
#[cfg(test)]
mod tests;
mod tls;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::{AllowEntry, OutboundSettings, PluginLimits};
use crate::metrics::{Metrics, OutboundOutcome};
use connector::{Connector, Places};
use exchange::{Http, Outgoing, Policy};
use resolver::GuardedResolver;
pub(crate) use tls::TlsConfigError;

/// How long a pooled connection may sit idle before the pool closes it (and its place under the
/// connection cap comes back). Long enough to carry a plugin's steady traffic on a few warm
/// connections, short enough that a burst's connections do not linger.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// No place came free under `max_outbound_concurrency` in time: `what` says which places
    /// (calls in flight, or connections to one destination).
    #[error(
        "plugin `{plugin}` already has {max} {what} (max_outbound_concurrency) and none came free within {waited:?}"
    )]
    Busy {
        plugin: String,
        max: u32,
        what: String,
        waited: Duration,
    },
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
    /// Kept back from the request's deadline for the guest to answer: `outbound_reserve`, at
    /// most half the `deadline`.
    reserve: Duration,
    max_request_bytes: usize,
    max_response_bytes: usize,
    max_calls: u32,
    max_concurrency: u32,
}

impl Bounds {
    pub(crate) fn of(limits: &PluginLimits) -> Bounds {
        Bounds {
            timeout: limits.outbound_timeout,
            reserve: limits.outbound_reserve.min(limits.deadline / 2),
            max_request_bytes: limits.max_outbound_request_bytes,
            max_response_bytes: limits.max_outbound_response_bytes,
            max_calls: limits.max_outbound_calls,
            max_concurrency: limits.max_outbound_concurrency,
        }
    }
}

impl Bounds {
    /// When a call started at `started`, for a request that must be answered by `deadline`,
    /// ends with `timeout`: at `outbound_timeout`, or at `deadline - reserve`, or after the
    /// guest's own `timeout` (`http_send_timeout`), whichever comes first (never before
    /// `started`). The reserve is what makes the guest's own answer possible: ending the call at
    /// the deadline itself would race the request's 504 `deadline`, which the guest would lose
    /// (issue 20, item 7; docs/decisions/0006). The guest's bound can only shorten the host's.
    fn until(&self, started: Instant, deadline: Instant, guest: Option<Duration>) -> Instant {
        let answer_by = deadline.checked_sub(self.reserve).unwrap_or(started);
        let host = (started + self.timeout).min(answer_by);
        let guest = guest.and_then(|t| started.checked_add(t)).unwrap_or(host);
        host.min(guest).max(started)
    }
}

/// The outbound service: settings and the plugins' clients.
pub(crate) struct Outbound {
    settings: OutboundSettings,
    /// The TLS client configuration (standard roots plus `ca_file`'s), built once.
    tls: Arc<rustls::ClientConfig>,
    /// [`POOL_IDLE_TIMEOUT`]; shorter in tests, which watch connections close.
    idle_timeout: Duration,
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
    ) -> Result<Outbound, TlsConfigError> {
        let tls = tls::client_config(settings.ca_file.as_deref())?;
        Ok(Outbound {
            settings: settings.clone(),
            tls,
            idle_timeout: POOL_IDLE_TIMEOUT,
            clients: Mutex::default(),
            metrics,
        })
    }

    /// The `[outbound]` settings it was built for: a reload that changes them builds a new
    /// service (a reload that keeps them keeps this one, with its clients and their pools).
    pub(crate) fn settings(&self) -> &OutboundSettings {
        &self.settings
    }

    /// The client of `plugin` allowed to reach `allow` within `bounds` (`None` when it may reach
    /// nothing).
    pub(crate) fn client(
        &self,
        plugin: &str,
        allow: &[AllowEntry],
        bounds: Bounds,
    ) -> Option<Arc<PluginClient>> {
        if allow.is_empty() {
            return None;
        }
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients
            .get(plugin)
            .filter(|c| *c.allow == *allow && c.bounds == bounds)
        {
            return Some(c.clone());
        }
        let client = Arc::new(PluginClient::new(plugin, allow, bounds, self));
        clients.insert(plugin.to_string(), client.clone());
        Some(client)
    }
}

/// One plugin's client: its allow-list, its connection pool (and the connection cap it is held
/// to), its cap on calls in flight.
pub(crate) struct PluginClient {
    plugin: String,
    allow: Arc<[AllowEntry]>,
    /// Each entry of `allow` as configured: the metrics' `entry` label of the calls it allows.
    entry_labels: Box<[String]>,
    http: Http,
    /// Places among the plugin's calls in flight (`max_outbound_concurrency`).
    calls: Semaphore,
    /// Places among its connections, per destination (`max_outbound_concurrency` each). The
    /// connector takes and gives them; this handle is the tests' window on them.
    #[cfg_attr(not(test), allow(dead_code))]
    connections: Arc<Places>,
    bounds: Bounds,
    max_redirects: u32,
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
    fn new(plugin: &str, allow: &[AllowEntry], bounds: Bounds, service: &Outbound) -> PluginClient {
        let allow: Arc<[AllowEntry]> = allow.into();
        let settings = &service.settings;
        let max = bounds.max_concurrency.max(1);
        let connections = Arc::new(Places::new(max));
        let connector = Connector::new(
            plugin,
            GuardedResolver::new(settings.resolve.clone(), allow.clone()),
            service.tls.clone(),
            settings.connect_timeout,
            connections.clone(),
        );
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(service.idle_timeout)
            .pool_max_idle_per_host(max as usize)
            .build(connector);
        PluginClient {
            plugin: plugin.to_string(),
            entry_labels: allow.iter().map(ToString::to_string).collect(),
            allow,
            http,
            calls: Semaphore::new(max as usize),
            connections,
            bounds,
            max_redirects: settings.max_redirects,
            request_id_header: settings.request_id_header.clone(),
            metrics: service.metrics.clone(),
        }
    }

    /// Outbound calls one inbound request may make.
    pub(crate) fn max_calls_per_request(&self) -> u32 {
        self.bounds.max_calls
    }

    /// Sends `call`, bounded by [`Bounds::until`] (`timeout`: the guest's own bound, if any).
    pub(crate) async fn send(
        &self,
        call: Call<'_>,
        forwarded: &Forwarded,
        deadline: Instant,
        timeout: Option<Duration>,
    ) -> Result<Answer, OutboundError> {
        let started = Instant::now();
        let until = self.bounds.until(started, deadline, timeout);
        let url = request::parse(call.url);
        let entry = url
            .as_ref()
            .ok()
            .and_then(|u| request::admitting(&self.allow, u))
            .map(|i| self.entry_labels[i].as_str());
        let sent = call.body.len() as u64;
        let result = match url {
            Ok(url) => self.bounded(url, call, forwarded, started, until).await,
            Err(e) => Err(e),
        };
        let (outcome, status, received) = match &result {
            Ok(a) => (OutboundOutcome::Ok, Some(a.status), a.body.len() as u64),
            Err(e) => (e.outcome(), None, 0),
        };
        self.metrics.outbound_call(
            &self.plugin,
            entry,
            outcome,
            status,
            started.elapsed(),
            (sent, received),
        );
        result
    }

    /// The call once its URL parsed: checked (nothing waits for a call that cannot go), given a
    /// place among the calls in flight (`busy` when none comes by `until`), then exchanged
    /// (`timeout` when it has not ended by `until`).
    async fn bounded(
        &self,
        url: url::Url,
        call: Call<'_>,
        forwarded: &Forwarded,
        started: Instant,
        until: Instant,
    ) -> Result<Answer, OutboundError> {
        request::check(&self.plugin, &self.allow, &url)?;
        if call.body.len() > self.bounds.max_request_bytes {
            return Err(OutboundError::TooLarge(format!(
                "a request body of {} bytes is more than max_outbound_request_bytes ({})",
                call.body.len(),
                self.bounds.max_request_bytes
            )));
        }
        let method = Method::from_bytes(call.method)
            .map_err(|_| OutboundError::Invalid("the method is not an HTTP token".into()))?;
        let headers =
            request::headers(&call.headers, forwarded, self.request_id_header.as_deref())?;
        let out = Outgoing {
            method,
            url,
            headers,
            body: Bytes::copy_from_slice(call.body),
        };
        let _place = self.place(started, until).await?;
        let policy = Policy {
            plugin: &self.plugin,
            allow: &self.allow,
            max_redirects: self.max_redirects,
            max_response_bytes: self.bounds.max_response_bytes,
        };
        // The call's bound rides with the exchange to the connector, where a call without a
        // connection waits for a connection place: that wait ends `busy` at the same bound.
        let exchange =
            connector::CALL_BOUND.scope(until.into(), exchange::run(&self.http, out, &policy));
        match tokio::time::timeout_at(until.into(), exchange).await {
            Ok(r) => r,
            Err(_) => Err(OutboundError::Timeout(until - started)),
        }
    }

    /// A place among the plugin's calls in flight, waiting for one until `until` at most.
    ///
    /// The bound is checked before the place: a place that comes free only as the bound passes
    /// is no place (`busy`), not a call started with no time left that then fails `timeout`.
    /// Calls in flight often end at their own bounds, and a waiter that started within the same
    /// timer tick has the same one; `timeout_at` polls its future first and handed such a
    /// waiter the freed place.
    async fn place(
        &self,
        started: Instant,
        until: Instant,
    ) -> Result<SemaphorePermit<'_>, OutboundError> {
        if let Ok(p) = self.calls.try_acquire() {
            return Ok(p);
        }
        let busy = || OutboundError::Busy {
            plugin: self.plugin.clone(),
            max: self.bounds.max_concurrency.max(1),
            what: "outbound calls in flight".into(),
            waited: until.saturating_duration_since(started),
        };
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(until.into()) => Err(busy()),
            // Closed never happens (nobody closes it); treated as no place.
            p = self.calls.acquire() => p.map_err(|_| busy()),
        }
    }
}
