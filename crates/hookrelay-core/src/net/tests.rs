//! The address rule against the registries, entry by entry.

use super::*;

fn first_middle_last_v4(net: &Ipv4Net) -> [Ipv4Addr; 3] {
    let (first, last) = (u32::from(net.network()), u32::from(net.broadcast()));
    [first, first + (last - first) / 2, last].map(Ipv4Addr::from)
}

fn first_middle_last_v6(net: &Ipv6Net) -> [Ipv6Addr; 3] {
    let (first, last) = (u128::from(net.network()), u128::from(net.broadcast()));
    [first, first + (last - first) / 2, last].map(Ipv6Addr::from)
}

fn neighbours_v4(net: &Ipv4Net) -> Vec<Ipv4Addr> {
    let before = u32::from(net.network()).checked_sub(1);
    let after = u32::from(net.broadcast()).checked_add(1);
    [before, after].into_iter().flatten().map(Ipv4Addr::from).collect()
}

fn neighbours_v6(net: &Ipv6Net) -> Vec<Ipv6Addr> {
    let before = u128::from(net.network()).checked_sub(1);
    let after = u128::from(net.broadcast()).checked_add(1);
    [before, after].into_iter().flatten().map(Ipv6Addr::from).collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// `v4` written into the place `carrier` keeps its IPv4 address, by hand.
fn carried(carrier: &Ipv6Net, v4: Ipv4Addr) -> Ipv6Addr {
    let shift = match carrier.prefix_len() {
        96 => 0,  // ::ffff:a.b.c.d, 64:ff9b::a.b.c.d
        16 => 80, // 2002:aabb:ccdd::
        other => panic!("no IPv4 placement for a /{other}"),
    };
    Ipv6Addr::from(u128::from(carrier.network()) | (u128::from(u32::from(v4)) << shift))
}

#[test]
fn every_registry_entry_is_refused_at_its_first_middle_and_last_address() {
    for (net, name) in REFUSED_V4 {
        for addr in first_middle_last_v4(net) {
            assert!(!is_public(addr.into()), "{addr} ({net}, {name}) should be refused");
        }
    }
    for (net, name) in REFUSED_V6 {
        for addr in first_middle_last_v6(net) {
            assert!(!is_public(addr.into()), "{addr} ({net}, {name}) should be refused");
        }
    }
    // The carriers' own first, middle and last addresses lead to 0.0.0.0,
    // 127.255.255.255 and 255.255.255.255.
    for (net, name, _) in CARRYING_V4 {
        for addr in first_middle_last_v6(net) {
            assert!(!is_public(addr.into()), "{addr} ({net}, {name}) should be refused");
        }
    }
}

#[test]
fn ipv6_forms_of_a_refused_ipv4_address_are_refused() {
    for (carrier, carrier_name, embedded) in CARRYING_V4 {
        for (net, name) in REFUSED_V4 {
            for v4 in first_middle_last_v4(net) {
                let addr = carried(carrier, v4);
                assert_eq!(embedded(addr), v4, "{carrier_name} places {v4} as {addr}");
                assert!(
                    !is_public(addr.into()),
                    "{addr} ({carrier_name} of {v4}, {name}) should be refused"
                );
            }
        }
        for v4 in [
            Ipv4Addr::new(8, 8, 8, 8),
            Ipv4Addr::new(93, 184, 216, 34),
            Ipv4Addr::new(1, 0, 0, 0),
        ] {
            let addr = carried(carrier, v4);
            assert!(
                is_public(addr.into()),
                "{addr} ({carrier_name} of {v4}) should be allowed"
            );
        }
    }
}

/// Every public address right next to a refused IPv4 block.
const PUBLIC_NEIGHBOURS_V4: &[&str] = &[
    "1.0.0.0",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "191.255.255.255",
    "192.0.1.0",
    "192.0.1.255",
    "192.0.3.0",
    "192.31.195.255",
    "192.31.197.0",
    "192.52.192.255",
    "192.52.194.0",
    "192.88.98.255",
    "192.88.100.0",
    "192.167.255.255",
    "192.169.0.0",
    "192.175.47.255",
    "192.175.49.0",
    "198.17.255.255",
    "198.20.0.0",
    "198.51.99.255",
    "198.51.101.0",
    "203.0.112.255",
    "203.0.114.0",
    "223.255.255.255",
];

/// Every public address right next to a refused (or IPv4-carrying) IPv6 block.
const PUBLIC_NEIGHBOURS_V6: &[&str] = &[
    "2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:200::",
    "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db9::",
    "2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "2003::",
    "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff",
    "2620:4f:8001::",
    "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "3fff:1000::",
];

#[test]
fn addresses_just_outside_each_entry_are_allowed_where_public() {
    let mut seen = Vec::new();
    for (net, name) in REFUSED_V4 {
        for addr in neighbours_v4(net) {
            let public = PUBLIC_NEIGHBOURS_V4.contains(&addr.to_string().as_str());
            assert_eq!(is_public(addr.into()), public, "{addr}, next to {net} ({name})");
            seen.push(addr.to_string());
        }
    }
    let carriers = CARRYING_V4.iter().map(|(net, name, _)| (net, name));
    for (net, name) in REFUSED_V6.iter().map(|(net, name)| (net, name)).chain(carriers) {
        for addr in neighbours_v6(net) {
            let public = PUBLIC_NEIGHBOURS_V6.contains(&addr.to_string().as_str());
            assert_eq!(is_public(addr.into()), public, "{addr}, next to {net} ({name})");
            seen.push(addr.to_string());
        }
    }
    for listed in PUBLIC_NEIGHBOURS_V4.iter().chain(PUBLIC_NEIGHBOURS_V6) {
        assert!(seen.iter().any(|s| s == listed), "{listed} is next to no entry");
    }
}

#[test]
fn ipv6_outside_global_unicast_is_refused() {
    for addr in [
        "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "4000::1",
        "e000::1",
        "::2:1",
        "1::1",
    ] {
        assert!(!is_public(ip(addr)), "{addr}");
    }
    for addr in ["2000::1", "2606:4700:4700::1111", "3ffe::1", "2a00:1450:4001::200e"] {
        assert!(is_public(ip(addr)), "{addr}");
    }
}

#[test]
fn classifies_everyday_addresses() {
    let refused = [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "100.64.0.1",
        "192.0.0.8",
        "192.0.0.9",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "::8.8.8.8",
        "64:ff9b::a00:1",
        "64:ff9b:1::808:808",
        "2001::1",
        "2001:db8::1",
        "2002:a00:1::1",
    ];
    for addr in refused {
        assert!(!is_public(ip(addr)), "{addr} should be refused");
    }
    for addr in [
        "93.184.216.34",
        "8.8.8.8",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:0808:0808::1",
    ] {
        assert!(is_public(ip(addr)), "{addr} should be allowed");
    }
}
