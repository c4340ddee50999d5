//! Events on the wire: what the server tells a note's audience happened, over SSE, WebSocket,
//! webhooks and the broker. Every event has a type (`note.created`, ...) and a typed payload.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An event's type. The string forms are the wire names, e.g. `note.created`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "note.created")]
    NoteCreated,
    #[serde(rename = "note.received")]
    NoteReceived,
    #[serde(rename = "note.ready")]
    NoteReady,
    #[serde(rename = "note.failed")]
    NoteFailed,
    #[serde(rename = "note.listened")]
    NoteListened,
    #[serde(rename = "note.deleted")]
    NoteDeleted,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        Self::NoteCreated,
        Self::NoteReceived,
        Self::NoteReady,
        Self::NoteFailed,
        Self::NoteListened,
        Self::NoteDeleted,
    ];

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

    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// `note.created`: the owner uploaded a note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteCreated {
    pub note_id: String,
    pub name: String,
    pub title: Option<String>,
}

/// `note.received`: a note was delivered to the recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteReceived {
    pub note_id: String,
    pub sender_id: String,
    pub title: Option<String>,
    /// The channel it came through, if any.
    pub channel: Option<String>,
}

/// `note.ready`: processing finished; the note's renditions exist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteReady {
    pub note_id: String,
    /// The corrected audio, when correction was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrected_audio_url: Option<String>,
}

/// `note.failed`: the note cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteFailed {
    pub note_id: String,
    pub reason: String,
}

/// `note.listened`: a recipient listened to the note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteListened {
    pub note_id: String,
    pub listener_id: String,
}

/// `note.deleted`: the owner deleted the note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NoteDeleted {
    pub note_id: String,
}

/// An event's type with its payload: `{"type":"note.created","data":{...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", content = "data")]
pub enum EventData {
    #[serde(rename = "note.created")]
    NoteCreated(NoteCreated),
    #[serde(rename = "note.received")]
    NoteReceived(NoteReceived),
    #[serde(rename = "note.ready")]
    NoteReady(NoteReady),
    #[serde(rename = "note.failed")]
    NoteFailed(NoteFailed),
    #[serde(rename = "note.listened")]
    NoteListened(NoteListened),
    #[serde(rename = "note.deleted")]
    NoteDeleted(NoteDeleted),
}

impl EventData {
    pub fn kind(&self) -> EventType {
        match self {
            Self::NoteCreated(_) => EventType::NoteCreated,
            Self::NoteReceived(_) => EventType::NoteReceived,
            Self::NoteReady(_) => EventType::NoteReady,
            Self::NoteFailed(_) => EventType::NoteFailed,
            Self::NoteListened(_) => EventType::NoteListened,
            Self::NoteDeleted(_) => EventType::NoteDeleted,
        }
    }

    /// The note the event is about.
    pub fn note_id(&self) -> &str {
        match self {
            Self::NoteCreated(e) => &e.note_id,
            Self::NoteReceived(e) => &e.note_id,
            Self::NoteReady(e) => &e.note_id,
            Self::NoteFailed(e) => &e.note_id,
            Self::NoteListened(e) => &e.note_id,
            Self::NoteDeleted(e) => &e.note_id,
        }
    }

    /// The payload alone, as stored beside the type.
    pub fn payload_json(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => tagged.remove("data").unwrap_or_default(),
            _ => serde_json::Value::Null,
        }
    }

    /// Rebuilds the data from a stored type and payload.
    pub fn from_parts(
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<EventData, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": kind, "data": payload }))
    }
}

/// One event of the log: its position (`seq`, gap-free and increasing), its stable id (the
/// same on every delivery attempt), when it happened, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub seq: i64,
    /// UUIDv7.
    pub id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[serde(flatten)]
    pub data: EventData,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_travel_as_type_and_data() {
        let event = Event {
            seq: 7,
            id: "0193".into(),
            created_at: "2026-11-25T10:00:00.000000Z".into(),
            data: EventData::NoteFailed(NoteFailed {
                note_id: "n1".into(),
                reason: "truncated".into(),
            }),
        };
        let json = serde_json::to_value(&event).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"seq": 7, "id": "0193", "created_at": "2026-11-25T10:00:00.000000Z",
                "type": "note.failed", "data": {"note_id": "n1", "reason": "truncated"}})
        );
        assert_eq!(serde_json::from_value::<Event>(json).ok(), Some(event));
    }

    #[test]
    fn stored_parts_round_trip() {
        let data = EventData::NoteDeleted(NoteDeleted {
            note_id: "n".into(),
        });
        let payload = data.payload_json();
        assert_eq!(payload, serde_json::json!({"note_id": "n"}));
        let back = EventData::from_parts(data.kind().as_str(), payload).expect("parses");
        assert_eq!(back, data);
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            let quoted = serde_json::to_string(&kind).expect("serialises");
            assert_eq!(quoted, format!("\"{}\"", kind.as_str()));
        }
    }
}
