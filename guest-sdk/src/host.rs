//! The one seam between the SDK's services (`vars`, `kv`, `http`) and the host functions of
//! docs/ABI.md: the only caller of the `wasmgate` imports.
//!
//! On `wasm32` each function here calls the import wrapper of the same name in `sys::imports`;
//! on every other target it calls the in-memory stand-in of the same name in `standin` (driven
//! by [`testing`](crate::testing)), which answers with the same codes and byte encodings as a
//! host. Either way the result is an [`Outcome`] (a code and bytes), turned here into
//! `Ok(bytes)` or an [`Error`], so everything above this module (decoding results, mapping
//! `not_found` to `None`) runs the same code in a plugin and in its native tests. This module
//! must not interpret results beyond the code: what the bytes mean is each service's business.

use crate::error::Error;
use crate::outcome::Outcome;

#[cfg(not(target_arch = "wasm32"))]
use crate::standin as backend;
#[cfg(target_arch = "wasm32")]
use crate::sys::imports as backend;

impl Outcome {
    /// `Ok(result)` for code 0, else the [`Error`] the code and message name.
    fn into_result(self) -> Result<Vec<u8>, Error> {
        match self.code {
            0 => Ok(self.bytes),
            code => Err(Error::from_code(
                code,
                String::from_utf8_lossy(&self.bytes).into_owned(),
            )),
        }
    }
}

/// `var_get`: the value of variable `name`.
pub(crate) fn var_get(name: &str) -> Result<Vec<u8>, Error> {
    backend::var_get(name.as_bytes()).into_result()
}

/// `kv_open`: checks that `store` is granted and exists.
pub(crate) fn kv_open(store: &str) -> Result<(), Error> {
    backend::kv_open(store.as_bytes()).into_result().map(drop)
}

/// `kv_get`: the value; `not_found` when absent or expired.
pub(crate) fn kv_get(store: &str, key: &[u8]) -> Result<Vec<u8>, Error> {
    backend::kv_get(store.as_bytes(), key).into_result()
}

/// `kv_set`, with `ttl_ms <= 0` meaning no expiry.
pub(crate) fn kv_set(store: &str, key: &[u8], value: &[u8], ttl_ms: i64) -> Result<(), Error> {
    backend::kv_set(store.as_bytes(), key, value, ttl_ms)
        .into_result()
        .map(drop)
}

/// `kv_delete`: `not_found` when there was nothing to delete.
pub(crate) fn kv_delete(store: &str, key: &[u8]) -> Result<(), Error> {
    backend::kv_delete(store.as_bytes(), key)
        .into_result()
        .map(drop)
}

/// `kv_exists`: `ok` or `not_found`.
pub(crate) fn kv_exists(store: &str, key: &[u8]) -> Result<(), Error> {
    backend::kv_exists(store.as_bytes(), key)
        .into_result()
        .map(drop)
}

/// `kv_incr`: the new value as 8 little-endian bytes.
pub(crate) fn kv_incr(store: &str, key: &[u8], delta: i64) -> Result<Vec<u8>, Error> {
    backend::kv_incr(store.as_bytes(), key, delta).into_result()
}

/// `kv_incr_ttl`: the new value as 8 little-endian bytes; a key it creates gets `ttl_ms`.
pub(crate) fn kv_incr_ttl(
    store: &str,
    key: &[u8],
    delta: i64,
    ttl_ms: i64,
) -> Result<Vec<u8>, Error> {
    backend::kv_incr_ttl(store.as_bytes(), key, delta, ttl_ms).into_result()
}

/// `kv_ttl`: the milliseconds left as 8 little-endian bytes (`NO_EXPIRY`: none); `not_found`
/// when absent or expired.
pub(crate) fn kv_ttl(store: &str, key: &[u8]) -> Result<Vec<u8>, Error> {
    backend::kv_ttl(store.as_bytes(), key).into_result()
}

/// `kv_cas`: `conflict` when the current value is not `expected` (`None`: not absent).
pub(crate) fn kv_cas(
    store: &str,
    key: &[u8],
    expected: Option<&[u8]>,
    new: &[u8],
    ttl_ms: i64,
) -> Result<(), Error> {
    backend::kv_cas(store.as_bytes(), key, expected, new, ttl_ms)
        .into_result()
        .map(drop)
}

/// `kv_list`: an encoded [`KeyPage`](crate::wire::KeyPage).
pub(crate) fn kv_list(
    store: &str,
    prefix: &[u8],
    cursor: &[u8],
    limit: u32,
) -> Result<Vec<u8>, Error> {
    backend::kv_list(store.as_bytes(), prefix, cursor, limit).into_result()
}

/// `http_send`: an encoded [`OutboundRequest`](crate::wire::OutboundRequest) in, an encoded
/// [`RawResponse`](crate::wire::RawResponse) out.
pub(crate) fn http_send(request: &[u8]) -> Result<Vec<u8>, Error> {
    backend::http_send(request).into_result()
}

/// `http_send_timeout`: `http_send`, ending `timeout` after at most `timeout_ms`.
pub(crate) fn http_send_timeout(request: &[u8], timeout_ms: i64) -> Result<Vec<u8>, Error> {
    backend::http_send_timeout(request, timeout_ms).into_result()
}
