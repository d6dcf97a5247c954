//! Every metric family the server exports, how it is named and labelled, and its Prometheus text
//! exposition.
//!
//! Owns every counter, gauge and histogram: producers record through the typed methods of
//! [`Metrics`] with values of the closed vocabulary in `labels` (never with strings they make up),
//! and the families read at scrape time (connections by state, plugin guards, load history,
//! process readings) are encoded in `scrape` from plain readings their owners hand over. So label
//! cardinality stays bounded: a route label is a configured pattern, a plugin label a configured
//! name, an outbound `entry` label a configured allow-list entry, a method label a standard
//! method or `OTHER`, everything else a vocabulary word. No label value is ever a string a
//! client or a guest chose (a path, a URL's host, a key). The
//! exposition format itself is `prometheus-client`'s.

mod labels;
mod latency;
mod scrape;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub(crate) use labels::{
    AcceptErrorKind, CallOutcome, CloseReason, ConnState, KvOp, KvOutcome, LabelValue,
    LoadErrorKind, OutboundOutcome, RejectReason, ReloadResult, TimeoutKind,
};
pub(crate) use scrape::{GuardReading, LoadReading, PluginLoadReading, Sources};

use latency::{Latencies, LatencyHistogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginOutcome {
    plugin: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboundLabels {
    plugin: String,
    entry: String,
    outcome: &'static str,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KvLabels {
    store: String,
    op: &'static str,
    outcome: &'static str,
}

/// The route label of requests that matched no route.
pub(crate) const NO_ROUTE: &str = "none";

/// The entry label of outbound calls no allow-list entry allows (denied, or not a URL).
pub(crate) const NO_ENTRY: &str = "none";

/// All of the server's metrics. One value, shared by reference; recording is lock-free except for
/// the first use of a new label set.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Tells this value's entries apart in the per-thread request cache (see [`Metrics::request`]).
    id: u64,
    registry: Registry,
    connections_accepted: Counter,
    connections_active: Gauge,
    connections_rejected: Family<Kind, Counter>,
    connections_closed: Family<Reason, Counter>,
    requests: Family<RequestLabels, Counter>,
    latency: Arc<Latencies>,
    parse_errors: Family<Kind, Counter>,
    timeouts: Family<Kind, Counter>,
    bytes_in: Counter,
    bytes_out: Counter,
    plugin_calls: Family<PluginOutcome, Counter>,
    plugin_fuel: Family<PluginLabel, Counter>,
    plugin_reused: Family<PluginLabel, Counter>,
    kv_operations: Family<KvLabels, Counter>,
    kv_latency: Arc<Latencies>,
    kv_up: Family<StoreLabel, Gauge>,
    outbound_calls: Family<OutboundLabels, Counter>,
    outbound_latency: Arc<Latencies>,
    outbound_sent: Family<PluginLabel, Counter>,
    outbound_received: Family<PluginLabel, Counter>,
}

impl Metrics {
    /// Every family, the scrape-time ones reading `sources`. Vocabulary-labelled counters start
    /// with every value at zero, so a dashboard sees the whole vocabulary from the first scrape.
    pub(crate) fn new(sources: Sources) -> Metrics {
        let mut registry = Registry::with_prefix("wasmgate");
        let m = Metrics {
            id: NEXT_METRICS_ID.fetch_add(1, Ordering::Relaxed),
            connections_accepted: Counter::default(),
            connections_active: Gauge::default(),
            connections_rejected: zeroed(|kind: AcceptErrorKind| Kind { kind: kind.label() }),
            connections_closed: zeroed(|r: CloseReason| Reason { reason: r.label() }),
            requests: Family::default(),
            latency: Arc::new(Latencies::new(
                "request_duration_seconds",
                "Request latency from a complete head to the response written, by route",
            )),
            parse_errors: Family::default(),
            timeouts: zeroed(|kind: TimeoutKind| Kind { kind: kind.label() }),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            plugin_calls: Family::default(),
            plugin_fuel: Family::default(),
            plugin_reused: Family::default(),
            kv_operations: Family::default(),
            kv_up: Family::default(),
            outbound_calls: Family::default(),
            outbound_latency: Arc::new(Latencies::new(
                "outbound_duration_seconds",
                "Outbound HTTP call latency (answered calls), by plugin and the allow-list entry that admitted the call",
            )),
            outbound_sent: Family::default(),
            outbound_received: Family::default(),
            kv_latency: Arc::new(Latencies::new(
                "kv_operation_duration_seconds",
                "Key-value store operation latency, by store and op",
            )),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "connections_accepted",
            "Connections accepted",
            m.connections_accepted.clone(),
        );
        r.register(
            "connections_active",
            "Connections open now",
            m.connections_active.clone(),
        );
        r.register(
            "connections_rejected",
            labels::help::<AcceptErrorKind>("Connections lost to accept errors", "kind"),
            m.connections_rejected.clone(),
        );
        r.register(
            "connections_closed",
            labels::help::<CloseReason>("Connections closed", "reason"),
            m.connections_closed.clone(),
        );
        r.register(
            "requests",
            "Requests answered, by route pattern, method and status",
            m.requests.clone(),
        );
        r.register(
            "parse_errors",
            "Requests refused by the parser or the body decoder, by error kind",
            m.parse_errors.clone(),
        );
        r.register(
            "timeouts",
            labels::help::<TimeoutKind>("Timeouts", "kind"),
            m.timeouts.clone(),
        );
        r.register(
            "received_bytes",
            "Bytes read from clients",
            m.bytes_in.clone(),
        );
        r.register(
            "sent_bytes",
            "Bytes written to clients",
            m.bytes_out.clone(),
        );
        r.register(
            "plugin_calls",
            labels::help::<CallOutcome>("Requests for a plugin, by plugin and outcome", "outcome"),
            m.plugin_calls.clone(),
        );
        r.register(
            "plugin_fuel_used",
            "Fuel burnt by plugin calls",
            m.plugin_fuel.clone(),
        );
        r.register(
            "plugin_reused_instance_calls",
            "Plugin calls answered by a warm instance that served an earlier request (reuse)",
            m.plugin_reused.clone(),
        );
        r.register(
            "kv_operations",
            format!(
                "{} and {}",
                labels::help::<KvOp>("Key-value store operations, by store", "op"),
                labels::help::<KvOutcome>("outcome", "outcome")
            ),
            m.kv_operations.clone(),
        );
        r.register(
            "kv_store_up",
            "0 from a connectivity failure of the store until a health check passes again, else 1",
            m.kv_up.clone(),
        );
        r.register(
            "outbound_calls",
            labels::help::<OutboundOutcome>(
                "Plugins' outbound HTTP calls, by plugin, allow-list entry (`none`: no entry allows the URL), outcome and status class",
                "outcome",
            ),
            m.outbound_calls.clone(),
        );
        r.register(
            "outbound_sent_bytes",
            "Request body bytes plugins sent upstream",
            m.outbound_sent.clone(),
        );
        r.register(
            "outbound_received_bytes",
            "Response body bytes plugins received from upstreams",
            m.outbound_received.clone(),
        );
        r.register_collector(Box::new(m.latency.clone()));
        r.register_collector(Box::new(m.kv_latency.clone()));
        r.register_collector(Box::new(m.outbound_latency.clone()));
        r.register_collector(Box::new(scrape::Scraped { sources }));
        Metrics { registry, ..m }
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_accepted.inc();
        self.connections_active.inc();
    }

    pub(crate) fn connection_closed(&self, reason: CloseReason) {
        self.connections_active.dec();
        self.connections_closed
            .get_or_create(&Reason {
                reason: reason.label(),
            })
            .inc();
    }

    pub(crate) fn accept_error(&self, kind: AcceptErrorKind) {
        self.connections_rejected
            .get_or_create(&Kind { kind: kind.label() })
            .inc();
    }

    /// One answered request: its count by status and its latency by route.
    ///
    /// This runs for every request, so the counter and histogram of the last few label sets a
    /// worker thread recorded are kept in a small per-thread cache: a repeated (route, method,
    /// status) costs two atomic adds, with no allocation, no hashing and no lock.
    pub(crate) fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        REQUEST_CACHE.with_borrow_mut(|cache| {
            let entry = cached(
                cache,
                |c| {
                    c.metrics == self.id
                        && c.status == status
                        && c.method == method
                        && *c.route == *route
                },
                || {
                    let labels = RequestLabels {
                        route: route.to_string(),
                        method,
                        status,
                    };
                    CachedRequest {
                        metrics: self.id,
                        counter: self.requests.get_or_create(&labels).clone(),
                        latency: self.latency.histogram(&[("route", route)]),
                        route: labels.route,
                        method,
                        status,
                    }
                },
            );
            entry.counter.inc();
            entry.latency.observe(elapsed);
        });
    }

    /// A request refused by the parser or body decoder; `kind` is the protocol error's own.
    pub(crate) fn parse_error(&self, kind: &'static str) {
        self.parse_errors.get_or_create(&Kind { kind }).inc();
    }

    pub(crate) fn timeout(&self, kind: TimeoutKind) {
        self.timeouts
            .get_or_create(&Kind { kind: kind.label() })
            .inc();
    }

    pub(crate) fn bytes(&self, received: u64, sent: u64) {
        self.bytes_in.inc_by(received);
        self.bytes_out.inc_by(sent);
    }

    /// One request for a plugin and how it ended. Like [`Metrics::request`], the counters of
    /// recent label sets are kept per worker thread, so a repeated call costs two atomic adds: no
    /// allocation, no lock.
    /// A call of `plugin` answered by a reused (warm) instance. Rare enough (reuse is opt-in) to
    /// skip the per-thread cache `plugin_call` uses.
    pub(crate) fn plugin_reused(&self, plugin: &str) {
        self.plugin_reused
            .get_or_create(&PluginLabel {
                plugin: plugin.to_string(),
            })
            .inc();
    }

    pub(crate) fn plugin_call(&self, plugin: &str, outcome: CallOutcome, fuel_used: u64) {
        let outcome = outcome.label();
        PLUGIN_CALL_CACHE.with_borrow_mut(|cache| {
            let entry = cached(
                cache,
                |c| c.metrics == self.id && c.outcome == outcome && *c.plugin == *plugin,
                || {
                    let labels = PluginOutcome {
                        plugin: plugin.to_string(),
                        outcome,
                    };
                    CachedPluginCall {
                        metrics: self.id,
                        calls: self.plugin_calls.get_or_create(&labels).clone(),
                        fuel: self
                            .plugin_fuel
                            .get_or_create(&PluginLabel {
                                plugin: plugin.to_string(),
                            })
                            .clone(),
                        plugin: labels.plugin,
                        outcome,
                    }
                },
            );
            entry.calls.inc();
            if fuel_used > 0 {
                entry.fuel.inc_by(fuel_used);
            }
        });
    }

    /// One store operation: its outcome, and its latency (of every operation that reached the
    /// backend and back, whatever it found).
    pub(crate) fn kv_operation(
        &self,
        store: &str,
        op: KvOp,
        outcome: KvOutcome,
        elapsed: Duration,
    ) {
        self.kv_outcome(store, op, outcome);
        if matches!(
            outcome,
            KvOutcome::Ok | KvOutcome::NotFound | KvOutcome::Conflict
        ) {
            self.kv_latency
                .histogram(&[("store", store), ("op", op.label())])
                .observe(elapsed);
        }
    }

    /// One outbound call: its outcome, the answer's status class (`none` without an answer), its
    /// latency (when answered) and its body bytes both ways. `entry` is the configured
    /// allow-list entry that allows the call's URL (as written in the configuration), `None` when
    /// none does: never the URL's host, which the guest chooses (a label per host it makes up
    /// would grow `/metrics` without bound).
    pub(crate) fn outbound_call(
        &self,
        plugin: &str,
        entry: Option<&str>,
        outcome: OutboundOutcome,
        status: Option<u16>,
        elapsed: Duration,
        (sent, received): (u64, u64),
    ) {
        let entry = entry.unwrap_or(NO_ENTRY);
        let status_class = match status {
            Some(100..=199) => "1xx",
            Some(200..=299) => "2xx",
            Some(300..=399) => "3xx",
            Some(400..=499) => "4xx",
            Some(_) => "5xx",
            None => "none",
        };
        self.outbound_calls
            .get_or_create(&OutboundLabels {
                plugin: plugin.to_string(),
                entry: entry.to_string(),
                outcome: outcome.label(),
                status_class,
            })
            .inc();
        if status.is_some() {
            self.outbound_latency
                .histogram(&[("plugin", plugin), ("entry", entry)])
                .observe(elapsed);
        }
        let plugin = PluginLabel {
            plugin: plugin.to_string(),
        };
        self.outbound_sent.get_or_create(&plugin).inc_by(sent);
        self.outbound_received
            .get_or_create(&plugin)
            .inc_by(received);
    }

    /// Whether the store reached its backend last time.
    pub(crate) fn kv_store_up(&self, store: &str, up: bool) {
        self.kv_up
            .get_or_create(&StoreLabel {
                store: store.to_string(),
            })
            .set(i64::from(up));
    }

    /// Drops the up gauge of a store no routing holds any more (a reload removed it): a gauge
    /// left at its last value would show a store that does not exist. Its operation counts stay
    /// (they are bounded by the store names configured in the process's life).
    pub(crate) fn kv_store_forget(&self, store: &str) {
        self.kv_up.remove(&StoreLabel {
            store: store.to_string(),
        });
    }

    /// Counts one store operation under `outcome`.
    pub(crate) fn kv_outcome(&self, store: &str, op: KvOp, outcome: KvOutcome) {
        self.kv_operations
            .get_or_create(&KvLabels {
                store: store.to_string(),
                op: op.label(),
                outcome: outcome.label(),
            })
            .inc();
    }

    /// The Prometheus text exposition of everything.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Source of [`Metrics::id`].
static NEXT_METRICS_ID: AtomicU64 = AtomicU64::new(1);

/// Label sets whose metrics each worker thread keeps at hand, per cache (a linear search).
const CACHE_ENTRIES: usize = 8;

/// The entry of a per-thread cache that `matches`, or a new one from `make` (the registry lookup,
/// which allocates and locks) that replaces the oldest when the cache is full.
fn cached<E>(cache: &mut Vec<E>, matches: impl Fn(&E) -> bool, make: impl FnOnce() -> E) -> &E {
    match cache.iter().position(matches) {
        Some(i) => &cache[i],
        None => {
            if cache.len() >= CACHE_ENTRIES {
                cache.remove(0);
            }
            cache.push(make());
            &cache[cache.len() - 1]
        }
    }
}

/// One entry of the per-thread cache of [`Metrics::plugin_call`]: clones of the registered
/// counters (they share the registered values).
struct CachedPluginCall {
    metrics: u64,
    plugin: String,
    outcome: &'static str,
    calls: Counter,
    fuel: Counter,
}

/// One entry of the per-thread cache of [`Metrics::request`]: clones of a registered counter and
/// histogram (they share the registered values).
struct CachedRequest {
    metrics: u64,
    route: String,
    method: &'static str,
    status: u16,
    counter: Counter,
    latency: Arc<LatencyHistogram>,
}

thread_local! {
    static REQUEST_CACHE: std::cell::RefCell<Vec<CachedRequest>> =
        const { std::cell::RefCell::new(Vec::new()) };
    static PLUGIN_CALL_CACHE: std::cell::RefCell<Vec<CachedPluginCall>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The standard methods keep their name; anything else is `OTHER`, so a client cannot mint label
/// values.
pub(crate) fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// A family with every value of the vocabulary `T` present at zero.
fn zeroed<T: LabelValue, L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug>(
    labels: impl Fn(T) -> L,
) -> Family<L, Counter> {
    let family = Family::default();
    for v in T::ALL {
        let _ = family.get_or_create(&labels(*v));
    }
    family
}

#[cfg(test)]
mod tests;
