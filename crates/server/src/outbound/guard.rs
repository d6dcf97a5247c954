//! The SSRF guard's address classifier: which destinations a plugin may not reach unless an
//! allow-list entry names the address itself.
//!
//! Owns the list of guarded ranges and nothing else: pure functions over addresses, unit-tested
//! without opening a socket. The ranges are those a server-side request must never reach by
//! accident or by a hostile DNS answer: this machine (loopback, unspecified), the private
//! networks behind it (RFC 1918, unique-local, carrier-grade NAT), link-local addresses (where
//! cloud metadata services live, 169.254.169.254 and fd00:ec2::254), multicast and broadcast, and
//! the reserved blocks; an IPv4 address written inside IPv6 (mapped, compatible, NAT64, 6to4) is
//! judged as the IPv4 address it carries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is guarded, for the refusal message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guarded {
    Loopback,
    Unspecified,
    Private,
    LinkLocal,
    Metadata,
    SharedNat,
    Multicast,
    Broadcast,
    Reserved,
}

impl Guarded {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Guarded::Loopback => "a loopback address",
            Guarded::Unspecified => "the unspecified address",
            Guarded::Private => "a private network address",
            Guarded::LinkLocal => "a link-local address",
            Guarded::Metadata => "a cloud metadata address",
            Guarded::SharedNat => "a carrier-grade NAT address",
            Guarded::Multicast => "a multicast address",
            Guarded::Broadcast => "the broadcast address",
            Guarded::Reserved => "a reserved address",
        }
    }
}

/// The guarded range `ip` is in, or `None` for an ordinary public address.
pub(crate) fn classify(ip: IpAddr) -> Option<Guarded> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Guarded> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => Guarded::Metadata,
        (127, ..) => Guarded::Loopback,
        (0, ..) => Guarded::Unspecified,
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => Guarded::Private,
        (169, 254, _) => Guarded::LinkLocal,
        (100, 64..=127, _) => Guarded::SharedNat,
        (224..=239, ..) => Guarded::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => Guarded::Broadcast,
        // IETF protocol assignments, documentation nets, benchmarking, 240/4.
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (198, 18..=19, _) => {
            Guarded::Reserved
        }
        (240..=255, ..) => Guarded::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Guarded> {
    let s = ip.segments();
    Some(match s[0] {
        _ if ip == Ipv6Addr::LOCALHOST => Guarded::Loopback,
        _ if ip.is_unspecified() => Guarded::Unspecified,
        // AWS's IPv6 metadata endpoint, inside the unique-local block.
        _ if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => Guarded::Metadata,
        0xfc00..=0xfdff => Guarded::Private,
        0xfe80..=0xfebf => Guarded::LinkLocal,
        0xff00..=0xffff => Guarded::Multicast,
        // Documentation (2001:db8::/32), discard (100::/64), site-local (fec0::/10).
        0x2001 if s[1] == 0x0db8 => Guarded::Reserved,
        0x0100 if s[1..4] == [0, 0, 0] => Guarded::Reserved,
        0xfec0..=0xfeff => Guarded::Reserved,
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address carries, if it is one of the forms that do: mapped
/// (`::ffff:a.b.c.d`), compatible (`::a.b.c.d`, deprecated), NAT64 (`64:ff9b::a.b.c.d`) or 6to4
/// (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // `::a.b.c.d`, but not `::` and `::1`, which are their own.
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail()),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(tail()),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<Guarded> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn guarded_ranges_are_refused() {
        for (ip, want) in [
            ("127.0.0.1", Guarded::Loopback),
            ("127.255.255.254", Guarded::Loopback),
            ("0.0.0.0", Guarded::Unspecified),
            ("10.1.2.3", Guarded::Private),
            ("172.16.0.1", Guarded::Private),
            ("172.31.255.255", Guarded::Private),
            ("192.168.1.1", Guarded::Private),
            ("169.254.169.254", Guarded::Metadata),
            ("169.254.1.1", Guarded::LinkLocal),
            ("100.64.0.1", Guarded::SharedNat),
            ("224.0.0.1", Guarded::Multicast),
            ("255.255.255.255", Guarded::Broadcast),
            ("240.0.0.1", Guarded::Reserved),
            ("192.0.2.10", Guarded::Reserved),
            ("::1", Guarded::Loopback),
            ("::", Guarded::Unspecified),
            ("fd12:3456::1", Guarded::Private),
            ("fd00:ec2::254", Guarded::Metadata),
            ("fe80::1", Guarded::LinkLocal),
            ("ff02::1", Guarded::Multicast),
            ("2001:db8::1", Guarded::Reserved),
            // IPv4 inside IPv6 is judged as IPv4: no way around the guard by spelling.
            ("::ffff:127.0.0.1", Guarded::Loopback),
            ("::ffff:169.254.169.254", Guarded::Metadata),
            ("::10.0.0.1", Guarded::Private),
            ("64:ff9b::10.0.0.1", Guarded::Private),
            ("2002:c0a8:0101::", Guarded::Private),
        ] {
            assert_eq!(class(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "192.169.0.1",
            "100.128.0.1",
            "169.253.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }
}
