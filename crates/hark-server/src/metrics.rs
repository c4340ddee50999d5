//! Metric names, in one place, and the Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "hark_http_requests_total";
pub const HTTP_DURATION: &str = "hark_http_request_duration_seconds";
pub const UPLOAD_BYTES: &str = "hark_upload_bytes_total";
pub const PROBE_FAILURES: &str = "hark_probe_failures_total";
pub const BLOBS_COLLECTED: &str = "hark_blobs_collected_total";
/// Jobs finished, by `step` and `outcome` (done, skipped, failed, retried).
pub const JOBS: &str = "hark_jobs_total";
/// Time a pass over a note's audio took, by the `step`s it served.
pub const JOB_DURATION: &str = "hark_job_duration_seconds";
/// Jobs waiting to run.
pub const JOB_QUEUE_DEPTH: &str = "hark_job_queue_depth";
/// Events the relay published to the broker (each acknowledged by it).
pub const BROKER_PUBLISHED: &str = "hark_broker_published_total";
/// Publishes to the broker that failed; the relay waits, then tries again.
pub const BROKER_PUBLISH_FAILURES: &str = "hark_broker_publish_failures_total";

/// Notes the group committer committed in one transaction, per batch.
pub const COMMIT_BATCH_NOTES: &str = "hark_commit_batch_notes";
/// Time one flush of the blob store took, making a batch's blobs durable before its commit; it
/// runs alongside the transaction's statements.
pub const COMMIT_FLUSH_DURATION: &str = "hark_commit_flush_seconds";
/// Time a batch's commit took, from the start of its flush and transaction to its durable
/// commit.
pub const COMMIT_TRANSACTION_DURATION: &str = "hark_commit_transaction_seconds";

/// Reads of the shared cache, by `result`: hit, miss (the database answered and the answer was
/// stored) or unavailable (Redis down, slow or not trusted: the database answered).
pub const CACHE_READS: &str = "hark_cache_reads_total";

/// The process-wide recorder (the `metrics` facade has one global recorder), installed once.
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = with_buckets()
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is already installed; ours then stays empty.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Folds recorded histogram samples into their buckets every few seconds until `stop`: the
/// recorder keeps every sample until then, so a server nobody scrapes would grow without end.
pub async fn upkeep(handle: PrometheusHandle, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => handle.run_upkeep(),
        }
    }
}

/// Buckets of request and job durations.
const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of the group committer's steps, which take milliseconds.
const COMMIT_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// Buckets of batch sizes, up to the committer's largest batch.
const BATCH_NOTES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// The recorder's buckets (only an empty list of buckets is refused).
fn with_buckets() -> Result<PrometheusBuilder, BuildError> {
    let named = |name: &str| Matcher::Full(name.to_owned());
    PrometheusBuilder::new()
        .set_buckets(SECONDS)?
        .set_buckets_for_metric(named(COMMIT_FLUSH_DURATION), COMMIT_SECONDS)?
        .set_buckets_for_metric(named(COMMIT_TRANSACTION_DURATION), COMMIT_SECONDS)?
        .set_buckets_for_metric(named(COMMIT_BATCH_NOTES), BATCH_NOTES)
}
