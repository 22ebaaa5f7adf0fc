//! `sqlite-ops migrate-check`: prints what will break when the database moves to Postgres;
//! exit 0 ready, 1 work, 2 the data cannot load as it is, 3 the check could not run.

use crate::cmd::check::Format;
use crate::migrate::{self, report, scan::ScanOptions, MigrateOptions};
use std::path::PathBuf;

/// The command line of `migrate-check`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The SQLite database to examine (opened read-only).
    #[arg(value_name = "DB")]
    pub database: PathBuf,
    /// Write the proposed Postgres DDL to this file.
    #[arg(long = "emit-ddl", value_name = "FILE")]
    pub emit_ddl: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Copy the database first with SQLite's online backup API (a few pages per step, a pause
    /// between steps) and scan the copy (see --backup-dir).
    #[arg(long = "from-backup")]
    pub from_backup: bool,
    /// Where --from-backup puts its copy (it needs the database's size free) [default: the
    /// temporary directory].
    #[arg(long = "backup-dir", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Rows per chunk: each chunk is one short read transaction.
    #[arg(long = "chunk-rows", default_value_t = 1000)]
    pub chunk_rows: u32,
    /// Rows read per second at most (0: unlimited), to leave the disk to the application.
    #[arg(long = "max-rows-per-second", default_value_t = 200_000)]
    pub max_rows_per_second: u64,
    /// Example row keys per finding.
    #[arg(long, default_value_t = 5)]
    pub examples: usize,
    /// Pages copied per step of --from-backup.
    #[arg(long = "backup-pages", default_value_t = 256)]
    pub backup_pages: i32,
}

pub fn run(args: Args) -> u8 {
    let opts = MigrateOptions {
        database: args.database,
        emit_ddl: args.emit_ddl,
        from_backup: args.from_backup,
        backup_dir: args.backup_dir,
        scan: ScanOptions {
            chunk_rows: args.chunk_rows,
            max_rows_per_second: args.max_rows_per_second,
            examples: args.examples,
        },
        backup_pages: args.backup_pages,
    };
    match migrate::run(&opts) {
        Ok(r) => {
            let _ = super::print_out(&match args.format {
                Format::Json => report::json(&r),
                Format::Human => report::human(&r),
            });
            r.exit_code
        }
        Err(e) => {
            eprintln!("sqlite-ops migrate-check: {e:#}");
            3
        }
    }
}
