//! Notes: one stored audio file each.

use hark_api::{AudioTags, NoteStatus};

use super::{NoteId, Timestamp, UserId};

/// A note's file name as the client gave it, made safe to keep and to echo back: only the last
/// path component, no control characters, at most 255 bytes. It is never used as a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteName(String);

impl NoteName {
    /// `Ok(None)` when nothing usable is left (the server then names the note itself).
    pub fn parse(raw: &str) -> Result<Option<NoteName>, String> {
        if raw.chars().count() > 255 {
            return Err("name must be at most 255 characters".into());
        }
        let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
        let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
        let cleaned = cleaned.trim();
        if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
            return Ok(None);
        }
        Ok(Some(NoteName(cleaned.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// What the probe measured of a note's audio, and where its bytes are.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AudioFacts {
    /// Container: wav, mp3, ogg, flac, m4a, webm.
    pub format: String,
    pub codec: String,
    pub mime: String,
    pub duration_seconds: f64,
    pub sample_rate: u32,
    pub channels: u16,
    pub bitrate: u64,
    pub size_bytes: u64,
    /// Hex SHA-256 of the bytes as stored: the blob's key.
    pub sha256: String,
    pub tags: AudioTags,
}

/// Everything known about a note at upload time, ready to be committed.
#[derive(Debug, Clone)]
pub struct NewNote {
    pub id: NoteId,
    pub owner_id: UserId,
    pub name: String,
    pub title: Option<String>,
    pub series: Option<String>,
    /// Whether the owner asked for a corrected transcript and audio.
    pub correction_asked: bool,
    pub audio: AudioFacts,
}

/// A stored note.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Note {
    pub id: NoteId,
    pub owner_id: UserId,
    pub name: String,
    pub title: Option<String>,
    pub series: Option<String>,
    pub audio: AudioFacts,
    pub status: NoteStatus,
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
    /// What processing made of it.
    pub renditions: Vec<super::StoredRendition>,
    pub loudness: Option<hark_api::Loudness>,
    /// Whether the owner asked for a corrected transcript and audio.
    #[serde(default)]
    pub correction_asked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_their_last_component() {
        let name = |s| NoteName::parse(s).map(|n| n.map(NoteName::into_string));
        assert_eq!(name("../../etc/passwd"), Ok(Some("passwd".into())));
        assert_eq!(
            name("C:\\Users\\ann\\memo.wav"),
            Ok(Some("memo.wav".into()))
        );
        assert_eq!(name("say \"hi\".wav"), Ok(Some("say \"hi\".wav".into())));
        assert_eq!(name("bell\u{7}\n.wav"), Ok(Some("bell.wav".into())));
        assert_eq!(name("mémo 日本.ogg"), Ok(Some("mémo 日本.ogg".into())));
        assert_eq!(name("../"), Ok(None));
        assert_eq!(name(".."), Ok(None));
        assert!(name(&"a".repeat(256)).is_err());
    }
}
