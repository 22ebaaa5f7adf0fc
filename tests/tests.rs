//! The integration tests: one binary, one module per feature, all driving real processes and
//! files through the helpers in [`common`]. Run them with `scripts/test` (which installs what
//! they need) or `cargo test`; one feature with `cargo test --test integration NAME::`.

mod common;

mod accuracy;
mod agreement;
mod alerts;
mod cardinality;
mod check;
mod checkpoint_lag;
mod continuity;
mod dashboards;
mod demo;
mod deploy;
mod descriptors;
mod discovery;
mod docs;
mod every_alert;
mod everything;
mod example_config;
mod guide_stack;
mod hostile;
mod http_endpoint;
mod itself;
mod litestream;
mod litestream_dir;
mod many_hosts;
mod migrate_check;
mod notify;
mod quiet;
mod read_only;
mod reload;
mod replica_chain;
mod restore_drill;
mod status_page;
mod web_security;
mod write_lock;
mod write_transactions;
