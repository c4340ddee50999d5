//! The audio-bytes port: a content-addressed blob store. Keys are SHA-256 hex digests of the
//! bytes, so identical uploads share one blob (the database counts references).

mod cache;
mod local;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;

pub use cache::CachedBlobStore;
pub use local::LocalBlobStore;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    #[error("blob store I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("blob store: {0}")]
    Store(#[from] object_store::Error),
}

impl BlobError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, BlobError::NotFound(_))
            || matches!(self, BlobError::Store(object_store::Error::NotFound { .. }))
    }
}

/// A blob's key: the lower-case hex SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn parse(sha256_hex: &str) -> Result<BlobKey, BlobError> {
        let valid = sha256_hex.len() == 64
            && sha256_hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(BlobKey(sha256_hex.to_owned()))
        } else {
            Err(BlobError::InvalidKey(sha256_hex.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `ab/cd/abcd...`: two levels of fan-out keep directories small.
    pub fn path(&self) -> String {
        format!("{}/{}/{}", &self.0[..2], &self.0[2..4], self.0)
    }
}

/// `range` of a blob held in memory, sharing its buffer; a range past its end means the
/// bytes are not the blob's.
pub fn slice(bytes: &Bytes, range: Range<u64>, key: &BlobKey) -> Result<Bytes, BlobError> {
    let (start, end) = (range.start as usize, range.end as usize);
    match bytes.get(start..end) {
        Some(_) => Ok(bytes.slice(start..end)),
        None => Err(BlobError::NotFound(key.as_str().to_owned())),
    }
}

/// A stored blob found by `list`.
#[derive(Debug, Clone)]
pub struct BlobEntry {
    pub key: BlobKey,
    pub age_seconds: u64,
}

pub type ByteStream = BoxStream<'static, Result<Bytes, BlobError>>;

pub type EntryStream<'a> = BoxStream<'a, Result<BlobEntry, BlobError>>;

/// Where audio bytes live.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores the bytes of the file at `source` under `key`. MUST be atomic (a reader sees all
    /// the bytes or no blob), durable when it returns (the store flushes `source` itself if it
    /// adopts the file), idempotent (the key names the content, so an existing blob is kept),
    /// and MUST leave the file at `source` in place.
    async fn put_file(&self, key: &BlobKey, source: &Path) -> Result<(), BlobError>;
    /// As [`BlobStore::put_file`], except that the blob is durable only once a later
    /// [`BlobStore::sync`] returns: uploads committed together share one flush, as they share
    /// one transaction. A store without a cheaper way keeps the default, a durable put.
    async fn put_file_unsynced(&self, key: &BlobKey, source: &Path) -> Result<(), BlobError> {
        self.put_file(key, source).await
    }
    /// Makes durable every blob that `put_file_unsynced` stored before the call.
    async fn sync(&self) -> Result<(), BlobError> {
        Ok(())
    }
    async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError>;
    /// The whole blob in memory: for blobs the caller knows to be small.
    async fn read(&self, key: &BlobKey) -> Result<Bytes, BlobError>;
    /// Streams `range` of the blob; the range MUST lie within the blob.
    async fn read_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, BlobError>;
    /// Removes the blob; removing a missing blob succeeds. Callers MUST NOT hold a database
    /// transaction across it: on a store reached over the network it can take long.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
    /// Every blob in the store, as a stream, for the reconciler.
    fn list(&self) -> EntryStream<'_>;
    /// Whether this process is the only writer (a local directory under the data-dir lock):
    /// then a blob no row knows at start-up belongs to no upload still under way.
    fn exclusive(&self) -> bool;
    /// Whether the store answers, for `/readyz`.
    async fn check(&self) -> Result<(), BlobError>;
}

/// Blobs up to this size are kept in memory once read: voice notes, not long recordings.
pub const CACHED_BLOB_BYTES: u64 = 1024 * 1024;
/// Memory the blob cache may hold.
const CACHE_BUDGET_BYTES: u64 = 64 * 1024 * 1024;

/// Opens the blob store the configuration names, with small blobs cached in memory.
pub fn open(config: &crate::config::Config) -> Result<Arc<dyn BlobStore>, BlobError> {
    let dir = &config.storage.blob_dir;
    std::fs::create_dir_all(dir)?;
    // Only this server writes a blob directory inside its locked data directory.
    let exclusive = dir
        .canonicalize()?
        .starts_with(config.data_dir.canonicalize()?);
    let store = Arc::new(LocalBlobStore::open(dir, exclusive)?);
    Ok(Arc::new(CachedBlobStore::new(
        store,
        CACHED_BLOB_BYTES,
        CACHE_BUDGET_BYTES,
    )))
}
