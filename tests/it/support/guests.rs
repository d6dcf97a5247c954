//! Versioned guests and the load that checks them: how the reload and balancer tests tell which
//! version of a plugin answered, and that no answer was lost or mixed during a swap.
//!
//! Owns [`versioned_guest`] (a hand-written ABI v1 module derived from `tests/guests/ok.wat` that
//! says its version in a header and in its body), [`version_of`] (the check every answer must pass)
//! and [`versioned_load`] (client threads that apply it until told to stop). It must not start or
//! stop servers, nor write files: the tests decide where a version goes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};

use super::client::{RawClient, Response, get};
use super::repo_root;

/// Samples of one client thread: when each request started, and how long it took.
pub type Samples = Vec<(Instant, Duration)>;

/// A hand-written ABI v1 guest answering 200, `x-version: N`, body `version N\n` (N one digit).
pub fn versioned_guest(n: u8) -> String {
    assert!(n <= 9, "one digit: the data segment's lengths are fixed");
    let wat = std::fs::read_to_string(repo_root().join("tests/guests/ok.wat"))
        .expect("tests/guests/ok.wat is readable");
    let data_start = wat
        .find("  (data (i32.const 16)")
        .expect("ok.wat's response data segment");
    let data_end = wat[data_start..]
        .find(")\n\n")
        .expect("the end of ok.wat's data segment")
        + data_start
        + 2;
    let data = format!(
        "  (data (i32.const 16)\n    \"\\c8\\00\\00\\00\" \"\\01\\00\\00\\00\" \"\\09\\00\\00\\00\" \"x-version\" \"\\01\\00\\00\\00\" \"{n}\" \"\\0a\\00\\00\\00\" \"version {n}\\0a\")\n"
    );
    wat[..data_start].to_string()
        + &data
        + &wat[data_end..].replace("0x000000100000002f", "0x0000001000000028")
}

/// The version a response of a [`versioned_guest`] came from; an error unless it is a 200 wholly
/// from one version (header and body agree).
pub fn version_of(resp: &Response) -> anyhow::Result<u8> {
    ensure!(
        resp.status == 200,
        "status {}: {}",
        resp.status,
        resp.text()
    );
    let header: u8 = resp
        .header("x-version")
        .context("no x-version header")?
        .parse()
        .context("x-version is not a version")?;
    ensure!(
        resp.text() == format!("version {header}\n"),
        "header and body from one version: x-version {header}, body {:?}",
        resp.text()
    );
    Ok(header)
}

/// The version `GET /v` at `addr` is answered by now.
pub fn current_version(addr: SocketAddr) -> anyhow::Result<u8> {
    version_of(&get(addr, "/v")?)
}

/// Client threads requesting `GET /v` at `addr` until `stop`: half keep-alive, half a new
/// connection per request. Every response must pass [`version_of`]; the first that does not (or a
/// failed exchange) ends its thread with that error. Collect them with [`finish_load`].
pub fn versioned_load(
    addr: SocketAddr,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Vec<JoinHandle<anyhow::Result<Samples>>> {
    (0..clients)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut conn = RawClient::connect(addr)?;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    if i % 2 == 1 {
                        conn = RawClient::connect(addr)?;
                    }
                    let resp = conn
                        .send(b"GET /v HTTP/1.1\r\nHost: x\r\n\r\n")?
                        .response()
                        .with_context(|| format!("request {} of client {i}", samples.len()))?;
                    version_of(&resp)
                        .with_context(|| format!("request {} of client {i}", samples.len()))?;
                    samples.push((started, started.elapsed()));
                    // A well-behaved client: the server (or nginx, after keepalive_requests)
                    // may end a keep-alive connection with its last answer.
                    if resp.header("connection") == Some("close") {
                        conn = RawClient::connect(addr)?;
                    }
                }
                Ok(samples)
            })
        })
        .collect()
}

/// Joins the threads of [`versioned_load`]: every sample, or the first failed request.
pub fn finish_load(clients: Vec<JoinHandle<anyhow::Result<Samples>>>) -> anyhow::Result<Samples> {
    let mut all = Vec::new();
    for client in clients {
        let samples = client
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))?
            .context("a request failed under load")?;
        all.extend(samples);
    }
    Ok(all)
}
