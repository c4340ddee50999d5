//! The processing pipeline: workers that claim a note's queued jobs from the database, run
//! them in one pass over its audio (see `steps`), and record what they made. Workers run in
//! `hark serve` and in `hark worker` processes on other machines alike: the queue in the
//! database is all they share, so a worker that dies leaves only a lease that expires.

mod background;
pub mod speech;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::blob::{BlobKey, BlobStore};
use hark_api::{JobStep, Rendition, TranscriptVersion};

use crate::config::{Config, JobsConfig};
use crate::db::{DbError, Repos};
use crate::domain::{Claim, Finish, StepOutcome, Timestamp};
use crate::maintenance::restore_collected_blob;
use crate::metrics::{JOB_DURATION, JOB_QUEUE_DEPTH, JOBS};
use crate::notes::effects;

/// How often an idle worker looks at the queue without being woken: for jobs queued by other
/// nodes, retries that became due and leases that expired.
const POLL: Duration = Duration::from_secs(1);
/// The longest a retry waits.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Db(#[from] DbError),
}

#[derive(Clone)]
pub struct Pipeline {
    repos: Repos,
    store: Arc<dyn BlobStore>,
    /// Where a pass copies the audio and writes the renditions.
    scratch: PathBuf,
    settings: JobsConfig,
    /// Wakes an idle worker when this process queues jobs.
    wake: Arc<Notify>,
    speech: Arc<speech::Speech>,
    /// What URLs in events start with (`public_url`, or the listen address).
    public_base: String,
}

impl Pipeline {
    pub fn new(
        repos: Repos,
        store: Arc<dyn BlobStore>,
        scratch: PathBuf,
        config: &Config,
        speech: Arc<speech::Speech>,
    ) -> Pipeline {
        let public_base = if config.public_url.is_empty() {
            format!("http://{}", config.listen)
        } else {
            config.public_url.trim_end_matches('/').to_owned()
        };
        Pipeline {
            repos,
            store,
            scratch,
            settings: config.jobs.clone(),
            wake: Arc::new(Notify::new()),
            speech,
            public_base,
        }
    }

    /// The speech model and rules the workers use.
    pub fn speech(&self) -> &Arc<speech::Speech> {
        &self.speech
    }

    /// Tells an idle worker that jobs were queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs `count` workers until `stop`; each finishes the pass it is in first.
    pub async fn run_workers(self, count: usize, stop: CancellationToken) {
        let workers: Vec<_> = (0..count)
            .map(|_| tokio::spawn(self.clone().work(stop.clone())))
            .collect();
        let depth = tokio::spawn(self.clone().report_queue_depth(stop.clone()));
        for worker in workers {
            let _ = worker.await;
        }
        let _ = depth.await;
    }

    async fn work(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            match self.run_once().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "the job queue failed; trying again"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Claims and runs the jobs of one note; `false` when none was claimable.
    pub async fn run_once(&self) -> Result<bool, PipelineError> {
        let lease = Duration::from_secs(self.settings.lease_seconds);
        let Some(claim) = self.repos.jobs.claim_jobs(Timestamp::after(lease)).await? else {
            return Ok(false);
        };
        let started = std::time::Instant::now();
        let renew = self.keep_lease(&claim, lease);
        let correcting_alone = claim.steps.iter().any(|(s, _)| *s == JobStep::Correct)
            && !claim.steps.iter().any(|(s, _)| *s == JobStep::Transcribe);
        let earlier = if correcting_alone {
            let stored = self
                .repos
                .jobs
                .transcripts(&[claim.note.id], TranscriptVersion::Original)
                .await?;
            stored.into_iter().next().map(|(_, transcript)| transcript)
        } else {
            None
        };
        let ran = tokio::select! {
            ran = steps::run(&claim, self.store.as_ref(), &self.scratch, &self.speech, earlier) => ran,
            () = renew => Finish::default().into(),
        };
        let finish = self.with_retries(&claim, ran.finish);
        let base = self.public_base.as_str();
        let finished = self
            .repos
            .jobs
            .finish_jobs(&claim, &finish, &|s| effects::settled(s, base))
            .await?;
        // Renditions of a note deleted (or reprocessed) meanwhile: their bytes belong to no
        // note, unless another note has the same audio.
        let unrecorded = finish.renditions.iter().filter(|r| {
            let step = match r.name {
                Rendition::Opus | Rendition::Mp3 => JobStep::Transcode,
                Rendition::Corrected => JobStep::Correct,
            };
            !finished.recorded.contains(&step)
        });
        for rendition in unrecorded {
            let discarded = crate::maintenance::delete_blob(
                &self.repos,
                self.store.as_ref(),
                &rendition.sha256,
                true,
            )
            .await;
            if let Err(e) = discarded {
                tracing::warn!(blob = %rendition.sha256, error = %e, "discarding a rendition failed; the reconciler will");
            }
        }
        // Renditions whose bytes a collector was deleting as they were referenced: written
        // again from the pass's files once it is done.
        for sha256 in &finished.blobs_being_deleted {
            let file = ran.files.as_ref().and_then(|files| files.rendition(sha256));
            let restored = match (BlobKey::parse(sha256), file) {
                (Ok(key), Some(file)) => {
                    restore_collected_blob::<anyhow::Error>(
                        &self.repos,
                        self.store.as_ref(),
                        &key,
                        file,
                    )
                    .await
                }
                _ => Err(anyhow::anyhow!("the pass has no file with these bytes")),
            };
            if let Err(e) = restored {
                tracing::error!(blob = %sha256, note = %claim.note.id, error = %e, "a rendition's bytes were collected and could not be written again");
            }
        }
        let steps: Vec<&str> = claim.steps.iter().map(|(step, _)| step.as_str()).collect();
        metrics::histogram!(JOB_DURATION, "steps" => steps.join(","))
            .record(started.elapsed().as_secs_f64());
        for (step, outcome) in &finish.outcomes {
            let recorded = finished.recorded.contains(step);
            metrics::counter!(JOBS, "step" => step.as_str(), "outcome" => outcome_name(outcome, recorded))
                .increment(1);
        }
        Ok(true)
    }

    /// Renews the claim's lease until the claim is lost (then resolves: the pass is dropped,
    /// as another worker may hold the jobs by now); never resolves while it holds.
    async fn keep_lease(&self, claim: &Claim, lease: Duration) {
        loop {
            tokio::time::sleep(lease / 3).await;
            match self
                .repos
                .jobs
                .extend_lease(claim, Timestamp::after(lease))
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(note = %claim.note.id, "the note's jobs were taken away (deleted or reprocessed)");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "renewing a job lease failed"),
            }
        }
    }

    /// Turns a retry past the last attempt into a failure, and spaces retries out.
    fn with_retries(&self, claim: &Claim, mut finish: Finish) -> Finish {
        for (step, outcome) in &mut finish.outcomes {
            let StepOutcome::Retry { error, .. } = outcome else {
                continue;
            };
            let attempts = claim
                .steps
                .iter()
                .find(|(s, _)| s == step)
                .map_or(1, |(_, attempts)| *attempts);
            *outcome = if attempts >= self.settings.max_attempts {
                StepOutcome::Failed(format!(
                    "{} failed {attempts} times; the last error: {error}",
                    step.as_str()
                ))
            } else {
                StepOutcome::Retry {
                    error: error.clone(),
                    retry_at: Timestamp::after(backoff(attempts)),
                }
            };
        }
        finish
    }

    async fn report_queue_depth(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    if let Ok(depth) = self.repos.jobs.queue_depth().await {
                        metrics::gauge!(JOB_QUEUE_DEPTH).set(depth as f64);
                    }
                }
            }
        }
    }
}

/// Exponential, with jitter so that many retries do not come back together.
fn backoff(attempts: u32) -> Duration {
    let base = Duration::from_secs(1 << attempts.min(16)).min(MAX_BACKOFF);
    base.mul_f64(rand::rng().random_range(0.5..1.0))
}

fn outcome_name(outcome: &StepOutcome, recorded: bool) -> &'static str {
    match outcome {
        _ if !recorded => "lost",
        StepOutcome::Done => "done",
        StepOutcome::Skipped(_) => "skipped",
        StepOutcome::Failed(_) => "failed",
        StepOutcome::Retry { .. } => "retried",
    }
}
