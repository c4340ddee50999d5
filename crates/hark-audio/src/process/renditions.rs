//! The transcode step: the audio downmixed to mono and resampled to 48 kHz once, then encoded in
//! the same pass to Ogg Opus at 24 kbps (libopus) and MP3 at 64 kbps (LAME, with a LAME tag so
//! players know the exact length). The MP3 keeps the input's rate when MPEG audio has it, as
//! ffmpeg would: a 16 kHz memo is not upsampled only to be encoded at three times the cost. Each encoder runs on a thread of its own, fed through a
//! bounded channel, so that one long file keeps three cores busy (decode, Opus, MP3).

use super::ogg_writer::OggOpusWriter;
use super::resample::{OUT_RATE, Resample, downmix};
use super::{Pcm, PcmSink};
use mp3lame_encoder::{Bitrate, FlushGap, MonoPcm};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

/// One rendition written to disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    /// "opus" or "mp3", as in the note's `renditions`.
    pub name: &'static str,
    pub mime: &'static str,
    pub path: PathBuf,
    pub size_bytes: u64,
    /// The length a player presents (encoder delay and padding excluded).
    pub duration_seconds: f64,
}

/// Opus bitrate, bits per second.
const OPUS_BITRATE: i32 = 24_000;
/// 20 ms at 48 kHz.
const OPUS_FRAME: usize = 960;
/// Larger than any 20 ms packet at 24 kbps can be.
const OPUS_MAX_PACKET: usize = 4000;
/// The Ogg stream serial of the Opus rendition: fixed, so the same input gives the same bytes.
const OGG_SERIAL: u32 = 0x4861_726B;

/// Writes `opus.ogg` and `mp3.mp3` into a directory while the decode runs.
pub struct RenditionSink {
    dir: PathBuf,
    /// Made at the first block, when the input rate is known.
    started: Option<Started>,
    renditions: Vec<Rendition>,
}

struct Started {
    /// The block being taken, downmixed to mono at the input's rate.
    mono: Vec<f32>,
    to_48k: Resample,
    /// 48 kHz audio not yet sent to the Opus encoder (and to the MP3 one, unless it has its own).
    at_48k: Vec<f32>,
    /// Input-rate audio not yet sent to the MP3 encoder, when it takes the input's rate.
    mp3_input: Option<Vec<f32>>,
    opus: Background,
    mp3: Background,
}

/// Samples sent to the encoders at a time: about 100 ms, few enough sends to cost nothing.
const BATCH: usize = 4800;

/// The sample rates MPEG audio (1, 2 and 2.5) encodes.
const MPEG_RATES: [u32; 9] = [
    8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
];

impl Started {
    /// Sends what has gathered to the encoders: full batches, or everything at the end.
    fn send(&mut self, all: bool) -> io::Result<()> {
        let due = |batch: &Vec<f32>| batch.len() >= BATCH || (all && !batch.is_empty());
        if due(&self.at_48k) {
            let block: Arc<[f32]> = Arc::from(&self.at_48k[..]);
            self.at_48k.clear();
            if self.mp3_input.is_none() {
                self.mp3.send(Arc::clone(&block))?;
            }
            self.opus.send(block)?;
        }
        if let Some(batch) = self.mp3_input.as_mut().filter(|batch| due(batch)) {
            let block: Arc<[f32]> = Arc::from(&batch[..]);
            batch.clear();
            self.mp3.send(block)?;
        }
        Ok(())
    }
}

/// What an encoder on its own thread does with the audio.
trait Encode: Send + 'static {
    fn push(&mut self, mono: &[f32]) -> io::Result<()>;
    fn finish(self) -> io::Result<Rendition>;
}

/// An encoder on its own thread.
struct Background {
    blocks: Option<SyncSender<Arc<[f32]>>>,
    done: Option<JoinHandle<io::Result<Rendition>>>,
}

impl Background {
    fn spawn(name: &str, mut encoder: impl Encode) -> io::Result<Self> {
        let (blocks, received) = sync_channel::<Arc<[f32]>>(32);
        let done = std::thread::Builder::new()
            .name(format!("hark-{name}"))
            .spawn(move || {
                for block in received {
                    encoder.push(&block)?;
                }
                encoder.finish()
            })?;
        Ok(Background {
            blocks: Some(blocks),
            done: Some(done),
        })
    }

    fn send(&mut self, block: Arc<[f32]>) -> io::Result<()> {
        let sent = self.blocks.as_ref().map(|b| b.send(block));
        match sent {
            Some(Ok(())) => Ok(()),
            // The encoder stopped: its error says why.
            _ => self.wait().map(|_| ()),
        }
    }

    /// Ends the input and waits for the encoder's rendition (or its error).
    fn wait(&mut self) -> io::Result<Rendition> {
        self.blocks = None;
        let done = self
            .done
            .take()
            .ok_or_else(|| io::Error::other("the encoder has already stopped"))?;
        done.join()
            .map_err(|_| io::Error::other("an encoder thread panicked"))?
    }
}

impl std::fmt::Debug for RenditionSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenditionSink")
            .field("dir", &self.dir)
            .field("renditions", &self.renditions)
            .finish_non_exhaustive()
    }
}

impl RenditionSink {
    /// Renditions go to `dir/opus.ogg` and `dir/mp3.mp3`; the directory must exist.
    pub fn new(dir: &Path) -> io::Result<Self> {
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory {}", dir.display()),
            ));
        }
        Ok(RenditionSink {
            dir: dir.to_path_buf(),
            started: None,
            renditions: Vec::new(),
        })
    }

    /// The renditions written (after `finish`): Opus, then MP3.
    pub fn renditions(&self) -> Vec<Rendition> {
        self.renditions.clone()
    }

    fn start(&self, rate: u32) -> io::Result<Started> {
        let mp3_rate = if MPEG_RATES.contains(&rate) {
            rate
        } else {
            OUT_RATE
        };
        Ok(Started {
            mono: Vec::new(),
            to_48k: Resample::new(rate, OUT_RATE)?,
            at_48k: Vec::with_capacity(BATCH * 2),
            mp3_input: (mp3_rate != OUT_RATE).then(|| Vec::with_capacity(BATCH * 2)),
            opus: Background::spawn("opus", OpusOut::new(&self.dir.join("opus.ogg"), rate)?)?,
            mp3: Background::spawn("mp3", Mp3Out::new(&self.dir.join("mp3.mp3"), mp3_rate)?)?,
        })
    }
}

impl PcmSink for RenditionSink {
    fn accept(&mut self, pcm: Pcm<'_>) -> io::Result<()> {
        let started = match &mut self.started {
            Some(started) => started,
            None => {
                let started = self.start(pcm.sample_rate)?;
                self.started.insert(started)
            }
        };
        let Started {
            mono,
            to_48k,
            at_48k,
            mp3_input,
            ..
        } = started;
        mono.clear();
        downmix(pcm, mono);
        if let Some(batch) = mp3_input {
            batch.extend_from_slice(mono);
        }
        to_48k.push(mono, &mut |resampled| {
            at_48k.extend_from_slice(resampled);
            Ok(())
        })?;
        started.send(false)
    }

    fn finish(&mut self) -> io::Result<()> {
        let Some(mut started) = self.started.take() else {
            return Ok(());
        };
        let Started { to_48k, at_48k, .. } = &mut started;
        to_48k.finish(&mut |resampled| {
            at_48k.extend_from_slice(resampled);
            Ok(())
        })?;
        started.send(true)?;
        let opus = started.opus.wait();
        let mp3 = started.mp3.wait();
        self.renditions = vec![opus?, mp3?];
        Ok(())
    }
}

fn codec_error(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// The Opus encoder and its Ogg stream.
struct OpusOut {
    path: PathBuf,
    encoder: opus::Encoder,
    ogg: OggOpusWriter<BufWriter<File>>,
    pre_skip: u64,
    /// Input not yet a whole frame.
    frame: Vec<f32>,
    packet: Vec<u8>,
    /// Real samples given (excluding the padding added at the end).
    samples: u64,
    /// Samples encoded so far, padding included.
    encoded: u64,
}

impl OpusOut {
    fn new(path: &Path, input_rate: u32) -> io::Result<Self> {
        let opus_error = |e: opus::Error| codec_error("libopus", e);
        let mut encoder =
            opus::Encoder::new(OUT_RATE, opus::Channels::Mono, opus::Application::Audio)
                .map_err(opus_error)?;
        encoder
            .set_bitrate(opus::Bitrate::Bits(OPUS_BITRATE))
            .map_err(opus_error)?;
        let lookahead = encoder.get_lookahead().map_err(opus_error)?;
        let pre_skip = u16::try_from(lookahead).map_err(|e| codec_error("libopus", e))?;
        let file = BufWriter::new(File::create(path)?);
        Ok(OpusOut {
            path: path.to_path_buf(),
            encoder,
            ogg: OggOpusWriter::new(file, OGG_SERIAL, pre_skip, input_rate)?,
            pre_skip: u64::from(pre_skip),
            frame: Vec::with_capacity(OPUS_FRAME),
            packet: vec![0; OPUS_MAX_PACKET],
            samples: 0,
            encoded: 0,
        })
    }

    fn encode_frame(&mut self) -> io::Result<()> {
        let len = self
            .encoder
            .encode_float(&self.frame, &mut self.packet)
            .map_err(|e| codec_error("libopus", e))?;
        self.frame.clear();
        self.encoded += OPUS_FRAME as u64;
        self.ogg.packet(self.packet[..len].to_vec(), self.encoded)
    }
}

impl Encode for OpusOut {
    fn push(&mut self, mut mono: &[f32]) -> io::Result<()> {
        self.samples += mono.len() as u64;
        while !mono.is_empty() {
            let take = (OPUS_FRAME - self.frame.len()).min(mono.len());
            self.frame.extend_from_slice(&mono[..take]);
            mono = &mono[take..];
            if self.frame.len() == OPUS_FRAME {
                self.encode_frame()?;
            }
        }
        Ok(())
    }

    /// Encodes silence until the encoder's delayed output covers every real sample, then ends
    /// the stream at exactly pre-skip plus the real length.
    fn finish(mut self) -> io::Result<Rendition> {
        let needed = self.samples + self.pre_skip;
        while self.encoded < needed || !self.frame.is_empty() {
            self.frame.resize(OPUS_FRAME, 0.0);
            self.encode_frame()?;
        }
        let mut file = self.ogg.finish(needed)?;
        file.flush()?;
        rendition(
            "opus",
            "audio/ogg",
            self.path,
            self.samples as f64 / f64::from(OUT_RATE),
        )
    }
}

/// An Ogg Opus file made from mono 48 kHz audio with the Opus rendition's settings, for audio
/// made outside the pass (a corrected rendition).
pub struct OpusFile(OpusOut);

impl OpusFile {
    /// The rate `push` takes.
    pub const SAMPLE_RATE: u32 = OUT_RATE;

    /// Writes to `path`; `input_rate` is the rate the header records as the source's.
    pub fn create(path: &Path, input_rate: u32) -> io::Result<Self> {
        OpusOut::new(path, input_rate).map(OpusFile)
    }

    pub fn push(&mut self, mono: &[f32]) -> io::Result<()> {
        self.0.push(mono)
    }

    /// Ends the stream; the file as a rendition named "opus".
    pub fn finish(self) -> io::Result<Rendition> {
        self.0.finish()
    }
}

/// The LAME encoder and its file.
struct Mp3Out {
    path: PathBuf,
    encoder: mp3lame_encoder::Encoder,
    file: BufWriter<File>,
    buf: Vec<u8>,
    rate: u32,
    samples: u64,
}

impl Mp3Out {
    /// An encoder for mono audio at `rate`, one of [`MPEG_RATES`].
    fn new(path: &Path, rate: u32) -> io::Result<Self> {
        let lame_error = |e: mp3lame_encoder::BuildError| codec_error("LAME", e);
        let mut builder = mp3lame_encoder::Builder::new()
            .ok_or_else(|| io::Error::other("LAME: out of memory"))?;
        builder.set_num_channels(1).map_err(lame_error)?;
        builder.set_sample_rate(rate).map_err(lame_error)?;
        // The same rate out as in, as ffmpeg asks of LAME: no resampling inside it.
        builder
            .set_output_sample_rate(std::num::NonZeroU32::new(rate))
            .map_err(lame_error)?;
        builder
            .set_mode(mp3lame_encoder::Mode::Mono)
            .map_err(lame_error)?;
        builder.set_brate(Bitrate::Kbps64).map_err(lame_error)?;
        builder.set_to_write_vbr_tag(true).map_err(lame_error)?;
        let encoder = builder.build().map_err(lame_error)?;
        Ok(Mp3Out {
            path: path.to_path_buf(),
            encoder,
            file: BufWriter::new(File::create(path)?),
            buf: Vec::new(),
            rate,
            samples: 0,
        })
    }
}

impl Encode for Mp3Out {
    fn push(&mut self, mono: &[f32]) -> io::Result<()> {
        self.samples += mono.len() as u64;
        self.buf.clear();
        self.buf
            .reserve(mp3lame_encoder::max_required_buffer_size(mono.len()));
        self.encoder
            .encode_to_vec(MonoPcm(mono), &mut self.buf)
            .map_err(|e| codec_error("LAME", e))?;
        self.file.write_all(&self.buf)
    }

    /// Flushes the last frames, then puts the LAME tag (frame count, delay and padding) in the
    /// place LAME left for it at the start.
    fn finish(mut self) -> io::Result<Rendition> {
        self.buf.clear();
        self.buf.reserve(7200);
        self.encoder
            .flush_to_vec::<FlushGap>(&mut self.buf)
            .map_err(|e| codec_error("LAME", e))?;
        self.file.write_all(&self.buf)?;
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        self.buf.clear();
        self.buf.reserve(self.encoder.lame_tag_size());
        if self.encoder.lame_tag_encode_to_vec(&mut self.buf).is_some() {
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&self.buf)?;
        }
        rendition(
            "mp3",
            "audio/mpeg",
            self.path,
            self.samples as f64 / f64::from(self.rate),
        )
    }
}

fn rendition(
    name: &'static str,
    mime: &'static str,
    path: PathBuf,
    duration_seconds: f64,
) -> io::Result<Rendition> {
    let size_bytes = std::fs::metadata(&path)?.len();
    Ok(Rendition {
        name,
        mime,
        path,
        size_bytes,
        duration_seconds,
    })
}
