//! The `kv_*` host functions: a granted store's operations, with the per-request operation limit,
//! and their results in the ABI's encodings (docs/ABI.md "The functions").
//!
//! Owns the mapping between the calls' arguments and results and the store API, and between
//! [`KvError`] and the ABI's error codes. Reading guest memory and handing results back is
//! `hostcalls`'s; what a store does is `kv`'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmgate_abi::{Errno, KeyPage};

use super::hostcalls::{Args, HostCtx, Outcome};
use crate::kv::{KvError, Store};

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

/// `ttl_ms` as given to `kv_set`/`kv_cas`: zero or negative means no expiry.
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
        KvError::Timeout { .. } => Errno::Timeout,
    };
    Outcome::fail(errno, e.to_string())
}
