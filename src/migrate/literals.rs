//! SQLite's double-quoted strings, read as SQLite reads them: a double-quoted token that names
//! no column in scope is a string literal (SQLite's "double-quoted string" misfeature, on by
//! default), which Postgres would take for a column name. Pure.

/// `sql` with each double-quoted token that names none of `columns` (compared case-insensitively,
/// as SQLite does) rewritten as a single-quoted literal; single-quoted strings, `[bracketed]` and
/// `` `backquoted` `` names and everything else are left as they are.
pub fn literal_strings(sql: &str, columns: &[&str]) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '[' | '`' => {
                let close = if c == '[' { ']' } else { c };
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == close {
                        // '' inside a string is a quote, not its end.
                        if close == '\'' && chars.peek() == Some(&'\'') {
                            out.push(chars.next().expect("peeked"));
                            continue;
                        }
                        break;
                    }
                }
            }
            '"' => {
                let mut token = String::new();
                while let Some(d) = chars.next() {
                    if d == '"' {
                        if chars.peek() == Some(&'"') {
                            token.push(chars.next().expect("peeked"));
                            continue;
                        }
                        break;
                    }
                    token.push(d);
                }
                if columns.iter().any(|col| col.eq_ignore_ascii_case(&token)) {
                    out.push('"');
                    out.push_str(&token.replace('"', "\"\""));
                    out.push('"');
                } else {
                    out.push('\'');
                    out.push_str(&token.replace('\'', "''"));
                    out.push('\'');
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_quoted_strings_become_literals_and_columns_stay_names() {
        // PocketBase's `_collections`: DEFAULT "base", DEFAULT "[]", DEFAULT "{}".
        assert_eq!(literal_strings("\"base\"", &[]), "'base'");
        assert_eq!(literal_strings("\"[]\"", &[]), "'[]'");
        assert_eq!(literal_strings("\"it's\"", &[]), "'it''s'");
        // An index's WHERE clause: "type" is a column, "view" is not.
        assert_eq!(
            literal_strings("\"type\" != \"view\" AND name = 'a\"b'", &["type", "name"]),
            "\"type\" != 'view' AND name = 'a\"b'"
        );
        assert_eq!(
            literal_strings("\"TYPE\" = \"x\"\"y\"", &["type"]),
            "\"TYPE\" = 'x\"y'"
        );
        assert_eq!(
            literal_strings("[x] = `y` || 'z''s'", &[]),
            "[x] = `y` || 'z''s'"
        );
        // Unterminated input is carried, not dropped.
        assert_eq!(literal_strings("\"abc", &[]), "'abc'");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_keeps_text_without_double_quotes(s in ".{0,64}") {
            let out = literal_strings(&s, &["a"]);
            if !s.contains('"') {
                proptest::prop_assert_eq!(out, s);
            }
        }
    }
}
