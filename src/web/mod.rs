//! The HTTP side: the server (`server`: `/metrics`, the status page, the JSON API, health), the
//! status page (`status_page`, its SVG `chart`s, its `replica_view`, escaped by `html`), and TLS
//! and basic auth from `--web.config.file` (`web_config`, bcrypt in `basic_auth`).

pub mod basic_auth;
pub mod chart;
pub mod html;
pub mod replica_view;
pub mod server;
pub mod status_page;
pub mod web_config;
