//! Tags: a small, bounded key/value map each member advertises (`role=worker`, `zone=eu`).

use crate::wire::bounded::{BoundedString, BoundedVec};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most tags one member may carry.
pub const MAX_TAGS: usize = 32;
/// Longest tag key, in bytes.
pub const MAX_TAG_KEY: usize = 64;
/// Longest tag value, in bytes.
pub const MAX_TAG_VALUE: usize = 256;
/// Most bytes all of one member's keys and values may add up to, so that a member record
/// always fits a datagram beside its header.
pub const MAX_TAGS_TOTAL: usize = 512;

/// Why a tag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// The key is empty, too long, or holds a character filters use (`=`, `!`, `,`) or
    /// whitespace.
    #[error("tag key {0:?} is empty, longer than {MAX_TAG_KEY} bytes, or contains '=', '!', ',' or whitespace")]
    BadKey(String),
    /// The value is too long or holds `,`.
    #[error("tag value for {0:?} is longer than {MAX_TAG_VALUE} bytes or contains ','")]
    BadValue(String),
    /// Adding the tag would exceed [`MAX_TAGS`] or [`MAX_TAGS_TOTAL`].
    #[error("too many tags: at most {MAX_TAGS} tags and {MAX_TAGS_TOTAL} bytes in all")]
    TooMany,
}

/// Whether `k` may be a tag key: non-empty, at most [`MAX_TAG_KEY`] bytes, without the
/// characters filters use (`=`, `!`, `,`) or whitespace. Filters check their keys with it too.
pub(crate) fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_TAG_KEY
        && !k
            .chars()
            .any(|c| c == '=' || c == '!' || c == ',' || c.is_whitespace())
}

fn value_ok(v: &str) -> bool {
    v.len() <= MAX_TAG_VALUE && !v.contains(',')
}

type Pair = (BoundedString<MAX_TAG_KEY>, BoundedString<MAX_TAG_VALUE>);

/// A bounded map of tags, kept sorted by key (deterministic encoding and iteration).
///
/// One pointer wide: no tags (the common case for most members) is `None`, so a member
/// entry pays 8 bytes for its tags instead of an empty `Vec`'s 24, in every node's table.
// The box around the Vec is the point: a thin 8-byte handle instead of a 16-byte `Box<[_]>`
// or a 24-byte `Vec`, in every member entry of every node; the extra indirection is paid only
// by members that have tags.
#[allow(clippy::box_collection)]
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Tags(Option<Box<Vec<Pair>>>);

impl Tags {
    /// No tags.
    pub fn new() -> Self {
        Tags(None)
    }

    pub(crate) fn pairs(&self) -> &[Pair] {
        self.0.as_deref().map_or(&[], |v| v.as_slice())
    }

    fn pairs_mut(&mut self) -> &mut Vec<Pair> {
        self.0.get_or_insert_with(Box::default)
    }

    fn from_vec(v: Vec<Pair>) -> Self {
        Tags((!v.is_empty()).then(|| Box::new(v)))
    }

    /// Tags as decoded from the wire, if they are valid. Strict: keys sorted and unique,
    /// every key and value valid, total within bound. A peer running this code never sends
    /// anything else.
    pub(crate) fn from_decoded(raw: Vec<Pair>) -> Option<Self> {
        let mut total = 0usize;
        for (i, (k, v)) in raw.iter().enumerate() {
            if !key_ok(k) || !value_ok(v) || (i > 0 && raw[i - 1].0 >= *k) {
                return None;
            }
            total += k.len() + v.len();
        }
        (total <= MAX_TAGS_TOTAL).then(|| Tags::from_vec(raw))
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        let pairs = self.pairs();
        pairs
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| pairs[i].1.as_str())
    }

    /// Sets `key` to `value`, checking every bound. Returns whether anything changed.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<bool, TagError> {
        if !key_ok(key) {
            return Err(TagError::BadKey(key.to_owned()));
        }
        let v = BoundedString::new(value)
            .filter(|_| value_ok(value))
            .ok_or_else(|| TagError::BadValue(key.to_owned()))?;
        let k = BoundedString::new(key).ok_or_else(|| TagError::BadKey(key.to_owned()))?;
        match self
            .pairs()
            .binary_search_by(|(k2, _)| k2.as_str().cmp(key))
        {
            Ok(i) => {
                if self.pairs()[i].1.as_str() == value {
                    return Ok(false);
                }
                let total = self.total_bytes() - self.pairs()[i].1.len() + value.len();
                if total > MAX_TAGS_TOTAL {
                    return Err(TagError::TooMany);
                }
                self.pairs_mut()[i].1 = v;
            }
            Err(i) => {
                if self.len() >= MAX_TAGS
                    || self.total_bytes() + key.len() + value.len() > MAX_TAGS_TOTAL
                {
                    return Err(TagError::TooMany);
                }
                self.pairs_mut().insert(i, (k, v));
            }
        }
        Ok(true)
    }

    /// Removes `key`. Returns whether it was set.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.pairs().binary_search_by(|(k, _)| k.as_str().cmp(key)) {
            Ok(i) => {
                let pairs = self.pairs_mut();
                pairs.remove(i);
                if pairs.is_empty() {
                    self.0 = None;
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Iterates over `(key, value)` in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs().iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of tags.
    pub fn len(&self) -> usize {
        self.pairs().len()
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }

    fn total_bytes(&self) -> usize {
        self.pairs().iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Builds tags from pairs, checking every bound.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, TagError> {
        let mut t = Tags::new();
        for (k, v) in pairs {
            t.insert(k, v)?;
        }
        Ok(t)
    }
}

impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.pairs().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        type Raw = BoundedVec<(BoundedString<MAX_TAG_KEY>, BoundedString<MAX_TAG_VALUE>), MAX_TAGS>;
        let raw = Raw::deserialize(d)?.into_inner();
        Tags::from_decoded(raw).ok_or_else(|| {
            D::Error::custom("invalid, unsorted, repeated or too many bytes of tags")
        })
    }
}

/// Valid tags only: each arbitrary pair goes through [`Tags::insert`], and a pair it refuses
/// is replaced by one from a small valid vocabulary, so structured fuzzing reaches the code
/// behind the decoder instead of generating tags the decoder would reject.
#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Tags {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        const KEYS: [&str; 6] = ["role", "zone", "gpu", "version", "rack", "k"];
        const VALUES: [&str; 6] = ["worker", "director", "eu", "us", "true", ""];
        let n = u.int_in_range(0..=MAX_TAGS)?;
        let mut t = Tags::new();
        for _ in 0..n {
            let key: &str = u.arbitrary()?;
            let value: &str = u.arbitrary()?;
            if t.insert(key, value).is_err() {
                let k = *u.choose(&KEYS)?;
                let v = *u.choose(&VALUES)?;
                let _ = t.insert(k, v);
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_keeps_sorted_and_rejects_bad_input() {
        let mut t = Tags::new();
        assert_eq!(t.insert("zone", "eu"), Ok(true));
        assert_eq!(t.insert("role", "worker"), Ok(true));
        assert_eq!(t.insert("role", "worker"), Ok(false));
        assert_eq!(t.iter().next(), Some(("role", "worker")));
        assert!(matches!(t.insert("a=b", "x"), Err(TagError::BadKey(_))));
        assert!(matches!(t.insert("", "x"), Err(TagError::BadKey(_))));
        assert!(matches!(t.insert("k", "a,b"), Err(TagError::BadValue(_))));
        assert!(t.remove("zone"));
        assert_eq!(t.get("zone"), None);
        assert!(t.remove("role"));
        assert!(t.is_empty());
        assert_eq!(t, Tags::new(), "emptied tags equal no tags");
        assert_eq!(core::mem::size_of::<Tags>(), 8);
    }

    #[test]
    fn bounds_hold() {
        let mut t = Tags::new();
        for i in 0..MAX_TAGS {
            t.insert(&format!("k{i}"), "v").unwrap();
        }
        assert_eq!(t.insert("another", "v"), Err(TagError::TooMany));
        let mut t = Tags::new();
        let big = "x".repeat(200);
        t.insert("a", &big).unwrap();
        t.insert("b", &big).unwrap();
        assert_eq!(t.insert("c", &big), Err(TagError::TooMany));
        let too_long = "x".repeat(MAX_TAG_VALUE + 1);
        assert!(matches!(
            t.insert("d", &too_long),
            Err(TagError::BadValue(_))
        ));
    }

    #[test]
    fn unsorted_tags_are_rejected_on_decode() {
        let raw = vec![
            ("b".to_string(), "1".to_string()),
            ("a".to_string(), "2".to_string()),
        ];
        let bytes = postcard::to_allocvec(&raw).unwrap();
        assert!(postcard::from_bytes::<Tags>(&bytes).is_err());
        let ok = vec![
            ("a".to_string(), "2".to_string()),
            ("b".to_string(), "1".to_string()),
        ];
        let bytes = postcard::to_allocvec(&ok).unwrap();
        assert_eq!(
            postcard::from_bytes::<Tags>(&bytes).unwrap().get("b"),
            Some("1")
        );
    }
}
