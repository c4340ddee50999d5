//! The Hark service: HTTP API, ingest, storage and authentication.
//!
//! Layers, each using only those before it: `domain` ← `db`, `blob` ← `ingest`, `auth` ←
//! `notes` and `delivery` (the use cases), `outbound` ← `webhooks`, `push`, `pipeline`,
//! `maintenance` ← `broker` ← `http` ← `app`.

pub mod app;
pub mod auth;
pub mod blob;
pub mod broker;
pub mod cache;
pub mod config;
pub mod db;
pub mod delivery;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod maintenance;
pub mod metrics;
pub mod notes;
pub mod outbound;
pub mod pipeline;
pub mod push;
pub mod webhooks;

pub use app::App;
pub use config::{Config, Overrides};
