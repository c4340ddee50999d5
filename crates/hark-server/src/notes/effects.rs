//! What each change to a note causes: its events and their audience. The repository commits
//! these with the change; nothing here touches the database.

use hark_api::NoteStatus;
use hark_api::events::{EventData, NoteCreated, NoteDeleted, NoteFailed, NoteListened, NoteReady};

use crate::db::DeletedNote;
use crate::domain::{Effects, Listened, NewNote, Note, Settled};

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
    Effects::none().event(failure(note), vec![note.owner_id])
}

fn failure(note: &Note) -> EventData {
    EventData::NoteFailed(NoteFailed {
        note_id: note.id.to_string(),
        reason: note.failure_reason.clone().unwrap_or_default(),
    })
}

/// Processing settled a note: `note.ready` or `note.failed` to its owner and recipients, once
/// per run (the status changes once). `note.ready` carries the corrected audio's URL (under
/// `base`) when there is one.
pub fn settled(change: &Settled, base: &str) -> Effects {
    let mut audience = vec![change.note.owner_id];
    audience.extend(change.recipients.iter().copied());
    match change.note.status {
        NoteStatus::Ready => Effects::none().event(
            EventData::NoteReady(NoteReady {
                note_id: change.note.id.to_string(),
                corrected_audio_url: change
                    .note
                    .renditions
                    .iter()
                    .any(|r| r.name == hark_api::Rendition::Corrected)
                    .then(|| {
                        format!(
                            "{base}/api/v1/notes/{}/audio?rendition=corrected",
                            change.note.id
                        )
                    }),
            }),
            audience,
        ),
        NoteStatus::Failed => Effects::none().event(failure(&change.note), audience),
        NoteStatus::Pending | NoteStatus::Processing => Effects::none(),
    }
}

/// A recipient's first listen: `note.listened` to the sender.
pub fn listened(listen: &Listened) -> Effects {
    Effects::none().event(
        EventData::NoteListened(NoteListened {
            note_id: listen.note_id.to_string(),
            listener_id: listen.listener_id.to_string(),
        }),
        vec![listen.sender_id],
    )
}
