//! From the SQLite schema to the Postgres plan: a type for every column, what the data scan
//! must check (case-insensitive unique keys, foreign keys, NULLs in primary keys), and the
//! schema findings. Pure.

use super::schema::{Column, Index, Schema, Table};
use super::types::{self, PgType};
use super::{Finding, Level};

#[derive(Debug, Clone)]
pub struct Plan {
    pub tables: Vec<TablePlan>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone)]
pub struct TablePlan {
    pub name: String,
    pub columns: Vec<ColumnPlan>,
    /// What orders the scan: `rowid`, or the primary key of a WITHOUT ROWID table.
    pub key: Vec<String>,
    pub without_rowid: bool,
    /// Unique keys Postgres compares case-insensitively (citext or NOCASE): column indexes.
    pub folded_uniques: Vec<(String, Vec<usize>)>,
    /// Foreign keys whose parent columns are unique, so Postgres can hold them.
    pub foreign_keys: Vec<FkCheck>,
}

#[derive(Debug, Clone)]
pub struct ColumnPlan {
    pub name: String,
    pub declared: String,
    pub pg: PgType,
    pub note: Option<String>,
    /// Generated columns are computed, not copied: not scanned.
    pub generated: bool,
    pub date_like: bool,
    /// Part of a primary key Postgres will enforce NOT NULL on (SQLite does not, except for
    /// the rowid and WITHOUT ROWID tables).
    pub in_primary_key: bool,
}

#[derive(Debug, Clone)]
pub struct FkCheck {
    pub name: String,
    pub from: Vec<String>,
    pub parent: String,
    pub to: Vec<String>,
}

/// Whether a column's name or type says it holds dates.
fn date_like(name: &str, pg: &PgType) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(pg, PgType::Timestamp | PgType::Date | PgType::Time)
        || ["_at", "_on", "_date", "_time", "date", "time", "timestamp"]
            .iter()
            .any(|s| n.ends_with(s))
}

fn finding(id: &str, level: Level, object: &str, summary: String, fix: &str) -> Finding {
    Finding {
        id: id.to_string(),
        level,
        object: object.to_string(),
        table: None,
        summary,
        count: None,
        examples: Vec::new(),
        fix: (!fix.is_empty()).then(|| fix.to_string()),
    }
}

/// The parent columns a foreign key refers to (its primary key when not named).
pub fn parent_columns(parent: &Table, to: &[String]) -> Vec<String> {
    if to.is_empty() {
        parent.primary_key.clone()
    } else {
        to.to_vec()
    }
}

/// Whether `columns` of `table` are covered by its primary key or a unique index (as sets).
fn unique_on(schema: &Schema, table: &Table, columns: &[String]) -> bool {
    let same = |a: &[String], b: &[String]| {
        a.len() == b.len()
            && a.iter()
                .all(|x| b.iter().any(|y| y.eq_ignore_ascii_case(x)))
    };
    same(&table.primary_key, columns)
        || schema.indexes.iter().any(|i| {
            i.table == table.name
                && i.unique
                && i.partial.is_none()
                && same(
                    &i.terms
                        .iter()
                        .filter_map(|t| t.column.clone())
                        .collect::<Vec<_>>(),
                    columns,
                )
        })
}

/// The index's name in Postgres: UNIQUE constraints get Postgres's `<table>_<columns>_key`
/// instead of SQLite's `sqlite_autoindex_...`.
pub fn pg_index_name(index: &Index) -> String {
    if index.origin == "u" {
        let cols: Vec<String> = index
            .terms
            .iter()
            .map(|t| t.column.clone().unwrap_or_else(|| "expr".into()))
            .collect();
        format!("{}_{}_key", index.table, cols.join("_"))
    } else {
        index.name.clone()
    }
}

/// Whether an index compares its key case-insensitively in Postgres.
fn folded(index: &Index, table: &Table) -> bool {
    index.terms.iter().any(|t| {
        t.collation.eq_ignore_ascii_case("NOCASE")
            || t.column.as_ref().is_some_and(|c| {
                table
                    .columns
                    .iter()
                    .any(|col| &col.name == c && col.nocase())
            })
    })
}

pub fn plan(schema: &Schema) -> Plan {
    let mut findings = Vec::new();
    let tables = schema
        .tables
        .iter()
        .map(|t| table_plan(schema, t, &mut findings))
        .collect();
    other_objects_findings(schema, &mut findings);
    mixed_case_finding(schema, &mut findings);
    if !schema.left_behind.is_empty() {
        findings.push(finding(
            "left_behind",
            Level::Info,
            &schema.left_behind.join(", "),
            format!(
                "left behind: Litestream's bookkeeping ({}), not the application's data: not in the DDL or the copy",
                schema.left_behind.join(", ")
            ),
            "",
        ));
    }
    Plan { tables, findings }
}

/// One table: its columns' types, what the copy compares rows by, and its constraints.
fn table_plan(schema: &Schema, t: &Table, findings: &mut Vec<Finding>) -> TablePlan {
    let columns = t
        .columns
        .iter()
        .map(|c| column_plan(schema, t, c, findings))
        .collect();
    table_findings(schema, t, findings);
    let foreign_keys = foreign_keys(schema, t, findings);
    let folded_uniques = folded_uniques(schema, t);
    let key = if t.without_rowid {
        t.primary_key.clone()
    } else {
        vec!["rowid".to_string()]
    };
    TablePlan {
        name: t.name.clone(),
        columns,
        key,
        without_rowid: t.without_rowid,
        folded_uniques,
        foreign_keys,
    }
}

/// One column: its Postgres type, and whether its default and generated expression carry over.
fn column_plan(schema: &Schema, t: &Table, c: &Column, findings: &mut Vec<Finding>) -> ColumnPlan {
    let rowid = t.rowid_alias.as_deref() == Some(c.name.as_str());
    let proposal = types::propose(&c.declared, rowid, c.nocase());
    let object = format!("{}.{}", t.name, c.name);
    if let Some(d) = &c.default {
        if let Err(why) = types::default_for(d, &proposal.pg) {
            findings.push(finding(
                "default_not_portable",
                Level::Work,
                &object,
                format!("DEFAULT {why}: left out of the DDL"),
                "set it in the application, or write the Postgres expression by hand",
            ));
        }
    }
    let generated_why = c
        .generated
        .as_ref()
        .and_then(|(expr, _)| not_verbatim(schema, &[expr]));
    if let (Some((expr, stored)), why) = (&c.generated, &generated_why) {
        if let Some(why) = why {
            findings.push(finding(
                "generated_not_portable",
                Level::Work,
                &object,
                format!("generated column AS ({expr}): {why}; emitted as a plain column"),
                "rewrite the expression for Postgres (GENERATED ALWAYS AS (...) STORED) or fill it in the application",
            ));
        } else if !stored {
            findings.push(finding(
                "generated_virtual",
                Level::Info,
                &object,
                "VIRTUAL generated column: Postgres 15 stores generated columns".into(),
                "",
            ));
        }
    }
    ColumnPlan {
        name: c.name.clone(),
        declared: c.declared.clone(),
        date_like: date_like(&c.name, &proposal.pg),
        pg: proposal.pg,
        note: proposal.note,
        // Generated in Postgres too (so not copied, not scanned) when portable.
        generated: c.generated.is_some() && generated_why.is_none(),
        in_primary_key: !rowid && !t.without_rowid && t.primary_key.iter().any(|p| p == &c.name),
    }
}

/// What the table's own shape means in Postgres: no primary key, WITHOUT ROWID, STRICT,
/// AUTOINCREMENT, CHECK constraints.
fn table_findings(schema: &Schema, t: &Table, findings: &mut Vec<Finding>) {
    if t.primary_key.is_empty() && !t.without_rowid {
        findings.push(finding(
            "implicit_rowid",
            Level::Work,
            &t.name,
            "no primary key: rows are known only by SQLite's implicit rowid, which Postgres does not have".into(),
            "add a primary key (id bigint GENERATED ALWAYS AS IDENTITY) if the application or replication needs one",
        ));
    }
    if t.without_rowid {
        findings.push(finding(
            "without_rowid",
            Level::Info,
            &t.name,
            "WITHOUT ROWID: stored in primary-key order in SQLite; a heap plus index in Postgres"
                .into(),
            "",
        ));
    }
    if t.strict {
        findings.push(finding(
            "strict_table",
            Level::Info,
            &t.name,
            "STRICT: SQLite already enforced the declared types, as Postgres will".into(),
            "",
        ));
    }
    if t.autoincrement {
        findings.push(finding(
            "autoincrement",
            Level::Info,
            &t.name,
            format!(
                "AUTOINCREMENT: the identity sequence starts after sqlite_sequence's {}",
                schema.sequences.get(&t.name).copied().unwrap_or(0)
            ),
            "",
        ));
    }
    if !t.checks.is_empty() {
        findings.push(finding(
            "check_constraints",
            Level::Work,
            &t.name,
            format!(
                "{} CHECK constraint(s) not carried over: {}",
                t.checks.len(),
                t.checks.join("; ")
            ),
            "add them to the Postgres table after checking the expressions (types are stricter there)",
        ));
    }
}

/// The foreign keys Postgres accepts (a parent that exists, with unique columns), each one
/// refused said as a finding.
fn foreign_keys(schema: &Schema, t: &Table, findings: &mut Vec<Finding>) -> Vec<FkCheck> {
    let mut foreign_keys = Vec::new();
    for (i, fk) in t.foreign_keys.iter().enumerate() {
        let name = format!("{}_fk_{i}", t.name);
        let Some(parent) = schema.table(&fk.parent) else {
            findings.push(finding(
                "foreign_key_dangling",
                Level::Work,
                &t.name,
                format!("foreign key to {}, which does not exist", fk.parent),
                "drop it or create the parent table",
            ));
            continue;
        };
        let to = parent_columns(parent, &fk.to);
        if to.is_empty() || !unique_on(schema, parent, &to) {
            findings.push(finding(
                "foreign_key_not_unique",
                Level::Work,
                &t.name,
                format!(
                    "foreign key ({}) -> {}({}): the parent columns are not unique, which Postgres requires; left out of the DDL",
                    fk.from.join(", "),
                    parent.name,
                    if to.is_empty() { "rowid".into() } else { to.join(", ") }
                ),
                "add a unique constraint on the parent columns",
            ));
            continue;
        }
        foreign_keys.push(FkCheck {
            name,
            from: fk.from.clone(),
            parent: parent.name.clone(),
            to,
        });
    }
    foreign_keys
}

/// The unique indexes that compare case-insensitively, by Postgres name and column positions:
/// the copy checks that their keys are still unique once folded.
fn folded_uniques(schema: &Schema, t: &Table) -> Vec<(String, Vec<usize>)> {
    schema
        .indexes
        .iter()
        .filter(|i| i.table == t.name && i.unique && i.partial.is_none() && folded(i, t))
        .filter_map(|i| {
            let cols: Option<Vec<usize>> = i
                .terms
                .iter()
                .map(|term| {
                    let c = term.column.as_ref()?;
                    t.columns.iter().position(|col| &col.name == c)
                })
                .collect();
            cols.map(|c| (pg_index_name(i), c))
        })
        .collect()
}

/// Indexes, views, virtual tables and triggers that do not carry over as written.
fn other_objects_findings(schema: &Schema, findings: &mut Vec<Finding>) {
    for i in &schema.indexes {
        if let Some(why) = not_verbatim(schema, &index_sql(i)) {
            findings.push(finding(
                "index_not_portable",
                Level::Work,
                &i.name,
                format!("index on {}: {why}; commented out in the DDL", i.table),
                "rewrite the expression or WHERE for Postgres",
            ));
        }
    }
    for v in &schema.virtual_tables {
        let (id, fix) = match v.on.as_str() {
            "fts3" | "fts4" | "fts5" => (
                "full_text_search",
                "a tsvector column (GENERATED ALWAYS AS (to_tsvector(...)) STORED) with a GIN index; queries move from MATCH to @@",
            ),
            "rtree" | "rtree_i32" | "geopoly" => (
                "rtree",
                "PostGIS geometry with a GiST index, or the cube extension",
            ),
            _ => (
                "virtual_table",
                "find the Postgres extension that does the same, or move it into the application",
            ),
        };
        findings.push(finding(
            id,
            Level::Work,
            &v.name,
            format!(
                "virtual table USING {}: no Postgres equivalent; left out of the DDL",
                v.on
            ),
            fix,
        ));
    }
    for v in &schema.views {
        if let Some(why) = not_verbatim(schema, &[&v.sql]) {
            findings.push(finding(
                "view_not_portable",
                Level::Work,
                &v.name,
                format!("view: {why}; commented out in the DDL"),
                "rewrite the query for Postgres",
            ));
        }
    }
    for tr in &schema.triggers {
        findings.push(finding(
            "trigger",
            Level::Work,
            &tr.name,
            format!(
                "trigger on {}: Postgres triggers call a function; commented out in the DDL",
                tr.on
            ),
            "rewrite as a PL/pgSQL function and CREATE TRIGGER ... EXECUTE FUNCTION",
        ));
    }
}

/// Names with capitals, which the DDL quotes and unquoted SQL would fold.
fn mixed_case_finding(schema: &Schema, findings: &mut Vec<Finding>) {
    let mixed_case: Vec<String> = schema
        .tables
        .iter()
        .flat_map(|t| {
            std::iter::once(t.name.clone()).chain(t.columns.iter().map(|c| c.name.clone()))
        })
        .filter(|n| n.chars().any(|c| c.is_ascii_uppercase()))
        .collect();
    if !mixed_case.is_empty() {
        findings.push(finding(
            "mixed_case_identifiers",
            Level::Info,
            "schema",
            format!(
                "{} name(s) with capitals ({}): the DDL quotes them, and Postgres folds unquoted names to lower case",
                mixed_case.len(),
                mixed_case.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
            "quote them in the application's SQL, or rename them to lower case",
        ));
    }
}

/// Why SQL written for SQLite (a view, an index expression or WHERE, a generated column) cannot
/// go into the DDL as written, if it cannot. The plan and the DDL ask the same question.
pub fn not_verbatim(schema: &Schema, sql: &[&str]) -> Option<String> {
    let mut uses: Vec<String> = Vec::new();
    for u in sql.iter().flat_map(|s| types::sqlite_only_uses(s)) {
        if !uses.contains(&u) {
            uses.push(u);
        }
    }
    if !uses.is_empty() {
        return Some(format!("uses {}", uses.join(", ")));
    }
    (!sql.is_empty() && !all_lower_case(schema)).then(|| {
        "the schema has names with capitals, which SQL written for SQLite would not find unquoted in Postgres"
            .to_string()
    })
}

/// The parts of an index written as SQL (expressions and WHERE); plain columns are quoted by
/// the DDL itself.
pub fn index_sql(index: &Index) -> Vec<&str> {
    index
        .terms
        .iter()
        .filter(|t| t.column.is_none())
        .map(|t| t.text.as_str())
        .chain(index.partial.as_deref())
        .collect()
}

/// Whether every table and column name is lower case, so SQL written for SQLite finds them
/// unquoted in Postgres.
fn all_lower_case(schema: &Schema) -> bool {
    schema.tables.iter().all(|t| {
        !t.name.chars().any(|c| c.is_ascii_uppercase())
            && t.columns
                .iter()
                .all(|c| !c.name.chars().any(|ch| ch.is_ascii_uppercase()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(sql: &str) -> Plan {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(sql).unwrap();
        plan(&super::super::schema::read(&conn).unwrap())
    }

    fn ids(p: &Plan) -> Vec<&str> {
        p.findings.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn views_over_capitalised_names_are_not_carried_over_as_written() {
        let p = plan_of(
            "CREATE TABLE Users(id INTEGER PRIMARY KEY); CREATE VIEW v AS SELECT id FROM Users;",
        );
        assert!(ids(&p).contains(&"view_not_portable"), "{:?}", p.findings);
        assert!(ids(&p).contains(&"mixed_case_identifiers"));
        let p = plan_of(
            "CREATE TABLE users(id INTEGER PRIMARY KEY); CREATE VIEW v AS SELECT id FROM users;",
        );
        assert!(!ids(&p).contains(&"view_not_portable"), "{:?}", p.findings);
    }

    #[test]
    fn keys_postgres_must_check_are_planned() {
        let p = plan_of(
            "CREATE TABLE p(id INTEGER PRIMARY KEY, code TEXT, email TEXT COLLATE NOCASE UNIQUE);
             CREATE TABLE c(id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p(id), code TEXT REFERENCES p(code));",
        );
        let c = p.tables.iter().find(|t| t.name == "c").unwrap();
        assert_eq!(c.foreign_keys.len(), 1, "only the key to a unique column");
        assert_eq!(c.foreign_keys[0].to, ["id"]);
        assert!(ids(&p).contains(&"foreign_key_not_unique"));
        let parent = p.tables.iter().find(|t| t.name == "p").unwrap();
        assert_eq!(parent.folded_uniques.len(), 1);
        assert_eq!(parent.folded_uniques[0].0, "p_email_key");
        assert_eq!(parent.columns[0].pg, PgType::Identity);
        assert_eq!(parent.columns[2].pg, PgType::Citext);
    }
}
