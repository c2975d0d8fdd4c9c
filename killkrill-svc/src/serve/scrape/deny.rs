//! `scrape.deny_networks`: addresses a scrape never connects to.
//!
//! The server fetches scrape targets from inside the network it runs in, so
//! a target is a way to reach what only the server can reach: the cloud
//! metadata services (169.254.169.254 on AWS, GCP, Azure and others,
//! `fd00:ec2::254` on AWS over IPv6, 100.100.100.200 on Alibaba Cloud) and
//! other link-local services. Their networks are denied by default
//! ([`DEFAULT_DENY_NETWORKS`]); loopback and private networks are not, as
//! exporters live there.
//!
//! The check is made on the addresses a host name resolves to, at every
//! connection, and the connection goes to the checked address: a name that
//! later resolves somewhere else (DNS rebinding) is checked again. An
//! IPv4-mapped IPv6 address (`::ffff:169.254.169.254`) is checked as the
//! IPv4 address it is. A target whose host is an address literal in a
//! denied network is refused at validation already.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::ScrapeError;

/// `scrape.deny_networks` when not set: the unspecified networks (`0.0.0.0`
/// connects to the local host), IPv4 and IPv6 link-local, and the metadata
/// addresses outside them.
pub const DEFAULT_DENY_NETWORKS: &[&str] = &[
    "0.0.0.0/8",
    "169.254.0.0/16",
    "100.100.100.200/32",
    "::/128",
    "fe80::/10",
    "fd00:ec2::254/128",
];

/// An IP network (`169.254.0.0/16`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// True when `ip` (an IPv4-mapped IPv6 address as its IPv4 address) is
    /// in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                same_prefix(u32::from(n).into(), u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                same_prefix(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The first `prefix` of `bits` bits of `n` and `a` are equal.
fn same_prefix(n: u128, a: u128, prefix: u8, bits: u32) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = bits - u32::from(prefix);
    (n >> shift) == (a >> shift)
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| {
            format!("{s:?} is not an IP address or network (write it like \"169.254.0.0/16\")")
        })?;
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Network { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The denied network holding `ip`, if any.
pub fn denied(deny: &[Network], ip: IpAddr) -> Option<Network> {
    deny.iter().find(|n| n.contains(ip)).copied()
}

/// The addresses `host_port` resolves to that no network of `deny` holds,
/// in resolver order (the caller tries each, as `TcpStream::connect` does
/// with a name).
///
/// # Errors
/// [`ScrapeError::Denied`] when every address is denied (naming one and its
/// network), [`ScrapeError::Down`] when the name does not resolve.
pub async fn resolve(host_port: &str, deny: &[Network]) -> Result<Vec<SocketAddr>, ScrapeError> {
    let addrs = tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| ScrapeError::Down(format!("resolving {host_port}: {e}")))?;
    let mut allowed = Vec::new();
    let mut refused = None;
    for a in addrs {
        match denied(deny, a.ip()) {
            None => allowed.push(a),
            Some(n) => refused = refused.or(Some((a.ip(), n))),
        }
    }
    if !allowed.is_empty() {
        return Ok(allowed);
    }
    Err(match refused {
        Some((ip, n)) => ScrapeError::Denied(format!(
            "{host_port} resolves to {ip}, in scrape.deny_networks ({n})"
        )),
        None => ScrapeError::Down(format!("{host_port} resolves to no address")),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_hold_their_addresses_only() {
        let link = net("169.254.0.0/16");
        assert!(link.contains(ip("169.254.169.254")));
        assert!(link.contains(ip("169.254.0.0")));
        assert!(link.contains(ip("169.254.255.255")));
        assert!(!link.contains(ip("169.255.0.0")));
        assert!(!link.contains(ip("169.253.255.255")));
        // IPv4-mapped IPv6 is the IPv4 address.
        assert!(link.contains(ip("::ffff:169.254.169.254")));
        assert!(!link.contains(ip("fe80::1")));
        let one = net("100.100.100.200");
        assert_eq!(one.to_string(), "100.100.100.200/32");
        assert!(one.contains(ip("100.100.100.200")));
        assert!(!one.contains(ip("100.100.100.201")));
        let v6 = net("fe80::/10");
        assert!(v6.contains(ip("fe80::1")));
        assert!(v6.contains(ip("febf:ffff::1")));
        assert!(!v6.contains(ip("fec0::1")));
        assert!(!v6.contains(ip("169.254.169.254")));
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn bad_networks_say_why() {
        for (s, want) in [
            ("169.254.0.0/33", "prefix length must be 0 to 32"),
            ("fe80::/129", "prefix length must be 0 to 128"),
            ("169.254.0.0/x", "prefix length"),
            ("metadata.google.internal", "not an IP address or network"),
            ("", "not an IP address"),
        ] {
            let e = s.parse::<Network>().unwrap_err();
            assert!(e.contains(want), "{s:?}: {e}");
        }
    }

    #[test]
    fn the_defaults_cover_the_metadata_services() {
        let deny: Vec<Network> = DEFAULT_DENY_NETWORKS.iter().map(|s| net(s)).collect();
        for a in [
            "169.254.169.254",
            "fd00:ec2::254",
            "100.100.100.200",
            "0.0.0.0",
            "::",
            "fe80::a9fe:a9fe",
            "::ffff:169.254.169.254",
        ] {
            assert!(denied(&deny, ip(a)).is_some(), "{a}");
        }
        for a in ["127.0.0.1", "::1", "10.0.0.7", "192.168.1.2", "8.8.8.8"] {
            assert!(denied(&deny, ip(a)).is_none(), "{a}");
        }
    }

    #[tokio::test]
    async fn resolving_skips_denied_addresses() {
        let deny = [net("127.0.0.0/8")];
        let e = resolve("127.0.0.1:9100", &deny).await.unwrap_err();
        assert_eq!(
            e,
            ScrapeError::Denied(
                "127.0.0.1:9100 resolves to 127.0.0.1, in scrape.deny_networks (127.0.0.0/8)"
                    .into()
            )
        );
        assert_eq!(
            resolve("[::1]:9100", &deny).await.unwrap(),
            vec!["[::1]:9100".parse::<SocketAddr>().unwrap()]
        );
        // A name with allowed and denied addresses keeps only the allowed.
        let v4 = [net("127.0.0.0/8")];
        for a in resolve("localhost:9100", &v4).await.unwrap_or_default() {
            assert!(!a.ip().to_canonical().is_ipv4(), "{a}");
        }
    }
}
