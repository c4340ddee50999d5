//! Typed identifiers: a note id can never be passed where a user id is wanted.

use std::fmt;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (v7) id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the hyphenated form; anything else is `None`.
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::try_parse(s).ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A note's id (UUIDv7).
    NoteId
);
uuid_id!(
    /// A user's id (UUIDv7).
    UserId
);
uuid_id!(
    /// A personal API key's id (UUIDv7).
    ApiKeyId
);
uuid_id!(
    /// A webhook's id (UUIDv7).
    WebhookId
);
uuid_id!(
    /// A push subscription's id (UUIDv7).
    PushSubscriptionId
);
