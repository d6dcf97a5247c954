//! Metric families and their Prometheus text exposition.
//!
//! Owns every counter, gauge and histogram the server exports, and how they are named and labelled.
//! The exposition format itself is `prometheus-client`'s. Other modules record through the typed
//! methods here (never by building label sets themselves), so label cardinality stays bounded: a
//! route label is a configured pattern, a method label is one of the standard methods or `OTHER`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::sys;

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

/// The route label of requests that matched no route.
pub const NO_ROUTE: &str = "none";

/// All of the server's metrics. One value, shared by reference; recording is lock-free except for
/// the first use of a new label set.
#[derive(Debug)]
pub struct Metrics {
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
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wasmgate");
        let m = Metrics {
            id: NEXT_METRICS_ID.fetch_add(1, Ordering::Relaxed),
            connections_accepted: Counter::default(),
            connections_active: Gauge::default(),
            connections_rejected: Family::default(),
            connections_closed: Family::default(),
            requests: Family::default(),
            latency: Arc::default(),
            parse_errors: Family::default(),
            timeouts: Family::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            plugin_calls: Family::default(),
            plugin_fuel: Family::default(),
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
            "Connections lost to accept errors, by kind (emfile, enfile, nomem, aborted, other)",
            m.connections_rejected.clone(),
        );
        r.register(
            "connections_closed",
            "Connections closed, by reason",
            m.connections_closed.clone(),
        );
        r.register(
            "requests",
            "Requests answered, by route pattern, method and status",
            m.requests.clone(),
        );
        r.register(
            "parse_errors",
            "Requests refused by the parser, by error kind",
            m.parse_errors.clone(),
        );
        r.register(
            "timeouts",
            "Timeouts, by kind (header_read, body_read, idle, write)",
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
            "Plugin calls, by plugin and outcome (ok or an error kind)",
            m.plugin_calls.clone(),
        );
        r.register(
            "plugin_fuel_used",
            "Fuel burnt by plugin calls",
            m.plugin_fuel.clone(),
        );
        r.register_collector(Box::new(m.latency.clone()));
        r.register_collector(Box::new(ProcessCollector));
        Metrics { registry, ..m }
    }

    /// Registers a further collector (the connection registry's per-state gauges, the plugin set).
    pub fn register_collector(&mut self, collector: Box<dyn Collector>) {
        self.registry.register_collector(collector);
    }

    pub fn connection_opened(&self) {
        self.connections_accepted.inc();
        self.connections_active.inc();
    }

    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_active.dec();
        self.connections_closed
            .get_or_create(&Reason { reason })
            .inc();
    }

    pub fn accept_error(&self, kind: &'static str) {
        self.connections_rejected
            .get_or_create(&Kind { kind })
            .inc();
    }

    /// One answered request: its count by status and its latency by route.
    ///
    /// This runs for every request, so the counter and histogram of the last few label sets a
    /// worker thread recorded are kept in a small per-thread cache: a repeated (route, method,
    /// status) costs two atomic adds, with no allocation, no hashing and no lock.
    pub fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
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
                        latency: self.latency.histogram(route),
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

    pub fn parse_error(&self, kind: &'static str) {
        self.parse_errors.get_or_create(&Kind { kind }).inc();
    }

    pub fn timeout(&self, kind: &'static str) {
        self.timeouts.get_or_create(&Kind { kind }).inc();
    }

    pub fn bytes(&self, received: u64, sent: u64) {
        self.bytes_in.inc_by(received);
        self.bytes_out.inc_by(sent);
    }

    /// One plugin call: `outcome` is `ok` or the error's kind. Like [`Metrics::request`], the
    /// counters of recent label sets are kept per worker thread, so a repeated call costs two
    /// atomic adds: no allocation, no lock.
    pub fn plugin_call(&self, plugin: &str, outcome: &'static str, fuel_used: u64) {
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

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
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
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("OTHER")
}

/// Upper bounds of the latency buckets, in seconds: 50 µs doubling to ~13 s.
fn latency_bounds() -> impl Iterator<Item = f64> {
    (0..19).map(|i| 0.000_05 * f64::from(1u32 << i))
}

/// Per-route latency histograms that can also answer quantiles (prometheus-client's histogram does
/// not expose its buckets, and we want p50/p90/p99 readable without a Prometheus server).
#[derive(Debug, Default)]
struct Latencies {
    routes: Mutex<HashMap<String, Arc<LatencyHistogram>>>,
}

#[derive(Debug)]
struct LatencyHistogram {
    /// Non-cumulative counts per bucket; the last one is +Inf.
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Latencies {
    /// The histogram of `route`, created on first use.
    fn histogram(&self, route: &str) -> Arc<LatencyHistogram> {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        match routes.get(route) {
            Some(h) => h.clone(),
            None => routes
                .entry(route.to_string())
                .or_insert_with(|| Arc::new(LatencyHistogram::new()))
                .clone(),
        }
    }
}

impl LatencyHistogram {
    fn new() -> Self {
        LatencyHistogram {
            buckets: (0..=latency_bounds().count())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = latency_bounds()
            .position(|b| secs <= b)
            .unwrap_or(self.buckets.len() - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// `(upper bound, cumulative count)` per finite bucket, and the total count.
    fn cumulative(&self) -> (Vec<(f64, u64)>, u64) {
        let mut acc = 0;
        let mut out = Vec::with_capacity(self.buckets.len());
        for (bound, count) in latency_bounds().zip(&self.buckets) {
            acc += count.load(Ordering::Relaxed);
            out.push((bound, acc));
        }
        let total = acc + self.buckets.last().map_or(0, |c| c.load(Ordering::Relaxed));
        (out, total)
    }
}

/// The `q` quantile estimated from cumulative buckets by linear interpolation inside the bucket
/// that holds it (the same estimate as PromQL's `histogram_quantile`).
fn quantile(buckets: &[(f64, u64)], total: u64, q: f64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let rank = q * total as f64;
    let mut prev = (0.0, 0u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank {
            let in_bucket = (count - prev.1) as f64;
            let frac = if in_bucket == 0.0 {
                1.0
            } else {
                (rank - prev.1 as f64) / in_bucket
            };
            return prev.0 + (bound - prev.0) * frac;
        }
        prev = (bound, count);
    }
    prev.0
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteQuantile {
    route: String,
    quantile: &'static str,
}

impl Collector for Latencies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let routes: Vec<(String, Arc<LatencyHistogram>)> = {
            let map = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let snapshots: Vec<_> = routes
            .iter()
            .map(|(r, h)| (r, h.cumulative(), h.sum_micros.load(Ordering::Relaxed)))
            .collect();
        let mut family = encoder.encode_descriptor(
            "request_duration_seconds",
            "Request latency from a complete head to the response written, by route",
            None,
            MetricType::Histogram,
        )?;
        for (route, (buckets, total), sum) in &snapshots {
            let labels = RouteLabel {
                route: route.to_string(),
            };
            let sum = *sum as f64 / 1e6;
            family
                .encode_family(&labels)?
                .encode_histogram::<RouteLabel>(sum, *total, buckets, None)?;
        }
        let mut family = encoder.encode_descriptor(
            "request_duration_quantile_seconds",
            "p50/p90/p99 request latency by route, estimated from the histogram buckets",
            None,
            MetricType::Gauge,
        )?;
        for (route, (buckets, total), _) in &snapshots {
            for (q, label) in [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")] {
                let labels = RouteQuantile {
                    route: route.to_string(),
                    quantile: label,
                };
                ConstGauge::new(quantile(buckets, *total, q))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Process-level readings taken at scrape time: memory, allocations, descriptors.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (alloc_bytes, allocs) = sys::allocation_counters();
        let gauges = [
            (
                "resident_memory_bytes",
                "Resident set size of the process",
                sys::resident_memory_bytes(),
            ),
            ("open_fds", "Open file descriptors", sys::open_fds()),
            (
                "max_fds",
                "The file-descriptor limit (soft RLIMIT_NOFILE)",
                sys::max_fds(),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let gauge = ConstGauge::new(v as i64);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    gauge.metric_type(),
                )?)?;
            }
        }
        for (name, help, value) in [
            (
                "allocated_bytes",
                "Bytes allocated on the heap since start (monotonic)",
                alloc_bytes,
            ),
            (
                "allocations",
                "Heap allocations since start (monotonic)",
                allocs,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let buckets = [(1.0, 50), (2.0, 90), (4.0, 100)];
        assert_eq!(quantile(&buckets, 100, 0.5), 1.0);
        assert!((quantile(&buckets, 100, 0.7) - 1.5).abs() < 1e-9);
        assert!((quantile(&buckets, 100, 0.99) - 3.8).abs() < 1e-9);
        assert_eq!(quantile(&buckets, 0, 0.5), 0.0);
    }

    #[test]
    fn renders_the_families_with_bounded_labels() {
        let m = Metrics::new();
        m.connection_opened();
        m.request("/hello/:name", "GET", 200, Duration::from_micros(120));
        m.request("/hello/:name", "BREW", 405, Duration::from_millis(3));
        m.parse_error("bad_request_line");
        m.plugin_call("hello", "ok", 1234);
        let text = m.render();
        for needle in [
            "wasmgate_connections_accepted_total 1",
            "wasmgate_connections_active 1",
            r#"wasmgate_requests_total{route="/hello/:name",method="GET",status="200"} 1"#,
            r#"method="OTHER",status="405""#,
            r#"wasmgate_request_duration_seconds_bucket{le="0.0002",route="/hello/:name"} 1"#,
            r#"wasmgate_request_duration_quantile_seconds{route="/hello/:name",quantile="0.99"}"#,
            r#"wasmgate_parse_errors_total{kind="bad_request_line"} 1"#,
            r#"wasmgate_plugin_fuel_used_total{plugin="hello"} 1234"#,
            "wasmgate_resident_memory_bytes ",
            "wasmgate_open_fds ",
            "wasmgate_allocations_total ",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    /// The per-thread caches must count into the right `Metrics` value, and keep counting right
    /// when more label sets pass through a thread than a cache holds.
    #[test]
    fn per_thread_caches_count_every_call_into_its_own_metrics() {
        let (a, b) = (Metrics::new(), Metrics::new());
        let plugins: Vec<String> = (0..2 * CACHE_ENTRIES).map(|i| format!("p{i}")).collect();
        for _ in 0..3 {
            for p in &plugins {
                a.plugin_call(p, "ok", 10);
                a.request(p, "GET", 200, Duration::from_micros(100));
            }
            b.plugin_call("p0", "trap", 0);
            b.request("p0", "GET", 500, Duration::from_micros(100));
        }
        let (a, b) = (a.render(), b.render());
        for p in &plugins {
            for needle in [
                format!(r#"wasmgate_plugin_calls_total{{plugin="{p}",outcome="ok"}} 3"#),
                format!(r#"wasmgate_plugin_fuel_used_total{{plugin="{p}"}} 30"#),
                format!(r#"wasmgate_requests_total{{route="{p}",method="GET",status="200"}} 3"#),
            ] {
                assert!(a.contains(&needle), "missing {needle} in\n{a}");
            }
        }
        assert!(b.contains(r#"wasmgate_plugin_calls_total{plugin="p0",outcome="trap"} 3"#));
        assert!(b.contains(r#"wasmgate_requests_total{route="p0",method="GET",status="500"} 3"#));
        assert!(!b.contains(r#"outcome="ok""#), "{b}");
    }
}
