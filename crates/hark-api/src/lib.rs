//! Hark's wire types: what travels between the server and its clients.
//!
//! Shared by the server (which derives its OpenAPI document from them) and by `hark-client`,
//! so that the CLI and the integration tests speak exactly the types the server answers with.

pub mod auth;
pub mod events;
pub mod notes;
pub mod problem;

pub use auth::*;
pub use events::{Event, EventData, EventType};
pub use notes::*;
pub use problem::{Problem, ProblemCode};
