//! The DNS resolver of plugins' connections: names become addresses here, and only addresses the
//! SSRF guard lets through are given to the connector.
//!
//! Owns the check that makes DNS rebinding useless: the guard runs on the answer, after
//! resolution, and the connector connects only to what this resolver returns — there is no second
//! lookup that could answer differently. `[outbound] resolve` pins names to addresses (for tests
//! and for operators, like curl's `--resolve`); pinned answers, and addresses written literally in
//! a URL, are guarded the same way. It must not connect: that is `connector`'s.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::OutboundError;
use super::guard;
use crate::config::AllowEntry;

/// Why a name gave no usable address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("{name} does not resolve: {reason}")]
    Dns { name: String, reason: String },
    #[error("{name} resolves only to guarded addresses ({addr}: {why})")]
    Blocked {
        name: String,
        addr: IpAddr,
        why: &'static str,
    },
}

impl From<ResolveError> for OutboundError {
    fn from(e: ResolveError) -> OutboundError {
        match e {
            ResolveError::Dns { name, reason } => OutboundError::Dns(format!("{name}: {reason}")),
            ResolveError::Blocked { name, addr, why } => OutboundError::AddressBlocked {
                host: name,
                addr,
                why,
            },
        }
    }
}

/// The resolver of one plugin's connector.
#[derive(Debug)]
pub(super) struct GuardedResolver {
    pinned: BTreeMap<String, IpAddr>,
    allow: Arc<[AllowEntry]>,
}

impl GuardedResolver {
    pub(super) fn new(pinned: BTreeMap<String, IpAddr>, allow: Arc<[AllowEntry]>) -> Self {
        GuardedResolver { pinned, allow }
    }

    /// The addresses `host` (a name, or an address without brackets) may be connected to for a
    /// `scheme` connection on `port`, in the order found.
    pub(super) async fn resolve(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Result<Vec<IpAddr>, ResolveError> {
        let name = host.to_ascii_lowercase();
        let found: Vec<IpAddr> = match (name.parse::<IpAddr>(), self.pinned.get(&name)) {
            (Ok(ip), _) => vec![ip],
            (Err(_), Some(&ip)) => vec![ip],
            (Err(_), None) => tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|e| ResolveError::Dns {
                    name: name.clone(),
                    reason: e.to_string(),
                })?
                .map(|a| a.ip())
                .collect(),
        };
        admit(&name, &found, &self.allow, (scheme, port))
    }
}

/// The addresses of `found` the guard lets through for a connection `to` (scheme, port): public
/// ones, and guarded ones an entry of `allow` names for that scheme and port
/// (`AllowEntry::exempts`: an entry for `127.0.0.1:18202` opens that port to a name resolving
/// to 127.0.0.1, not any other). An empty result is an error naming the first refusal.
fn admit(
    name: &str,
    found: &[IpAddr],
    allow: &[AllowEntry],
    (scheme, port): (&str, u16),
) -> Result<Vec<IpAddr>, ResolveError> {
    if found.is_empty() {
        return Err(ResolveError::Dns {
            name: name.to_string(),
            reason: "no address".into(),
        });
    }
    let mut first_refusal = None;
    let admitted: Vec<IpAddr> = found
        .iter()
        .copied()
        .filter(|&ip| match guard::classify(ip) {
            None => true,
            Some(_) if allow.iter().any(|e| e.exempts(scheme, port, ip)) => true,
            Some(why) => {
                first_refusal.get_or_insert((ip, why));
                false
            }
        })
        .collect();
    match (admitted.is_empty(), first_refusal) {
        (true, Some((addr, why))) => Err(ResolveError::Blocked {
            name: name.to_string(),
            addr,
            why: why.describe(),
        }),
        _ => Ok(admitted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP_8080: (&str, u16) = ("http", 8080);

    fn entries(list: &[&str]) -> Vec<AllowEntry> {
        list.iter().map(|e| AllowEntry::parse(e).unwrap()).collect()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_name_resolving_to_a_guarded_address_is_refused() {
        let allow = entries(&["http://api.test:*"]);
        let err = admit("api.test", &ips(&["127.0.0.1"]), &allow, HTTP_8080).unwrap_err();
        assert!(matches!(err, ResolveError::Blocked { .. }), "{err}");
        let err = admit("meta.test", &ips(&["169.254.169.254"]), &allow, HTTP_8080).unwrap_err();
        assert!(err.to_string().contains("cloud metadata"), "{err}");
    }

    #[test]
    fn guarded_answers_are_dropped_and_public_ones_kept() {
        let allow = entries(&["https://mixed.test"]);
        let got = admit(
            "mixed.test",
            &ips(&["10.0.0.1", "8.8.8.8"]),
            &allow,
            ("https", 443),
        )
        .unwrap();
        assert_eq!(
            got,
            ips(&["8.8.8.8"]),
            "rebinding to a private address gains nothing"
        );
    }

    #[test]
    fn an_entry_naming_the_address_lets_it_through() {
        let allow = entries(&["http://api.test:*", "http://127.0.0.1:*"]);
        assert_eq!(
            admit("api.test", &ips(&["127.0.0.1"]), &allow, HTTP_8080).unwrap(),
            ips(&["127.0.0.1"])
        );
        let allow = entries(&["http://localhost:8080"]);
        assert_eq!(
            admit("localhost", &ips(&["127.0.0.1", "::1"]), &allow, HTTP_8080).unwrap(),
            ips(&["127.0.0.1", "::1"])
        );
    }

    /// Issue 20, item 2: the entry naming a guarded address opens that address for its own
    /// scheme and port only, whichever name resolved to it.
    #[test]
    fn an_entry_naming_the_address_lets_it_through_for_its_scheme_and_port_only() {
        let allow = entries(&["http://*.pin.test:*", "http://127.0.0.1:18202"]);
        let lo = ips(&["127.0.0.1"]);
        assert_eq!(
            admit("a.pin.test", &lo, &allow, ("http", 18202)).unwrap(),
            lo
        );
        for to in [("http", 18203), ("http", 80), ("https", 18202)] {
            let err = admit("a.pin.test", &lo, &allow, to).unwrap_err();
            assert!(matches!(err, ResolveError::Blocked { .. }), "{to:?}: {err}");
        }
        // Another loopback address, and the same one spelt inside IPv6: not the entry's.
        for other in ["127.0.0.2", "::ffff:127.0.0.1", "::1"] {
            let err = admit("a.pin.test", &ips(&[other]), &allow, ("http", 18202)).unwrap_err();
            assert!(
                matches!(err, ResolveError::Blocked { .. }),
                "{other}: {err}"
            );
        }
        // `localhost` stands for 127.0.0.1 and ::1, on its own port only.
        let allow = entries(&["http://*.pin.test:*", "http://localhost:18202"]);
        assert!(admit("a.pin.test", &lo, &allow, ("http", 18202)).is_ok());
        assert!(admit("a.pin.test", &lo, &allow, ("http", 18203)).is_err());
        assert!(admit("a.pin.test", &ips(&["127.0.0.2"]), &allow, ("http", 18202)).is_err());
        // An IPv6 entry: its address and port.
        let allow = entries(&["http://*.pin.test:*", "http://[::1]:18202"]);
        let v6 = ips(&["::1"]);
        assert!(admit("a.pin.test", &v6, &allow, ("http", 18202)).is_ok());
        assert!(admit("a.pin.test", &v6, &allow, ("http", 18203)).is_err());
        assert!(admit("a.pin.test", &lo, &allow, ("http", 18202)).is_err());
    }

    #[test]
    fn no_answer_is_a_dns_error() {
        assert!(matches!(
            admit("none.test", &[], &[], HTTP_8080),
            Err(ResolveError::Dns { .. })
        ));
    }
}
