//! Events and effects. A change's use case decides what it causes (events with their audience,
//! later jobs and inbox entries) and hands those effects to the repository, which commits them
//! in the change's own transaction or not at all: the event log is the outbox.

use hark_api::events::EventData;

use super::{Delivery, NoteId, Timestamp, UserId};

/// An event about to be appended, with the users allowed to see it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub data: EventData,
    pub audience: Vec<UserId>,
}

/// What a change causes besides itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub events: Vec<NewEvent>,
    /// Notes whose processing pipeline is queued (every step).
    pub pipelines: Vec<NoteId>,
    /// Notes handed to recipients, each with its `note.received`.
    pub deliveries: Vec<Delivery>,
}

impl Effects {
    pub fn none() -> Effects {
        Effects::default()
    }

    /// Adds an event for `audience`.
    pub fn event(mut self, data: EventData, audience: Vec<UserId>) -> Effects {
        self.events.push(NewEvent { data, audience });
        self
    }

    /// Queues the processing of `note`.
    pub fn pipeline(mut self, note: NoteId) -> Effects {
        self.pipelines.push(note);
        self
    }

    /// Hands a note to its recipients.
    pub fn delivery(mut self, delivery: Delivery) -> Effects {
        self.deliveries.push(delivery);
        self
    }

    pub fn extend(&mut self, other: Effects) {
        self.events.extend(other.events);
        self.pipelines.extend(other.pipelines);
        self.deliveries.extend(other.deliveries);
    }
}

/// An event as the log holds it: `seq` is its gap-free position.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub seq: i64,
    pub id: String,
    pub created_at: Timestamp,
    pub data: EventData,
    pub audience: Vec<UserId>,
}

impl LoggedEvent {
    /// The event as clients see it: in the API, on webhooks and on the broker.
    pub fn to_wire(&self) -> hark_api::Event {
        hark_api::Event {
            seq: self.seq,
            id: self.id.clone(),
            created_at: self.created_at.to_rfc3339(),
            data: self.data.clone(),
        }
    }
}
