//! Matroska block lacing: several codec frames in one block (Matroska spec, "Block Lacing").

use crate::webm::Src;

/// Splits a block's payload into frames by its lacing (Matroska spec, "Block Lacing").
pub(crate) fn split_lacing(flags: u8, data: &[u8]) -> Option<Vec<&[u8]>> {
    let lacing = (flags >> 1) & 3;
    if lacing == 0 {
        return Some(vec![data]);
    }
    let (&count_less_one, mut rest) = data.split_first()?;
    let count = usize::from(count_less_one) + 1;
    let mut sizes = Vec::with_capacity(count);
    match lacing {
        // Xiph: each size is a run of 255s plus a final byte.
        1 => {
            for _ in 1..count {
                let mut size = 0usize;
                loop {
                    let (&b, tail) = rest.split_first()?;
                    rest = tail;
                    size += usize::from(b);
                    if b != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        // Fixed: equal sizes.
        2 => {
            if rest.len() % count != 0 {
                return None;
            }
            sizes.resize(count - 1, rest.len() / count);
        }
        // EBML: the first size as a vint, then signed differences.
        _ => {
            let mut src = Src {
                r: rest,
                pos: 0,
                len: rest.len() as u64,
                past_end: false,
            };
            let (first, _) = src.vint(false).ok()?;
            let mut size = i64::try_from(first).ok()?;
            sizes.push(usize::try_from(size).ok()?);
            for _ in 2..count {
                let before = src.pos;
                let (raw, _) = src.vint(false).ok()?;
                let bytes = u32::try_from(src.pos - before).ok()?;
                let bias = (1i64 << (7 * bytes - 1)) - 1;
                size += i64::try_from(raw).ok()? - bias;
                sizes.push(usize::try_from(size).ok()?);
            }
            rest = src.r;
        }
    }
    let mut frames = Vec::with_capacity(count);
    for size in sizes {
        let (frame, tail) = rest.split_at_checked(size)?;
        frames.push(frame);
        rest = tail;
    }
    frames.push(rest);
    Some(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_laced_blocks() {
        // Xiph: 3 frames, sizes 2 and 1, the last takes the rest.
        let frames = split_lacing(0x02, &[2, 2, 1, 9, 9, 8, 7, 7]).expect("xiph");
        assert_eq!(frames, vec![&[9, 9][..], &[8], &[7, 7]]);
        // Fixed: 2 frames of 2 bytes.
        assert_eq!(
            split_lacing(0x04, &[1, 5, 5, 6, 6]).expect("fixed").len(),
            2
        );
        assert!(split_lacing(0x04, &[1, 5, 5, 6]).is_none());
        // EBML: 3 frames, first 2 bytes, then +1 (0xC0 is +1 in a 1-byte signed vint).
        let frames = split_lacing(0x06, &[2, 0x82, 0xC0, 1, 1, 2, 2, 2, 3]).expect("ebml");
        assert_eq!(frames, vec![&[1, 1][..], &[2, 2, 2], &[3]]);
        assert!(split_lacing(0x02, &[5, 200]).is_none());
    }
}
