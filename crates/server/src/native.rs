//! The built-in routes: `GET /health` (liveness), `GET /ready` (readiness), `GET /metrics`
//! (Prometheus) and `OPTIONS *`; and the [`Probe`] state the first two report.
//!
//! Owns their response bodies and the readiness state machine (loading -> ready -> draining). They
//! never block or allocate more than their answer: a liveness probe must stay cheap even when
//! plugins are struggling.

use std::time::Instant;

use std::sync::Arc;

use arc_swap::ArcSwap;

use tokio::sync::watch;
use wasmgate_http::encode::Response;

use crate::kv::{Store, Stores};
use crate::metrics::Metrics;
use crate::routes::NativeRoute;

/// The content type of the Prometheus text exposition format, version 0.0.4.
const PROMETHEUS_TEXT: &[u8] = b"text/plain; version=0.0.4; charset=utf-8";

/// What `/ready` reports: whether a load balancer should send traffic here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Plugins are still loading (a request for one waits for its load).
    Loading,
    /// Plugins are loaded (or refused, logged and answering 503) and shutdown has not begun.
    Ready,
    /// Shutdown has begun: finish what is in flight, take nothing new.
    Draining,
}

impl Readiness {
    /// The `status` word of `/ready`'s body.
    pub fn label(self) -> &'static str {
        match self {
            Readiness::Loading => "loading",
            Readiness::Ready => "ready",
            Readiness::Draining => "draining",
        }
    }
}

/// Liveness and readiness: when the server started, and where it is between loading and
/// draining. Readiness is a watch channel so that a request for a plugin that is still loading can
/// wait for the load instead of failing.
#[derive(Debug)]
pub(crate) struct Probe {
    started: Instant,
    readiness: watch::Sender<Readiness>,
    /// Stores marked `required` in the routing being served: while one is down the process is
    /// not ready. Replaced at each reload ([`Probe::set_stores`]).
    required: ArcSwap<Vec<Arc<Store>>>,
}

impl Probe {
    pub(crate) fn new(stores: &Stores) -> Probe {
        Probe {
            started: Instant::now(),
            readiness: watch::Sender::new(Readiness::Loading),
            required: ArcSwap::from_pointee(required(stores)),
        }
    }

    /// `stores` are the routing's now: readiness follows its required ones.
    pub(crate) fn set_stores(&self, stores: &Stores) {
        self.required.store(Arc::new(required(stores)));
    }

    pub(crate) fn readiness(&self) -> Readiness {
        *self.readiness.borrow()
    }

    /// The first load finished: ready, unless shutdown began meanwhile.
    pub(crate) fn loaded(&self) {
        self.readiness.send_if_modified(|r| {
            let was_loading = *r == Readiness::Loading;
            if was_loading {
                *r = Readiness::Ready;
            }
            was_loading
        });
    }

    /// Shutdown began: `/ready` answers 503 from now on.
    pub(crate) fn draining(&self) {
        self.readiness.send_replace(Readiness::Draining);
    }

    /// Resolves once the first load has finished (at once if it has).
    pub(crate) async fn first_load_done(&self) {
        let mut rx = self.readiness.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we are borrowed.
        let _ = rx.wait_for(|r| *r != Readiness::Loading).await;
    }
}

fn required(stores: &Stores) -> Vec<Arc<Store>> {
    stores.all().filter(|s| s.required()).cloned().collect()
}

/// Answers a native route.
pub(crate) fn answer(route: NativeRoute, probe: &Probe, metrics: &Metrics) -> Response {
    match route {
        NativeRoute::Health => health(probe),
        NativeRoute::Ready => ready(probe),
        NativeRoute::ServerOptions => Response::new(200),
        NativeRoute::Metrics => Response::new(200)
            .header("content-type", PROMETHEUS_TEXT)
            .body(metrics.render().into_bytes()),
    }
}

/// 200 `{"status":"ready"}` when plugins are loaded, every required store is up and shutdown has
/// not begun, else 503 with `loading`, `draining` or `unavailable` (and the stores that are down):
/// liveness (`/health`) and readiness are separate so a balancer can stop sending to a process
/// that is still alive.
fn ready(probe: &Probe) -> Response {
    let readiness = probe.readiness();
    let required = probe.required.load();
    let down: Vec<&str> = required
        .iter()
        .filter(|s| !s.is_up())
        .map(|s| s.name())
        .collect();
    if readiness == Readiness::Ready && !down.is_empty() {
        let body = serde_json::json!({ "status": "unavailable", "stores_down": down });
        return Response::json(503, body.to_string().into_bytes());
    }
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
fn health(probe: &Probe) -> Response {
    let uptime = probe.started.elapsed().as_secs();
    Response::json(
        200,
        format!(r#"{{"status":"ok","uptime":{uptime}}}"#).into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readiness_goes_loading_ready_draining_and_draining_wins() {
        let p = Probe::new(&Stores::default());
        assert_eq!(p.readiness(), Readiness::Loading);
        assert_eq!(ready(&p).status, 503);
        p.loaded();
        p.first_load_done().await;
        assert_eq!(ready(&p).status, 200);
        p.draining();
        p.loaded();
        assert_eq!(p.readiness(), Readiness::Draining);
        let drained = Probe::new(&Stores::default());
        drained.draining();
        drained.loaded();
        assert_eq!(drained.readiness(), Readiness::Draining);
        drained.first_load_done().await;
        assert_eq!(health(&p).status, 200);
    }
}
