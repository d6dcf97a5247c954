//! Per-plugin admission (`crates/server/src/guard.rs`) through HTTP: the concurrency cap and its
//! bounded queue (then 503 `overloaded` with `Retry-After`), and the circuit breaker (a plugin that
//! traps `breaker_threshold` times in a row answers 503 `quarantined` with `Retry-After`, is probed
//! after the back-off, and closes again on success), with their metrics, across hot reload.

use std::time::{Duration, Instant};

use crate::support::{Site, TestServer, eventually, get, logs_contain, try_eventually};

fn route(name: &str) -> String {
    format!("[[routes]]\nmethod = \"GET\"\npath = \"/g/{name}\"\nplugin = \"{name}\"\n")
}

#[test]
fn past_max_concurrency_calls_queue_and_past_max_queue_they_get_503_with_retry_after()
-> anyhow::Result<()> {
    let server = TestServer::start(&format!(
        "[plugins.sleep]\nwasm = \"tests/guests/sleep.wat\"\ndeadline = \"5s\"\n\
         max_concurrency = 2\nmax_queue = 2\n\
         [plugins.ok]\nwasm = \"tests/guests/ok.wat\"\n{}{}",
        route("sleep"),
        route("ok")
    ))?;
    let addr = server.addr();
    let started = Instant::now();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || get(addr, "/g/sleep?700").map(|r| (r, started.elapsed())))
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(3), || {
            server.metric(r#"wasmgate_plugin_rejected_total{plugin="sleep",reason="overloaded"}"#)
                == 2.0
        }),
        "{}",
        server.metrics()
    );
    // Two running, two waiting: the metrics say so while it happens.
    assert_eq!(
        server.metric(r#"wasmgate_plugin_in_flight{plugin="sleep"}"#),
        2.0
    );
    assert_eq!(
        server.metric(r#"wasmgate_plugin_queued{plugin="sleep"}"#),
        2.0
    );
    // Another plugin is not held up by this one's queue.
    let t = Instant::now();
    assert_eq!(get(addr, "/g/ok")?.status, 200);
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );

    let mut answered = Vec::new();
    for c in clients {
        answered.push(c.join().expect("a client thread")?);
    }
    let ok: Vec<_> = answered.iter().filter(|(r, _)| r.status == 200).collect();
    let busy: Vec<_> = answered.iter().filter(|(r, _)| r.status == 503).collect();
    assert_eq!((ok.len(), busy.len()), (4, 2), "{answered:?}");
    for (resp, at) in &busy {
        assert_eq!(resp.header("retry-after"), Some("1"));
        assert_eq!(resp.json()?["error"], "overloaded");
        assert!(
            *at < Duration::from_millis(600),
            "refused at once, not after a wait: {at:?}"
        );
    }
    // The queued two ran after the first two: about two sleeps in all.
    let last = ok.iter().map(|(_, at)| *at).max().expect("four answered");
    assert!(last >= Duration::from_millis(1300), "{last:?}");
    assert_eq!(
        server.metric(r#"wasmgate_plugin_calls_total{plugin="sleep",outcome="overloaded"}"#),
        2.0
    );
    assert_eq!(
        server.metric(r#"wasmgate_plugin_in_flight{plugin="sleep"}"#),
        0.0
    );
    assert_eq!(
        server.metric(r#"wasmgate_plugin_queued{plugin="sleep"}"#),
        0.0
    );
    Ok(())
}

#[test]
fn a_plugin_that_keeps_trapping_is_quarantined_then_probed_then_restored() -> anyhow::Result<()> {
    let server = TestServer::start(&format!(
        "[plugins.trap]\nwasm = \"tests/guests/trap.wat\"\nbreaker_threshold = 3\n\
         breaker_backoff = \"400ms\"\nbreaker_backoff_max = \"1200ms\"\n\
         [plugins.ok]\nwasm = \"tests/guests/ok.wat\"\n{}{}",
        route("trap"),
        route("ok")
    ))?;
    let addr = server.addr();
    let state = r#"wasmgate_plugin_breaker_state{plugin="trap"}"#;
    // Two traps, an answer: the count starts over.
    for _ in 0..2 {
        assert_eq!(get(addr, "/g/trap")?.status, 500);
    }
    assert_eq!(get(addr, "/g/trap?ok")?.status, 200);
    for _ in 0..3 {
        assert_eq!(get(addr, "/g/trap")?.status, 500);
    }
    // Quarantined: even a request it would answer is refused, with a time to come back.
    let resp = get(addr, "/g/trap?ok")?;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json()?["error"], "quarantined");
    assert_eq!(resp.header("retry-after"), Some("1"));
    assert_eq!(server.metric(state), 1.0);
    assert_eq!(
        server.metric(r#"wasmgate_plugin_breaker_opened_total{plugin="trap"}"#),
        1.0
    );
    assert!(logs_contain(&[
        "plugin quarantined",
        "plugin=trap",
        "threshold=3"
    ]));
    assert_eq!(get(addr, "/g/ok")?.status, 200, "other plugins carry on");

    // After the back-off one probe goes through; it traps, so the quarantine doubles (800 ms).
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(server.metric(state), 2.0, "half-open: due for a probe");
    assert_eq!(get(addr, "/g/trap")?.status, 500);
    assert_eq!(get(addr, "/g/trap?ok")?.status, 503);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(addr, "/g/trap?ok")?.status,
        503,
        "still inside the doubled period"
    );
    std::thread::sleep(Duration::from_millis(600));
    // A successful probe closes the breaker.
    assert_eq!(get(addr, "/g/trap?ok")?.status, 200);
    assert_eq!(get(addr, "/g/trap?ok")?.status, 200);
    assert_eq!(server.metric(state), 0.0);
    assert_eq!(
        server.metric(r#"wasmgate_plugin_rejected_total{plugin="trap",reason="quarantined"}"#),
        3.0
    );
    assert_eq!(
        server.metric(r#"wasmgate_plugin_calls_total{plugin="trap",outcome="quarantined"}"#),
        3.0
    );
    Ok(())
}

#[test]
fn slow_guests_do_not_trip_the_breaker() -> anyhow::Result<()> {
    let server = TestServer::start(&format!(
        "[plugins.spin]\nwasm = \"tests/guests/spin.wat\"\nfuel = 2000000\nbreaker_threshold = 2\n{}",
        route("spin")
    ))?;
    for _ in 0..4 {
        assert_eq!(server.get("/g/spin")?.status, 504);
    }
    assert_eq!(server.get("/g/spin?ok")?.status, 200);
    assert_eq!(
        server.metric(r#"wasmgate_plugin_breaker_opened_total{plugin="spin"}"#),
        0.0
    );
    Ok(())
}

/// A watched site's config: plugin `p` (module `p.wat`) on `/p`, with a breaker that opens after
/// two failures and stays open for 30 s, plus `extra` settings of `p`.
fn watched_config(extra: &str) -> String {
    format!(
        "[server]\nwatch = true\nwatch_debounce = \"50ms\"\n[runtime]\nmodule_cache = false\n\
         [plugins.p]\nwasm = \"p.wat\"\nbreaker_threshold = 2\nbreaker_backoff = \"30s\"\n{extra}\
         [[routes]]\nmethod = \"GET\"\npath = \"/p\"\nplugin = \"p\"\n"
    )
}

#[test]
fn quarantine_survives_a_reload_that_keeps_the_module_and_a_new_module_starts_afresh()
-> anyhow::Result<()> {
    let site = Site::new("admission")?;
    site.copy_guest("trap", "p.wat")?;
    site.replace("wasmgate.toml", watched_config(""))?;
    let server = site.start()?;
    let addr = server.addr();
    for _ in 0..2 {
        assert_eq!(get(addr, "/p")?.status, 500);
    }
    assert_eq!(get(addr, "/p?ok")?.status, 503);
    // A config change that leaves the module alone (a limit of this plugin changes) keeps the
    // quarantine: the guard is the plugin's, not the config's; the new limit applies at once.
    let reloads = r#"wasmgate_config_reloads_total{result="ok"}"#;
    site.replace("wasmgate.toml", watched_config("max_queue = 7\n"))?;
    assert!(eventually(Duration::from_secs(5), || server
        .metric(reloads)
        >= 1.0));
    assert_eq!(get(addr, "/p?ok")?.status, 503, "still quarantined");
    // A new version of the module gets a closed breaker.
    site.copy_guest("ok", "p.wat")?;
    assert!(
        try_eventually(
            Duration::from_secs(5),
            || Ok(get(addr, "/p")?.status == 200)
        )?,
        "the fixed module serves without waiting out the 30 s quarantine"
    );
    Ok(())
}

/// An overload burst is a few log lines, not one per rejected request: the first rejection is
/// logged, the rest counted into one summary line per `log_repeat_interval`, while `/metrics`
/// counts every one.
#[test]
fn an_overload_burst_logs_a_bounded_number_of_lines_and_metrics_count_every_rejection()
-> anyhow::Result<()> {
    const CLIENTS: usize = 120;
    let server = TestServer::start(&format!(
        "[server]\nlog_repeat_interval = \"300ms\"\n\
         [plugins.burst20]\nwasm = \"tests/guests/sleep.wat\"\ndeadline = \"5s\"\n\
         max_concurrency = 1\nmax_queue = 1\n{}",
        route("burst20")
    ))?;
    let addr = server.addr();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| std::thread::spawn(move || get(addr, "/g/burst20?400").map(|r| r.status)))
        .collect();
    let mut statuses = Vec::new();
    for c in clients {
        statuses.push(c.join().expect("a client thread")?);
    }
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert!(refused >= CLIENTS / 2, "{statuses:?}");
    let counted =
        server.metric(r#"wasmgate_plugin_rejected_total{plugin="burst20",reason="overloaded"}"#);
    assert_eq!(counted, refused as f64, "every rejection is counted");
    // The summary of the rest arrives within an interval (its task ticks every quarter of one).
    let lines = |logs: &str| -> (usize, usize, u64) {
        let ours: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("plugin call refused") && l.contains("burst20"))
            .collect();
        let summarised: u64 = ours
            .iter()
            .filter_map(|l| l.split("repeated=").nth(1))
            .filter_map(|r| r.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        let first = ours.iter().filter(|l| !l.contains("repeated=")).count();
        (ours.len(), first, summarised)
    };
    assert!(
        eventually(Duration::from_secs(3), || {
            let (_, first, summarised) = lines(&crate::support::logs());
            first as u64 + summarised == refused as u64
        }),
        "{:?} for {refused} refused\n{}",
        lines(&crate::support::logs()),
        crate::support::logs()
    );
    let (total, first, summarised) = lines(&crate::support::logs());
    eprintln!(
        "overload burst: {CLIENTS} clients, {refused} refused (metric {counted}), {total} WARN lines \
         ({first} logged at once, {summarised} summarised)"
    );
    assert!(total <= 4, "a bounded number of lines: {total}");
    Ok(())
}
