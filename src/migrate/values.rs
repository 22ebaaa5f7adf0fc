//! One SQLite value against its proposed Postgres type: would Postgres take it as it is? Pure.

use super::types::PgType;

/// A value as SQLite stores it (its storage class).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a [u8]),
    Blob(&'a [u8]),
}

impl Value<'_> {
    pub fn class(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

/// What keeps a value from loading as it is, or needs a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Problem {
    TextInNumericColumn,
    RealInIntegerColumn,
    BlobInNonBlobColumn,
    NulInText,
    InvalidUtf8,
    TooLong,
    NotBoolean,
    NotADate,
    InvalidJson,
    NumericOverflow,
    /// NULL in a primary key column: SQLite allows it in rowid tables, Postgres never.
    NullInPrimaryKey,
    /// Loads, as the text its bytes spell: a look, not a failure.
    BlobInTextColumn,
}

impl Problem {
    /// Whether Postgres rejects the row.
    pub fn blocks(self) -> bool {
        self != Problem::BlobInTextColumn
    }

    pub fn id(self) -> &'static str {
        match self {
            Problem::TextInNumericColumn => "text_in_numeric_column",
            Problem::RealInIntegerColumn => "real_in_integer_column",
            Problem::BlobInNonBlobColumn => "blob_in_non_blob_column",
            Problem::NulInText => "nul_in_text",
            Problem::InvalidUtf8 => "invalid_utf8",
            Problem::TooLong => "too_long",
            Problem::NotBoolean => "not_boolean",
            Problem::NotADate => "not_a_date",
            Problem::InvalidJson => "invalid_json",
            Problem::NumericOverflow => "numeric_overflow",
            Problem::NullInPrimaryKey => "null_in_primary_key",
            Problem::BlobInTextColumn => "blob_in_text_column",
        }
    }

    /// What it means and what to do, for the report.
    pub fn explain(self) -> &'static str {
        match self {
            Problem::TextInNumericColumn => {
                "text in a numeric column (SQLite's flexible typing); Postgres rejects it: clean it up or load the column as text"
            }
            Problem::RealInIntegerColumn => {
                "reals with a fraction in an INTEGER column; bigint rejects them: round them, or use numeric"
            }
            Problem::BlobInNonBlobColumn => "blobs where no blob belongs; Postgres rejects them",
            Problem::NulInText => {
                "text with NUL bytes; Postgres text cannot hold NUL: strip them or use bytea"
            }
            Problem::InvalidUtf8 => {
                "text that is not valid UTF-8; Postgres rejects it: re-encode it or use bytea"
            }
            Problem::TooLong => {
                "text longer than the declared VARCHAR(n), which SQLite never enforced; use text or widen n"
            }
            Problem::NotBoolean => {
                "values other than 0 and 1 in a BOOLEAN column; Postgres rejects them"
            }
            Problem::NotADate => {
                "values Postgres cannot read as a date/time: integers (unix seconds; or milliseconds, as JavaScript Dates stored by knex and most Node drivers are, from about 10^11 up), Julian days, other text. Convert them: to_timestamp(v) for seconds, to_timestamp(v / 1000.0) for milliseconds; or load as text"
            }
            Problem::InvalidJson => "values that are not valid JSON text; jsonb rejects them",
            Problem::NumericOverflow => "numbers too large for the declared NUMERIC(p,s)",
            Problem::NullInPrimaryKey => {
                "NULL in a primary key column (a legacy SQLite allowance); Postgres primary keys are NOT NULL"
            }
            Problem::BlobInTextColumn => {
                "blobs in a text column; they load as the text their bytes spell"
            }
        }
    }
}

/// Whether `value` loads into `pg` as it is.
///
/// "As it is" means the straightforward copy every loader does: integers and reals as SQLite
/// renders them as text (`3`, `3.5`, `1.0e+20`), text as its bytes, blobs as their bytes (hex
/// for bytea). The rules mirror Postgres 15's input functions for the types proposed; where
/// Postgres accepts more than is modelled here (say, `yesterday` as a timestamp), the value is
/// counted as a problem, never the other way round.
pub fn check(value: Value<'_>, pg: &PgType) -> Option<Problem> {
    use PgType as T;
    use Value as V;
    match (pg, value) {
        (_, V::Null) | (T::Bytea, _) => None,
        (T::Identity | T::BigInt, V::Integer(_)) => None,
        (T::Identity | T::BigInt, V::Real(_)) => Some(Problem::RealInIntegerColumn),
        (T::Identity | T::BigInt | T::Double | T::Numeric(_), V::Text(t)) => {
            (!special_float(t)).then_some(Problem::TextInNumericColumn)
        }
        (T::Double, V::Integer(_) | V::Real(_)) => None,
        (T::Numeric(None), V::Integer(_) | V::Real(_)) => None,
        (T::Numeric(Some((p, s))), V::Integer(i)) => (digits_before_point(i.unsigned_abs() as f64)
            > p - s)
            .then_some(Problem::NumericOverflow),
        (T::Numeric(Some((p, s))), V::Real(r)) => {
            let rounded = (r.abs() * 10f64.powi(*s as i32)).round() / 10f64.powi(*s as i32);
            (!r.is_finite() || digits_before_point(rounded) > p - s)
                .then_some(Problem::NumericOverflow)
        }
        (T::Boolean, V::Integer(i)) => (i != 0 && i != 1).then_some(Problem::NotBoolean),
        (T::Boolean, V::Real(_)) => Some(Problem::NotBoolean),
        (T::Boolean, V::Text(t)) => (!pg_bool(t)).then_some(Problem::NotBoolean),
        (T::Timestamp | T::Date, V::Integer(i)) => (!compact_date(i)).then_some(Problem::NotADate),
        (T::Timestamp | T::Date | T::Time, V::Real(_)) | (T::Time, V::Integer(_)) => {
            Some(Problem::NotADate)
        }
        (T::Timestamp | T::Date, V::Text(t)) => {
            text_problem(t).or((date_format(t).is_none()).then_some(Problem::NotADate))
        }
        (T::Time, V::Text(t)) => text_problem(t)
            .or((date_format(t).is_none() && parse_time(t).is_none()).then_some(Problem::NotADate)),
        (T::Jsonb, V::Integer(_)) => None,
        (T::Jsonb, V::Real(r)) => (!r.is_finite()).then_some(Problem::InvalidJson),
        (T::Jsonb, V::Text(t)) => text_problem(t).or((!json_ok(t)).then_some(Problem::InvalidJson)),
        (T::Text | T::Citext | T::Varchar(_), V::Integer(_) | V::Real(_)) => None,
        (T::Text | T::Citext, V::Text(t)) => text_problem(t),
        (T::Varchar(n), V::Text(t)) => text_problem(t).or(too_long(t, *n)),
        (T::Text | T::Citext, V::Blob(b)) => {
            Some(text_problem(b).unwrap_or(Problem::BlobInTextColumn))
        }
        (T::Varchar(n), V::Blob(b)) => Some(
            text_problem(b)
                .or(too_long(b, *n))
                .unwrap_or(Problem::BlobInTextColumn),
        ),
        (_, V::Blob(_)) => Some(Problem::BlobInNonBlobColumn),
    }
}

/// NUL bytes or invalid UTF-8: what no Postgres text type takes.
fn text_problem(t: &[u8]) -> Option<Problem> {
    if t.contains(&0) {
        Some(Problem::NulInText)
    } else if std::str::from_utf8(t).is_err() {
        Some(Problem::InvalidUtf8)
    } else {
        None
    }
}

/// varchar(n) counts characters, and silently drops excess trailing spaces.
fn too_long(t: &[u8], n: u32) -> Option<Problem> {
    let s = std::str::from_utf8(t).ok()?;
    (s.trim_end_matches(' ').chars().count() > n as usize).then_some(Problem::TooLong)
}

fn digits_before_point(x: f64) -> u32 {
    let mut n = 0;
    let mut v = x.trunc();
    while v >= 1.0 {
        v = (v / 10.0).trunc();
        n += 1;
    }
    n
}

/// float8 and numeric read NaN and the infinities from text.
fn special_float(t: &[u8]) -> bool {
    let s = String::from_utf8_lossy(t).trim().to_ascii_lowercase();
    matches!(
        s.as_str(),
        "nan" | "inf" | "+inf" | "-inf" | "infinity" | "+infinity" | "-infinity"
    )
}

/// Postgres's boolean input: true/false, yes/no, on/off, 1/0, and unique prefixes, any case.
pub fn pg_bool(t: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(t) else {
        return false;
    };
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return false;
    }
    ["true", "false", "yes", "no"]
        .iter()
        .any(|w| w.starts_with(s.as_str()))
        || (s.len() >= 2 && ("on".starts_with(s.as_str()) || "off".starts_with(s.as_str())))
        || s == "1"
        || s == "0"
}

/// An integer Postgres reads as a date: YYYYMMDD.
fn compact_date(i: i64) -> bool {
    (10_000_101..=99_991_231).contains(&i)
        && valid_date(
            (i / 10_000) as u32,
            ((i / 100) % 100) as u32,
            (i % 100) as u32,
        )
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

/// The shape of an ISO-8601 date or date-time that Postgres reads, like
/// `YYYY-MM-DD HH:MM:SS+zone`; None when the text is not one (or names an impossible date).
pub fn date_format(t: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(t).ok()?.trim();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if s.len() < 10 || s.as_bytes()[4] != b'-' || s.as_bytes()[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !valid_date(y, m, d) {
        return None;
    }
    if s.len() == 10 {
        return Some("YYYY-MM-DD".into());
    }
    let sep = s.as_bytes()[10];
    if sep != b' ' && sep != b'T' {
        return None;
    }
    let rest = &s[11..];
    // The zone: Z, or +HH, +HH:MM, +HHMM.
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let time_shape = parse_time(time.trim_end().as_bytes())?;
    if let Some(z) = zone {
        let ok = z.eq_ignore_ascii_case("z") || {
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            (digits.len() == 2 || digits.len() == 4)
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits[..2].parse::<u32>().is_ok_and(|h| h <= 15)
        };
        if !ok {
            return None;
        }
    }
    Some(format!(
        "YYYY-MM-DD{}{time_shape}{}",
        if sep == b'T' { "T" } else { " " },
        if zone.is_some() { "+zone" } else { "" }
    ))
}

/// `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff` with valid ranges: its shape (fractions are one
/// shape: they load alike).
fn parse_time(t: &[u8]) -> Option<&'static str> {
    let s = std::str::from_utf8(t).ok()?.trim();
    let mut parts = s.splitn(3, ':');
    let h: u32 = digits(parts.next()?, 2)?;
    let m: u32 = digits(parts.next()?, 2)?;
    let sec = parts.next();
    if m > 59 || h > 24 {
        return None;
    }
    match sec {
        None => (h < 24 || m == 0).then_some("HH:MM"),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, "0"));
            let sv: u32 = digits(whole, 2)?;
            let frac_ok = !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit());
            (sv <= 60 && frac_ok && (h < 24 || (m == 0 && sv == 0))).then_some("HH:MM:SS")
        }
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The shape of a value in a date-like column, for "mixed formats".
pub fn date_shape(value: Value<'_>) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Integer(i) if compact_date(i) => Some("YYYYMMDD (integer)".into()),
        Value::Integer(_) => Some("unix seconds (integer)".into()),
        Value::Real(_) => Some("Julian day (real)".into()),
        Value::Text(t) => Some(date_format(t).unwrap_or_else(|| "other text".into())),
        Value::Blob(_) => Some("blob".into()),
    }
}

/// Text jsonb takes: JSON (RFC 8259), without the \u0000 escape Postgres refuses.
fn json_ok(t: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(t).is_ok() && !contains_nul_escape(t)
}

fn contains_nul_escape(t: &[u8]) -> bool {
    // An escaped backslash before "u0000" is not the escape.
    let mut i = 0;
    while i < t.len() {
        if t[i] == b'\\' {
            if t[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// SQLite's NOCASE folds ASCII only; Postgres's citext folds every letter (`lower()`). Two
/// values that SQLite's unique index keeps apart but Postgres's folds together collide.
pub fn fold_case(t: &str) -> String {
    t.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use PgType as T;
    use Value as V;

    #[test]
    fn integer_columns_take_integers_only() {
        assert_eq!(check(V::Integer(5), &T::BigInt), None);
        assert_eq!(
            check(V::Real(2.5), &T::BigInt),
            Some(Problem::RealInIntegerColumn)
        );
        assert_eq!(
            check(V::Text(b"12abc"), &T::BigInt),
            Some(Problem::TextInNumericColumn)
        );
        assert_eq!(
            check(V::Blob(b"\x01"), &T::BigInt),
            Some(Problem::BlobInNonBlobColumn)
        );
        assert_eq!(check(V::Null, &T::BigInt), None);
    }

    #[test]
    fn text_must_be_utf8_without_nul_and_fit_varchar() {
        assert_eq!(check(V::Text("héllo".as_bytes()), &T::Text), None);
        assert_eq!(check(V::Text(b"a\0b"), &T::Text), Some(Problem::NulInText));
        assert_eq!(
            check(V::Text(b"\xff\xfe"), &T::Text),
            Some(Problem::InvalidUtf8)
        );
        assert_eq!(check(V::Text("ééé".as_bytes()), &T::Varchar(3)), None);
        assert_eq!(
            check(V::Text(b"abc   "), &T::Varchar(3)),
            None,
            "trailing spaces drop"
        );
        assert_eq!(
            check(V::Text(b"abcd"), &T::Varchar(3)),
            Some(Problem::TooLong)
        );
        assert_eq!(
            check(V::Blob(b"plain"), &T::Text),
            Some(Problem::BlobInTextColumn)
        );
        assert_eq!(
            check(V::Blob(b"\xff"), &T::Text),
            Some(Problem::InvalidUtf8)
        );
        assert_eq!(check(V::Text(b"\xff"), &T::Bytea), None);
    }

    #[test]
    fn booleans_follow_postgres_input() {
        for ok in ["1", "0", "t", "TRUE", " yes ", "of", "on", "n"] {
            assert!(pg_bool(ok.as_bytes()), "{ok}");
        }
        for bad in ["2", "o", "", "maybe", "truee"] {
            assert!(!pg_bool(bad.as_bytes()), "{bad}");
        }
        assert_eq!(check(V::Integer(2), &T::Boolean), Some(Problem::NotBoolean));
        assert_eq!(check(V::Integer(1), &T::Boolean), None);
        assert_eq!(check(V::Real(1.0), &T::Boolean), Some(Problem::NotBoolean));
    }

    #[test]
    fn dates_are_iso_with_valid_fields() {
        for (text, shape) in [
            ("2024-02-29", "YYYY-MM-DD"),
            ("2024-01-05 10:30:00", "YYYY-MM-DD HH:MM:SS"),
            ("2024-01-05 10:30", "YYYY-MM-DD HH:MM"),
            ("2024-01-05T10:30:00.123Z", "YYYY-MM-DDTHH:MM:SS+zone"),
            ("2024-01-05 10:30:00+05:30", "YYYY-MM-DD HH:MM:SS+zone"),
            ("2024-01-05 24:00:00", "YYYY-MM-DD HH:MM:SS"),
        ] {
            assert_eq!(
                date_format(text.as_bytes()).as_deref(),
                Some(shape),
                "{text}"
            );
        }
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-01-05 25:00",
            "05/01/2024",
            "soon",
            "2024-01-05 24:30:00",
        ] {
            assert_eq!(date_format(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(
            check(V::Integer(1_700_000_000), &T::Timestamp),
            Some(Problem::NotADate)
        );
        assert_eq!(check(V::Integer(20240105), &T::Date), None);
        assert_eq!(
            check(V::Real(2460000.5), &T::Timestamp),
            Some(Problem::NotADate)
        );
        assert_eq!(
            date_shape(V::Integer(1_700_000_000)).unwrap(),
            "unix seconds (integer)"
        );
    }

    #[test]
    fn json_is_rfc_8259_without_nul() {
        assert_eq!(check(V::Text(br#"{"a": [1, 2.5, "x"]}"#), &T::Jsonb), None);
        assert_eq!(
            check(V::Text(b"{a: 1}"), &T::Jsonb),
            Some(Problem::InvalidJson)
        );
        assert_eq!(
            check(V::Text(br#""\u0000""#), &T::Jsonb),
            Some(Problem::InvalidJson)
        );
        assert_eq!(check(V::Text(br#""\\u0000""#), &T::Jsonb), None);
        assert_eq!(check(V::Integer(3), &T::Jsonb), None);
    }

    #[test]
    fn numeric_precision_is_enforced() {
        let t = T::Numeric(Some((5, 2)));
        assert_eq!(check(V::Real(999.994), &t), None);
        assert_eq!(check(V::Real(999.996), &t), Some(Problem::NumericOverflow));
        assert_eq!(check(V::Integer(1000), &t), Some(Problem::NumericOverflow));
        assert_eq!(check(V::Text(b"NaN"), &T::Double), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_judged_without_panicking(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            for t in [T::BigInt, T::Boolean, T::Double, T::Numeric(Some((5, 2))), T::Text,
                      T::Varchar(3), T::Citext, T::Bytea, T::Timestamp, T::Date, T::Time, T::Jsonb] {
                let _ = check(V::Text(&b), &t);
                let _ = check(V::Blob(&b), &t);
            }
            let _ = date_format(&b);
            let _ = pg_bool(&b);
        }

        #[test]
        fn every_valid_iso_timestamp_is_read(y in 1u32..=9999, m in 1u32..=12, d in 1u32..=28,
                                            h in 0u32..24, mi in 0u32..60, s in 0u32..60) {
            let text = format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}");
            let shape = date_format(text.as_bytes());
            proptest::prop_assert_eq!(shape.as_deref(), Some("YYYY-MM-DD HH:MM:SS"));
            proptest::prop_assert_eq!(check(V::Text(text.as_bytes()), &T::Timestamp), None);
        }
    }

    #[test]
    fn case_folding_is_unicode() {
        assert_eq!(fold_case("ÄBC"), fold_case("äbc"));
    }
}
