//! Arbitrary text into `Filter::parse`: never a panic, bounded, and a filter that parses
//! prints (Display) to text that parses to an equal filter matching the same tags.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::balancer::filter::{MAX_CONDITIONS, MAX_FILTER_LEN};
use shoal_core::{Filter, Tags};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let Ok(f) = Filter::parse(text) else {
        return;
    };
    assert!(text.len() <= MAX_FILTER_LEN);
    assert!(text.split(',').count() <= MAX_CONDITIONS || f.is_all());
    let printed = f.to_string();
    let g = Filter::parse(&printed).expect("a printed filter parses");
    assert_eq!(f, g);
    // Same verdict on a few tag sets built from the filter's own words.
    let mut t = Tags::new();
    for word in text
        .split([',', '=', '!', ' '])
        .filter(|w| !w.is_empty())
        .take(8)
    {
        let _ = t.insert(word.trim(), "true");
    }
    for tags in [Tags::new(), t] {
        assert_eq!(f.matches(&tags), g.matches(&tags));
    }
});
