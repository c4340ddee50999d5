//! The domain: ids, values and records, with their invariants. No IO.

pub mod delivery;
pub mod event;
pub mod ids;
pub mod job;
pub mod note;
pub mod push;
pub mod time;
pub mod transcript;
pub mod user;
pub mod webhook;

pub use delivery::{Channel, Delivery, InboxEntry, InboxQuery, Listened};
pub use event::{Effects, LoggedEvent, NewEvent};
pub use ids::{NoteId, UserId};
pub use job::{
    Claim, Finish, Finished, JobRecord, Settled, StepOutcome, StoredRendition, StoredWaveform,
};
pub use note::{AudioFacts, NewNote, Note, NoteName};
pub use push::{ClaimedPush, PushAttempt, PushFate, PushSubscription};
pub use time::Timestamp;
pub use transcript::{StoredTranscript, search_words};
pub use user::{Email, Password, User};
pub use webhook::{Attempt, AttemptRecord, ClaimedDelivery, Next, Webhook};
