//! Magic-byte sniffing: which container the bytes are, or a short description of what they are
//! instead. File names and client-declared types are never trusted, so this is the only source of
//! the format, and its descriptions end up in error messages shown to clients.

use crate::Format;
use crate::mpeg;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// How many bytes we look at when sniffing.
pub(crate) const HEAD_LEN: usize = 64 * 1024;

/// The verdict on the first bytes of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Class {
    /// A container we accept; not yet validated.
    Audio(Format),
    /// An ID3v2 tag of this total length; what follows must be sniffed again.
    Id3(u64),
    /// Anything else, described for the client.
    Other(String),
}

/// Where a candidate audio stream starts in a file (past any ID3v2 tags), or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sniffed {
    Audio { format: Format, offset: u64 },
    Other(String),
}

/// Reads up to [`HEAD_LEN`] bytes at `offset`.
pub(crate) fn read_head(file: &mut File, offset: u64) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut head = Vec::with_capacity(HEAD_LEN);
    file.by_ref().take(HEAD_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// Sniffs a whole file, skipping ID3v2 tags (MP3s, and sometimes FLACs, carry them in front).
pub(crate) fn sniff_file(file: &mut File) -> io::Result<Sniffed> {
    let mut offset = 0u64;
    // Several stacked tags happen; more than a few is not audio.
    for _ in 0..4 {
        let head = read_head(file, offset)?;
        match classify(&head) {
            Class::Audio(format @ (Format::Mp3 | Format::Flac)) => {
                return Ok(Sniffed::Audio { format, offset });
            }
            Class::Audio(format) if offset == 0 => return Ok(Sniffed::Audio { format, offset }),
            Class::Id3(len) => offset += len,
            Class::Other(what) if offset > 0 && what == "empty file" => {
                return Ok(Sniffed::Other("ID3 tag with no audio after it".into()));
            }
            Class::Audio(format) => {
                return Ok(Sniffed::Other(format!(
                    "ID3 tag followed by {}",
                    label(format)
                )));
            }
            Class::Other(what) if offset > 0 => {
                return Ok(Sniffed::Other(format!("ID3 tag followed by {what}")));
            }
            Class::Other(what) => return Ok(Sniffed::Other(what)),
        }
    }
    Ok(Sniffed::Other("ID3 tags with no audio after them".into()))
}

/// How we name a container in messages.
pub(crate) fn label(format: Format) -> &'static str {
    match format {
        Format::Wav => "WAV",
        Format::Mp3 => "MP3",
        Format::Ogg => "Ogg",
        Format::Flac => "FLAC",
        Format::Mp4 => "MP4",
        Format::Webm => "WebM/Matroska",
    }
}

/// Classifies the first bytes of a stream.
pub(crate) fn classify(head: &[u8]) -> Class {
    let other = |s: &str| Class::Other(s.to_owned());
    let at = |offset: usize, magic: &[u8]| head.get(offset..).is_some_and(|b| b.starts_with(magic));
    if head.is_empty() {
        return other("empty file");
    }
    if (at(0, b"RIFF") || at(0, b"RF64") || at(0, b"BW64")) && at(8, b"WAVE") {
        return Class::Audio(Format::Wav);
    }
    if at(0, b"fLaC") {
        return Class::Audio(Format::Flac);
    }
    if at(0, b"OggS") {
        return Class::Audio(Format::Ogg);
    }
    if at(0, b"\x1A\x45\xDF\xA3") {
        return Class::Audio(Format::Webm);
    }
    if at(4, b"ftyp") {
        return match head.get(8..12) {
            Some(b"heic" | b"heix" | b"mif1" | b"msf1") => other("HEIF image"),
            Some(b"avif" | b"avis") => other("AVIF image"),
            Some(b"crx ") => other("Canon raw image"),
            _ => Class::Audio(Format::Mp4),
        };
    }
    if let Some(len) = mpeg::id3v2_len(head) {
        return Class::Id3(len);
    }
    if let Some(what) = mpeg_audio(head) {
        return what;
    }
    if mpeg::is_adts(head) {
        return other("raw AAC (ADTS) stream, not in an MP4 container");
    }
    if let Some(what) = known_non_audio(head, at) {
        return other(what);
    }
    if let Some(what) = text_kind(head) {
        return other(what);
    }
    other("unrecognised data")
}

/// MPEG audio frames at the very start: MP3 if they are layer III and at least two consistent
/// frames follow one another (or one frame runs to the end of the data, for truncated files).
fn mpeg_audio(head: &[u8]) -> Option<Class> {
    let run = mpeg::frame_run(head, 2);
    let first = run.first?;
    if run.complete < 2 && !run.ran_out {
        return None;
    }
    Some(match first.layer {
        3 => Class::Audio(Format::Mp3),
        2 => Class::Other("MPEG audio layer II (MP2)".into()),
        _ => Class::Other("MPEG audio layer I (MP1)".into()),
    })
}

/// Well-known signatures of things that are not audio we accept.
fn known_non_audio(head: &[u8], at: impl Fn(usize, &[u8]) -> bool) -> Option<&'static str> {
    const MAGIC: [(usize, &[u8], &str); 27] = [
        (0, b"\x89PNG\r\n\x1a\n", "PNG image"),
        (0, b"\xFF\xD8\xFF", "JPEG image"),
        (0, b"GIF87a", "GIF image"),
        (0, b"GIF89a", "GIF image"),
        (0, b"%PDF", "PDF document"),
        (0, b"PK\x03\x04", "ZIP archive"),
        (0, b"PK\x05\x06", "ZIP archive"),
        (0, b"\x1F\x8B", "gzip data"),
        (0, b"7z\xBC\xAF\x27\x1C", "7-Zip archive"),
        (0, b"Rar!\x1A\x07", "RAR archive"),
        (0, b"BZh", "bzip2 data"),
        (0, b"\xFD7zXZ\0", "xz data"),
        (0, b"\x28\xB5\x2F\xFD", "zstd data"),
        (257, b"ustar", "tar archive"),
        (0, b"\x7FELF", "ELF executable"),
        (0, b"MZ", "Windows executable"),
        (
            0,
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            "Microsoft Office document",
        ),
        (0, b"II*\0", "TIFF image"),
        (0, b"MM\0*", "TIFF image"),
        (0, b"FORM", "AIFF/IFF file (AIFF is not accepted)"),
        (0, b".snd", "Sun AU audio (not accepted)"),
        (0, b"MThd", "MIDI file"),
        (0, b"#!AMR", "AMR audio (not accepted)"),
        (0, b"caff", "Core Audio file (not accepted)"),
        (
            0,
            b"\x30\x26\xB2\x75\x8E\x66\xCF\x11",
            "ASF/WMA file (not accepted)",
        ),
        (0, b"MAC ", "Monkey's Audio (not accepted)"),
        (0, b"wvpk", "WavPack audio (not accepted)"),
    ];
    if at(0, b"RIFF") {
        return Some(match head.get(8..12) {
            Some(b"WEBP") => "WebP image",
            Some(b"AVI ") => "AVI video",
            _ => "RIFF file that is not WAVE",
        });
    }
    if at(0, b"BM") && head.get(6..10) == Some(&[0, 0, 0, 0]) {
        return Some("BMP image");
    }
    if head.len() >= 188 * 3 && head.iter().step_by(188).take(3).all(|&b| b == 0x47) {
        return Some("MPEG transport stream (not accepted)");
    }
    MAGIC
        .iter()
        .find(|(offset, magic, _)| at(*offset, magic))
        .map(|(_, _, what)| *what)
}

/// Text, and what sort: markup is named, anything else printable is "text".
fn text_kind(head: &[u8]) -> Option<&'static str> {
    // A multi-byte character may be cut at the end of the sample; allow that.
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0C'))
    {
        return None;
    }
    let start: String = text
        .trim_start()
        .chars()
        .take(256)
        .collect::<String>()
        .to_lowercase();
    Some(
        if start.starts_with("<!doctype html") || start.starts_with("<html") {
            "HTML document"
        } else if start.contains("<svg") {
            "SVG image"
        } else if start.starts_with("<?xml") {
            "XML document"
        } else if start.starts_with('{') || start.starts_with('[') {
            "JSON or other text"
        } else {
            "text"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn what(bytes: &[u8]) -> String {
        match classify(bytes) {
            Class::Other(s) => s,
            c => format!("{c:?}"),
        }
    }

    #[test]
    fn describes_non_audio() {
        assert_eq!(what(b""), "empty file");
        assert_eq!(what(b"hello, this is not audio\n"), "text");
        assert_eq!(what("caf\u{e9} ol\u{e9}".as_bytes()), "text");
        assert_eq!(what(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "PNG image");
        assert_eq!(what(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), "JPEG image");
        assert_eq!(what(b"%PDF-1.7\n"), "PDF document");
        assert_eq!(what(b"PK\x03\x04\x14\0"), "ZIP archive");
        assert_eq!(what(b"  <!DOCTYPE html><html>"), "HTML document");
        assert_eq!(what(b"<?xml version=\"1.0\"?><a/>"), "XML document");
        assert_eq!(what(b"RIFF\0\0\0\0WEBPVP8 "), "WebP image");
        assert_eq!(what(b"\0\x01\x02\x03\xFE\xFD"), "unrecognised data");
        assert_eq!(what(b"\0\0\0\x18ftypheic"), "HEIF image");
    }

    #[test]
    fn recognises_containers() {
        assert_eq!(
            classify(b"RIFF\x24\0\0\0WAVEfmt "),
            Class::Audio(Format::Wav)
        );
        assert_eq!(
            classify(b"RF64\xFF\xFF\xFF\xFFWAVEds64"),
            Class::Audio(Format::Wav)
        );
        assert_eq!(classify(b"fLaC\0\0\0\x22"), Class::Audio(Format::Flac));
        assert_eq!(classify(b"OggS\0\x02"), Class::Audio(Format::Ogg));
        assert_eq!(
            classify(b"\x1A\x45\xDF\xA3\x9F"),
            Class::Audio(Format::Webm)
        );
        assert_eq!(
            classify(b"\0\0\0\x20ftypM4A \0\0\0\0"),
            Class::Audio(Format::Mp4)
        );
        assert_eq!(classify(b"ID3\x04\0\0\0\0\0\x05"), Class::Id3(15));
    }

    #[test]
    fn mp3_needs_consistent_frames() {
        let frame = |len: usize| {
            let mut f = vec![0xFF, 0xFB, 0x90, 0x64];
            f.resize(len, 0x55);
            f
        };
        let mut two = frame(417);
        two.extend(frame(417));
        assert_eq!(classify(&two), Class::Audio(Format::Mp3));
        // A lone frame cut short by the end of the data: a truncated MP3, left to the prober.
        assert_eq!(classify(&frame(100)), Class::Audio(Format::Mp3));
        // A sync word followed by something else is just noise.
        let mut noise = frame(417);
        noise.extend_from_slice(&[0x12; 600]);
        assert_eq!(what(&noise), "unrecognised data");
        // Layer II is named but refused.
        let mut mp2 = vec![0xFF, 0xFD, 0x90, 0x64];
        mp2.resize(10, 0);
        assert_eq!(what(&mp2), "MPEG audio layer II (MP2)");
    }
}
