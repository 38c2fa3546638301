//! Output shared by the binaries: a machine-readable JSON line (always the last line of
//! stdout when `--json` is given) and plain aligned tables for humans.

use serde::Serialize;
use std::io::Write;

/// Serialises `value` as one line of compact JSON.
pub fn json_line<T: Serialize + ?Sized>(value: &T) -> String {
    // Serialising plain data structs with string keys cannot fail.
    serde_json::to_string(value).expect("report types serialise to JSON")
}

/// Prints `value` as one JSON line on stdout and flushes, so it is the last line a reader
/// sees.
pub fn print_json_line<T: Serialize + ?Sized>(value: &T) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", json_line(value))?;
    out.flush()
}

/// Renders rows as a left-aligned table with two spaces between columns (like `serf
/// members`). Every row should have as many cells as `header`.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i + 1 < n {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["Name", "State"],
            &[
                vec!["director".into(), "alive".into()],
                vec!["w".into(), "left".into()],
            ],
        );
        assert_eq!(t, "Name      State\ndirector  alive\nw         left\n");
    }

    #[test]
    fn json_line_is_one_line() {
        #[derive(Serialize)]
        struct R {
            rps: f64,
            errors: u64,
        }
        let s = json_line(&R {
            rps: 1.5,
            errors: 0,
        });
        assert_eq!(s, r#"{"rps":1.5,"errors":0}"#);
    }
}
