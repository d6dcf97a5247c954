//! Why a store operation failed: [`KvError`] (what the guest, the log and the metrics see; each
//! variant maps to one ABI error code and one `wasmgate_kv_operations_total` outcome) and
//! [`Fault`] (the typed classification of a backend's failure, which decides whether the store is
//! down). Owns that mapping and the masking of URL passwords in a reason; it must not touch a
//! store, a backend or the metrics themselves (the backends' `classify` decides the fault, the
//! store records the outcome), nor the ABI's codes (`runtime::kvcalls`).

use std::time::Duration;

use crate::metrics::KvOutcome;

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
    pub(super) fn outcome(&self) -> KvOutcome {
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
    /// `timeout` on Redis ([`super::Store::silence_is_down`]), or if it was a health check.
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
    pub(super) fn error(self, store: &str, reason: String, bound: Duration) -> KvError {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
