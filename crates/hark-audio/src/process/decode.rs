//! The full decode: every packet of the file, through the same container readers as probing,
//! with encoder delay and padding removed as the file declares them (LAME tag and Vorbis granules
//! by symphonia's decoders, the MP4 edit list, the Opus pre-skip and end trimming here).
//!
//! Damage is anything that stops the decode before the end of the data: a container that stops
//! parsing, a packet that does not decode, junk after the last MP3 frame, or a file shorter than
//! its own header says. Third-party readers and decoders run inside the panic guard.

use super::{DamagedAudio, DecodeSummary, Pcm, PcmSink, ProcessError};
use crate::opus::{OPUS_RATE, parse_head};
use crate::sniff::{Sniffed, label};
use crate::{Format, ProbeError, check_mp3_start, demux, guard, mp4, mpeg, ogg, sniff, webm};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::errors::Error as SymError;

/// Decodes the whole file at `path` and feeds every sink, in order, each decoded packet; then
/// calls their `finish`. Blocking and CPU-bound.
///
/// A file that is damaged or not audio we accept gives [`ProcessError::Damaged`] (the sinks may
/// have seen part of it, and are not finished); reading the file or a sink's IO failing gives
/// [`ProcessError::Io`].
pub fn decode_into(
    path: &Path,
    sinks: &mut [&mut dyn PcmSink],
) -> Result<DecodeSummary, ProcessError> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let (format, offset) = match sniff::sniff_file(&mut file)? {
        Sniffed::Audio { format, offset } => (format, offset),
        Sniffed::Other(detected) => {
            return Err(damaged(format!("not audio we accept: {detected}"), 0.0));
        }
    };
    let mut out = Output {
        sinks,
        spec: None,
        frames: 0,
        decoded: 0,
        skip: 0,
        limit: None,
    };
    let codec = match format {
        Format::Webm => webm_opus(path, file, size, &mut out)?,
        Format::Ogg => ogg_stream(path, file, size, &mut out)?,
        _ => with_symphonia(path, format, file, offset, size, &mut out)?,
    };
    out.finish(format, codec)
}

fn damaged(reason: impl Into<String>, at_seconds: f64) -> ProcessError {
    ProcessError::Damaged(DamagedAudio {
        reason: reason.into(),
        at_seconds,
    })
}

fn from_probe(e: ProbeError) -> ProcessError {
    match e {
        ProbeError::Unsupported { detected } => damaged(detected, 0.0),
        ProbeError::Io(e) => ProcessError::Io(e),
    }
}

fn cut_short(format: Format, at: f64) -> ProcessError {
    damaged(
        format!(
            "truncated {}: the file ends in the middle of the audio, as if the upload was cut short",
            label(format)
        ),
        at,
    )
}

/// Where decoded audio goes: trimmed, counted, then handed to every sink.
struct Output<'s, 'k> {
    sinks: &'s mut [&'k mut dyn PcmSink],
    /// Channels and rate of the first block; every later block must match.
    spec: Option<(u16, u32)>,
    /// Frames handed to the sinks.
    frames: u64,
    /// Frames the decoder produced, before `skip` and `limit`.
    decoded: u64,
    /// Frames still to drop from the start (encoder delay the decoder does not remove).
    skip: u64,
    /// At most this many frames in all (end trimming), if known.
    limit: Option<u64>,
}

impl Output<'_, '_> {
    /// Seconds handed on so far: where in the audio a problem is.
    fn seconds(&self) -> f64 {
        self.spec
            .map_or(0.0, |(_, rate)| self.frames as f64 / f64::from(rate))
    }

    fn push(&mut self, samples: &[f32], channels: u16, rate: u32) -> Result<(), ProcessError> {
        if channels == 0 || rate == 0 || samples.is_empty() {
            return Ok(());
        }
        match self.spec {
            None => self.spec = Some((channels, rate)),
            Some(spec) if spec != (channels, rate) => {
                return Err(damaged(
                    format!(
                        "the audio changes from {} channels at {} Hz to {channels} at {rate} Hz \
                         midway, which we do not process",
                        spec.0, spec.1
                    ),
                    self.seconds(),
                ));
            }
            Some(_) => {}
        }
        let width = usize::from(channels);
        let total = (samples.len() / width) as u64;
        self.decoded += total;
        let start = self.skip.min(total);
        self.skip -= start;
        let mut end = total;
        if let Some(limit) = self.limit {
            end = end.min(start + limit.saturating_sub(self.frames));
        }
        if end <= start {
            return Ok(());
        }
        let block = &samples[start as usize * width..end as usize * width];
        self.frames += end - start;
        for sink in self.sinks.iter_mut() {
            sink.accept(Pcm {
                samples: block,
                channels,
                sample_rate: rate,
            })?;
        }
        Ok(())
    }

    fn finish(self, format: Format, codec: String) -> Result<DecodeSummary, ProcessError> {
        let Some((channels, sample_rate)) = self.spec.filter(|_| self.frames > 0) else {
            return Err(damaged(
                format!("{} ({codec}) with no audio that decodes", label(format)),
                0.0,
            ));
        };
        for sink in self.sinks.iter_mut() {
            sink.finish()?;
        }
        Ok(DecodeSummary {
            format,
            codec,
            sample_rate,
            channels,
            frames: self.frames,
            duration_seconds: self.frames as f64 / f64::from(sample_rate),
        })
    }
}

/// Every container but WebM and Ogg Opus: symphonia demuxes and decodes.
fn with_symphonia(
    path: &Path,
    format: Format,
    mut file: File,
    offset: u64,
    size: u64,
    out: &mut Output<'_, '_>,
) -> Result<String, ProcessError> {
    let name = label(format);
    let (mut edit, mut mp3_frames) = (None, None);
    match format {
        Format::Mp3 => {
            check_mp3_start(&mut file, offset).map_err(from_probe)?;
            mp3_frames = Some(check_mp3_frames(&mut file, offset)?);
        }
        Format::Mp4 => {
            mp4::check_structure(&mut BufReader::new(&mut file), size)
                .map_err(|reason| damaged(reason, 0.0))?;
            edit = mp4::read_edit(&mut file, size);
        }
        _ => {}
    }
    let opened = guard::guarded(path, &format!("{name} reader"), || {
        demux::open(format, file, offset)
    })
    .ok_or_else(|| damaged(format!("damaged {name} file"), 0.0))?;
    let (mut reader, track, params) = opened.map_err(|e| match (format, e) {
        // ffmpeg writes the index last: a cut file or one with garbage after the start has none.
        (Format::Mp4, ProbeError::Unsupported { detected }) if detected.contains("moov") => {
            damaged(
                "damaged MP4: its index (the moov box) is missing; the file may be cut short",
                0.0,
            )
        }
        (_, e) => from_probe(e),
    })?;
    let codec = demux::codec_name(&params);
    if params.codec == CODEC_ID_OPUS {
        return Err(damaged(
            format!("Opus in {name}, which we do not decode"),
            0.0,
        ));
    }
    // symphonia's MP3 reader ends the stream where the length it estimates from the first
    // frame's bitrate says (wrong for VBR without a Xing header); its MP3 is trimmed here.
    let mut options = AudioDecoderOptions::default();
    options.gapless = format != Format::Mp3;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &options)
        .map_err(|_| {
            damaged(
                format!("{name} with codec {codec}, which we do not decode"),
                0.0,
            )
        })?;
    // The MP4 edit list: the priming samples before it and the padding after it are not audio.
    if let (Some(edit), Some(rate)) = (edit, params.sample_rate) {
        out.skip = (edit.skip * f64::from(rate)).round() as u64;
        out.limit = edit.presented.map(|p| (p * f64::from(rate)).round() as u64);
    }
    // MP3: the LAME tag's delay and padding (symphonia puts the decoder's delay in the former).
    if let Some(frames) = mp3_frames {
        let delay = u64::from(track.delay.unwrap_or(0));
        out.skip = delay;
        out.limit = track
            .padding
            .map(|padding| frames.saturating_sub(delay + u64::from(padding)));
    }
    let reading = format!("{name} reader");
    let decoding = format!("{codec} decoder");
    let mut samples: Vec<f32> = Vec::new();
    loop {
        let next = guard::guarded(path, &reading, || reader.next_packet())
            .ok_or_else(|| damaged(format!("damaged {name}: unreadable data"), out.seconds()))?;
        let packet = match next {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.raw_os_error().is_some() => return Err(e.into()),
            Err(SymError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(cut_short(format, out.seconds()));
            }
            Err(e) => {
                return Err(damaged(format!("damaged {name} ({e})"), out.seconds()));
            }
        };
        if packet.track_id != track.id {
            continue;
        }
        let decoded = guard::guarded(path, &decoding, || {
            decoder.decode(&packet).map(|buf| {
                buf.copy_to_vec_interleaved(&mut samples);
                let spec = buf.spec();
                (spec.channels().count(), spec.rate())
            })
        })
        .ok_or_else(|| {
            damaged(
                format!("damaged {name}: the {codec} decoder gave up"),
                out.seconds(),
            )
        })?;
        match decoded {
            Ok((channels, rate)) => {
                let channels = u16::try_from(channels).unwrap_or(0);
                out.push(&samples, channels, rate)?;
            }
            Err(e) => {
                return Err(damaged(
                    format!("damaged {name}: {codec} data that does not decode ({e})"),
                    out.seconds(),
                ));
            }
        }
    }
    // A header that declares more audio than the file holds: the upload was cut short. (MP3's
    // count can be an estimate and Ogg's is off for streams cut from live ones; their frames and
    // pages are checked on their own.)
    let counted = !matches!(format, Format::Mp3 | Format::Ogg);
    if let (Some(declared), Some(rate), true) = (track.num_frames, params.sample_rate, counted) {
        let trimmed = u64::from(track.delay.unwrap_or(0)) + u64::from(track.padding.unwrap_or(0));
        if out.decoded + trimmed + u64::from(rate / 20) < declared {
            return Err(cut_short(format, out.seconds()));
        }
    }
    Ok(codec)
}

/// MP3 has no container: the frames must run back to back to the end of the file, where only a
/// tag may follow. Anything else is junk (which symphonia would skip in silence) or a cut.
/// Returns the samples per channel of the audio frames (a leading Xing/Info/VBRI frame is not
/// audio).
fn check_mp3_frames(file: &mut File, offset: u64) -> Result<u64, ProcessError> {
    let mut data = Vec::new();
    file.seek(SeekFrom::Start(offset))?;
    file.read_to_end(&mut data)?;
    let (mut pos, mut seconds, mut samples) = (0usize, 0f64, 0u64);
    while let Some(rest) = data.get(pos..).filter(|r| r.len() >= 4) {
        let Some(header) = mpeg::parse_header(rest) else {
            const TAGS: [&[u8]; 3] = [b"TAG", b"APETAGEX", b"LYRICSBEGIN"];
            if TAGS.iter().any(|tag| rest.starts_with(tag)) {
                break;
            }
            return Err(damaged(
                format!(
                    "damaged MP3: {} bytes of unrecognised data where the next frame should be",
                    rest.len()
                ),
                seconds,
            ));
        };
        if header.len > rest.len() {
            return Err(cut_short(Format::Mp3, seconds));
        }
        let info_tag = pos == 0 && {
            let head = &rest[..header.len.min(64)];
            [b"Xing", b"Info", b"VBRI"]
                .iter()
                .any(|tag| head.windows(4).any(|w| w == *tag))
        };
        if !info_tag {
            samples += header.samples();
        }
        pos += header.len.max(1);
        seconds += header.samples() as f64 / f64::from(header.sample_rate.max(1));
    }
    Ok(samples)
}

/// Ogg: Opus is decoded here with libopus; Vorbis and FLAC by symphonia, after a check of every
/// page (symphonia skips damaged pages without a word).
fn ogg_stream(
    path: &Path,
    file: File,
    size: u64,
    out: &mut Output<'_, '_>,
) -> Result<String, ProcessError> {
    let mut file = file;
    file.rewind()?;
    let mut reader = BufReader::new(file);
    let accepted = |codec: &str| matches!(codec, "opus" | "vorbis" | "flac");
    let scan = ogg::scan(&mut reader, size, accepted, 1)?;
    let mut file = reader.into_inner();
    file.rewind()?;
    match scan.codec {
        "opus" => ogg_opus(path, file, out),
        "vorbis" | "flac" => {
            let damage = ogg_pages_damage(&mut file)?;
            let codec = with_symphonia(path, Format::Ogg, file, 0, size, out)?;
            match damage {
                Some(reason) => Err(damaged(reason, out.seconds())),
                None => Ok(codec),
            }
        }
        "unknown" if scan.packets.is_empty() => Err(damaged("Ogg with no streams", 0.0)),
        codec => Err(damaged(format!("Ogg with codec {codec}"), 0.0)),
    }
}

/// Reads every Ogg page, checksums included; says what is wrong with the first bad one.
fn ogg_pages_damage(file: &mut File) -> Result<Option<String>, ProcessError> {
    let mut reader = ::ogg::PacketReader::new(BufReader::new(&mut *file));
    let damage = loop {
        match reader.read_packet() {
            Ok(Some(_)) => {}
            Ok(None) => break None,
            Err(e) => break Some(ogg_error(e)?),
        }
    };
    file.rewind()?;
    Ok(damage)
}

/// The reason for an Ogg read error, or the IO error it wraps.
fn ogg_error(e: ::ogg::OggReadError) -> Result<String, io::Error> {
    use ::ogg::OggReadError as E;
    Ok(match e {
        E::ReadError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            "truncated Ogg: the file ends in the middle of a page, as if the upload was cut short"
                .into()
        }
        E::ReadError(e) => return Err(e),
        E::HashMismatch(..) => "damaged Ogg: a page fails its checksum".into(),
        E::NoCapturePatternFound => "damaged Ogg: unrecognised data where a page should be".into(),
        E::InvalidStreamStructVer(_) | E::InvalidData => "damaged Ogg: an invalid page".into(),
    })
}

/// An Opus decoder that runs behind the panic guard and hands its output on.
struct OpusDecoder {
    decoder: ::opus::Decoder,
    channels: u16,
    buf: Vec<f32>,
}

/// 120 ms at 48 kHz: the most one packet holds.
const MAX_PACKET_FRAMES: usize = 5760;

impl OpusDecoder {
    fn new(channels: u16, at: f64) -> Result<Self, ProcessError> {
        let layout = match channels {
            1 => ::opus::Channels::Mono,
            2 => ::opus::Channels::Stereo,
            n => {
                return Err(damaged(
                    format!("Opus with {n} channels, which we do not decode"),
                    at,
                ));
            }
        };
        let decoder = ::opus::Decoder::new(OPUS_RATE, layout)
            .map_err(|e| io::Error::other(format!("libopus: {e}")))?;
        Ok(OpusDecoder {
            decoder,
            channels,
            buf: vec![0.0; MAX_PACKET_FRAMES * usize::from(channels)],
        })
    }

    /// Decodes one packet into `self.buf`; returns its frame count.
    fn decode(&mut self, path: &Path, packet: &[u8], at: f64) -> Result<usize, ProcessError> {
        let (decoder, buf) = (&mut self.decoder, &mut self.buf);
        guard::guarded(path, "Opus decoder", || {
            decoder.decode_float(packet, buf, false)
        })
        .ok_or_else(|| damaged("damaged Opus: the decoder gave up", at))?
        .map_err(|e| {
            damaged(
                format!("damaged Opus: a packet that does not decode ({e})"),
                at,
            )
        })
    }

    fn decoded(&self, frames: usize) -> &[f32] {
        &self.buf[..frames * usize::from(self.channels)]
    }
}

/// Ogg Opus (RFC 7845): the pre-skip is dropped, and the last page's granule position trims the
/// end. A stream cut from a live one starts counting above zero, as in probing.
fn ogg_opus(path: &Path, file: File, out: &mut Output<'_, '_>) -> Result<String, ProcessError> {
    let mut reader = ::ogg::PacketReader::new(BufReader::new(file));
    let mut stream: Option<(u32, OpusDecoder, u64)> = None; // serial, decoder, pre-skip
    let mut tags_next = false;
    let mut start: Option<u64> = None;
    let mut page: Vec<Vec<u8>> = Vec::new();
    loop {
        let packet = match reader.read_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(e) => return Err(damaged(ogg_error(e)?, out.seconds())),
        };
        let Some((serial, decoder, pre_skip)) = &mut stream else {
            if let Some(head) = parse_head(&packet.data).filter(|_| packet.first_in_stream()) {
                let decoder = OpusDecoder::new(head.channels, 0.0)?;
                let pre_skip = u64::from(head.pre_skip);
                out.skip = pre_skip;
                stream = Some((packet.stream_serial(), decoder, pre_skip));
                tags_next = true;
            }
            continue;
        };
        if packet.stream_serial() != *serial {
            continue;
        }
        if std::mem::take(&mut tags_next) && packet.data.starts_with(b"OpusTags") {
            continue;
        }
        let (granule, eos) = (packet.absgp_page(), packet.last_in_stream());
        let page_ends = packet.last_in_page() || eos;
        page.push(packet.data);
        if !page_ends {
            continue;
        }
        let first = *start.get_or_insert_with(|| {
            let held: u64 = page.iter().map(|p| packet_frames(p)).sum();
            if eos { 0 } else { granule.saturating_sub(held) }
        });
        if eos {
            out.limit = Some(granule.saturating_sub(first + *pre_skip));
        }
        for data in page.drain(..) {
            let frames = decoder.decode(path, &data, out.seconds())?;
            out.push(decoder.decoded(frames), decoder.channels, OPUS_RATE)?;
        }
        if eos {
            // Whatever follows (a chained stream) is not this note's audio.
            break;
        }
    }
    if stream.is_none() {
        return Err(damaged("Ogg Opus with an invalid OpusHead", 0.0));
    }
    Ok("opus".into())
}

fn packet_frames(packet: &[u8]) -> u64 {
    crate::opus::packet_samples(packet).map_or(0, u64::from)
}

/// WebM/Matroska Opus, read by our bounded reader: the pre-skip is dropped, and each block's
/// DiscardPadding trims its end.
fn webm_opus(
    path: &Path,
    file: File,
    size: u64,
    out: &mut Output<'_, '_>,
) -> Result<String, ProcessError> {
    let mut file = file;
    file.rewind()?;
    let scan = guard::guarded(path, "WebM reader", || {
        webm::scan(BufReader::new(file), size, true)
    })
    .ok_or_else(|| damaged("damaged WebM/Matroska file", 0.0))??;
    match scan.codec_id.as_deref() {
        Some("A_OPUS") => {}
        None if scan.cut_short || scan.stopped.is_some() => {
            return Err(cut_short(Format::Webm, 0.0));
        }
        None => return Err(damaged("WebM/Matroska with no audio track", 0.0)),
        Some(id) => {
            return Err(damaged(
                format!("WebM/Matroska with codec {id} (only Opus is accepted)"),
                0.0,
            ));
        }
    }
    let head = scan
        .head
        .ok_or_else(|| damaged("WebM Opus with an invalid OpusHead", 0.0))?;
    let mut decoder = OpusDecoder::new(head.channels, 0.0)?;
    out.skip = u64::from(head.pre_skip);
    let mut block_audio: Vec<f32> = Vec::new();
    for block in scan.blocks.unwrap_or_default() {
        let packets = block.packets.ok_or_else(|| {
            damaged(
                "damaged WebM: a block whose frames cannot be split",
                out.seconds(),
            )
        })?;
        block_audio.clear();
        for packet in &packets {
            let frames = decoder.decode(path, packet, out.seconds())?;
            block_audio.extend_from_slice(decoder.decoded(frames));
        }
        let discard = (block.discard_ns.max(0) as f64 * f64::from(OPUS_RATE) / 1e9).round();
        let keep = block_audio
            .len()
            .saturating_sub(discard as usize * usize::from(decoder.channels));
        out.push(&block_audio[..keep], decoder.channels, OPUS_RATE)?;
    }
    if scan.cut_short || scan.stopped == Some(io::ErrorKind::UnexpectedEof) {
        return Err(cut_short(Format::Webm, out.seconds()));
    }
    if scan.stopped.is_some() {
        return Err(damaged(
            "damaged WebM: unrecognised data where the next element should be",
            out.seconds(),
        ));
    }
    Ok("opus".into())
}
