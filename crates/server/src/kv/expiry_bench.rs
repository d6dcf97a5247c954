//! The workload of bench/kv-expiry.sh (issue 20, item 5): distinct keys written at a steady rate
//! with a TTL, through the one `Store` API, so the script can count what the backend keeps
//! afterwards. Ignored by `cargo test`: the script runs it, with its parameters in the
//! environment. It uses only `Store::open` and `Store::set`, so the same file builds against
//! older code for the figures before a change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Store;
use crate::config::{SqliteSync, StoreBackend, StoreConfig, StoreLimits};
use crate::metrics::{Metrics, Sources};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("bench/kv-expiry.sh sets {name}"))
}

fn number(name: &str) -> u64 {
    var(name).parse().unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by bench/kv-expiry.sh"]
async fn expiry_workload() {
    let backend = match var("KV_BENCH_BACKEND").as_str() {
        "sqlite" => StoreBackend::Sqlite {
            path: var("KV_BENCH_PATH").into(),
            sync: SqliteSync::Full,
        },
        "redis" => StoreBackend::Redis {
            url: var("KV_BENCH_REDIS_URL"),
            key_prefix: var("KV_BENCH_PREFIX"),
        },
        other => panic!("KV_BENCH_BACKEND={other}: sqlite or redis"),
    };
    let config = StoreConfig {
        name: "bench".into(),
        backend,
        limits: StoreLimits {
            timeout: Duration::from_secs(5),
            ..StoreLimits::default()
        },
        required: false,
    };
    let store = Store::open(&config, Arc::new(Metrics::new(Sources::none()))).expect("opens");
    let (writes, rate) = (number("KV_BENCH_WRITES"), number("KV_BENCH_RATE"));
    let ttl = Duration::from_millis(number("KV_BENCH_TTL_MS"));
    let started = Instant::now();
    let mut failed = 0;
    for i in 0..writes {
        // Paced: write i is due at i / rate seconds.
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let key = format!("session/{i}");
        let deadline = Instant::now() + Duration::from_secs(5);
        if store
            .set(key.as_bytes(), b"v", Some(ttl), deadline)
            .await
            .is_err()
        {
            failed += 1;
        }
    }
    println!(
        "wrote {writes} keys (ttl {ttl:?}) in {:.2?}, {failed} failed",
        started.elapsed()
    );
}
