//! Opus without an Opus decoder: the identification header (RFC 7845 §5.1) and packet framing
//! (RFC 6716 §3). symphonia cannot decode Opus, but a packet's TOC byte and framing fully
//! determine how many samples it holds and whether it is well formed.

/// The parts of an `OpusHead` we report or need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpusHead {
    pub channels: u16,
    /// Samples at 48 kHz to drop from the start of the decoded stream.
    pub pre_skip: u16,
}

/// Opus always decodes at this rate, whatever OpusHead says the input rate was.
pub(crate) const OPUS_RATE: u32 = 48_000;

/// Parses an `OpusHead` packet (also the Matroska/MP4 codec private data); `None` if invalid.
pub(crate) fn parse_head(b: &[u8]) -> Option<OpusHead> {
    let rest = b.strip_prefix(b"OpusHead")?;
    let &[version, channels, p0, p1, _, _, _, _, _, _, family, ..] = rest else {
        return None;
    };
    // Major version 0 only; minor versions are compatible by design.
    if version >> 4 != 0 || channels == 0 {
        return None;
    }
    let ok = match family {
        0 => channels <= 2,
        1 | 255 => {
            // Stream count, coupled count, then one mapping byte per channel.
            let table = rest.get(11..)?;
            let (&streams, &coupled) = (table.first()?, table.get(1)?);
            (family == 255 || channels <= 8)
                && streams > 0
                && coupled <= streams
                && table.len() >= 2 + usize::from(channels)
        }
        _ => false,
    };
    ok.then_some(OpusHead {
        channels: channels.into(),
        pre_skip: u16::from_le_bytes([p0, p1]),
    })
}

/// Why a packet is not valid Opus framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketError {
    Empty,
    BadFrameLengths,
    BadFrameCount,
}

const MAX_FRAME_BYTES: usize = 1275;
/// 120 ms at 48 kHz: the longest a packet may be.
const MAX_PACKET_SAMPLES: u32 = 5760;

/// Samples per frame (at 48 kHz) for a TOC byte's configuration number (RFC 6716 table 2).
pub(crate) fn frame_samples(toc: u8) -> u32 {
    let config = toc >> 3;
    match config {
        // SILK-only: 10, 20, 40, 60 ms.
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        // Hybrid: 10, 20 ms.
        12..=15 => [480, 960][usize::from(config % 2)],
        // CELT-only: 2.5, 5, 10, 20 ms.
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// Reads a frame length coded in one or two bytes (RFC 6716 §3.2.1); returns (length, bytes used).
fn frame_len(b: &[u8]) -> Option<(usize, usize)> {
    match *b {
        [first, ..] if first < 252 => Some((first.into(), 1)),
        [first, second, ..] => Some((usize::from(second) * 4 + usize::from(first), 2)),
        _ => None,
    }
}

/// Checks a packet against RFC 6716 §3.4 (rules R1–R7) and returns its sample count at 48 kHz.
pub(crate) fn packet_samples(packet: &[u8]) -> Result<u32, PacketError> {
    use PacketError::*;
    let (&toc, body) = packet.split_first().ok_or(Empty)?;
    let per_frame = frame_samples(toc);
    let frames: u32 = match toc & 3 {
        // One frame.
        0 => {
            if body.len() > MAX_FRAME_BYTES {
                return Err(BadFrameLengths);
            }
            1
        }
        // Two frames of equal size.
        1 => {
            if body.len() % 2 != 0 || body.len() / 2 > MAX_FRAME_BYTES {
                return Err(BadFrameLengths);
            }
            2
        }
        // Two frames, the first one's length given.
        2 => {
            let (first, used) = frame_len(body).ok_or(BadFrameLengths)?;
            let rest = body.len() - used;
            if first > rest || first > MAX_FRAME_BYTES || rest - first > MAX_FRAME_BYTES {
                return Err(BadFrameLengths);
            }
            2
        }
        // Any number of frames, with optional padding.
        _ => code3_frames(body)?,
    };
    let samples = per_frame * frames;
    if samples > MAX_PACKET_SAMPLES {
        return Err(BadFrameCount);
    }
    Ok(samples)
}

/// Validates a code-3 packet body (after the TOC byte) and returns its frame count.
fn code3_frames(body: &[u8]) -> Result<u32, PacketError> {
    use PacketError::*;
    let (&count_byte, mut rest) = body.split_first().ok_or(BadFrameCount)?;
    let frames = usize::from(count_byte & 0x3F);
    if frames == 0 || frames > 48 {
        return Err(BadFrameCount);
    }
    let vbr = count_byte & 0x80 != 0;
    if count_byte & 0x40 != 0 {
        // Padding length: each 255 means 254 bytes and another length byte follows.
        let mut padding = 0usize;
        loop {
            let (&p, tail) = rest.split_first().ok_or(BadFrameLengths)?;
            rest = tail;
            padding += if p == 255 { 254 } else { usize::from(p) };
            if p != 255 {
                break;
            }
        }
        rest = rest
            .get(..rest.len().checked_sub(padding).ok_or(BadFrameLengths)?)
            .unwrap_or_default();
    }
    if vbr {
        // All but the last frame carry their length; the last gets what remains.
        let mut declared = 0usize;
        for _ in 1..frames {
            let (len, used) = frame_len(rest).ok_or(BadFrameLengths)?;
            rest = rest.get(used..).unwrap_or_default();
            if len > MAX_FRAME_BYTES {
                return Err(BadFrameLengths);
            }
            declared += len;
        }
        let last = rest.len().checked_sub(declared).ok_or(BadFrameLengths)?;
        if last > MAX_FRAME_BYTES {
            return Err(BadFrameLengths);
        }
    } else if rest.len() % frames != 0 || rest.len() / frames > MAX_FRAME_BYTES {
        return Err(BadFrameLengths);
    }
    u32::try_from(frames).map_err(|_| BadFrameCount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(channels: u8, family: u8) -> Vec<u8> {
        let mut h = b"OpusHead".to_vec();
        h.extend_from_slice(&[1, channels, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, family]);
        h
    }

    #[test]
    fn parses_opus_head() {
        let h = parse_head(&head(1, 0)).expect("valid");
        assert_eq!(
            h,
            OpusHead {
                channels: 1,
                pre_skip: 312
            }
        );
        assert!(
            parse_head(&head(3, 0)).is_none(),
            "family 0 allows at most 2 channels"
        );
        assert!(parse_head(&head(0, 0)).is_none());
        assert!(
            parse_head(&head(2, 1)).is_none(),
            "family 1 needs a mapping table"
        );
        let mut surround = head(6, 1);
        surround.extend_from_slice(&[4, 2, 0, 4, 1, 2, 3, 5]);
        assert_eq!(parse_head(&surround).map(|h| h.channels), Some(6));
        assert!(parse_head(b"OpusHead").is_none());
        assert!(parse_head(b"OpusTags12345678901234").is_none());
    }

    #[test]
    fn frame_durations_follow_the_toc_table() {
        // (config, samples) pairs from RFC 6716 table 2.
        for (config, samples) in [(0, 480), (1, 960), (2, 1920), (3, 2880), (11, 2880)] {
            assert_eq!(frame_samples(config << 3), samples, "silk config {config}");
        }
        for (config, samples) in [(12, 480), (13, 960), (15, 960)] {
            assert_eq!(
                frame_samples(config << 3),
                samples,
                "hybrid config {config}"
            );
        }
        for (config, samples) in [(16, 120), (17, 240), (18, 480), (19, 960), (31, 960)] {
            assert_eq!(frame_samples(config << 3), samples, "celt config {config}");
        }
    }

    #[test]
    fn counts_samples_per_packet() {
        let celt20 = 19 << 3;
        assert_eq!(packet_samples(&[celt20, 1, 2, 3]), Ok(960)); // code 0
        assert_eq!(packet_samples(&[celt20]), Ok(960)); // DTX: an empty frame is valid
        assert_eq!(packet_samples(&[celt20 | 1, 1, 2]), Ok(1920)); // code 1
        assert_eq!(packet_samples(&[celt20 | 2, 1, 9, 8, 7]), Ok(1920)); // code 2
        // Code 3, CBR, 3 frames of 2 bytes, 20 ms each: 60 ms.
        assert_eq!(packet_samples(&[celt20 | 3, 3, 1, 1, 2, 2, 3, 3]), Ok(2880));
        // Code 3, VBR with padding: 2 frames, padding 2, first frame 1 byte.
        assert_eq!(
            packet_samples(&[celt20 | 3, 0xC2, 2, 1, 9, 8, 8, 0, 0]),
            Ok(1920)
        );
        // SILK 60 ms, 2 frames: 120 ms is the maximum.
        assert_eq!(packet_samples(&[(3 << 3) | 1, 0, 0]), Ok(5760));
    }

    #[test]
    fn rejects_malformed_packets() {
        use PacketError::*;
        let celt20 = 19 << 3;
        assert_eq!(packet_samples(&[]), Err(Empty));
        assert_eq!(packet_samples(&[celt20 | 1, 1, 2, 3]), Err(BadFrameLengths)); // odd
        assert_eq!(packet_samples(&[celt20 | 2, 9, 1]), Err(BadFrameLengths)); // too long
        assert_eq!(packet_samples(&[celt20 | 3]), Err(BadFrameCount)); // no count byte
        assert_eq!(packet_samples(&[celt20 | 3, 0]), Err(BadFrameCount)); // zero frames
        assert_eq!(packet_samples(&[celt20 | 3, 7]), Err(BadFrameCount)); // 140 ms
        assert_eq!(
            packet_samples(&[celt20 | 3, 2, 1, 2, 3]),
            Err(BadFrameLengths)
        ); // 3 % 2
        assert_eq!(
            packet_samples(&[celt20 | 3, 0x42, 255]),
            Err(BadFrameLengths)
        ); // padding
        let big = vec![celt20; 1300];
        assert_eq!(packet_samples(&big), Err(BadFrameLengths));
    }
}
