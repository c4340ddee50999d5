//! Where the server may send. A webhook URL or a push endpoint is chosen by a user but fetched by
//! the server, from inside its network: unless the configuration allows it, targets on loopback,
//! private, link-local and other non-public addresses are refused, when the target is registered
//! (the literal address, or every address its host name resolves to then) and again on each
//! request, on the addresses actually connected to (a name may resolve elsewhere later).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The longest target URL.
pub const MAX_URL_LEN: usize = 2048;
/// How long resolving a host name at creation may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A target the rules refuse, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RefusedTarget {
    /// The host name that resolved to the address; `None` for a literal address.
    pub name: Option<String>,
    pub address: IpAddr,
    pub kind: &'static str,
}

impl std::fmt::Display for RefusedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (address, kind) = (self.address, self.kind);
        match &self.name {
            Some(name) => write!(f, "{name} resolves to {address}, a {kind} address")?,
            None => write!(f, "{address} is a {kind} address")?,
        }
        f.write_str("; only public addresses may be reached")
    }
}

impl std::error::Error for RefusedTarget {}

/// What kind of non-public address `ip` is; `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => non_public_v4(ip),
        IpAddr::V6(ip) => match embedded_v4(ip) {
            Some(v4) => non_public_v4(v4),
            None => non_public_v6(ip),
        },
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    Some(match () {
        // 0.0.0.0/8: "this network"; 0.0.0.0 itself reaches the local host.
        () if a == 0 => "unspecified",
        () if ip.is_loopback() => "loopback",
        () if ip.is_private() => "private",
        () if ip.is_link_local() => "link-local",
        // 100.64.0.0/10: carrier-grade NAT, private to a provider's network.
        () if a == 100 && (64..128).contains(&b) => "shared",
        () if ip.is_multicast() => "multicast",
        // 240.0.0.0/4 and the broadcast address.
        () if a >= 240 => "reserved",
        () => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    Some(match () {
        () if ip.is_unspecified() => "unspecified",
        () if ip.is_loopback() => "loopback",
        () if ip.is_multicast() => "multicast",
        () if ip.is_unique_local() => "unique-local",
        () if ip.is_unicast_link_local() => "link-local",
        // fec0::/10, deprecated site-local: private in the same way.
        () if ip.segments()[0] & 0xffc0 == 0xfec0 => "site-local",
        () => return None,
    })
}

/// The IPv4 address an IPv6 address carries, where connecting to it reaches that IPv4
/// address: v4-mapped (`::ffff:a.b.c.d`), v4-compatible (`::a.b.c.d`, deprecated), NAT64
/// (`64:ff9b::/96`) and 6to4 (`2002::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let v4 = |hi: u16, lo: u16| Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    match ip.segments() {
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => v4(hi, lo),
        [0x2002, hi, lo, ..] => v4(hi, lo),
        _ => None,
    }
}

/// Checks a target URL as it is registered: an absolute `http` or `https` URL with a host, whose
/// address (literal, or every one its name resolves to now) is public unless `allow_private`.
/// Answers the URL as it will be stored, or why it is refused, naming the request's `field`.
pub async fn check_new_url(raw: &str, field: &str, allow_private: bool) -> Result<Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!("{field}: at most {MAX_URL_LEN} characters"));
    }
    let url = Url::parse(raw).map_err(|e| format!("{field}: not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{field}: must be an http:// or https:// URL"));
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(format!("{field}: must name a host"));
    };
    if allow_private {
        return Ok(url);
    }
    if let Some(refused) = literal_refusal(&url) {
        return Err(format!("{field}: {refused}"));
    }
    if url
        .host()
        .is_some_and(|h| matches!(h, url::Host::Domain(_)))
    {
        let port = url.port_or_known_default().unwrap_or(80);
        let addresses = tokio::time::timeout(RESOLVE_TIMEOUT, resolve(host, port))
            .await
            .map_err(|_| format!("{field}: resolving {host} timed out"))?
            .map_err(|refused| format!("{field}: {refused}"))?;
        if addresses.is_empty() {
            return Err(format!("{field}: {host} does not resolve"));
        }
    }
    Ok(url)
}

/// The refusal of a URL whose host is a literal address that is not public. Connecting to a
/// literal address resolves nothing, so a delivery checks it here.
pub fn literal_refusal(url: &Url) -> Option<RefusedTarget> {
    let address = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    non_public(address).map(|kind| RefusedTarget {
        name: None,
        address,
        kind,
    })
}

/// Every address `host` resolves to, or the refusal of the first that is not public.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| ResolveError::NoAddress(host.to_owned()))?
        .collect();
    for address in &addresses {
        if let Some(kind) = non_public(address.ip()) {
            return Err(ResolveError::Refused(RefusedTarget {
                name: Some(host.to_owned()),
                address: address.ip(),
                kind,
            }));
        }
    }
    Ok(addresses)
}

#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("{0} does not resolve")]
    NoAddress(String),
    #[error(transparent)]
    Refused(RefusedTarget),
}

/// The resolver of the outbound HTTP client: a name resolves only when every address it
/// has is public, so the connection goes to a checked address. (A name with one non-public
/// address among public ones is refused whole: it is most likely pointed there on purpose.)
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = match resolve(&host, 0).await {
                Ok(addresses) => addresses,
                Err(ResolveError::Refused(refused)) => return Err(Box::new(refused) as _),
                Err(e) => return Err(Box::new(e) as _),
            };
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// The refusal somewhere in an error's chain of causes, if the error is one.
pub fn refusal_in<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e RefusedTarget> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(refused) = error.downcast_ref::<RefusedTarget>() {
            return Some(refused);
        }
        cause = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(address: &str) -> Option<&'static str> {
        non_public(address.parse().expect("an address"))
    }

    #[test]
    fn non_public_addresses_are_named() {
        for (address, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("100.64.0.1", "shared"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "unique-local"),
            ("fc00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:c0a8:0101::1", "private"),
        ] {
            assert_eq!(kind(address), Some(expected), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(kind(address), None, "{address}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_as_targets_are_registered() {
        for refused in [
            "http://127.0.0.1:1/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:7f00:1]/",
            "http://2130706433/",
            "http://localhost:8080/hook",
            "ftp://example.com/",
            "/relative",
            "http:///nohost",
        ] {
            assert!(
                check_new_url(refused, "url", false).await.is_err(),
                "{refused}"
            );
        }
        let allowed = check_new_url("http://127.0.0.1:9/hook", "url", true).await;
        assert_eq!(
            allowed.map(String::from),
            Ok("http://127.0.0.1:9/hook".into())
        );
        assert!(
            check_new_url("https://93.184.216.34/hook", "url", false)
                .await
                .is_ok()
        );
        let long = format!("https://93.184.216.34/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_new_url(&long, "url", false).await.is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_non_public_addresses() {
        let name: Name = "localhost".parse().expect("a name");
        let refused = PublicOnly.resolve(name).await.err().expect("refused");
        let found = refusal_in(refused.as_ref()).expect("a refusal");
        assert_eq!(found.kind, "loopback");
    }
}
