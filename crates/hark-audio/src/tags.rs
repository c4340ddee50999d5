//! Descriptive tags via lofty. Tags are a nicety: any failure to read them yields no tags, never
//! an error, since the audio itself has already been validated.

use crate::Tags;
use lofty::config::ParseOptions;
use lofty::file::TaggedFileExt;
use lofty::probe::Probe;
use lofty::tag::{ItemKey, Tag};
use std::path::Path;

/// Reads the tags of the file at `path`; missing or unreadable tags give `Tags::default()`.
pub(crate) fn read(path: &Path) -> Tags {
    // lofty is careful with bad input, but a tag is never worth a failed upload.
    crate::guard::guarded(path, "tag reader", || read_inner(path))
        .flatten()
        .unwrap_or_default()
}

fn read_inner(path: &Path) -> Option<Tags> {
    let options = ParseOptions::new()
        .read_properties(false)
        .read_cover_art(false);
    let file = Probe::open(path)
        .ok()?
        .options(options)
        .guess_file_type()
        .ok()?
        .read()
        .ok()?;
    // The primary tag first, then any others (e.g. an ID3v1 behind an empty ID3v2).
    let mut tags: Vec<&Tag> = file.primary_tag().into_iter().collect();
    tags.extend(
        file.tags()
            .iter()
            .filter(|t| Some(t.tag_type()) != file.primary_tag().map(Tag::tag_type)),
    );
    let get = |keys: &[ItemKey]| {
        tags.iter()
            .flat_map(|t| keys.iter().filter_map(|k| t.get_string(*k)))
            .map(str::trim)
            .find(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some(Tags {
        title: get(&[ItemKey::TrackTitle]),
        artist: get(&[ItemKey::TrackArtist, ItemKey::AlbumArtist]),
        album: get(&[ItemKey::AlbumTitle]),
        date: get(&[
            ItemKey::RecordingDate,
            ItemKey::Year,
            ItemKey::ReleaseDate,
            ItemKey::OriginalReleaseDate,
        ]),
        genre: get(&[ItemKey::Genre]),
        comment: get(&[ItemKey::Comment]),
    })
}
