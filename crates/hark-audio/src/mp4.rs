//! The MP4 edit list of the audio track, which symphonia ignores.
//!
//! AAC encoders prepend priming samples (1024 for ffmpeg, 2112 for Apple) and pad the last
//! frame; the edit list says which part of the media timeline is actually presented. Without it
//! an M4A's length is off by up to ~50 ms, more than our tolerance.

use std::io::{self, Read, Seek, SeekFrom};

/// What the audio track's edit list presents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Edit {
    /// Seconds of media skipped at the start (the first edit's media time).
    pub skip: f64,
    /// Seconds presented in total, if the edit list says (0 means "unknown" in fragmented files).
    pub presented: Option<f64>,
}

/// The largest `moov` we are willing to read into memory.
const MAX_MOOV: u64 = 16 << 20;

/// Reads the first audio track's edit list; `None` if there is none or it cannot be read.
pub(crate) fn read_edit<R: Read + Seek>(r: &mut R, len: u64) -> Option<Edit> {
    let moov = find_moov(r, len).ok()??;
    let movie_scale = child(&moov, b"mvhd").and_then(scale_of)?;
    boxes(&moov)
        .filter(|(kind, _)| kind == b"trak")
        .find_map(|(_, trak)| {
            let mdia = child(trak, b"mdia")?;
            let handler = child(mdia, b"hdlr")?.get(8..12)?;
            if handler != b"soun" {
                return None;
            }
            let media_scale = child(mdia, b"mdhd").and_then(scale_of)?;
            let elst = child(trak, b"edts").and_then(|edts| child(edts, b"elst"))?;
            edit_of(elst, movie_scale, media_scale)
        })
}

/// Checks the metadata boxes before symphonia sees them. symphonia 0.5 trusts box sizes and
/// table counts: a sample-to-chunk table claiming 2^31 entries made it allocate 34 GB, which
/// aborts the process (no `catch_unwind` can help). Every box in `moov`/`moof` must fit its
/// parent, every table its box, and every sample the file. Returns why not, if not.
pub(crate) fn check_structure<R: Read + Seek>(r: &mut R, len: u64) -> Result<(), &'static str> {
    let mut pos = 0u64;
    while pos.saturating_add(8) <= len {
        let mut header = [0u8; 16];
        r.seek(SeekFrom::Start(pos)).map_err(|_| "unreadable MP4")?;
        r.read_exact(&mut header[..8])
            .map_err(|_| "truncated MP4")?;
        let (size, header_len) = match be32(&header[..4]) {
            0 => (len - pos, 8),
            1 => {
                r.read_exact(&mut header[8..16])
                    .map_err(|_| "truncated MP4")?;
                (be64(&header[8..16]), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header_len {
            return Err("damaged MP4 (bad box size)");
        }
        if matches!(&header[4..8], b"moov" | b"moof") {
            if size > MAX_MOOV || pos.saturating_add(size) > len {
                return Err("damaged or truncated MP4 (metadata box)");
            }
            let mut body = vec![0u8; usize::try_from(size - header_len).unwrap_or(0)];
            r.read_exact(&mut body).map_err(|_| "truncated MP4")?;
            check_children(&body, len, 0)?;
        }
        pos = pos.saturating_add(size);
    }
    Ok(())
}

/// Boxes whose body is a list of boxes (after `skip` bytes of their own fields).
fn container_skip(kind: &[u8; 4]) -> Option<usize> {
    match kind {
        b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"edts" | b"dinf" | b"udta" | b"mvex"
        | b"moof" | b"traf" | b"ilst" | b"wave" => Some(0),
        b"meta" => Some(4),
        _ => None,
    }
}

fn check_children(data: &[u8], file_len: u64, depth: u32) -> Result<(), &'static str> {
    const BAD: &str = "damaged MP4 (box larger than its parent)";
    if depth > 16 {
        return Err("damaged MP4 (boxes nested too deep)");
    }
    let mut rest = data;
    while !rest.is_empty() {
        let size = match be32(rest.get(..4).ok_or(BAD)?) {
            0 => rest.len() as u64,
            1 => be64(rest.get(8..16).ok_or(BAD)?),
            n => u64::from(n),
        };
        let size = usize::try_from(size).map_err(|_| BAD)?;
        let kind: [u8; 4] = rest.get(4..8).and_then(|k| k.try_into().ok()).ok_or(BAD)?;
        let header_len = if be32(&rest[..4]) == 1 { 16 } else { 8 };
        let body = rest.get(header_len..size).ok_or(BAD)?;
        let in_ilst_item = depth > 0 && kind != *b"data" && kind != *b"mean" && kind != *b"name";
        if let Some(skip) = container_skip(&kind) {
            check_children(body.get(skip..).ok_or(BAD)?, file_len, depth + 1)?;
        } else if in_ilst_item && body.len() >= 8 && body.get(4..8) == Some(b"data") {
            // iTunes metadata items (©nam, ©ART, ...) hold `data` boxes.
            check_children(body, file_len, depth + 1)?;
        } else {
            check_table(&kind, body, file_len)?;
        }
        rest = rest.get(size..).ok_or(BAD)?;
    }
    Ok(())
}

/// Sample tables: the entry count must fit the box, and sample sizes the file.
fn check_table(kind: &[u8; 4], body: &[u8], file_len: u64) -> Result<(), &'static str> {
    const BAD: &str = "damaged MP4 (sample table larger than its box)";
    let count = |at: usize| body.get(at..at + 4).map(|b| be32(b) as usize).ok_or(BAD);
    let fits = |count: usize, at: usize, entry: usize| {
        let need = count
            .checked_mul(entry)
            .and_then(|n| n.checked_add(at))
            .ok_or(BAD)?;
        if need <= body.len() { Ok(()) } else { Err(BAD) }
    };
    match kind {
        b"stts" | b"ctts" | b"co64" => fits(count(4)?, 8, 8),
        b"stsc" => fits(count(4)?, 8, 12),
        b"stco" | b"stss" => fits(count(4)?, 8, 4),
        b"elst" => fits(count(4)?, 8, if body.first() == Some(&1) { 20 } else { 12 }),
        b"stsz" => {
            let (fixed, n) = (count(4)?, count(8)?);
            if fixed == 0 {
                fits(n, 12, 4)?;
                let sizes = body.get(12..12 + 4 * n).ok_or(BAD)?;
                if sizes.chunks_exact(4).any(|s| u64::from(be32(s)) > file_len) {
                    return Err("damaged MP4 (sample larger than the file)");
                }
            } else if fixed as u64 > file_len {
                return Err("damaged MP4 (sample larger than the file)");
            }
            Ok(())
        }
        b"hdlr" if body.len() < 24 => Err("damaged MP4 (short handler box)"),
        _ => Ok(()),
    }
}

/// Finds the top-level `moov` box and returns its body.
fn find_moov<R: Read + Seek>(r: &mut R, len: u64) -> io::Result<Option<Vec<u8>>> {
    let mut pos = 0u64;
    r.seek(SeekFrom::Start(0))?;
    while pos.saturating_add(8) <= len {
        let mut header = [0u8; 16];
        r.seek(SeekFrom::Start(pos))?;
        r.read_exact(&mut header[..8])?;
        let size32 = be32(&header[..4]);
        let is_moov = &header[4..8] == b"moov";
        let (size, header_len) = match size32 {
            0 => (len - pos, 8),
            1 => {
                r.read_exact(&mut header[8..16])?;
                (be64(&header[8..16]), 16)
            }
            n => (u64::from(n), 8),
        };
        if size < header_len || pos.saturating_add(size) > len {
            return Ok(None);
        }
        if is_moov {
            if size > MAX_MOOV {
                return Ok(None);
            }
            let mut body = vec![0u8; usize::try_from(size - header_len).unwrap_or(0)];
            r.read_exact(&mut body)?;
            return Ok(Some(body));
        }
        pos += size;
    }
    Ok(None)
}

/// Iterates over the boxes in `data` as (type, body); stops at the first malformed one.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let size = usize::try_from(be32(rest.get(..4)?)).ok()?;
        let kind: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (body, next) = match size {
            0 => (rest.get(8..)?, &[][..]),
            1 => {
                let size = usize::try_from(be64(rest.get(8..16)?)).ok()?;
                (rest.get(16..size)?, rest.get(size..)?)
            }
            n => (rest.get(8..n)?, rest.get(n..)?),
        };
        rest = next;
        Some((kind, body))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|(k, _)| k == kind).map(|(_, body)| body)
}

/// The timescale of an `mvhd` or `mdhd` body (the same layout up to that field).
fn scale_of(body: &[u8]) -> Option<u32> {
    let at = if *body.first()? == 1 { 20 } else { 12 };
    Some(be32(body.get(at..at + 4)?)).filter(|&s| s > 0)
}

/// Sums the edit list: the first non-empty edit's media time is the skip.
fn edit_of(elst: &[u8], movie_scale: u32, media_scale: u32) -> Option<Edit> {
    let version = *elst.first()?;
    let count = usize::try_from(be32(elst.get(4..8)?)).ok()?;
    let entry_len = if version == 1 { 20 } else { 12 };
    let (mut skip, mut presented, mut seen) = (None, 0u64, 0usize);
    for entry in elst.get(8..)?.chunks_exact(entry_len).take(count) {
        let (duration, media_time) = if version == 1 {
            (be64(&entry[..8]), be64(&entry[8..16]) as i64)
        } else {
            (
                u64::from(be32(&entry[..4])),
                i64::from(be32(&entry[4..8]) as i32),
            )
        };
        seen += 1;
        // A media time of -1 is an empty edit (a gap); it presents nothing from the track.
        if media_time >= 0 {
            skip.get_or_insert(media_time as u64);
            presented += duration;
        }
    }
    (seen > 0).then_some(Edit {
        skip: skip.unwrap_or(0) as f64 / f64::from(media_scale),
        presented: (presented > 0).then(|| presented as f64 / f64::from(movie_scale)),
    })
}

fn be32(b: &[u8]) -> u32 {
    b.iter()
        .take(4)
        .fold(0, |acc, &x| (acc << 8) | u32::from(x))
}

fn be64(b: &[u8]) -> u64 {
    b.iter()
        .take(8)
        .fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn header_v0(scale: u32) -> Vec<u8> {
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&scale.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b
    }

    #[test]
    fn reads_an_ffmpeg_style_edit_list() {
        let mut elst = vec![0, 0, 0, 0, 0, 0, 0, 1];
        elst.extend_from_slice(&4418u32.to_be_bytes());
        elst.extend_from_slice(&1024u32.to_be_bytes());
        elst.extend_from_slice(&[0, 1, 0, 0]);
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(b"soun");
        let mdia = [bx(b"mdhd", &header_v0(44_100)), bx(b"hdlr", &hdlr)].concat();
        let trak = [bx(b"edts", &bx(b"elst", &elst)), bx(b"mdia", &mdia)].concat();
        let moov = [bx(b"mvhd", &header_v0(1000)), bx(b"trak", &trak)].concat();
        let file = [
            bx(b"ftyp", b"M4A \0\0\0\0"),
            bx(b"mdat", &[1, 2, 3]),
            bx(b"moov", &moov),
        ]
        .concat();
        let len = file.len() as u64;
        let edit = read_edit(&mut Cursor::new(file), len).expect("edit list");
        assert_eq!(edit.presented, Some(4.418));
        assert!((edit.skip - 1024.0 / 44_100.0).abs() < 1e-12);
    }

    #[test]
    fn refuses_tables_larger_than_their_box() {
        let mut stsc = vec![0u8; 4];
        stsc.extend_from_slice(&0x7FFF_FFF0u32.to_be_bytes());
        let moov = bx(
            b"moov",
            &bx(
                b"trak",
                &bx(b"mdia", &bx(b"minf", &bx(b"stbl", &bx(b"stsc", &stsc)))),
            ),
        );
        let file = [bx(b"ftyp", b"M4A \0\0\0\0"), moov].concat();
        let len = file.len() as u64;
        let err = check_structure(&mut Cursor::new(file), len);
        assert_eq!(err, Err("damaged MP4 (sample table larger than its box)"));
        let mut child_too_big = bx(b"moov", &bx(b"trak", &[0; 8]));
        child_too_big[11] = 200; // the trak claims more than the moov holds
        let len = child_too_big.len() as u64;
        assert!(check_structure(&mut Cursor::new(child_too_big), len).is_err());
    }

    #[test]
    fn tolerates_garbage() {
        let junk = b"\0\0\0\x10ftypM4A \0\0\0\0\xFF\xFF\xFF\xFFmoov".to_vec();
        let len = junk.len() as u64;
        assert_eq!(read_edit(&mut Cursor::new(junk), len), None);
        assert_eq!(boxes(&[0, 0, 0, 1, b'a', b'b', b'c', b'd']).count(), 0);
    }
}
