//! The `http_send` host function: one outbound HTTP call of the plugin, through its client, with
//! the per-request call limit, its arguments and result in the ABI's encodings
//! (`OutboundRequest` in, the response layout out).
//!
//! Owns the mapping between the call's bytes and the outbound service, and between
//! [`OutboundError`] and the ABI's error codes. Reading guest memory and handing results back is
//! `hostcalls`'s; what a call does is `outbound`'s.

use std::sync::Arc;
use std::time::Instant;

use wasmgate_abi::{Errno, OutboundRequest, RawResponse};

use super::hostcalls::{Args, HostCtx, Outcome};
use crate::outbound::{Call, Forwarded, OutboundError, PluginClient};

/// The plugin's client, counting one call; or the refusal: past `max_outbound_calls`.
pub(super) fn admit(host: &mut HostCtx) -> Result<Arc<PluginClient>, Outcome> {
    let Some(client) = host.env.outbound.clone() else {
        return Err(Outcome::fail(
            Errno::Denied,
            "this plugin may not make outbound calls (no allowed_outbound_hosts)",
        ));
    };
    let max = client.max_calls_per_request();
    if host.outbound_calls >= max {
        return Err(Outcome::fail(
            Errno::LimitReached,
            format!("this request already made {max} outbound calls (max_outbound_calls)"),
        ));
    }
    host.outbound_calls += 1;
    Ok(client)
}

/// Decodes the request (argument 0), sends it, encodes the answer.
pub(super) async fn send(
    client: &PluginClient,
    args: &Args,
    forwarded: &Forwarded,
    deadline: Instant,
) -> Outcome {
    let request = match OutboundRequest::decode(args.bytes(0)) {
        Ok(r) => r,
        Err(e) => return Outcome::fail(Errno::Invalid, format!("not an outbound request: {e}")),
    };
    let call = Call {
        method: request.method,
        url: request.url,
        headers: request.headers.clone(),
        body: request.body,
    };
    match client.send(call, forwarded, deadline).await {
        Ok(answer) => {
            let encoded = RawResponse {
                status: u32::from(answer.status),
                headers: answer
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_bytes(), v.as_slice()))
                    .collect(),
                body: &answer.body,
            }
            .encode();
            match encoded {
                Ok(bytes) => Outcome::ok(bytes),
                Err(e) => Outcome::fail(Errno::TooLarge, e.to_string()),
            }
        }
        Err(e) => {
            let errno = match &e {
                OutboundError::NotAllowed { .. } => Errno::Denied,
                OutboundError::AddressBlocked { .. } => Errno::AddressBlocked,
                OutboundError::Dns(_) => Errno::Dns,
                OutboundError::Connect(_) => Errno::Connect,
                OutboundError::Timeout(_) => Errno::Timeout,
                OutboundError::TooLarge(_) => Errno::TooLarge,
                OutboundError::Busy { .. } => Errno::Busy,
                OutboundError::Protocol(_) => Errno::Protocol,
                OutboundError::Invalid(_) => Errno::Invalid,
            };
            Outcome::fail(errno, e.to_string())
        }
    }
}
