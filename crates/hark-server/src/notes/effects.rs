//! What each change to a note causes: its events and their audience. The repository commits
//! these with the change; nothing here touches the database.

use hark_api::NoteStatus;
use hark_api::events::{EventData, NoteCreated, NoteDeleted, NoteFailed, NoteReady};

use crate::db::DeletedNote;
use crate::domain::{Effects, NewNote, Note, Settled};

/// An upload: `note.created` to its owner, and its processing queued.
pub fn created(note: &NewNote) -> Effects {
    Effects::none().pipeline(note.id).event(
        EventData::NoteCreated(NoteCreated {
            note_id: note.id.to_string(),
            name: note.name.clone(),
            title: note.title.clone(),
        }),
        vec![note.owner_id],
    )
}

/// A deletion: `note.deleted` to the owner and everyone who received the note.
pub fn deleted(note: &DeletedNote) -> Effects {
    let mut audience = vec![note.owner_id];
    audience.extend(note.recipients.iter().copied());
    Effects::none().event(
        EventData::NoteDeleted(NoteDeleted {
            note_id: note.id.to_string(),
        }),
        audience,
    )
}

/// A note that can no longer be used: `note.failed` to its owner.
pub fn failed(note: &Note) -> Effects {
    Effects::none().event(
        EventData::NoteFailed(NoteFailed {
            note_id: note.id.to_string(),
            reason: note.failure_reason.clone().unwrap_or_default(),
        }),
        vec![note.owner_id],
    )
}

/// Processing settled a note: `note.ready` or `note.failed` to its owner, once per run (the
/// status changes once).
pub fn settled(change: &Settled) -> Effects {
    match change.note.status {
        NoteStatus::Ready => Effects::none().event(
            EventData::NoteReady(NoteReady {
                note_id: change.note.id.to_string(),
                corrected_audio_url: None,
            }),
            vec![change.note.owner_id],
        ),
        NoteStatus::Failed => failed(&change.note),
        NoteStatus::Pending | NoteStatus::Processing => Effects::none(),
    }
}
