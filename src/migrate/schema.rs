//! Reads the schema of a database: tables, columns (with collation and generated expressions),
//! indexes, foreign keys, views, triggers and virtual tables. Each query is a PRAGMA or a read of
//! `sqlite_schema`: short. The parsing of SQL text (the pieces PRAGMAs do not give) is pure.

use rusqlite::Connection;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub tables: Vec<Table>,
    pub indexes: Vec<Index>,
    pub views: Vec<Named>,
    pub triggers: Vec<Named>,
    pub virtual_tables: Vec<Named>,
    /// AUTOINCREMENT's high-water marks (`sqlite_sequence`).
    pub sequences: HashMap<String, i64>,
    /// Tables of tools rather than the application (Litestream's `_litestream_*`), left out of
    /// the DDL and the copy: their names.
    pub left_behind: Vec<String>,
}

/// Whether a table belongs to a tool rather than the application: Litestream's bookkeeping
/// (`_litestream_seq`, `_litestream_lock`), which must not move to Postgres.
pub fn is_tool_table(name: &str) -> bool {
    name.to_ascii_lowercase().starts_with("_litestream_")
}

#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    /// For triggers, the table; for virtual tables, the module (fts5, rtree...).
    pub on: String,
    pub sql: String,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub without_rowid: bool,
    pub strict: bool,
    pub columns: Vec<Column>,
    /// Primary key columns in key order (empty: none declared).
    pub primary_key: Vec<String>,
    /// The `INTEGER PRIMARY KEY` column, which is the rowid.
    pub rowid_alias: Option<String>,
    pub autoincrement: bool,
    pub foreign_keys: Vec<ForeignKey>,
    /// CHECK constraints, as written.
    pub checks: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub declared: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// The column's collation (`BINARY` unless declared).
    pub collation: String,
    /// `AS (expr)`, and whether STORED.
    pub generated: Option<(String, bool)>,
}

impl Column {
    pub fn nocase(&self) -> bool {
        self.collation.eq_ignore_ascii_case("NOCASE")
    }
}

#[derive(Debug, Clone)]
pub struct ForeignKey {
    pub parent: String,
    pub from: Vec<String>,
    /// Parent columns; empty means the parent's primary key.
    pub to: Vec<String>,
    pub on_update: String,
    pub on_delete: String,
}

#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub table: String,
    pub unique: bool,
    /// `c` (CREATE INDEX), `u` (UNIQUE constraint), `pk` (PRIMARY KEY).
    pub origin: String,
    /// Key terms: a column name, or an expression; with the term's collation.
    pub terms: Vec<IndexTerm>,
    /// The WHERE of a partial index, as written.
    pub partial: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IndexTerm {
    /// The column, or None for an expression.
    pub column: Option<String>,
    /// The term as written in CREATE INDEX (for expressions), else the column name.
    pub text: String,
    pub collation: String,
    pub desc: bool,
}

impl Schema {
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }
}

/// Reads the whole schema.
pub fn read(conn: &Connection) -> rusqlite::Result<Schema> {
    let mut schema = Schema::default();
    let mut list = conn.prepare(
        "SELECT name, type, wr, strict FROM pragma_table_list WHERE schema = 'main' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let entries: Vec<(String, String, bool, bool)> = list
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let sql_of = |kind: &str, name: &str| -> rusqlite::Result<String> {
        conn.query_row(
            "SELECT coalesce(sql, '') FROM sqlite_schema WHERE type = ?1 AND name = ?2",
            [kind, name],
            |r| r.get(0),
        )
    };
    for (name, kind, without_rowid, strict) in entries {
        if is_tool_table(&name) {
            schema.left_behind.push(name);
            continue;
        }
        match kind.as_str() {
            "table" => {
                let sql = sql_of("table", &name)?;
                schema
                    .tables
                    .push(read_table(conn, &name, &sql, without_rowid, strict)?);
            }
            "virtual" => {
                let sql = sql_of("table", &name)?;
                schema.virtual_tables.push(Named {
                    on: virtual_module(&sql),
                    name,
                    sql,
                });
            }
            _ => {} // views come from sqlite_schema below; shadow tables belong to a virtual one
        }
    }
    for t in &schema.tables {
        schema.indexes.extend(read_indexes(conn, &t.name)?);
    }
    read_views_and_triggers(conn, &mut schema)?;
    let has_sequence: bool = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'",
        [],
        |r| r.get(0),
    )?;
    if has_sequence {
        let mut s = conn.prepare("SELECT name, seq FROM sqlite_sequence")?;
        for row in s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (name, seq): (String, i64) = row?;
            schema.sequences.insert(name, seq);
        }
    }
    Ok(schema)
}

/// The views and triggers of `sqlite_schema`, but those on tools' tables.
fn read_views_and_triggers(conn: &Connection, schema: &mut Schema) -> rusqlite::Result<()> {
    let mut others = conn.prepare(
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema \
         WHERE type IN ('view', 'trigger') ORDER BY rowid",
    )?;
    let rows = others.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Named {
                name: r.get(1)?,
                on: r.get(2)?,
                sql: r.get(3)?,
            },
        ))
    })?;
    for row in rows {
        let (kind, named) = row?;
        if is_tool_table(&named.on) {
            continue;
        }
        if kind == "view" {
            schema.views.push(named);
        } else {
            schema.triggers.push(named);
        }
    }
    Ok(())
}

fn read_table(
    conn: &Connection,
    name: &str,
    sql: &str,
    without_rowid: bool,
    strict: bool,
) -> rusqlite::Result<Table> {
    let defs = column_definitions(sql);
    let (columns, mut pk, autoincrement) = read_columns(conn, name, &defs)?;
    pk.sort();
    let primary_key: Vec<String> = pk.into_iter().map(|(_, c)| c).collect();
    // INTEGER PRIMARY KEY (exactly that type, one column, not DESC-declared) in a rowid table.
    let rowid_alias = match (&primary_key[..], without_rowid) {
        ([only], false) => columns
            .iter()
            .find(|c| &c.name == only && c.declared.eq_ignore_ascii_case("INTEGER"))
            .filter(|_| !desc_primary_key(&defs, only))
            .map(|c| c.name.clone()),
        _ => None,
    };
    Ok(Table {
        name: name.to_string(),
        without_rowid,
        strict,
        columns,
        primary_key,
        rowid_alias,
        autoincrement,
        foreign_keys: read_foreign_keys(conn, name)?,
        checks: check_constraints(sql),
    })
}

/// Primary-key columns with their positions in the key (from 1).
type PrimaryKeyAt = Vec<(i64, String)>;

/// One row of `pragma_table_xinfo`: a column (`hidden` 2 or 3 for a generated one).
struct XinfoRow {
    name: String,
    declared: String,
    not_null: bool,
    default: Option<String>,
    /// Its position in the primary key, from 1; 0 when not in it.
    pk: i64,
    hidden: i64,
}

/// One row of `pragma_foreign_key_list`: one column of constraint `id` (`to` is absent when
/// the parent's primary key is meant).
struct ForeignKeyRow {
    id: i64,
    parent: String,
    from: String,
    to: Option<String>,
    on_update: String,
    on_delete: String,
}

/// The table's columns, its primary-key columns by position, and whether it is AUTOINCREMENT.
/// `defs` are the column definitions of its CREATE TABLE, for generated expressions.
fn read_columns(
    conn: &Connection,
    name: &str,
    defs: &[(String, String)],
) -> rusqlite::Result<(Vec<Column>, PrimaryKeyAt, bool)> {
    let mut columns = Vec::new();
    let mut pk: Vec<(i64, String)> = Vec::new();
    let mut autoincrement = false;
    let mut s = conn.prepare(
        "SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1)",
    )?;
    let rows = s.query_map([name], |r| {
        Ok(XinfoRow {
            name: r.get("name")?,
            declared: r.get("type")?,
            not_null: r.get("notnull")?,
            default: r.get("dflt_value")?,
            pk: r.get("pk")?,
            hidden: r.get("hidden")?,
        })
    })?;
    for row in rows {
        let XinfoRow {
            name: col,
            declared,
            not_null,
            default,
            pk: pk_pos,
            hidden,
        } = row?;
        let (_, collation, _, _, autoinc) =
            conn.column_metadata(None::<&str>, name, col.as_str())?;
        autoincrement |= autoinc;
        if pk_pos > 0 {
            pk.push((pk_pos, col.clone()));
        }
        let generated = (hidden == 2 || hidden == 3).then(|| {
            let def = defs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&col))
                .map_or("", |(_, d)| d.as_str());
            (generated_expression(def).unwrap_or_default(), hidden == 3)
        });
        columns.push(Column {
            name: col,
            declared,
            not_null,
            default,
            collation: collation
                .map(|c| c.to_string_lossy().into_owned())
                .unwrap_or_else(|| "BINARY".into()),
            generated,
        });
    }
    Ok((columns, pk, autoincrement))
}

/// The foreign keys, one per constraint with its columns in order.
fn read_foreign_keys(conn: &Connection, name: &str) -> rusqlite::Result<Vec<ForeignKey>> {
    let mut foreign_keys: Vec<ForeignKey> = Vec::new();
    let mut s = conn.prepare(
        "SELECT id, \"table\", \"from\", \"to\", on_update, on_delete \
         FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )?;
    let rows = s.query_map([name], |r| {
        Ok(ForeignKeyRow {
            id: r.get("id")?,
            parent: r.get("table")?,
            from: r.get("from")?,
            to: r.get("to")?,
            on_update: r.get("on_update")?,
            on_delete: r.get("on_delete")?,
        })
    })?;
    let mut last_id = None;
    for row in rows {
        let ForeignKeyRow {
            id,
            parent,
            from,
            to,
            on_update,
            on_delete,
        } = row?;
        if last_id != Some(id) {
            foreign_keys.push(ForeignKey {
                parent,
                from: Vec::new(),
                to: Vec::new(),
                on_update,
                on_delete,
            });
            last_id = Some(id);
        }
        let fk = foreign_keys.last_mut().expect("pushed above");
        fk.from.push(from);
        if let Some(to) = to {
            fk.to.push(to);
        }
    }
    Ok(foreign_keys)
}

fn read_indexes(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Index>> {
    let mut list = conn
        .prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1) ORDER BY seq DESC")?;
    let entries: Vec<(String, bool, String)> = list
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for (name, unique, origin) in entries {
        let sql: String = conn
            .query_row(
                "SELECT coalesce(sql, '') FROM sqlite_schema WHERE type = 'index' AND name = ?1",
                [&name],
                |r| r.get(0),
            )
            .unwrap_or_default();
        let written = index_terms(&sql);
        let mut s = conn.prepare(
            "SELECT cid, name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
        )?;
        let rows: Vec<(i64, Option<String>, bool, String)> = s
            .query_map([&name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let terms = rows
            .into_iter()
            .enumerate()
            .map(|(i, (cid, column, desc, collation))| IndexTerm {
                text: match (&column, written.get(i)) {
                    (None, Some(w)) => strip_order(w),
                    (Some(c), _) => c.clone(),
                    (None, None) if cid == -1 => "rowid".into(),
                    (None, None) => "?".into(),
                },
                column,
                collation,
                desc,
            })
            .collect();
        out.push(Index {
            partial: where_clause(&sql),
            name,
            table: table.to_string(),
            unique,
            origin,
            terms,
        });
    }
    Ok(out)
}

/// Splits `s` at top-level commas (outside parentheses, strings and quoted identifiers).
pub fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '[') => quote = Some(']'),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(s[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = s[start..].trim();
    if !last.is_empty() {
        parts.push(last.to_string());
    }
    parts
}

/// The text between the first `(` and its matching `)`, and what follows.
fn parenthesized(s: &str) -> Option<(&str, &str)> {
    let open = s.find('(')?;
    let (mut depth, mut quote) = (0i32, None::<char>);
    for (i, c) in s[open..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '[') => quote = Some(']'),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some((&s[open + 1..open + i], &s[open + i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// An identifier without its quotes.
pub fn unquote(s: &str) -> String {
    let s = s.trim();
    let inner = |open: char, close: char| {
        s.strip_prefix(open)
            .and_then(|r| r.strip_suffix(close))
            .map(|r| r.replace(&format!("{close}{close}"), &close.to_string()))
    };
    inner('"', '"')
        .or_else(|| inner('`', '`'))
        .or_else(|| inner('[', ']'))
        .or_else(|| inner('\'', '\''))
        .unwrap_or_else(|| s.to_string())
}

/// The first token of a definition (an identifier, possibly quoted) and the rest.
fn first_token(def: &str) -> (String, &str) {
    let def = def.trim_start();
    let end = match def.chars().next() {
        Some(q @ ('"' | '`' | '\'')) => def[1..].find(q).map_or(def.len(), |i| i + 2),
        Some('[') => def.find(']').map_or(def.len(), |i| i + 1),
        _ => def
            .find(|c: char| c.is_whitespace() || c == '(')
            .unwrap_or(def.len()),
    };
    (unquote(&def[..end]), &def[end..])
}

const TABLE_CONSTRAINTS: &[&str] = &["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"];

/// CREATE TABLE's column definitions: (name, the rest of the definition).
pub fn column_definitions(create: &str) -> Vec<(String, String)> {
    let Some((body, _)) = parenthesized(create) else {
        return Vec::new();
    };
    split_top_level(body)
        .into_iter()
        .filter_map(|d| {
            let (name, rest) = first_token(&d);
            (!TABLE_CONSTRAINTS.contains(&name.to_ascii_uppercase().as_str()))
                .then(|| (name, rest.trim().to_string()))
        })
        .collect()
}

/// CHECK constraints of a CREATE TABLE (column and table level), their expressions as written.
pub fn check_constraints(create: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some((body, _)) = parenthesized(create) else {
        return out;
    };
    let upper = body.to_ascii_uppercase();
    let mut from = 0;
    while let Some(i) = upper[from..].find("CHECK") {
        let at = from + i;
        let before_ok = at == 0 || !upper.as_bytes()[at - 1].is_ascii_alphanumeric();
        let after = &body[at + 5..];
        if before_ok && after.trim_start().starts_with('(') {
            if let Some((expr, _)) = parenthesized(after) {
                out.push(expr.trim().to_string());
            }
        }
        from = at + 5;
    }
    out
}

/// `AS (expr)` of a generated column's definition.
pub fn generated_expression(def: &str) -> Option<String> {
    let upper = def.to_ascii_uppercase();
    let mut from = 0;
    while let Some(i) = upper[from..].find("AS") {
        let at = from + i;
        let word = (at == 0 || !upper.as_bytes()[at - 1].is_ascii_alphanumeric())
            && upper
                .as_bytes()
                .get(at + 2)
                .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_');
        if word && def[at + 2..].trim_start().starts_with('(') {
            return parenthesized(&def[at + 2..]).map(|(e, _)| e.trim().to_string());
        }
        from = at + 2;
    }
    None
}

/// Whether the primary key column is declared `PRIMARY KEY DESC` (then it is no rowid alias).
fn desc_primary_key(defs: &[(String, String)], column: &str) -> bool {
    defs.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(column))
        .is_some_and(|(_, d)| {
            let u = d.to_ascii_uppercase();
            u.split_whitespace()
                .collect::<Vec<_>>()
                .windows(3)
                .any(|w| w == ["PRIMARY", "KEY", "DESC"])
        })
}

/// The terms of CREATE INDEX ... ON t (terms), as written.
pub fn index_terms(create: &str) -> Vec<String> {
    let upper = create.to_ascii_uppercase();
    let Some(on) = upper.find(" ON ") else {
        return Vec::new();
    };
    parenthesized(&create[on..])
        .map(|(body, _)| split_top_level(body))
        .unwrap_or_default()
}

/// The WHERE clause of a partial index.
pub fn where_clause(create: &str) -> Option<String> {
    let upper = create.to_ascii_uppercase();
    let on = upper.find(" ON ")?;
    let (_, after) = parenthesized(&create[on..])?;
    let trimmed = after.trim_start();
    trimmed
        .get(..5)
        .filter(|w| w.eq_ignore_ascii_case("WHERE"))
        .map(|_| trimmed[5..].trim().trim_end_matches(';').trim().to_string())
}

/// An index term without its ASC/DESC and COLLATE (carried separately).
fn strip_order(term: &str) -> String {
    let mut t = term.trim().to_string();
    for suffix in [" ASC", " DESC"] {
        if t.to_ascii_uppercase().ends_with(suffix) {
            t.truncate(t.len() - suffix.len());
        }
    }
    if let Some(i) = t.to_ascii_uppercase().rfind(" COLLATE ") {
        t.truncate(i);
    }
    t.trim().to_string()
}

/// The module of CREATE VIRTUAL TABLE t USING module(...).
pub fn virtual_module(create: &str) -> String {
    let upper = create.to_ascii_uppercase();
    upper
        .find(" USING ")
        .map(|i| {
            create[i + 7..]
                .trim_start()
                .split(|c: char| c == '(' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_definitions_skip_table_constraints_and_keep_quotes_out() {
        let defs = column_definitions(
            "CREATE TABLE \"my t\" (id INTEGER PRIMARY KEY, \"full name\" TEXT DEFAULT 'a,b', \
             total REAL AS (price * qty) STORED, [x] INT CHECK (x > 0), \
             CONSTRAINT c UNIQUE (a), PRIMARY KEY (id), CHECK (total >= 0))",
        );
        let names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["id", "full name", "total", "x"]);
        assert_eq!(generated_expression(&defs[2].1).unwrap(), "price * qty");
        assert_eq!(generated_expression(&defs[1].1), None);
    }

    #[test]
    fn checks_indexes_and_modules_are_read_from_sql() {
        assert_eq!(
            check_constraints("CREATE TABLE t (x INT CHECK (x > 0), y, CHECK(y <> x))"),
            ["x > 0", "y <> x"]
        );
        let idx = "CREATE UNIQUE INDEX i ON t (lower(email) DESC, name COLLATE NOCASE) WHERE deleted_at IS NULL";
        assert_eq!(
            index_terms(idx),
            ["lower(email) DESC", "name COLLATE NOCASE"]
        );
        assert_eq!(strip_order("lower(email) DESC"), "lower(email)");
        assert_eq!(where_clause(idx).unwrap(), "deleted_at IS NULL");
        assert_eq!(where_clause("CREATE INDEX i ON t(a)"), None);
        assert_eq!(
            virtual_module("CREATE VIRTUAL TABLE docs USING fts5(body)"),
            "fts5"
        );
        assert_eq!(unquote("[a b]"), "a b");
        assert_eq!(unquote("\"a\"\"b\""), "a\"b");
    }
}
