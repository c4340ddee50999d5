//! Spooling an upload body to a temporary file: bounded memory, SHA-256 on the way, the size
//! cap enforced while streaming (after gzip decompression, so a small bomb fails fast), the
//! file ready to be linked into the blob store, and probed.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::Path;

use async_compression::tokio::bufread::GzipDecoder;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, TryStreamExt};
use hark_audio::{AudioInfo, ProbeError};
use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio_util::io::StreamReader;

use super::IngestError;
use crate::metrics::UPLOAD_BYTES;

/// An upload body on disk, durable, with what the probe found in it. Dropping it removes the
/// file: a half-done ingest leaves nothing.
pub struct Spooled {
    pub path: TempPath,
    pub sha256: [u8; 32],
    pub size: u64,
    audio: Option<Result<AudioInfo, ProbeError>>,
}

impl Spooled {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// What the probe found; there is one answer, for the first to ask.
    pub fn take_audio(&mut self) -> Result<AudioInfo, ProbeError> {
        self.audio
            .take()
            .unwrap_or_else(|| Err(std::io::Error::other("the probe's answer was taken").into()))
    }
}

/// Marks an error that came from the request body itself (a client that went away), as
/// opposed to bad gzip data.
#[derive(Debug)]
struct BodyError(String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

/// Writes `body` (gunzipped when `gzip`) to a new file in `tmp_dir`, refusing more than
/// `max_bytes` of content.
pub async fn spool<S, E>(
    tmp_dir: &Path,
    body: S,
    gzip: bool,
    max_bytes: u64,
) -> Result<Spooled, IngestError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
    E: std::fmt::Display,
{
    let body = body.map_err(|e| std::io::Error::other(BodyError(e.to_string())));
    let reader = StreamReader::new(body);
    if gzip {
        let mut decoder = GzipDecoder::new(BufReader::new(reader));
        decoder.multiple_members(true);
        write_capped(tmp_dir, decoder, max_bytes).await
    } else {
        write_capped(tmp_dir, reader, max_bytes).await
    }
}

/// Body bytes gathered before one write: a voice note is written in one blocking call, a long
/// recording in pieces, so memory stays bounded.
const WRITE_CHUNK: usize = 256 * 1024;

async fn write_capped<R: AsyncRead + Unpin>(
    tmp_dir: &Path,
    mut reader: R,
    max_bytes: u64,
) -> Result<Spooled, IngestError> {
    let temp = tempfile::Builder::new()
        .prefix("upload-")
        .tempfile_in(tmp_dir)
        .map_err(IngestError::Io)?;
    let (mut file, path) = temp.into_parts();
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut pending = BytesMut::new();
    loop {
        if pending.capacity() - pending.len() < 16 * 1024 {
            pending.reserve(64 * 1024);
        }
        let before = pending.len();
        let n = reader.read_buf(&mut pending).await.map_err(classify)?;
        size += n as u64;
        if size > max_bytes {
            drain(&mut reader).await;
            return Err(IngestError::TooLarge { limit: max_bytes });
        }
        hasher.update(&pending[before..]);
        if n == 0 {
            break;
        }
        if pending.len() >= WRITE_CHUNK {
            file = write_blocking(file, pending.split().freeze()).await?;
        }
    }
    // The last write and the probe in one blocking call: each hop to the blocking pool costs
    // two context switches. The blob store makes the bytes durable when it adopts the file.
    let (to, last) = (path.to_path_buf(), pending.freeze());
    let audio = tokio::task::spawn_blocking(move || {
        let mut file = file;
        file.write_all(&last)?;
        Ok::<_, std::io::Error>(hark_audio::probe_file(&to))
    })
    .await
    .map_err(|e| IngestError::Io(std::io::Error::other(e)))?
    .map_err(IngestError::Io)?;
    metrics::counter!(UPLOAD_BYTES).increment(size);
    Ok(Spooled {
        path,
        sha256: hasher.finalize().into(),
        size,
        audio: Some(audio),
    })
}

/// Writes `bytes` to the end of `file` on a blocking thread, and hands the file back.
async fn write_blocking(mut file: File, bytes: Bytes) -> Result<File, IngestError> {
    tokio::task::spawn_blocking(move || file.write_all(&bytes).map(|()| file))
        .await
        .map_err(|e| IngestError::Io(std::io::Error::other(e)))?
        .map_err(IngestError::Io)
}

/// Reads and discards a bounded amount of what the client is still sending. Closing a socket
/// with unread data makes the kernel answer with a reset, and a client still writing would then
/// lose the 413; a modest overshoot is swallowed so it reads the answer. A bomb is not: the
/// drain stops after `DRAIN_BYTES` or `DRAIN_TIME`.
async fn drain<R: AsyncRead + Unpin>(reader: &mut R) {
    const DRAIN_BYTES: usize = 8 * 1024 * 1024;
    const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);
    let swallow = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut drained = 0;
        while drained < DRAIN_BYTES {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, swallow).await;
}

fn classify(err: std::io::Error) -> IngestError {
    if err.get_ref().is_some_and(|inner| inner.is::<BodyError>()) {
        IngestError::Body(err.to_string())
    } else if matches!(
        err.kind(),
        ErrorKind::InvalidData | ErrorKind::UnexpectedEof | ErrorKind::Other
    ) {
        IngestError::BadEncoding(err.to_string())
    } else {
        IngestError::Io(err)
    }
}
