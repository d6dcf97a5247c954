//! Outbound HTTP settings: the `[outbound]` section (the host's policy, shared by every plugin;
//! each plugin's own bounds are `max_outbound_*` limits in `PluginLimits`) and the syntax of one
//! `allowed_outbound_hosts` entry.
//!
//! Owns what an allow-list entry means: a scheme, a host (exact, an IP address, or `*.domain` for
//! any name under `domain`), and a port (a number, or `*`; the scheme's default when absent). It
//! must not resolve, connect or decide about addresses: the SSRF guard and the client are
//! `outbound`'s.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The host's outbound policy, shared by all plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSettings {
    /// Longest a new connection may take: its wait for a place under the plugin's
    /// `max_outbound_concurrency` for its destination (-> `busy`), then DNS, TCP and TLS (->
    /// `connect`); `timeout` when the call's own bound comes first.
    pub connect_timeout: Duration,
    /// Redirects followed (each target checked against the allow-list and the SSRF guard); 0
    /// returns a 3xx to the plugin as it is.
    pub max_redirects: u32,
    /// The header that carries the inbound request's id to the upstream; `None` sends none.
    pub request_id_header: Option<String>,
    /// A PEM file of extra certificate authorities trusted besides the standard (Mozilla) roots,
    /// e.g. an internal CA.
    pub ca_file: Option<PathBuf>,
    /// Names resolved to fixed addresses instead of by DNS (like curl's `--resolve`). The SSRF
    /// guard still applies to them.
    pub resolve: BTreeMap<String, IpAddr>,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings {
            connect_timeout: Duration::from_secs(2),
            max_redirects: 0,
            request_id_header: Some("x-request-id".to_string()),
            ca_file: None,
            resolve: BTreeMap::new(),
        }
    }
}

/// One entry of `allowed_outbound_hosts`, e.g. `https://api.example.com`,
/// `http://127.0.0.1:*`, `https://*.example.org:443`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    pub scheme: Scheme,
    pub host: HostPattern,
    /// `None` matches any port.
    pub port: Option<u16>,
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The host part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name (lowercase).
    Name(String),
    /// `*.domain`: any name ending in `.domain` (one label or more before it; not `domain`).
    Subdomains(String),
    /// Exactly this address. An entry naming an address is what allows a private, loopback or
    /// link-local destination (the SSRF guard refuses those otherwise).
    Ip(IpAddr),
}

impl AllowEntry {
    /// Whether a call to `scheme://host:port` is allowed by this entry. `host` is lowercase, an
    /// IPv6 address without brackets. A wildcard matches names only: `*.0.0.1` is not a way to
    /// allow the address `127.0.0.1`.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if scheme != self.scheme.as_str() || !self.allows_port(port) {
            return false;
        }
        match &self.host {
            HostPattern::Name(name) => host == name,
            // `domain` is stored with its leading dot: something must come before it.
            HostPattern::Subdomains(domain) => {
                host.parse::<IpAddr>().is_err()
                    && host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|rest| !rest.is_empty())
            }
            HostPattern::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
        }
    }

    fn allows_port(&self, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
    }

    /// Whether this entry lets the SSRF guard pass a connection to the guarded address `ip` for
    /// a `scheme` URL on `port`: the entry names that address (an IP entry for exactly `ip`, or
    /// `localhost` for 127.0.0.1 and ::1, the addresses that name stands for) and allows that
    /// scheme and port. So the exemption is exactly as wide as the entry: whatever name led to
    /// the address (a wildcard entry's, a pinned one, a redirect's), the connection reaches only
    /// a (scheme, address, port) the list allows by the address itself. An IPv4 address written
    /// inside IPv6 (`::ffff:127.0.0.1`) is not the entry's address: exemptions are never widened
    /// by spelling, only refused.
    pub fn exempts(&self, scheme: &str, port: u16, ip: IpAddr) -> bool {
        scheme == self.scheme.as_str() && self.allows_port(port) && self.names_address(ip)
    }

    /// Whether this entry is written for the address `ip` itself.
    fn names_address(&self, ip: IpAddr) -> bool {
        match &self.host {
            HostPattern::Ip(allowed) => *allowed == ip,
            HostPattern::Name(name) => {
                name == "localhost"
                    && (ip == IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
                        || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
            }
            HostPattern::Subdomains(_) => false,
        }
    }

    /// Parses an entry; the error says what a valid one looks like.
    pub fn parse(text: &str) -> Result<AllowEntry, String> {
        let bad = |why: &str| {
            format!(
                "`{text}` is not an allow-list entry ({why}): expected e.g. \"https://api.example.com\", \"http://127.0.0.1:*\" or \"https://*.example.org:443\""
            )
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        // Schemes are case-insensitive (RFC 3986 §3.1).
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(bad("an entry has no path, query or user"));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| bad("malformed host or port"))?;
        let port = match port {
            None => Some(scheme.default_port()),
            Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| bad("the port must be a number or *"))?,
            ),
        };
        let host = host.to_ascii_lowercase();
        let host = if let Ok(ip) = host.parse::<IpAddr>() {
            HostPattern::Ip(ip)
        } else if let Some(domain) = host.strip_prefix("*.") {
            if !is_dns_name(domain) {
                return Err(bad("a wildcard is `*.` followed by a domain"));
            }
            HostPattern::Subdomains(format!(".{domain}"))
        } else if is_dns_name(&host) {
            HostPattern::Name(host)
        } else {
            return Err(bad(
                "the host must be a DNS name, `*.` and a name, or an IP address",
            ));
        };
        Ok(AllowEntry { scheme, host, port })
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        match &self.host {
            HostPattern::Name(n) => f.write_str(n)?,
            HostPattern::Subdomains(d) => write!(f, "*{d}")?,
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostPattern::Ip(ip) => write!(f, "{ip}")?,
        }
        match self.port {
            Some(p) if p == self.scheme.default_port() => Ok(()),
            Some(p) => write!(f, ":{p}"),
            None => f.write_str(":*"),
        }
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((s, None)),
    }
    .filter(|(h, _)| !h.is_empty())
}

/// Letters, digits, `-` and `.`, in labels of 1 to 63 bytes.
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &str) -> AllowEntry {
        AllowEntry::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn entries_match_scheme_host_and_port() {
        let e = entry("https://api.example.com");
        assert!(e.allows("https", "api.example.com", 443));
        assert!(!e.allows("http", "api.example.com", 80), "another scheme");
        assert!(!e.allows("https", "api.example.com", 8443), "another port");
        assert!(!e.allows("https", "evil.example.com", 443));
        assert!(!e.allows("https", "api.example.com.evil.org", 443));
        let any_port = entry("http://127.0.0.1:*");
        assert!(any_port.allows("http", "127.0.0.1", 31337));
        assert!(!any_port.allows("http", "127.0.0.2", 80));
        let wild = entry("https://*.example.org:443");
        assert!(wild.allows("https", "a.example.org", 443));
        assert!(wild.allows("https", "a.b.example.org", 443));
        assert!(!wild.allows("https", "example.org", 443), "not the apex");
        assert!(!wild.allows("https", "badexample.org", 443));
        let v6 = entry("http://[::1]:8080");
        assert!(v6.allows("http", "::1", 8080));
        assert_eq!(v6.to_string(), "http://[::1]:8080");
        assert_eq!(
            entry("HTTPS://API.Example.com/").to_string(),
            "https://api.example.com"
        );
    }

    #[test]
    fn only_address_entries_and_localhost_exempt_guarded_addresses_for_their_scheme_and_port() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let lo = ip("127.0.0.1");
        assert!(entry("http://127.0.0.1:*").exempts("http", 31337, lo));
        assert!(entry("http://localhost:*").exempts("http", 31337, lo));
        assert!(entry("http://localhost:*").exempts("http", 31337, ip("::1")));
        assert!(entry("http://[::1]:8080").exempts("http", 8080, ip("::1")));
        assert!(!entry("http://api.test:*").exempts("http", 80, lo));
        assert!(!entry("http://*.test:*").exempts("http", 80, lo));
        assert!(!entry("http://127.0.0.2").exempts("http", 80, lo));
        // The entry's port and scheme, and nothing else (issue 20, item 2).
        let one = entry("http://127.0.0.1:18202");
        assert!(one.exempts("http", 18202, lo));
        assert!(!one.exempts("http", 18203, lo), "another port");
        assert!(!one.exempts("https", 18202, lo), "another scheme");
        assert!(!entry("http://localhost:18202").exempts("http", 18203, lo));
        assert!(!entry("http://localhost").exempts("http", 80, ip("127.0.0.2")));
        // Another spelling of the address is not the entry's address.
        assert!(!one.exempts("http", 18202, ip("::ffff:127.0.0.1")));
        assert!(!entry("http://[::1]:*").exempts("http", 80, lo));
        assert!(!entry("http://[::ffff:127.0.0.1]:*").exempts("http", 80, lo));
    }

    #[test]
    fn a_wildcard_matches_names_not_addresses() {
        let wild = entry("http://*.0.0.1:*");
        assert!(wild.allows("http", "a.0.0.1", 80));
        assert!(!wild.allows("http", "127.0.0.1", 80));
    }

    #[test]
    fn bad_entries_say_what_is_expected() {
        for bad in [
            "api.example.com",
            "ftp://x.org",
            "https://x.org/path",
            "https://u@x.org",
            "https://x.org:99999",
            "https://x.org:abc",
            "https://*",
            "https://*.",
            "https://a..b",
            "https://exa mple.org",
            "https://[::1",
        ] {
            let err = AllowEntry::parse(bad).unwrap_err();
            assert!(err.contains("expected e.g."), "{bad}: {err}");
        }
    }
}
