//! Families read at scrape time rather than counted as they happen: process readings, live
//! connections by state, each plugin's admission guard, and each plugin's load history.
//!
//! The modules that own those states (the connection registry, the guard, the loader) do not
//! encode metrics: they hand this module plain readings through [`Sources`], and the names, help
//! texts and labels of every family stay here, in the one metrics module. Nothing here locks more
//! than its source's snapshot does, and nothing runs unless `/metrics` is scraped.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::labels::{self, ConnState, LabelValue, LoadErrorKind, RejectReason, ReloadResult};
use crate::sys;

/// Where the scrape-time families read their values. Each is a closure over the owner's state,
/// so this module depends on none of the owners.
pub(crate) struct Sources {
    /// Live connections per [`ConnState`], indexed as `ConnState::ALL`.
    pub(crate) connections: Box<dyn Fn() -> Vec<(ConnState, i64)> + Send + Sync>,
    /// Every plugin's admission guard.
    pub(crate) guards: Box<dyn Fn() -> Vec<GuardReading> + Send + Sync>,
    /// Every plugin's load history, and the config reloads.
    pub(crate) loads: Box<dyn Fn() -> LoadReading + Send + Sync>,
}

impl Sources {
    /// Sources that read nothing (for metrics of a unit test).
    #[cfg(test)]
    pub(crate) fn none() -> Sources {
        Sources {
            connections: Box::new(Vec::new),
            guards: Box::new(Vec::new),
            loads: Box::new(LoadReading::default),
        }
    }
}

impl fmt::Debug for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sources")
    }
}

/// One plugin's admission guard, as `/metrics` shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct GuardReading {
    pub(crate) plugin: String,
    pub(crate) in_flight: i64,
    pub(crate) queued: i64,
    /// Refusals per [`RejectReason`].
    pub(crate) rejected: Vec<(RejectReason, u64)>,
    /// 0 closed, 1 open (quarantined), 2 half-open (due for, or running, its probe).
    pub(crate) breaker_state: i64,
    pub(crate) consecutive_failures: u32,
    pub(crate) breaker_opened: u64,
}

/// Every plugin's load history, and the config reloads.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadReading {
    pub(crate) plugins: Vec<PluginLoadReading>,
    /// Config reloads per [`ReloadResult`].
    pub(crate) config_reloads: Vec<(ReloadResult, u64)>,
}

/// One plugin's load history.
#[derive(Debug, Clone, Default)]
pub(crate) struct PluginLoadReading {
    pub(crate) plugin: String,
    /// Content hash of the serving version, if one ever loaded.
    pub(crate) hash: Option<String>,
    pub(crate) loaded_at: Option<SystemTime>,
    /// Reloads per [`ReloadResult`].
    pub(crate) reloads: Vec<(ReloadResult, u64)>,
    /// The last load error: its kind and its message (already cut to a label-sized text).
    pub(crate) last_error: Option<(LoadErrorKind, String)>,
}

/// The scrape-time families, registered once as one collector.
#[derive(Debug)]
pub(super) struct Scraped {
    pub(super) sources: Sources,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectedLabels {
    plugin: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InfoLabels {
    plugin: String,
    hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    plugin: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    plugin: String,
    kind: &'static str,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    result: &'static str,
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        process(&mut encoder)?;
        connections(&mut encoder, &(self.sources.connections)())?;
        guards(&mut encoder, &(self.sources.guards)())?;
        loads(&mut encoder, &(self.sources.loads)())
    }
}

fn connections(encoder: &mut DescriptorEncoder, counts: &[(ConnState, i64)]) -> fmt::Result {
    let help = labels::help::<ConnState>("Live connections by state", "state");
    let mut family = encoder.encode_descriptor("connections", &help, None, MetricType::Gauge)?;
    for state in ConnState::ALL {
        let n = counts.iter().find(|(s, _)| s == state).map_or(0, |c| c.1);
        ConstGauge::new(n).encode(family.encode_family(&StateLabel {
            state: state.label(),
        })?)?;
    }
    Ok(())
}

fn guards(encoder: &mut DescriptorEncoder, plugins: &[GuardReading]) -> fmt::Result {
    type Reading = fn(&GuardReading) -> i64;
    let gauges: [(&str, &str, Reading); 4] = [
        ("plugin_in_flight", "Plugin calls running now", |s| {
            s.in_flight
        }),
        (
            "plugin_queued",
            "Plugin calls waiting for a place under max_concurrency",
            |s| s.queued,
        ),
        (
            "plugin_breaker_state",
            "Circuit breaker: 0 closed, 1 open (quarantined), 2 half-open (probing)",
            |s| s.breaker_state,
        ),
        (
            "plugin_consecutive_failures",
            "Broken plugin calls (trap, memory_limit, invalid_response) in a row",
            |s| i64::from(s.consecutive_failures),
        ),
    ];
    for (name, help, read) in gauges {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for s in plugins {
            ConstGauge::new(read(s)).encode(family.encode_family(&PluginLabel {
                plugin: s.plugin.clone(),
            })?)?;
        }
    }
    let help =
        labels::help::<RejectReason>("Requests refused before calling their plugin", "reason");
    let mut family =
        encoder.encode_descriptor("plugin_rejected", &help, None, MetricType::Counter)?;
    for s in plugins {
        for reason in RejectReason::ALL {
            let n = s
                .rejected
                .iter()
                .find(|(r, _)| r == reason)
                .map_or(0, |r| r.1);
            ConstCounter::new(n).encode(family.encode_family(&RejectedLabels {
                plugin: s.plugin.clone(),
                reason: reason.label(),
            })?)?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "plugin_breaker_opened",
        "Times the plugin's circuit breaker opened after breaker_threshold broken calls",
        None,
        MetricType::Counter,
    )?;
    for s in plugins {
        ConstCounter::new(s.breaker_opened).encode(family.encode_family(&PluginLabel {
            plugin: s.plugin.clone(),
        })?)?;
    }
    Ok(())
}

fn loads(encoder: &mut DescriptorEncoder, reading: &LoadReading) -> fmt::Result {
    let mut plugins: Vec<&PluginLoadReading> = reading.plugins.iter().collect();
    plugins.sort_by(|a, b| a.plugin.cmp(&b.plugin));
    let mut family = encoder.encode_descriptor(
        "plugin_info",
        "The loaded version of each plugin (content SHA-256)",
        None,
        MetricType::Gauge,
    )?;
    for p in &plugins {
        if let Some(hash) = &p.hash {
            ConstGauge::new(1).encode(family.encode_family(&InfoLabels {
                plugin: p.plugin.clone(),
                hash: hash.clone(),
            })?)?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "plugin_loaded_timestamp_seconds",
        "When the serving version of each plugin was loaded (Unix time)",
        None,
        MetricType::Gauge,
    )?;
    for p in &plugins {
        if let Some(at) = p.loaded_at {
            let secs = at
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            ConstGauge::new(secs).encode(family.encode_family(&PluginLabel {
                plugin: p.plugin.clone(),
            })?)?;
        }
    }
    let help = labels::help::<ReloadResult>("Plugin reloads by result", "result");
    let mut family =
        encoder.encode_descriptor("plugin_reloads", &help, None, MetricType::Counter)?;
    for p in &plugins {
        for result in ReloadResult::ALL {
            let n = p
                .reloads
                .iter()
                .find(|(r, _)| r == result)
                .map_or(0, |r| r.1);
            ConstCounter::new(n).encode(family.encode_family(&ResultLabels {
                plugin: p.plugin.clone(),
                result: result.label(),
            })?)?;
        }
    }
    let help = labels::help::<LoadErrorKind>("The last load error of each plugin", "kind");
    let mut family =
        encoder.encode_descriptor("plugin_last_error_info", &help, None, MetricType::Gauge)?;
    for p in &plugins {
        if let Some((kind, error)) = &p.last_error {
            ConstGauge::new(1).encode(family.encode_family(&ErrorLabels {
                plugin: p.plugin.clone(),
                kind: kind.label(),
                error: error.clone(),
            })?)?;
        }
    }
    let help = labels::help::<ReloadResult>(
        "Config reloads by result (refused: invalid, the old config kept)",
        "result",
    );
    let mut family =
        encoder.encode_descriptor("config_reloads", &help, None, MetricType::Counter)?;
    for result in ReloadResult::ALL {
        let n = reading
            .config_reloads
            .iter()
            .find(|(r, _)| r == result)
            .map_or(0, |r| r.1);
        ConstCounter::new(n).encode(family.encode_family(&OutcomeLabel {
            result: result.label(),
        })?)?;
    }
    Ok(())
}

/// Process-level readings: memory, allocations, descriptors.
fn process(encoder: &mut DescriptorEncoder) -> fmt::Result {
    {
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
