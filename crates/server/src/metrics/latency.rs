//! Latency histograms that also answer quantiles, keyed by a label set (requests by route, store
//! operations by store and op, outbound calls by plugin and host), and their exposition.
//!
//! Owns the bucket layout (50 µs doubling to ~13 s) and the quantile estimate. prometheus-client's
//! histogram neither exposes its buckets nor computes quantiles, and p50/p90/p99 should be readable
//! from `/metrics` without a Prometheus server. Recording is two relaxed atomic adds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// Upper bounds of the latency buckets, in seconds: 50 µs doubling to ~13 s.
fn latency_bounds() -> impl Iterator<Item = f64> {
    (0..19).map(|i| 0.000_05 * f64::from(1u32 << i))
}

/// A label set of a histogram: `(name, value)` pairs in exposition order.
pub(super) type Labels = Vec<(&'static str, String)>;

/// One family of latency histograms, by label set, that can also answer quantiles
/// (prometheus-client's histogram does not expose its buckets, and we want p50/p90/p99 readable
/// without a Prometheus server). `<name>` is the histogram family, `<name>` with
/// `_seconds` replaced by `_quantile_seconds` the quantile gauges.
#[derive(Debug)]
pub(super) struct Latencies {
    name: &'static str,
    help: &'static str,
    series: Mutex<HashMap<Labels, Arc<LatencyHistogram>>>,
}

#[derive(Debug)]
pub(super) struct LatencyHistogram {
    /// Non-cumulative counts per bucket; the last one is +Inf.
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Latencies {
    /// An empty family named `name` (ending in `_seconds`).
    pub(super) fn new(name: &'static str, help: &'static str) -> Latencies {
        debug_assert!(name.ends_with("_seconds"));
        Latencies {
            name,
            help,
            series: Mutex::default(),
        }
    }

    /// The histogram of `labels`, created on first use.
    pub(super) fn histogram(&self, labels: &[(&'static str, &str)]) -> Arc<LatencyHistogram> {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let found = series.iter().find(|(k, _)| {
            k.len() == labels.len() && k.iter().zip(labels).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
        });
        match found {
            Some((_, h)) => h.clone(),
            None => series
                .entry(labels.iter().map(|(k, v)| (*k, v.to_string())).collect())
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

    pub(super) fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = latency_bounds()
            .position(|b| secs <= b)
            .unwrap_or(self.buckets.len() - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// `(upper bound, count)` per bucket, not cumulative, the last one `+Inf` (`f64::MAX`, which
    /// prometheus-client writes as `+Inf`): what `encode_histogram` takes, as it accumulates
    /// them itself.
    fn counts(&self) -> Vec<(f64, u64)> {
        latency_bounds()
            .chain([f64::MAX])
            .zip(&self.buckets)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect()
    }
}

/// `(upper bound, cumulative count)` per finite bucket of `counts`, and the total count.
fn cumulative(counts: &[(f64, u64)]) -> (Vec<(f64, u64)>, u64) {
    let mut acc = 0;
    let mut out = Vec::with_capacity(counts.len());
    for &(bound, count) in counts {
        acc += count;
        if bound != f64::MAX {
            out.push((bound, acc));
        }
    }
    (out, acc)
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

impl Collector for Latencies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let series: Vec<(Labels, Arc<LatencyHistogram>)> = {
            let map = self.series.lock().unwrap_or_else(|e| e.into_inner());
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let snapshots: Vec<_> = series
            .iter()
            .map(|(l, h)| (l, h.counts(), h.sum_micros.load(Ordering::Relaxed)))
            .map(|(l, counts, sum)| (l, cumulative(&counts), counts, sum))
            .collect();
        let mut family =
            encoder.encode_descriptor(self.name, self.help, None, MetricType::Histogram)?;
        for (labels, (_, total), counts, sum) in &snapshots {
            let sum = *sum as f64 / 1e6;
            family
                .encode_family(*labels)?
                .encode_histogram::<Labels>(sum, *total, counts, None)?;
        }
        let quantiles = self.name.replace("_seconds", "_quantile_seconds");
        let help = format!(
            "p50/p90/p99 of {}, estimated from the histogram buckets",
            self.name
        );
        let mut family = encoder.encode_descriptor(&quantiles, &help, None, MetricType::Gauge)?;
        for (labels, (buckets, total), _, _) in &snapshots {
            for (q, label) in [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")] {
                let mut labels: Labels = (*labels).clone();
                labels.push(("quantile", label.to_string()));
                ConstGauge::new(quantile(buckets, *total, q))
                    .encode(family.encode_family(&labels)?)?;
            }
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

    /// prometheus-client accumulates the counts it is given: given cumulative ones, it wrote
    /// buckets larger than `_count` (1, 4, 7, ... for three observations) and no `+Inf`.
    #[test]
    fn buckets_are_exposed_cumulative_once_and_end_at_inf() {
        let latencies = Arc::new(Latencies::new("x_seconds", "help"));
        let h = latencies.histogram(&[("k", "v")]);
        h.observe(Duration::from_micros(40));
        h.observe(Duration::from_micros(150));
        h.observe(Duration::from_secs(60));
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(latencies));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            r#"x_seconds_count{k="v"} 3"#,
            r#"x_seconds_bucket{le="0.00005",k="v"} 1"#,
            r#"x_seconds_bucket{le="0.0001",k="v"} 1"#,
            r#"x_seconds_bucket{le="0.0002",k="v"} 2"#,
            r#"x_seconds_bucket{le="13.1072",k="v"} 2"#,
            r#"x_seconds_bucket{le="+Inf",k="v"} 3"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
    }
}
