//! List cursors: base64 JSON of the sort, the last item's sort key and its id.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hark_api::Sort;
use serde::{Deserialize, Serialize};

use super::NoteError;
use crate::db::SortKey;
use crate::domain::{Note, NoteId};

/// Where the next page starts: the sort it belongs to and the last item's key.
#[derive(Serialize, Deserialize)]
struct Cursor {
    s: String,
    k: serde_json::Value,
    i: String,
}

pub fn encode(sort: Sort, note: &Note) -> String {
    let k = match sort {
        Sort::CreatedAt | Sort::CreatedAtDesc => serde_json::json!(note.created_at.micros()),
        // The float's bits, not its decimal form: a decimal round trip may land one ULP off and
        // then skip or repeat the notes of that duration.
        Sort::Duration | Sort::DurationDesc => {
            serde_json::json!(note.audio.duration_seconds.to_bits())
        }
        Sort::Name | Sort::NameDesc => serde_json::json!(note.name),
    };
    let cursor = Cursor {
        s: sort.as_str().into(),
        k,
        i: note.id.to_string(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default())
}

pub fn decode(raw: &str, sort: Sort) -> Result<(SortKey, NoteId), NoteError> {
    let invalid =
        || NoteError::Invalid("cursor is invalid; pass next_cursor from the previous page".into());
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if cursor.s != sort.as_str() {
        return Err(NoteError::Invalid(
            "cursor belongs to another sort order".into(),
        ));
    }
    let id = NoteId::parse(&cursor.i).ok_or_else(invalid)?;
    let key = match sort {
        Sort::CreatedAt | Sort::CreatedAtDesc => {
            SortKey::Created(cursor.k.as_i64().ok_or_else(invalid)?)
        }
        Sort::Duration | Sort::DurationDesc => {
            let duration = f64::from_bits(cursor.k.as_u64().ok_or_else(invalid)?);
            if !duration.is_finite() {
                return Err(invalid());
            }
            SortKey::Duration(duration)
        }
        Sort::Name | Sort::NameDesc => {
            let name = cursor.k.as_str().ok_or_else(invalid)?;
            SortKey::Name(super::plain_text(name, "cursor")?.to_owned())
        }
    };
    Ok((key, id))
}
