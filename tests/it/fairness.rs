//! Guest CPU must not starve the server: while two clients keep a spinning guest busy, `/health`
//! on the same server stays fast.
//!
//! The figure (p99, printed) is measured properly by `bench/fairness.sh` (release build, nothing
//! else running); here the bound is generous so the test only fails on real starvation, not on a
//! noisy machine running other tests in parallel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{RawClient, TestServer};

/// Starts the spinning load, measures `samples` sequential `/health` round trips on one keep-alive
/// connection, and returns the sorted latencies.
fn health_latencies_under_spinning_guests(samples: usize) -> anyhow::Result<Vec<Duration>> {
    let server = TestServer::start(
        "[plugins.spin]\nwasm = \"tests/guests/spin.wat\"\nfuel = 1000000000000\ndeadline = \"200ms\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/spin\"\nplugin = \"spin\"\n",
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let (stop, addr) = (stop.clone(), server.addr());
            std::thread::spawn(move || -> anyhow::Result<usize> {
                let mut c = RawClient::connect(addr)?;
                let mut answered = 0;
                while !stop.load(Ordering::Relaxed) {
                    let resp = c
                        .send(b"GET /spin HTTP/1.1\r\nHost: x\r\n\r\n")?
                        .response()?;
                    anyhow::ensure!(
                        resp.status == 504,
                        "a spinning guest answered {}",
                        resp.status
                    );
                    answered += 1;
                }
                Ok(answered)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut c = server.connect()?;
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let resp = c
            .send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")?
            .response()?;
        assert_eq!(resp.status, 200);
        latencies.push(started.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let mut spins = 0;
    for spinner in spinners {
        spins += spinner.join().expect("a spinning client thread")?;
    }
    assert!(
        spins >= 2,
        "the guests really were spinning ({spins} deadline answers)"
    );
    latencies.sort();
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[test]
fn health_stays_responsive_while_guests_spin() -> anyhow::Result<()> {
    let _calm = crate::support::exclusive_network();
    let samples = std::env::var("FAIRNESS_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let latencies = health_latencies_under_spinning_guests(samples)?;
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    println!(
        "fairness: /health p50 {p50:?} p99 {p99:?} over {} requests with 2 spinning guests",
        latencies.len()
    );
    assert!(
        p99 < Duration::from_millis(150),
        "/health p99 {p99:?}: guests are starving the server"
    );
    Ok(())
}
