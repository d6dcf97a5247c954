//! [`Transport`]: the byte stream a connection is served over.
//!
//! The driver is generic over any `AsyncRead + AsyncWrite` (a TCP socket in production, an
//! in-memory pipe in its unit tests, TLS some day). Beyond reading and writing it needs one thing
//! a plain `AsyncRead` cannot give: waiting until bytes arrive *without* a buffer to read them
//! into, so that an idle keep-alive connection holds no read buffer (bench/memory.py holds 10,000
//! of them). This module owns that one operation and nothing else.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

/// A connection's byte stream.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Resolves when a read would not wait (bytes, end of stream or an error are there), without
    /// reading. A transport that cannot tell may resolve at once: the driver then waits in the
    /// read itself, under the same deadlines, and holds a read buffer while it does.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
}

impl Transport for tokio::net::TcpStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        tokio::net::TcpStream::readable(self)
    }
}

/// In-memory pipes (the driver's unit tests) cannot wait without reading.
#[cfg(test)]
impl Transport for tokio::io::DuplexStream {
    async fn readable(&self) -> io::Result<()> {
        Ok(())
    }
}
