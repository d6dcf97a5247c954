//! The SQLite backend: one file per store, shared safely by every wasmgate process on the machine.
//!
//! Owns the schema (`kv(key BLOB PRIMARY KEY, value BLOB, expires_at INTEGER)`), the SQL of each
//! operation, and running it off the async runtime: SQLite calls block, so every operation runs
//! on tokio's blocking pool (never on a worker), with a connection from a small pool. The file is
//! in WAL mode, so readers never wait for the writer; writers from several processes are
//! serialised by SQLite's lock, which a waiting writer tries again every millisecond up to the
//! store's timeout (not SQLite's back-off, which lets long waiters starve). Operations that read
//! and then write (`incr`, compare-and-swap) take the write lock first (`BEGIN IMMEDIATE`), which
//! is what makes them atomic across processes. Expired rows are invisible to every query; each
//! write deletes up to [`SWEEP_PER_WRITE`] of them in its own transaction (so reclaiming keeps up
//! with any steady TTL workload), and the upkeep task sweeps the rest in bounded batches. Which
//! SQLite errors mean the store is down is [`classify`]'s: a lock held past the timeout is
//! contention, never a fault of the store. The health check writes (a read-only file answers
//! `SELECT 1`), and the storage is verified (`PRAGMA quick_check`) when it is first checked and
//! after every connectivity fault.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::Semaphore;

use super::{Expiry, Fault, KvError, Page, Remaining, parse_counter, prefix_end};
use crate::config::{SqliteSync, StoreLimits};

/// Connections (and so operations at once) per store in one process: SQLite serialises writers
/// anyway, and a few readers in parallel are plenty for a plugin's traffic.
const POOL_SIZE: usize = 4;
/// Expired rows each write deletes, in its own transaction (no extra commit, so no extra flush):
/// more than the one row a write can leave to expire, so the sweeping outpaces any steady TTL
/// workload, and few enough to keep a write short (an index range on `expires_at`).
const SWEEP_PER_WRITE: u32 = 2;
/// Expired rows one round of the upkeep task's sweep deletes (one short transaction each).
const SWEEP_BATCH: u32 = 256;
/// Rounds of the upkeep task's sweep per tick: bounds the write-lock time it takes from plugins.
const SWEEP_ROUNDS: u32 = 16;
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
}

impl SqliteStore {
    pub(super) fn new(name: &str, path: &Path, sync: SqliteSync, limits: &StoreLimits) -> Self {
        SqliteStore {
            inner: Arc::new(Inner {
                name: name.to_string(),
                path: path.to_path_buf(),
                sync,
                // A tenth short of the operation's bound, so that a lock held throughout is
                // answered as contention (`Busy`) by the connection itself, not as the bound's
                // plain `Timeout`, and the blocking thread is free by the time the caller gives up.
                busy_timeout: limits.timeout - limits.timeout / 10,
                idle: Mutex::new(Vec::new()),
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
            let mut conn = inner.take()?;
            let result = f(&mut conn);
            // A connection whose operation failed for a reason of the database stays out of the
            // pool: the next one is opened fresh.
            match result {
                Ok(answer) => {
                    inner.put(conn);
                    answer
                }
                Err(e) => {
                    let fault = classify(&e);
                    if fault == Fault::Connectivity {
                        // The file may have changed under every connection (made read-only,
                        // replaced): the next operations open fresh ones.
                        inner.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
                    } else {
                        inner.put(conn);
                    }
                    Err(inner.error(fault, &e))
                }
            }
        });
        task.await.map_err(|e| {
            self.inner
                .unavailable(&format!("the operation panicked: {e}"))
        })?
    }

    /// The health check: a write (a read-only file or directory, a full disk or an I/O error
    /// fail it; `SELECT 1` passes them all), one row of its own table, committed. It does not wait
    /// for a write lock another connection holds: that is contention (`Busy`), no verdict.
    pub(super) async fn ping(&self) -> Result<(), KvError> {
        let busy_timeout = self.inner.busy_timeout;
        self.with(move |c| {
            c.busy_timeout(Duration::ZERO)?;
            let wrote = c
                .prepare_cached(
                    "INSERT INTO kv_health (id, checked_at) VALUES (1, ?1) \
                     ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                )
                .and_then(|mut s| s.execute(params![super::now_ms()]));
            install_busy_handler(c, busy_timeout)?;
            wrote.map(|_| Ok(()))
        })
        .await
    }

    /// Verifies the storage: `PRAGMA quick_check` (every page's structure, not the indexes'
    /// contents: O(pages), so only at the first health check and after a connectivity fault,
    /// never per ping). Malformed pages are a connectivity fault: the store is down until fixed.
    pub(super) async fn verify(&self) -> Result<(), KvError> {
        let inner = self.inner.clone();
        self.with(move |c| {
            let verdict: String = c.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
            if verdict == "ok" {
                Ok(Ok(()))
            } else {
                Ok(Err(inner.unavailable(&format!(
                    "the database file is corrupt (quick_check: {verdict})"
                ))))
            }
        })
        .await
    }

    #[cfg(test)]
    pub(super) async fn stored_rows(&self) -> u64 {
        let n: i64 = self
            .with(|c| {
                c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
                    .map(Ok)
            })
            .await
            .expect("counting rows");
        n.unsigned_abs()
    }

    /// Deletes expired rows in rounds of [`SWEEP_BATCH`], at most [`SWEEP_ROUNDS`]; how many.
    pub(super) async fn sweep(&self, now: i64) -> Result<u64, KvError> {
        let mut total = 0;
        for _ in 0..SWEEP_ROUNDS {
            let n = self
                .with(move |c| sweep_expired(c, now, SWEEP_BATCH).map(Ok))
                .await?;
            total += n as u64;
            if n < SWEEP_BATCH as usize {
                break;
            }
        }
        Ok(total)
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
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            upsert(&tx, &key, &value, expiry)?;
            sweep_expired(&tx, super::now_ms(), SWEEP_PER_WRITE)?;
            tx.commit()?;
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
        self.incr_with_ttl(key, delta, None, now).await
    }

    /// `incr`, with `created` the expiry of a key this call creates (an existing one keeps its
    /// own): one `BEGIN IMMEDIATE` transaction, so the read and the write are one step for every
    /// process sharing the file.
    pub(super) async fn incr_with_ttl(
        &self,
        key: &[u8],
        delta: i64,
        created: Expiry,
        now: i64,
    ) -> Result<i64, KvError> {
        let key = key.to_vec();
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = live(&tx, &key, now)?;
            let (old, expiry) = match &current {
                None => (0, created),
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
            sweep_expired(&tx, now, SWEEP_PER_WRITE)?;
            tx.commit()?;
            Ok(Ok(new))
        })
        .await
    }

    /// The remaining time of `key`'s expiry at `now`; `None` when it is absent or expired.
    pub(super) async fn ttl(&self, key: &[u8], now: i64) -> Result<Option<Remaining>, KvError> {
        let key = key.to_vec();
        self.with(move |c| {
            let found = live(c, &key, now)?;
            Ok(Ok(found.map(|(_, expiry)| match expiry {
                None => Remaining::Forever,
                // Live means `at > now`: at least 1 ms.
                Some(at) => Remaining::Ms(at - now),
            })))
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
        self.with(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current = live(&tx, &key, now)?.map(|(v, _)| v);
            if current != expected {
                return Ok(Ok(false));
            }
            upsert(&tx, &key, &new, expiry)?;
            sweep_expired(&tx, now, SWEEP_PER_WRITE)?;
            tx.commit()?;
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

    /// The error of `fault` for this store, with `reason`.
    fn error(&self, fault: Fault, reason: &dyn std::fmt::Display) -> KvError {
        fault.error(&self.name, reason.to_string(), self.busy_timeout)
    }

    fn take(&self) -> Result<Connection, KvError> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(c);
        }
        self.connect().map_err(|(fault, e)| {
            self.error(fault, &format!("cannot open {}: {e}", self.path.display()))
        })
    }

    fn put(&self, conn: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
    }

    /// A new connection, or why not: the fault ([`classify`]'s for SQLite's errors; a directory
    /// that cannot be created, or a file that refuses WAL, is a connectivity fault) and its text.
    fn connect(&self) -> Result<Connection, (Fault, String)> {
        let sqlite = |e: rusqlite::Error| (classify(&e), e.to_string());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| (Fault::Connectivity, e.to_string()))?;
        }
        let mut conn = Connection::open(&self.path).map_err(sqlite)?;
        install_busy_handler(&mut conn, self.busy_timeout).map_err(sqlite)?;
        self.prepare(conn).map_err(|e| match e {
            Prepare::Sqlite(e) => sqlite(e),
            Prepare::NotWal(mode) => (
                Fault::Connectivity,
                format!("the file refused WAL mode (journal_mode = {mode})"),
            ),
        })
    }

    /// Sets a new connection up: WAL, the sync level, the schema.
    fn prepare(&self, conn: Connection) -> Result<Connection, Prepare> {
        // WAL: readers never block the writer nor each other; several processes share the file.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Prepare::NotWal(mode));
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
            CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_at) WHERE expires_at IS NOT NULL;
            CREATE TABLE IF NOT EXISTS kv_health (id INTEGER PRIMARY KEY, checked_at INTEGER);",
        )?;
        Ok(conn)
    }
}

/// Why a new connection could not be set up.
enum Prepare {
    Sqlite(rusqlite::Error),
    NotWal(String),
}

impl From<rusqlite::Error> for Prepare {
    fn from(e: rusqlite::Error) -> Prepare {
        Prepare::Sqlite(e)
    }
}

/// A lock held by another connection (of this process or another) is tried for again every
/// LOCK_RETRY, up to `timeout`. Not SQLite's `busy_timeout`: its sleeps grow to 100 ms, so under
/// contention the writers that have waited longest try least often and starve past their timeout
/// while newer ones take the lock again and again.
fn install_busy_handler(conn: &mut Connection, timeout: Duration) -> rusqlite::Result<()> {
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
    }))
}

/// What a SQLite error says about the store. Only what stops the file from being read or
/// written is a connectivity fault (it cannot be opened, is read-only, corrupt, not a database,
/// full, or an I/O error); a lock held past the timeout is contention; anything else is SQLite
/// refusing this call (a type, a size, a constraint), which says nothing about the store.
pub(super) fn classify(e: &rusqlite::Error) -> Fault {
    use rusqlite::ErrorCode as C;
    let Some(code) = e.sqlite_error_code() else {
        // Conversions and API misuse of ours: the call, not the store.
        return Fault::Refusal;
    };
    match code {
        C::DatabaseBusy | C::DatabaseLocked => Fault::Contention,
        C::PermissionDenied
        | C::ReadOnly
        | C::SystemIoFailure
        | C::DatabaseCorrupt
        | C::NotADatabase
        | C::DiskFull
        | C::CannotOpen
        | C::FileLockingProtocolFailed
        | C::NoLargeFileSupport
        | C::OutOfMemory
        | C::InternalMalfunction
        | C::NotFound => Fault::Connectivity,
        _ => Fault::Refusal,
    }
}

/// Deletes up to `limit` expired rows (oldest expiry first, through the `expires_at` index);
/// how many. Called by every write, in its transaction, and by the upkeep task's sweep.
fn sweep_expired(c: &Connection, now: i64, limit: u32) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "DELETE FROM kv WHERE key IN \
         (SELECT key FROM kv WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
    )?
    .execute(params![now, limit])
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn failure(code: std::ffi::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn only_storage_failures_are_faults_of_the_store() {
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_BUSY_SNAPSHOT,
        ] {
            assert_eq!(classify(&failure(code)), Fault::Contention, "{code}");
        }
        for code in [
            ffi::SQLITE_READONLY,
            ffi::SQLITE_READONLY_DIRECTORY,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_IOERR_FSYNC,
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_NOTADB,
            ffi::SQLITE_FULL,
            ffi::SQLITE_CANTOPEN,
            ffi::SQLITE_PERM,
        ] {
            assert_eq!(classify(&failure(code)), Fault::Connectivity, "{code}");
        }
        for code in [
            ffi::SQLITE_TOOBIG,
            ffi::SQLITE_CONSTRAINT,
            ffi::SQLITE_MISMATCH,
            ffi::SQLITE_RANGE,
        ] {
            assert_eq!(classify(&failure(code)), Fault::Refusal, "{code}");
        }
        let conversion =
            rusqlite::Error::InvalidColumnType(0, "value".into(), rusqlite::types::Type::Integer);
        assert_eq!(classify(&conversion), Fault::Refusal);
    }
}
