//! Argon2id password hashes (PHC strings). Hashing is deliberately slow and takes about 19 MiB
//! for its duration, so it runs on the blocking pool, and no more hashes run at once than the
//! machine has cores: a burst of sign-ins waits its turn instead of taking memory by the
//! gigabyte (which the allocator would then keep).

use std::sync::{Arc, LazyLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use super::AuthError;

pub fn hash_blocking(password: &str) -> Result<String, AuthError> {
    // A random salt comes from the operating system.
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Turns for hashing: one per core. A turn is held by the hashing itself, so it lasts even
/// when the request that asked is gone.
static HASHING: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Arc::new(Semaphore::new(cores))
});

async fn turn() -> Result<OwnedSemaphorePermit, AuthError> {
    HASHING
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

pub async fn hash(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    let turn = turn().await?;
    tokio::task::spawn_blocking(move || {
        let hashed = hash_blocking(&password);
        drop(turn);
        hashed
    })
    .await
    .map_err(|e| AuthError::Hashing(e.to_string()))?
}

/// `false` for a wrong password and for a hash that does not parse.
pub async fn verify(password: &str, hash: &str) -> Result<bool, AuthError> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    let turn = turn().await?;
    tokio::task::spawn_blocking(move || {
        let valid = PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        drop(turn);
        valid
    })
    .await
    .map_err(|e| AuthError::Hashing(e.to_string()))
}
