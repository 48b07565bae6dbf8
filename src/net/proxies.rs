//! Which client a request comes from when reverse proxies sit in front: `X-Forwarded-For` and
//! `Forwarded` are believed only when the TCP peer is on the `security.trusted_proxies` list, and
//! then only as far back as the hops are trusted proxies themselves (the right-most address that
//! is not a trusted proxy is the client). Anyone else's forwarding headers are ignored, so a
//! client cannot pick its own address for rate limits, key IP allow-lists, the `/metrics`
//! loopback rule or the logs.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// A `security.trusted_proxies` entry that is neither an address nor a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP address or CIDR network")]
pub struct BadProxyEntry(pub String);

/// The trusted proxies (CIDR networks).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// From config entries: CIDR networks or single addresses.
    pub fn new(entries: &[String]) -> Result<TrustedProxies, BadProxyEntry> {
        let mut nets = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                nets.push(IpNet::from(ip));
            } else {
                return Err(BadProxyEntry(entry.to_owned()));
            }
        }
        Ok(TrustedProxies { nets })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request from TCP peer `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if self.nets.is_empty() || !self.trusts(peer) {
            return peer;
        }
        let hops = forwarded_for(headers);
        let mut client = peer;
        // Walk from the nearest hop back while the hops are our own proxies.
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = canonical(*ip);
                    if !self.trusts(client) {
                        return client;
                    }
                }
                // `unknown` or an obfuscated identifier: nothing further back can be believed.
                None => return client,
            }
        }
        client
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The forwarding chain, nearest client first as sent (`Forwarded: for=` when present, else
/// `X-Forwarded-For`); `None` for an entry that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(value.trim().trim_matches('"')))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| parse_node(s.trim()))
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80` or a bare IPv6 address.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, _port) = node.rsplit_once(':')?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarding_headers_are_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::new(&[]).unwrap();
        let proxies = TrustedProxies::new(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        let peer: IpAddr = "10.1.1.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        let xff = headers(&[("x-forwarded-for", "127.0.0.1, 203.0.113.5, 10.2.2.2")]);
        assert_eq!(none.client_ip(peer, &xff), peer);
        assert_eq!(proxies.client_ip(stranger, &xff), stranger);
        // The right-most untrusted hop, not the left-most claim.
        assert_eq!(
            proxies.client_ip(peer, &xff),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        let fwd = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(
            proxies.client_ip("::1".parse().unwrap(), &fwd),
            "2001:db8:cafe::17".parse::<IpAddr>().unwrap()
        );
        let unknown = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(proxies.client_ip(peer, &unknown), peer);
        assert!(TrustedProxies::new(&["nonsense".into()]).is_err());
    }
}
