//! The `http_send` and `http_send_timeout` host functions: one outbound HTTP call of the plugin,
//! through its client, with the per-request call limit (and the guest's own bound for the
//! second), its arguments and result in the ABI's encodings (`OutboundRequest` in, the response
//! layout out).
//!
//! Owns the mapping between the call's bytes and the outbound service, and between
//! [`OutboundError`] and the ABI's error codes. Reading guest memory and handing results back is
//! `hostcalls`'s; what a call does is `outbound`'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Decodes the request (argument 0), sends it, encodes the answer. For `http_send_timeout`,
/// argument 1 is the guest's own bound in milliseconds (<= 0: none), which can only shorten the
/// host's (`outbound_timeout`, the request's deadline less `outbound_reserve`).
pub(super) async fn send(
    client: &PluginClient,
    args: &Args,
    forwarded: &Forwarded,
    deadline: Instant,
) -> Outcome {
    let guest_timeout = match args.count() {
        2 => u64::try_from(args.number(1))
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis),
        _ => None,
    };
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
    match client.send(call, forwarded, deadline, guest_timeout).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AllowEntry, OutboundSettings, PluginLimits};
    use crate::metrics::{Metrics, Sources};
    use crate::outbound::{Bounds, Outbound};
    use crate::request_id::RequestId;
    use crate::runtime::hostcalls::HostEnv;

    /// One request of a plugin allowed `max_calls` outbound calls per request (`None`: no
    /// `allowed_outbound_hosts`).
    fn request(max_calls: Option<u32>) -> HostCtx {
        let outbound = max_calls.and_then(|max| {
            let service = Outbound::new(
                &OutboundSettings::default(),
                Arc::new(Metrics::new(Sources::none())),
            )
            .expect("no ca_file");
            let limits = PluginLimits {
                max_outbound_calls: max,
                ..PluginLimits::default()
            };
            let allow = [AllowEntry::parse("http://127.0.0.1:*").expect("an entry")];
            service.client("p", &allow, Bounds::of(&limits))
        });
        let env = Arc::new(HostEnv::new(Arc::default(), Vec::new(), outbound));
        let deadline = Instant::now() + Duration::from_secs(1);
        HostCtx::new(env, deadline, "p".into(), RequestId::from_bits(1).into())
    }

    fn refusal(admitted: Result<Arc<PluginClient>, Outcome>) -> (Errno, String) {
        match admitted {
            Ok(_) => panic!("a call admitted"),
            Err(outcome) => (outcome.errno(), outcome.text()),
        }
    }

    #[tokio::test]
    async fn a_request_makes_at_most_max_outbound_calls_calls() {
        let mut host = request(Some(3));
        for n in 1..=3 {
            assert!(admit(&mut host).is_ok(), "call {n} of 3");
        }
        let (errno, message) = refusal(admit(&mut host));
        assert_eq!(errno, Errno::LimitReached);
        assert!(
            message.contains("already made 3 outbound calls (max_outbound_calls)"),
            "{message}"
        );
        // The next request starts from zero.
        assert!(admit(&mut request(Some(3))).is_ok());
    }

    #[tokio::test]
    async fn a_plugin_without_allowed_outbound_hosts_is_denied() {
        let (errno, message) = refusal(admit(&mut request(None)));
        assert_eq!(errno, Errno::Denied);
        assert!(message.contains("no allowed_outbound_hosts"), "{message}");
    }
}
