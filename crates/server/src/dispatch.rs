//! From a matched request to a response: native handlers, plugin calls, and errors.
//!
//! Owns the step between routing and encoding. It builds the guest's view of the request, calls the
//! plugin under its limits (after `guard` admits the call: concurrency cap, queue, circuit
//! breaker), records the outcome (metric and one structured log event per error boundary,
//! repeated ones summarised by `logsummary`), and turns every failure into a response through
//! [`RequestError`]. It never touches the socket or the parser's buffer layout beyond the borrowed
//! view it is given.

use std::net::SocketAddr;
use std::sync::Arc;

use wasmgate_abi::{AbiVersion, Field, tag};
use wasmgate_http::HeadView;
use wasmgate_http::encode::Response;

use crate::clientaddr::{IpNet, client_ip};
use crate::error::RequestError;
use crate::guard::{Guards, Outcome, Rejection};
use crate::logsummary::{self, LogSummary, Repeat};
use crate::metrics::{CallOutcome, Metrics, NO_ROUTE};
use crate::native::{self, Probe};
use crate::reload::{Routing, RoutingCell, Target};
use crate::request_id::RequestId;
use crate::routes::Match;
use crate::runtime::{CallMeta, GuestRequest};

/// The answer to one request, and the route label it is counted under.
pub(crate) struct Answer<'r> {
    pub(crate) response: Response,
    pub(crate) route: &'r str,
}

/// What answers requests: the live routing, the plugins' admission guards, and what the native
/// routes report. Connections hold one (shared) and nothing else of the server's state.
pub(crate) struct Dispatcher {
    pub(crate) routing: Arc<RoutingCell>,
    pub(crate) guards: Arc<Guards>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) probe: Arc<Probe>,
    /// Peers whose forwarding headers are believed (`[server] trusted_proxies`).
    pub(crate) trusted_proxies: Vec<IpNet>,
    /// Per-request warnings are logged through it: the first of a kind, then counts.
    pub(crate) log: Arc<LogSummary>,
}

/// Where a request came from and which it is: what v2 plugins are told besides the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub(crate) peer: SocketAddr,
    pub(crate) id: RequestId,
}

impl Dispatcher {
    /// The routing one request (`method`, `path`) uses from its head to its answer. While the
    /// first load runs, a request for a plugin waits for it, bounded by the plugin's deadline, and
    /// then gets the loaded routing: a client that saw `/health` answer and sends its first
    /// request at once is served, not refused. (A plugin that failed to load still answers 503.)
    pub(crate) async fn routing_for(&self, method: &str, path: &str) -> Arc<Routing> {
        let routing = self.routing.current();
        if !routing.loading {
            return routing;
        }
        let bound = match routing.routes.matches(method, path) {
            Match::Found {
                target: Target::Plugin { limits, .. },
                ..
            } => limits.deadline,
            _ => return routing,
        };
        let _ = tokio::time::timeout(bound, self.probe.first_load_done()).await;
        self.routing.current()
    }

    /// Produces the response for a request whose head and body have been read.
    pub(crate) async fn dispatch<'r>(
        &self,
        routing: &'r Routing,
        matched: Match<'r, Target>,
        head: &HeadView<'_>,
        body: &[u8],
        origin: Origin,
    ) -> Answer<'r> {
        let request_id = origin.id;
        let (target, pattern, params) = match matched {
            Match::Found {
                target,
                pattern,
                params,
            } => (target, pattern, params),
            Match::NotFound => return error_answer(RequestError::NotFound, NO_ROUTE),
            Match::MethodNotAllowed { allow } => {
                return error_answer(RequestError::MethodNotAllowed { allow }, NO_ROUTE);
            }
        };
        let (plugin_name, limits) = match target {
            Target::Native(route) => {
                return Answer {
                    response: native::answer(*route, &self.probe, &self.metrics),
                    route: pattern,
                };
            }
            Target::Plugin { plugin, limits } => (plugin, limits),
        };
        let Some(served) = routing.plugins.get(&**plugin_name) else {
            self.metrics
                .plugin_call(plugin_name, CallOutcome::NotLoaded, 0);
            if self.log.note(
                Repeat::NotLoaded,
                "not_loaded",
                plugin_name,
                logsummary::now(),
            ) {
                tracing::warn!(plugin = %plugin_name, %request_id, kind = "not_loaded", "plugin not loaded");
            }
            return error_answer(
                RequestError::PluginNotLoaded(plugin_name.to_string()),
                pattern,
            );
        };
        let plugin = &served.plugin;
        // The v2 fields, built only for a v2 plugin (a v1 encoding has no place for them).
        let meta = (plugin.abi_version() == AbiVersion::V2)
            .then(|| Meta::new(origin, head, &self.trusted_proxies));
        let mut request = GuestRequest {
            method: head.method().as_bytes(),
            target: head.target().as_bytes(),
            path: head.path().as_bytes(),
            query: head.query().unwrap_or("").as_bytes(),
            version: head.version().as_str().as_bytes(),
            headers: head.headers().map(|(n, v)| (n.as_bytes(), v)).collect(),
            params: params
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_slice()))
                .collect(),
            body,
            fields: Vec::new(),
        };
        if let Some(meta) = &meta {
            request.fields = meta.fields(pattern);
        }
        let guard = served
            .guard
            .get_or_init(|| self.guards.guard(plugin_name))
            .clone();
        let permit = match guard.admit(plugin.hash(), limits).await {
            Ok(permit) => permit,
            Err(rejection) => {
                let (err, outcome) = match rejection {
                    Rejection::Overloaded { retry_after } => (
                        RequestError::Overloaded { retry_after },
                        CallOutcome::Overloaded,
                    ),
                    Rejection::Quarantined { retry_after } => (
                        RequestError::Quarantined { retry_after },
                        CallOutcome::Quarantined,
                    ),
                };
                self.metrics.plugin_call(plugin_name, outcome, 0);
                if self
                    .log
                    .note(Repeat::Refused, err.kind(), plugin_name, logsummary::now())
                {
                    tracing::warn!(plugin = %plugin_name, %request_id, kind = err.kind(), "plugin call refused");
                }
                return error_answer(err, pattern);
            }
        };
        let meta = CallMeta {
            id: request_id,
            traceparent: head
                .header("traceparent")
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_string),
        };
        let result = plugin
            .call(&request, limits, meta, &served.env, served.warm.as_ref())
            .await;
        permit.finish(Outcome::of(&result));
        match result {
            Ok(resp) => {
                self.metrics
                    .plugin_call(plugin_name, CallOutcome::Ok, resp.fuel_used);
                if resp.reused {
                    self.metrics.plugin_reused(plugin_name);
                }
                let mut response = Response::new(resp.status).body(resp.body);
                response.headers = resp
                    .headers
                    .into_iter()
                    .map(|(n, v)| (n.into(), v.into()))
                    .collect();
                Answer {
                    response,
                    route: pattern,
                }
            }
            Err(err) => {
                let kind = err.kind();
                self.metrics
                    .plugin_call(plugin_name, err.outcome(), err.fuel_used());
                let stderr = err.stderr_tail().unwrap_or("");
                if self
                    .log
                    .note(Repeat::CallFailed, kind, plugin_name, logsummary::now())
                {
                    tracing::error!(plugin = %plugin_name, %request_id, kind, error = %err, guest_stderr = stderr, "plugin call failed");
                }
                error_answer(RequestError::Plugin(err), pattern)
            }
        }
    }
}

fn error_answer(err: RequestError, route: &str) -> Answer<'_> {
    Answer {
        response: err.response(),
        route,
    }
}

/// The text of a v2 request's metadata fields, owned for the time of one call.
struct Meta {
    peer: String,
    client: String,
    id: crate::request_id::IdText,
}

impl Meta {
    fn new(origin: Origin, head: &HeadView<'_>, trusted: &[IpNet]) -> Meta {
        let named = |name: &'static str| {
            head.headers()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let client = client_ip(
            origin.peer.ip(),
            trusted,
            named("forwarded"),
            named("x-forwarded-for"),
        );
        Meta {
            peer: origin.peer.to_string(),
            client: client.to_string(),
            id: origin.id.to_text(),
        }
    }

    /// The fields, for the route `pattern` (docs/ABI.md "v2 request fields").
    fn fields<'a>(&'a self, pattern: &'a str) -> Vec<Field<'a>> {
        vec![
            Field {
                tag: tag::PEER_ADDR,
                value: self.peer.as_bytes(),
            },
            Field {
                tag: tag::CLIENT_ADDR,
                value: self.client.as_bytes(),
            },
            Field {
                tag: tag::ROUTE,
                value: pattern.as_bytes(),
            },
            Field {
                tag: tag::REQUEST_ID,
                value: self.id.as_bytes(),
            },
        ]
    }
}
