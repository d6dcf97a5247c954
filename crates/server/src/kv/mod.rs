//! Key-value stores for plugins: one [`Store`] per `[stores.NAME]`, backed by SQLite (embedded,
//! the default) or Redis, with the same semantics on both.
//!
//! Owns the operations (get, set with TTL, delete, exists, list by prefix, atomic increment,
//! compare-and-swap), their limits (key and value sizes, keys per listing) and their bounds (an
//! operation never outlives its timeout nor the request's deadline: a store that is down or slow
//! costs the plugin one error it handles, never a hung request), their metrics, the stores'
//! health for `/ready` (only a connectivity failure marks a store down; only a health check
//! brings it back), and the upkeep task (health checks, sweeping expired entries). Backends live
//! in `sqlite` and `redis`; the contract both must meet is one test suite (`contract`), run
//! against each. It sees plain bytes: guest memory and the ABI's error codes are the runtime's
//! (`runtime::hostcalls`).

mod redis;
mod sqlite;

#[cfg(test)]
mod contract;
#[cfg(test)]
mod expiry_bench;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{StoreBackend, StoreConfig, StoreLimits};
use crate::logsummary::{self, LogSummary, Repeat};
use crate::metrics::{KvOp, KvOutcome, LabelValue, Metrics};

/// Why an operation did not complete. Each maps to one ABI error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KvError {
    /// A key, value or limit argument breaks the store's limits.
    #[error("{0}")]
    TooLarge(String),
    /// An argument is malformed, or `incr` met a value that is not an integer.
    #[error("{0}")]
    Invalid(String),
    /// The backend failed or cannot be reached.
    /// (A backend's reason may quote its URL: the password is masked here, once for every log,
    /// start error and message a plugin reads.)
    #[error(
        "store `{store}` is unavailable: {}",
        crate::config::redact::mask_url_passwords(reason)
    )]
    Unavailable { store: String, reason: String },
    /// The operation's bound passed.
    #[error("store `{store}` did not answer within {after:?}")]
    Timeout { store: String, after: Duration },
    /// Others held what the operation needed (SQLite's write lock) for the whole bound: the store
    /// works, it is contended. The guest sees `timeout`, as for [`KvError::Timeout`].
    #[error("store `{store}` is busy: {reason} (waited {after:?})")]
    Busy {
        store: String,
        reason: String,
        after: Duration,
    },
}

impl KvError {
    fn outcome(&self) -> KvOutcome {
        match self {
            KvError::TooLarge(_) => KvOutcome::TooLarge,
            KvError::Invalid(_) => KvOutcome::Invalid,
            KvError::Unavailable { .. } => KvOutcome::Unavailable,
            KvError::Timeout { .. } | KvError::Busy { .. } => KvOutcome::Timeout,
        }
    }
}

/// What a backend's failure says about the store, decided by one typed function per backend
/// (`sqlite::classify`, `redis::classify`). Only connectivity marks a store down
/// ([`Fault::Connectivity`], and a Redis server's [`Fault::Silence`] for the whole timeout): a
/// guest's bad argument, a limit or contention says nothing about whether the store works, and
/// must never take a required store's process out of its balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The store cannot be reached or used: cannot connect, connection lost, an I/O error on the
    /// database file, read-only or corrupt storage, a server that refuses service (loading,
    /// read-only replica, out of memory, authentication).
    Connectivity,
    /// The backend did not answer within the bound (a Redis server that accepted the command and
    /// said nothing): `timeout` to the guest; the store is down if the bound was the store's own
    /// `timeout` on Redis ([`Store::silence_is_down`]), or if it was a health check.
    Silence,
    /// Others held what the operation needs for the whole bound (SQLite's write lock, a Redis
    /// script that will not yield).
    Contention,
    /// The backend answered and refused the arguments (a Redis argument or script error, a value
    /// SQLite will not take): the guest's mistake, or the host's, never the store's health.
    Refusal,
}

impl Fault {
    /// The error a guest sees for this fault on `store`, whose operations are bounded by `bound`.
    fn error(self, store: &str, reason: String, bound: Duration) -> KvError {
        let store = store.to_string();
        match self {
            Fault::Connectivity => KvError::Unavailable { store, reason },
            Fault::Silence => KvError::Timeout {
                store,
                after: bound,
            },
            Fault::Contention => KvError::Busy {
                store,
                reason,
                after: bound,
            },
            Fault::Refusal => {
                KvError::Invalid(format!("store `{store}` refused the call: {reason}"))
            }
        }
    }
}

/// One page of a listing: keys in ascending byte order, and where the next page starts (`None`
/// at the end).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Page {
    pub(crate) keys: Vec<Vec<u8>>,
    pub(crate) next: Option<Vec<u8>>,
}

/// A value's expiry as milliseconds since the Unix epoch; `None` never expires.
pub(crate) type Expiry = Option<i64>;

/// The backends, one variant each: the operations dispatch with a `match`, not a trait object.
/// (Boxed: the Redis client's state is large, and a store is made once.)
enum Backend {
    Sqlite(Box<sqlite::SqliteStore>),
    Redis(Box<redis::RedisStore>),
}

/// One store.
pub(crate) struct Store {
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

    /// Whether `/ready` must wait for this store.
    pub(crate) fn required(&self) -> bool {
        self.required
    }

    /// Whether the store is up: no connectivity fault since the last health check that passed.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// The health check (what `/ready` follows, through the upkeep task): verifies the storage if
    /// it has not been since open or since the last connectivity fault, then pings the backend
    /// with what the store needs (SQLite: a write; Redis: `PING`). Passing brings the store up;
    /// a fault or silence takes it down; contention leaves it as it was. Whether it is up after.
    pub(crate) async fn check(&self) -> bool {
        if self.verify.load(Ordering::Relaxed) {
            // Not bounded by the store's timeout: it reads the whole file, and runs on the upkeep
            // task, never on a request's path.
            let verified = match &self.backend {
                Backend::Sqlite(s) => s.verify().await,
                Backend::Redis(_) => Ok(()),
            };
            match verified {
                Ok(()) => self.verify.store(false, Ordering::Relaxed),
                // Contended: no verdict; verified at the next check.
                Err(KvError::Busy { .. }) => return self.is_up(),
                Err(e) => {
                    self.down(&e);
                    return false;
                }
            }
        }
        let work = async {
            match &self.backend {
                Backend::Sqlite(s) => s.ping().await,
                Backend::Redis(r) => r.ping().await,
            }
        };
        let deadline = Instant::now() + self.limits.timeout;
        match self
            .run(KvOp::Ping, deadline, work, |_| KvOutcome::Ok)
            .await
        {
            Ok(()) => self.up(),
            Err(KvError::Busy { .. }) => {}
            // A ping that does not answer within the bound is what a down store looks like.
            Err(e) => self.down(&e),
        }
        self.is_up()
    }

    /// Whether an operation that got no answer within the store's whole `timeout` (not merely
    /// by the request's deadline) shows the store down. Redis: yes, a server that answers in
    /// microseconds and holds no locks is hung or unreachable when silent that long. SQLite: no,
    /// its bound can pass waiting for one of its own pooled connections while others contend for
    /// the write lock; its health check (which waits for neither) decides.
    fn silence_is_down(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Marks the store down (after a connectivity fault or a failed health check): one line in
    /// the log and the gauge when it changes, and its storage is verified again before it can
    /// come back.
    fn down(&self, why: &KvError) {
        self.verify.store(true, Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) {
            self.metrics.kv_store_up(&self.name, false);
            // The reason is the backend's error text, never the store's configuration (a Redis
            // URL may hold a password).
            tracing::warn!(store = %self.name, reason = %why, "store down");
        }
    }

    /// Marks the store up (after a health check passed): one line when it changes.
    fn up(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            self.metrics.kv_store_up(&self.name, true);
            tracing::info!(store = %self.name, "store up again");
        }
    }

    /// How many entries the backend stores, live or expired (SQLite: rows; Redis: index members,
    /// and members of the expiry set): what the tests of reclaiming count.
    #[cfg(test)]
    pub(crate) async fn stored_entries(&self) -> (u64, u64) {
        match &self.backend {
            Backend::Sqlite(s) => (s.stored_rows().await, 0),
            Backend::Redis(r) => r.stored_members().await,
        }
    }

    /// Deletes expired entries the writes' own sweeping has not reached yet (bounded work; the
    /// upkeep task calls it every tick). How many it deleted.
    pub(crate) async fn sweep(&self) -> Result<u64, KvError> {
        match &self.backend {
            Backend::Sqlite(s) => s.sweep(now_ms()).await,
            Backend::Redis(r) => r.sweep().await,
        }
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

    fn check_key(&self, key: &[u8]) -> Result<(), KvError> {
        if key.len() > self.limits.max_key_bytes {
            return Err(KvError::TooLarge(format!(
                "a key of {} bytes is longer than store `{}` allows (max_key_bytes = {})",
                key.len(),
                self.name,
                self.limits.max_key_bytes
            )));
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), KvError> {
        if value.len() > self.limits.max_value_bytes {
            return Err(KvError::TooLarge(format!(
                "a value of {} bytes is larger than store `{}` allows (max_value_bytes = {})",
                value.len(),
                self.name,
                self.limits.max_value_bytes
            )));
        }
        Ok(())
    }

    /// When a value written now with `ttl` expires (`None`: never; a zero TTL is none), or
    /// `too_large` past `max_ttl`: one rule for both backends (Redis refuses an expiry past its
    /// clock's range, SQLite would take anything), and a guest's argument never reaches a
    /// backend that could mistake it for a failure.
    fn expiry(&self, ttl: Option<Duration>) -> Result<Expiry, KvError> {
        let Some(ttl) = ttl.filter(|t| !t.is_zero()) else {
            return Ok(None);
        };
        let too_large = || {
            KvError::TooLarge(format!(
                "a TTL of {ttl:?} is longer than store `{}` allows (max_ttl = {:?})",
                self.name, self.limits.max_ttl
            ))
        };
        if ttl > self.limits.max_ttl {
            return Err(too_large());
        }
        expiry_at(now_ms(), ttl).map(Some).ok_or_else(too_large)
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

/// Every configured store, by name, shared by the plugins granted them.
#[derive(Debug, Default)]
pub(crate) struct Stores {
    by_name: BTreeMap<String, Arc<Store>>,
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

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Store>> {
        self.by_name.get(name)
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Store>> {
        self.by_name.values()
    }

    /// The stores' upkeep, every `every` until `stop` resolves: a health check of every store
    /// (so `/ready` and `wasmgate_kv_store_up` follow an outage and a recovery while no request
    /// touches the store), then a sweep of expired entries (so a store whose plugin stops writing
    /// still gives back what expired). One task for all stores, one store at a time.
    pub(crate) fn upkeep(
        self: &Arc<Self>,
        every: Duration,
        stop: impl Future<Output = ()> + Send + 'static,
    ) {
        if self.by_name.is_empty() {
            return;
        }
        let stores = self.clone();
        tokio::spawn(async move {
            let mut stop = std::pin::pin!(stop);
            loop {
                for store in stores.all() {
                    let up = tokio::select! {
                        up = store.check() => up,
                        _ = stop.as_mut() => return,
                    };
                    if up {
                        let swept = tokio::select! {
                            swept = store.sweep() => swept,
                            _ = stop.as_mut() => return,
                        };
                        if let Err(e) = swept {
                            tracing::debug!(store = store.name(), error = %e, "sweeping expired entries failed");
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.as_mut() => return,
                }
            }
        });
    }
}

/// The current time as milliseconds since the Unix epoch (what expiries are compared with).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `now_ms + ttl`, rounded up to whole milliseconds (a sub-millisecond TTL still expires), or
/// `None` if it does not fit (checked: never a wrapped or saturated expiry).
fn expiry_at(now_ms: i64, ttl: Duration) -> Option<i64> {
    let ms = ttl
        .as_millis()
        .checked_add(u128::from(!ttl.subsec_nanos().is_multiple_of(1_000_000)))?;
    now_ms.checked_add(i64::try_from(ms).ok()?)
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
    fn expiries_are_checked_arithmetic() {
        assert_eq!(expiry_at(1_000, Duration::from_millis(5)), Some(1_005));
        assert_eq!(
            expiry_at(1_000, Duration::from_micros(1)),
            Some(1_001),
            "rounded up"
        );
        assert_eq!(
            expiry_at(i64::MAX - 5, Duration::from_millis(5)),
            Some(i64::MAX)
        );
        assert_eq!(expiry_at(i64::MAX - 5, Duration::from_millis(6)), None);
        assert_eq!(expiry_at(0, Duration::MAX), None);
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

    #[test]
    fn an_unavailable_reason_never_shows_a_url_password() {
        let err = KvError::Unavailable {
            store: "s".into(),
            reason: "cannot connect to redis://:hunter2@127.0.0.1:1/0".into(),
        };
        let shown = err.to_string();
        assert!(
            shown.contains("redis://:***@127.0.0.1:1/0") && !shown.contains("hunter2"),
            "{shown}"
        );
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
