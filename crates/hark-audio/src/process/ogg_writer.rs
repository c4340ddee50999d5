//! Ogg Opus encapsulation (RFC 7845): the OpusHead and OpusTags header pages, then audio pages
//! of about a second each whose granule positions count 48 kHz samples including the pre-skip;
//! the last page's granule position trims the encoder's padding off the end.

use ogg::{PacketWriteEndInfo, PacketWriter};
use std::io::{self, Write};

/// Packets per page: a second of 20 ms packets, as ffmpeg and opusenc page.
const PACKETS_PER_PAGE: usize = 50;

pub(super) struct OggOpusWriter<W: Write> {
    pages: PacketWriter<'static, W>,
    serial: u32,
    on_page: usize,
    /// The latest packet and its granule position, held back so that the last one can end the
    /// stream.
    held: Option<(Vec<u8>, u64)>,
}

impl<W: Write> OggOpusWriter<W> {
    /// Writes the two header pages of a mono stream.
    pub(super) fn new(out: W, serial: u32, pre_skip: u16, input_rate: u32) -> io::Result<Self> {
        let mut head = b"OpusHead".to_vec();
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&input_rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // mapping family 0: mono or stereo, no table
        let vendor = format!("libopus {}", opus::version());
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&0u32.to_le_bytes()); // no comments
        let mut pages = PacketWriter::new(out);
        pages.write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)?;
        pages.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)?;
        Ok(OggOpusWriter {
            pages,
            serial,
            on_page: 0,
            held: None,
        })
    }

    /// Adds an audio packet ending at `granule` (samples since the start, pre-skip included).
    pub(super) fn packet(&mut self, packet: Vec<u8>, granule: u64) -> io::Result<()> {
        if let Some((previous, at)) = self.held.replace((packet, granule)) {
            self.on_page += 1;
            let end = if self.on_page == PACKETS_PER_PAGE {
                self.on_page = 0;
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.pages.write_packet(previous, self.serial, end, at)?;
        }
        Ok(())
    }

    /// Ends the stream on the last packet, whose page gets `final_granule` (pre-skip plus the
    /// real length); returns the writer.
    pub(super) fn finish(mut self, final_granule: u64) -> io::Result<W> {
        if let Some((last, _)) = self.held.take() {
            self.pages.write_packet(
                last,
                self.serial,
                PacketWriteEndInfo::EndStream,
                final_granule,
            )?;
        }
        Ok(self.pages.into_inner())
    }
}
