//! Argon2id password hashes (PHC strings). A hash is deliberately slow and takes about 19 MiB
//! while it runs, so hashes run on threads of their own, one per core, taking turns: a burst of
//! sign-ins waits instead of taking memory by the gigabyte, and the memory each thread's
//! allocator keeps after a hash is reused by its next one rather than growing with every
//! thread of the blocking pool.

use std::sync::mpsc::{Sender, channel};
use std::sync::{LazyLock, Mutex};

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng;
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
                KEEPS_MEMORY.set(true);
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

thread_local! {
    /// The Argon2 working memory of this hashing thread, kept from one hash to the next: a
    /// fresh 19 MiB for every hash would leave the allocator holding several of them.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
    /// Whether this is a hashing thread. Any other thread (start-up, a command) hashes once in
    /// a while: its memory goes back when the hash is done rather than stay for the process's
    /// life.
    static KEEPS_MEMORY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The raw hash of `password` with `salt` into `out`, in this thread's kept memory.
fn hash_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = argon2.params().block_count();
    if !KEEPS_MEMORY.get() {
        let mut memory = vec![Block::default(); blocks];
        return argon2.hash_password_into_with_memory(password, salt, out, &mut memory);
    }
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// A new PHC string for `password`, with a random salt and the default parameters.
pub fn hash_blocking(password: &str) -> Result<String, AuthError> {
    let failed = |e: &dyn std::fmt::Display| AuthError::Hashing(e.to_string());
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hash_into(&argon2, password.as_bytes(), &salt, &mut out).map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` hashes to the PHC string `hash` (any Argon2 variant and parameters).
fn matches(password: &str, hash: &str) -> Option<bool> {
    let parsed = PasswordHash::new(hash).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    let version = match parsed.version {
        Some(version) => Version::try_from(version).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(&parsed).ok()?;
    let (salt, expected) = (parsed.salt?, parsed.hash?);
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    hash_into(&argon2, password.as_bytes(), salt.as_ref(), &mut out).ok()?;
    Some(Output::new(&out).ok()? == expected)
}

pub async fn hash(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    on_hashing_thread(move || hash_blocking(&password)).await?
}

/// `false` for a wrong password and for a hash that does not parse.
pub async fn verify(password: &str, hash: &str) -> Result<bool, AuthError> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    on_hashing_thread(move || matches(&password, &hash).unwrap_or(false)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        let ours = hash_blocking("correct horse battery").expect("hash");
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).expect("parses");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery")
            .expect("hash")
            .to_string();
        assert_eq!(matches("correct horse battery", &theirs), Some(true));
        assert_eq!(matches("correct horse battery!", &theirs), Some(false));
        assert_eq!(matches("correct horse battery", "not a hash"), None);
    }

    #[test]
    fn the_kept_memory_serves_other_parameters() {
        let small = Params::new(64, 1, 1, None).expect("params");
        let hash = Argon2::new(Algorithm::Argon2i, Version::V0x10, small)
            .hash_password(b"pw pw pw")
            .expect("hash")
            .to_string();
        // After a default-sized hash the kept memory is larger than this one needs.
        hash_blocking("warm up").expect("hash");
        assert_eq!(matches("pw pw pw", &hash), Some(true));
        assert_eq!(matches("pw pw px", &hash), Some(false));
    }
}
