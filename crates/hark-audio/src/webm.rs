//! A bounded WebM/Matroska reader for Opus audio.
//!
//! symphonia 0.5's Matroska reader trusts element sizes: a damaged file made it allocate 28 GB
//! (which aborts the whole process, beyond `catch_unwind`) and it panics on many truncations. It
//! also ignores CodecDelay and DiscardPadding, which the exact length needs. This reader checks
//! every size against its parent and the file, and reads only what an Opus track needs.

use crate::lacing::split_lacing;
use crate::opus::{self, OPUS_RATE, OpusHead};
use std::io::{self, BufRead, Read};

// Element IDs (with their length markers, as written).
const EBML: u32 = 0x1A45_DFA3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CLUSTER: u32 = 0x1F43_B675;
const TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const DISCARD_PADDING: u32 = 0x75A2;

/// Leaf elements we read into memory are never larger than this (blocks, codec private data).
const MAX_LEAF: u64 = 16 << 20;

/// What a walk over the file found.
#[derive(Debug, Default)]
pub(crate) struct WebmScan {
    pub doc_type: String,
    /// CodecID of the first audio track, e.g. "A_OPUS".
    pub codec_id: Option<String>,
    pub head: Option<OpusHead>,
    /// Packets in the first second that are (not) valid Opus.
    pub good: usize,
    pub bad: usize,
    /// Every block of the Opus track, in file order, when asked for (decoding needs them all).
    pub blocks: Option<Vec<OpusBlock>>,
    /// Why the walk ended before the end of the data, if it did: damage or truncation.
    pub stopped: Option<io::ErrorKind>,
    /// Whether an element claimed to extend past the end of the file: a cut-off upload.
    pub cut_short: bool,
    checked_samples: u64,
    /// Audio span in nanoseconds: earliest block start, latest block end (less discard padding).
    start_ns: Option<f64>,
    end_ns: f64,
    scale: u64,
    track: Option<u64>,
    cluster_ts: u64,
}

/// One block of the Opus track.
#[derive(Debug)]
pub(crate) struct OpusBlock {
    /// Its Opus packets; `None` if its lacing is malformed.
    pub packets: Option<Vec<Vec<u8>>>,
    /// Nanoseconds of audio to drop from the end of the block (DiscardPadding).
    pub discard_ns: i64,
}

impl WebmScan {
    /// Decoded length in seconds: the blocks' span less the Opus pre-skip.
    pub(crate) fn duration(&self) -> f64 {
        let span = (self.end_ns - self.start_ns.unwrap_or(self.end_ns)) / 1e9;
        span - self
            .head
            .map_or(0.0, |h| f64::from(h.pre_skip) / f64::from(OPUS_RATE))
    }
}

/// A reader that knows its position and refuses to go past the data.
pub(crate) struct Src<R> {
    pub(crate) r: R,
    pub(crate) pos: u64,
    pub(crate) len: u64,
    /// Set when an element's declared size runs past `len`.
    pub(crate) past_end: bool,
}

impl<R: BufRead> Src<R> {
    fn byte(&mut self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.r.read_exact(&mut b)?;
        self.pos += 1;
        Ok(b[0])
    }

    /// An element ID (1–4 bytes, marker kept) or size (1–8 bytes, marker dropped; `None` for
    /// "unknown").
    pub(crate) fn vint(&mut self, is_id: bool) -> io::Result<(u64, Option<u64>)> {
        let first = self.byte()?;
        let len = first.leading_zeros() + 1;
        if len > if is_id { 4 } else { 8 } {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let mut value = if is_id {
            u64::from(first)
        } else {
            u64::from(first) & (0xFF >> len)
        };
        let mut all_ones = value == (0xFF >> len);
        for _ in 1..len {
            let b = self.byte()?;
            all_ones &= b == 0xFF;
            value = (value << 8) | u64::from(b);
        }
        Ok((value, (is_id || !all_ones).then_some(value)))
    }

    /// The next element header within `end`: (id, data end). Unknown sizes and sizes past the
    /// file end at `end` (truncated files), but a size past `end` inside the file is damage.
    fn header(&mut self, end: u64) -> io::Result<Option<(u32, u64)>> {
        if self.pos >= end {
            return Ok(None);
        }
        let (id, _) = self.vint(true)?;
        let (_, size) = self.vint(false)?;
        let data_end = size.map_or(end, |s| self.pos.saturating_add(s));
        self.past_end |= data_end > self.len;
        if data_end > end && data_end <= self.len {
            return Err(io::ErrorKind::InvalidData.into());
        }
        Ok(Some((u32::try_from(id).unwrap_or(0), data_end.min(end))))
    }

    fn skip_to(&mut self, to: u64) -> io::Result<()> {
        let n = to.saturating_sub(self.pos);
        let copied = io::copy(&mut self.r.by_ref().take(n), &mut io::sink())?;
        self.pos += copied;
        if copied < n {
            Err(io::ErrorKind::UnexpectedEof.into())
        } else {
            Ok(())
        }
    }

    fn bytes(&mut self, to: u64) -> io::Result<Vec<u8>> {
        let n = to.saturating_sub(self.pos);
        if n > MAX_LEAF {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf)?;
        self.pos = to;
        Ok(buf)
    }

    fn uint(&mut self, to: u64) -> io::Result<u64> {
        let b = self.bytes(to)?;
        Ok(b.iter()
            .take(8)
            .fold(0, |acc, &x| (acc << 8) | u64::from(x)))
    }
}

/// Walks the whole file. Errors other than OS errors (damage, truncation) just end the walk:
/// what was read so far stands, and `stopped` says why it ended. With `keep_blocks` every block
/// of the Opus track is kept in `blocks`.
pub(crate) fn scan<R: BufRead>(r: R, len: u64, keep_blocks: bool) -> io::Result<WebmScan> {
    let mut src = Src {
        r,
        pos: 0,
        len,
        past_end: false,
    };
    let mut scan = WebmScan {
        scale: 1_000_000,
        blocks: keep_blocks.then(Vec::new),
        ..WebmScan::default()
    };
    let walked = walk(&mut src, &mut scan);
    scan.cut_short = src.past_end;
    match walked {
        Err(e) if e.raw_os_error().is_some() => Err(e),
        Err(e) => {
            scan.stopped = Some(e.kind());
            Ok(scan)
        }
        Ok(()) => Ok(scan),
    }
}

fn walk<R: BufRead>(src: &mut Src<R>, scan: &mut WebmScan) -> io::Result<()> {
    let len = src.len;
    let Some((EBML, ebml_end)) = src.header(len)? else {
        return Ok(());
    };
    while let Some((id, end)) = src.header(ebml_end)? {
        if id == DOC_TYPE {
            scan.doc_type = String::from_utf8_lossy(&src.bytes(end)?)
                .trim_end_matches('\0')
                .into();
        } else {
            src.skip_to(end)?;
        }
    }
    while let Some((id, end)) = src.header(len)? {
        if id == SEGMENT {
            return segment(src, scan, end);
        }
        src.skip_to(end)?;
    }
    Ok(())
}

/// The Segment's children. Clusters of unknown size (live streams, MediaRecorder) simply run
/// until the next top-level element, so their children are handled at this level too.
fn segment<R: BufRead>(src: &mut Src<R>, scan: &mut WebmScan, seg_end: u64) -> io::Result<()> {
    while let Some((id, end)) = src.header(seg_end)? {
        match id {
            INFO | TRACKS | TRACK_ENTRY | BLOCK_GROUP => {
                let mut block = None;
                let mut discard_ns = 0i64;
                while let Some((child, child_end)) = src.header(end)? {
                    match child {
                        TIMESTAMP_SCALE => scan.scale = src.uint(child_end)?.max(1),
                        TRACK_ENTRY => track_entry(src, scan, child_end)?,
                        BLOCK => block = Some(src.bytes(child_end)?),
                        DISCARD_PADDING => discard_ns = signed(&src.bytes(child_end)?),
                        _ => src.skip_to(child_end)?,
                    }
                }
                if let Some(block) = block {
                    on_block(scan, &block, discard_ns);
                }
            }
            // Enter the cluster: its children follow at this level.
            CLUSTER => {}
            TIMESTAMP => scan.cluster_ts = src.uint(end)?,
            SIMPLE_BLOCK => {
                let block = src.bytes(end)?;
                on_block(scan, &block, 0);
            }
            _ => src.skip_to(end)?,
        }
    }
    Ok(())
}

fn track_entry<R: BufRead>(src: &mut Src<R>, scan: &mut WebmScan, end: u64) -> io::Result<()> {
    let (mut number, mut kind, mut codec, mut private) = (None, None, None, None);
    while let Some((id, child_end)) = src.header(end)? {
        match id {
            TRACK_NUMBER => number = Some(src.uint(child_end)?),
            TRACK_TYPE => kind = Some(src.uint(child_end)?),
            CODEC_ID => codec = Some(String::from_utf8_lossy(&src.bytes(child_end)?).into_owned()),
            CODEC_PRIVATE => private = Some(src.bytes(child_end)?),
            _ => src.skip_to(child_end)?,
        }
    }
    // The first audio track (type 2) is ours.
    if scan.codec_id.is_none() && kind == Some(2) {
        scan.track = number;
        scan.head = private.as_deref().and_then(opus::parse_head);
        scan.codec_id = Some(codec.unwrap_or_default().trim_end_matches('\0').to_owned());
    }
    Ok(())
}

/// A big-endian two's complement integer of up to 8 bytes.
fn signed(b: &[u8]) -> i64 {
    let unsigned = b
        .iter()
        .take(8)
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let bits = 8 * b.len().clamp(1, 8) as u32;
    ((unsigned << (64 - bits)) as i64) >> (64 - bits)
}

/// Accounts for one block: its Opus packets' validity (first second only) and its time span.
fn on_block(scan: &mut WebmScan, block: &[u8], discard_ns: i64) {
    let mut src = Src {
        r: block,
        pos: 0,
        len: block.len() as u64,
        past_end: false,
    };
    let Ok((_, Some(track))) = src.vint(false) else {
        return;
    };
    if Some(track) != scan.track || scan.codec_id.as_deref() != Some("A_OPUS") {
        return;
    }
    let rest = src.r;
    let (Some(ts), Some(&flags)) = (rest.get(..2), rest.get(2)) else {
        return;
    };
    let relative = i64::from(i16::from_be_bytes([ts[0], ts[1]]));
    let Some(frames) = split_lacing(flags, rest.get(3..).unwrap_or_default()) else {
        scan.bad += 1;
        if let Some(blocks) = &mut scan.blocks {
            blocks.push(OpusBlock {
                packets: None,
                discard_ns,
            });
        }
        return;
    };
    if let Some(blocks) = &mut scan.blocks {
        blocks.push(OpusBlock {
            packets: Some(frames.iter().map(|f| f.to_vec()).collect()),
            discard_ns,
        });
    }
    let mut samples = 0u64;
    for frame in frames {
        let checking = scan.checked_samples < u64::from(OPUS_RATE);
        match opus::packet_samples(frame) {
            Ok(n) => {
                samples += u64::from(n);
                if checking && n > 0 {
                    scan.good += 1;
                    scan.checked_samples += u64::from(n);
                }
            }
            Err(_) => scan.bad += usize::from(checking),
        }
    }
    let ticks = scan.cluster_ts as f64 + relative as f64;
    let start = ticks * scan.scale as f64;
    let end = start + samples as f64 * 1e9 / f64::from(OPUS_RATE) - discard_ns.max(0) as f64;
    scan.start_ns = Some(scan.start_ns.map_or(start, |s| s.min(start)));
    scan.end_ns = scan.end_ns.max(end);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element with an 8-byte size (or unknown size when `body` is `None`).
    fn el(id: &[u8], body: Option<&[u8]>) -> Vec<u8> {
        let mut out = id.to_vec();
        match body {
            Some(b) => {
                out.push(0x01);
                out.extend_from_slice(&(b.len() as u64).to_be_bytes()[1..]);
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
        }
        out
    }

    fn block(ts: i16, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0x81];
        b.extend_from_slice(&ts.to_be_bytes());
        b.push(0x80);
        b.extend_from_slice(payload);
        b
    }

    /// A browser-style file: unknown-size Segment and Cluster, no Duration.
    fn sample(discard_ns: Option<i64>) -> Vec<u8> {
        let head = b"OpusHead\x01\x01\x38\x01\x80\xBB\0\0\0\0\0";
        let entry = [
            el(&[0xD7], Some(&[1])),
            el(&[0x83], Some(&[2])),
            el(&[0x86], Some(b"A_OPUS")),
            el(&[0x63, 0xA2], Some(head)),
        ]
        .concat();
        let mut file = el(
            &[0x1A, 0x45, 0xDF, 0xA3],
            Some(&el(&[0x42, 0x82], Some(b"webm"))),
        );
        file.extend(el(&[0x18, 0x53, 0x80, 0x67], None));
        file.extend(el(
            &[0x15, 0x49, 0xA9, 0x66],
            Some(&el(&[0x2A, 0xD7, 0xB1], Some(&[0x0F, 0x42, 0x40]))),
        ));
        file.extend(el(
            &[0x16, 0x54, 0xAE, 0x6B],
            Some(&el(&[0xAE], Some(&entry))),
        ));
        file.extend(el(&[0x1F, 0x43, 0xB6, 0x75], None));
        file.extend(el(&[0xE7], Some(&[0])));
        for i in 0..49 {
            file.extend(el(&[0xA3], Some(&block(i * 20, &[0xF8, 1, 2]))));
        }
        let mut group = el(&[0xA1], Some(&block(980, &[0xF8, 1, 2])));
        if let Some(ns) = discard_ns {
            group.extend(el(&[0x75, 0xA2], Some(&ns.to_be_bytes())));
        }
        file.extend(el(&[0xA0], Some(&group)));
        file
    }

    #[test]
    fn measures_a_browser_style_file() {
        let file = sample(Some(10_000_000));
        let scan = scan(&file[..], file.len() as u64, false).expect("scan");
        assert_eq!(
            (scan.doc_type.as_str(), scan.codec_id.as_deref()),
            ("webm", Some("A_OPUS"))
        );
        assert_eq!(scan.head.map(|h| h.pre_skip), Some(312));
        assert_eq!((scan.good, scan.bad), (50, 0));
        // 50 × 20 ms, less 10 ms discard padding, less 6.5 ms pre-skip.
        assert!(
            (scan.duration() - (1.0 - 0.010 - 0.0065)).abs() < 1e-9,
            "{}",
            scan.duration()
        );
    }

    #[test]
    fn truncation_and_damage_end_the_walk_quietly() {
        let file = sample(None);
        for cut in [0, 3, 30, 100, 200, file.len() - 1] {
            let scan = scan(&file[..cut], cut as u64, false).expect("scan");
            assert!(scan.duration() <= 1.0 - 0.0065 + 1e-9);
        }
        // A block claiming an enormous size is clamped to the file, never allocated.
        let mut huge = sample(None);
        huge.extend_from_slice(&[0xA3, 0x01, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0x81]);
        let len = huge.len() as u64;
        assert!(scan(&huge[..], len, false).is_ok());
    }

    #[test]
    fn reads_signed_integers() {
        assert_eq!(signed(&[0xFF, 0x38]), -200);
        assert_eq!(signed(&[0x01, 0x00]), 256);
    }
}
