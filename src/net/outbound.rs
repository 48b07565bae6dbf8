//! Requests to addresses a user chose (task `callback_url`s, input file URLs) must not reach our
//! own network: loopback, private, link-local, CGNAT, multicast and other non-public ranges are
//! refused — on the URL itself, on every DNS answer at connect time (so a name that resolves to a
//! private address, or re-resolves to one later, is caught), and redirects are not followed.
//! Hosts or networks on the `outbound_allow` list are exempt (tests, an intranet callback).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What may be reached although it is not public.
#[derive(Debug, Default)]
struct AllowList {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

impl AllowList {
    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
            || host
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.nets.iter().any(|n| n.contains(&ip)))
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

/// Whether `ip` is a public unicast address: one a request on a user's behalf may go to.
///
/// Every IPv6 form that carries an IPv4 address is judged by that address: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`), 6to4
/// (`2002:AABB:CCDD::/48`) and Teredo (`2001:0::/32`, whose client address is the last 32 bits
/// XOR-ed with ones; its server address is checked too). The local-use NAT64 prefix
/// `64:ff9b:1::/48` may embed its IPv4 address anywhere, so it is refused whole. Otherwise only
/// global unicast (`2000::/3`) minus the IETF special-purpose ranges (RFC 6890 and successors)
/// is public for IPv6, and every IPv4 special-purpose range is refused.
pub fn is_public_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(v6) {
            Embedded::One(v4) => is_public_v4(v4),
            Embedded::Teredo { server, client } => is_public_v4(server) && is_public_v4(client),
            Embedded::None => is_public_v6(v6),
        },
    }
}

/// The IPv4 address(es) an IPv6 address stands for.
enum Embedded {
    None,
    One(Ipv4Addr),
    Teredo { server: Ipv4Addr, client: Ipv4Addr },
}

fn embedded_ipv4(v6: Ipv6Addr) -> Embedded {
    let bits = u128::from(v6);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // ::ffff:0:0/96 (mapped) and ::/96 (compatible; :: and ::1 are judged as IPv6 below).
    if bits >> 32 == 0xffff {
        return Embedded::One(low32);
    }
    if bits >> 32 == 0 && bits > 1 {
        return Embedded::One(low32);
    }
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Embedded::One(low32);
    }
    // 6to4 2002::/16 (RFC 3056): the IPv4 address is bits 16..48.
    if bits >> 112 == 0x2002 {
        return Embedded::One(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    // Teredo 2001:0::/32 (RFC 4380): server in bits 32..64, client XOR-ed in the last 32 bits.
    if bits >> 96 == 0x2001_0000 {
        return Embedded::Teredo {
            server: Ipv4Addr::from(((bits >> 64) & 0xffff_ffff) as u32),
            client: Ipv4Addr::from(!((bits & 0xffff_ffff) as u32)),
        };
    }
    Embedded::None
}

/// `(network, prefix length)` as integers.
const fn within_v4(ip: u32, net: u32, len: u32) -> bool {
    len == 0 || (ip ^ net) >> (32 - len) == 0
}

const fn within_v6(ip: u128, net: u128, len: u32) -> bool {
    len == 0 || (ip ^ net) >> (128 - len) == 0
}

/// IPv4 special-purpose ranges (IANA registry) that are not globally reachable, plus multicast
/// and the reserved 240/4 (incl. broadcast).
const V4_BLOCKED: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 shared (CGNAT)
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local (cloud metadata)
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 TEST-NET-1
    (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay anycast (deprecated)
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113.0/24 TEST-NET-3
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, 255.255.255.255
];

/// IPv6 special-purpose ranges inside 2000::/3 that are not globally reachable.
const V6_BLOCKED: &[(u128, u32)] = &[
    (0x2001_0000_0000_0000_0000_0000_0000_0000, 23), // 2001::/23 IETF protocol assignments
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // 2001:db8::/32 documentation
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // 3fff::/20 documentation (RFC 9637)
];

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let ip = u32::from(v4);
    !V4_BLOCKED.iter().any(|&(net, len)| within_v4(ip, net, len))
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    let ip = u128::from(v6);
    // Only global unicast 2000::/3 is public: this leaves out ::/128, ::1, 64:ff9b:1::/48,
    // 100::/64 (discard), fc00::/7, fe80::/10, fec0::/10, ff00::/8 and every unassigned range.
    within_v6(ip, 0x2000_0000_0000_0000_0000_0000_0000_0000, 3)
        && !V6_BLOCKED.iter().any(|&(net, len)| within_v6(ip, net, len))
}

/// An `outbound_allow` entry that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a host name, IP address or CIDR network")]
pub struct BadAllowEntry(pub String);

/// Why a user-given URL is refused (the text completes "callback_url …" for the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("is not a valid URL")]
    NotAUrl,
    #[error("must be an http:// or https:// URL")]
    Scheme,
    #[error("must not carry credentials")]
    Credentials,
    #[error("has no host")]
    NoHost,
    #[error("host {0} cannot be resolved")]
    Unresolved(String),
    #[error("host {0} is a private or local address; only public addresses are reachable")]
    Private(String),
}

/// The guard: checks URLs and builds HTTP clients that cannot be steered inside.
#[derive(Debug, Clone, Default)]
pub struct OutboundGuard {
    allow: Arc<AllowList>,
}

impl OutboundGuard {
    /// From `outbound_allow` entries: host names, IP addresses or CIDR networks.
    pub fn new(entries: &[String]) -> Result<OutboundGuard, BadAllowEntry> {
        let mut allow = AllowList::default();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                allow.nets.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if entry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            {
                allow.hosts.push(entry.to_ascii_lowercase());
            } else {
                return Err(BadAllowEntry(entry.to_owned()));
            }
        }
        Ok(OutboundGuard {
            allow: Arc::new(allow),
        })
    }

    /// Check a user-given URL: http(s), and every address its host resolves to is public
    /// (or allow-listed). The error says why, for the client.
    pub async fn check_url(&self, url: &str) -> Result<(), UrlRefused> {
        let parsed = reqwest::Url::parse(url).map_err(|_| UrlRefused::NotAUrl)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(UrlRefused::Scheme);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(UrlRefused::Credentials);
        }
        let host = parsed.host_str().ok_or(UrlRefused::NoHost)?.to_owned();
        if self.allow.allows_host(&host) {
            return Ok(());
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|_| UrlRefused::Unresolved(host.clone()))?
                .map(|a| a.ip())
                .collect(),
        };
        if addresses.is_empty() {
            return Err(UrlRefused::Unresolved(host));
        }
        match addresses
            .iter()
            .find(|ip| !is_public_unicast(**ip) && !self.allow.allows_ip(**ip))
        {
            Some(_) => Err(UrlRefused::Private(host)),
            None => Ok(()),
        }
    }

    /// An HTTP client for user-given URLs: DNS answers are filtered through the guard, redirects
    /// are not followed. (Literal-IP URLs skip DNS: check them with [`Self::check_url`] first.)
    pub fn client(&self, builder: reqwest::ClientBuilder) -> reqwest::Result<reqwest::Client> {
        builder
            .dns_resolver(Arc::new(GuardedResolver {
                allow: self.allow.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .build()
    }
}

/// A resolver that drops non-public answers (and fails when none is left).
struct GuardedResolver {
    allow: Arc<AllowList>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let host_allowed = allow.allows_host(&host);
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| host_allowed || is_public_unicast(a.ip()) || allow.allows_ip(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(format!("{host} resolves only to private or local addresses").into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public_unicast(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public_unicast(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_ipv4_are_judged_by_that_address() {
        for private in [
            "::127.0.0.1",            // IPv4-compatible
            "::ffff:169.254.169.254", // mapped
            "64:ff9b::a9fe:a9fe",     // NAT64 of 169.254.169.254
            "64:ff9b::7f00:1",        // NAT64 of 127.0.0.1
            "64:ff9b::a00:1",         // NAT64 of 10.0.0.1
            "64:ff9b:1::808:808",     // local-use NAT64: refused whole
            "2002:7f00:1::1",         // 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::",       // 6to4 of 169.254.169.254
            "2002:c0a8:101::1",       // 6to4 of 192.168.1.1
            // Teredo: server 8.8.8.8 (public), client 127.0.0.1 XOR ones = 80ff:fffe.
            "2001:0:808:808::80ff:fffe",
            // Teredo: client 169.254.169.254 XOR ones = 5601:5601.
            "2001:0:808:808::5601:5601",
            // Teredo with a private server.
            "2001:0:a00:1::f7f7:f7f7",
            // Other IPv6 special-purpose ranges.
            "100::1",
            "2001:db8::1",
            "2001:2::1",
            "2001:10::1",
            "3fff::1",
            "fec0::1",
            "ff02::1",
            "5f00::1",
            // IPv4 special-purpose ranges.
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public_unicast(private.parse().unwrap()), "{private}");
        }
        for public in [
            "::8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:808:808::f7f7:f7f7", // Teredo, client 8.8.8.8
            "2400:3200::1",
            "93.184.216.34",
        ] {
            assert!(is_public_unicast(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn urls_with_embedded_private_ipv4_are_refused_before_connecting() {
        // A listener that would see any connection attempt to loopback.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let guard = OutboundGuard::new(&[]).unwrap();
        for host in [
            "[::127.0.0.1]",
            "[::ffff:127.0.0.1]",
            "[64:ff9b::7f00:1]",
            "[64:ff9b::a9fe:a9fe]",
            "[2002:7f00:1::1]",
            "[2001:0:808:808::80ff:fffe]",
        ] {
            let url = format!("http://{host}:{port}/hook");
            assert!(guard.check_url(&url).await.is_err(), "{url}");
        }
        assert!(
            listener.accept().is_err(),
            "no connection reached the listener"
        );
    }

    #[tokio::test]
    async fn urls_to_local_addresses_are_refused_unless_allowed() {
        let guard = OutboundGuard::new(&[]).unwrap();
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost/x",
            "http://10.0.0.5/x",
            "http://0x7f000001/x",
            "http://2130706433/x",
            "ftp://example.com/x",
            "http://user:pw@example.com/x",
            "not a url",
        ] {
            assert!(guard.check_url(url).await.is_err(), "{url}");
        }
        let guard = OutboundGuard::new(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        assert!(guard.check_url("http://127.0.0.1:9/hook").await.is_ok());
        assert!(guard.check_url("http://10.9.8.7/x").await.is_ok());
        assert!(guard.check_url("http://192.168.0.1/x").await.is_err());
        assert!(OutboundGuard::new(&["bad host!".into()]).is_err());
    }

    #[tokio::test]
    async fn the_guarded_client_does_not_connect_to_local_names() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = OutboundGuard::new(&[])
            .unwrap()
            .client(reqwest::Client::builder())
            .unwrap();
        let err = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_connect() || err.is_request(), "{err}");
    }
}
