//! Prometheus text exposition, as both the index's and a node's `/metrics` write it: the
//! `# HELP`/`# TYPE` header of a series and the escaping of label values.

use std::fmt::Write as _;

/// Appends the `# HELP` and `# TYPE` lines of series `name` (`kind`: counter, gauge, histogram).
pub fn help(o: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(o, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// A label value with backslash, quote and newline escaped.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_escape_what_would_end_them() {
        assert_eq!(super::escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut o = String::new();
        super::help(&mut o, "x_total", "counter", "Things.");
        assert_eq!(o, "# HELP x_total Things.\n# TYPE x_total counter\n");
    }
}
