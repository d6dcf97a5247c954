//! The contract every store backend meets: one suite of semantics, run against SQLite (a fresh
//! file) and against a real `redis-server` started on a free loopback port, plus each backend's
//! failure behaviour (down, slow, restarted).
//!
//! What a plugin may rely on is exactly what is asserted here: values are bytes; an expired key is
//! absent to every operation; `incr` counts from 0, keeps an expiry, refuses a value that is not
//! decimal text; `incr_with_ttl` gives its TTL only to a key it creates; `ttl` reports what is
//! left; compare-and-swap never loses a write under contention; listings are in ascending
//! byte order, strictly after the cursor, page by page until `next` is `None`; limits (`max_ttl`
//! included) are checked at the limit and one past it; a guest's mistake, a limit or contention
//! never marks the store down (only connectivity does, and only a health check brings it back);
//! expired entries are reclaimed as fast as a steady TTL workload makes them.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{KvError, Page, Remaining, Store};
use crate::config::{SqliteSync, StoreBackend, StoreConfig, StoreLimits};
use crate::metrics::{Metrics, Sources};

/// Small limits, so the tests reach them.
const LIMITS: StoreLimits = StoreLimits {
    max_key_bytes: 64,
    max_value_bytes: 1024,
    max_list_keys: 10,
    max_ops_per_request: 100,
    timeout: Duration::from_secs(2),
    max_ttl: Duration::from_secs(3600),
};

fn open(backend: StoreBackend, limits: StoreLimits) -> Store {
    let config = StoreConfig {
        name: "t".into(),
        backend,
        limits,
        required: false,
    };
    Store::open(&config, Arc::new(Metrics::new(Sources::none()))).expect("the store opens")
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

/// A fresh SQLite store in its own temporary file.
fn sqlite(limits: StoreLimits) -> (Store, tempdir::Dir) {
    let dir = tempdir::Dir::new("kv-sqlite");
    let store = open(
        StoreBackend::Sqlite {
            path: dir.path.join("t.sqlite"),
            sync: SqliteSync::Full,
        },
        limits,
    );
    (store, dir)
}

/// A store on the Redis server at `port`, under a key prefix of its own.
fn redis_store(port: u16, limits: StoreLimits) -> Store {
    static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    open(
        StoreBackend::Redis {
            url: format!("redis://127.0.0.1:{port}/0"),
            key_prefix: format!("contract:{}:{n}:", std::process::id()),
        },
        limits,
    )
}

/// Every semantic rule, on `store`.
async fn contract(store: &Store) {
    basics(store).await;
    expiry(store).await;
    counters(store).await;
    windows(store).await;
    remaining(store).await;
    compare_and_swap(store).await;
    listing(store).await;
    limits(store).await;
    ttl_limits(store).await;
    contention(store).await;
    assert!(
        store.is_up(),
        "no mistake, limit or contention marked the store down"
    );
    assert!(store.check().await, "and its health check passes");
}

async fn basics(s: &Store) {
    let d = later();
    assert_eq!(s.get(b"k", d).await, Ok(None));
    assert_eq!(s.exists(b"k", d).await, Ok(false));
    let binary = [0u8, 0xff, b'\r', b'\n', 7];
    s.set(b"k", &binary, None, d).await.unwrap();
    assert_eq!(s.get(b"k", d).await, Ok(Some(binary.to_vec())));
    assert_eq!(s.exists(b"k", d).await, Ok(true));
    s.set(b"k", b"second", None, d).await.unwrap();
    assert_eq!(s.get(b"k", d).await, Ok(Some(b"second".to_vec())));
    s.set(b"empty", b"", None, d).await.unwrap();
    assert_eq!(
        s.get(b"empty", d).await,
        Ok(Some(Vec::new())),
        "empty is not absent"
    );
    assert_eq!(s.delete(b"k", d).await, Ok(true));
    assert_eq!(s.delete(b"k", d).await, Ok(false));
    assert_eq!(s.get(b"k", d).await, Ok(None));
    s.set(b"\xff\x00key", b"v", None, d).await.unwrap();
    assert_eq!(s.get(b"\xff\x00key", d).await, Ok(Some(b"v".to_vec())));
}

async fn expiry(s: &Store) {
    let d = later();
    let ttl = Some(Duration::from_millis(200));
    s.set(b"ttl", b"v", ttl, d).await.unwrap();
    s.set(b"ttl-counter", b"5", ttl, d).await.unwrap();
    assert_eq!(
        s.incr(b"ttl-counter", 1, d).await,
        Ok(6),
        "incr keeps the expiry"
    );
    assert_eq!(s.get(b"ttl", d).await, Ok(Some(b"v".to_vec())));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(s.get(b"ttl", d).await, Ok(None), "expired");
    assert_eq!(s.exists(b"ttl", d).await, Ok(false));
    assert_eq!(
        s.get(b"ttl-counter", d).await,
        Ok(None),
        "the counter expired too"
    );
    assert_eq!(
        s.delete(b"ttl", d).await,
        Ok(false),
        "an expired key was not there"
    );
    assert!(!listed(s, b"ttl").await.contains(&b"ttl".to_vec()));
    // A zero TTL means none.
    s.set(b"forever", b"v", Some(Duration::ZERO), d)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.exists(b"forever", d).await, Ok(true));
    // An expired key is absent for compare-and-swap too.
    s.set(b"cas-ttl", b"old", Some(Duration::from_millis(100)), d)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.compare_and_swap(b"cas-ttl", None, b"new", None, d).await,
        Ok(true)
    );
}

async fn counters(s: &Store) {
    let d = later();
    assert_eq!(s.incr(b"n", 5, d).await, Ok(5), "from 0");
    assert_eq!(s.incr(b"n", 3, d).await, Ok(8));
    assert_eq!(s.incr(b"n", -10, d).await, Ok(-2));
    assert_eq!(
        s.get(b"n", d).await,
        Ok(Some(b"-2".to_vec())),
        "decimal text"
    );
    s.set(b"word", b"ten", None, d).await.unwrap();
    assert!(matches!(
        s.incr(b"word", 1, d).await,
        Err(KvError::Invalid(_))
    ));
    assert_eq!(
        s.get(b"word", d).await,
        Ok(Some(b"ten".to_vec())),
        "unchanged"
    );
    s.set(b"max", i64::MAX.to_string().as_bytes(), None, d)
        .await
        .unwrap();
    assert!(
        matches!(s.incr(b"max", 1, d).await, Err(KvError::Invalid(_))),
        "overflow"
    );
}

/// `incr_with_ttl`: a key it creates expires after the TTL, an existing one keeps its expiry
/// (or its lack of one), so one call per hit is a fixed window.
async fn windows(s: &Store) {
    let d = later();
    let window = Some(Duration::from_millis(300));
    assert_eq!(s.incr_with_ttl(b"w", 1, window, d).await, Ok(1), "opens");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        s.incr_with_ttl(b"w", 1, window, d).await,
        Ok(2),
        "counts into the window, which is not extended"
    );
    let Ok(Some(Remaining::Ms(left))) = s.ttl(b"w", d).await else {
        panic!("the window has an expiry");
    };
    assert!((1..=150).contains(&left), "{left} ms left, not a fresh 300");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.get(b"w", d).await, Ok(None), "the window closed on time");
    assert_eq!(
        s.incr_with_ttl(b"w", 5, window, d).await,
        Ok(5),
        "an expired key is created again, from 0, with a new window"
    );
    assert!(matches!(s.ttl(b"w", d).await, Ok(Some(Remaining::Ms(_)))));
    // An existing key without an expiry keeps having none.
    s.set(b"w-forever", b"7", None, d).await.unwrap();
    assert_eq!(s.incr_with_ttl(b"w-forever", 1, window, d).await, Ok(8));
    assert_eq!(s.ttl(b"w-forever", d).await, Ok(Some(Remaining::Forever)));
    // No TTL (or zero) creates a key without one, as `incr` does.
    assert_eq!(s.incr_with_ttl(b"w-none", 1, None, d).await, Ok(1));
    assert_eq!(
        s.incr_with_ttl(b"w-zero", 1, Some(Duration::ZERO), d).await,
        Ok(1)
    );
    assert_eq!(s.ttl(b"w-none", d).await, Ok(Some(Remaining::Forever)));
    assert_eq!(s.ttl(b"w-zero", d).await, Ok(Some(Remaining::Forever)));
    // The same refusals as `incr`, and nothing written by a refused call.
    s.set(b"w-word", b"ten", None, d).await.unwrap();
    assert!(matches!(
        s.incr_with_ttl(b"w-word", 1, window, d).await,
        Err(KvError::Invalid(_))
    ));
    assert_eq!(s.ttl(b"w-word", d).await, Ok(Some(Remaining::Forever)));
    s.set(b"w-max", i64::MAX.to_string().as_bytes(), None, d)
        .await
        .unwrap();
    assert!(matches!(
        s.incr_with_ttl(b"w-max", 1, window, d).await,
        Err(KvError::Invalid(_))
    ));
    // A TTL past `max_ttl` is refused whether or not the key exists (checked first).
    let past = Some(LIMITS.max_ttl + Duration::from_millis(1));
    for key in [&b"w-forever"[..], b"w-absent"] {
        assert!(matches!(
            s.incr_with_ttl(key, 1, past, d).await,
            Err(KvError::TooLarge(m)) if m.contains("max_ttl")
        ));
    }
    assert_eq!(s.get(b"w-forever", d).await, Ok(Some(b"8".to_vec())));
    assert_eq!(s.exists(b"w-absent", d).await, Ok(false));
    assert_eq!(
        s.incr_with_ttl(b"w-at-max", 1, Some(LIMITS.max_ttl), d)
            .await,
        Ok(1),
        "a TTL at the limit"
    );
    // Eight clients hitting one window: no hit is lost, and one window it stays.
    let hits = (0..8).map(|_| async move {
        for _ in 0..10 {
            s.incr_with_ttl(b"w-busy", 1, Some(Duration::from_secs(60)), later())
                .await
                .unwrap();
        }
    });
    join_all(hits).await;
    assert_eq!(s.incr(b"w-busy", 0, later()).await, Ok(80));
    let Ok(Some(Remaining::Ms(left))) = s.ttl(b"w-busy", later()).await else {
        panic!("the busy window has an expiry");
    };
    assert!(left <= 60_000, "{left}");
}

/// `ttl`: the time left, `Forever` without an expiry, `None` when absent or expired.
async fn remaining(s: &Store) {
    let d = later();
    assert_eq!(s.ttl(b"t-absent", d).await, Ok(None));
    s.set(b"t", b"v", Some(Duration::from_secs(100)), d)
        .await
        .unwrap();
    let Ok(Some(Remaining::Ms(left))) = s.ttl(b"t", d).await else {
        panic!("a TTL was set");
    };
    assert!((90_000..=100_000).contains(&left), "{left}");
    s.set(b"t", b"v", None, d).await.unwrap();
    assert_eq!(
        s.ttl(b"t", d).await,
        Ok(Some(Remaining::Forever)),
        "a plain set clears it"
    );
    s.set(b"t-short", b"v", Some(Duration::from_millis(100)), d)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(s.ttl(b"t-short", d).await, Ok(None), "expired is absent");
    let long = vec![b'k'; LIMITS.max_key_bytes + 1];
    assert!(matches!(s.ttl(&long, d).await, Err(KvError::TooLarge(_))));
}

async fn compare_and_swap(s: &Store) {
    let d = later();
    assert_eq!(
        s.compare_and_swap(b"c", None, b"1", None, d).await,
        Ok(true)
    );
    assert_eq!(
        s.compare_and_swap(b"c", None, b"2", None, d).await,
        Ok(false)
    );
    assert_eq!(
        s.compare_and_swap(b"c", Some(b"9"), b"2", None, d).await,
        Ok(false)
    );
    assert_eq!(
        s.get(b"c", d).await,
        Ok(Some(b"1".to_vec())),
        "a failed swap writes nothing"
    );
    assert_eq!(
        s.compare_and_swap(b"c", Some(b"1"), b"2", None, d).await,
        Ok(true)
    );
    assert_eq!(s.get(b"c", d).await, Ok(Some(b"2".to_vec())));
    assert_eq!(
        s.compare_and_swap(b"c", Some(b""), b"3", None, d).await,
        Ok(false),
        "an empty expected value is not absence"
    );
}

/// Every key with `prefix`, following `next` to the end.
async fn listed(s: &Store, prefix: &[u8]) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let Page { keys, next } = s
            .list(prefix, cursor.as_deref(), 2, later())
            .await
            .expect("listing works");
        assert!(keys.len() <= 2, "at most the limit");
        all.extend(keys);
        match next {
            Some(n) => cursor = Some(n),
            None => return all,
        }
    }
}

async fn listing(s: &Store) {
    let d = later();
    let keys: [&[u8]; 7] = [b"l/a", b"l/b", b"l/c\xff", b"l/d", b"l/e", b"l\xff", b"m/a"];
    for k in keys {
        s.set(k, b"v", None, d).await.unwrap();
    }
    let want: Vec<Vec<u8>> = [&b"l/a"[..], b"l/b", b"l/c\xff", b"l/d", b"l/e"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    assert_eq!(
        listed(s, b"l/").await,
        want,
        "ascending, by prefix, all pages"
    );
    // One page: strictly after the cursor, with where to continue.
    let page = s.list(b"l/", Some(b"l/b"), 2, d).await.unwrap();
    assert_eq!(
        page,
        Page {
            keys: vec![b"l/c\xff".to_vec(), b"l/d".to_vec()],
            next: Some(b"l/d".to_vec()),
        }
    );
    let last = s.list(b"l/", Some(b"l/d"), 2, d).await.unwrap();
    assert_eq!((last.keys, last.next), (vec![b"l/e".to_vec()], None));
    // A prefix ending in 0xff, and a limit above the store's maximum (10) is lowered to it.
    assert_eq!(listed(s, b"l\xff").await, vec![b"l\xff".to_vec()]);
    for i in 0..12 {
        s.set(format!("many/{i:02}").as_bytes(), b"v", None, d)
            .await
            .unwrap();
    }
    let page = s.list(b"many/", None, 1000, d).await.unwrap();
    assert_eq!(page.keys.len(), 10);
    assert_eq!(page.next, Some(b"many/09".to_vec()));
    let page = s.list(b"many/", None, 0, d).await.unwrap();
    assert_eq!(page.keys.len(), 10, "0 means the maximum");
    assert_eq!(s.list(b"none/", None, 5, d).await.unwrap(), Page::default());
}

async fn limits(s: &Store) {
    let d = later();
    let key = vec![b'k'; LIMITS.max_key_bytes];
    s.set(&key, b"v", None, d)
        .await
        .expect("a key at the limit");
    let long = vec![b'k'; LIMITS.max_key_bytes + 1];
    assert!(matches!(
        s.set(&long, b"v", None, d).await,
        Err(KvError::TooLarge(_))
    ));
    assert!(matches!(s.get(&long, d).await, Err(KvError::TooLarge(_))));
    let value = vec![b'v'; LIMITS.max_value_bytes];
    s.set(b"big", &value, None, d)
        .await
        .expect("a value at the limit");
    let big = vec![b'v'; LIMITS.max_value_bytes + 1];
    let err = s.set(b"big", &big, None, d).await.unwrap_err();
    assert!(err.to_string().contains("max_value_bytes = 1024"), "{err}");
    assert_eq!(
        s.get(b"big", d).await,
        Ok(Some(value)),
        "the refused write changed nothing"
    );
}

async fn ttl_limits(s: &Store) {
    let d = later();
    s.set(b"ttl-max", b"v", Some(LIMITS.max_ttl), d)
        .await
        .expect("a TTL at the limit");
    assert_eq!(s.get(b"ttl-max", d).await, Ok(Some(b"v".to_vec())));
    assert_eq!(
        s.compare_and_swap(b"ttl-max", Some(b"v"), b"w", Some(LIMITS.max_ttl), d)
            .await,
        Ok(true)
    );
    let past = LIMITS.max_ttl + Duration::from_millis(1);
    let err = s.set(b"ttl-past", b"v", Some(past), d).await.unwrap_err();
    assert!(
        matches!(&err, KvError::TooLarge(m) if m.contains("max_ttl")),
        "{err}"
    );
    // What a guest's `Duration::MAX` and `ttl_ms = i64::MAX` become: refused before any backend
    // sees them (Redis answered "invalid expire time", and the store was marked down).
    let i64_max_ms = Duration::from_millis(i64::MAX.unsigned_abs());
    for huge in [past, i64_max_ms, Duration::MAX] {
        assert!(matches!(
            s.set(b"ttl-past", b"v", Some(huge), d).await,
            Err(KvError::TooLarge(_))
        ));
        assert!(matches!(
            s.compare_and_swap(b"ttl-past", None, b"v", Some(huge), d)
                .await,
            Err(KvError::TooLarge(_))
        ));
    }
    assert_eq!(s.exists(b"ttl-past", d).await, Ok(false), "nothing written");
    assert!(s.is_up(), "a guest's TTL never marks the store down");
}

/// Expired entries do not pile up: each write reclaims more than it can leave behind, and the
/// upkeep sweep reclaims the rest when writes stop.
async fn reclaiming(s: &Store) {
    let d = later();
    let ttl = Some(Duration::from_millis(100));
    for i in 0..200 {
        s.set(format!("old/{i}").as_bytes(), b"v", ttl, d)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..100 {
        s.set(format!("new/{i}").as_bytes(), b"v", None, d)
            .await
            .unwrap();
    }
    assert_eq!(
        s.stored_entries().await,
        (100, 0),
        "100 writes reclaimed the 200 expired entries"
    );
    // A TTL longer than the writes take, even on a loaded machine: none of these has expired
    // while they are written, so only the sweep can reclaim them.
    let ttl = Some(Duration::from_secs(1));
    for i in 0..50 {
        s.set(format!("gone/{i}").as_bytes(), b"v", ttl, later())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        s.sweep().await,
        Ok(50),
        "the sweep reclaims what expired after the writes"
    );
    assert_eq!(s.stored_entries().await, (100, 0));
    assert_eq!(s.sweep().await, Ok(0));
}

async fn contention(s: &Store) {
    // Eight clients incrementing one counter: no increment is lost.
    let incrs = (0..8).map(|_| async move {
        for _ in 0..25 {
            s.incr(b"hits", 1, later()).await.unwrap();
        }
    });
    join_all(incrs).await;
    assert_eq!(s.incr(b"hits", 0, later()).await, Ok(200));
    // Eight clients appending to one value by read-modify-compare-and-swap: every append lands.
    let appends = (0..8u8).map(|c| async move {
        for _ in 0..5 {
            loop {
                let current = s.get(b"log", later()).await.unwrap();
                let mut next = current.clone().unwrap_or_default();
                next.push(b'a' + c);
                let swapped = s
                    .compare_and_swap(b"log", current.as_deref(), &next, None, later())
                    .await
                    .unwrap();
                if swapped {
                    break;
                }
            }
        }
    });
    join_all(appends).await;
    let log = s.get(b"log", later()).await.unwrap().unwrap();
    assert_eq!(log.len(), 40);
    for c in 0..8u8 {
        assert_eq!(log.iter().filter(|&&b| b == b'a' + c).count(), 5);
    }
}

/// Polls every future to its end, concurrently, on this task.
async fn join_all<F: Future<Output = ()>>(futures: impl IntoIterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_meets_the_contract() {
    let (store, _dir) = sqlite(LIMITS);
    contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_meets_the_contract() {
    let server = RedisServer::start();
    let store = redis_store(server.port, LIMITS);
    contract(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reclaims_expired_rows_as_fast_as_writes_make_them() {
    let (store, _dir) = sqlite(LIMITS);
    reclaiming(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sheds_index_entries_of_expired_keys_without_a_listing() {
    let server = RedisServer::start();
    let store = redis_store(server.port, LIMITS);
    reclaiming(&store).await;
}

/// An error reply about the call (here `WRONGTYPE`: another application left a list where the
/// store keeps a value) is `invalid`, and leaves the store up: the server answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_error_about_the_call_leaves_the_store_up() {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let store = open(
        StoreBackend::Redis {
            url: url.clone(),
            key_prefix: "wrongtype:".into(),
        },
        LIMITS,
    );
    let client = ::redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    ::redis::cmd("LPUSH")
        .arg("wrongtype:v:k")
        .arg("x")
        .query_async::<i64>(&mut c)
        .await
        .unwrap();
    let err = store.get(b"k", later()).await.unwrap_err();
    assert!(matches!(err, KvError::Invalid(_)), "{err}");
    let err = store.incr(b"k", 1, later()).await.unwrap_err();
    assert!(matches!(err, KvError::Invalid(_)), "{err}");
    assert!(store.is_up());
    assert!(store.check().await);
}

/// A SQLite write lock held (by another process) past the store's timeout is contention: the
/// call answers `timeout` (the docs' word), the store stays up, and the health check neither
/// waits for the lock nor fails for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_lock_held_past_the_timeout_is_a_timeout_and_leaves_the_store_up() {
    let dir = tempdir::Dir::new("kv-locked");
    let path = dir.path.join("locked.sqlite");
    let limits = StoreLimits {
        timeout: Duration::from_millis(200),
        ..LIMITS
    };
    let store = open(
        StoreBackend::Sqlite {
            path: path.clone(),
            sync: SqliteSync::Full,
        },
        limits,
    );
    store.set(b"k", b"v", None, later()).await.unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO kv (key, value) VALUES (x'00', x'00');")
        .unwrap();
    for _ in 0..3 {
        let err = store.set(b"k", b"w", None, later()).await.unwrap_err();
        assert!(matches!(err, KvError::Busy { .. }), "{err}");
        assert!(store.is_up(), "contention marked the store down: {err}");
    }
    let started = Instant::now();
    assert!(store.check().await);
    assert!(
        started.elapsed() < limits.timeout,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(store.get(b"k", later()).await, Ok(Some(b"v".to_vec())));
    holder.execute_batch("ROLLBACK").unwrap();
    store.set(b"k", b"w", None, later()).await.unwrap();
}

/// A SQLite file that takes no write (here immutable: `chattr +i`, which stops root too, where
/// permissions do not) answers `SELECT 1`, but not the health check: the store is down however
/// often it is checked or called, and when the file is writable again the next health check
/// brings it back. (Its one log line each way: `tests/it/kv/sqlite.rs`, under the test
/// process's one subscriber.)
#[tokio::test]
async fn a_sqlite_store_on_a_read_only_file_is_down_until_it_is_writable() {
    let dir = tempdir::Dir::new("kv-readonly");
    let path = dir.path.join("ro.sqlite");
    let backend = || StoreBackend::Sqlite {
        path: path.clone(),
        sync: SqliteSync::Full,
    };
    {
        let store = open(backend(), LIMITS);
        store.set(b"k", b"v", None, later()).await.unwrap();
        assert!(store.check().await);
    }
    let immutable =
        Immutable::set(&path).expect("chattr +i (the test needs it: root ignores permissions)");
    let store = open(backend(), LIMITS);
    assert!(
        !store.check().await,
        "a file that takes no write is not ready"
    );
    let err = store.set(b"k", b"w", None, later()).await.unwrap_err();
    assert!(matches!(err, KvError::Unavailable { .. }), "{err}");
    assert!(!store.check().await);
    drop(immutable);
    assert!(store.check().await, "writable again");
    store.set(b"k", b"w", None, later()).await.unwrap();
    assert!(store.check().await);
}

/// A SQLite store whose directory takes no new file (immutable: its WAL index cannot be created)
/// is down, and up again when the directory is writable.
#[tokio::test]
async fn a_sqlite_store_in_a_read_only_directory_is_down_until_it_is_writable() {
    let dir = tempdir::Dir::new("kv-readonly-dir");
    let path = dir.path.join("data").join("ro.sqlite");
    let backend = || StoreBackend::Sqlite {
        path: path.clone(),
        sync: SqliteSync::Full,
    };
    {
        let store = open(backend(), LIMITS);
        store.set(b"k", b"v", None, later()).await.unwrap();
    }
    let data = dir.path.join("data");
    let immutable =
        Immutable::set(&data).expect("chattr +i (the test needs it: root ignores permissions)");
    let store = open(backend(), LIMITS);
    assert!(
        !store.check().await,
        "a directory that takes no file is not ready"
    );
    assert!(matches!(
        store.set(b"k", b"w", None, later()).await,
        Err(KvError::Unavailable { .. })
    ));
    drop(immutable);
    assert!(store.check().await, "writable again");
    store.set(b"k", b"w", None, later()).await.unwrap();
}

/// A SQLite file with malformed pages answers `SELECT 1` too: the health check verifies the
/// storage first, and the store is down; an operation that meets a malformed page is a
/// connectivity fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_with_malformed_pages_is_down() {
    let dir = tempdir::Dir::new("kv-corrupt");
    let path = dir.path.join("corrupt.sqlite");
    let backend = || StoreBackend::Sqlite {
        path: path.clone(),
        sync: SqliteSync::Full,
    };
    {
        let store = open(backend(), LIMITS);
        for i in 0..300 {
            store
                .set(format!("k/{i}").as_bytes(), &[b'v'; 200], None, later())
                .await
                .unwrap();
        }
    }
    // The schema (page 1) intact, every other page garbage.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8 * 4096, "{} bytes", bytes.len());
    for (i, b) in bytes[4096..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    std::fs::write(&path, bytes).unwrap();
    let store = open(backend(), LIMITS);
    assert!(!store.check().await, "malformed pages are not ready");
    assert!(!store.is_up());
    let err = store.get(b"k/1", later()).await.unwrap_err();
    assert!(matches!(err, KvError::Unavailable { .. }), "{err}");
}

/// Two stores on one SQLite file (as two processes would have): what one writes the other reads
/// at once, and their increments never collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_sqlite_file_share_it() {
    let dir = tempdir::Dir::new("kv-shared");
    let backend = || StoreBackend::Sqlite {
        path: dir.path.join("shared.sqlite"),
        sync: SqliteSync::Full,
    };
    let (a, b) = (open(backend(), LIMITS), open(backend(), LIMITS));
    a.set(b"x", b"1", None, later()).await.unwrap();
    assert_eq!(b.get(b"x", later()).await, Ok(Some(b"1".to_vec())));
    let (a, b) = (&a, &b);
    join_all([a, b].map(|s| async move {
        for _ in 0..50 {
            s.incr(b"n", 1, later()).await.unwrap();
        }
    }))
    .await;
    assert_eq!(a.get(b"n", later()).await, Ok(Some(b"100".to_vec())));
}

/// Many writers on one SQLite file (two stores, as two processes would have, each with its whole
/// pool busy) all get the write lock in turn, well within the default timeout: waiting for it is
/// not a back-off that lets the writers that waited longest lose every race (SQLite's default
/// busy handler sleeps up to 100 ms between tries, and some increments starved past 500 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_contending_for_one_sqlite_file_each_get_their_turn() {
    let dir = tempdir::Dir::new("kv-contended");
    let limits = StoreLimits {
        timeout: StoreLimits::default().timeout,
        ..LIMITS
    };
    let backend = || StoreBackend::Sqlite {
        path: dir.path.join("contended.sqlite"),
        sync: SqliteSync::Full,
    };
    let (a, b) = (open(backend(), limits), open(backend(), limits));
    const TASKS: usize = 8;
    const EACH: i64 = 100;
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let failures = &failures;
    join_all(
        [&a, &b]
            .into_iter()
            .flat_map(|s| std::iter::repeat_n(s, TASKS))
            .map(|s| async move {
                for _ in 0..EACH {
                    if let Err(e) = s.incr(b"n", 1, later()).await {
                        eprintln!("{e}");
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }),
    )
    .await;
    let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(failed, 0, "increments that did not get the lock in time");
    let total = (2 * TASKS) as i64 * EACH;
    assert_eq!(
        a.get(b"n", later()).await,
        Ok(Some(total.to_string().into_bytes()))
    );
}

/// A Redis store whose server is not there fails fast; one whose server accepts and never answers
/// fails at its bound; the request's deadline bounds an operation below the store's own timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_store_that_is_down_or_silent_fails_within_its_bound() {
    let limits = StoreLimits {
        timeout: Duration::from_millis(300),
        ..LIMITS
    };
    let refused = redis_store(free_port(), limits);
    let started = Instant::now();
    assert!(matches!(
        refused.get(b"k", later()).await,
        Err(KvError::Unavailable { .. } | KvError::Timeout { .. })
    ));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!refused.is_up());
    // A listener that accepts and says nothing.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let store = redis_store(port, limits);
    let started = Instant::now();
    let err = store.get(b"k", later()).await.unwrap_err();
    assert!(
        matches!(err, KvError::Timeout { .. } | KvError::Unavailable { .. }),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let err = store
        .get(b"k", Instant::now() + Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, KvError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_millis(250));
}

/// A Redis store reconnects by itself when its server comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_store_reconnects_after_the_server_restarts() {
    let limits = StoreLimits {
        timeout: Duration::from_millis(500),
        ..LIMITS
    };
    let mut server = RedisServer::start();
    let store = redis_store(server.port, limits);
    store.set(b"k", b"v", None, later()).await.unwrap();
    server.stop();
    assert!(store.get(b"k", later()).await.is_err());
    assert!(!store.is_up());
    let server = RedisServer::start_on(server.port);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match store.set(b"k", b"back", None, later()).await {
            Ok(()) => break,
            Err(_) if Instant::now() < end => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("never reconnected: {e}"),
        }
    }
    assert_eq!(store.get(b"k", later()).await, Ok(Some(b"back".to_vec())));
    assert!(!store.is_up(), "only a health check brings a store back");
    assert!(store.check().await);
    drop(server);
}

/// A SQLite store whose file cannot be created answers `unavailable`, naming the file.
#[tokio::test]
async fn a_sqlite_store_that_cannot_open_its_file_is_unavailable() {
    let store = open(
        StoreBackend::Sqlite {
            path: "/proc/wasmgate-cannot-write-here/t.sqlite".into(),
            sync: SqliteSync::Full,
        },
        LIMITS,
    );
    let err = store.get(b"k", later()).await.unwrap_err();
    assert!(
        matches!(&err, KvError::Unavailable { reason, .. } if reason.contains("wasmgate-cannot-write-here")),
        "{err}"
    );
    assert!(!store.check().await);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A real `redis-server` on a loopback port, in memory only, stopped (by PID) when dropped.
struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    fn start() -> RedisServer {
        RedisServer::start_on(free_port())
    }

    fn start_on(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: ./test.sh installs it");
        let server = RedisServer {
            port,
            child: Some(child),
        };
        let end = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < end,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A file made immutable (`chattr +i`: no process, root's included, may open it for writing)
/// until dropped.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(path: &std::path::Path) -> Result<Immutable, String> {
        let status = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .map_err(|e| format!("chattr: {e}"))?;
        if !status.success() {
            return Err(format!("chattr +i {}: {status}", path.display()));
        }
        Ok(Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A temporary directory, removed when dropped.
mod tempdir {
    pub(super) struct Dir {
        pub(super) path: std::path::PathBuf,
    }

    impl Dir {
        pub(super) fn new(tag: &str) -> Dir {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("wasmgate-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&path).expect("a temporary directory");
            Dir { path }
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
