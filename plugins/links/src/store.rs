//! The `links` key-value store: how links and clicks are kept, and what a client gets when the
//! store fails.
//!
//! Layout: `link:<code>` holds a [`Link`] as JSON; `clicks:<code>` the click count as the
//! decimal text `kv_incr` keeps (absent: no clicks yet); `ratelimit:<client>` the creations of a
//! client in its current window, expiring with it. Records are only ever created with a
//! compare-and-swap "only if absent" and changed with a compare-and-swap on their exact bytes, so
//! concurrent requests, in one process or several sharing the store, never overwrite each
//! other.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmgate_sdk::kv::Store;
use wasmgate_sdk::wire::Errno;
use wasmgate_sdk::{Error, Response};

/// The store's name in `[stores.links]` and in the plugin's `kv` grant.
pub(crate) const STORE: &str = "links";
/// How many random codes [`insert_generated`] draws before giving up.
pub(crate) const MAX_CODE_ATTEMPTS: usize = 8;

/// A link as stored at `link:<code>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Link {
    pub(crate) url: String,
    /// The page's title, when it could be fetched.
    #[serde(default)]
    pub(crate) title: Option<String>,
    /// When the link was created (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) created_at: Option<String>,
}

/// A link read from (or written to) the store, with its exact stored bytes: what a later
/// compare-and-swap must find to change it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) link: Link,
    bytes: Vec<u8>,
}

/// The opened `links` store.
pub(crate) struct Links {
    kv: Store,
}

impl Links {
    /// Opens the store (one host call).
    pub(crate) fn open() -> Result<Links, Error> {
        fault::check()?;
        Ok(Links {
            kv: Store::open(STORE)?,
        })
    }

    /// The link with `code`, if any. A record that is not a [`Link`] is an `invalid` error.
    pub(crate) fn get(&self, code: &str) -> Result<Option<Stored>, Error> {
        fault::check()?;
        let Some(bytes) = self.kv.get(link_key(code))? else {
            return Ok(None);
        };
        let link = decode(code, &bytes)?;
        Ok(Some(Stored { link, bytes }))
    }

    /// Stores `link` under `code` only if `code` is free: `None` when it is taken.
    pub(crate) fn insert(&self, code: &str, link: &Link) -> Result<Option<Stored>, Error> {
        fault::check()?;
        let bytes = encode(link)?;
        let created = self.kv.compare_and_swap(link_key(code), None, &bytes)?;
        Ok(created.then(|| Stored {
            link: link.clone(),
            bytes,
        }))
    }

    /// Replaces the link `old` under `code` with `new`; `false` (and no change) if the record is
    /// no longer `old`.
    pub(crate) fn update(&self, code: &str, old: &Stored, new: &Link) -> Result<bool, Error> {
        fault::check()?;
        let bytes = encode(new)?;
        self.kv
            .compare_and_swap(link_key(code), Some(&old.bytes), &bytes)
    }

    /// Counts one click on `code`, atomically; the new count.
    pub(crate) fn count_click(&self, code: &str) -> Result<i64, Error> {
        fault::check()?;
        self.kv.incr(clicks_key(code), 1)
    }

    /// Counts one creation by `client` into its window of `window` (opened, with that expiry,
    /// by the client's first creation in it); the count so far in the window. One host call.
    pub(crate) fn count_creation(&self, client: &str, window: Duration) -> Result<i64, Error> {
        fault::check()?;
        self.kv.incr_with_ttl(rate_key(client), 1, window)
    }

    /// What is left of `client`'s window: `Ok(None)` when it has just closed (a window without
    /// an expiry, which `count_creation` never makes, reports zero).
    pub(crate) fn window_left(&self, client: &str) -> Result<Option<Duration>, Error> {
        fault::check()?;
        match self.kv.ttl(rate_key(client)) {
            Ok(left) => Ok(Some(left.unwrap_or(Duration::ZERO))),
            Err(e) if e.errno == Errno::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The clicks on `code` so far.
    pub(crate) fn clicks(&self, code: &str) -> Result<i64, Error> {
        fault::check()?;
        match self.kv.get_text(clicks_key(code))? {
            None => Ok(0),
            Some(text) => text.parse().map_err(|_| {
                Error::new(
                    Errno::Invalid,
                    format!("`{}` holds {text:?}, not a count", clicks_key(code)),
                )
            }),
        }
    }
}

/// Claims a fresh code from `generate` for `link`, drawing again when one is taken (rare: see
/// `code`), at most [`MAX_CODE_ATTEMPTS`] times; then a 503.
pub(crate) fn insert_generated(
    links: &Links,
    link: &Link,
    mut generate: impl FnMut() -> String,
) -> Result<(String, Stored), Response> {
    for _ in 0..MAX_CODE_ATTEMPTS {
        let code = generate();
        if let Some(stored) = links.insert(&code, link).map_err(failure)? {
            return Ok((code, stored));
        }
    }
    eprintln!("links: {MAX_CODE_ATTEMPTS} random codes in a row were taken");
    Err(Response::error(
        503,
        "no_free_code",
        "no free code was found; try again, or choose a code",
    ))
}

/// The answer to a store failure. The store being down, slow or busy (`unavailable`, `timeout`,
/// `busy`) is a 503 `store_unavailable` with `Retry-After`: the client may retry. Anything else
/// (`denied`: the configuration does not grant the store; `invalid`: a corrupt record; ...) is
/// the plugin's or its configuration's fault, answered with the SDK's mapping (a 500 in
/// practice). Either way the host's message goes to the log only.
pub(crate) fn failure(err: Error) -> Response {
    match err.errno {
        Errno::Unavailable | Errno::Timeout | Errno::Busy => {
            eprintln!("links: store `{STORE}` failed, answering 503: {err}");
            Response::error(
                503,
                "store_unavailable",
                "the link store is unavailable; try again shortly",
            )
            .header("retry-after", "1")
        }
        _ => Response::from(err),
    }
}

fn link_key(code: &str) -> String {
    format!("link:{code}")
}

fn clicks_key(code: &str) -> String {
    format!("clicks:{code}")
}

fn rate_key(client: &str) -> String {
    format!("ratelimit:{client}")
}

fn encode(link: &Link) -> Result<Vec<u8>, Error> {
    wasmgate_sdk::serde_json::to_vec(link)
        .map_err(|e| Error::new(Errno::Invalid, format!("a link does not serialize: {e}")))
}

fn decode(code: &str, bytes: &[u8]) -> Result<Link, Error> {
    wasmgate_sdk::serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            Errno::Invalid,
            format!("`{}` is not a link record: {e}", link_key(code)),
        )
    })
}

/// Failure injection for tests: the SDK's store stand-in can refuse a store (`denied`) but not
/// make it `unavailable` or slow, so the tests make the wrapper fail instead. Compiled out of
/// the plugin.
#[cfg(test)]
pub(crate) mod fault {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Operations left to succeed, and the error of every one after them.
        static PLAN: Cell<Option<(u32, Errno)>> = const { Cell::new(None) };
    }

    /// After `ok` more operations of [`Links`] (`open` included), every one fails with `errno`.
    pub(crate) fn fail_after(ok: u32, errno: Errno) {
        PLAN.set(Some((ok, errno)));
    }

    /// Back to no failures.
    pub(crate) fn reset() {
        PLAN.set(None);
    }

    pub(super) fn check() -> Result<(), Error> {
        match PLAN.get() {
            None => Ok(()),
            Some((0, errno)) => Err(Error::new(errno, "injected by the test")),
            Some((n, errno)) => {
                PLAN.set(Some((n - 1, errno)));
                Ok(())
            }
        }
    }
}

#[cfg(not(test))]
mod fault {
    #[inline(always)]
    pub(super) fn check() -> Result<(), wasmgate_sdk::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_503_and_the_rest_use_the_sdk_mapping() {
        for errno in [Errno::Unavailable, Errno::Timeout, Errno::Busy] {
            let resp = failure(Error::new(errno, "secret detail: redis://10.0.0.5"));
            assert_eq!(resp.status(), 503, "{errno}");
            assert_eq!(resp.header_value("retry-after"), Some("1"));
            let body: wasmgate_sdk::serde_json::Value = resp.body_json().unwrap();
            assert_eq!(body["error"], "store_unavailable");
            assert!(!resp.body_text().unwrap().contains("redis"));
        }
        for errno in [
            Errno::Denied,
            Errno::Invalid,
            Errno::TooLarge,
            Errno::NoMemory,
        ] {
            let resp = failure(Error::new(errno, "secret detail"));
            assert_eq!(resp.status(), 500, "{errno}");
            let body: wasmgate_sdk::serde_json::Value = resp.body_json().unwrap();
            assert_eq!(body["error"], errno.name());
            assert!(!resp.body_text().unwrap().contains("secret"));
        }
        assert_eq!(failure(Error::new(Errno::LimitReached, "")).status(), 503);
    }

    #[test]
    fn records_round_trip_and_old_records_without_optional_fields_still_read() {
        let link = Link {
            url: "https://example.org/".into(),
            title: Some("Example".into()),
            created_at: Some("2025-01-02T03:04:05Z".into()),
        };
        let bytes = encode(&link).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"url":"https://example.org/","title":"Example","created_at":"2025-01-02T03:04:05Z"}"#
        );
        assert_eq!(decode("x", &bytes).unwrap(), link);
        let old = decode("x", br#"{"url":"https://a.example/"}"#).unwrap();
        assert_eq!((old.title, old.created_at), (None, None));
        let err = decode("abc", b"https://a.example/").unwrap_err();
        assert_eq!(err.errno, Errno::Invalid);
        assert!(err.message.contains("`link:abc`"), "{err}");
    }
}
