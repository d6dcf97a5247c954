//! What a plugin's outbound call may send, decided before anything is connected: the URL (parsed,
//! on the allow-list, not a guarded literal address, in the form hyper takes) and the headers
//! (the plugin's, minus those the host owns, plus those the host adds).
//!
//! Owns the allow-list verdict on a URL (for the call and for every redirect hop), the set of
//! host-owned headers, the `User-Agent`, and the forwarding of the request id and `traceparent`
//! (the host's values always; a plugin's own are dropped).
//! Pure functions over values: it must not resolve or connect (the connector's) nor send (the
//! exchange's).

use std::net::IpAddr;

use hyper::Uri;
use hyper::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use url::Url;

use super::{Forwarded, OutboundError, guard};
use crate::config::AllowEntry;

/// The W3C Trace Context header the host forwards from the inbound request.
const TRACEPARENT: &str = "traceparent";

/// What the host sends as `User-Agent` (after the plugin's own, when it sends one).
pub(super) const AGENT: &str = concat!("wasmgate/", env!("CARGO_PKG_VERSION"));

/// Headers a plugin may not set: framing and the connection are the host's, and `Host` is the
/// URL's (the allow-list judged that URL, so the upstream must see that host).
const HOST_OWNED: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// The URL of a call, parsed as browsers do (`url`: lower-case host, IDNA, default port dropped,
/// so one destination has one spelling); `Invalid` when it is not an absolute URL.
pub(super) fn parse(url: &[u8]) -> Result<Url, OutboundError> {
    std::str::from_utf8(url)
        .ok()
        .and_then(|u| Url::parse(u).ok())
        .ok_or_else(|| {
            OutboundError::Invalid(format!(
                "{:?} is not an absolute http(s) URL",
                String::from_utf8_lossy(&url[..url.len().min(200)])
            ))
        })
}

/// A URL's scheme, host (lowercase; an IPv6 address without brackets), the address when the
/// host is one, and port (the scheme's default when absent).
struct Parts<'a> {
    scheme: &'a str,
    host: String,
    ip: Option<IpAddr>,
    port: u16,
}

fn parts(url: &Url) -> Option<Parts<'_>> {
    let (host, ip) = match url.host()? {
        url::Host::Domain(d) => (d.to_ascii_lowercase(), None),
        url::Host::Ipv4(v4) => (v4.to_string(), Some(IpAddr::V4(v4))),
        url::Host::Ipv6(v6) => (v6.to_string(), Some(IpAddr::V6(v6))),
    };
    Some(Parts {
        scheme: url.scheme(),
        host,
        ip,
        port: url.port_or_known_default().unwrap_or(0),
    })
}

/// The position in `allow` of the first entry that allows `url`'s scheme, host and port, if
/// any: the entry a call is counted under in the metrics (a closed set: the configured entries),
/// whatever URL the guest made up.
pub(super) fn admitting(allow: &[AllowEntry], url: &Url) -> Option<usize> {
    let p = parts(url)?;
    allow
        .iter()
        .position(|e| e.allows(p.scheme, &p.host, p.port))
}

/// Whether `plugin` (allowed `allow`) may call `url`: an `http` or `https` URL without
/// credentials, an entry allows it, and a literal address is not guarded (or an entry naming
/// that address allows this scheme and port: `AllowEntry::exempts`). Decided before any
/// connection or wait, for every hop.
///
/// Credentials in a URL are refused rather than sent in the clear or dropped silently: a plugin
/// sets `Authorization` itself.
pub(super) fn check(plugin: &str, allow: &[AllowEntry], url: &Url) -> Result<(), OutboundError> {
    let Some(Parts {
        scheme,
        host,
        ip,
        port,
    }) = parts(url)
    else {
        return Err(OutboundError::Invalid(format!("{url} has no host")));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(OutboundError::Invalid(format!(
            "{url}: only http and https URLs can be called"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OutboundError::Invalid(format!(
            "{}: credentials in a URL are not sent; set an Authorization header instead",
            without_credentials(url)
        )));
    }
    if !allow.iter().any(|e| e.allows(scheme, &host, port)) {
        let default = if scheme == "https" { 443 } else { 80 };
        let shown = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let entry = if port == default {
            format!("{scheme}://{shown}")
        } else {
            format!("{scheme}://{shown}:{port}")
        };
        return Err(OutboundError::NotAllowed {
            url: url.to_string(),
            plugin: plugin.to_string(),
            entry,
        });
    }
    if let Some(ip) = ip
        && let Some(why) = guard::classify(ip)
        && !allow.iter().any(|e| e.exempts(scheme, port, ip))
    {
        return Err(OutboundError::AddressBlocked {
            host,
            addr: ip,
            why: why.describe(),
        });
    }
    Ok(())
}

/// `url` (one [`check`] passed) as the absolute URI hyper's client takes: it sends the origin
/// form, and `Host` from the authority. The fragment is the client's own and never sent.
pub(super) fn uri(url: &Url) -> Result<Uri, OutboundError> {
    let mut url = url.clone();
    url.set_fragment(None);
    url.as_str()
        .parse::<Uri>()
        .map_err(|e| OutboundError::Invalid(format!("{url} cannot be sent: {e}")))
}

/// `url` with its user and password removed, for messages.
fn without_credentials(url: &Url) -> Url {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown
}

/// The request headers: the plugin's (minus what the host owns), `User-Agent` (the host's after
/// the plugin's), `Accept: */*` unless the plugin set one, then the forwarded ones (the request
/// id under `id_header`, and `traceparent`).
///
/// The forwarded ones are the host's alone: a plugin's own `traceparent`, or its own header of
/// the name `id_header`, is dropped (not refused: a plugin that copies the inbound headers keeps
/// working) whether or not the host has a value to send. Upstream logs correlate by these, so a
/// plugin must not be able to pass a call off as another request's, or as an unrelated trace.
pub(super) fn headers(
    given: &[(&[u8], &[u8])],
    forwarded: &Forwarded,
    id_header: Option<&str>,
) -> Result<HeaderMap, OutboundError> {
    let host_correlation = |name: &HeaderName| {
        name.as_str() == TRACEPARENT
            || id_header.is_some_and(|h| name.as_str().eq_ignore_ascii_case(h))
    };
    let mut map = HeaderMap::new();
    for (name, value) in given {
        let name = HeaderName::from_bytes(name).map_err(|_| {
            OutboundError::Invalid(format!(
                "{:?} is not a header name",
                String::from_utf8_lossy(name)
            ))
        })?;
        if HOST_OWNED.contains(&name.as_str()) {
            return Err(OutboundError::Invalid(format!(
                "the header `{name}` is set by the host"
            )));
        }
        let value = HeaderValue::from_bytes(value).map_err(|_| {
            OutboundError::Invalid(format!("the value of `{name}` has a control character"))
        })?;
        if !host_correlation(&name) {
            map.append(name, value);
        }
    }
    let agent = match map.get(USER_AGENT) {
        Some(theirs) => {
            let combined = [theirs.as_bytes(), b" ", AGENT.as_bytes()].concat();
            HeaderValue::from_bytes(&combined).unwrap_or_else(|_| theirs.clone())
        }
        None => HeaderValue::from_static(AGENT),
    };
    map.insert(USER_AGENT, agent);
    if !map.contains_key(ACCEPT) {
        map.insert(ACCEPT, HeaderValue::from_static("*/*"));
    }
    let mut add = |name: &str, value: &Option<String>| {
        if let (Ok(n), Some(Ok(v))) = (
            HeaderName::from_bytes(name.as_bytes()),
            value.as_deref().map(HeaderValue::from_str),
        ) {
            map.insert(n, v);
        }
    };
    add(TRACEPARENT, &forwarded.traceparent);
    if let Some(header) = id_header {
        add(header, &forwarded.request_id);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values<'a>(map: &'a HeaderMap, name: &str) -> Vec<&'a [u8]> {
        map.get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    }

    /// Issue 20, item 7: the host's correlation headers win over a plugin's, which are dropped
    /// even when the host has none to send.
    #[test]
    fn the_hosts_request_id_and_traceparent_replace_the_plugins() {
        let given: [(&[u8], &[u8]); 4] = [
            (b"X-Request-Id", b"forged-id"),
            (b"traceparent", b"00-forged-forged-01"),
            (b"x-request-id", b"second-forged-id"),
            (b"x-other", b"kept"),
        ];
        let forwarded = Forwarded {
            request_id: Some("00000000000000ab".into()),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        };
        let map = headers(&given, &forwarded, Some("x-request-id")).unwrap();
        assert_eq!(values(&map, "x-request-id"), [b"00000000000000ab"]);
        assert_eq!(
            values(&map, "traceparent"),
            [b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]
        );
        assert_eq!(values(&map, "x-other"), [b"kept"]);

        // Nothing inbound to forward: the plugin's values are dropped all the same.
        let map = headers(&given, &Forwarded::default(), Some("x-request-id")).unwrap();
        assert!(values(&map, "x-request-id").is_empty());
        assert!(values(&map, "traceparent").is_empty());

        // Under another configured id header, that one is the host's; x-request-id is the plugin's.
        let map = headers(&given, &forwarded, Some("X-Correlation-Id")).unwrap();
        assert_eq!(values(&map, "x-correlation-id"), [b"00000000000000ab"]);
        assert_eq!(
            values(&map, "x-request-id"),
            [&b"forged-id"[..], &b"second-forged-id"[..]]
        );
    }
}
