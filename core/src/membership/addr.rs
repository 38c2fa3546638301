//! A socket address in 19 bytes instead of `SocketAddr`'s 32.
//!
//! Every node keeps a [`MemberInfo`](super::MemberInfo) for every member, each with a gossip
//! and an optional RPC address, so a simulated cluster of N holds 2·N² of them: at 32 bytes a
//! `SocketAddr` (which reserves room for an IPv6 address, flow info, scope id and a tag, with
//! 4-byte alignment) the two took 64 of a member's 136 bytes. [`CompactAddr`] keeps what the
//! wire carries (the IP as 16 bytes, the port, and whether it is IPv4), byte-aligned so that
//! `Option<CompactAddr>` needs no extra byte either (the flag's spare values are its niche).
//!
//! What it drops: an IPv6 address's flow info and scope id. The wire never carried them
//! (serde writes a `SocketAddrV6` as address and port), so no member learned from gossip had
//! them; only this node's own advertised address could, and it is advertised without them.
//!
//! A member's two addresses are then packed further, together, by [`Addrs`] (16 bytes for
//! the pair; two `CompactAddr`s and the `Option`'s flag would be 38).

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A socket address packed to 19 bytes with alignment 1. Converts to and from
/// [`SocketAddr`] (`From` both ways); encodes on the wire exactly as a `SocketAddr` does.
///
/// ```
/// use shoal_core::CompactAddr;
/// use std::net::SocketAddr;
/// let a: SocketAddr = "10.0.0.7:7946".parse().unwrap();
/// let c = CompactAddr::from(a);
/// assert_eq!(c.get(), a);
/// assert_eq!(c, a);
/// assert_eq!(core::mem::size_of::<Option<CompactAddr>>(), 19);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompactAddr {
    /// IPv4 addresses in the first 4 bytes (the rest zero), IPv6 in all 16.
    ip: [u8; 16],
    /// Port, big-endian (a byte array, not a `u16`, to keep alignment 1).
    port: [u8; 2],
    /// Which family `ip` holds (also the niche that makes `Option<CompactAddr>` free).
    family: Family,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    V4,
    V6,
}

impl CompactAddr {
    /// The address as a `SocketAddr` (flow info and scope id zero).
    pub fn get(self) -> SocketAddr {
        let port = u16::from_be_bytes(self.port);
        match self.family {
            Family::V4 => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&self.ip[..4]);
                SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(b), port))
            }
            Family::V6 => SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(self.ip), port, 0, 0)),
        }
    }

    /// The port.
    pub fn port(self) -> u16 {
        u16::from_be_bytes(self.port)
    }

    /// The IPv4 address (network order), if it is one.
    #[inline]
    fn v4_ip(self) -> Option<[u8; 4]> {
        match self.family {
            Family::V4 => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&self.ip[..4]);
                Some(b)
            }
            Family::V6 => None,
        }
    }

    /// IPv4 address `ip` (network order) and `port`. The decoder builds addresses with
    /// this and [`v6`](Self::v6) straight from the bytes it reads; `From<SocketAddr>` goes
    /// through them too.
    pub(crate) fn v4(ip: [u8; 4], port: u16) -> Self {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&ip);
        CompactAddr {
            ip: b,
            port: port.to_be_bytes(),
            family: Family::V4,
        }
    }

    /// IPv6 address `ip` (network order) and `port`, flow info and scope id zero (as the
    /// wire carries it).
    pub(crate) fn v6(ip: [u8; 16], port: u16) -> Self {
        CompactAddr {
            ip,
            port: port.to_be_bytes(),
            family: Family::V6,
        }
    }
}

impl From<SocketAddr> for CompactAddr {
    fn from(a: SocketAddr) -> Self {
        match a {
            SocketAddr::V4(v4) => CompactAddr::v4(v4.ip().octets(), v4.port()),
            SocketAddr::V6(v6) => CompactAddr::v6(v6.ip().octets(), v6.port()),
        }
    }
}

impl From<CompactAddr> for SocketAddr {
    fn from(c: CompactAddr) -> Self {
        c.get()
    }
}

/// Equal when the `SocketAddr` packs to the same address (flow info and scope id ignored).
impl PartialEq<SocketAddr> for CompactAddr {
    fn eq(&self, other: &SocketAddr) -> bool {
        *self == CompactAddr::from(*other)
    }
}

impl fmt::Debug for CompactAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

impl fmt::Display for CompactAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

/// Written exactly as the `SocketAddr` it stands for, so the wire format is unchanged.
impl Serialize for CompactAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl<'de> Deserialize<'de> for CompactAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SocketAddr::deserialize(d).map(CompactAddr::from)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for CompactAddr {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        SocketAddr::arbitrary(u).map(CompactAddr::from)
    }
}

/// A member's gossip address and optional RPC address, packed to 16 bytes (two
/// [`CompactAddr`]s and the `Option`'s flag would take 38).
///
/// Why: every node keeps a [`MemberInfo`](super::MemberInfo) for every member, so a simulated
/// cluster of N holds N² of these. Nearly always both addresses are IPv4 on the same IP (the
/// RPC endpoint is the gossip host on another port, or there is none): that case is held
/// inline in 8 bytes; anything else (IPv6, two different IPs, an IPv4 RPC address beside an
/// IPv6 gossip one) is boxed as the pair itself. Either way the pair given to
/// [`new`](Self::new) is the pair [`gossip`](Self::gossip) and [`rpc`](Self::rpc) give
/// back, exactly: the inline form keeps everything an IPv4 `CompactAddr` holds (address and
/// port; port 0 is an ordinary port here, "no RPC address" is its own variant).
///
/// Each pair has one form ([`new`](Self::new) always packs what fits inline), so the
/// derived equality is equality of the pairs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Addrs {
    /// IPv4 gossip and RPC addresses on the same IP.
    V4 {
        /// The IP, network order.
        ip: [u8; 4],
        /// Gossip port, big-endian.
        gossip: [u8; 2],
        /// RPC port, big-endian.
        rpc: [u8; 2],
    },
    /// An IPv4 gossip address and no RPC address.
    V4Only {
        /// The IP, network order.
        ip: [u8; 4],
        /// Gossip port, big-endian.
        gossip: [u8; 2],
    },
    /// Any other pair, as it is.
    Wide(Box<(CompactAddr, Option<CompactAddr>)>),
}

impl Addrs {
    /// Packs `gossip` and `rpc`: inline (no allocation) when `gossip` is IPv4 and `rpc` is
    /// absent or IPv4 on the same IP, boxed otherwise.
    pub(crate) fn new(gossip: CompactAddr, rpc: Option<CompactAddr>) -> Self {
        let Some(ip) = gossip.v4_ip() else {
            return Addrs::Wide(Box::new((gossip, rpc)));
        };
        match rpc {
            None => Addrs::V4Only {
                ip,
                gossip: gossip.port,
            },
            Some(r) if r.v4_ip() == Some(ip) => Addrs::V4 {
                ip,
                gossip: gossip.port,
                rpc: r.port,
            },
            Some(_) => Addrs::Wide(Box::new((gossip, rpc))),
        }
    }

    /// The gossip address.
    #[inline]
    pub(crate) fn gossip(&self) -> CompactAddr {
        match self {
            Addrs::V4 { ip, gossip, .. } | Addrs::V4Only { ip, gossip } => {
                CompactAddr::v4(*ip, u16::from_be_bytes(*gossip))
            }
            Addrs::Wide(w) => w.0,
        }
    }

    /// The RPC address, if any.
    #[inline]
    pub(crate) fn rpc(&self) -> Option<CompactAddr> {
        match self {
            Addrs::V4 { ip, rpc, .. } => Some(CompactAddr::v4(*ip, u16::from_be_bytes(*rpc))),
            Addrs::V4Only { .. } => None,
            Addrs::Wide(w) => w.1,
        }
    }
}

impl fmt::Debug for Addrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Addrs")
            .field("gossip", &self.gossip())
            .field("rpc", &self.rpc())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoders_constructors_pack_as_from_does() {
        for s in [
            "0.0.0.0:0",
            "10.1.2.3:7946",
            "255.255.255.255:65535",
            "[::]:0",
            "[2001:db8::17]:7946",
            "[::ffff:10.1.2.3]:7946",
        ] {
            let a: SocketAddr = s.parse().unwrap();
            let built = match a {
                SocketAddr::V4(v4) => CompactAddr::v4(v4.ip().octets(), v4.port()),
                SocketAddr::V6(v6) => CompactAddr::v6(v6.ip().octets(), v6.port()),
            };
            assert_eq!(built, CompactAddr::from(a), "{s}");
            assert_eq!(built.get(), a, "{s}");
        }
    }

    #[test]
    fn packs_to_19_bytes_and_an_option_costs_nothing() {
        assert_eq!(core::mem::size_of::<CompactAddr>(), 19);
        assert_eq!(core::mem::align_of::<CompactAddr>(), 1);
        assert_eq!(core::mem::size_of::<Option<CompactAddr>>(), 19);
    }

    #[test]
    fn round_trips_both_families_and_keeps_them_apart() {
        for s in [
            "0.0.0.0:0",
            "10.1.2.3:7946",
            "255.255.255.255:65535",
            "[::]:0",
            "[::1]:443",
            "[2001:db8::17]:7946",
            "[::ffff:10.1.2.3]:7946",
        ] {
            let a: SocketAddr = s.parse().unwrap();
            let c = CompactAddr::from(a);
            assert_eq!(c.get(), a, "{s}");
            assert_eq!(c.port(), a.port());
            assert_eq!(format!("{c}"), format!("{a}"));
            assert_eq!(format!("{c:?}"), format!("{a:?}"));
        }
        // An IPv4 address and its IPv4-mapped IPv6 form are different addresses.
        let v4 = CompactAddr::from("10.1.2.3:7946".parse::<SocketAddr>().unwrap());
        let mapped = CompactAddr::from("[::ffff:10.1.2.3]:7946".parse::<SocketAddr>().unwrap());
        assert_ne!(v4, mapped);
    }

    #[test]
    fn drops_flow_info_and_scope_id_only() {
        let a = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 7, 3));
        let c = CompactAddr::from(a);
        assert_eq!(
            c.get(),
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 0, 0))
        );
        assert_eq!(c, a, "compared as packed");
    }

    #[test]
    fn encodes_exactly_as_a_socket_addr() {
        for s in ["10.1.2.3:7946", "[2001:db8::17]:7946"] {
            let a: SocketAddr = s.parse().unwrap();
            let c = CompactAddr::from(a);
            let wa = postcard::to_allocvec(&a).unwrap();
            let wc = postcard::to_allocvec(&c).unwrap();
            assert_eq!(wa, wc);
            let back: CompactAddr = postcard::from_bytes(&wa).unwrap();
            assert_eq!(back, c);
            let oa = postcard::to_allocvec(&Some(a)).unwrap();
            let oc = postcard::to_allocvec(&Some(c)).unwrap();
            assert_eq!(oa, oc);
            let none: Option<CompactAddr> = None;
            assert_eq!(
                postcard::to_allocvec(&none).unwrap(),
                postcard::to_allocvec(&None::<SocketAddr>).unwrap()
            );
        }
    }

    #[test]
    fn a_pair_packs_to_16_bytes() {
        assert_eq!(core::mem::size_of::<Addrs>(), 16);
    }

    fn packed(g: &str, r: Option<&str>) -> (Addrs, CompactAddr, Option<CompactAddr>) {
        let g = CompactAddr::from(g.parse::<SocketAddr>().unwrap());
        let r = r.map(|r| CompactAddr::from(r.parse::<SocketAddr>().unwrap()));
        (Addrs::new(g, r), g, r)
    }

    /// The usual pairs are held inline (no allocation), everything else boxed as given, and
    /// every pair comes back exactly, ports 0 and 65535 included.
    #[test]
    fn the_usual_pairs_are_inline_and_every_pair_comes_back() {
        let inline = [
            ("10.1.2.3:7946", Some("10.1.2.3:7947")),
            ("10.1.2.3:7946", None),
            ("10.1.2.3:0", Some("10.1.2.3:0")),
            ("10.1.2.3:0", None),
            ("0.0.0.0:0", Some("0.0.0.0:65535")),
            ("255.255.255.255:65535", Some("255.255.255.255:0")),
            ("255.255.255.255:65535", None),
        ];
        let wide = [
            ("10.1.2.3:7946", Some("10.1.2.4:7947")),
            ("10.1.2.3:7946", Some("[::ffff:10.1.2.3]:7947")),
            ("[::ffff:10.1.2.3]:7946", Some("10.1.2.3:7947")),
            ("[::ffff:10.1.2.3]:7946", None),
            ("[2001:db8::17]:7946", Some("[2001:db8::17]:7947")),
            ("[2001:db8::17]:0", None),
            ("[::]:0", Some("0.0.0.0:0")),
            ("[2001:db8::17]:65535", Some("10.1.2.3:65535")),
        ];
        for (g, r) in inline {
            let (a, gc, rc) = packed(g, r);
            assert!(!matches!(a, Addrs::Wide(_)), "{g} {r:?} is inline");
            assert_eq!((a.gossip(), a.rpc()), (gc, rc), "{g} {r:?}");
        }
        for (g, r) in wide {
            let (a, gc, rc) = packed(g, r);
            assert!(matches!(a, Addrs::Wide(_)), "{g} {r:?} is wide");
            assert_eq!((a.gossip(), a.rpc()), (gc, rc), "{g} {r:?}");
        }
        // Port 0 is a port like any other, not "no RPC address".
        let (with_zero, ..) = packed("10.1.2.3:7946", Some("10.1.2.3:0"));
        let (without, ..) = packed("10.1.2.3:7946", None);
        assert_ne!(with_zero, without);
        assert_eq!(with_zero.rpc().map(CompactAddr::port), Some(0));
        assert_eq!(without.rpc(), None);
    }

    proptest::proptest! {
        /// Any (gossip, RPC) pair comes back exactly; two packed pairs are equal exactly when
        /// the pairs are; and the form is inline exactly when both are IPv4 on one IP (or the
        /// RPC address is absent).
        #[test]
        fn any_pair_round_trips_through_the_packed_form(
            (g, r) in crate::wire::tests::arb_addr_pair(),
            (g2, r2) in crate::wire::tests::arb_addr_pair(),
        ) {
            let (gc, rc) = (CompactAddr::from(g), r.map(CompactAddr::from));
            let a = Addrs::new(gc, rc);
            proptest::prop_assert_eq!(a.gossip().get(), g);
            proptest::prop_assert_eq!(a.rpc().map(CompactAddr::get), r);
            let fits = g.is_ipv4() && r.is_none_or(|r| r.ip() == g.ip());
            proptest::prop_assert_eq!(!matches!(a, Addrs::Wide(_)), fits);
            let b = Addrs::new(CompactAddr::from(g2), r2.map(CompactAddr::from));
            proptest::prop_assert_eq!(a == b, (g, r) == (g2, r2));
            proptest::prop_assert_eq!(a.clone(), a);
        }
    }
}
