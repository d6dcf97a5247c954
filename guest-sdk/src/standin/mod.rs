//! The in-memory stand-ins for the host functions: what `host` calls on every target but
//! wasm32, so that a plugin's services work in plain `cargo test`.
//!
//! Each submodule answers one group of functions at the ABI level (bytes in, an [`Outcome`]
//! out, with the host's error codes and encodings) from per-thread state that tests drive
//! through [`testing`](crate::testing): `vars` for `var_get`, `kv` for the `kv_*` functions,
//! `http` for `http_send`; `clock` is the one time of them all (and of `time::now`). Answering at that level is the point: the SDK's decoding and error
//! mapping run in tests exactly as in a plugin. This module must depend on nothing of the SDK
//! above the wire (no `http`, `kv` or `testing` types), so that the services that call it
//! through `host` can never loop back into it.
//!
//! [`Outcome`]: crate::outcome::Outcome

pub(crate) mod clock;
pub(crate) mod http;
pub(crate) mod kv;
pub(crate) mod vars;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use http::{http_send, http_send_timeout};
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use kv::{
    kv_cas, kv_delete, kv_exists, kv_get, kv_incr, kv_incr_ttl, kv_list, kv_open, kv_set, kv_ttl,
};
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use vars::var_get;
