//! Requests to addresses a user chose (task `callback_url`s, input file URLs) must not reach our
//! own network: loopback, private, link-local, CGNAT, multicast and other non-public ranges are
//! refused — on the URL itself, on every DNS answer at connect time (so a name that resolves to a
//! private address, or re-resolves to one later, is caught), and redirects are not followed.
//! Hosts or networks on the `outbound_allow` list are exempt (tests, an intranet callback).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Non-public networks (IANA special-purpose registries, IPv4 and IPv6).
const BLOCKED: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

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

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match ip {
        // IPv4-mapped and -compatible IPv6 addresses are judged as the IPv4 address they carry.
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    };
    !BLOCKED
        .iter()
        .filter_map(|net| net.parse::<IpNet>().ok())
        .any(|net| net.contains(&ip))
}

/// The guard: checks URLs and builds HTTP clients that cannot be steered inside.
#[derive(Debug, Clone, Default)]
pub struct OutboundGuard {
    allow: Arc<AllowList>,
}

impl OutboundGuard {
    /// From `outbound_allow` entries: host names, IP addresses or CIDR networks.
    pub fn new(entries: &[String]) -> Result<OutboundGuard, String> {
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
                return Err(format!(
                    "`{entry}` is not a host name, IP address or CIDR network"
                ));
            }
        }
        Ok(OutboundGuard {
            allow: Arc::new(allow),
        })
    }

    /// Check a user-given URL: http(s), and every address its host resolves to is public
    /// (or allow-listed). The error says why, for the client.
    pub async fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| "is not a valid URL".to_owned())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not carry credentials".into());
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| "has no host".to_owned())?
            .to_owned();
        if self.allow.allows_host(&host) {
            return Ok(());
        }
        let port = parsed.port_or_known_default().unwrap_or(443);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<IpAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|_| format!("host {host} cannot be resolved"))?
                .map(|a| a.ip())
                .collect(),
        };
        if addresses.is_empty() {
            return Err(format!("host {host} cannot be resolved"));
        }
        match addresses
            .iter()
            .find(|ip| !is_public(**ip) && !self.allow.allows_ip(**ip))
        {
            Some(_) => Err(format!(
                "host {host} is a private or local address; only public addresses are reachable"
            )),
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
                .filter(|a| host_allowed || is_public(a.ip()) || allow.allows_ip(a.ip()))
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
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
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
