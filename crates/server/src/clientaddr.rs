//! Who the client is: the TCP peer, or — when the peer is a trusted proxy — the client it
//! forwarded for, from `Forwarded: for=` (RFC 7239) or else `X-Forwarded-For`.
//!
//! Owns the `trusted_proxies` address blocks ([`IpNet`]) and the walk over the forwarding chain.
//! The rule that makes it safe: headers are believed only as far as the proxies that wrote them
//! are trusted. The chain is read from the right (the hop nearest to us) and every hop that is a
//! trusted proxy is skipped; the first hop that is not is the client. A client talking to us
//! directly cannot spoof anything, because its own address is the peer and is not trusted. Pure
//! functions over addresses and header values: no sockets, no configuration parsing beyond one
//! block's syntax.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address block, `10.0.0.0/8` or `::1` (a single address is a full-length block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a text is not an address block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpNetError(String);

impl fmt::Display for IpNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an address or address block: expected e.g. \"10.0.0.0/8\", \"127.0.0.1\" or \"::1\"",
            self.0
        )
    }
}

impl std::error::Error for IpNetError {}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(s: &str) -> Result<IpNet, IpNetError> {
        let bad = || IpNetError(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl IpNet {
    /// Whether `ip` is in the block. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack
    /// socket reports for an IPv4 peer) is compared as the IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client of a request from `peer`: the first hop, read from the right, of the forwarding
/// chain that is not in `trusted`. `forwarded` are the values of the request's `Forwarded` fields
/// and `x_forwarded_for` those of its `X-Forwarded-For` fields, in received order; `Forwarded` is
/// used when it names at least one hop. A hop that is not an address (`unknown`, an obfuscated
/// identifier, garbage) ends the walk: nothing to its left can be believed, and the last address
/// read stands.
pub(crate) fn client_ip<'h>(
    peer: IpAddr,
    trusted: &[IpNet],
    forwarded: impl Iterator<Item = &'h [u8]>,
    x_forwarded_for: impl Iterator<Item = &'h [u8]>,
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return canonical(peer);
    }
    let mut hops: Vec<Option<IpAddr>> = forwarded.flat_map(forwarded_for).collect();
    if hops.is_empty() {
        hops = x_forwarded_for
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|h| parse_hop(trim(h)))
            .collect();
    }
    let mut client = canonical(peer);
    for hop in hops.into_iter().rev() {
        let Some(ip) = hop else { break };
        client = canonical(ip);
        if !is_trusted(client) {
            break;
        }
    }
    client
}

/// The `for=` node of each element of one `Forwarded` value (RFC 7239 §4), in order; elements
/// without `for=` are skipped.
fn forwarded_for(value: &[u8]) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for element in split_outside_quotes(value, b',') {
        for pair in split_outside_quotes(element, b';') {
            let pair = trim(pair);
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if pair[..eq].eq_ignore_ascii_case(b"for") {
                let node = trim(&pair[eq + 1..]);
                let node = node
                    .strip_prefix(b"\"")
                    .and_then(|n| n.strip_suffix(b"\""))
                    .unwrap_or(node);
                out.push(parse_hop(node));
            }
        }
    }
    out
}

/// An address of a forwarding chain: `a.b.c.d`, `a.b.c.d:port`, `[v6]`, `[v6]:port` or a bare v6.
fn parse_hop(node: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(node).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    // `a.b.c.d:port` (a bare IPv6 address has several colons and parsed above).
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Splits on `sep` where it is not inside a quoted-string.
fn split_outside_quotes(value: &[u8], sep: u8) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in value.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(peer: &str, trusted: &[&str], fwd: &[&str], xff: &[&str]) -> IpAddr {
        client_ip(
            ip(peer),
            &nets(trusted),
            fwd.iter().map(|s| s.as_bytes()),
            xff.iter().map(|s| s.as_bytes()),
        )
    }

    #[test]
    fn blocks_parse_and_contain() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.200.1.1")) && !n.contains(ip("11.0.0.1")));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!(one.contains(ip("::ffff:127.0.0.1")), "IPv4-mapped");
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("::1")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "nope",
            "10.0.0.0/",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert_eq!(n.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let spoofed = client(
            "203.0.113.9",
            &["127.0.0.1"],
            &["for=1.2.3.4"],
            &["5.6.7.8"],
        );
        assert_eq!(spoofed, ip("203.0.113.9"));
        assert_eq!(client("127.0.0.1", &[], &[], &["5.6.7.8"]), ip("127.0.0.1"));
    }

    #[test]
    fn a_trusted_peer_forwards_the_first_untrusted_hop_from_the_right() {
        let trusted = ["127.0.0.1", "10.0.0.0/8"];
        assert_eq!(
            client("127.0.0.1", &trusted, &[], &["198.51.100.7"]),
            ip("198.51.100.7")
        );
        // A client that prepends a fake hop gains nothing: the proxy appended the real one.
        assert_eq!(
            client(
                "127.0.0.1",
                &trusted,
                &[],
                &["6.6.6.6, 198.51.100.7, 10.1.2.3"]
            ),
            ip("198.51.100.7")
        );
        // Several fields form one list, in order.
        assert_eq!(
            client("127.0.0.1", &trusted, &[], &["6.6.6.6", "198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Every hop trusted: the leftmost stands.
        assert_eq!(
            client("127.0.0.1", &trusted, &[], &["10.9.9.9"]),
            ip("10.9.9.9")
        );
        // No header: the peer.
        assert_eq!(client("127.0.0.1", &trusted, &[], &[]), ip("127.0.0.1"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_is_parsed_per_rfc_7239() {
        let trusted = ["127.0.0.1"];
        assert_eq!(
            client(
                "127.0.0.1",
                &trusted,
                &["for=192.0.2.60;proto=http;by=203.0.113.43"],
                &["5.6.7.8"]
            ),
            ip("192.0.2.60")
        );
        assert_eq!(
            client(
                "127.0.0.1",
                &trusted,
                &[r#"For="[2001:db8:cafe::17]:4711""#],
                &[]
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            client(
                "127.0.0.1",
                &trusted,
                &[r#"for=192.0.2.43, for="[2001:db8:cafe::17]";proto=https"#],
                &[]
            ),
            ip("2001:db8:cafe::17"),
            "the nearest untrusted hop"
        );
        // `unknown` stops the walk: nothing left of it is believed.
        assert_eq!(
            client("127.0.0.1", &trusted, &["for=1.1.1.1, for=unknown"], &[]),
            ip("127.0.0.1")
        );
        // A `Forwarded` field without `for=` leaves X-Forwarded-For in charge.
        assert_eq!(
            client("127.0.0.1", &trusted, &["proto=https"], &["9.9.9.9"]),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn hops_may_carry_ports_and_brackets() {
        assert_eq!(parse_hop(b"1.2.3.4:80"), Some(ip("1.2.3.4")));
        assert_eq!(parse_hop(b"[::1]:80"), Some(ip("::1")));
        assert_eq!(parse_hop(b"::1"), Some(ip("::1")));
        assert_eq!(parse_hop(b"_hidden"), None);
        assert_eq!(parse_hop(b"1.2.3.4:x"), None);
    }
}
