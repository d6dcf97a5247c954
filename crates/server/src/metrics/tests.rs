//! The families render with bounded labels, the vocabulary is there from the first scrape, and
//! the per-thread caches count into the right `Metrics` value.

use super::*;

fn metrics() -> Metrics {
    Metrics::new(Sources::none())
}

#[test]
fn renders_the_families_with_bounded_labels() {
    let m = metrics();
    m.connection_opened();
    m.request("/hello/:name", "GET", 200, Duration::from_micros(120));
    m.request("/hello/:name", "BREW", 405, Duration::from_millis(3));
    m.parse_error("bad_request_line");
    m.plugin_call("hello", CallOutcome::Ok, 1234);
    m.timeout(TimeoutKind::BodyTotal);
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
        r#"wasmgate_timeouts_total{kind="body_total"} 1"#,
        "wasmgate_resident_memory_bytes ",
        "wasmgate_open_fds ",
        "wasmgate_allocations_total ",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

/// Help texts are generated from the vocabulary (the last round's help for timeouts forgot
/// `body_total`), and every value is exported at zero before it first happens.
#[test]
fn vocabularies_are_complete_in_help_and_samples() {
    let text = metrics().render();
    for kind in TimeoutKind::ALL {
        let sample = format!(r#"wasmgate_timeouts_total{{kind="{}"}} 0"#, kind.label());
        assert!(text.contains(&sample), "missing {sample} in\n{text}");
    }
    for reason in CloseReason::ALL {
        let sample = format!(
            r#"wasmgate_connections_closed_total{{reason="{}"}} 0"#,
            reason.label()
        );
        assert!(text.contains(&sample), "missing {sample}");
    }
    let help = text
        .lines()
        .find(|l| l.starts_with("# HELP wasmgate_timeouts "))
        .unwrap();
    assert!(help.contains("body_total = "), "{help}");
    let help = text
        .lines()
        .find(|l| l.starts_with("# HELP wasmgate_connections "))
        .unwrap();
    assert!(help.contains("reading_body = "), "{help}");
}

/// The per-thread caches must count into the right `Metrics` value, and keep counting right
/// when more label sets pass through a thread than a cache holds.
#[test]
fn per_thread_caches_count_every_call_into_its_own_metrics() {
    let (a, b) = (metrics(), metrics());
    let plugins: Vec<String> = (0..2 * CACHE_ENTRIES).map(|i| format!("p{i}")).collect();
    for _ in 0..3 {
        for p in &plugins {
            a.plugin_call(p, CallOutcome::Ok, 10);
            a.request(p, "GET", 200, Duration::from_micros(100));
        }
        b.plugin_call("p0", CallOutcome::Trap, 0);
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

/// The scrape-time families read their sources at every scrape.
#[test]
fn scrape_time_families_read_their_sources() {
    let m = Metrics::new(Sources {
        connections: Box::new(|| vec![(ConnState::Idle, 3)]),
        guards: Box::new(|| {
            vec![GuardReading {
                plugin: "p".into(),
                rejected: vec![(RejectReason::Overloaded, 2)],
                ..GuardReading::default()
            }]
        }),
        loads: Box::new(|| LoadReading {
            plugins: vec![PluginLoadReading {
                plugin: "p".into(),
                hash: Some("abc".into()),
                reloads: vec![(ReloadResult::Refused, 1)],
                last_error: Some((LoadErrorKind::Compile, "bad".into())),
                ..PluginLoadReading::default()
            }],
            config_reloads: vec![(ReloadResult::Ok, 4)],
        }),
    });
    let text = m.render();
    for needle in [
        r#"wasmgate_connections{state="idle"} 3"#,
        r#"wasmgate_connections{state="writing"} 0"#,
        r#"wasmgate_plugin_rejected_total{plugin="p",reason="overloaded"} 2"#,
        r#"wasmgate_plugin_rejected_total{plugin="p",reason="quarantined"} 0"#,
        r#"wasmgate_plugin_info{plugin="p",hash="abc"} 1"#,
        r#"wasmgate_plugin_reloads_total{plugin="p",result="refused"} 1"#,
        r#"wasmgate_plugin_last_error_info{plugin="p",kind="compile",error="bad"} 1"#,
        r#"wasmgate_config_reloads_total{result="ok"} 4"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}
