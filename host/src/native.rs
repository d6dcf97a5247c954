//! The built-in routes: `GET /health` (liveness), `GET /ready` (readiness) and `GET /metrics`
//! (Prometheus).
//!
//! Owns their response bodies. They read the shared [`App`] and never block or allocate more than
//! their answer: a liveness probe must stay cheap even when plugins are struggling.

use crate::app::{App, Readiness};
use crate::http::encode::Response;
use crate::routes::NativeRoute;

/// The content type of the Prometheus text exposition format, version 0.0.4.
const PROMETHEUS_TEXT: &[u8] = b"text/plain; version=0.0.4; charset=utf-8";

/// Answers a native route.
pub fn answer(route: NativeRoute, app: &App) -> Response {
    match route {
        NativeRoute::Health => health(app),
        NativeRoute::Ready => ready(app),
        NativeRoute::ServerOptions => Response::new(200),
        NativeRoute::Metrics => Response::new(200)
            .header("content-type", PROMETHEUS_TEXT)
            .body(app.metrics.render().into_bytes()),
    }
}

/// 200 `{"status":"ready"}` when plugins are loaded and shutdown has not begun, else 503 with
/// `loading` or `draining`: liveness (`/health`) and readiness are separate so a balancer can stop
/// sending to a process that is still alive.
fn ready(app: &App) -> Response {
    let readiness = app.readiness();
    let status = if readiness == Readiness::Ready {
        200
    } else {
        503
    };
    Response::json(
        status,
        format!(r#"{{"status":"{}"}}"#, readiness.label()).into_bytes(),
    )
}

/// `{"status":"ok","uptime":<whole seconds since start>}`.
fn health(app: &App) -> Response {
    let uptime = app.started.elapsed().as_secs();
    Response::json(
        200,
        format!(r#"{{"status":"ok","uptime":{uptime}}}"#).into_bytes(),
    )
}
