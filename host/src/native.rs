//! The built-in routes: `GET /health` (liveness) and `GET /metrics` (Prometheus).
//!
//! Owns their response bodies. They read the shared [`App`] and never block or allocate more than
//! their answer: a liveness probe must stay cheap even when plugins are struggling.

use crate::app::App;
use crate::http::encode::Response;
use crate::routes::NativeRoute;

/// The content type of the Prometheus text exposition format, version 0.0.4.
const PROMETHEUS_TEXT: &[u8] = b"text/plain; version=0.0.4; charset=utf-8";

/// Answers a native route.
pub fn answer(route: NativeRoute, app: &App) -> Response {
    match route {
        NativeRoute::Health => health(app),
        NativeRoute::ServerOptions => Response::new(200),
        NativeRoute::Metrics => Response::new(200)
            .header("content-type", PROMETHEUS_TEXT)
            .body(app.metrics.render().into_bytes()),
    }
}

/// `{"status":"ok","uptime":<whole seconds since start>}`.
fn health(app: &App) -> Response {
    let uptime = app.started.elapsed().as_secs();
    Response::json(
        200,
        format!(r#"{{"status":"ok","uptime":{uptime}}}"#).into_bytes(),
    )
}
