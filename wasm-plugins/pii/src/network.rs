//! IP addresses that can identify someone: public, routable unicast addresses. Private,
//! loopback, link-local, documentation and multicast ranges identify no one.

use crate::{embedded, Hit, Scope};
use forge_plugin_sdk::LazyRegex;
use std::net::{Ipv4Addr, Ipv6Addr};

pub fn prepare() {
    IPV4.compile_now();
    IPV6.compile_now();
}

static IPV4: LazyRegex = LazyRegex::new(r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}");
static IPV6: LazyRegex = LazyRegex::new(r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}");

const VERSION_WORDS: [&str; 4] = ["version", "v", "release", "build"];

pub fn ipv4(scope: &Scope, hits: &mut Vec<Hit>) {
    let text = scope.text();
    if !scope.shapes().ipv4 {
        return;
    }
    for m in IPV4.find_iter(text) {
        let Ok(ip) = m.as_str().parse::<Ipv4Addr>() else { continue };
        if embedded(text, &m.range(), b"./-") || version_like(text, m.start()) || !routable_v4(ip) {
            continue;
        }
        hits.push(Hit { rule: "pii.ipv4", range: m.range(), confidence: 0.8, what: "public IPv4 address" });
    }
}

/// `v1.2.3.4` or `version 10.0.19045.1`: a version, not an address.
fn version_like(text: &str, start: usize) -> bool {
    let before = text[..start].trim_end().to_ascii_lowercase();
    VERSION_WORDS.iter().any(|w| before.ends_with(w))
}

fn routable_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || a == 255
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19)))
}

pub fn ipv6(scope: &Scope, hits: &mut Vec<Hit>) {
    let text = scope.text();
    if !scope.shapes().ipv6 {
        return;
    }
    for m in IPV6.find_iter(text) {
        let Ok(ip) = m.as_str().parse::<Ipv6Addr>() else { continue };
        if embedded(text, &m.range(), b":.") || !routable_v6(ip) {
            continue;
        }
        hits.push(Hit { rule: "pii.ipv6", range: m.range(), confidence: 0.8, what: "public IPv6 address" });
    }
}

/// Global unicast (2000::/3) outside the documentation prefix 2001:db8::/32.
fn routable_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    (s[0] & 0xe000) == 0x2000 && !(s[0] == 0x2001 && s[1] == 0x0db8)
}

#[cfg(test)]
mod tests {
    use crate::tests::ids;

    #[test]
    fn public_addresses_are_found() {
        assert_eq!(ids(r#"{"t":"login from 81.2.69.160 at 10:22"}"#), ["pii.ipv4"]);
        assert_eq!(ids(r#"{"t":"client 2a00:1450:4001:82b::200e connected"}"#), ["pii.ipv6"]);
    }

    #[test]
    fn private_documentation_versions_and_times_are_not() {
        for t in [
            "10.0.0.12",
            "192.168.1.1",
            "127.0.0.1",
            "203.0.113.7",
            "version 10.0.19045.3693",
            "Chrome/120.0.6099.109",
            "255.255.255.0",
            "2001:db8::1",
            "fe80::1",
            "::1",
            "10:22:04",
            "00:1a:2b:3c:4d:5e",
            "1.2.3.4.5",
        ] {
            assert!(ids(&format!(r#"{{"t":"{t}"}}"#)).is_empty(), "{t}");
        }
    }
}
