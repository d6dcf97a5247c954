//! From a matched request to a response: native handlers, plugin calls, and errors.
//!
//! Owns the step between routing and encoding. It builds the guest's view of the request, calls the
//! plugin under its limits (after `guard` admits the call: concurrency cap, queue, circuit
//! breaker), records the outcome (metric and one structured log event per error
//! boundary), and turns every failure into a response through [`RequestError`]. It never touches
//! the socket or the parser's buffer layout beyond the borrowed view it is given.

use std::sync::Arc;

use wasmgate_http::HeadView;
use wasmgate_http::encode::Response;

use crate::error::RequestError;
use crate::guard::{Guards, Outcome, Rejection};
use crate::metrics::{CallOutcome, Metrics, NO_ROUTE};
use crate::native::{self, Probe};
use crate::reload::{Routing, RoutingCell, Target};
use crate::routes::Match;
use crate::runtime::GuestRequest;

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
}

impl Dispatcher {
    /// The routing one request uses from its head to its answer.
    pub(crate) fn routing(&self) -> Arc<Routing> {
        self.routing.current()
    }

    /// Produces the response for a request whose head and body have been read.
    pub(crate) async fn dispatch<'r>(
        &self,
        routing: &'r Routing,
        matched: Match<'r, Target>,
        head: &HeadView<'_>,
        body: &[u8],
        request_id: u64,
    ) -> Answer<'r> {
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
        let Some(plugin) = routing.plugins.get(&**plugin_name) else {
            self.metrics
                .plugin_call(plugin_name, CallOutcome::NotLoaded, 0);
            tracing::warn!(plugin = %plugin_name, request_id, kind = "not_loaded", "plugin not loaded");
            return error_answer(
                RequestError::PluginNotLoaded(plugin_name.to_string()),
                pattern,
            );
        };
        let request = GuestRequest {
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
        let permit = match self.guards.admit(plugin_name, plugin.hash(), limits).await {
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
                tracing::warn!(plugin = %plugin_name, request_id, kind = err.kind(), "plugin call refused");
                return error_answer(err, pattern);
            }
        };
        let result = plugin.call(&request, limits, request_id).await;
        permit.finish(Outcome::of(&result));
        match result {
            Ok(resp) => {
                self.metrics
                    .plugin_call(plugin_name, CallOutcome::Ok, resp.fuel_used);
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
                tracing::error!(plugin = %plugin_name, request_id, kind, error = %err, guest_stderr = stderr, "plugin call failed");
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
