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
}
