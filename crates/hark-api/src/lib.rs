//! Hark's wire types: what travels between the server and its clients.
//!
//! Shared by the server (which derives its OpenAPI document from them) and by `hark-client`,
//! so that the CLI and the integration tests speak exactly the types the server answers with.

/// `parse`, `FromStr` (for command-line flags) and `Display` from `ALL` and `as_str`, so the
/// string forms are written once.
macro_rules! string_forms {
    ($($kind:ident),+) => {$(
        impl $kind {
            pub fn parse(s: &str) -> Option<$kind> {
                Self::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }

        impl std::str::FromStr for $kind {
            type Err = String;

            fn from_str(s: &str) -> Result<$kind, String> {
                Self::parse(s).ok_or_else(|| {
                    let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("expected one of {}", names.join(", "))
                })
            }
        }

        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

pub mod auth;
pub mod delivery;
pub mod events;
pub mod jobs;
pub mod notes;
pub mod problem;
pub mod push;
pub mod speech;
pub mod webhooks;

pub use auth::*;
pub use delivery::*;
pub use events::{Event, EventData, EventType};
pub use jobs::*;
pub use notes::*;
pub use problem::{Problem, ProblemCode};
pub use push::*;
pub use speech::*;
pub use webhooks::*;
