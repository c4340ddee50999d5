//! Keeping the store and the database in agreement: collecting blobs no note references,
//! removing blob files no row knows (interrupted uploads), reporting notes whose blob is
//! missing, and sweeping abandoned temporary files.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::blob::{BlobKey, BlobStore};
use crate::config::Config;
use crate::db::Repos;
use crate::domain::Timestamp;
use crate::metrics::BLOBS_COLLECTED;

#[derive(Clone)]
pub struct Maintenance {
    pub repos: Repos,
    pub store: Arc<dyn BlobStore>,
    pub orphan_grace_seconds: u64,
    pub gc_interval: Duration,
    pub reconcile_interval: Duration,
    pub collector: Arc<Notify>,
}

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

    /// Runs until cancelled: reconciles at once, then collects on every wake-up or tick.
    pub async fn run(self, stop: CancellationToken) {
        let mut gc = tokio::time::interval(self.gc_interval);
        let mut reconcile = tokio::time::interval(self.reconcile_interval);
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
                let key = BlobKey::parse(&sha)?;
                let store = self.store.clone();
                let remove =
                    Box::pin(async move { store.delete(&key).await.map_err(|e| e.to_string()) });
                // One blob that cannot be removed must not stop the others.
                match self.repos.blobs.collect_blob(&sha, remove).await {
                    Ok(true) => {
                        collected += 1;
                        progressed = true;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(sha256 = %sha, error = %e, "could not collect a blob"),
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

    /// Walks the store against the database: files older than the grace period that no row
    /// knows are removed; referenced blobs whose file is missing fail their notes.
    pub async fn reconcile(&self) -> anyhow::Result<Reconciled> {
        let mut outcome = Reconciled::default();
        for entry in self.store.list().await? {
            if entry.age_seconds < self.orphan_grace_seconds
                || self.repos.blobs.blob_known(entry.key.as_str()).await?
            {
                continue;
            }
            let store = self.store.clone();
            let key = entry.key.clone();
            let remove =
                Box::pin(async move { store.delete(&key).await.map_err(|e| e.to_string()) });
            if self
                .repos
                .blobs
                .collect_unknown_blob(entry.key.as_str(), remove)
                .await?
            {
                outcome.orphan_files_removed += 1;
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
                    outcome.notes_failed += self
                        .repos
                        .notes
                        .fail_notes_of_blob(&sha, "the stored audio is missing")
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
