//! The `kv_*` host functions: a granted store's operations, with the per-request operation limit,
//! and their results in the ABI's encodings (docs/ABI.md "The functions").
//!
//! Owns the mapping between the calls' arguments and results and the store API, and between
//! [`KvError`] and the ABI's error codes. Reading guest memory and handing results back is
//! `hostcalls`'s; what a store does is `kv`'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmgate_abi::{Errno, KeyPage, NO_EXPIRY};

use super::hostcalls::{Args, HostCtx, Outcome};
use crate::kv::{KvError, Remaining, Store};

/// The granted store named `name`, counting one operation on it; or the refusal: not granted, or
/// its `max_ops_per_request` reached.
pub(super) fn admit(host: &mut HostCtx, name: &[u8]) -> Result<Arc<Store>, Outcome> {
    let Ok(name) = std::str::from_utf8(name) else {
        return Err(Outcome::fail(Errno::Invalid, "a store name must be UTF-8"));
    };
    let Some(i) = host.env.kv.iter().position(|s| s.name() == name) else {
        return Err(Outcome::fail(
            Errno::Denied,
            format!(
                "store `{name}` is not granted to plugin `{}`: add it to `kv = [...]` in [plugins.{}]",
                host.plugin, host.plugin
            ),
        ));
    };
    let store = host.env.kv[i].clone();
    let max = store.limits().max_ops_per_request;
    if host.kv_ops[i] >= max {
        return Err(Outcome::fail(
            Errno::LimitReached,
            format!(
                "this request already made {max} operations on store `{name}` (max_ops_per_request)"
            ),
        ));
    }
    host.kv_ops[i] += 1;
    Ok(store)
}

/// Runs the store function `name` (already admitted on `store`) with `args` (the store name is
/// argument 0).
pub(super) async fn call(name: &str, store: &Store, args: &Args, deadline: Instant) -> Outcome {
    let key = args.bytes(1);
    match name {
        "kv_open" => Outcome::ok(Vec::new()),
        "kv_get" => match store.get(key, deadline).await {
            Ok(Some(value)) => Outcome::ok(value),
            Ok(None) => absent(store, key),
            Err(e) => failed(e),
        },
        "kv_set" => match store
            .set(key, args.bytes(2), ttl(args.number(3)), deadline)
            .await
        {
            Ok(()) => Outcome::ok(Vec::new()),
            Err(e) => failed(e),
        },
        "kv_delete" => match store.delete(key, deadline).await {
            Ok(true) => Outcome::ok(Vec::new()),
            Ok(false) => absent(store, key),
            Err(e) => failed(e),
        },
        "kv_exists" => match store.exists(key, deadline).await {
            Ok(true) => Outcome::ok(Vec::new()),
            Ok(false) => absent(store, key),
            Err(e) => failed(e),
        },
        "kv_incr" => match store.incr(key, args.number(2), deadline).await {
            Ok(n) => Outcome::ok(n.to_le_bytes().to_vec()),
            Err(e) => failed(e),
        },
        "kv_incr_ttl" => match store
            .incr_with_ttl(key, args.number(2), ttl(args.number(3)), deadline)
            .await
        {
            Ok(n) => Outcome::ok(n.to_le_bytes().to_vec()),
            Err(e) => failed(e),
        },
        "kv_ttl" => match store.ttl(key, deadline).await {
            Ok(Some(Remaining::Forever)) => Outcome::ok(NO_EXPIRY.to_le_bytes().to_vec()),
            Ok(Some(Remaining::Ms(ms))) => Outcome::ok(ms.to_le_bytes().to_vec()),
            Ok(None) => absent(store, key),
            Err(e) => failed(e),
        },
        "kv_cas" => {
            let expected = args.maybe_bytes(2);
            let new = args.bytes(3);
            match store
                .compare_and_swap(key, expected, new, ttl(args.number(4)), deadline)
                .await
            {
                Ok(true) => Outcome::ok(Vec::new()),
                Ok(false) => Outcome::fail(
                    Errno::Conflict,
                    "the value is not the expected one (another write came first)",
                ),
                Err(e) => failed(e),
            }
        }
        "kv_list" => {
            let prefix = key;
            let cursor = Some(args.bytes(2)).filter(|c| !c.is_empty());
            let limit = u32::try_from(args.number(3)).unwrap_or(u32::MAX);
            match store.list(prefix, cursor, limit, deadline).await {
                Ok(page) => {
                    let encoded = KeyPage {
                        keys: page.keys.iter().map(Vec::as_slice).collect(),
                        next: page.next.as_deref().unwrap_or_default(),
                    }
                    .encode();
                    match encoded {
                        Ok(bytes) => Outcome::ok(bytes),
                        Err(e) => Outcome::fail(Errno::TooLarge, e.to_string()),
                    }
                }
                Err(e) => failed(e),
            }
        }
        other => Outcome::fail(
            Errno::Unavailable,
            format!("`wasmgate.{other}` is not a store function"),
        ),
    }
}

/// `ttl_ms` as given to `kv_set`/`kv_cas`/`kv_incr_ttl`: zero or negative means no expiry.
fn ttl(ms: i64) -> Option<Duration> {
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

fn absent(store: &Store, key: &[u8]) -> Outcome {
    Outcome::fail(
        Errno::NotFound,
        format!(
            "no key {:?} in store `{}`",
            String::from_utf8_lossy(&key[..key.len().min(64)]),
            store.name()
        ),
    )
}

fn failed(e: KvError) -> Outcome {
    let errno = match &e {
        KvError::TooLarge(_) => Errno::TooLarge,
        KvError::Invalid(_) => Errno::Invalid,
        KvError::Unavailable { .. } => Errno::Unavailable,
        // Contention answers `timeout` too: the guest may try again; the store is not down.
        KvError::Timeout { .. } | KvError::Busy { .. } => Errno::Timeout,
    };
    Outcome::fail(errno, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SqliteSync, StoreBackend, StoreConfig, StoreLimits};
    use crate::metrics::{Metrics, Sources};
    use crate::request_id::RequestId;
    use crate::runtime::hostcalls::HostEnv;

    /// A store allowing `max_ops` operations per request. It is never used (admission runs no
    /// operation), so its SQLite file is never created.
    fn store(name: &str, max_ops: u32) -> Arc<Store> {
        let config = StoreConfig {
            name: name.into(),
            backend: StoreBackend::Sqlite {
                path: std::env::temp_dir().join("wasmgate-kvcalls-never-opened.sqlite"),
                sync: SqliteSync::Full,
            },
            limits: StoreLimits {
                max_ops_per_request: max_ops,
                ..StoreLimits::default()
            },
            required: false,
        };
        let metrics = Arc::new(Metrics::new(Sources::none()));
        Arc::new(Store::open(&config, metrics).expect("a SQLite store opens lazily"))
    }

    /// One request of a plugin whose services are `env`.
    fn request(env: &Arc<HostEnv>) -> HostCtx {
        let deadline = Instant::now() + Duration::from_secs(1);
        HostCtx::new(
            env.clone(),
            deadline,
            "p".into(),
            RequestId::from_bits(1).into(),
        )
    }

    fn refusal(admitted: Result<Arc<Store>, Outcome>) -> (Errno, String) {
        match admitted {
            Ok(store) => panic!("store `{}` admitted", store.name()),
            Err(outcome) => (outcome.errno(), outcome.text()),
        }
    }

    #[test]
    fn a_request_makes_at_most_max_ops_per_request_operations_on_each_store() {
        let env = Arc::new(HostEnv::new(
            Arc::default(),
            vec![store("a", 3), store("b", 1)],
            None,
        ));
        let mut host = request(&env);
        for n in 1..=3 {
            assert!(admit(&mut host, b"a").is_ok(), "operation {n} of 3");
        }
        let (errno, message) = refusal(admit(&mut host, b"a"));
        assert_eq!(errno, Errno::LimitReached);
        assert!(
            message.contains("already made 3 operations on store `a` (max_ops_per_request)"),
            "{message}"
        );
        // Each store has its own count, and each request starts from zero.
        assert!(admit(&mut host, b"b").is_ok());
        assert_eq!(refusal(admit(&mut host, b"b")).0, Errno::LimitReached);
        assert!(admit(&mut request(&env), b"a").is_ok());
    }

    #[test]
    fn a_store_not_granted_is_denied_naming_the_grant_and_a_bad_name_is_invalid() {
        let env = Arc::new(HostEnv::new(Arc::default(), vec![store("a", 3)], None));
        let mut host = request(&env);
        let (errno, message) = refusal(admit(&mut host, b"other"));
        assert_eq!(errno, Errno::Denied);
        assert!(
            message.contains("add it to `kv = [...]` in [plugins.p]"),
            "{message}"
        );
        assert_eq!(refusal(admit(&mut host, b"\xff")).0, Errno::Invalid);
        // Refusals are not operations: the store's whole allowance is still there.
        for _ in 0..3 {
            assert!(admit(&mut host, b"a").is_ok());
        }
    }
}
