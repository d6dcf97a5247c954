//! From a matched request to a response: native handlers, plugin calls, and errors.
//!
//! Owns the step between routing and encoding. It builds the guest's view of the request, calls the
//! plugin under its limits (after `guard` admits the call: concurrency cap, queue, circuit
//! breaker), records the outcome (metric and one structured log event per error
//! boundary), and turns every failure into a response through [`RequestError`]. It never touches
//! the socket or the parser's buffer layout beyond the borrowed view it is given.

use crate::app::{App, Routing};
use crate::error::RequestError;
use crate::guard::{Outcome, Rejection};
use crate::http::HeadView;
use crate::http::encode::Response;
use crate::native;
use crate::routes::{Match, Target};
use crate::runtime::GuestRequest;

/// The answer to one request, and the route label it is counted under.
pub struct Answer<'r> {
    pub response: Response,
    pub route: &'r str,
}

/// Produces the response for a request whose head and body have been read.
pub async fn dispatch<'r>(
    app: &App,
    routing: &'r Routing,
    matched: Match<'r>,
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
        Match::NotFound => return error_answer(RequestError::NotFound, crate::metrics::NO_ROUTE),
        Match::MethodNotAllowed { allow } => {
            return error_answer(
                RequestError::MethodNotAllowed { allow },
                crate::metrics::NO_ROUTE,
            );
        }
    };
    let (plugin_name, limits) = match target {
        Target::Native(route) => {
            return Answer {
                response: native::answer(*route, app),
                route: pattern,
            };
        }
        Target::Plugin { plugin, limits } => (plugin, limits),
    };
    let Some(plugin) = routing.plugins.get(&**plugin_name) else {
        app.metrics.plugin_call(plugin_name, "not_loaded", 0);
        tracing::warn!(plugin = %plugin_name, request_id, kind = "not_loaded", "plugin not loaded");
        return error_answer(
            RequestError::PluginNotLoaded(plugin_name.to_string()),
            pattern,
        );
    };
    let headers: Vec<(&str, &[u8])> = head.headers().collect();
    let request = GuestRequest {
        method: head.method(),
        target: head.target(),
        path: head.path(),
        query: head.query().unwrap_or(""),
        version: head.version().as_str(),
        headers: &headers,
        params: &params,
        body,
    };
    let permit = match app.guards.admit(plugin_name, plugin.hash(), limits).await {
        Ok(permit) => permit,
        Err(rejection) => {
            let err = match rejection {
                Rejection::Overloaded { retry_after } => RequestError::Overloaded { retry_after },
                Rejection::Quarantined { retry_after } => RequestError::Quarantined { retry_after },
            };
            app.metrics.plugin_call(plugin_name, err.kind(), 0);
            tracing::warn!(plugin = %plugin_name, request_id, kind = err.kind(), "plugin call refused");
            return error_answer(err, pattern);
        }
    };
    let result = plugin.call(&request, limits, request_id).await;
    permit.finish(Outcome::of(&result));
    match result {
        Ok(resp) => {
            app.metrics.plugin_call(plugin_name, "ok", resp.fuel_used);
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
            app.metrics.plugin_call(plugin_name, kind, err.fuel_used());
            let stderr = err.stderr_tail().unwrap_or("");
            tracing::error!(plugin = %plugin_name, request_id, kind, error = %err, guest_stderr = stderr, "plugin call failed");
            error_answer(RequestError::Plugin(err), pattern)
        }
    }
}

fn error_answer(err: RequestError, route: &str) -> Answer<'_> {
    Answer {
        response: err.response(),
        route,
    }
}
