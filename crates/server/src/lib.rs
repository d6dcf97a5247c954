//! # wasmgate-server: the server and runtime library of wasmgate
//!
//! An HTTP/1.1 server whose routes are WebAssembly plugins. Start one with [`Server::start`] (the
//! binary and every integration test do exactly that) from a validated [`config::Config`].
//!
//! ## Layout
//! The modules follow the way a request walks (ARCHITECTURE.md has the map):
//! - `server`: the accept loop (connection cap, back-off, drain), the connection driver (generic
//!   over its byte stream; reads heads and bodies with `wasmgate-http`, writes responses),
//!   the registry of live connections, shutdown as a value, the per-connection timer;
//! - `routes`: pattern syntax and synchronous matching to a target;
//! - `dispatch`: from a matched request to a response (native route or plugin call), through
//!   `guard` (per-plugin concurrency cap, queue, circuit breaker);
//! - `runtime`: plugins in fresh, bounded wasm instances (ABI codec: `wasmgate-abi`);
//! - `native`: `/health`, `/ready`, `/metrics`, `OPTIONS *`, and the readiness they report;
//! - `reload`: the live routing, the loader that swaps it, the load history; `watch`: when to
//!   reload;
//! - `error`: THE map from a failure to its status; `metrics`: every family and its vocabulary;
//! - `config`: every setting and limit with its default; `start`: the wiring;
//! - `sys`: the crate's only `unsafe` (allocator, rlimits, /proc).
//!
//! Everything is `pub(crate)` unless a user of the library needs it: the public API is the start
//! path, the configuration, and the runtime (for `wasmgate check` and the benchmarks).

#![deny(unsafe_code)]

mod clientaddr;
pub mod config;
mod dispatch;
mod error;
mod guard;
mod kv;
mod logsummary;
mod metrics;
mod native;
mod outbound;
mod reload;
mod request_id;
pub mod routes;
pub mod runtime;
mod server;
mod start;
#[allow(unsafe_code)]
pub mod sys;
mod watch;

pub use native::Readiness;
pub use reload::{Refused, ReloadError, Report};
pub use request_id::RequestId;
pub use server::Summary;
pub use start::{Running, Server, ShutdownHandle, StartError};
pub use watch::is_content_change;
