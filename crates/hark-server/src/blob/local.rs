//! Blobs as files in a local directory.
//!
//! Listing goes through `object_store`'s local filesystem store. Writes and reads do not: its
//! `put` neither fsyncs nor can adopt a file that is already on the same disk, and its reads
//! stream in small chunks with a blocking task each, which cut GET throughput by an order of
//! magnitude in the benchmark. So a blob is written by hard-linking the spool file into place
//! (no copy, atomic, and the spool file stays for the caller), falling back to copy + rename
//! across filesystems, and read through a file handle in large chunks. One blocking call does a
//! whole put: each hop to the blocking pool costs two context switches.
//!
//! A durable put flushes the file, then each directory that gained an entry: two or three
//! flushes. An unsynced put flushes nothing; [`BlobStore::sync`] then flushes the whole
//! filesystem once (`syncfs`), for every upload of a group commit together: on disks where a
//! flush costs milliseconds, that is most of what an upload costs.

use std::io::ErrorKind;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{BlobEntry, BlobError, BlobKey, BlobStore, ByteStream, EntryStream};

/// Copies across filesystems are staged under this suffix, then renamed into place.
const STAGING_SUFFIX: &str = ".partial";
/// A staging file this old belongs to a copy that died; `list` removes it.
const STAGING_MAX_AGE_SECONDS: u64 = 24 * 3600;

/// Bytes read per blocking call: a typical voice note in one or two reads.
const READ_CHUNK: usize = 256 * 1024;

pub struct LocalBlobStore {
    root: PathBuf,
    store: Arc<LocalFileSystem>,
    exclusive: bool,
}

impl LocalBlobStore {
    /// `exclusive`: no other process writes this directory (it lies under the locked data dir).
    pub fn open(root: &Path, exclusive: bool) -> Result<LocalBlobStore, BlobError> {
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let store = LocalFileSystem::new_with_prefix(&root)?;
        Ok(LocalBlobStore {
            root,
            store: Arc::new(store),
            exclusive,
        })
    }

    fn file(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.path())
    }

    async fn put(&self, key: &BlobKey, source: &Path, flush: Flush) -> Result<(), BlobError> {
        let (source, target) = (source.to_owned(), self.file(key));
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || put_blocking(&root, &source, &target, flush))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }
}

/// Whether a put is durable when it returns, or only after the next `sync`.
#[derive(Clone, Copy, PartialEq)]
enum Flush {
    Now,
    Later,
}

/// Links `source` in as `target`, creating the directories on the way; with `Flush::Now`, makes
/// the bytes and the new entries durable.
fn put_blocking(root: &Path, source: &Path, target: &Path, flush: Flush) -> std::io::Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| std::io::Error::other("blob path has no parent"))?;
    let gained = create_dirs(root, dir)?;
    match std::fs::hard_link(source, target) {
        Ok(()) if flush == Flush::Now => std::fs::File::open(target)?.sync_all()?,
        Ok(()) => {}
        // The key names the content: an existing blob already holds these bytes.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == ErrorKind::CrossesDevices => {
            let name = target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("blob");
            let staging = dir.join(format!("{name}.{}{STAGING_SUFFIX}", uuid::Uuid::now_v7()));
            let copied = std::fs::copy(source, &staging)
                .and_then(|_| match flush {
                    Flush::Now => std::fs::File::open(&staging)?.sync_all(),
                    Flush::Later => Ok(()),
                })
                .and_then(|()| std::fs::rename(&staging, target));
            if copied.is_err() {
                let _ = std::fs::remove_file(&staging);
            }
            copied?;
        }
        Err(e) => return Err(e),
    }
    if flush == Flush::Later {
        return Ok(());
    }
    sync_dir(dir)?;
    gained.iter().try_for_each(|parent| sync_dir(parent))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates the fan-out directories one level at a time; returns each parent that gained an
/// entry, to be fsynced: otherwise a power loss can forget a directory, and the blob in it.
fn create_dirs(root: &Path, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut gained = Vec::new();
    let mut path = root.to_path_buf();
    for part in dir
        .strip_prefix(root)
        .map_err(std::io::Error::other)?
        .components()
    {
        let parent = path.clone();
        path.push(part);
        match std::fs::create_dir(&path) {
            Ok(()) => gained.push(parent),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(gained)
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put_file(&self, key: &BlobKey, source: &Path) -> Result<(), BlobError> {
        self.put(key, source, Flush::Now).await
    }

    #[cfg(target_os = "linux")]
    async fn put_file_unsynced(&self, key: &BlobKey, source: &Path) -> Result<(), BlobError> {
        self.put(key, source, Flush::Later).await
    }

    /// Flushes the filesystem the blobs are on: their bytes and their directories' entries.
    #[cfg(target_os = "linux")]
    async fn sync(&self) -> Result<(), BlobError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            rustix::fs::syncfs(std::fs::File::open(root)?).map_err(std::io::Error::from)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(())
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError> {
        Ok(tokio::fs::try_exists(self.file(key)).await?)
    }

    async fn read(&self, key: &BlobKey) -> Result<Bytes, BlobError> {
        let path = self.file(key);
        match tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .map_err(std::io::Error::other)?
        {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(BlobError::NotFound(key.as_str().to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn read_range(&self, key: &BlobKey, range: Range<u64>) -> Result<ByteStream, BlobError> {
        let mut file = match tokio::fs::File::open(self.file(key)).await {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(BlobError::NotFound(key.as_str().to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        file.seek(std::io::SeekFrom::Start(range.start)).await?;
        let length = range.end.saturating_sub(range.start);
        let chunk = usize::try_from(length)
            .unwrap_or(usize::MAX)
            .clamp(1, READ_CHUNK);
        Ok(ReaderStream::with_capacity(file.take(length), chunk)
            .map_err(BlobError::from)
            .boxed())
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.file(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn list(&self) -> EntryStream<'_> {
        let now = SystemTime::now();
        self.store
            .list(None)
            .map_err(BlobError::from)
            .try_filter_map(move |meta| async move {
                let Some(name) = meta.location.filename() else {
                    return Ok(None);
                };
                let age = now
                    .duration_since(SystemTime::from(meta.last_modified))
                    .unwrap_or_default();
                // A staging file outlives its copy only when the process died mid-copy.
                if name.ends_with(STAGING_SUFFIX) {
                    if age.as_secs() > STAGING_MAX_AGE_SECONDS {
                        let _ =
                            tokio::fs::remove_file(self.root.join(meta.location.as_ref())).await;
                    }
                    return Ok(None);
                }
                Ok(BlobKey::parse(name).ok().map(|key| BlobEntry {
                    key,
                    age_seconds: age.as_secs(),
                }))
            })
            .boxed()
    }

    fn exclusive(&self) -> bool {
        self.exclusive
    }

    async fn check(&self) -> Result<(), BlobError> {
        let probe = tokio::fs::metadata(&self.root).await?;
        if probe.is_dir() {
            Ok(())
        } else {
            Err(std::io::Error::other("blob root is not a directory").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(bytes: &[u8]) -> BlobKey {
        use sha2::Digest;
        BlobKey::parse(&hex::encode(sha2::Sha256::digest(bytes))).expect("a key")
    }

    #[tokio::test]
    async fn blobs_put_durably_or_unsynced_then_synced_read_back_whole() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = LocalBlobStore::open(&dir.path().join("blobs"), true).expect("a store");
        let mut keys = Vec::new();
        for (n, unsynced) in [(0u8, false), (1, true), (2, true)] {
            let bytes = vec![n; 1000 + usize::from(n)];
            let source = dir.path().join(format!("spool-{n}"));
            std::fs::write(&source, &bytes).expect("write");
            let key = key_of(&bytes);
            if unsynced {
                store.put_file_unsynced(&key, &source).await.expect("put");
            } else {
                store.put_file(&key, &source).await.expect("put");
            }
            // Idempotent, and the source stays for the caller.
            store.put_file_unsynced(&key, &source).await.expect("again");
            assert_eq!(std::fs::read(&source).expect("the source"), bytes);
            keys.push((key, bytes));
        }
        store.sync().await.expect("sync");
        for (key, bytes) in keys {
            assert_eq!(store.read(&key).await.expect("read"), bytes);
        }
    }
}
