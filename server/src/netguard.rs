//! Where the server's own outgoing requests (webhooks) may go: public
//! addresses only, unless an administrator allows a network. Checked on the
//! addresses a name resolves to, at connect time (a resolver for reqwest),
//! so a name that resolves to a public address when the hook is saved and
//! to `127.0.0.1` when it is sent (DNS rebinding) is still refused.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// A network in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Why an address is not public, or None when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            // IPv4-mapped and NAT64 addresses reach the IPv4 address inside.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_kind(v4);
            }
            let s = v6.segments();
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return v4_kind(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("a private (unique local) address")
            } else if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 {
                Some("a link-local address")
            } else if s[0] == 0x2001 && s[1] == 0xdb8 {
                Some("a documentation address")
            } else {
                None
            }
        }
    }
}

fn v4_kind(v4: Ipv4Addr) -> Option<&'static str> {
    let o = v4.octets();
    if v4.is_loopback() {
        Some("a loopback address")
    } else if v4.is_private() {
        Some("a private address")
    } else if v4.is_link_local() {
        Some("a link-local address")
    } else if v4.is_unspecified() || o[0] == 0 {
        Some("the unspecified address")
    } else if v4.is_broadcast() || v4.is_multicast() || o[0] >= 240 {
        Some("a broadcast, multicast or reserved address")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("a shared (carrier-grade NAT) address")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("an IETF protocol address")
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        Some("a benchmarking address")
    } else {
        None
    }
}

/// The outgoing address policy: public addresses, plus allowed networks.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allowed: Vec<Network>,
}

/// An address the policy refuses; its text is what users see.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl Policy {
    /// From `webhook_allowed_networks` (validated by the config).
    pub fn new(allowed: &[String]) -> Policy {
        Policy {
            allowed: allowed.iter().filter_map(|n| Network::parse(n)).collect(),
        }
    }

    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        match non_public(ip) {
            Some(kind) if !self.allowed.iter().any(|n| n.contains(ip)) => Err(Refused(format!(
                "refused to connect to {ip}: it is {kind} (an administrator can allow it with webhook_allowed_networks)"
            ))),
            _ => Ok(()),
        }
    }

    /// A resolver for reqwest that drops refused addresses and fails when
    /// none is left.
    pub fn resolver(&self) -> Arc<Resolver> {
        Arc::new(Resolver(self.clone()))
    }
}

/// The policy as reqwest's resolver.
pub struct Resolver(Policy);

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> = match refused {
                    Some(r) => Box::new(Refused(format!("{host}: {r}"))),
                    None => format!("{host} has no address").into(),
                };
                return Err(e);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The `Refused` somewhere in an error's chain of sources.
pub fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.0.clone());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_recognised() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "224.0.0.1",
        ] {
            assert!(non_public(ip(a)).is_some(), "{a}");
        }
        for a in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(non_public(ip(a)).is_none(), "{a}");
        }
    }

    #[test]
    fn allowed_networks_open_a_range() {
        let p = Policy::new(&["127.0.0.0/8".into(), "fd00::/8".into()]);
        assert!(p.check(ip("127.0.0.1")).is_ok());
        assert!(p.check(ip("fd12::1")).is_ok());
        assert!(p.check(ip("10.0.0.1")).is_err());
        let none = Policy::new(&[]);
        let e = none.check(ip("169.254.169.254")).unwrap_err();
        assert!(e.0.contains("link-local"), "{e}");
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("nonsense").is_none());
        assert!(Network::parse("192.168.1.7")
            .unwrap()
            .contains(ip("192.168.1.7")));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }
}
