//! A file seen from an offset onwards, so that container readers start after an ID3v2 tag and
//! agree with us on where the stream begins.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use symphonia::core::io::MediaSource;

/// The bytes of `file` from `start` to its end, as a seekable source.
pub(crate) struct Window {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
    /// Replacement for the first four bytes, if any.
    magic: Option<[u8; 4]>,
}

impl Window {
    pub(crate) fn new(mut file: File, start: u64) -> io::Result<Self> {
        let size = file.metadata()?.len();
        file.seek(SeekFrom::Start(start))?;
        Ok(Window {
            file,
            start,
            len: size.saturating_sub(start),
            pos: 0,
            magic: None,
        })
    }

    /// Shows `magic` in place of the first four bytes. symphonia cannot read RF64 (WAV with
    /// 64-bit sizes), but an RF64 file whose data fits the 32-bit fields reads fine as RIFF.
    pub(crate) fn with_magic(mut self, magic: [u8; 4]) -> Self {
        self.magic = Some(magic);
        self
    }

    /// Reads from the start of the window without moving; returns how many bytes were read.
    pub(crate) fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.len).unwrap_or(usize::MAX));
        let mut file = &self.file;
        file.seek(SeekFrom::Start(self.start))?;
        let n = file.take(want as u64).read(buf)?;
        file.seek(SeekFrom::Start(self.start + self.pos))?;
        Ok(n)
    }
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.len.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        let n = self.file.read(&mut buf[..want])?;
        if let Some(magic) = self.magic
            && self.pos < 4
        {
            let rest = magic.get(self.pos as usize..).unwrap_or_default();
            buf[..n]
                .iter_mut()
                .zip(rest)
                .for_each(|(byte, &m)| *byte = m);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        self.file
            .seek(SeekFrom::Start(self.start.saturating_add(target)))?;
        self.pos = target;
        Ok(target)
    }
}

impl MediaSource for Window {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_and_seeks_relative_to_the_offset() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("hark-audio-window-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("w.bin");
        File::create(&path)?.write_all(b"0123456789")?;
        let mut w = Window::new(File::open(&path)?, 4)?.with_magic(*b"abcd");
        let mut all = String::new();
        w.read_to_string(&mut all)?;
        assert_eq!(all, "abcd89");
        assert_eq!(w.seek(SeekFrom::End(-2))?, 4);
        let mut two = [0u8; 2];
        w.read_exact(&mut two)?;
        assert_eq!(&two, b"89");
        assert!(w.seek(SeekFrom::Current(-100)).is_err());
        assert_eq!(w.byte_len(), Some(6));
        std::fs::remove_dir_all(&dir)
    }
}
