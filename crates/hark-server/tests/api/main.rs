//! The integration suite: the real server on a random port, against SQLite and PostgreSQL.

#[macro_use]
mod helpers;

mod auth;
#[macro_use]
mod broker;
mod cache;
mod compat;
mod delivery;
mod downloads;
mod events;
mod fast_paths;
mod group_commit;
mod isolation;
mod listing;
mod notifier;
mod ops;
mod pipeline;
mod push;
mod receiver;
mod repository;
mod slow_uploads;
mod speech;
mod storage;
mod uploads;
mod web;
mod webhooks;
