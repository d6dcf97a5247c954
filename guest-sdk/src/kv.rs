//! Key-value stores: [`Store`], a handle on one of the stores the plugin's configuration grants
//! (`kv = ["links"]`, each defined in `[stores.links]`), and [`KeyPage`], one page of a listing.
//!
//! This module owns the typed face of the `kv_*` host functions (docs/ABI.md, "The
//! functions"): `not_found` becomes `None` or `false`, `conflict` becomes `false`, `kv_incr`'s
//! 8 bytes become an `i64` and `kv_ttl`'s a `Duration`, a key page is decoded, durations become
//! milliseconds. The semantics (expiry, ordering, atomicity) are the host's, and natively those
//! of the stand-in in [`testing`](crate::testing), which follows the same contract. It must not
//! cache or batch: each method is exactly one host call, so a plugin can count its calls against
//! the host's per-request limit.
//!
//! Keys and values are bytes (`&str`, `String`, `&[u8]` and `Vec<u8>` all work); the store
//! never interprets them except for [`Store::incr`], which keeps a decimal integer as text.
//!
//! ```
//! use wasmgate_sdk::kv::Store;
//!
//! let links = Store::open("links")?;
//! links.set("abc", "https://example.org/")?;
//! assert_eq!(links.get_text("abc")?.as_deref(), Some("https://example.org/"));
//! assert_eq!(links.incr("hits:abc", 1)?, 1);
//! assert!(links.delete("abc")?);
//! assert_eq!(links.get("abc")?, None);
//! # Ok::<(), wasmgate_sdk::Error>(())
//! ```

use crate::error::Error;
use crate::host;
use crate::time::abi_millis as ttl_ms;
use crate::wire::{self, Errno};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// A key-value store granted to this plugin. Cheap to open: it only checks the grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    name: String,
}

/// One page of [`Store::list`]: keys in ascending byte order and, when more keys follow, the
/// cursor to pass to the next call.
///
/// ```
/// use wasmgate_sdk::kv::Store;
///
/// let store = Store::open("pages")?;
/// for key in ["a", "b", "c"] {
///     store.set(key, "")?;
/// }
/// let mut cursor = None;
/// let mut seen = Vec::new();
/// loop {
///     let page = store.list("", cursor.as_deref(), 2)?;
///     seen.extend(page.keys);
///     match page.next {
///         Some(next) => cursor = Some(next),
///         None => break,
///     }
/// }
/// assert_eq!(seen, [b"a", b"b", b"c"]);
/// # Ok::<(), wasmgate_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPage {
    /// The keys of this page, ascending.
    pub keys: Vec<Vec<u8>>,
    /// Where the next page starts (pass it as `cursor`), or `None` when the listing is complete.
    pub next: Option<Vec<u8>>,
}

impl Store {
    /// Opens the store `name`. Fails with `denied` when the plugin's `kv` grant does not name
    /// it (the message names the entry to add). Natively, every name opens an in-memory store
    /// of its own (see [`testing::kv_deny`](crate::testing::kv_deny) to test the refusal).
    ///
    /// ```
    /// let store = wasmgate_sdk::kv::Store::open("sessions")?;
    /// assert_eq!(store.name(), "sessions");
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn open(name: &str) -> Result<Store, Error> {
        host::kv_open(name)?;
        Ok(Store {
            name: name.to_owned(),
        })
    }

    /// The store's name, as given to [`Store::open`].
    ///
    /// ```
    /// assert_eq!(wasmgate_sdk::kv::Store::open("a")?.name(), "a");
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key`, or `None` when it is absent or has expired.
    ///
    /// ```
    /// let store = wasmgate_sdk::kv::Store::open("s")?;
    /// store.set("k", [0u8, 255])?;
    /// assert_eq!(store.get("k")?, Some(vec![0, 255]));
    /// assert_eq!(store.get("other")?, None);
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, Error> {
        found(host::kv_get(&self.name, key.as_ref()))
    }

    /// The value of `key` as UTF-8 text; `invalid` when it is not text.
    ///
    /// ```
    /// let store = wasmgate_sdk::kv::Store::open("s")?;
    /// store.set("name", "Ada")?;
    /// assert_eq!(store.get_text("name")?.as_deref(), Some("Ada"));
    /// store.set("bin", [0xffu8])?;
    /// assert!(store.get_text("bin").is_err());
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn get_text(&self, key: impl AsRef<[u8]>) -> Result<Option<String>, Error> {
        let Some(bytes) = self.get(key)? else {
            return Ok(None);
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| Error::new(Errno::Invalid, format!("stored value is not UTF-8: {e}")))
    }

    /// The value of `key` parsed as JSON into `T`; `invalid` when it does not parse.
    ///
    /// ```
    /// use wasmgate_sdk::kv::Store;
    ///
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct Link { url: String, hits: u32 }
    ///
    /// let store = Store::open("links")?;
    /// store.set_json("abc", &Link { url: "https://example.org/".into(), hits: 0 })?;
    /// let link: Option<Link> = store.get_json("abc")?;
    /// assert_eq!(link.unwrap().url, "https://example.org/");
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn get_json<T: DeserializeOwned>(&self, key: impl AsRef<[u8]>) -> Result<Option<T>, Error> {
        let Some(bytes) = self.get(key)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::new(
                Errno::Invalid,
                format!("stored value is not the expected JSON: {e}"),
            )
        })
    }

    /// Sets `key` to `value`, without expiry (an earlier expiry is cleared).
    ///
    /// ```
    /// let store = wasmgate_sdk::kv::Store::open("s")?;
    /// store.set("k", "v")?;
    /// store.set(b"k".to_vec(), b"w")?;
    /// assert_eq!(store.get("k")?, Some(b"w".to_vec()));
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        host::kv_set(&self.name, key.as_ref(), value.as_ref(), 0)
    }

    /// Sets `key` to `value`, to expire after `ttl` (rounded up to whole milliseconds). A zero
    /// `ttl` means no expiry, exactly like [`Store::set`] (the ABI's `ttl_ms <= 0`).
    /// A `ttl` longer than the store's `max_ttl` (365 days unless its `[stores.NAME]` says
    /// otherwise) is `too_large` on every backend, `Duration::MAX` included: a value meant never
    /// to expire takes [`Store::set`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmgate_sdk::{kv::Store, testing};
    ///
    /// let store = Store::open("sessions")?;
    /// store.set_with_ttl("token", "ada", Duration::from_secs(60))?;
    /// testing::advance_clock(Duration::from_secs(59));
    /// assert!(store.exists("token")?);
    /// testing::advance_clock(Duration::from_secs(1));
    /// assert!(!store.exists("token")?);
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn set_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<(), Error> {
        host::kv_set(&self.name, key.as_ref(), value.as_ref(), ttl_ms(ttl))
    }

    /// Sets `key` to `value` serialized as JSON, without expiry.
    ///
    /// ```
    /// let store = wasmgate_sdk::kv::Store::open("s")?;
    /// store.set_json("tags", &["a", "b"])?;
    /// assert_eq!(store.get_text("tags")?.as_deref(), Some(r#"["a","b"]"#));
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn set_json<T: Serialize + ?Sized>(
        &self,
        key: impl AsRef<[u8]>,
        value: &T,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::new(Errno::Invalid, format!("value does not serialize: {e}")))?;
        self.set(key, bytes)
    }

    /// Deletes `key`: `true` when it existed, `false` when there was nothing to delete (absent
    /// or expired).
    ///
    /// ```
    /// let store = wasmgate_sdk::kv::Store::open("s")?;
    /// store.set("k", "v")?;
    /// assert!(store.delete("k")?);
    /// assert!(!store.delete("k")?);
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        found(host::kv_delete(&self.name, key.as_ref())).map(|d| d.is_some())
    }

    /// Whether `key` is present (and not expired).
    ///
    /// ```
    /// let store = wasmgate_sdk::kv::Store::open("s")?;
    /// assert!(!store.exists("k")?);
    /// store.set("k", "")?;
    /// assert!(store.exists("k")?);
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn exists(&self, key: impl AsRef<[u8]>) -> Result<bool, Error> {
        found(host::kv_exists(&self.name, key.as_ref())).map(|e| e.is_some())
    }

    /// Adds `delta` (which may be negative) to the integer stored at `key`, atomically, and
    /// returns the new value. An absent key counts from 0. The value is stored as its decimal
    /// text (`get_text` reads `"42"`), and a value that is not such an integer, or a result
    /// that would overflow an `i64`, is `invalid`. An expiry set earlier is kept.
    ///
    /// ```
    /// use wasmgate_sdk::{kv::Store, wire::Errno};
    ///
    /// let store = Store::open("counters")?;
    /// assert_eq!(store.incr("hits", 1)?, 1);
    /// assert_eq!(store.incr("hits", 41)?, 42);
    /// assert_eq!(store.get_text("hits")?.as_deref(), Some("42"));
    /// store.set("name", "ada")?;
    /// assert_eq!(store.incr("name", 1).unwrap_err().errno, Errno::Invalid);
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn incr(&self, key: impl AsRef<[u8]>, delta: i64) -> Result<i64, Error> {
        let bytes = host::kv_incr(&self.name, key.as_ref(), delta)?;
        integer("kv_incr", &bytes)
    }

    /// [`Store::incr`], and a key this call creates (absent, or expired) expires after `ttl`;
    /// an existing key keeps its expiry (or its lack of one) whatever `ttl` says. That makes
    /// one call a fixed-window counter: the first hit of a window creates the key with the
    /// window's length, later hits count into it without extending it, and the next hit after
    /// it expired opens a new window from 0. A zero `ttl` means none (the created key never
    /// expires), and a `ttl` past the store's `max_ttl` is `too_large` even for an existing key.
    /// One host call (`kv_incr_ttl`), atomic on every backend.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmgate_sdk::{kv::Store, testing};
    ///
    /// let hits = Store::open("ratelimit")?;
    /// let minute = Duration::from_secs(60);
    /// assert_eq!(hits.incr_with_ttl("client:1", 1, minute)?, 1); // opens the window
    /// testing::advance_clock(Duration::from_secs(59));
    /// assert_eq!(hits.incr_with_ttl("client:1", 1, minute)?, 2); // same window, not extended
    /// assert_eq!(hits.ttl("client:1")?, Some(Duration::from_secs(1)));
    /// testing::advance_clock(Duration::from_secs(1));
    /// assert_eq!(hits.incr_with_ttl("client:1", 1, minute)?, 1); // a new window
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn incr_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        delta: i64,
        ttl: Duration,
    ) -> Result<i64, Error> {
        let bytes = host::kv_incr_ttl(&self.name, key.as_ref(), delta, ttl_ms(ttl))?;
        integer("kv_incr_ttl", &bytes)
    }

    /// How long `key` has left before it expires: `Ok(None)` when it has no expiry, and
    /// `not_found` (an [`Error`]) when it is absent or has expired, so "forever" and "gone"
    /// never look alike. A live key has at least 1 ms left (rounded up), so the answer suits a
    /// `Retry-After` (round it up to whole seconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmgate_sdk::{kv::Store, testing, wire::Errno};
    ///
    /// let store = Store::open("s")?;
    /// store.set_with_ttl("session", "ada", Duration::from_secs(30))?;
    /// testing::advance_clock(Duration::from_secs(10));
    /// assert_eq!(store.ttl("session")?, Some(Duration::from_secs(20)));
    /// store.set("forever", "x")?;
    /// assert_eq!(store.ttl("forever")?, None);
    /// assert_eq!(store.ttl("absent").unwrap_err().errno, Errno::NotFound);
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn ttl(&self, key: impl AsRef<[u8]>) -> Result<Option<Duration>, Error> {
        let bytes = host::kv_ttl(&self.name, key.as_ref())?;
        match integer("kv_ttl", &bytes)? {
            wire::NO_EXPIRY => Ok(None),
            ms => u64::try_from(ms)
                .map(|ms| Some(Duration::from_millis(ms)))
                .map_err(|_| {
                    Error::protocol(format!(
                        "kv_ttl returned {ms}, neither a time left nor NO_EXPIRY"
                    ))
                }),
        }
    }

    /// Sets `key` to `new` only if its current value is `expected` (`None`: only if the key is
    /// absent), atomically. `Ok(false)` means another value was found and nothing changed. The
    /// new value has no expiry.
    ///
    /// ```
    /// let store = wasmgate_sdk::kv::Store::open("s")?;
    /// assert!(store.compare_and_swap("k", None, "v1")?);       // created
    /// assert!(!store.compare_and_swap("k", None, "v2")?);      // already there
    /// assert!(store.compare_and_swap("k", Some(b"v1"), "v2")?);
    /// assert!(!store.compare_and_swap("k", Some(b"v1"), "v3")?);
    /// assert_eq!(store.get_text("k")?.as_deref(), Some("v2"));
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: impl AsRef<[u8]>,
    ) -> Result<bool, Error> {
        self.compare_and_swap_with_ttl(key, expected, new, Duration::ZERO)
    }

    /// [`Store::compare_and_swap`], with the new value expiring after `ttl` (zero: no expiry,
    /// as for [`Store::set_with_ttl`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use wasmgate_sdk::{kv::Store, testing};
    ///
    /// let locks = Store::open("locks")?;
    /// assert!(locks.compare_and_swap_with_ttl("job", None, "me", Duration::from_secs(30))?);
    /// testing::advance_clock(Duration::from_secs(30));
    /// // The lock expired: someone else may take it.
    /// assert!(locks.compare_and_swap_with_ttl("job", None, "you", Duration::from_secs(30))?);
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn compare_and_swap_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        expected: Option<&[u8]>,
        new: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<bool, Error> {
        let key = key.as_ref();
        match host::kv_cas(&self.name, key, expected, new.as_ref(), ttl_ms(ttl)) {
            Ok(()) => Ok(true),
            Err(e) if e.errno == Errno::Conflict => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One page of the keys that start with `prefix`, in ascending byte order, strictly after
    /// `cursor` (`None`: from the start), at most `limit` of them. The store's `max_list_keys`
    /// (1000 unless configured) caps a page, and a `limit` of 0 asks for that maximum; so a page
    /// may hold fewer keys than asked, and only [`KeyPage::next`] says whether more follow.
    ///
    /// ```
    /// let store = wasmgate_sdk::kv::Store::open("s")?;
    /// for key in ["user:2", "user:1", "post:1"] {
    ///     store.set(key, "")?;
    /// }
    /// let page = store.list("user:", None, 10)?;
    /// assert_eq!(page.keys, [b"user:1", b"user:2"]);
    /// assert_eq!(page.next, None);
    /// let page = store.list("", Some(b"post:1"), 1)?;
    /// assert_eq!((page.keys, page.next), (vec![b"user:1".to_vec()], Some(b"user:1".to_vec())));
    /// # Ok::<(), wasmgate_sdk::Error>(())
    /// ```
    pub fn list(
        &self,
        prefix: impl AsRef<[u8]>,
        cursor: Option<&[u8]>,
        limit: u32,
    ) -> Result<KeyPage, Error> {
        let bytes = host::kv_list(
            &self.name,
            prefix.as_ref(),
            cursor.unwrap_or_default(),
            limit,
        )?;
        let page = wire::KeyPage::decode(&bytes)
            .map_err(|e| Error::protocol(format!("kv_list returned a malformed key page: {e}")))?;
        Ok(KeyPage {
            keys: page.keys.into_iter().map(<[u8]>::to_vec).collect(),
            next: (!page.next.is_empty()).then(|| page.next.to_vec()),
        })
    }
}

/// The 8-byte little-endian `i64` the host function `function` returned.
fn integer(function: &str, bytes: &[u8]) -> Result<i64, Error> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| {
        Error::protocol(format!(
            "{function} returned {} bytes, not an 8-byte integer",
            bytes.len()
        ))
    })?;
    Ok(i64::from_le_bytes(array))
}

/// `Ok(Some(result))`, `Ok(None)` for `not_found`, or the error.
fn found<T>(result: Result<T, Error>) -> Result<Option<T>, Error> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.errno == Errno::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
