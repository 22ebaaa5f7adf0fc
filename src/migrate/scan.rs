//! The data scan: every row of every table, in key order, a chunk at a time (one short read
//! transaction each, spaced by a rate limit), with foreign keys checked per chunk.

use super::plan::{ColumnPlan, FkCheck, Plan, TablePlan};
use super::values::{self, Problem, Value};
use crate::readonly::{pause_before_retry, retrying, transient};
use rusqlite::types::{Value as Owned, ValueRef};
use rusqlite::Connection;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    pub chunk_rows: u32,
    /// Rows read per second at most (0: no limit).
    pub max_rows_per_second: u64,
    /// Example row keys kept per finding.
    pub examples: usize,
}

/// Counts with a few examples (row keys).
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub count: u64,
    pub examples: Vec<serde_json::Value>,
}

impl Tally {
    fn add(&mut self, key: &serde_json::Value, limit: usize) {
        self.count += 1;
        if self.examples.len() < limit {
            self.examples.push(key.clone());
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ColumnStats {
    /// Values per storage class: null, integer, real, text, blob.
    pub classes: [u64; 5],
    pub problems: BTreeMap<Problem, Tally>,
    /// For date-like columns: values per format.
    pub date_shapes: BTreeMap<String, Tally>,
    /// Reals with no fraction.
    pub integral_reals: u64,
}

#[derive(Debug, Clone, Default)]
pub struct TableStats {
    pub rows: u64,
    /// The largest rowid seen (identity sequences start after it).
    pub max_rowid: Option<i64>,
    pub columns: Vec<ColumnStats>,
    /// Per case-insensitive unique index: rows whose key another row already has.
    pub collisions: BTreeMap<String, Tally>,
    /// Per foreign key: rows whose parent does not exist.
    pub orphans: BTreeMap<String, Tally>,
}

#[derive(Debug, Clone, Default)]
pub struct ScanStats {
    pub tables: Vec<TableStats>,
    pub statements: u64,
    /// Time inside statements (reading), and wall time including the rate limit's pauses.
    pub active: Duration,
    pub wall: Duration,
    /// Bytes of values read.
    pub bytes: u64,
    /// The longest single statement: the longest read transaction held.
    pub longest_statement: Duration,
    /// Chunks started over because the wal-index was caught mid-update by a writer.
    pub retries: u64,
}

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn value(v: ValueRef<'_>) -> Value<'_> {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(t),
        ValueRef::Blob(b) => Value::Blob(b),
    }
}

fn class_index(v: &Value<'_>) -> usize {
    match v {
        Value::Null => 0,
        Value::Integer(_) => 1,
        Value::Real(_) => 2,
        Value::Text(_) => 3,
        Value::Blob(_) => 4,
    }
}

fn size(v: &Value<'_>) -> u64 {
    match v {
        Value::Null => 0,
        Value::Integer(_) | Value::Real(_) => 8,
        Value::Text(t) | Value::Blob(t) => t.len() as u64,
    }
}

/// A row key for examples: the rowid as a number, a primary key as an array of text.
fn example_key(key: &[Owned]) -> serde_json::Value {
    match key {
        [Owned::Integer(i)] => serde_json::json!(i),
        _ => serde_json::Value::Array(
            key.iter()
                .map(|v| match v {
                    Owned::Null => serde_json::Value::Null,
                    Owned::Integer(i) => serde_json::json!(i),
                    Owned::Real(r) => serde_json::json!(r),
                    Owned::Text(t) => serde_json::json!(t),
                    Owned::Blob(b) => serde_json::json!(format!("x'{}'", hex(b))),
                })
                .collect(),
        ),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A value as text for case-insensitive key comparison.
fn folded(v: &Value<'_>) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(r) => Some(r.to_string()),
        Value::Text(t) => Some(values::fold_case(&String::from_utf8_lossy(t))),
        Value::Blob(b) => Some(format!("x'{}'", hex(b))),
    }
}

struct Clock {
    stats: ScanStats,
    started: Instant,
    rows: u64,
    opts: ScanOptions,
}

impl Clock {
    fn statement(&mut self, took: Duration) {
        self.stats.statements += 1;
        self.stats.active += took;
        self.stats.longest_statement = self.stats.longest_statement.max(took);
    }

    /// Sleeps as long as the rate limit asks.
    fn pace(&mut self, rows: u64) {
        self.rows += rows;
        if self.opts.max_rows_per_second == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.rows as f64 / self.opts.max_rows_per_second as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

/// Scans every table of `plan`.
///
/// Each chunk is one statement and so one short read transaction; between chunks nothing is
/// held, so the application's checkpoints complete. A rate limit spaces the chunks. Foreign keys
/// are checked per chunk against the parent (an indexed lookup), never with one long PRAGMA.
pub fn scan(conn: &Connection, plan: &Plan, opts: ScanOptions) -> rusqlite::Result<ScanStats> {
    let mut clock = Clock {
        stats: ScanStats::default(),
        started: Instant::now(),
        rows: 0,
        opts,
    };
    for t in &plan.tables {
        let stats = scan_table(conn, t, &mut clock)?;
        clock.stats.tables.push(stats);
    }
    clock.stats.wall = clock.started.elapsed();
    Ok(clock.stats)
}

/// The statements that read one table in key order, chunk by chunk, and find each chunk's
/// orphans per foreign key.
struct TableSql {
    /// The first chunk, and the next ones (after the last key, bound as ?1..).
    first: String,
    next: String,
    /// Per foreign key: its name and the query for the chunk's child rows without a parent
    /// (keys between ?1.. and ?(1+nkey)..).
    foreign_keys: Vec<(String, String)>,
    /// Columns of the key, which come first in every row.
    nkey: usize,
    /// The columns read after the key: all but the generated ones.
    scanned: Vec<usize>,
}

/// The key columns as SQL, each after `prefix` (`c.` for the child table of a join).
fn key_sql(t: &TablePlan, prefix: &str) -> String {
    t.key
        .iter()
        .map(|k| {
            if k == "rowid" && !t.without_rowid {
                format!("{prefix}rowid")
            } else {
                format!("{prefix}{}", quote(k))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `?from, ?from+1, ...`: `n` numbered parameters.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TableSql {
    fn new(t: &TablePlan, chunk_rows: u32) -> Self {
        let scanned: Vec<usize> = (0..t.columns.len())
            .filter(|&i| !t.columns[i].generated)
            .collect();
        let nkey = t.key.len();
        let key = key_sql(t, "");
        let select = |after: bool| {
            format!(
                "SELECT {key}{}{} FROM {} {} ORDER BY {key} LIMIT {}",
                if scanned.is_empty() { "" } else { ", " },
                scanned
                    .iter()
                    .map(|&i| quote(&t.columns[i].name))
                    .collect::<Vec<_>>()
                    .join(", "),
                quote(&t.name),
                if after {
                    format!("WHERE ({key}) > ({})", placeholders(1, nkey))
                } else {
                    String::new()
                },
                chunk_rows.max(1),
            )
        };
        TableSql {
            first: select(false),
            next: select(true),
            foreign_keys: t
                .foreign_keys
                .iter()
                .map(|fk| (fk.name.clone(), orphans_sql(t, fk)))
                .collect(),
            nkey,
            scanned,
        }
    }
}

/// The child rows of a chunk whose foreign key finds no parent.
fn orphans_sql(t: &TablePlan, fk: &FkCheck) -> String {
    let nkey = t.key.len();
    let not_null = fk
        .from
        .iter()
        .map(|c| format!("c.{} IS NOT NULL", quote(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let matches = fk
        .from
        .iter()
        .zip(&fk.to)
        .map(|(c, p)| format!("p.{} = c.{}", quote(p), quote(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!(
        "SELECT {key} FROM {child} AS c WHERE ({key}) >= ({lo}) AND ({key}) <= ({hi}) \
         AND {not_null} AND NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE {matches}) \
         ORDER BY {key}",
        key = key_sql(t, "c."),
        child = quote(&t.name),
        lo = placeholders(1, nkey),
        hi = placeholders(1 + nkey, nkey),
        parent = quote(&fk.parent),
    )
}

/// What one table's scan has found so far, and the folded unique keys already seen.
struct TableScan<'a> {
    t: &'a TablePlan,
    sql: TableSql,
    stats: TableStats,
    seen: Vec<HashSet<Vec<String>>>,
    /// Examples kept per problem.
    limit: usize,
}

fn scan_table(conn: &Connection, t: &TablePlan, clock: &mut Clock) -> rusqlite::Result<TableStats> {
    let mut scan = TableScan {
        t,
        sql: TableSql::new(t, clock.opts.chunk_rows),
        stats: TableStats {
            columns: vec![ColumnStats::default(); t.columns.len()],
            ..TableStats::default()
        },
        seen: vec![HashSet::new(); t.folded_uniques.len()],
        limit: clock.opts.examples,
    };
    let mut last: Option<Vec<Owned>> = None;
    let mut attempt = 0;
    loop {
        let started = Instant::now();
        let sql = if last.is_some() {
            &scan.sql.next
        } else {
            &scan.sql.first
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = match &last {
            Some(k) => stmt.query(rusqlite::params_from_iter(k.iter()))?,
            None => stmt.query([])?,
        };
        let mut n = 0u64;
        let mut chunk_first: Option<Vec<Owned>> = None;
        let mut again = false;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                // Before the first row nothing was counted: the chunk can start over.
                Err(e) if n == 0 && transient(&e) && pause_before_retry(&mut attempt) => {
                    again = true;
                    break;
                }
                Err(e) => return Err(e),
            };
            n += 1;
            let key = scan.check_row(row, &mut clock.stats.bytes)?;
            chunk_first.get_or_insert_with(|| key.clone());
            last = Some(key);
        }
        drop(rows);
        if again {
            clock.stats.retries += 1;
            continue;
        }
        attempt = 0;
        clock.statement(started.elapsed());
        scan.stats.rows += n;
        if let (Some(lo), Some(hi)) = (&chunk_first, &last) {
            scan.check_orphans(conn, lo, hi, clock)?;
        }
        clock.pace(n);
        if n < u64::from(clock.opts.chunk_rows.max(1)) {
            break;
        }
    }
    Ok(scan.stats)
}

impl TableScan<'_> {
    /// Checks every scanned value of one row against its Postgres type, and the row's folded
    /// unique keys; returns the row's key. `bytes` counts the bytes read.
    fn check_row(
        &mut self,
        row: &rusqlite::Row<'_>,
        bytes: &mut u64,
    ) -> rusqlite::Result<Vec<Owned>> {
        let (t, nkey, limit) = (self.t, self.sql.nkey, self.limit);
        let key: Vec<Owned> = (0..nkey)
            .map(|i| row.get::<_, Owned>(i))
            .collect::<rusqlite::Result<_>>()?;
        let example = example_key(&key);
        if let [Owned::Integer(r)] = key[..] {
            self.stats.max_rowid = Some(self.stats.max_rowid.map_or(r, |m| m.max(r)));
        }
        let mut row_values: Vec<Option<Value<'_>>> = vec![None; t.columns.len()];
        for (pos, &ci) in self.sql.scanned.iter().enumerate() {
            let v = value(row.get_ref(nkey + pos)?);
            *bytes += size(&v);
            check_value(
                v,
                &t.columns[ci],
                &mut self.stats.columns[ci],
                &example,
                limit,
            );
            row_values[ci] = Some(v);
        }
        for (u, (name, cols)) in t.folded_uniques.iter().enumerate() {
            let k: Option<Vec<String>> = cols
                .iter()
                .map(|&c| row_values[c].as_ref().and_then(folded))
                .collect();
            if let Some(k) = k {
                if !self.seen[u].insert(k) {
                    self.stats
                        .collisions
                        .entry(name.clone())
                        .or_default()
                        .add(&example, limit);
                }
            }
        }
        Ok(key)
    }

    /// Finds the chunk's rows (keys `lo` to `hi`) whose foreign keys have no parent.
    fn check_orphans(
        &mut self,
        conn: &Connection,
        lo: &[Owned],
        hi: &[Owned],
        clock: &mut Clock,
    ) -> rusqlite::Result<()> {
        let nkey = self.sql.nkey;
        for (name, sql) in &self.sql.foreign_keys {
            let started = Instant::now();
            let orphans = retrying(|| {
                let mut stmt = conn.prepare_cached(sql)?;
                let params: Vec<&Owned> = lo.iter().chain(hi.iter()).collect();
                let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| {
                    (0..nkey)
                        .map(|i| row.get::<_, Owned>(i))
                        .collect::<rusqlite::Result<Vec<Owned>>>()
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })?;
            clock.statement(started.elapsed());
            for key in orphans {
                self.stats
                    .orphans
                    .entry(name.clone())
                    .or_default()
                    .add(&example_key(&key), self.limit);
            }
        }
        Ok(())
    }
}

/// One value: its storage class, whether Postgres's type takes it, and its date shape.
fn check_value(
    v: Value<'_>,
    col: &ColumnPlan,
    cs: &mut ColumnStats,
    example: &serde_json::Value,
    limit: usize,
) {
    cs.classes[class_index(&v)] += 1;
    if let Value::Real(r) = v {
        if r.fract() == 0.0 {
            cs.integral_reals += 1;
        }
    }
    let problem = if col.in_primary_key && v == Value::Null {
        Some(Problem::NullInPrimaryKey)
    } else {
        values::check(v, &col.pg)
    };
    if let Some(p) = problem {
        cs.problems.entry(p).or_default().add(example, limit);
    }
    if col.date_like {
        if let Some(shape) = values::date_shape(v) {
            cs.date_shapes.entry(shape).or_default().add(example, limit);
        }
    }
}
