//! Length-checked containers for decoding hostile input.
//!
//! postcard reads a declared length before the elements. A plain `Vec<T>` lets serde
//! pre-allocate from that declared length; these wrappers reject a length over their bound
//! *before* allocating anything, so a 20-byte packet cannot ask for a megabyte.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `Vec<T>` holding at most `N` elements, enforced when decoding.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BoundedVec<T, const N: usize>(pub Vec<T>);

impl<T, const N: usize> BoundedVec<T, N> {
    /// An empty vector.
    pub fn new() -> Self {
        BoundedVec(Vec::new())
    }

    /// Wraps `v`, or returns it back if it holds more than `N` elements.
    pub fn try_from_vec(v: Vec<T>) -> Result<Self, Vec<T>> {
        if v.len() <= N {
            Ok(BoundedVec(v))
        } else {
            Err(v)
        }
    }

    /// Unwraps the vector.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const N: usize> Deref for BoundedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Serialize, const N: usize> Serialize for BoundedVec<T, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

struct BoundedVecVisitor<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for BoundedVecVisitor<T, N> {
    type Value = BoundedVec<T, N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of at most {N} elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let declared = seq.size_hint().unwrap_or(0);
        if declared > N {
            return Err(de::Error::invalid_length(declared, &self));
        }
        let mut out = Vec::with_capacity(declared);
        while let Some(item) = seq.next_element()? {
            if out.len() == N {
                return Err(de::Error::invalid_length(N + 1, &self));
            }
            out.push(item);
        }
        Ok(BoundedVec(out))
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(BoundedVecVisitor::<T, N>(PhantomData))
    }
}

/// A `String` of at most `N` bytes, enforced when decoding and constructing.
///
/// Short strings (up to [`INLINE_STR`] bytes, which covers node names like `worker-17` or
/// `node-1234`, short host names and most tag keys and values) are stored inline, with no
/// heap allocation: every node keeps a name for every member, so a heap string would cost a
/// separate allocation (32 bytes or more) per member entry and one `malloc` per copy. Longer
/// ones live behind one thin pointer. Both forms compare, hash and encode as the string they
/// hold. The whole thing is 16 bytes (see `Repr`), which is what keeps a member entry at 72.
#[derive(Clone)]
pub struct BoundedString<const N: usize>(Repr);

/// Longest string a [`BoundedString`] stores without allocating.
pub const INLINE_STR: usize = 15;

/// The length of an inline string, as an enum rather than a `u8` so that its 240 unused
/// values are a niche: the compiler stores `Repr`'s variant in them and lays the heap
/// pointer in the inline buffer's place, so `Repr` is 16 bytes (a `u8` length would need a
/// separate tag byte and round it up to 24, with 8 bytes of every member entry lost).
#[derive(Clone, Copy)]
#[repr(u8)]
enum InlineLen {
    L0,
    L1,
    L2,
    L3,
    L4,
    L5,
    L6,
    L7,
    L8,
    L9,
    L10,
    L11,
    L12,
    L13,
    L14,
    L15,
}

/// Every [`InlineLen`], indexed by its value (the safe way from a number to the enum).
const INLINE_LENS: [InlineLen; INLINE_STR + 1] = {
    use InlineLen::*;
    [
        L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15,
    ]
};

#[derive(Clone)]
enum Repr {
    Inline {
        len: InlineLen,
        buf: [u8; INLINE_STR],
    },
    /// A thin (8-byte) pointer: a `Box<str>` directly would be 16 bytes and make the inline
    /// form lose its niche. Only strings over [`INLINE_STR`] bytes pay the second allocation.
    #[allow(clippy::box_collection, clippy::redundant_allocation)]
    Heap(Box<Box<str>>),
}

impl Repr {
    fn new(s: &str) -> Self {
        Repr::inline(s.as_bytes()).unwrap_or_else(|| Repr::Heap(Box::new(s.into())))
    }

    /// `bytes` stored inline, if they fit. The caller guarantees they are UTF-8.
    fn inline(bytes: &[u8]) -> Option<Self> {
        let len = *INLINE_LENS.get(bytes.len())?;
        let mut buf = [0u8; INLINE_STR];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(Repr::Inline { len, buf })
    }

    /// The bytes, not checked again: copying, comparing and encoding need no proof that
    /// they are UTF-8 (they were, whole, when stored), and `as_str`'s check is per call.
    fn as_bytes(&self) -> &[u8] {
        match self {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Heap(s) => s.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Invariant: the inline bytes were copied from a `&str`, whole, so they are valid
            // UTF-8; the fallback is unreachable.
            Repr::Inline { len, buf } => {
                core::str::from_utf8(&buf[..*len as usize]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }
}

impl<const N: usize> BoundedString<N> {
    /// Wraps `s` if it is at most `N` bytes long.
    pub fn new(s: impl Into<String>) -> Option<Self> {
        let s = s.into();
        (s.len() <= N).then(|| BoundedString(Repr::new(&s)))
    }

    /// Wraps `s` (borrowed: nothing is allocated when it fits inline) if it is at most `N`
    /// bytes long.
    pub fn from_str_checked(s: &str) -> Option<Self> {
        (s.len() <= N).then(|| BoundedString(Repr::new(s)))
    }

    /// The string `bytes` hold, if they are UTF-8 and at most `N` long: what
    /// `from_str_checked(core::str::from_utf8(bytes)?)` gives, byte for byte.
    ///
    /// Why: a decoder reads every member's name from every packet (most of them names it
    /// already holds), and `from_utf8` costs ~70 instructions a call on a short name. A
    /// short ASCII name (`node-1234`, host names) is stored inline after one ASCII check,
    /// which proves it UTF-8 (ASCII is a subset); anything else goes through `from_utf8`.
    pub(crate) fn from_utf8_checked(bytes: &[u8]) -> Option<Self> {
        if bytes.len() <= N && bytes.is_ascii() {
            if let Some(r) = Repr::inline(bytes) {
                return Some(BoundedString(r));
            }
        }
        Self::from_str_checked(core::str::from_utf8(bytes).ok()?)
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The string's bytes (no UTF-8 check: they are a `str`'s).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl<const N: usize> Default for BoundedString<N> {
    fn default() -> Self {
        BoundedString(Repr::new(""))
    }
}

impl<const N: usize> PartialEq for BoundedString<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> Eq for BoundedString<N> {}

impl<const N: usize> PartialOrd for BoundedString<N> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for BoundedString<N> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        // A `str`'s order is its bytes' order.
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl<const N: usize> core::hash::Hash for BoundedString<N> {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h);
    }
}

impl<const N: usize> fmt::Debug for BoundedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> Deref for BoundedString<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> Serialize for BoundedString<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedString<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // postcard hands out a borrowed slice of the input, so nothing is allocated before
        // the length check.
        let s: &'de str = Deserialize::deserialize(d)?;
        if s.len() > N {
            return Err(de::Error::invalid_length(s.len(), &"a shorter string"));
        }
        Ok(BoundedString(Repr::new(s)))
    }
}

/// At most `N` elements, whatever the input.
#[cfg(feature = "arbitrary")]
impl<'a, T: arbitrary::Arbitrary<'a>, const N: usize> arbitrary::Arbitrary<'a>
    for BoundedVec<T, N>
{
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut out = Vec::new();
        for item in u.arbitrary_iter::<T>()? {
            if out.len() == N {
                break;
            }
            out.push(item?);
        }
        Ok(BoundedVec(out))
    }
}

/// At most `N` bytes: a longer arbitrary string is cut at the last character boundary that
/// fits.
#[cfg(feature = "arbitrary")]
impl<'a, const N: usize> arbitrary::Arbitrary<'a> for BoundedString<N> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let s: &str = u.arbitrary()?;
        let mut end = s.len().min(N);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Ok(BoundedString(Repr::new(&s[..end])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `from_utf8_checked`'s reference: what the decoder did before its ASCII shortcut.
    fn reference<const N: usize>(bytes: &[u8]) -> Option<BoundedString<N>> {
        BoundedString::from_str_checked(core::str::from_utf8(bytes).ok()?)
    }

    fn same<const N: usize>(bytes: &[u8]) -> Result<(), TestCaseError> {
        let got = BoundedString::<N>::from_utf8_checked(bytes);
        let want = reference::<N>(bytes);
        prop_assert_eq!(
            got.as_ref().map(|s| s.as_str()),
            want.as_ref().map(|s| s.as_str())
        );
        if let (Some(g), Some(w)) = (got, want) {
            // Same form too (inline or on the heap), so memory and clones cost the same.
            prop_assert_eq!(
                matches!(g.0, Repr::Inline { .. }),
                matches!(w.0, Repr::Inline { .. })
            );
        }
        Ok(())
    }

    proptest! {
        /// Any bytes, ASCII or not, valid UTF-8 or not, within the bound or over it (the
        /// bound below, at and above the inline length): the shortcut agrees with the
        /// `from_utf8` path on every verdict and every string.
        #[test]
        fn from_utf8_checked_agrees_with_from_utf8(
            bytes in prop_oneof![
                proptest::collection::vec(0u8..0x80, 0..40),
                proptest::collection::vec(any::<u8>(), 0..40),
                "[a-z\\u{e9}\\u{4e16}\\u{1f600}]{0,20}".prop_map(String::into_bytes),
            ],
        ) {
            same::<4>(&bytes)?;
            same::<15>(&bytes)?;
            same::<16>(&bytes)?;
            same::<64>(&bytes)?;
        }
    }

    #[test]
    fn declared_length_over_bound_is_rejected_before_allocation() {
        // A varint length of 1_000_000 followed by nothing.
        let bytes = [0xc0, 0x84, 0x3d];
        let r: Result<BoundedVec<u8, 16>, _> = postcard::from_bytes(&bytes);
        assert!(r.is_err());
    }

    #[test]
    fn round_trips_within_bound() {
        let v: BoundedVec<u32, 4> = BoundedVec(vec![1, 2, 3]);
        let bytes = postcard::to_allocvec(&v).unwrap();
        let back: BoundedVec<u32, 4> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(v, back);
        let s = BoundedString::<3>::new("abcd");
        assert!(s.is_none());
        let too_long = postcard::to_allocvec("abcd").unwrap();
        assert!(postcard::from_bytes::<BoundedString<3>>(&too_long).is_err());
    }

    #[test]
    fn inline_and_heap_strings_behave_alike() {
        let short = "x".repeat(INLINE_STR);
        let long = "y".repeat(INLINE_STR + 1);
        for s in ["", "n17", "zone-ü", short.as_str(), long.as_str()] {
            let b = BoundedString::<64>::new(s).unwrap();
            assert_eq!(b.as_str(), s);
            assert_eq!(&*b, s);
            assert_eq!(format!("{b:?}"), format!("{s:?}"));
            let bytes = postcard::to_allocvec(&b).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(s).unwrap(), "encodes as a str");
            assert_eq!(
                postcard::from_bytes::<BoundedString<64>>(&bytes).unwrap(),
                b
            );
            assert_eq!(BoundedString::<64>::from_str_checked(s), Some(b));
        }
        let a = BoundedString::<64>::new(short.clone()).unwrap();
        let b = BoundedString::<64>::new(long.clone()).unwrap();
        assert_eq!(a.cmp(&b), short.cmp(&long), "order is the strings' order");
        assert!(BoundedString::<64>::default().is_empty());
        assert_eq!(
            core::mem::size_of::<BoundedString<64>>(),
            16,
            "two words: a member entry pays 16 bytes for its name"
        );
    }
}
