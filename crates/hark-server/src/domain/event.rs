//! Events: the append-only log every change writes in its own transaction (the outbox).

use serde_json::Value;

use super::{NoteId, UserId};

/// What happened. The string forms are the wire names (`note.created`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    NoteCreated,
    NoteReceived,
    NoteReady,
    NoteFailed,
    NoteListened,
    NoteDeleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoteCreated => "note.created",
            Self::NoteReceived => "note.received",
            Self::NoteReady => "note.ready",
            Self::NoteFailed => "note.failed",
            Self::NoteListened => "note.listened",
            Self::NoteDeleted => "note.deleted",
        }
    }
}

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventType,
    pub note_id: Option<NoteId>,
    /// The users allowed to see it.
    pub audience: Vec<UserId>,
    pub payload: Value,
}

/// An event as stored: `seq` is the log's monotonic position.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub note_id: Option<String>,
    pub audience: Vec<String>,
    pub payload: Value,
    pub created_at: i64,
}
