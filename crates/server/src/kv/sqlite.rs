//! The SQLite backend: one file per store, shared safely by every wasmgate process on the machine.
//!
//! Owns the schema (`kv(key BLOB PRIMARY KEY, value BLOB, expires_at INTEGER)`), the SQL of each
//! operation, and running it off the async runtime: SQLite calls block, so every operation runs
//! on tokio's blocking pool (never on a worker), with a connection from a small pool. The file is
//! in WAL mode, so readers never wait for the writer; writers from several processes are
//! serialised by SQLite's lock, which a waiting writer tries again every millisecond up to the
//! store's timeout (not SQLite's back-off, which lets long waiters starve). Operations that read
//! and then write (`incr`, compare-and-swap) take the write lock first (`BEGIN IMMEDIATE`), which
//! is what makes them atomic across processes. Expired rows are invisible to every query and
//! deleted in small batches now and then.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::Semaphore;

use super::{Expiry, KvError, Page, parse_counter, prefix_end};
use crate::config::{SqliteSync, StoreLimits};

/// Connections (and so operations at once) per store in one process: SQLite serialises writers
/// anyway, and a few readers in parallel are plenty for a plugin's traffic.
const POOL_SIZE: usize = 4;
/// Writes between two sweeps of expired rows.
const SWEEP_EVERY: u64 = 1_000;
/// Expired rows deleted per sweep (a sweep is part of a write: keep it short).
const SWEEP_BATCH: u32 = 256;
/// How long a connection waiting for a lock held by another sleeps before trying again.
const LOCK_RETRY: Duration = Duration::from_millis(1);

pub(super) struct SqliteStore {
    inner: Arc<Inner>,
    /// One permit per connection: an operation waits for one instead of opening more.
    permits: Arc<Semaphore>,
}

struct Inner {
    name: String,
    path: PathBuf,
    sync: SqliteSync,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    writes: AtomicU64,
}

impl SqliteStore {
    pub(super) fn new(name: &str, path: &Path, sync: SqliteSync, limits: &StoreLimits) -> Self {
        SqliteStore {
            inner: Arc::new(Inner {
                name: name.to_string(),
                path: path.to_path_buf(),
                sync,
                busy_timeout: limits.timeout,
                idle: Mutex::new(Vec::new()),
                writes: AtomicU64::new(0),
            }),
            permits: Arc::new(Semaphore::new(POOL_SIZE)),
        }
    }

    /// Runs `f` with a connection on the blocking pool. The connection goes back to the pool when
    /// `f` is done, even if the caller gave up waiting (a timed-out operation still finishes).
    async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<Result<R, KvError>> + Send + 'static,
    ) -> Result<R, KvError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.inner.unavailable(&"the connection pool is closed"))?;
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = match inner.take() {
                Ok(c) => c,
                Err(e) => return Err(inner.unavailable(&e)),
            };
            let result = f(&mut conn);
            // A connection whose operation failed for a reason of the database stays out of the
            // pool: the next one is opened fresh.
            if result.is_ok() {
                inner.put(conn);
            }
            result.map_err(|e| inner.unavailable(&e))?
        });
        task.await.map_err(|e| {
            self.inner
                .unavailable(&format!("the operation panicked: {e}"))
        })?
    }

    pub(super) async fn ping(&self) -> Result<(), KvError> {
        self.with(|c| c.prepare_cached("SELECT 1")?.query_row([], |_| Ok(Ok(()))))
            .await
    }

    pub(super) async fn get(&self, key: &[u8], now: i64) -> Result<Option<Vec<u8>>, KvError> {
        let key = key.to_vec();
        self.with(move |c| {
            c.prepare_cached(
                "SELECT value FROM kv WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
            )?
            .query_row(params![key, now], |r| r.get(0))
            .optional()
            .map(Ok)
        })
        .await
    }

    pub(super) async fn set(
        &self,
        key: &[u8],
        value: &[u8],
        expiry: Expiry,
    ) -> Result<(), KvError> {
        let (key, value) = (key.to_vec(), value.to_vec());
        let inner = self.inner.clone();
        self.with(move |c| {
            upsert(c, &key, &value, expiry)?;
            inner.after_write(c);
            Ok(Ok(()))
        })
        .await
    }

    pub(super) async fn delete(&self, key: &[u8], now: i64) -> Result<bool, KvError> {
        let key = key.to_vec();
        self.with(move |c| {
            let expired: Option<Option<i64>> = c
                .prepare_cached("DELETE FROM kv WHERE key = ?1 RETURNING expires_at")?
                .query_row(params![key], |r| r.get(0))
                .optional()?;
            // A row that had expired was already gone as far as anyone could see.
            Ok(Ok(
                matches!(expired, Some(e) if e.is_none_or(|at| at > now)),
            ))
        })
        .await
    }

    pub(super) async fn exists(&self, key: &[u8], now: i64) -> Result<bool, KvError> {
        let key = key.to_vec();
        self.with(move |c| {
            c.prepare_cached(
                "SELECT 1 FROM kv WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
            )?
            .query_row(params![key, now], |_| Ok(()))
            .optional()
            .map(|found| Ok(found.is_some()))
        })
        .await
    }

    pub(super) async fn incr(&self, key: &[u8], delta: i64, now: i64) -> Result<i64, KvError> {
        let key = key.to_vec();
        let inner = self.inner.clone();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = live(&tx, &key, now)?;
            let (old, expiry) = match &current {
                None => (0, None),
                Some((value, expiry)) => match parse_counter(value) {
                    Some(n) => (n, *expiry),
                    None => {
                        return Ok(Err(KvError::Invalid(
                            "the value is not an integer (its decimal text), so it cannot be incremented".into(),
                        )));
                    }
                },
            };
            let Some(new) = old.checked_add(delta) else {
                return Ok(Err(KvError::Invalid(format!(
                    "{old} + {delta} overflows a 64-bit integer"
                ))));
            };
            upsert(&tx, &key, new.to_string().as_bytes(), expiry)?;
            tx.commit()?;
            inner.after_write(c);
            Ok(Ok(new))
        })
        .await
    }

    pub(super) async fn cas(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: &[u8],
        expiry: Expiry,
        now: i64,
    ) -> Result<bool, KvError> {
        let (key, expected, new) = (key.to_vec(), expected.map(<[u8]>::to_vec), new.to_vec());
        let inner = self.inner.clone();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = live(&tx, &key, now)?.map(|(v, _)| v);
            if current != expected {
                return Ok(Ok(false));
            }
            upsert(&tx, &key, &new, expiry)?;
            tx.commit()?;
            inner.after_write(c);
            Ok(Ok(true))
        })
        .await
    }

    pub(super) async fn list(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        now: i64,
    ) -> Result<Page, KvError> {
        let (low, high) = (prefix.to_vec(), prefix_end(prefix));
        let after = after.map(<[u8]>::to_vec);
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT key FROM kv WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) \
                 AND (?3 IS NULL OR key > ?3) AND (expires_at IS NULL OR expires_at > ?4) \
                 ORDER BY key LIMIT ?5",
            )?;
            let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
            let mut keys: Vec<Vec<u8>> = stmt
                .query_map(params![low, high, after, now, fetch], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let more = keys.len() > limit;
            keys.truncate(limit);
            let next = more.then(|| keys.last().cloned()).flatten();
            Ok(Ok(Page { keys, next }))
        })
        .await
    }
}

impl Inner {
    fn unavailable(&self, reason: &dyn std::fmt::Display) -> KvError {
        KvError::Unavailable {
            store: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    fn take(&self) -> Result<Connection, String> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(c);
        }
        self.connect()
            .map_err(|e| format!("cannot open {}: {e}", self.path.display()))
    }

    fn put(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }

    fn connect(&self) -> Result<Connection, Box<dyn std::error::Error>> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(&self.path)?;
        // A lock held by another connection (of this process or another) is tried for again every
        // LOCK_RETRY, up to the store's timeout. Not SQLite's `busy_timeout`: its sleeps grow to
        // 100 ms, so under contention the writers that have waited longest try least often and
        // starve past their timeout while newer ones take the lock again and again.
        let timeout = self.busy_timeout;
        let mut since = Instant::now();
        conn.busy_handler(Some(move |tries: i32| {
            if tries == 0 {
                since = Instant::now();
            }
            if since.elapsed() >= timeout {
                return false;
            }
            std::thread::sleep(LOCK_RETRY);
            true
        }))?;
        // WAL: readers never block the writer nor each other; several processes share the file.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("the file refused WAL mode (journal_mode = {mode})").into());
        }
        let sync = match self.sync {
            SqliteSync::Full => "FULL",
            SqliteSync::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (
                key BLOB PRIMARY KEY NOT NULL,
                value BLOB NOT NULL,
                expires_at INTEGER
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;",
        )?;
        Ok(conn)
    }

    /// Every `SWEEP_EVERY` writes, deletes a batch of expired rows (invisible already: this only
    /// gives their space back).
    fn after_write(&self, conn: &Connection) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let swept = conn.execute(
                "DELETE FROM kv WHERE key IN \
                 (SELECT key FROM kv WHERE expires_at <= ?1 LIMIT ?2)",
                params![super::now_ms(), SWEEP_BATCH],
            );
            if let Err(e) = swept {
                tracing::debug!(store = %self.name, error = %e, "sweeping expired keys failed");
            }
        }
    }
}

/// The live value and expiry of `key`, if any.
fn live(c: &Connection, key: &[u8], now: i64) -> rusqlite::Result<Option<(Vec<u8>, Expiry)>> {
    c.prepare_cached(
        "SELECT value, expires_at FROM kv WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
    )?
    .query_row(params![key, now], |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

fn upsert(c: &Connection, key: &[u8], value: &[u8], expiry: Expiry) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO kv (key, value, expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
    )?
    .execute(params![key, value, expiry])?;
    Ok(())
}
