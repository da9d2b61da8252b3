//! Which IP addresses a delivery may reach. Webhook URLs come from tenants, so by
//! default hookrelay refuses to connect to anything that is not a public unicast
//! address: otherwise a webhook could probe the operator's private network.
//!
//! The refused blocks are the IANA IPv4 and IPv6 Special-Purpose Address Registries
//! (RFC 6890, RFC 8190), entry by entry:
//! <https://www.iana.org/assignments/iana-ipv4-special-registry/> and
//! <https://www.iana.org/assignments/iana-ipv6-special-registry/>. Every entry whose
//! "Globally Reachable" is False or N/A is refused, and so are the few globally
//! reachable ones (anycast service addresses, AS112 DNS sinks, AMT relays, ORCHIDv2 and
//! drone identifiers): none of them is a place a webhook receiver lives, so refusing
//! them costs nothing and keeps the rule simple. Multicast, the deprecated IPv6
//! site-local and IPv4-compatible blocks, and IPv6 outside global unicast space are
//! refused too. Blocks that carry an IPv4 address (IPv4-mapped, NAT64's well-known
//! prefix, 6to4) are judged by the IPv4 address they lead to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// Whether `ip` is a public unicast address that deliveries may reach by default.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !REFUSED_V4.iter().any(|(net, _)| net.contains(&ip))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some((_, _, embedded)) = CARRYING_V4.iter().find(|(net, ..)| net.contains(&ip)) {
        return is_public_v4(embedded(ip));
    }
    GLOBAL_UNICAST_V6.contains(&ip) && !REFUSED_V6.iter().any(|(net, _)| net.contains(&ip))
}

/// IPv4 blocks deliveries may not reach, with the registry's names.
pub const REFUSED_V4: &[(Ipv4Net, &str)] = &[
    (v4([0, 0, 0, 0], 8), "\"This network\""),
    (v4([0, 0, 0, 0], 32), "\"This host on this network\""),
    (v4([10, 0, 0, 0], 8), "Private-Use"),
    (v4([100, 64, 0, 0], 10), "Shared Address Space"),
    (v4([127, 0, 0, 0], 8), "Loopback"),
    (v4([169, 254, 0, 0], 16), "Link Local"),
    (v4([172, 16, 0, 0], 12), "Private-Use"),
    // Refused whole, though two of its entries (.9 and .10) are globally reachable.
    (v4([192, 0, 0, 0], 24), "IETF Protocol Assignments"),
    (v4([192, 0, 0, 0], 29), "IPv4 Service Continuity Prefix"),
    (v4([192, 0, 0, 8], 32), "IPv4 dummy address"),
    (v4([192, 0, 0, 9], 32), "Port Control Protocol Anycast"),
    (v4([192, 0, 0, 10], 32), "Traversal Using Relays around NAT Anycast"),
    (v4([192, 0, 0, 170], 32), "NAT64/DNS64 Discovery"),
    (v4([192, 0, 0, 171], 32), "NAT64/DNS64 Discovery"),
    (v4([192, 0, 2, 0], 24), "Documentation (TEST-NET-1)"),
    (v4([192, 31, 196, 0], 24), "AS112-v4"),
    (v4([192, 52, 193, 0], 24), "AMT"),
    (v4([192, 88, 99, 0], 24), "Deprecated (6to4 Relay Anycast)"),
    (v4([192, 88, 99, 2], 32), "6a44-relay anycast address"),
    (v4([192, 168, 0, 0], 16), "Private-Use"),
    (v4([192, 175, 48, 0], 24), "Direct Delegation AS112 Service"),
    (v4([198, 18, 0, 0], 15), "Benchmarking"),
    (v4([198, 51, 100, 0], 24), "Documentation (TEST-NET-2)"),
    (v4([203, 0, 113, 0], 24), "Documentation (TEST-NET-3)"),
    (v4([240, 0, 0, 0], 4), "Reserved"),
    (v4([255, 255, 255, 255], 32), "Limited Broadcast"),
    // Not in the special-purpose registry: the IPv4 Multicast Address Space Registry.
    (v4([224, 0, 0, 0], 4), "Multicast"),
];

/// Where an IPv6 address keeps the IPv4 address it carries.
pub type EmbeddedV4 = fn(Ipv6Addr) -> Ipv4Addr;

/// IPv6 blocks that carry an IPv4 address, and how to find it: an address in one of
/// them is as reachable as the IPv4 address it leads to.
pub const CARRYING_V4: &[(Ipv6Net, &str, EmbeddedV4)] = &[
    (v6([0, 0, 0, 0, 0, 0xffff], 96), "IPv4-mapped Address", low_32_bits),
    (v6([0x64, 0xff9b], 96), "IPv4-IPv6 Translat.", low_32_bits),
    (v6([0x2002], 16), "6to4", bits_16_to_48),
];

/// The only IPv6 space allocated for global unicast (the IANA IPv6 Address Space
/// registry); anything outside it, and outside [`CARRYING_V4`], is refused.
pub const GLOBAL_UNICAST_V6: Ipv6Net = v6([0x2000], 3);

/// IPv6 blocks deliveries may not reach, with the registry's names. Those outside
/// [`GLOBAL_UNICAST_V6`] are refused by that rule already; they are listed so that
/// the table reads as the registry does.
pub const REFUSED_V6: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "Loopback Address"),
    (v6([0], 128), "Unspecified Address"),
    (v6([0x64, 0xff9b, 1], 48), "IPv4-IPv6 Translat."),
    (v6([0x100], 64), "Discard-Only Address Block"),
    (v6([0x100, 0, 0, 1], 64), "Dummy IPv6 Prefix"),
    // Refused whole: its globally reachable entries below are anycast service
    // addresses, AMT relays, AS112 sinks and identifiers that are not locators.
    (v6([0x2001], 23), "IETF Protocol Assignments"),
    (v6([0x2001], 32), "TEREDO"),
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128), "Port Control Protocol Anycast"),
    (
        v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128),
        "Traversal Using Relays around NAT Anycast",
    ),
    (
        v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128),
        "DNS-SD Service Registration Protocol Anycast",
    ),
    (v6([0x2001, 2], 48), "Benchmarking"),
    (v6([0x2001, 3], 32), "AMT"),
    (v6([0x2001, 4, 0x112], 48), "AS112-v6"),
    (v6([0x2001, 0x10], 28), "Deprecated (previously ORCHID)"),
    (v6([0x2001, 0x20], 28), "ORCHIDv2"),
    (
        v6([0x2001, 0x30], 28),
        "Drone Remote ID Protocol Entity Tags (DETs) Prefix",
    ),
    (v6([0x2001, 0xdb8], 32), "Documentation"),
    (v6([0x2620, 0x4f, 0x8000], 48), "Direct Delegation AS112 Service"),
    (v6([0x3fff], 20), "Documentation"),
    (v6([0x5f00], 16), "Segment Routing (SRv6) SIDs"),
    (v6([0xfc00], 7), "Unique-Local"),
    (v6([0xfe80], 10), "Link-Local Unicast"),
    // Not in the special-purpose registry: deprecated by RFC 4291 and RFC 3879, and
    // the IPv6 Multicast Address Space Registry.
    (v6([0], 96), "IPv4-compatible (deprecated)"),
    (v6([0xfec0], 10), "Site-Local (deprecated)"),
    (v6([0xff00], 8), "Multicast"),
];

const fn v4(octets: [u8; 4], prefix_len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]), prefix_len)
}

/// An IPv6 block from its leading segments (the rest are zero).
const fn v6<const N: usize>(leading: [u16; N], prefix_len: u8) -> Ipv6Net {
    let mut segments = [0u16; 8];
    let mut i = 0;
    while i < N {
        segments[i] = leading[i];
        i += 1;
    }
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), prefix_len)
}

fn low_32_bits(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from(u128::from(ip) as u32)
}

fn bits_16_to_48(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(ip) >> 80) as u32)
}

#[cfg(test)]
mod tests;
