#![no_main]
//! migrate-check's readers of foreign text never panic: the SQL of CREATE statements (column
//! definitions, CHECKs, generated expressions, index terms and WHERE, virtual table modules),
//! SQLite-only function detection, default translation, and the value checks (dates, booleans,
//! JSON, text) against every proposed type.
use libfuzzer_sys::fuzz_target;
use sqlite_ops::migrate::{schema, types, values};

fuzz_target!(|data: &[u8]| {
    use types::PgType as T;
    for t in [
        T::BigInt,
        T::Boolean,
        T::Double,
        T::Numeric(Some((5, 2))),
        T::Text,
        T::Varchar(3),
        T::Bytea,
        T::Timestamp,
        T::Date,
        T::Time,
        T::Jsonb,
    ] {
        let _ = values::check(values::Value::Text(data), &t);
        let _ = values::check(values::Value::Blob(data), &t);
    }
    let _ = values::date_shape(values::Value::Text(data));
    if let Ok(s) = std::str::from_utf8(data) {
        for (_, def) in schema::column_definitions(s) {
            let _ = schema::generated_expression(&def);
        }
        let _ = schema::check_constraints(s);
        let _ = schema::index_terms(s);
        let _ = schema::where_clause(s);
        let _ = schema::virtual_module(s);
        let _ = schema::unquote(s);
        let _ = types::sqlite_only_uses(s);
        let _ = types::propose(s, false, false);
        let _ = types::default_for(s, &T::Boolean);
        let _ = types::default_for(s, &T::Bytea);
    }
});
