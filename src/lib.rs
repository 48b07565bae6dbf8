//! llmage: an AI model gateway. One binary serves the 元境平台 API (`/llmage/v1`), keeps users'
//! keys and credits with an exact ledger, and relays to vendors (or the offline sandbox).
//!
//! Layout: `cli` parses, `server` wires and runs, `api` is the HTTP surface, `relay` the chat
//! path, `providers` the vendor protocols, `channels` the upstream accounts, `catalog` the models
//! we sell, `billing` the money, `payments` recharge orders and Alipay, `accounts` users and keys, `storage` the database.
//! The top-level modules form layers without a cycle (the README's code map; checked by
//! `scripts/module-cycles.py`): `util` at the bottom, `config`, `storage`, the domains, `api`,
//! `server`, `cli` at the top.

pub mod accounts;
pub mod admin;
pub mod allocator;
pub mod api;
pub mod billing;
pub mod catalog;
pub mod channels;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod http_server;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod net;
pub mod payments;
pub mod providers;
pub mod relay;
pub mod secrets;
pub mod server;
pub mod state;
pub mod storage;
pub mod tasks;
pub mod util;
pub mod vendor;
