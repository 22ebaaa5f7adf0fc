//! Notifications: the Alertmanager push (`alertmanager`), webhooks (`webhook`) and the
//! heartbeat (`heartbeat`), each destination with its own task, retries and counters
//! (`delivery`). Their settings are parsed in `config::notify`.

pub mod alertmanager;
pub mod delivery;
pub mod heartbeat;
pub mod webhook;
