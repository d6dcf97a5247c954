//! wasmgate: an HTTP/1.1 server whose routes are WebAssembly plugins.
//!
//! The crate is laid out the way a request walks (see ARCHITECTURE.md):
//! `server` accepts and drives connections, `http` turns bytes into request heads and bodies (and
//! responses back into bytes) without doing any I/O, `routes` matches a head to a target, `native`
//! answers the built-in routes and `runtime` runs a plugin in a fresh wasm instance. `config` holds
//! every limit; `error` is the one place where an error becomes a status code.

pub mod app;
pub mod builder;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod error;
pub mod guard;
pub mod http;
pub mod metrics;
pub mod native;
pub mod rebuild;
pub mod reload;
pub mod routes;
pub mod runtime;
pub mod scaffold;
pub mod server;
pub mod sys;
pub mod watch;

use std::net::SocketAddr;

/// Most connections the kernel queues for us while we are not accepting (at `max_connections`,
/// or backing off after EMFILE): the accept backlog.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listening socket with `SO_REUSEADDR` (so a restart does not wait out TIME_WAIT) and,
/// with `reuse_port`, `SO_REUSEPORT` (so several processes share the address and the kernel
/// spreads connections between them).
pub fn bind(addr: SocketAddr, reuse_port: bool) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
