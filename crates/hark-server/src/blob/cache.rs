//! Small blobs kept in memory, least recently used out first. A blob's key names its content,
//! so a cached blob can never be stale: the only thing to forget is a deleted one. Reading a
//! voice note from here costs no file open, no blocking-pool hop and no copy (the answer's body
//! shares the cached buffer).

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{BlobError, BlobKey, BlobStore, ByteStream, EntryStream};

/// A blob store whose small blobs are served from memory.
pub struct CachedBlobStore {
    inner: Arc<dyn BlobStore>,
    entries: Mutex<Entries>,
    /// The largest blob kept.
    max_blob: u64,
    /// Bytes kept at most, over all blobs.
    budget: u64,
}

#[derive(Default)]
struct Entries {
    blobs: HashMap<String, Entry>,
    bytes: u64,
    /// Ticks on every use: an entry's last tick orders evictions.
    clock: u64,
}

struct Entry {
    bytes: Bytes,
    used: u64,
}

impl Entries {
    fn get(&mut self, key: &BlobKey) -> Option<Bytes> {
        self.clock += 1;
        let entry = self.blobs.get_mut(key.as_str())?;
        entry.used = self.clock;
        Some(entry.bytes.clone())
    }

    fn insert(&mut self, key: &BlobKey, bytes: Bytes, budget: u64) {
        self.clock += 1;
        let size = bytes.len() as u64;
        let entry = Entry {
            bytes,
            used: self.clock,
        };
        if let Some(old) = self.blobs.insert(key.as_str().to_owned(), entry) {
            self.bytes -= old.bytes.len() as u64;
        }
        self.bytes += size;
        while self.bytes > budget {
            let Some(oldest) = self
                .blobs
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.remove(&oldest);
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(gone) = self.blobs.remove(key) {
            self.bytes -= gone.bytes.len() as u64;
        }
    }
}

impl CachedBlobStore {
    /// Keeps blobs of at most `max_blob` bytes, `budget` bytes in all.
    pub fn new(inner: Arc<dyn BlobStore>, max_blob: u64, budget: u64) -> CachedBlobStore {
        CachedBlobStore {
            inner,
            entries: Mutex::new(Entries::default()),
            max_blob: max_blob.min(budget),
            budget,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The map holds no invariant a panic could break halfway.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, key: &BlobKey) -> Option<Bytes> {
        self.entries().get(key)
    }
}

#[async_trait]
impl BlobStore for CachedBlobStore {
    async fn put_file(&self, key: &BlobKey, source: &Path) -> Result<(), BlobError> {
        self.inner.put_file(key, source).await
    }

    async fn put_file_unsynced(&self, key: &BlobKey, source: &Path) -> Result<(), BlobError> {
        self.inner.put_file_unsynced(key, source).await
    }

    async fn sync(&self) -> Result<(), BlobError> {
        self.inner.sync().await
    }

    /// Asks the store itself: the reconciler must learn of bytes gone missing.
    async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError> {
        self.inner.exists(key).await
    }

    async fn read(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        if let Some(bytes) = self.cached(key) {
            return Ok(bytes);
        }
        let bytes = self.inner.read(key).await?;
        if bytes.len() as u64 <= self.max_blob {
            self.entries().insert(key, bytes.clone(), self.budget);
        }
        Ok(bytes)
    }

    async fn read_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, BlobError> {
        match self.cached(key) {
            Some(bytes) => {
                let part = super::slice(&bytes, range, key)?;
                Ok(futures_util::stream::once(async { Ok(part) }).boxed())
            }
            None => self.inner.read_range(key, range).await,
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.entries().remove(key.as_str());
        self.inner.delete(key).await
    }

    fn list(&self) -> EntryStream<'_> {
        self.inner.list()
    }

    fn exclusive(&self) -> bool {
        self.inner.exclusive()
    }

    async fn check(&self) -> Result<(), BlobError> {
        self.inner.check().await
    }
}
