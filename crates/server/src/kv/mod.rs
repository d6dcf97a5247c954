//! Key-value stores for plugins: one [`Store`] per `[stores.NAME]`, backed by SQLite (embedded,
//! the default) or Redis, with the same semantics on both.
//!
//! Owns the operations (get, set with TTL, delete, exists, list by prefix, atomic increment (with
//! a TTL for the key it creates), the remaining TTL, compare-and-swap), their bounds (an
//! operation never outlives its timeout nor the request's deadline: a store that is down or slow
//! costs the plugin one error it handles, never a hung request), their metrics and logged
//! failures, and the set of configured stores ([`Stores`]), which a reload rebuilds from its
//! configuration ([`Stores::reopen`]: unchanged stores kept as they are, new and redefined ones
//! opened and checked before any plugin is bound to them).
//! The rest is in child modules: `error` (what a failure is: [`KvError`], `Fault`), `limits` (the
//! checks of a guest's arguments), `health` (up or down for `/ready`: only a connectivity failure
//! marks a store down, only a health check brings it back; the upkeep task: health checks,
//! sweeping expired entries). Backends live in `sqlite` and `redis`; the contract both must meet
//! is one test suite (`contract`), run against each. It sees plain bytes: guest memory and the
//! ABI's error codes are the runtime's (`runtime::hostcalls`).

mod error;
mod health;
mod limits;
mod redis;
mod sqlite;

#[cfg(test)]
mod contract;
#[cfg(test)]
mod expiry_bench;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{StoreBackend, StoreConfig, StoreLimits};
use crate::logsummary::{self, LogSummary, Repeat};
use crate::metrics::{KvOp, KvOutcome, LabelValue, Metrics};

use error::Fault;
pub(crate) use error::KvError;
pub(crate) use health::upkeep;

/// One page of a listing: keys in ascending byte order, and where the next page starts (`None`
/// at the end).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Page {
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) next: Option<Vec<u8>>,
}

/// A value's expiry as milliseconds since the Unix epoch; `None` never expires.
pub(crate) type Expiry = Option<i64>;

/// How long a live key has left ([`Store::ttl`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remaining {
    /// It has no expiry.
    Forever,
    /// It expires in this many milliseconds: at least 1 (a key with less left is reported with
    /// 1, never 0, so "live" and "remaining 0" never meet).
    Ms(i64),
}

/// The backends, one variant each: the operations dispatch with a `match`, not a trait object.
/// (Boxed: the Redis client's state is large, and a store is made once.)
enum Backend {
    Sqlite(Box<sqlite::SqliteStore>),
    Redis(Box<redis::RedisStore>),
}

/// One store.
pub(crate) struct Store {
    /// What it was opened from: a reload compares it with the new configuration's table to
    /// decide whether the store is reused as it is or opened anew.
    config: StoreConfig,
    name: String,
    limits: StoreLimits,
    required: bool,
    backend: Backend,
    metrics: Arc<Metrics>,
    /// Down since a connectivity fault, up again after the next health check that passes
    /// ([`Store::check`]): an operation's success does not bring it back, so a store that reads
    /// but cannot write (a read-only file) does not flap between the two.
    up: AtomicBool,
    /// The next health check verifies the storage first (SQLite: `PRAGMA quick_check`): at open,
    /// and after every connectivity fault, never on each ping (it reads the whole file).
    verify: AtomicBool,
    /// Where failed operations are logged, summarised (set by [`Stores::open`]; a store opened
    /// alone, in tests, logs nothing).
    log: Option<Arc<LogSummary>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store `config` describes. Opening never fails for a backend that is merely down
    /// (Redis connects lazily, SQLite opens on first use): such a store answers `unavailable`
    /// until it comes back. It fails for what no retry fixes (a Redis URL that does not parse).
    pub(crate) fn open(config: &StoreConfig, metrics: Arc<Metrics>) -> Result<Store, KvError> {
        let backend = match &config.backend {
            StoreBackend::Sqlite { path, sync } => Backend::Sqlite(Box::new(
                sqlite::SqliteStore::new(&config.name, path, *sync, &config.limits),
            )),
            StoreBackend::Redis { url, key_prefix } => Backend::Redis(Box::new(
                redis::RedisStore::new(&config.name, url, key_prefix, &config.limits)?,
            )),
        };
        metrics.kv_store_up(&config.name, true);
        Ok(Store {
            config: config.clone(),
            name: config.name.clone(),
            limits: config.limits,
            required: config.required,
            backend,
            metrics,
            up: AtomicBool::new(true),
            verify: AtomicBool::new(true),
            log: None,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    /// Whether this store was opened from exactly `config` (same backend, path or URL, limits and
    /// `required`): then a reload keeps it, with its connections, data and health state.
    pub(crate) fn opened_from(&self, config: &StoreConfig) -> bool {
        self.config == *config
    }

    /// Whether `/ready` must wait for this store.
    pub(crate) fn required(&self) -> bool {
        self.required
    }

    pub(crate) async fn get(
        &self,
        key: &[u8],
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, KvError> {
        self.check_key(key)?;
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.get(key, now_ms()).await,
                Backend::Redis(r) => r.get(key).await,
            }
        };
        self.run(KvOp::Get, deadline, work, |v| found(v.is_some()))
            .await
    }

    pub(crate) async fn set(
        &self,
        key: &[u8],
        value: &[u8],
        ttl: Option<Duration>,
        deadline: Instant,
    ) -> Result<(), KvError> {
        self.check_key(key)?;
        self.check_value(value)?;
        let expiry = self.expiry(ttl)?;
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.set(key, value, expiry).await,
                Backend::Redis(r) => r.set(key, value, ttl).await,
            }
        };
        self.run(KvOp::Set, deadline, work, |_| KvOutcome::Ok).await
    }

    /// Deletes `key`; whether it existed.
    pub(crate) async fn delete(&self, key: &[u8], deadline: Instant) -> Result<bool, KvError> {
        self.check_key(key)?;
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.delete(key, now_ms()).await,
                Backend::Redis(r) => r.delete(key).await,
            }
        };
        self.run(KvOp::Delete, deadline, work, |existed| found(*existed))
            .await
    }

    pub(crate) async fn exists(&self, key: &[u8], deadline: Instant) -> Result<bool, KvError> {
        self.check_key(key)?;
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.exists(key, now_ms()).await,
                Backend::Redis(r) => r.exists(key).await,
            }
        };
        self.run(KvOp::Exists, deadline, work, |exists| found(*exists))
            .await
    }

    /// Adds `delta` to the integer at `key` (0 when absent) and returns the new value. The value
    /// is stored as its decimal text; a value that is not one is `invalid`. An expiry is kept.
    pub(crate) async fn incr(
        &self,
        key: &[u8],
        delta: i64,
        deadline: Instant,
    ) -> Result<i64, KvError> {
        self.check_key(key)?;
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.incr(key, delta, now_ms()).await,
                Backend::Redis(r) => r.incr(key, delta).await,
            }
        };
        self.run(KvOp::Incr, deadline, work, |_| KvOutcome::Ok)
            .await
    }

    /// [`Store::incr`], and a key this call creates (absent, or expired) expires after `ttl`
    /// (`None` or zero: never); an existing key keeps its expiry, or its lack of one. One call
    /// is then a fixed-window counter: the first hit of a window opens it with its length, the
    /// others count into it, and the key disappears when the window ends. A `ttl` past
    /// `max_ttl` is `too_large` whether or not the key exists (the argument is checked first).
    pub(crate) async fn incr_with_ttl(
        &self,
        key: &[u8],
        delta: i64,
        ttl: Option<Duration>,
        deadline: Instant,
    ) -> Result<i64, KvError> {
        self.check_key(key)?;
        let expiry = self.expiry(ttl)?;
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.incr_with_ttl(key, delta, expiry, now_ms()).await,
                Backend::Redis(r) => r.incr_with_ttl(key, delta, ttl).await,
            }
        };
        self.run(KvOp::IncrTtl, deadline, work, |_| KvOutcome::Ok)
            .await
    }

    /// How long `key` has left: `None` when it is absent (or expired).
    pub(crate) async fn ttl(
        &self,
        key: &[u8],
        deadline: Instant,
    ) -> Result<Option<Remaining>, KvError> {
        self.check_key(key)?;
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.ttl(key, now_ms()).await,
                Backend::Redis(r) => r.ttl(key).await,
            }
        };
        self.run(KvOp::Ttl, deadline, work, |r| found(r.is_some()))
            .await
    }

    /// Sets `key` to `new` if its value is `expected` (`None`: if it is absent); whether it did.
    pub(crate) async fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Option<Duration>,
        deadline: Instant,
    ) -> Result<bool, KvError> {
        self.check_key(key)?;
        self.check_value(new)?;
        let expiry = self.expiry(ttl)?;
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.cas(key, expected, new, expiry, now_ms()).await,
                Backend::Redis(r) => r.cas(key, expected, new, ttl).await,
            }
        };
        let outcome = |swapped: &bool| {
            if *swapped {
                KvOutcome::Ok
            } else {
                KvOutcome::Conflict
            }
        };
        self.run(KvOp::Cas, deadline, work, outcome).await
    }

    /// The keys starting with `prefix`, strictly after `after`, in ascending byte order, at most
    /// `limit` (lowered to `max_list_keys`; 0 means the maximum).
    pub(crate) async fn list(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: u32,
        deadline: Instant,
    ) -> Result<Page, KvError> {
        self.check_key(prefix)?;
        if let Some(a) = after {
            self.check_key(a)?;
        }
        let max = self.limits.max_list_keys;
        let limit = if limit == 0 { max } else { limit.min(max) } as usize;
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.list(prefix, after, limit, now_ms()).await,
                Backend::Redis(r) => r.list(prefix, after, limit).await,
            }
        };
        self.run(KvOp::List, deadline, work, |_| KvOutcome::Ok)
            .await
    }

    /// Runs `work` within its bound (the store's timeout, and never past `deadline`), and records
    /// its latency, its outcome (`outcome` of a success, the error's otherwise) and the backend's
    /// health.
    async fn run<R>(
        &self,
        op: KvOp,
        deadline: Instant,
        work: impl Future<Output = Result<R, KvError>>,
        outcome: impl Fn(&R) -> KvOutcome,
    ) -> Result<R, KvError> {
        let started = Instant::now();
        let until = deadline.min(started + self.limits.timeout);
        let result = match tokio::time::timeout_at(until.into(), work).await {
            Ok(result) => result,
            Err(_) => Err(KvError::Timeout {
                store: self.name.clone(),
                after: until.saturating_duration_since(started),
            }),
        };
        match &result {
            Err(e @ KvError::Unavailable { .. }) => self.down(e),
            Err(e @ KvError::Timeout { .. })
                if self.silence_is_down() && started + self.limits.timeout <= deadline =>
            {
                self.down(e)
            }
            _ => {}
        }
        let outcome = match &result {
            Ok(r) => outcome(r),
            Err(e) => e.outcome(),
        };
        self.metrics
            .kv_operation(&self.name, op, outcome, started.elapsed());
        if let (Err(e @ (KvError::Unavailable { .. } | KvError::Timeout { .. })), Some(log)) =
            (&result, &self.log)
        {
            let kind = e.outcome().label();
            if log.note(Repeat::StoreFailed, kind, &self.name, logsummary::now()) {
                tracing::warn!(store = %self.name, kind, error = %e, "store operation failed");
            }
        }
        result
    }
}

/// `ok` when something was there, `not_found` when not.
fn found(present: bool) -> KvOutcome {
    if present {
        KvOutcome::Ok
    } else {
        KvOutcome::NotFound
    }
}

/// Every configured store, by name, shared by the plugins granted them. One set per routing: a
/// reload builds the next set with [`Stores::reopen`], and a store leaves with the last routing
/// (and the last in-flight request) holding it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stores {
    by_name: BTreeMap<String, Arc<Store>>,
}

/// The stores of a reloaded configuration ([`Stores::reopen`]).
#[derive(Debug, Default)]
pub(crate) struct Reopened {
    /// The next set: the unchanged stores as they were, the new and redefined ones opened, and
    /// the previous store of a name whose new definition could not be opened (the refused
    /// plugins' running versions still use it).
    pub(crate) stores: Stores,
    /// Stores opened anew (added, or redefined), by name.
    pub(crate) opened: Vec<String>,
    /// Stores whose new definition could not be opened, and why: the plugins granted one are
    /// refused, never loaded with a grant they cannot use.
    pub(crate) failed: BTreeMap<String, String>,
}

impl Stores {
    /// Opens every store of `configs`; their failed operations are logged through `log`.
    pub(crate) fn open(
        configs: &[StoreConfig],
        metrics: &Arc<Metrics>,
        log: &Arc<LogSummary>,
    ) -> Result<Stores, KvError> {
        let mut by_name = BTreeMap::new();
        for config in configs {
            let mut store = Store::open(config, metrics.clone())?;
            store.log = Some(log.clone());
            by_name.insert(config.name.clone(), Arc::new(store));
        }
        Ok(Stores { by_name })
    }

    /// The stores of a reload's `configs`, from this (the running) set: a store whose table is
    /// unchanged is kept as it is (same handle: no reopening, no lost data, its health state
    /// kept); a new or redefined one is opened and health-checked once, off the request path,
    /// before any routing uses it. A store that fails to open or to pass that check is reported
    /// in [`Reopened::failed`] with the error; if the name had a store before, that one stays in
    /// the set for the plugins still running on it.
    pub(crate) async fn reopen(
        &self,
        configs: &[StoreConfig],
        metrics: &Arc<Metrics>,
        log: &Arc<LogSummary>,
    ) -> Reopened {
        let mut next = Reopened::default();
        for config in configs {
            let previous = self.get(&config.name);
            if let Some(store) = previous.filter(|s| s.opened_from(config)) {
                next.stores.insert(store.clone());
                continue;
            }
            match Store::open_checked(config, metrics, log).await {
                Ok(store) => {
                    tracing::info!(store = %config.name, redefined = previous.is_some(), "store opened");
                    next.opened.push(config.name.clone());
                    next.stores.insert(Arc::new(store));
                }
                Err(err) => {
                    tracing::error!(store = %config.name, error = %err, "store cannot be opened; the plugins granted it are refused");
                    next.failed.insert(config.name.clone(), err.to_string());
                    match previous {
                        Some(previous) => next.stores.insert(previous.clone()),
                        // Its attempt set the gauge; no store of that name is served.
                        None => metrics.kv_store_forget(&config.name),
                    }
                }
            }
        }
        next
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Store>> {
        self.by_name.get(name)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Store>> {
        self.by_name.values()
    }

    /// Adds `store` under its name unless the set has one of that name already; whether it did.
    /// (A refused plugin's running version keeps the store it was bound to, even one the new
    /// configuration removed: the set its routing serves from must hold it.)
    pub(crate) fn insert_if_absent(&mut self, store: &Arc<Store>) -> bool {
        if self.by_name.contains_key(store.name()) {
            return false;
        }
        self.insert(store.clone());
        true
    }

    fn insert(&mut self, store: Arc<Store>) {
        self.by_name.insert(store.name().to_string(), store);
    }
}

impl Store {
    /// Opens the store `config` describes and checks it once ([`Store::checked`]): what a reload
    /// does before any plugin is bound to a new store, so a store that cannot work refuses the
    /// plugins granted it instead of failing each of their calls. (At start there is no running
    /// version to keep, so a store that is down there answers `unavailable` until it comes back.)
    async fn open_checked(
        config: &StoreConfig,
        metrics: &Arc<Metrics>,
        log: &Arc<LogSummary>,
    ) -> Result<Store, KvError> {
        let mut store = Store::open(config, metrics.clone())?;
        store.log = Some(log.clone());
        store.checked().await?;
        Ok(store)
    }

    /// Shows this store's state on `wasmgate_kv_store_up` (after a reload: a store that was
    /// being opened under the same name may have written its own).
    pub(crate) fn publish_up(&self) {
        self.metrics.kv_store_up(&self.name, self.is_up());
    }
}

/// The current time as milliseconds since the Unix epoch (what expiries are compared with).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` when
/// there is none (an empty prefix, or one of only 0xff bytes): the exclusive upper bound of a
/// prefix listing.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Parses the decimal text of an integer as `incr` stores it: canonical (no `+`, no leading
/// zeros, no `-0`), so SQLite accepts exactly what Redis's `INCRBY` accepts.
fn parse_counter(value: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == value).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_bound_exactly_the_prefixed_keys() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn counters_are_strict_decimal_text() {
        assert_eq!(parse_counter(b"42"), Some(42));
        assert_eq!(parse_counter(b"-7"), Some(-7));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1.0",
            b"x",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_counter(bad), None, "{bad:?}");
        }
    }

    fn sqlite(name: &str, path: std::path::PathBuf) -> StoreConfig {
        StoreConfig {
            name: name.into(),
            backend: StoreBackend::Sqlite {
                path,
                sync: crate::config::SqliteSync::Full,
            },
            limits: StoreLimits::default(),
            required: false,
        }
    }

    /// The diff a reload makes of the stores: an unchanged table keeps its very handle, a changed
    /// one is opened anew, a new one that cannot be opened or checked (a Redis server nobody
    /// listens for, a SQLite file under a file) is reported with its error, keeping the previous
    /// store of its name if there was one, and a table no longer configured leaves the set.
    #[tokio::test]
    async fn reopening_keeps_unchanged_stores_and_reports_those_that_cannot_open() {
        let dir = std::env::temp_dir().join(format!("wasmgate-kv-reopen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("file"), "").unwrap();
        let metrics = Arc::new(Metrics::new(crate::metrics::Sources::none()));
        let log = Arc::new(LogSummary::new(Duration::from_secs(10)));
        let kept = sqlite("kept", dir.join("kept.sqlite"));
        let moved = sqlite("moved", dir.join("a.sqlite"));
        let gone = sqlite("gone", dir.join("gone.sqlite"));
        let running = Stores::open(&[kept.clone(), moved.clone(), gone], &metrics, &log).unwrap();

        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let redis = StoreConfig {
            name: "remote".into(),
            backend: StoreBackend::Redis {
                url: format!("redis://127.0.0.1:{port}/0"),
                key_prefix: "reopen:".into(),
            },
            limits: StoreLimits::default(),
            required: false,
        };
        let next = [
            kept.clone(),
            sqlite("moved", dir.join("file/b.sqlite")),
            sqlite("added", dir.join("added.sqlite")),
            redis,
        ];
        let reopened = running.reopen(&next, &metrics, &log).await;
        assert!(Arc::ptr_eq(
            running.get("kept").unwrap(),
            reopened.stores.get("kept").unwrap()
        ));
        assert_eq!(reopened.opened, ["added"]);
        assert_eq!(
            reopened.failed.keys().collect::<Vec<_>>(),
            ["moved", "remote"],
            "{:?}",
            reopened.failed
        );
        assert!(
            reopened.failed["moved"].contains("file/b.sqlite"),
            "the store's own error: {}",
            reopened.failed["moved"]
        );
        assert!(
            Arc::ptr_eq(
                running.get("moved").unwrap(),
                reopened.stores.get("moved").unwrap()
            ),
            "the previous `moved` stays for the plugins running on it"
        );
        assert!(reopened.stores.get("remote").is_none());
        assert!(reopened.stores.get("gone").is_none());
        let text = metrics.render();
        assert!(
            !text.contains(r#"wasmgate_kv_store_up{store="remote"}"#),
            "no gauge for a store that never served: {text}"
        );

        // The redefinition that works replaces the store.
        let fixed = [kept, sqlite("moved", dir.join("b.sqlite"))];
        let reopened = reopened.stores.reopen(&fixed, &metrics, &log).await;
        assert_eq!(reopened.opened, ["moved"]);
        assert!(reopened.failed.is_empty());
        assert!(!Arc::ptr_eq(
            running.get("moved").unwrap(),
            reopened.stores.get("moved").unwrap()
        ));
        drop((running, reopened));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A failed operation goes through the server's summary: the first is logged, the next ones
    /// of the same store and kind are counted (one summary line per interval).
    #[tokio::test]
    async fn failed_operations_are_logged_through_the_summary() {
        let dir = std::env::temp_dir().join(format!("wasmgate-kv-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A directory where the database file should be: every operation fails `unavailable`.
        let path = dir.join("not-a-file");
        std::fs::create_dir_all(&path).unwrap();
        let config = StoreConfig {
            name: "broken".into(),
            backend: StoreBackend::Sqlite {
                path,
                sync: crate::config::SqliteSync::Full,
            },
            limits: StoreLimits::default(),
            required: false,
        };
        let metrics = Arc::new(Metrics::new(crate::metrics::Sources::none()));
        let log = Arc::new(LogSummary::new(Duration::from_secs(10)));
        let stores = Stores::open(std::slice::from_ref(&config), &metrics, &log).unwrap();
        let store = stores.get("broken").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        for _ in 0..3 {
            let err = store.get(b"k", deadline).await.unwrap_err();
            assert!(matches!(err, KvError::Unavailable { .. }), "{err}");
        }
        assert_eq!(
            log.counted(Repeat::StoreFailed, "unavailable", "broken"),
            Some(2),
            "the first logged, two counted"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
