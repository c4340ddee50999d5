//! Delivery on the wire: channels, sending a note, and the inbox.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Note;

/// The longest `GET /api/v1/inbox?wait=` holds, in seconds.
pub const MAX_INBOX_WAIT_SECONDS: u64 = 60;

/// `POST /api/v1/channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewChannel {
    /// 1 to 64 of `a-z`, `0-9`, `.`, `_` and `-`, starting with a letter or digit.
    #[schema(
        pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$",
        min_length = 1,
        max_length = 64
    )]
    pub name: String,
}

/// A channel (a delivery job): its creator manages the members; a note sent to it reaches the
/// creator and every member but the sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub name: String,
    pub creator_id: String,
    pub creator_email: String,
    /// The members' user ids, in the order they were added.
    pub members: Vec<String>,
    /// The members' emails, in the order of `members`.
    pub member_emails: Vec<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// `GET /api/v1/channels`: the channels the caller created or belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelList {
    pub items: Vec<Channel>,
}

/// `POST /api/v1/notes/{id}/send`: whom to deliver an existing note to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SendRequest {
    /// Emails or user ids.
    #[serde(default)]
    pub to: Vec<String>,
    pub channel: Option<String>,
}

/// Whom a send reached: every recipient named, directly or through the channel (those who
/// had the note already keep their entry as it was).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SendResult {
    pub note_id: String,
    /// User ids.
    pub recipients: Vec<String>,
    pub channel: Option<String>,
}

/// Who sent a received note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sender {
    pub id: String,
    pub email: String,
}

/// A note in the caller's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboxItem {
    pub note: Note,
    pub sender: Sender,
    /// The channel it came through, if any.
    pub channel: Option<String>,
    /// RFC 3339, UTC.
    pub delivered_at: String,
    /// RFC 3339, UTC; `null` until the caller listened.
    pub listened_at: Option<String>,
}

/// `GET /api/v1/inbox`: newest first; `cursor` is what to pass as `since` for only newer ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InboxPage {
    pub items: Vec<InboxItem>,
    pub cursor: String,
}

/// The inbox's query string.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only notes delivered after this cursor (from an earlier answer).
    #[param(pattern = r"^[0-9]{1,18}$", min_length = 1, max_length = 18)]
    pub since: Option<String>,
    /// Seconds to hold the request (at most 60) when nothing newer exists.
    #[param(minimum = 0, maximum = 60)]
    pub wait: Option<u64>,
    /// Only notes from this user (id or email).
    pub sender: Option<String>,
    /// Only notes not listened to yet.
    pub unlistened: Option<bool>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}
