//! The HTTP side: the server (`server`: `/metrics`, the status page, the JSON API, health),
//! the status page (`status_page`, with its SVG charts in `chart`), and TLS and basic auth from
//! `--web.config.file` (`web_config`, bcrypt checks in `basic_auth`).

pub mod basic_auth;
pub mod chart;
pub mod server;
pub mod status_page;
pub mod web_config;
