//! Audio probing for Hark: what an uploaded file really is, from its bytes.
//!
//! [`probe_file`] sniffs the container from magic bytes, decodes the first second of audio to
//! prove the file is playable, and measures the exact duration by demuxing every packet. Anything
//! that is not audio we accept comes back as [`ProbeError::Unsupported`] with a description the
//! server can show to the client; no input makes it panic.

mod demux;
mod guard;
mod lacing;
mod mp4;
mod mpeg;
mod ogg;
mod opus;
pub mod process;
mod sniff;
mod source;
mod tags;
mod webm;

pub use process::{
    AudioWaveform, DamagedAudio, DecodeSummary, Loudness, LoudnessSink, Pcm, PcmSink, ProcessError,
    Processed, Rendition, RenditionSink, Waveform, WaveformSink, decode_into, process_file,
};
use sniff::{Sniffed, label};
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;

/// What a valid audio file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInfo {
    /// The container, detected from the bytes (never the file name).
    pub format: Format,
    /// ffprobe's `codec_name`: pcm_s16le, pcm_s24le, pcm_f32le, mp3, opus, vorbis, flac, aac, alac.
    pub codec: String,
    /// Length of the audio, without the encoder delay and padding the file declares.
    pub duration_seconds: f64,
    /// For Opus always 48000, the rate it decodes at.
    pub sample_rate: u32,
    pub channels: u16,
    /// Average bits per second of the whole file: size * 8 / duration, rounded.
    pub bitrate: u64,
    pub tags: Tags,
}

/// Descriptive tags; absent or unreadable ones are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub date: Option<String>,
    pub genre: Option<String>,
    pub comment: Option<String>,
}

/// The containers we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Wav,
    Mp3,
    Ogg,
    Flac,
    /// MP4/M4A (ISO base media), AAC or ALAC inside.
    Mp4,
    /// WebM or Matroska.
    Webm,
}

impl Format {
    /// Every format, for iteration.
    pub const ALL: [Format; 6] = [
        Format::Wav,
        Format::Mp3,
        Format::Ogg,
        Format::Flac,
        Format::Mp4,
        Format::Webm,
    ];

    /// Short stable name, as stored and sent over the API.
    pub fn name(self) -> &'static str {
        match self {
            Format::Wav => "wav",
            Format::Mp3 => "mp3",
            Format::Ogg => "ogg",
            Format::Flac => "flac",
            Format::Mp4 => "m4a",
            Format::Webm => "webm",
        }
    }

    /// MIME type to serve the file with.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Wav => "audio/wav",
            Format::Mp3 => "audio/mpeg",
            Format::Ogg => "audio/ogg",
            Format::Flac => "audio/flac",
            Format::Mp4 => "audio/mp4",
            Format::Webm => "audio/webm",
        }
    }

    /// File extension (without the dot) for downloads.
    pub fn extension(self) -> &'static str {
        self.name()
    }

    /// The inverse of [`Format::name`].
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// Why a file could not be probed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Not audio we accept; `detected` says what the bytes look like, for the client, e.g.
    /// "empty file", "text", "PNG image", "WAV header with no samples", "truncated MP3",
    /// "unrecognised data", "Ogg with codec speex".
    #[error("unsupported audio: {detected}")]
    Unsupported { detected: String },
    /// Reading the file failed; not the client's fault.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub(crate) fn unsupported(detected: impl Into<String>) -> ProbeError {
    ProbeError::Unsupported {
        detected: detected.into(),
    }
}

/// Probes the audio file at `path`. Blocking: reads the whole file (demuxing, not decoding).
pub fn probe_file(path: &Path) -> Result<AudioInfo, ProbeError> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let (format, offset) = match sniff::sniff_file(&mut file)? {
        Sniffed::Audio { format, offset } => (format, offset),
        Sniffed::Other(detected) => return Err(ProbeError::Unsupported { detected }),
    };
    if format == Format::Mp3 {
        check_mp3_start(&mut file, offset)?;
    }
    // The container readers are third-party code fed untrusted bytes; a panic in them is a
    // damaged file to us, not a crashed request.
    let reader = format!("{} reader", label(format));
    let stream = guard::guarded(path, &reader, || match format {
        Format::Ogg => probe_ogg(file, size),
        Format::Mp4 => probe_mp4(file, size),
        Format::Webm => probe_webm(file, size),
        _ => demux::probe(format, file, offset),
    })
    .unwrap_or_else(|| Err(unsupported(format!("damaged {} file", label(format)))))?;
    Ok(AudioInfo {
        format,
        codec: stream.codec,
        duration_seconds: stream.duration,
        sample_rate: stream.sample_rate,
        channels: stream.channels,
        bitrate: (size as f64 * 8.0 / stream.duration).round() as u64,
        tags: tags::read(path),
    })
}

/// symphonia would skip junk to find frames anywhere; we want real frames right at the start.
pub(crate) fn check_mp3_start(file: &mut File, offset: u64) -> Result<(), ProbeError> {
    let head = sniff::read_head(file, offset)?;
    let run = mpeg::frame_run(&head, 3);
    if run.complete == 0 {
        return Err(unsupported("truncated MP3"));
    }
    if run.complete < 3 && !run.ran_out {
        return Err(unsupported("MP3 frames followed by unrecognised data"));
    }
    Ok(())
}

/// MP4: symphonia demuxes and decodes, and the edit list trims encoder priming and padding.
fn probe_mp4(mut file: File, size: u64) -> Result<demux::Stream, ProbeError> {
    mp4::check_structure(&mut BufReader::new(&mut file), size).map_err(unsupported)?;
    let edit = mp4::read_edit(&mut file, size);
    let mut stream = demux::probe(Format::Mp4, file, 0)?;
    if let Some(edit) = edit {
        let mut duration = stream.duration - edit.skip;
        if let Some(presented) = edit.presented {
            duration = duration.min(presented);
        }
        if duration > 0.0 {
            stream.duration = duration;
        }
    }
    Ok(stream)
}

/// WebM/Matroska: Opus only, read by our own bounded reader.
fn probe_webm(mut file: File, size: u64) -> Result<demux::Stream, ProbeError> {
    file.rewind()?;
    let scan = webm::scan(BufReader::new(file), size, false)?;
    match scan.doc_type.as_str() {
        "webm" | "matroska" => {}
        "" => return Err(unsupported("truncated WebM/Matroska")),
        other => return Err(unsupported(format!("EBML file of type {other:?}"))),
    }
    let codec = match scan.codec_id.as_deref() {
        None => return Err(unsupported("WebM/Matroska with no audio track")),
        Some("A_OPUS") => "opus",
        Some(id) => {
            let name = match id {
                "A_VORBIS" => "vorbis",
                "A_FLAC" => "flac",
                "A_MPEG/L3" => "mp3",
                id if id.starts_with("A_AAC") => "aac",
                id if id.starts_with("A_PCM") => "pcm",
                id => id,
            };
            return Err(unsupported(format!(
                "WebM/Matroska with codec {name} (only Opus is accepted)"
            )));
        }
    };
    let head = scan
        .head
        .ok_or_else(|| unsupported("WebM Opus with an invalid OpusHead"))?;
    let duration = scan.duration();
    if scan.good == 0 || duration <= 0.0 {
        return Err(unsupported(demux::no_audio(Format::Webm, codec)));
    }
    if scan.bad > scan.good {
        return Err(unsupported(
            "damaged WebM Opus: most of the first packets are malformed",
        ));
    }
    Ok(demux::Stream {
        codec: codec.into(),
        sample_rate: opus::OPUS_RATE,
        channels: head.channels,
        duration,
        start: 0.0,
    })
}

/// Enough Ogg packets for a second of 2.5 ms Opus frames, plus the two header packets.
const OGG_PACKETS: usize = 402;

/// Ogg: Opus is checked by hand; Vorbis and FLAC are decoded by symphonia. Either way the length
/// runs from the first sample to the last granule position, as ffprobe computes it: a stream cut
/// from a live one starts above zero.
fn probe_ogg(mut file: File, size: u64) -> Result<demux::Stream, ProbeError> {
    file.rewind()?;
    let mut reader = BufReader::new(file);
    let accepted = |codec: &str| matches!(codec, "opus" | "vorbis" | "flac");
    let scan = ogg::scan(&mut reader, size, accepted, OGG_PACKETS)?;
    match scan.codec {
        "opus" => ogg_opus(&scan),
        "vorbis" | "flac" => {
            let mut stream = demux::probe(Format::Ogg, reader.into_inner(), 0)?;
            // symphonia finds where the audio starts (the first audio page's granule position
            // less the samples on it), but its end overshoots by the delay it adds to a stream
            // that starts at zero; the last granule position is exact.
            if let Some(granule) = scan.last_granule.filter(|&g| g > 0) {
                let duration = granule as f64 / f64::from(stream.sample_rate) - stream.start;
                if duration > 0.0 {
                    stream.duration = duration;
                }
            }
            Ok(stream)
        }
        "unknown" if scan.packets.is_empty() => Err(unsupported("Ogg with no streams")),
        codec => Err(unsupported(format!("Ogg with codec {codec}"))),
    }
}

fn ogg_opus(scan: &ogg::OggScan) -> Result<demux::Stream, ProbeError> {
    let head = scan
        .packets
        .first()
        .and_then(|p| opus::parse_head(p))
        .ok_or_else(|| unsupported("Ogg Opus with an invalid OpusHead"))?;
    let (mut good, mut bad, mut samples) = (0usize, 0usize, 0u64);
    let audio = scan
        .packets
        .iter()
        .skip(1)
        .filter(|p| !p.starts_with(b"OpusTags"));
    for packet in audio {
        match opus::packet_samples(packet) {
            Ok(0) => {}
            Ok(n) => {
                good += 1;
                samples += u64::from(n);
            }
            Err(_) => bad += 1,
        }
        if samples >= u64::from(opus::OPUS_RATE) {
            break;
        }
    }
    // OpusHead and OpusTags come first; the pre-skip counts from the first sample.
    let start = scan.start_granule(2, |p| opus::packet_samples(p).map_or(0, u64::from));
    let first = start + u64::from(head.pre_skip);
    let granule = scan.last_granule.unwrap_or(0);
    if good == 0 || granule <= first {
        return Err(unsupported(demux::no_audio(Format::Ogg, "opus")));
    }
    if bad > good {
        return Err(unsupported(
            "damaged Ogg Opus: most of the first packets are malformed",
        ));
    }
    Ok(demux::Stream {
        codec: "opus".into(),
        sample_rate: opus::OPUS_RATE,
        channels: head.channels,
        duration: (granule - first) as f64 / f64::from(opus::OPUS_RATE),
        start: start as f64 / f64::from(opus::OPUS_RATE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.name()), Some(f));
            assert_eq!(f.extension(), f.name());
            assert!(f.mime().starts_with("audio/"));
        }
        assert_eq!(Format::Mp4.name(), "m4a");
        assert_eq!(Format::Mp3.mime(), "audio/mpeg");
        assert_eq!(Format::parse("mp4"), None);
    }

    fn detected(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("upload");
        std::fs::write(&path, bytes).expect("write");
        match probe_file(&path) {
            Err(ProbeError::Unsupported { detected }) => detected,
            other => panic!("{bytes:?}: expected Unsupported, got {other:?}"),
        }
    }

    #[test]
    fn synthetic_inputs_are_refused_with_a_reason() {
        let cases: [(&[u8], &str); 12] = [
            (b"", "empty file"),
            (b"\0", "unrecognised data"),
            (b"x", "text"),
            (b"Hello, I am a text file.\nReally.\n", "text"),
            (b"fLaC\0\0\0\x22\x10\0\x10", "FLAC"),
            (b"fLaC", "FLAC"),
            (b"RIFF\x24\0\0\0WAVEfmt ", "WAV"),
            (b"OggS\0\x02\0\0", "Ogg"),
            (b"ID3\x04\0\0\0\0\0\0", "ID3 tag with no audio"),
            (b"\x1A\x45\xDF\xA3\x84", "truncated WebM"),
            (b"\0\0\0\x14ftypM4A \0\0\0\0", "MP4"),
            (b"\xFF\xFB\x90\x64", "truncated MP3"),
        ];
        for (bytes, want) in cases {
            let got = detected(bytes);
            assert!(
                got.contains(want),
                "{bytes:?}: {got:?} does not mention {want:?}"
            );
        }
    }

    /// Ogg Opus of 50 packets of 20 ms (1 s) with a pre-skip of 312, whose first audio page
    /// ends at `first_granule`.
    fn ogg_opus_file(first_granule: u64) -> Vec<u8> {
        use crate::ogg::tests::page;
        let packet: &[u8] = &[19 << 3, 1, 2, 3];
        let mut file = page(7, 2, 0, &[b"OpusHead\x01\x01\x38\x01\x80\xBB\0\0\0\0\0"]);
        file.extend(page(7, 0, 0, &[b"OpusTags"]));
        file.extend(page(7, 0, first_granule, &[packet; 25]));
        file.extend(page(7, 4, first_granule + 24_000, &[packet; 25]));
        file
    }

    #[test]
    fn ogg_opus_cut_from_a_live_stream_lasts_as_long_as_its_packets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let expected = (48_000.0 - 312.0) / 48_000.0;
        // From zero, and 10 s into a live stream: the same audio.
        for start in [0, 480_000] {
            let path = dir.path().join(format!("{start}.ogg"));
            std::fs::write(&path, ogg_opus_file(start + 24_000)).expect("write");
            let info = probe_file(&path).expect("probe");
            assert_eq!((info.format, info.codec.as_str()), (Format::Ogg, "opus"));
            assert!(
                (info.duration_seconds - expected).abs() < 1e-9,
                "start {start}: {} s, expected {expected} s",
                info.duration_seconds
            );
        }
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let err = probe_file(Path::new("/nonexistent/hark/upload"));
        assert!(matches!(err, Err(ProbeError::Io(_))), "{err:?}");
    }
}
