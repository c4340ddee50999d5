//! Processing: every corpus file through the pipeline, renditions checked with ffprobe and
//! ffmpeg, a damaged file failing with its reason, reprocessing, the presentation shape, a
//! note deleted while its jobs run, and leases that expire and fence a worker that lost them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hark_api::{EventType, JobList, JobStatus, JobStep, Note, NoteStatus, Rendition};
use hark_client::UploadOptions;
use hark_server::db;
use hark_server::domain::Timestamp;
use hark_server::notes::effects;
use serde_json::Value;

use crate::helpers::{
    Backend, TestApp, TestUser, assert_problem, corpus, drop_pg_database, every_step_done,
    spawn_app, spawn_app_with, test_database,
};
use crate::repository::{new_note, new_user};

/// Polls the note until processing settles it (ready or failed).
pub async fn settled(user: &TestUser, id: &str) -> Note {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let note: Note = user
            .get(&format!("/api/v1/notes/{id}"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("note");
        if matches!(note.status, NoteStatus::Ready | NoteStatus::Failed) {
            return note;
        }
        assert!(
            Instant::now() < deadline,
            "note {id} still {:?}",
            note.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn upload(user: &TestUser, bytes: Vec<u8>, name: &str) -> Note {
    let options = UploadOptions {
        name: Some(name.into()),
        ..Default::default()
    };
    user.client
        .upload_bytes(bytes, &options)
        .await
        .expect("upload")
}

async fn jobs(user: &TestUser, id: &str) -> JobList {
    user.get(&format!("/api/v1/notes/{id}/jobs"))
        .send()
        .await
        .expect("jobs")
        .json()
        .await
        .expect("job list")
}

/// The events of one type about one note, read from the log.
pub async fn events_about(app: &TestApp, note: &str, kind: EventType) -> usize {
    use secrecy::ExposeSecret;
    let repos = db::connect(app.config.database_url.expose_secret(), false)
        .await
        .expect("database");
    let events = repos.events.events_after(0, 10_000).await.expect("events");
    events
        .iter()
        .filter(|e| e.data.kind() == kind && e.data.note_id() == note)
        .count()
}

/// The length a player presents, by ffprobe: its duration counts an MP3's encoder delay,
/// which it also reports as the start time.
fn ffprobe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=start_time,duration"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<f64> = text
        .trim()
        .split(',')
        .filter_map(|f| f.parse().ok())
        .collect();
    match fields[..] {
        [start, duration] => duration - start,
        _ => panic!("ffprobe gave no duration for {}: {text}", path.display()),
    }
}

fn ffmpeg_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

async fn every_corpus_file_is_processed(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let scratch = tempfile::tempdir().expect("scratch");
    for entry in hark_testkit::manifest() {
        let note = upload(&user, entry.bytes(), &entry.file).await;
        let note = settled(&user, &note.id).await;
        assert_eq!(
            note.status,
            NoteStatus::Ready,
            "{}: {:?}",
            entry.file,
            note.failure_reason
        );
        let listed = jobs(&user, &note.id).await;
        assert_eq!(
            listed.items.iter().map(|j| j.step).collect::<Vec<_>>(),
            JobStep::ALL.to_vec()
        );
        for job in &listed.items {
            let expected = match job.step {
                JobStep::Transcribe | JobStep::Correct => JobStatus::Skipped,
                _ => JobStatus::Done,
            };
            assert_eq!(job.status, expected, "{}: {job:?}", entry.file);
        }
        let names: Vec<&str> = note.renditions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["mp3", "opus"], "{}", entry.file);
        for rendition in &note.renditions {
            let response = user.get(&rendition.url).send().await.expect("rendition");
            assert_eq!(response.status(), 200, "{}", rendition.url);
            assert_eq!(
                response.headers()["content-type"].to_str().ok(),
                Some(rendition.mime.as_str())
            );
            let bytes = response.bytes().await.expect("body");
            assert_eq!(bytes.len() as u64, rendition.size_bytes);
            let path = scratch
                .path()
                .join(format!("{}.{}", entry.file, rendition.name.as_str()));
            std::fs::write(&path, &bytes).expect("write rendition");
            let measured = ffprobe_duration(&path);
            let tolerance = (0.003 * note.duration_seconds).max(0.030);
            assert!(
                (measured - note.duration_seconds).abs() <= tolerance,
                "{} {}: ffprobe {measured} s, note {} s",
                entry.file,
                rendition.name.as_str(),
                note.duration_seconds
            );
            assert_eq!(
                ffmpeg_errors(&path),
                "",
                "{} {}",
                entry.file,
                rendition.name.as_str()
            );
        }
        let waveform: Value = user
            .get(&format!("/api/v1/notes/{}/waveform", note.id))
            .send()
            .await
            .expect("waveform")
            .json()
            .await
            .expect("waveform json");
        let peaks = waveform["peaks"].as_array().expect("peaks");
        let expected = (note.duration_seconds * 20.0).ceil() as usize;
        assert!(
            peaks.len().abs_diff(expected) <= 1,
            "{}: {} peaks",
            entry.file,
            peaks.len()
        );
        assert!(
            peaks
                .iter()
                .all(|p| (0.0..=1.0).contains(&p.as_f64().unwrap_or(-1.0)))
        );
        assert_eq!(waveform["bars"].as_array().map(Vec::len), Some(100));
        let bbc: Value = user
            .get(&format!(
                "/api/v1/notes/{}/waveform?format=audiowaveform",
                note.id
            ))
            .send()
            .await
            .expect("audiowaveform")
            .json()
            .await
            .expect("audiowaveform json");
        assert_eq!(bbc["version"], 2);
        assert_eq!(bbc["bits"], 8);
        assert_eq!(
            bbc["data"].as_array().map(Vec::len),
            bbc["length"].as_u64().map(|n| n as usize * 2)
        );
        let loudness = note.loudness.expect("speech has a loudness");
        assert!(
            (-70.0..0.0).contains(&loudness.integrated_lufs),
            "{loudness:?}"
        );
        assert_eq!(events_about(&app, &note.id, EventType::NoteReady).await, 1);
    }
    app.stop().await;
}

/// What operators watch: jobs by step and outcome, pass durations, the queue's depth.
async fn processing_is_measured(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let note = upload(
        &user,
        std::fs::read(corpus().join("t1_pcm16_16k.wav")).expect("corpus"),
        "m.wav",
    )
    .await;
    assert_eq!(settled(&user, &note.id).await.status, NoteStatus::Ready);
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "hark_jobs_total{step=\"transcode\",outcome=\"done\"}",
        "hark_jobs_total{step=\"transcribe\",outcome=\"skipped\"}",
        "hark_job_duration_seconds_bucket{",
        "hark_job_queue_depth ",
    ] {
        assert!(text.contains(line), "{line} missing from {text}");
    }
    app.stop().await;
}

/// A file whose header and first second are fine, so the upload's probe accepts it, with
/// garbage after: the full decode finds it.
async fn a_damaged_file_fails_with_its_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let mut bytes = std::fs::read(corpus().join("t5_cbr64.mp3")).expect("corpus mp3");
    let half = bytes.len() / 2;
    bytes.truncate(half);
    bytes.extend((0..half).map(|i| (i * 7919 % 251) as u8));
    let note = upload(&user, bytes, "damaged.mp3").await;
    let note = settled(&user, &note.id).await;
    assert_eq!(note.status, NoteStatus::Failed);
    let reason = note.failure_reason.clone().unwrap_or_default();
    assert!(reason.contains("damaged"), "{reason}");
    let listed = jobs(&user, &note.id).await;
    let integrity = &listed.items[0];
    assert_eq!(integrity.step, JobStep::Integrity);
    assert_eq!(integrity.status, JobStatus::Failed);
    assert_eq!(events_about(&app, &note.id, EventType::NoteFailed).await, 1);
    assert_eq!(events_about(&app, &note.id, EventType::NoteReady).await, 0);
    // Not finished: the presentation refuses it.
    let response = user
        .get(&format!("/api/presentation/files/{}", note.id))
        .send()
        .await
        .expect("presentation");
    assert_problem(response, 400, "not_finished").await;
    app.stop().await;
}

async fn reprocess_runs_the_pipeline_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let stranger = app.user("eve@example.com").await;
    let bytes = std::fs::read(corpus().join("t2_opus24.ogg")).expect("corpus");
    let note = upload(&user, bytes, "again.ogg").await;
    let first = settled(&user, &note.id).await;
    assert_eq!(first.status, NoteStatus::Ready);
    let response = stranger
        .post(&format!("/api/v1/notes/{}/reprocess", note.id))
        .send()
        .await
        .expect("reprocess");
    assert_problem(response, 404, "not_found").await;
    let response = user
        .post(&format!("/api/v1/notes/{}/reprocess", note.id))
        .send()
        .await
        .expect("reprocess");
    assert_eq!(response.status(), 202);
    let again = settled(&user, &note.id).await;
    assert_eq!(again.status, NoteStatus::Ready);
    assert_eq!(
        again.renditions, first.renditions,
        "the same audio gives the same renditions"
    );
    assert_eq!(events_about(&app, &note.id, EventType::NoteReady).await, 2);
    app.stop().await;
}

async fn presentation_has_the_seed_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let stranger = app.user("eve@example.com").await;
    let bytes = std::fs::read(corpus().join("t1_pcm16_16k.wav")).expect("corpus");
    let options = UploadOptions {
        name: Some("episode.wav".into()),
        series: Some("The Series".into()),
        ..Default::default()
    };
    let note = user
        .client
        .upload_bytes(bytes, &options)
        .await
        .expect("upload");
    settled(&user, &note.id).await;
    let path = format!("/api/presentation/files/{}", note.id);
    let file: Value = user
        .get(&path)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let mut keys: Vec<&str> = file
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "fileId",
            "fileName",
            "mp3Path",
            "originalFilepath",
            "processingStatus",
            "segments",
            "seriesTitle"
        ]
    );
    assert_eq!(file["fileId"], note.id.as_str());
    assert_eq!(file["processingStatus"], "FINISHED");
    assert_eq!(file["fileName"], "episode.wav");
    assert_eq!(file["seriesTitle"], "The Series");
    assert_eq!(file["segments"], serde_json::json!([]));
    for field in ["mp3Path", "originalFilepath"] {
        let url = file[field].as_str().expect("url");
        let response = app
            .http
            .get(url)
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("fetch");
        assert_eq!(response.status(), 200, "{field}: {url}");
    }
    let response = stranger.get(&path).send().await.expect("stranger");
    assert_problem(response, 404, "not_found").await;
    let unknown = format!("/api/presentation/files/{}", uuid::Uuid::now_v7());
    assert_problem(
        user.get(&unknown).send().await.expect("unknown"),
        404,
        "not_found",
    )
    .await;
    app.stop().await;
}

/// Deleting a note cancels its jobs and releases its renditions: no blob outlives it.
async fn a_note_deleted_while_processing_leaves_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let processed = upload(
        &user,
        std::fs::read(corpus().join("t3_vorbis.ogg")).expect("corpus"),
        "done.ogg",
    )
    .await;
    settled(&user, &processed.id).await;
    let long = upload(
        &user,
        std::fs::read(corpus().join("long_pcm16.wav")).expect("corpus"),
        "long.wav",
    )
    .await;
    for id in [&processed.id, &long.id] {
        let response = user
            .delete(&format!("/api/v1/notes/{id}"))
            .send()
            .await
            .expect("delete");
        assert_eq!(response.status(), 204);
    }
    // The long note's pass may still be writing renditions that no row will ever reference;
    // the collector and the reconciler remove whatever is left once it has stopped.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut empty_checks = 0;
    while empty_checks < 3 {
        assert!(
            Instant::now() < deadline,
            "blobs left: {:?}",
            app.blob_files()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        app.maintenance.collect_garbage().await.expect("collect");
        app.maintenance
            .reconcile_with_grace(0)
            .await
            .expect("reconcile");
        empty_checks = if app.blob_files().is_empty() {
            empty_checks + 1
        } else {
            0
        };
    }
    app.stop().await;
}

/// Deleting notes at any moment of their processing (before a claim, mid-pass, as a pass
/// records its outputs) answers 204, also while notes of the same audio, which share their
/// renditions' blobs, are processed and deleted beside them: the transactions take the blobs'
/// rows in one order and never deadlock.
async fn deleting_at_any_moment_of_processing_succeeds(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.user("ann@example.com").await;
    let bytes = std::fs::read(corpus().join("t3_vorbis.ogg")).expect("corpus");
    for round in 0..20u64 {
        let first = upload(&user, bytes.clone(), "a.ogg").await;
        let second = upload(&user, bytes.clone(), "b.ogg").await;
        tokio::time::sleep(Duration::from_millis(round * 11 % 150)).await;
        let deletions =
            [&first, &second].map(|note| user.delete(&format!("/api/v1/notes/{}", note.id)).send());
        for (response, note) in futures_util::future::join_all(deletions)
            .await
            .into_iter()
            .zip([&first, &second])
        {
            let status = response.expect("delete").status();
            assert_eq!(status, 204, "round {round}, note {}", note.name);
        }
    }
    app.stop().await;
}

/// A rendition is served as the original is: ranges, validators and signed links, which name
/// the rendition they sign; before the pipeline made it, it is a 404 that says why.
async fn renditions_are_served_with_ranges_validators_and_signed_links(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.jobs.in_process = false).await;
    let user = app.user("ann@example.com").await;
    let note = upload(
        &user,
        std::fs::read(corpus().join("t3_vorbis.ogg")).expect("corpus"),
        "memo.ogg",
    )
    .await;
    let opus_path = format!("/api/v1/notes/{}/audio?rendition=opus", note.id);
    let early = user.get(&opus_path).send().await.expect("pending");
    assert_problem(early, 404, "not_found").await;
    assert!(app.pipeline.run_once().await.expect("pass"));

    let whole = user.get(&opus_path).send().await.expect("opus");
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let etag = whole.headers()["etag"].clone();
    let disposition = whole.headers()["content-disposition"]
        .to_str()
        .unwrap_or_default();
    assert!(disposition.contains("memo.ogg"), "{disposition}");
    let bytes = whole.bytes().await.expect("body");
    let original = user
        .get(&format!("/api/v1/notes/{}/audio", note.id))
        .send()
        .await
        .expect("original");
    assert_ne!(
        original.headers()["etag"],
        etag,
        "each file has its own validator"
    );

    let part = user
        .get(&opus_path)
        .header("range", "bytes=10-109")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().ok(),
        Some(format!("bytes 10-109/{}", bytes.len()).as_str())
    );
    assert_eq!(part.bytes().await.expect("part"), bytes[10..110]);
    let unchanged = user
        .get(&opus_path)
        .header("if-none-match", etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(unchanged.status(), 304);

    let link = user
        .client
        .create_link(
            &note.id,
            &hark_api::LinkRequest {
                expires_in: Some(60),
                rendition: Some(Rendition::Opus),
            },
        )
        .await
        .expect("link");
    let linked = app.http.get(&link.url).send().await.expect("linked");
    assert_eq!(linked.status(), 200);
    assert_eq!(linked.bytes().await.expect("body"), bytes);
    // The signature covers the rendition: the same link cannot fetch another file.
    for other in [
        link.url.replace("rendition=opus", "rendition=mp3"),
        link.url
            .replace("rendition=opus&", "")
            .replace("&rendition=opus", ""),
    ] {
        assert_ne!(other, link.url);
        let refused = app.http.get(&other).send().await.expect("altered link");
        assert_problem(refused, 403, "forbidden").await;
    }
    app.stop().await;
}

/// A collector may be deleting a rendition's bytes (no note used them any more) just as the
/// pass of another note with the same audio makes and references them again: the pass writes
/// them again once the collector is done.
async fn a_rendition_collected_as_a_pass_references_it_is_written_again(backend: Backend) {
    use hark_server::domain::{NoteId, UserId};
    use secrecy::ExposeSecret;
    // This test plays the collector; the server's own stays asleep.
    let app = spawn_app_with(backend, |c| {
        c.jobs.in_process = false;
        c.storage.gc_interval_seconds = 3600;
    })
    .await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let audio = std::fs::read(corpus().join("t3_vorbis.ogg")).expect("corpus");
    let first = upload(&ann, audio.clone(), "a.ogg").await;
    assert!(app.pipeline.run_once().await.expect("ann's pass"));
    let opus = ann
        .client
        .rendition(&first.id, Rendition::Opus)
        .await
        .expect("opus");
    let opus_blob = app
        .blob_files()
        .into_iter()
        .find(|file| std::fs::read(file).is_ok_and(|bytes| bytes == opus))
        .expect("the opus rendition's blob");
    let sha = opus_blob
        .file_name()
        .and_then(|name| name.to_str())
        .expect("named by its digest")
        .to_owned();
    // Bob's note of the same audio waits for a worker; Ann's goes, and with it the last
    // reference to the renditions.
    let second = upload(&bob, audio, "b.ogg").await;
    let repos = db::connect(app.config.database_url.expose_secret(), false)
        .await
        .expect("database");
    // (Deleted through the repository: the API's delete would wake the server's collector.)
    let deleted = repos
        .notes
        .delete_note(
            NoteId::parse(&first.id).expect("id"),
            UserId::parse(&ann.id).expect("id"),
            &effects::deleted,
        )
        .await
        .expect("delete");
    assert!(deleted.is_some());
    // A collector marks the Opus bytes. Bob's pass makes the same bytes and writes them to
    // the store, and the collector's delete lands after that write; it finishes later.
    assert!(repos.blobs.begin_blob_deletion(&sha).await.expect("mark"));
    std::fs::remove_file(&opus_blob).expect("delete the bytes");
    let collector = {
        let (repos, sha, opus_blob) = (repos.clone(), sha.clone(), opus_blob.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !opus_blob.exists() {
                assert!(Instant::now() < deadline, "the pass never wrote the bytes");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            std::fs::remove_file(&opus_blob).expect("delete the bytes");
            tokio::time::sleep(Duration::from_millis(300)).await;
            repos
                .blobs
                .finish_blob_deletion(&sha)
                .await
                .expect("finish");
        })
    };
    assert!(app.pipeline.run_once().await.expect("bob's pass"));
    collector.await.expect("collector");
    assert_eq!(settled(&bob, &second.id).await.status, NoteStatus::Ready);
    assert!(opus_blob.exists(), "the bytes were written again");
    assert!(!repos.blobs.blob_deleting(&sha).await.expect("mark"));
    assert_eq!(
        bob.client
            .rendition(&second.id, Rendition::Opus)
            .await
            .expect("bob's opus"),
        opus
    );
    app.maintenance.collect_garbage().await.expect("collect");
    assert!(opus_blob.exists(), "bob's note references them");
    app.stop().await;
}

/// Leases at the repository: a claim that stops renewing loses its jobs to the next claim once
/// the lease expires, and can then record nothing; the note's status follows its jobs.
async fn an_expired_lease_moves_the_jobs_to_another_worker(backend: Backend) {
    let (url, pg, _dir) = test_database(backend).await;
    let repos = db::connect(&url, true).await.expect("database");
    let owner = repos
        .users
        .create_user(new_user("ann@example.com"))
        .await
        .expect("user")
        .id;
    let note = new_note(owner, "a.wav", 'a', 1.0);
    repos
        .notes
        .insert_note(&note, None, &effects::created(&note))
        .await
        .expect("insert");
    let first = repos
        .jobs
        .claim_jobs(Timestamp::after(Duration::from_millis(300)))
        .await
        .expect("claim")
        .expect("jobs to claim");
    assert_eq!(first.note.id, note.id);
    assert_eq!(first.note.status, NoteStatus::Processing);
    assert_eq!(first.steps.len(), JobStep::ALL.len());
    assert!(first.steps.iter().all(|(_, attempt)| *attempt == 1));
    let none = repos
        .jobs
        .claim_jobs(Timestamp::after(Duration::from_secs(60)))
        .await;
    assert!(none.expect("claim").is_none(), "a held job is claimed once");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = repos
        .jobs
        .claim_jobs(Timestamp::after(Duration::from_secs(60)))
        .await
        .expect("claim")
        .expect("the expired jobs");
    assert!(second.steps.iter().all(|(_, attempt)| *attempt == 2));
    assert!(
        !repos
            .jobs
            .extend_lease(&first, Timestamp::after(Duration::from_secs(60)))
            .await
            .expect("extend")
    );
    let late = repos
        .jobs
        .finish_jobs(&first, &every_step_done(&first), &|s| {
            effects::settled(s, "http://h")
        })
        .await
        .expect("finish");
    assert!(late.recorded.is_empty(), "the first worker lost its lease");
    let finished = repos
        .jobs
        .finish_jobs(&second, &every_step_done(&second), &|s| {
            effects::settled(s, "http://h")
        })
        .await
        .expect("finish");
    assert_eq!(finished.recorded.len(), JobStep::ALL.len());
    let stored = repos
        .notes
        .note_by_id(note.id)
        .await
        .expect("read")
        .expect("note");
    assert_eq!(stored.status, NoteStatus::Ready);
    let ready = repos
        .events
        .events_after(0, 100)
        .await
        .expect("events")
        .iter()
        .filter(|e| e.data.kind() == EventType::NoteReady)
        .count();
    assert_eq!(ready, 1);
    drop(repos);
    if let Some(name) = pg {
        drop_pg_database(&name).await;
    }
}

backend_tests!(
    every_corpus_file_is_processed,
    a_damaged_file_fails_with_its_reason,
    reprocess_runs_the_pipeline_again,
    presentation_has_the_seed_shape,
    a_note_deleted_while_processing_leaves_nothing,
    deleting_at_any_moment_of_processing_succeeds,
    an_expired_lease_moves_the_jobs_to_another_worker,
    a_rendition_collected_as_a_pass_references_it_is_written_again,
    renditions_are_served_with_ranges_validators_and_signed_links,
    processing_is_measured,
);
