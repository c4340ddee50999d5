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
}

/// Parsed fixed part of a page header.
struct PageHeader {
    granule: u64,
    serial: u32,
    is_bos: bool,
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
                    last_granule: None,
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
            let mut at = 0usize;
            for &l in &page.lacing {
                let end = at + usize::from(l);
                partial.extend_from_slice(body.get(at..end).unwrap_or_default());
                at = end;
                if l < 255 && scan.packets.len() < max_packets {
                    scan.packets.push(std::mem::take(&mut partial));
                }
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
mod tests {
    use super::*;
    use std::io::Cursor;

    fn page(serial: u32, flags: u8, granule: u64, packets: &[&[u8]]) -> Vec<u8> {
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
        let mut out = b"OggS\0".to_vec();
        out.push(flags);
        out.extend_from_slice(&granule.to_le_bytes());
        out.extend_from_slice(&serial.to_le_bytes());
        out.extend_from_slice(&[0; 8]); // sequence number and CRC, unchecked
        out.push(lacing.len() as u8);
        out.extend_from_slice(&lacing);
        out.extend_from_slice(&body);
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
}
