//! Tag filters: which members a call may go to.
//!
//! Syntax (what users write in `call_worker(method, payload, Some("role=worker"))`):
//!
//! | text          | meaning                                   |
//! |---------------|-------------------------------------------|
//! | `""`          | every member                              |
//! | `role=worker` | tag `role` is set to exactly `worker`     |
//! | `zone!=us`    | tag `zone` is not `us` (or is not set)    |
//! | `gpu`         | tag `gpu` is set, whatever its value      |
//! | `!gpu`        | tag `gpu` is not set                      |
//! | `a=1,b!=2,c`  | all of the conditions (AND)               |
//!
//! Whitespace around each condition, key and value is ignored. Keys follow the tag key rules
//! ([`crate::Tags::insert`]): non-empty, at most [`crate::membership::MAX_TAG_KEY`] bytes, no `=`, `!`, `,` or
//! whitespace; values at most [`MAX_TAG_VALUE`] bytes. Anything else is a
//! [`FilterError`] naming the condition that failed, so a typo never silently matches nothing
//! (or everything).

use crate::membership::{key_ok, Tags, MAX_TAG_VALUE};
use core::fmt;

/// Longest filter text accepted, in bytes. Filters come from user code and configuration, but
/// may also arrive from remote clients through an adapter, so parsing is bounded.
pub const MAX_FILTER_LEN: usize = 1024;
/// Most conditions in one filter.
pub const MAX_CONDITIONS: usize = 32;

/// Why a filter string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The whole text is longer than [`MAX_FILTER_LEN`].
    #[error("filter is {len} bytes long; at most {MAX_FILTER_LEN} are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// More than [`MAX_CONDITIONS`] conditions.
    #[error("filter has {count} conditions; at most {MAX_CONDITIONS} are allowed")]
    TooManyConditions {
        /// How many conditions it has.
        count: usize,
    },
    /// One condition does not parse.
    #[error("bad filter condition {condition:?}: {reason}")]
    BadCondition {
        /// The offending condition, as written (trimmed).
        condition: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One test on a member's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// `key=value`.
    Eq(String, String),
    /// `key!=value` (also true when the key is absent).
    Ne(String, String),
    /// `key`.
    Present(String),
    /// `!key`.
    Absent(String),
}

impl Condition {
    fn matches(&self, tags: &Tags) -> bool {
        match self {
            Condition::Eq(k, v) => tags.get(k) == Some(v.as_str()),
            Condition::Ne(k, v) => tags.get(k) != Some(v.as_str()),
            Condition::Present(k) => tags.get(k).is_some(),
            Condition::Absent(k) => tags.get(k).is_none(),
        }
    }
}

/// A parsed tag filter: the conjunction of its conditions.
///
/// Parse once and reuse: the [`crate::balancer::Balancer`] caches its candidate list per
/// filter text, so a long-lived `Filter` makes every selection a cache hit. `Display` prints
/// the original text, so "no matching worker" errors show what the caller asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    text: String,
    /// Fixed hash of `text`, the balancer's cache key (compared before the text itself).
    hash: u64,
    conditions: Vec<Condition>,
}

fn bad(condition: &str, reason: &'static str) -> FilterError {
    FilterError::BadCondition {
        condition: condition.to_owned(),
        reason,
    }
}

fn parse_condition(raw: &str) -> Result<Condition, FilterError> {
    let c = raw.trim();
    if c.is_empty() {
        return Err(bad(c, "empty condition (stray ',')"));
    }
    let (key, value, negated) = if let Some(i) = c.find("!=") {
        (&c[..i], Some(&c[i + 2..]), true)
    } else if let Some(i) = c.find('=') {
        (&c[..i], Some(&c[i + 1..]), false)
    } else if let Some(k) = c.strip_prefix('!') {
        (k, None, true)
    } else {
        (c, None, false)
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(bad(c, "missing tag key"));
    }
    if !key_ok(key) {
        return Err(bad(
            c,
            "tag key too long or contains '=', '!', ',' or whitespace",
        ));
    }
    let Some(value) = value else {
        return Ok(if negated {
            Condition::Absent(key.to_owned())
        } else {
            Condition::Present(key.to_owned())
        });
    };
    let value = value.trim();
    if value.len() > MAX_TAG_VALUE {
        return Err(bad(c, "tag value too long"));
    }
    if value.contains('=') || value.contains('!') {
        return Err(bad(c, "value contains '=' or '!' (two operators?)"));
    }
    Ok(if negated {
        Condition::Ne(key.to_owned(), value.to_owned())
    } else {
        Condition::Eq(key.to_owned(), value.to_owned())
    })
}

impl Filter {
    /// The filter that matches every member (what `None` or `""` mean).
    pub fn all() -> Self {
        Filter::default()
    }

    /// Parses `text`. An empty or all-whitespace text matches everything.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.len() > MAX_FILTER_LEN {
            return Err(FilterError::TooLong { len: text.len() });
        }
        let mut conditions = Vec::new();
        if !text.trim().is_empty() {
            let count = text.split(',').count();
            if count > MAX_CONDITIONS {
                return Err(FilterError::TooManyConditions { count });
            }
            for raw in text.split(',') {
                conditions.push(parse_condition(raw)?);
            }
        }
        Ok(Filter {
            text: text.to_owned(),
            hash: crate::hash::hash64(0x4649_4c54, text.as_bytes()),
            conditions,
        })
    }

    /// Parses an optional filter: `None` matches everything, like the user API's
    /// `call_worker(.., None)`.
    pub fn parse_opt(text: Option<&str>) -> Result<Filter, FilterError> {
        text.map_or_else(|| Ok(Filter::all()), Filter::parse)
    }

    /// Whether a member with `tags` passes every condition.
    pub fn matches(&self, tags: &Tags) -> bool {
        self.conditions.iter().all(|c| c.matches(tags))
    }

    /// Whether this filter matches everything (no conditions).
    pub fn is_all(&self) -> bool {
        self.conditions.is_empty()
    }

    /// The text it was parsed from.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn cache_hash(&self) -> u64 {
        self.hash
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl core::str::FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        Tags::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn empty_and_none_match_everything() {
        let t = tags(&[("role", "worker")]);
        assert!(Filter::parse("").unwrap().matches(&t));
        assert!(Filter::parse("  ").unwrap().matches(&Tags::new()));
        assert!(Filter::parse_opt(None).unwrap().matches(&t));
        assert!(Filter::all().is_all());
    }

    #[test]
    fn equality_conditions_are_anded() {
        let f = Filter::parse("gpu=true, zone=eu").unwrap();
        assert!(f.matches(&tags(&[("gpu", "true"), ("zone", "eu")])));
        assert!(!f.matches(&tags(&[("gpu", "true"), ("zone", "us")])));
        assert!(!f.matches(&tags(&[("zone", "eu")])));
    }

    #[test]
    fn negation_matches_other_values_and_absence() {
        let f = Filter::parse("zone!=us").unwrap();
        assert!(f.matches(&tags(&[("zone", "eu")])));
        assert!(f.matches(&Tags::new()));
        assert!(!f.matches(&tags(&[("zone", "us")])));
    }

    #[test]
    fn presence_and_absence_ignore_the_value() {
        let f = Filter::parse("gpu").unwrap();
        assert!(f.matches(&tags(&[("gpu", "")])));
        assert!(f.matches(&tags(&[("gpu", "a100")])));
        assert!(!f.matches(&Tags::new()));
        let f = Filter::parse("!gpu").unwrap();
        assert!(!f.matches(&tags(&[("gpu", "x")])));
        assert!(f.matches(&Tags::new()));
    }

    #[test]
    fn empty_value_means_set_to_empty() {
        let f = Filter::parse("gpu=").unwrap();
        assert!(f.matches(&tags(&[("gpu", "")])));
        assert!(!f.matches(&tags(&[("gpu", "x")])));
    }

    #[test]
    fn bad_conditions_name_the_culprit() {
        let err = Filter::parse("role=worker,=x").unwrap_err();
        assert!(matches!(
            &err,
            FilterError::BadCondition { condition, .. } if condition == "=x"
        ));
        assert!(err.to_string().contains("\"=x\""));
        for text in ["a,,b", "a=b=c", "a b=c", "!=x", "a!=b!=c", "!", ","] {
            assert!(
                matches!(Filter::parse(text), Err(FilterError::BadCondition { .. })),
                "{text:?} should not parse"
            );
        }
        let long = "k".repeat(crate::membership::MAX_TAG_KEY + 1);
        assert!(Filter::parse(&long).is_err());
        assert!(matches!(
            Filter::parse(&"a,".repeat(600)),
            Err(FilterError::TooLong { .. })
        ));
        assert!(matches!(
            Filter::parse(&"a,".repeat(40)),
            Err(FilterError::TooManyConditions { .. })
        ));
    }

    #[test]
    fn display_is_the_original_text() {
        let f: Filter = "gpu=true,zone!=us".parse().unwrap();
        assert_eq!(f.to_string(), "gpu=true,zone!=us");
        assert_eq!(f.as_str(), "gpu=true,zone!=us");
    }
}
