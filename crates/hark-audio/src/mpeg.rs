//! MPEG audio frame headers and ID3v2 tags, parsed by hand.
//!
//! symphonia's MP3 reader resynchronises on any sync word anywhere in the stream, so random bytes
//! can look like MP3 to it. We insist on a run of consecutive, mutually consistent frames at the
//! start of the data before we call something MP3.

/// The fields of one MPEG audio frame header that we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// 1 = MPEG-1, 2 = MPEG-2, 25 = MPEG-2.5.
    pub version: u8,
    /// 1, 2 or 3.
    pub layer: u8,
    pub sample_rate: u32,
    pub channels: u16,
    /// Length of the whole frame in bytes, header included.
    pub len: usize,
}

impl FrameHeader {
    /// Samples per channel that the frame decodes to.
    pub fn samples(&self) -> u64 {
        match (self.layer, self.version) {
            (1, _) => 384,
            (3, 2 | 25) => 576,
            _ => 1152,
        }
    }
}

const BITRATES_V1: [[u32; 14]; 3] = [
    [
        32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
    ],
    [
        32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
    ],
    [
        32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
];
const BITRATES_V2_L1: [u32; 14] = [
    32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
];
const BITRATES_V2_L23: [u32; 14] = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/// Parses a frame header at the start of `b`; `None` for anything invalid, including the
/// "free format" bitrate, which no encoder we care about produces.
pub(crate) fn parse_header(b: &[u8]) -> Option<FrameHeader> {
    let &[b0, b1, b2, b3, ..] = b else {
        return None;
    };
    if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
        return None;
    }
    let version = match (b1 >> 3) & 3 {
        0 => 25,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    let layer = match (b1 >> 1) & 3 {
        1 => 3,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    let bitrate_index = usize::from(b2 >> 4);
    if bitrate_index == 0 || bitrate_index == 15 || b3 & 3 == 2 {
        return None;
    }
    let kbps = match (version, layer) {
        (1, l) => BITRATES_V1[usize::from(l - 1)][bitrate_index - 1],
        (_, 1) => BITRATES_V2_L1[bitrate_index - 1],
        _ => BITRATES_V2_L23[bitrate_index - 1],
    };
    let base_rate = match (b2 >> 2) & 3 {
        0 => 44_100,
        1 => 48_000,
        2 => 32_000,
        _ => return None,
    };
    let sample_rate = match version {
        1 => base_rate,
        2 => base_rate / 2,
        _ => base_rate / 4,
    };
    let padding = usize::from((b2 >> 1) & 1);
    let bitrate = kbps as usize * 1000;
    let rate = sample_rate as usize;
    let len = match (layer, version) {
        (1, _) => (12 * bitrate / rate + padding) * 4,
        (3, 2 | 25) => 72 * bitrate / rate + padding,
        _ => 144 * bitrate / rate + padding,
    };
    let channels = if b3 >> 6 == 3 { 1 } else { 2 };
    Some(FrameHeader {
        version,
        layer,
        sample_rate,
        channels,
        len,
    })
}

/// Whether two headers could belong to the same stream.
fn similar(a: &FrameHeader, b: &FrameHeader) -> bool {
    a.version == b.version && a.layer == b.layer && a.sample_rate == b.sample_rate
}

/// A run of frames found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameRun {
    pub first: Option<FrameHeader>,
    /// Frames that lie wholly inside the buffer, each consistent with the first.
    pub complete: usize,
    /// The buffer ended inside a frame, rather than at something that is not a frame.
    pub ran_out: bool,
}

/// Walks consecutive frames from the start of `data`, stopping after `max` complete ones.
pub(crate) fn frame_run(data: &[u8], max: usize) -> FrameRun {
    let mut run = FrameRun {
        first: None,
        complete: 0,
        ran_out: false,
    };
    let mut pos = 0usize;
    while run.complete < max {
        let rest = data.get(pos..).unwrap_or_default();
        if rest.len() < 4 {
            run.ran_out = true;
            break;
        }
        let Some(header) = parse_header(rest) else {
            break;
        };
        if let Some(first) = &run.first
            && !similar(first, &header)
        {
            break;
        }
        run.first.get_or_insert(header);
        if rest.len() < header.len {
            run.ran_out = true;
            break;
        }
        run.complete += 1;
        pos += header.len;
    }
    run
}

/// Total length of an ID3v2 tag at the start of `head` (header, body and footer), if there is one.
pub(crate) fn id3v2_len(head: &[u8]) -> Option<u64> {
    let &[b'I', b'D', b'3', major, minor, flags, s0, s1, s2, s3, ..] = head else {
        return None;
    };
    if major == 0xFF || minor == 0xFF || [s0, s1, s2, s3].iter().any(|&b| b >= 0x80) {
        return None;
    }
    let size = (u64::from(s0) << 21) | (u64::from(s1) << 14) | (u64::from(s2) << 7) | u64::from(s3);
    let footer = if flags & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

/// Whether `head` starts with two consecutive ADTS (raw AAC) frames, or one that fills it.
pub(crate) fn is_adts(head: &[u8]) -> bool {
    fn frame_len(b: &[u8]) -> Option<usize> {
        let &[0xFF, b1, b2, b3, b4, b5, ..] = b else {
            return None;
        };
        if b1 & 0xF6 != 0xF0 || (b2 >> 2) & 0xF > 12 {
            return None;
        }
        let len = (usize::from(b3 & 3) << 11) | (usize::from(b4) << 3) | usize::from(b5 >> 5);
        (len >= 7).then_some(len)
    }
    match frame_len(head) {
        Some(len) if head.len() <= len => true,
        Some(len) => head.get(len..).and_then(frame_len).is_some(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MPEG-1 layer III, 128 kbit/s, 44.1 kHz, no padding, joint stereo: 417 bytes.
    const HDR: [u8; 4] = [0xFF, 0xFB, 0x90, 0x64];

    #[test]
    fn parses_a_common_header() {
        let h = parse_header(&HDR).expect("valid header");
        assert_eq!(
            (h.version, h.layer, h.sample_rate, h.channels, h.len),
            (1, 3, 44_100, 2, 417)
        );
        assert_eq!(h.samples(), 1152);
    }

    #[test]
    fn mpeg2_layer3_frames_are_half_size() {
        // MPEG-2 layer III, 64 kbit/s, 22.05 kHz, mono.
        let h = parse_header(&[0xFF, 0xF3, 0x80, 0xC4]).expect("valid header");
        assert_eq!(
            (h.version, h.sample_rate, h.channels, h.len),
            (2, 22_050, 1, 208)
        );
        assert_eq!(h.samples(), 576);
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(parse_header(&[0xFF, 0xFB, 0xF0, 0x64]).is_none()); // bitrate 15
        assert!(parse_header(&[0xFF, 0xFB, 0x0C, 0x64]).is_none()); // free format, bad rate
        assert!(parse_header(&[0xFF, 0xF9, 0x90, 0x64]).is_none()); // layer 0
        assert!(parse_header(&[0xFF, 0xFB]).is_none());
    }

    #[test]
    fn counts_runs() {
        let mut data = Vec::new();
        for _ in 0..3 {
            data.extend_from_slice(&HDR);
            data.resize(data.len() + 413, 0);
        }
        assert_eq!(frame_run(&data, 10).complete, 3);
        assert!(frame_run(&data, 10).ran_out);
        assert_eq!(frame_run(&data[..500], 10).complete, 1);
        data.truncate(417 * 2);
        data.extend_from_slice(b"junk");
        let run = frame_run(&data, 10);
        assert_eq!((run.complete, run.ran_out), (2, false));
    }

    #[test]
    fn id3_length() {
        let tag = [b'I', b'D', b'3', 4, 0, 0, 0, 0, 1, 0x7F];
        assert_eq!(id3v2_len(&tag), Some(10 + 255));
        assert_eq!(id3v2_len(b"ID3"), None);
    }
}
