//! Notifications: the Alertmanager push (`alertmanager`), webhooks (`webhook`) and the
//! heartbeat (`heartbeat`), each destination with its own task, retries and counters
//! (`delivery`); their settings as configured (`config`).

pub mod alertmanager;
pub mod config;
pub mod delivery;
pub mod heartbeat;
pub mod webhook;
