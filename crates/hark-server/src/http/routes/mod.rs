//! One file per resource; handlers parse, authorise, call one use case and shape the answer.

pub mod audio;
pub mod compat;
pub mod delivery;
pub mod events;
pub mod notes;
pub mod openai;
pub mod ops;
pub mod processing;
pub mod push;
pub mod tokens;
pub mod upload;
pub mod users;
pub mod webhooks;
