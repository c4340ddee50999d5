//! Demuxing and first-packet decoding with symphonia, for every container but Ogg Opus.
//!
//! The duration always comes from the packets themselves (end of the last packet), never from a
//! header: headers can be missing (browser WebM), estimated (MP3 without Xing) or wrong
//! (truncated uploads). Only the first second or so is decoded; the rest is only demuxed.

use crate::mpeg;
use crate::opus::{self, OPUS_RATE};
use crate::sniff::label;
use crate::source::Window;
use crate::{Format, ProbeError, unsupported};
use std::fs::File;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{
    AudioCodecParameters, AudioDecoder, AudioDecoderOptions, CODEC_ID_NULL_AUDIO,
};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader, Track};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::packet::Packet;
use symphonia::core::units::TimeBase;
use symphonia::default::formats::{FlacReader, IsoMp4Reader, MpaReader, OggReader, WavReader};

/// What probing found about the audio stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stream {
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration: f64,
    /// Where the audio starts on the stream's timeline, in seconds: above zero for a stream cut
    /// from a live one. Readers that do not tell say 0.
    pub start: f64,
}

/// Stop decoding after this many packets even if they hold less than a second.
const MAX_DECODED_PACKETS: usize = 500;

/// Opens the container with the reader for `format`, picks the first audio track, decodes its
/// first second and demuxes the rest.
pub(crate) fn probe(format: Format, file: File, offset: u64) -> Result<Stream, ProbeError> {
    let (mut reader, track, params) = open(format, file, offset)?;
    scan(format, reader.as_mut(), &track, &params)
}

/// A container reader positioned at its first packet, with the audio track it carries.
pub(crate) type Opened = (Box<dyn FormatReader>, Track, AudioCodecParameters);

/// Opens the container with the reader for `format` and picks the first audio track.
pub(crate) fn open(format: Format, file: File, offset: u64) -> Result<Opened, ProbeError> {
    let mut source = Window::new(file, offset)?;
    let mut magic = [0u8; 4];
    if format == Format::Wav
        && source.peek(&mut magic)? == 4
        && (&magic == b"RF64" || &magic == b"BW64")
    {
        source = source.with_magic(*b"RIFF");
    }
    let mss = MediaSourceStream::new(Box::new(source), MediaSourceStreamOptions::default());
    let opts = FormatOptions::default();
    let opened = match format {
        Format::Wav => WavReader::try_new(mss, opts).map(boxed),
        Format::Mp3 => MpaReader::try_new(mss, opts).map(boxed),
        Format::Ogg => OggReader::try_new(mss, opts).map(boxed),
        Format::Flac => FlacReader::try_new(mss, opts).map(boxed),
        Format::Mp4 => IsoMp4Reader::try_new(mss, opts).map(boxed),
        // WebM has its own reader (webm.rs); symphonia's is not safe on damaged input.
        Format::Webm => return Err(unsupported("WebM/Matroska")),
    };
    let reader = opened.map_err(|e| open_error(format, e))?;
    let (track, params) =
        pick_track(reader.tracks()).ok_or_else(|| no_track(format, reader.tracks()))?;
    Ok((reader, track, params))
}

fn boxed<R: FormatReader + 'static>(reader: R) -> Box<dyn FormatReader> {
    Box::new(reader)
}

/// The first audio track with a codec symphonia recognises, and its parameters.
fn pick_track(tracks: &[Track]) -> Option<(Track, AudioCodecParameters)> {
    tracks.iter().find_map(|t| {
        let params = t.codec_params.as_ref()?.audio()?;
        (params.codec != CODEC_ID_NULL_AUDIO).then(|| (t.clone(), params.clone()))
    })
}

fn no_track(format: Format, tracks: &[Track]) -> ProbeError {
    if tracks.is_empty() {
        unsupported(format!("{} with no tracks", label(format)))
    } else {
        unsupported(format!(
            "{} with no audio track in a supported codec",
            label(format)
        ))
    }
}

/// Maps an error from opening a container to the client-facing reason.
fn open_error(format: Format, e: SymError) -> ProbeError {
    match e {
        SymError::IoError(io) if io.raw_os_error().is_some() => ProbeError::Io(io),
        SymError::IoError(_) => unsupported(match format {
            Format::Wav => "WAV header with no samples".to_owned(),
            Format::Mp3 => "truncated MP3".to_owned(),
            f => format!("truncated {}", label(f)),
        }),
        SymError::Unsupported(what) => unsupported(format!(
            "{} with unsupported content ({what})",
            label(format)
        )),
        e => unsupported(format!("damaged {} ({e})", label(format))),
    }
}

/// ffmpeg's name for a codec, which is what clients and the manifest use.
pub(crate) fn codec_name(params: &AudioCodecParameters) -> String {
    if params.codec == CODEC_ID_OPUS {
        return "opus".into();
    }
    symphonia::default::get_codecs()
        .get_audio_decoder(params.codec)
        .map_or_else(|| "unknown".into(), |d| d.codec.info.short_name.to_owned())
}

/// Seconds of `ticks` in `tb`, or at `sample_rate` when the track has no time base.
fn seconds(tb: Option<TimeBase>, ticks: f64, sample_rate: u32) -> f64 {
    match tb {
        Some(tb) => ticks * f64::from(tb.numer.get()) / f64::from(tb.denom.get()),
        None if sample_rate > 0 => ticks / f64::from(sample_rate),
        None => 0.0,
    }
}

/// How we check packets: a symphonia decoder, or Opus framing rules.
enum Checker {
    Decoder(Box<dyn AudioDecoder>),
    Opus,
}

/// Running totals while reading packets.
#[derive(Default)]
struct Tally {
    good: usize,
    bad: usize,
    frames: u64,
    decoded_channels: Option<u16>,
    decoded_rate: Option<u32>,
}

fn scan(
    format: Format,
    reader: &mut dyn FormatReader,
    track: &Track,
    params: &AudioCodecParameters,
) -> Result<Stream, ProbeError> {
    let codec = codec_name(params);
    let what = format!("{} with codec {codec}", label(format));
    let opus_head = if params.codec == CODEC_ID_OPUS {
        let head = params.extra_data.as_deref().and_then(opus::parse_head);
        Some(head.ok_or_else(|| unsupported(format!("{what} and no valid OpusHead")))?)
    } else {
        None
    };
    let mut checker = match opus_head {
        Some(_) => Checker::Opus,
        None => Checker::Decoder(
            symphonia::default::get_codecs()
                .make_audio_decoder(params, &AudioDecoderOptions::default())
                .map_err(|_| unsupported(format!("{what}, which is not supported")))?,
        ),
    };
    let mut sample_rate = match opus_head {
        Some(_) => OPUS_RATE,
        None => params.sample_rate.unwrap_or(0),
    };
    let pcm_frame_bytes = pcm_frame_bytes(params);
    let mut tally = Tally::default();
    let (mut start, mut end) = (f64::INFINITY, 0f64);
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(packet)) => packet,
            Err(SymError::IoError(e)) if e.raw_os_error().is_some() => return Err(e.into()),
            // End of stream, a damaged tail, or a chained stream: the audio ends here.
            Ok(None) | Err(_) => break,
        };
        if packet.track_id != track.id {
            continue;
        }
        let checking = tally.good + tally.bad < MAX_DECODED_PACKETS
            && (tally.frames < u64::from(sample_rate.max(1)) || tally.good == 0);
        let dur_secs = match (&mut checker, checking) {
            (Checker::Opus, _) => match opus::packet_samples(&packet.data) {
                Ok(n) => {
                    if checking && n > 0 {
                        tally.good += 1;
                        tally.frames += u64::from(n);
                    }
                    f64::from(n) / f64::from(OPUS_RATE)
                }
                Err(_) => {
                    tally.bad += usize::from(checking);
                    0.0
                }
            },
            (Checker::Decoder(decoder), check) => {
                if check {
                    decode_one(decoder.as_mut(), &packet, &mut tally);
                }
                let dur = decoded_frames(format, &packet);
                let dur = match pcm_frame_bytes {
                    Some(bytes) => dur.min((packet.data.len() / bytes) as u64),
                    None => dur,
                };
                seconds(track.time_base, dur as f64, sample_rate)
            }
        };
        let ts = seconds(track.time_base, packet.pts.get() as f64, sample_rate);
        start = start.min(ts);
        end = end.max(ts + dur_secs);
    }
    if tally.good == 0 {
        return Err(unsupported(no_audio(format, &codec)));
    }
    if tally.bad > tally.good {
        return Err(unsupported(format!(
            "damaged {what}: most of the first packets do not decode"
        )));
    }
    if sample_rate == 0 {
        sample_rate = tally.decoded_rate.unwrap_or(0);
    }
    let channels = match opus_head {
        Some(head) => head.channels,
        None => params
            .channels
            .as_ref()
            .and_then(|c| u16::try_from(c.count()).ok())
            .or(tally.decoded_channels)
            .unwrap_or(0),
    };
    if sample_rate == 0 || channels == 0 {
        return Err(unsupported(format!(
            "{what} and no sample rate or channel count"
        )));
    }
    // Encoder delay and padding the file declares (LAME tag, OpusHead pre-skip) are not audio.
    let trimmed = match opus_head {
        Some(head) => u64::from(head.pre_skip),
        None => u64::from(track.delay.unwrap_or(0)) + u64::from(track.padding.unwrap_or(0)),
    };
    let duration = (end - start.min(end)) - trimmed as f64 / f64::from(sample_rate);
    if duration <= 0.0 {
        return Err(unsupported(no_audio(format, &codec)));
    }
    // Readers place the encoder delay just before the first sample (MP3 below zero, Ogg before
    // the first granule position).
    let delay = match opus_head {
        Some(_) => 0.0,
        None => seconds(
            track.time_base,
            f64::from(track.delay.unwrap_or(0)),
            sample_rate,
        ),
    };
    Ok(Stream {
        codec,
        sample_rate,
        channels,
        duration,
        start: start.min(end) + delay,
    })
}

/// Frames the packet decodes to, encoder delay and padding included. symphonia 0.6 reports this
/// as `block_dur()`, but its MP3 reader (0.6.1) also counts the trimmed frames in `dur`, so for
/// MP3 the frame header says it.
fn decoded_frames(format: Format, packet: &Packet) -> u64 {
    let mp3 = (format == Format::Mp3).then(|| mpeg::parse_header(&packet.data));
    mp3.flatten()
        .map_or_else(|| packet.block_dur().get(), |header| header.samples())
}

/// Decodes one packet, counting it as good if it yields audio.
fn decode_one(decoder: &mut dyn AudioDecoder, packet: &Packet, tally: &mut Tally) {
    match decoder.decode(packet) {
        Ok(buf) if buf.frames() > 0 => {
            tally.good += 1;
            tally.frames += buf.frames() as u64;
            tally.decoded_rate = Some(buf.spec().rate());
            tally.decoded_channels = u16::try_from(buf.spec().channels().count()).ok();
        }
        // Priming packets (AAC, Vorbis) legitimately decode to nothing.
        Ok(_) => {}
        Err(_) => tally.bad += 1,
    }
}

/// Bytes per frame for PCM, so a short final packet (truncated file) counts only what it holds.
fn pcm_frame_bytes(params: &AudioCodecParameters) -> Option<usize> {
    let is_pcm = codec_name(params).starts_with("pcm_");
    let bits = params.bits_per_coded_sample.or(params.bits_per_sample)?;
    let channels = params.channels.as_ref()?.count();
    let bytes = (bits as usize).div_ceil(8) * channels;
    (is_pcm && bytes > 0).then_some(bytes)
}

/// The message for a container whose header parsed but that holds no decodable audio.
pub(crate) fn no_audio(format: Format, codec: &str) -> String {
    match format {
        Format::Wav => "WAV header with no samples".into(),
        Format::Mp3 => "truncated MP3".into(),
        f => format!("{} ({codec}) with no audio", label(f)),
    }
}
