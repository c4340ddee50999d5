//! Argon2id password hashes (PHC strings). A hash is deliberately slow and takes about 19 MiB
//! while it runs, so hashes run on threads of their own, one per core, taking turns: a burst of
//! sign-ins waits instead of taking memory by the gigabyte, and the memory each thread's
//! allocator keeps after a hash is reused by its next one rather than growing with every
//! thread of the blocking pool.

use std::sync::mpsc::{Sender, channel};
use std::sync::{LazyLock, Mutex};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::oneshot;

use super::AuthError;

type Work = Box<dyn FnOnce() + Send>;

/// The hashing threads' queue.
static HASHERS: LazyLock<Sender<Work>> = LazyLock::new(|| {
    let (queue, work) = channel::<Work>();
    let work = std::sync::Arc::new(Mutex::new(work));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for n in 0..cores {
        let work = work.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("hark-hash-{n}"))
            .spawn(move || {
                loop {
                    let next = work.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "starting a password hashing thread");
        }
    }
    queue
});

/// Runs `job` on a hashing thread, when its turn comes.
async fn on_hashing_thread<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AuthError> {
    let (done, result) = oneshot::channel();
    let work: Work = Box::new(move || {
        let _ = done.send(job());
    });
    HASHERS
        .send(work)
        .map_err(|_| AuthError::Hashing("no password hashing thread is running".into()))?;
    result
        .await
        .map_err(|_| AuthError::Hashing("a password hash stopped half-way".into()))
}

pub fn hash_blocking(password: &str) -> Result<String, AuthError> {
    // A random salt comes from the operating system.
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

pub async fn hash(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    on_hashing_thread(move || hash_blocking(&password)).await?
}

/// `false` for a wrong password and for a hash that does not parse.
pub async fn verify(password: &str, hash: &str) -> Result<bool, AuthError> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    on_hashing_thread(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
}
