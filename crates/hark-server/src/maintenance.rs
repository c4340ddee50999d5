//! Keeping the store and the database in agreement: collecting blobs no note references,
//! removing blob files no row knows (interrupted uploads), reporting notes whose blob is
//! missing, and sweeping abandoned temporary files.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::blob::{BlobKey, BlobStore};
use crate::config::Config;
use crate::db::Repos;
use crate::domain::Timestamp;
use crate::metrics::BLOBS_COLLECTED;
use crate::notes::fail_notes_of_blob;

#[derive(Clone)]
pub struct Maintenance {
    pub repos: Repos,
    pub store: Arc<dyn BlobStore>,
    pub orphan_grace_seconds: u64,
    pub gc_interval: Duration,
    pub reconcile_interval: Duration,
    pub collector: Arc<Notify>,
}

/// Blob files checked against the database per query.
const RECONCILE_BATCH: usize = 500;

/// How long a retried upload can still replay its first result.
const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;

/// What one reconciliation found and did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub orphan_files_removed: usize,
    pub notes_failed: u64,
    pub idempotency_keys_pruned: u64,
}

impl Maintenance {
    pub fn new(
        config: &Config,
        repos: Repos,
        store: Arc<dyn BlobStore>,
        collector: Arc<Notify>,
    ) -> Maintenance {
        Maintenance {
            repos,
            store,
            orphan_grace_seconds: config.storage.orphan_grace_seconds,
            gc_interval: Duration::from_secs(config.storage.gc_interval_seconds.max(1)),
            reconcile_interval: Duration::from_secs(
                config.storage.reconcile_interval_seconds.max(1),
            ),
            collector,
        }
    }

    /// The start-up pass, before any request is served: an exclusive store's blobs that no
    /// row knows belong to uploads a crash interrupted (no upload of this process is under way
    /// yet), so they go at once; a shared store's wait for the grace period.
    pub async fn startup(&self) {
        let grace = if self.store.exclusive() {
            0
        } else {
            self.orphan_grace_seconds
        };
        self.report(
            self.reconcile_with_grace(grace)
                .await
                .map(|r| format!("{r:?}")),
        );
    }

    /// Runs until cancelled: collects on every wake-up or tick, and reconciles periodically.
    pub async fn run(self, stop: CancellationToken) {
        let mut gc = tokio::time::interval(self.gc_interval);
        let mut reconcile = tokio::time::interval(self.reconcile_interval);
        reconcile.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = reconcile.tick() => self.report(self.reconcile().await.map(|r| format!("{r:?}"))),
                _ = gc.tick() => self.report(self.collect_garbage().await.map(|n| n.to_string())),
                () = self.collector.notified() => self.report(self.collect_garbage().await.map(|n| n.to_string())),
            }
        }
    }

    fn report(&self, outcome: anyhow::Result<String>) {
        if let Err(e) = outcome {
            tracing::warn!(error = %format!("{e:#}"), "maintenance pass failed; it will be retried");
        }
    }

    /// Removes every blob whose last reference is gone. Returns how many were removed.
    pub async fn collect_garbage(&self) -> anyhow::Result<usize> {
        let mut collected = 0;
        loop {
            let batch = self
                .repos
                .blobs
                .orphaned_blobs(Timestamp::now(), 100)
                .await?;
            if batch.is_empty() {
                break;
            }
            let mut progressed = false;
            for sha in batch {
                // One blob that cannot be removed must not stop the others.
                match self.delete_blob(&sha, false).await {
                    Ok(true) => {
                        collected += 1;
                        progressed = true;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(sha256 = %sha, error = %format!("{e:#}"), "could not collect a blob")
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        if collected > 0 {
            metrics::counter!(BLOBS_COLLECTED).increment(collected as u64);
            tracing::info!(collected, "collected unreferenced blobs");
        }
        Ok(collected)
    }

    async fn delete_blob(&self, sha256: &str, unknown: bool) -> anyhow::Result<bool> {
        delete_blob(&self.repos, self.store.as_ref(), sha256, unknown).await
    }

    /// Walks the store against the database with the configured grace period.
    pub async fn reconcile(&self) -> anyhow::Result<Reconciled> {
        self.reconcile_with_grace(self.orphan_grace_seconds).await
    }

    /// Walks the store against the database: files older than `grace` seconds that no row
    /// knows are removed; referenced blobs whose file is missing fail their notes.
    pub async fn reconcile_with_grace(&self, grace: u64) -> anyhow::Result<Reconciled> {
        let mut outcome = Reconciled::default();
        let mut listing = self.store.list().try_chunks(RECONCILE_BATCH);
        while let Some(batch) = listing.next().await {
            let batch = batch.map_err(|e| e.1)?;
            let candidates: Vec<String> = batch
                .iter()
                .filter(|entry| entry.age_seconds >= grace)
                .map(|entry| entry.key.as_str().to_owned())
                .collect();
            let known = self.repos.blobs.known_blobs(&candidates).await?;
            for sha in candidates.iter().filter(|sha| !known.contains(*sha)) {
                if self.delete_blob(sha, true).await? {
                    outcome.orphan_files_removed += 1;
                }
            }
        }
        let mut after = String::new();
        loop {
            let settled = Timestamp::now().plus_seconds(-(self.orphan_grace_seconds as i64));
            let page = self
                .repos
                .blobs
                .referenced_blobs(&after, settled, 500)
                .await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for sha in page {
                if !self.store.exists(&BlobKey::parse(&sha)?).await? {
                    tracing::error!(sha256 = %sha, "a referenced blob is missing from the store");
                    outcome.notes_failed +=
                        fail_notes_of_blob(&self.repos, &sha, "the stored audio is missing")
                            .await?;
                }
            }
            after = last;
        }
        let cutoff = Timestamp::now().plus_seconds(-IDEMPOTENCY_TTL_SECONDS);
        outcome.idempotency_keys_pruned = self.repos.notes.prune_idempotency_keys(cutoff).await?;
        if outcome != Reconciled::default() {
            tracing::warn!(?outcome, "reconciled the store with the database");
        }
        Ok(outcome)
    }
}

/// Deletes a blob's bytes by the index's protocol: mark (committed), remove the bytes with no
/// transaction open, finish. `unknown`: the blob has no row (bytes written for no note, as an
/// interrupted upload leaves). `false` when a reference (or row) keeps it.
pub async fn delete_blob(
    repos: &Repos,
    store: &dyn BlobStore,
    sha256: &str,
    unknown: bool,
) -> anyhow::Result<bool> {
    let key = BlobKey::parse(sha256)?;
    let marked = if unknown {
        repos.blobs.begin_unknown_blob_deletion(sha256).await?
    } else {
        repos.blobs.begin_blob_deletion(sha256).await?
    };
    if !marked {
        return Ok(false);
    }
    store.delete(&key).await?;
    repos.blobs.finish_blob_deletion(sha256).await?;
    Ok(true)
}

/// How long a new reference waits for a collector deleting the same bytes.
const COLLECTOR_WAIT: Duration = Duration::from_secs(30);

/// A reference was taken on bytes a collector was deleting (the reference's transaction found
/// the blob marked): once the collector is done, writes the bytes again from `file` and clears
/// the mark. A collector that died mid-way leaves its mark; after a while the bytes are written
/// and the mark cleared here.
pub async fn restore_collected_blob<E>(
    repos: &Repos,
    store: &dyn BlobStore,
    key: &BlobKey,
    file: &Path,
) -> Result<(), E>
where
    E: From<crate::db::DbError> + From<crate::blob::BlobError>,
{
    let deadline = tokio::time::Instant::now() + COLLECTOR_WAIT;
    while repos.blobs.blob_deleting(key.as_str()).await? && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.put_file(key, file).await?;
    if repos.blobs.blob_deleting(key.as_str()).await? {
        repos.blobs.finish_blob_deletion(key.as_str()).await?;
    }
    Ok(())
}

/// Empties the temporary directory: at start-up nothing in it belongs to a live upload.
pub fn clear_tmp_dir(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?
        } else {
            std::fs::remove_file(&path)?
        }
        removed += 1;
    }
    Ok(removed)
}
