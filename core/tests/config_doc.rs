//! docs/configuration.md's knob tables are checked against the code, so they cannot rot.
//!
//! Every field of [`Config`] (for the `lan()`, `wan()` and `local()` presets) and of
//! [`PoolConfig::default`] is listed by walking the types' pretty `Debug` output, so a knob
//! added to the code without a row in the docs, a row for a knob that no longer exists, or a
//! default that changed without the docs all fail this test. The "what it trades" column is
//! prose kept in the doc itself; the test only insists that it is there.
//!
//! After changing a default on purpose, regenerate the value columns with
//! `SHOAL_BLESS=1 cargo test -p shoal-core --test config_doc` and review the diff.

use shoal_core::{Config, PoolConfig};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Flattens a `{:#?}` rendering into `(dotted.path, value)` pairs, in field order.
fn flatten(debug: &str) -> Vec<(String, String)> {
    let mut prefix: Vec<String> = Vec::new();
    let mut out = Vec::new();
    // The first line is the outer type's name and `{`; the last its closing brace.
    for line in debug.lines().skip(1) {
        let line = line.trim();
        if line == "}," || line == "}" {
            prefix.pop();
            continue;
        }
        let Some((name, value)) = line.split_once(": ") else {
            panic!("unexpected Debug line {line:?}");
        };
        let value = value.trim_end_matches(',');
        if value.ends_with('{') {
            prefix.push(name.to_owned());
            continue;
        }
        let path = prefix
            .iter()
            .map(String::as_str)
            .chain([name])
            .collect::<Vec<_>>()
            .join(".");
        out.push((path, value.to_owned()));
    }
    out
}

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md")
}

/// The block between `<!-- NAME:start -->` and `<!-- NAME:end -->`.
fn block<'a>(doc: &'a str, name: &str) -> (usize, usize, &'a str) {
    let start_marker = format!("<!-- {name}:start -->\n");
    let end_marker = format!("<!-- {name}:end -->");
    let start = doc
        .find(&start_marker)
        .unwrap_or_else(|| panic!("docs/configuration.md lacks {start_marker:?}"))
        + start_marker.len();
    let end = doc[start..]
        .find(&end_marker)
        .unwrap_or_else(|| panic!("docs/configuration.md lacks {end_marker:?}"))
        + start;
    (start, end, &doc[start..end])
}

/// The "what it trades" prose of each row already in the doc, by knob path.
fn trades(table: &str) -> BTreeMap<String, String> {
    table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            let knob = cells.first()?.trim().trim_matches('`').to_owned();
            let trade = cells.last()?.trim().to_owned();
            Some((knob, trade))
        })
        .collect()
}

fn render(
    header: &str,
    columns: &[Vec<(String, String)>],
    trades: &BTreeMap<String, String>,
) -> String {
    let mut out = String::from(header);
    for (i, (path, _)) in columns[0].iter().enumerate() {
        let values: Vec<String> = columns
            .iter()
            .map(|c| {
                assert_eq!(c[i].0, *path, "presets list fields in one order");
                c[i].1.replace('|', "\\|")
            })
            .collect();
        let trade = trades
            .get(path)
            .cloned()
            .unwrap_or_else(|| "TODO".to_owned());
        out.push_str(&format!(
            "| `{path}` | {} | {trade} |\n",
            values.join(" | ")
        ));
    }
    out
}

fn check(name: &str, header: &str, columns: &[Vec<(String, String)>]) {
    let path = doc_path();
    let doc = std::fs::read_to_string(&path).expect("reading docs/configuration.md");
    let (start, end, table) = block(&doc, name);
    let expected = render(header, columns, &trades(table));
    if table == expected {
        assert!(
            !expected.contains("| TODO |"),
            "docs/configuration.md: every knob in {name} needs its trade-off written"
        );
        return;
    }
    if std::env::var_os("SHOAL_BLESS").is_some() {
        let mut new = doc.clone();
        new.replace_range(start..end, &expected);
        std::fs::write(&path, new).expect("writing docs/configuration.md");
        return;
    }
    panic!(
        "docs/configuration.md's {name} table does not match the code.\n\
         Expected:\n{expected}\nFound:\n{table}\n\
         Regenerate with SHOAL_BLESS=1 cargo test -p shoal-core --test config_doc, then write \
         the trade-off of any new knob."
    );
}

#[test]
fn preset_table_matches_the_presets() {
    let columns: Vec<Vec<(String, String)>> = [Config::lan(), Config::wan(), Config::local()]
        .iter()
        .map(|c| flatten(&format!("{c:#?}")))
        .collect();
    assert!(columns[0].len() > 20, "the Debug walk found the fields");
    check(
        "presets",
        "| knob | `lan()` | `wan()` | `local()` | what it trades |\n|---|---|---|---|---|\n",
        &columns,
    );
}

#[test]
fn pool_table_matches_the_default() {
    let columns = vec![flatten(&format!("{:#?}", PoolConfig::default()))];
    assert!(columns[0].len() > 5, "the Debug walk found the fields");
    check(
        "pool",
        "| knob | default | what it trades |\n|---|---|---|\n",
        &columns,
    );
}

#[test]
fn flatten_walks_nested_structs() {
    let pairs = flatten(&format!("{:#?}", Config::lan()));
    let phi = pairs
        .iter()
        .find(|(p, _)| p == "phi.threshold")
        .expect("nested phi.threshold");
    assert_eq!(phi.1, "8.0");
    assert!(pairs.iter().any(|(p, v)| p == "mtu" && v == "1400"));
    assert!(pairs.iter().any(|(p, _)| p == "reconnect_timeout"));
}
