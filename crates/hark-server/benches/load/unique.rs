//! Upload bodies that differ in a few bytes each, so that content-addressed storage cannot
//! answer a repeated upload from the blob it already has: a number stamped into a comment tag
//! of an Ogg file, with the checksum of the page that holds it recomputed, so the file stays
//! valid for a prober.

use axum::body::Bytes;

/// An Ogg file with a run of ASCII digits in one page to stamp numbers into.
pub struct Stampable {
    bytes: Vec<u8>,
    digits: std::ops::Range<usize>,
    page: std::ops::Range<usize>,
}

impl Stampable {
    /// `placeholder` (ASCII digits) must occur once in `ogg`, inside one page.
    pub fn new(ogg: Vec<u8>, placeholder: &str) -> anyhow::Result<Stampable> {
        anyhow::ensure!(placeholder.bytes().all(|b| b.is_ascii_digit()));
        let at = ogg
            .windows(placeholder.len())
            .position(|w| w == placeholder.as_bytes())
            .ok_or_else(|| anyhow::anyhow!("the placeholder is not in the file"))?;
        let digits = at..at + placeholder.len();
        let page = page_holding(&ogg, &digits)
            .ok_or_else(|| anyhow::anyhow!("the placeholder is not inside one Ogg page"))?;
        Ok(Stampable {
            bytes: ogg,
            digits,
            page,
        })
    }

    /// The file with `n` (modulo the placeholder's width) in place of the placeholder.
    pub fn stamped(&self, n: u64) -> Bytes {
        let mut bytes = self.bytes.clone();
        let width = self.digits.len();
        let number = format!("{n:0width$}");
        bytes[self.digits.clone()].copy_from_slice(&number.as_bytes()[number.len() - width..]);
        let page = &mut bytes[self.page.clone()];
        page[22..26].fill(0);
        let crc = ogg_crc(page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        Bytes::from(bytes)
    }
}

/// The byte range of the Ogg page that wholly contains `range`.
fn page_holding(ogg: &[u8], range: &std::ops::Range<usize>) -> Option<std::ops::Range<usize>> {
    let mut start = 0;
    while start + 27 <= ogg.len() && &ogg[start..start + 4] == b"OggS" {
        let segments = usize::from(ogg[start + 26]);
        let table = ogg.get(start + 27..start + 27 + segments)?;
        let end = start + 27 + segments + table.iter().map(|&s| usize::from(s)).sum::<usize>();
        if range.start >= start && range.end <= end {
            return Some(start..end);
        }
        start = end;
    }
    None
}

/// The Ogg page checksum: CRC-32, polynomial 0x04c11db7, no reflection, initial value 0.
fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}
