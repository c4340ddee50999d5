//! Group commit: uploads that reach their commit together share one database transaction, and
//! so one durable write. A committer task takes whatever is waiting, commits it as one batch,
//! and answers each caller with its own note's outcome; while a batch commits, the next one
//! gathers. A caller hears back only once its batch has committed (or failed), so nothing is
//! acknowledged before it is durable, and one note's failure is that note's alone.
//!
//! The batch's blobs were put unsynced; one flush of the blob store makes them all durable. It
//! runs while the transaction that names them does its work, and that transaction commits only
//! once the flush has ended.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::blob::BlobStore;
use crate::db::{DbError, InsertOutcome, NoteInsert, NoteRepo};
use crate::metrics::{COMMIT_BATCH_NOTES, COMMIT_FLUSH_DURATION, COMMIT_TRANSACTION_DURATION};

/// Notes committed in one transaction at most.
const MAX_BATCH: usize = 128;

type Outcome = Result<InsertOutcome, DbError>;

struct Pending {
    insert: NoteInsert,
    done: oneshot::Sender<Outcome>,
}

/// The handle callers commit through; the task ends when every handle is gone.
#[derive(Clone)]
pub struct Committer {
    queue: mpsc::UnboundedSender<Pending>,
}

impl Committer {
    /// Starts the committer task on the current runtime.
    pub fn start(notes: Arc<dyn NoteRepo>, store: Arc<dyn BlobStore>) -> Committer {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(run(notes, store, pending));
        Committer { queue }
    }

    /// Commits `insert` with whatever else is waiting; answers once its batch is durable. The
    /// note's blob MUST have been put (unsynced is enough) before.
    pub async fn commit(&self, insert: NoteInsert) -> Outcome {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send(Pending { insert, done })
            .map_err(|_| DbError::Batch("the committer has stopped".into()))?;
        outcome
            .await
            .unwrap_or_else(|_| Err(DbError::Batch("the commit was abandoned".into())))
    }
}

async fn run(
    notes: Arc<dyn NoteRepo>,
    store: Arc<dyn BlobStore>,
    mut pending: mpsc::UnboundedReceiver<Pending>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (inserts, callers): (Vec<_>, Vec<_>) =
            batch.drain(..).map(|p| (p.insert, p.done)).unzip();
        metrics::histogram!(COMMIT_BATCH_NOTES).record(inserts.len() as f64);
        let (notes, store) = (notes.clone(), store.clone());
        // Its own task: a panic fails this batch's callers, not the committer.
        let committed = tokio::spawn(async move {
            let started = Instant::now();
            // The flush runs on its own while the transaction's statements do; the commit
            // waits for it.
            let flushed = tokio::spawn(async move {
                let flushed = store.sync().await;
                metrics::histogram!(COMMIT_FLUSH_DURATION).record(started.elapsed());
                flushed
            });
            let durable = Box::pin(async move {
                let failed = match flushed.await {
                    Ok(Ok(())) => return Ok(()),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                Err(DbError::Batch(format!(
                    "flushing the batch's blobs: {failed}"
                )))
            });
            let outcomes = notes.insert_notes(&inserts, durable).await;
            metrics::histogram!(COMMIT_TRANSACTION_DURATION).record(started.elapsed());
            outcomes
        })
        .await;
        match committed {
            Ok(Ok(outcomes)) if outcomes.len() == callers.len() => {
                for (caller, outcome) in callers.into_iter().zip(outcomes) {
                    let _ = caller.send(outcome);
                }
            }
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => format!("the batch's transaction failed: {e}"),
                    Ok(Ok(_)) => "the batch's outcomes do not match its notes".to_owned(),
                    Err(e) => format!("the batch's commit panicked: {e}"),
                };
                tracing::error!(notes = callers.len(), %reason, "group commit failed");
                for caller in callers {
                    let _ = caller.send(Err(DbError::Batch(reason.clone())));
                }
            }
        }
    }
}
