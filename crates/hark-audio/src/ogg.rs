//! A minimal Ogg page walker (RFC 3533).
//!
//! We walk pages ourselves because symphonia has no Opus decoder and hides the granule positions
//! we need: an Ogg stream's length is its last granule position, and for Opus the first packets
//! must be checked by hand. Only headers are parsed past the first packets, so it stays cheap.

use std::io::{self, BufRead, Seek};

/// What the identification packet of a logical stream says it carries.
pub(crate) fn codec_of(first_packet: &[u8]) -> &'static str {
    const IDS: [(&[u8], &str); 11] = [
        (b"OpusHead", "opus"),
        (b"\x01vorbis", "vorbis"),
        (b"\x7fFLAC", "flac"),
        (b"fLaC", "flac"),
        (b"Speex   ", "speex"),
        (b"\x80theora", "theora"),
        (b"fishead\0", "skeleton"),
        (b"CELT    ", "celt"),
        (b"PCM     ", "pcm"),
        (b"\x80kate", "kate"),
        (b"BBCD\0", "dirac"),
    ];
    IDS.iter()
        .find(|(id, _)| first_packet.starts_with(id))
        .map_or("unknown", |(_, name)| name)
}

/// The logical stream we chose and what we learnt about it.
#[derive(Debug, Default)]
pub(crate) struct OggScan {
    /// Codec of the chosen stream (see [`codec_of`]); "unknown" if there were no streams.
    pub codec: &'static str,
    /// The chosen stream's packets, identification header first, up to the requested count.
    pub packets: Vec<Vec<u8>>,
    /// Highest granule position of a page of the chosen stream, if any page ended a packet.
    pub last_granule: Option<u64>,
    /// The pages of the chosen stream that end kept packets, in order, for as long as whole pages
    /// are kept.
    pub page_ends: Vec<PageEnd>,
}

/// A page that ends at least one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageEnd {
    /// Its granule position: for audio, the samples up to the end of its last packet.
    pub granule: u64,
    /// How many packets of the stream end on it or before it.
    pub packets: usize,
    /// Whether it is the last page of the stream.
    pub eos: bool,
}

impl OggScan {
    /// The granule position at which the audio starts, given how many header packets precede it
    /// and how to count a packet's samples (RFC 7845 §4.3; the Vorbis I spec, appendix A.2,
    /// agrees).
    ///
    /// A stream need not start at zero: one cut from a live stream carries on counting. The start
    /// is the granule position of the first page that ends an audio packet, less the samples of
    /// the packets that end on it. It is 0 when that page also ends the stream (a shortfall there
    /// is end trimming, not a start), and when the page claims fewer samples than it holds (an
    /// invalid stream, taken to start at zero as ffmpeg does).
    pub fn start_granule(&self, headers: usize, samples: impl Fn(&[u8]) -> u64) -> u64 {
        let mut before = 0;
        for end in &self.page_ends {
            if end.packets > headers {
                if end.eos {
                    return 0;
                }
                let on_page = self.packets.get(before.max(headers)..end.packets);
                let held: u64 = on_page.unwrap_or_default().iter().map(|p| samples(p)).sum();
                return end.granule.saturating_sub(held);
            }
            before = end.packets;
        }
        0
    }
}

/// Parsed fixed part of a page header.
struct PageHeader {
    granule: u64,
    serial: u32,
    is_bos: bool,
    is_eos: bool,
    lacing: Vec<u8>,
}

/// Reads one page header; `Ok(None)` at a clean end of file or where the data stops being Ogg.
fn read_header(r: &mut impl BufRead) -> io::Result<Option<PageHeader>> {
    let mut fixed = [0u8; 27];
    if let Err(e) = r.read_exact(&mut fixed) {
        return if e.kind() == io::ErrorKind::UnexpectedEof {
            Ok(None)
        } else {
            Err(e)
        };
    }
    if &fixed[..4] != b"OggS" || fixed[4] != 0 {
        return Ok(None);
    }
    let mut granule = [0u8; 8];
    granule.copy_from_slice(&fixed[6..14]);
    let mut serial = [0u8; 4];
    serial.copy_from_slice(&fixed[14..18]);
    let mut lacing = vec![0u8; usize::from(fixed[26])];
    if let Err(e) = r.read_exact(&mut lacing) {
        return if e.kind() == io::ErrorKind::UnexpectedEof {
            Ok(None)
        } else {
            Err(e)
        };
    }
    Ok(Some(PageHeader {
        granule: u64::from_le_bytes(granule),
        serial: u32::from_le_bytes(serial),
        is_bos: fixed[5] & 0x02 != 0,
        is_eos: fixed[5] & 0x04 != 0,
        lacing,
    }))
}

/// Walks every page, choosing the first logical stream whose codec `wanted` accepts (or else the
/// first one that is not a skeleton), and keeps its first `max_packets` packets.
/// `len` is the length of the data, so that a page cut off by the end of a truncated file does
/// not count.
pub(crate) fn scan<R: BufRead + Seek>(
    r: &mut R,
    len: u64,
    wanted: impl Fn(&str) -> bool,
    max_packets: usize,
) -> io::Result<OggScan> {
    let mut scan = OggScan {
        codec: "unknown",
        ..OggScan::default()
    };
    let mut chosen: Option<(u32, bool)> = None; // (serial, codec accepted)
    let mut partial: Vec<u8> = Vec::new();
    let mut pos = 0u64;
    while let Some(page) = read_header(r)? {
        let body_len: usize = page.lacing.iter().map(|&l| usize::from(l)).sum();
        pos += (27 + page.lacing.len() + body_len) as u64;
        if pos > len {
            break;
        }
        let keep_going = scan.packets.len() < max_packets;
        let ours = chosen.is_none_or(|(serial, _)| serial == page.serial);
        if page.is_bos && chosen.is_none_or(|(_, accepted)| !accepted) {
            // A beginning-of-stream page holds exactly the identification packet.
            let mut body = vec![0u8; body_len];
            if r.read_exact(&mut body).is_err() {
                break;
            }
            let codec = codec_of(&body);
            if wanted(codec) || (chosen.is_none() && codec != "skeleton") {
                chosen = Some((page.serial, wanted(codec)));
                scan = OggScan {
                    codec,
                    packets: vec![body],
                    ..OggScan::default()
                };
            }
            continue;
        }
        if !ours || chosen.is_none() || !keep_going {
            if r.seek_relative(i64::try_from(body_len).unwrap_or(i64::MAX))
                .is_err()
            {
                break;
            }
        } else {
            let mut body = vec![0u8; body_len];
            if r.read_exact(&mut body).is_err() {
                break;
            }
            let (mut at, mut ended, mut kept) = (0usize, false, true);
            for &l in &page.lacing {
                let end = at + usize::from(l);
                partial.extend_from_slice(body.get(at..end).unwrap_or_default());
                at = end;
                if l < 255 {
                    ended = true;
                    kept &= scan.packets.len() < max_packets;
                    if scan.packets.len() < max_packets {
                        scan.packets.push(std::mem::take(&mut partial));
                    }
                }
            }
            if ended && kept && page.granule != u64::MAX {
                scan.page_ends.push(PageEnd {
                    granule: page.granule,
                    packets: scan.packets.len(),
                    eos: page.is_eos,
                });
            }
        }
        // A granule position of -1 means no packet ends on this page.
        if ours && chosen.is_some() && page.granule != u64::MAX {
            scan.last_granule = Some(
                scan.last_granule
                    .map_or(page.granule, |g| g.max(page.granule)),
            );
        }
    }
    Ok(scan)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    /// One Ogg page (flags: 2 begins the stream, 4 ends it) holding whole packets.
    pub(crate) fn page(serial: u32, flags: u8, granule: u64, packets: &[&[u8]]) -> Vec<u8> {
        let mut lacing = Vec::new();
        let mut body = Vec::new();
        for p in packets {
            let mut n = p.len();
            while n >= 255 {
                lacing.push(255);
                n -= 255;
            }
            lacing.push(n as u8);
            body.extend_from_slice(p);
        }
        raw_page(serial, flags, granule, &lacing, &body)
    }

    /// One Ogg page with the lacing values given, for packets that span pages.
    fn raw_page(serial: u32, flags: u8, granule: u64, lacing: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = b"OggS\0".to_vec();
        out.push(flags);
        out.extend_from_slice(&granule.to_le_bytes());
        out.extend_from_slice(&serial.to_le_bytes());
        out.extend_from_slice(&[0; 8]); // sequence number and CRC, unchecked
        out.push(lacing.len() as u8);
        out.extend_from_slice(lacing);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn finds_packets_and_last_granule() {
        let big = vec![7u8; 600];
        let mut file = page(9, 2, 0, &[b"OpusHead\x01\x01"]);
        file.extend(page(9, 0, 0, &[b"OpusTags"]));
        file.extend(page(9, 0, 960, &[&[0xF8, 1], &big]));
        file.extend(page(9, 4, 5000, &[&[0xF8]]));
        let (file_copy, page_end) = (file.clone(), file.len());
        let len = file.len() as u64;
        let scan = scan(&mut Cursor::new(file), len, |c| c == "opus", 10).expect("scan");
        assert_eq!(scan.codec, "opus");
        assert_eq!(scan.packets.len(), 5);
        assert_eq!(scan.packets[3].len(), 600);
        assert_eq!(scan.last_granule, Some(5000));
        // Cut inside the last page: that page and its granule do not count.
        let cut = page_end - 1;
        let scan = super::scan(
            &mut Cursor::new(&file_copy[..cut]),
            cut as u64,
            |c| c == "opus",
            10,
        );
        assert_eq!(scan.expect("scan").last_granule, Some(960));
    }

    #[test]
    fn names_unwanted_codecs() {
        let mut file = page(1, 2, 0, &[b"fishead\0rest"]);
        file.extend(page(2, 2, 0, &[b"Speex   1.2"]));
        file.extend(page(2, 0, 320, &[b"x"]));
        let len = file.len() as u64;
        let scan = scan(&mut Cursor::new(file), len, |c| c == "opus", 10).expect("scan");
        assert_eq!((scan.codec, scan.last_granule), ("speex", Some(320)));
    }

    #[test]
    fn stops_at_garbage() {
        let mut file = page(1, 2, 0, &[b"\x01vorbis"]);
        file.extend_from_slice(b"garbage that is not a page at all");
        let len = file.len() as u64;
        let scan = scan(&mut Cursor::new(file), len, |c| c == "vorbis", 10).expect("scan");
        assert_eq!(
            (scan.codec, scan.packets.len(), scan.last_granule),
            ("vorbis", 1, None)
        );
    }

    /// A 20 ms CELT Opus packet: 960 samples.
    const PACKET: &[u8] = &[19 << 3, 1, 2, 3];

    fn opus_samples(p: &[u8]) -> u64 {
        crate::opus::packet_samples(p).map_or(0, u64::from)
    }

    /// OpusHead, OpusTags, then audio pages of (granule, packets, flags).
    fn opus_stream(pages: &[(u64, usize, u8)]) -> OggScan {
        let mut file = page(5, 2, 0, &[b"OpusHead\x01\x01\x38\x01"]);
        file.extend(page(5, 0, 0, &[b"OpusTags"]));
        for &(granule, count, flags) in pages {
            file.extend(page(5, flags, granule, &vec![PACKET; count]));
        }
        let len = file.len() as u64;
        scan(&mut Cursor::new(file), len, |c| c == "opus", 400).expect("scan")
    }

    #[test]
    fn a_stream_cut_from_a_live_one_starts_at_its_first_granule_less_its_samples() {
        // 10 s in: the first audio page ends 3 packets (2880 samples) after 480000.
        let scan = opus_stream(&[(482_880, 3, 0), (484_800, 2, 0), (485_000, 1, 4)]);
        assert_eq!(scan.start_granule(2, opus_samples), 480_000);
        assert_eq!(scan.last_granule, Some(485_000));
    }

    #[test]
    fn a_stream_from_zero_starts_at_zero() {
        let scan = opus_stream(&[(2880, 3, 0), (4000, 2, 4)]);
        assert_eq!(scan.start_granule(2, opus_samples), 0);
    }

    #[test]
    fn a_single_short_page_is_end_trimming_not_a_start() {
        // One page that also ends the stream: 2880 samples held, 2000 kept.
        let scan = opus_stream(&[(2000, 3, 4)]);
        assert_eq!(scan.start_granule(2, opus_samples), 0);
    }

    #[test]
    fn a_first_page_claiming_too_few_samples_starts_at_zero() {
        let scan = opus_stream(&[(1000, 3, 0), (4000, 2, 4)]);
        assert_eq!(scan.start_granule(2, opus_samples), 0);
    }

    #[test]
    fn an_audio_packet_spanning_pages_counts_on_the_page_it_ends() {
        // The first audio packet starts on a page of its own (granule -1) and ends on the next.
        let mut file = page(5, 2, 0, &[b"OpusHead\x01\x01\x38\x01"]);
        file.extend(page(5, 0, 0, &[b"OpusTags"]));
        let mut long = PACKET.to_vec();
        long.resize(300, 0);
        // A lacing value of 255 with no end: the packet goes on to the next page (flag 1).
        file.extend(raw_page(5, 0, u64::MAX, &[255], &long[..255]));
        file.extend(page(5, 1, 96_000 + 1920, &[&long[255..], PACKET]));
        let len = file.len() as u64;
        let scan = scan(&mut Cursor::new(file), len, |c| c == "opus", 400).expect("scan");
        assert_eq!(scan.packets[2].len(), 300);
        assert_eq!(scan.start_granule(2, opus_samples), 96_000);
    }
}
