//! The egress policy: which schemes, ports, hosts and addresses extensions
//! may call, what the operator allows beyond the defaults, and the words of
//! each refusal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One `--allow-egress` entry: a host name or address, and a port (without
/// one, the default ports 80 and 443).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    pub(super) fn matches(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port.map_or(port == 80 || port == 443, |p| p == port)
    }
}

impl FromStr for AllowedHost {
    type Err = String;

    /// `HOST`, `HOST:PORT`, `[IPv6]` or `[IPv6]:PORT`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || format!("`{s}` is not HOST or HOST:PORT (an IPv6 address in brackets)");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest.split_once(']').ok_or_else(bad)?;
            addr.parse::<Ipv6Addr>().map_err(|_| bad())?;
            match after {
                "" => (addr.to_owned(), None),
                p => (addr.to_owned(), Some(p.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else {
            match s.rsplit_once(':') {
                // An IPv6 address needs brackets: `::1` is not host `:` port 1.
                Some((h, _)) if h.contains(':') => return Err(bad()),
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (s.to_owned(), None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?),
            None => None,
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
        {
            return Err(bad());
        }
        Ok(AllowedHost {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl std::fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => f.write_str(&host),
        }
    }
}

/// What extensions may call: the default rules, hosts the operator allows
/// beyond them, and whether only those hosts may be called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<AllowedHost>,
    only_allowed: bool,
    pub(super) propagate_trace: bool,
}

impl EgressPolicy {
    /// Allows `host` (`HOST` or `HOST:PORT`) whatever its address, and that
    /// port besides 80 and 443.
    pub fn allow(mut self, host: &str) -> Result<Self, String> {
        self.allowed.push(host.parse()?);
        Ok(self)
    }

    /// Refuses every host the policy does not list.
    pub fn only_allowed(mut self, only: bool) -> Self {
        self.only_allowed = only;
        self
    }

    /// Sends the run's trace (`traceparent`, with a new span id) to the
    /// hosts the policy lists, so that the platform's own services join the
    /// caller's trace. Never to other hosts: a trace id is not a third
    /// party's business. Default: off.
    pub fn propagate_trace(mut self, propagate: bool) -> Self {
        self.propagate_trace = propagate;
        self
    }

    pub(super) fn listed(&self, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|a| a.matches(host, port))
    }

    pub(super) fn listed_host(&self, host: &str) -> bool {
        self.allowed.iter().any(|a| a.host == host)
    }

    /// Checks a URL before anything is sent: its scheme, port and, for an
    /// address written in the URL, the address.
    #[cfg(test)]
    pub(crate) fn check_url(&self, url: &url::Url) -> Result<(), String> {
        self.check_url_with(url, &[])
    }

    /// [`check_url`](Self::check_url) for a container the platform allowed
    /// `extra` hosts besides the policy's.
    pub(crate) fn check_url_with(
        &self,
        url: &url::Url,
        extra: &[AllowedHost],
    ) -> Result<(), String> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "egress refused: the scheme `{scheme}:` is not allowed (only http and https)"
            ));
        }
        let Some(host) = url.host_str() else {
            return Err("egress refused: the URL has no host".to_owned());
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(0);
        if self.listed(host, port) || extra.iter().any(|a| a.matches(host, port)) {
            return Ok(());
        }
        if self.only_allowed {
            return Err(format!(
                "egress refused: `{host}:{port}` is not on this host's allow list (--allow-egress)"
            ));
        }
        if port != 80 && port != 443 {
            return Err(format!(
                "egress refused: port {port} is not allowed (only 80 and 443 unless the operator allows `{host}:{port}`)"
            ));
        }
        if let Ok(ip) = host.parse::<IpAddr>()
            && let Some(why) = forbidden(ip)
        {
            return Err(refused_address(host, ip, why));
        }
        Ok(())
    }
}

pub(super) fn refused_address(host: &str, ip: IpAddr, why: &str) -> String {
    if host == ip.to_string() {
        format!("egress refused: {ip} is {why}")
    } else {
        format!("egress refused: `{host}` resolves to {ip}, which is {why}")
    }
}

/// Why an address may not be called by default, or `None` when it may.
pub(crate) fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => forbidden_v4(a),
        IpAddr::V6(a) => forbidden_v6(a),
    }
}

fn forbidden_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [o0, o1, ..] = a.octets();
    Some(match () {
        _ if o0 == 0 => "unspecified (0.0.0.0/8)",
        _ if o0 == 127 => "loopback (127.0.0.0/8)",
        _ if o0 == 10 || (o0 == 172 && (16..32).contains(&o1)) || (o0 == 192 && o1 == 168) => {
            "private (RFC 1918)"
        }
        _ if o0 == 169 && o1 == 254 => "link-local (169.254.0.0/16, cloud metadata included)",
        _ if o0 == 100 && (64..128).contains(&o1) => "shared address space (CGNAT, 100.64.0.0/10)",
        _ if (224..240).contains(&o0) => "multicast (224.0.0.0/4)",
        _ if o0 >= 240 => "reserved (240.0.0.0/4) or broadcast",
        _ if o0 == 192 && o1 == 0 && a.octets()[2] == 0 => {
            "IETF protocol assignments (192.0.0.0/24)"
        }
        _ if o0 == 198 && (o1 == 18 || o1 == 19) => "benchmarking (198.18.0.0/15)",
        _ => return None,
    })
}

fn forbidden_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_unspecified() {
        return Some("unspecified (::)");
    }
    if a.is_loopback() {
        return Some("loopback (::1)");
    }
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d),
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address.
    if let Some(v4) = a.to_ipv4_mapped() {
        return forbidden_v4(v4).map(|_| "an IPv4-mapped form of an address that is not allowed");
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if s[..6] == [0; 6] {
        return Some("an IPv4-compatible IPv6 address (::/96)");
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && forbidden_v4(embedded(s[6], s[7])).is_some() {
        return Some("a NAT64 form of an address that is not allowed");
    }
    if s[0] == 0x2002 && forbidden_v4(embedded(s[1], s[2])).is_some() {
        return Some("a 6to4 form of an address that is not allowed");
    }
    Some(match s[0] {
        x if x & 0xfe00 == 0xfc00 => "private (unique local, fc00::/7)",
        x if x & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        x if x & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        x if x & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ if s[0] == 0x2001 && s[1] == 0x0db8 => "documentation (2001:db8::/32)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> Option<&'static str> {
        forbidden(s.parse().unwrap())
    }

    #[test]
    fn the_operator_s_network_is_refused_in_every_spelling() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(refused(a).is_some(), "{a} was allowed");
        }
        for a in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(refused(a), None, "{a} was refused");
        }
        assert_eq!(
            refused("169.254.169.254"),
            Some("link-local (169.254.0.0/16, cloud metadata included)")
        );
    }

    fn check(policy: &EgressPolicy, url: &str) -> Result<(), String> {
        policy.check_url(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn urls_are_checked_for_scheme_port_and_written_addresses() {
        let p = EgressPolicy::default();
        assert!(check(&p, "https://api.example.com/x").is_ok());
        assert!(check(&p, "http://api.example.com:80/x").is_ok());
        let e = check(&p, "ftp://example.com/").unwrap_err();
        assert!(e.contains("scheme `ftp:`"), "{e}");
        let e = check(&p, "file:///etc/passwd").unwrap_err();
        assert!(e.contains("scheme `file:`"), "{e}");
        let e = check(&p, "https://example.com:8443/").unwrap_err();
        assert!(e.contains("port 8443"), "{e}");
        let e = check(&p, "http://169.254.169.254/latest/meta-data/").unwrap_err();
        assert!(e.contains("169.254.169.254 is link-local"), "{e}");
        let e = check(&p, "http://[::ffff:7f00:1]/").unwrap_err();
        assert!(e.contains("IPv4-mapped"), "{e}");
        // The WHATWG parser reads these spellings of 127.0.0.1 as an address.
        for url in ["http://2130706433/", "http://0x7f.1/", "http://127.1/"] {
            let e = check(&p, url).unwrap_err();
            assert!(e.contains("loopback"), "{url}: {e}");
        }
    }

    #[test]
    fn the_operator_allows_hosts_and_can_allow_only_them() {
        let p = EgressPolicy::default()
            .allow("127.0.0.1:9000")
            .unwrap()
            .allow("internal.example")
            .unwrap();
        assert!(check(&p, "http://127.0.0.1:9000/").is_ok());
        assert!(check(&p, "http://127.0.0.1:9001/").is_err());
        assert!(check(&p, "https://internal.example/").is_ok());
        assert!(check(&p, "https://internal.example:8443/").is_err());
        assert!(check(&p, "https://api.example.com/").is_ok());
        let only = p.only_allowed(true);
        let e = check(&only, "https://api.example.com/").unwrap_err();
        assert!(e.contains("not on this host's allow list"), "{e}");
        assert!(check(&only, "https://internal.example/").is_ok());
    }

    #[test]
    fn allow_entries_parse_or_say_why_not() {
        assert_eq!(
            "API.example.com:8080"
                .parse::<AllowedHost>()
                .unwrap()
                .to_string(),
            "api.example.com:8080"
        );
        assert_eq!(
            "[::1]:9000".parse::<AllowedHost>().unwrap().to_string(),
            "[::1]:9000"
        );
        assert_eq!("10.0.0.5".parse::<AllowedHost>().unwrap().port, None);
        for bad in ["", "host:0", "host:x", "[::1", "a b", "host:70000", "::1"] {
            let e = bad.parse::<AllowedHost>().unwrap_err();
            assert!(e.contains("is not HOST or HOST:PORT"), "{bad}: {e}");
        }
    }
}
