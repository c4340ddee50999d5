//! The shared cache: Redis in front of the database for the reads every client repeats (the
//! inbox, the newest note of a name), shared by every process on one database.
//!
//! Nothing stale is ever served, whoever changed what:
//! - Entries are keyed by a generation per user, and every change replaces the generations of
//!   the users it touches (after its commit, before it answers; each server's event follower
//!   does it again for changes other processes made). An entry read before a change is stored
//!   under the old generation and never found again, so a slow read cannot put back what a
//!   change removed.
//! - Generations are random tokens, never counters: a generation Redis lost (evicted, or a
//!   restart) comes back as a new token, not as a number an old entry was stored under.
//! - A process that could not replace a generation (Redis down or slow) stops using the cache
//!   and, once Redis answers again, replaces the epoch every key includes: the whole cache is
//!   rebuilt from the database rather than trusted.
//!
//! When Redis is down or slower than `timeout_ms`, reads go to the database; after a failure
//! the cache rests for a moment so requests do not each wait for the timeout.

mod repos;

pub use repos::{CachedDelivery, CachedJobs, CachedNotes};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use crate::config::CacheConfig;
use crate::domain::{Effects, UserId};

/// How long an entry lives at most: a user who stops reading leaves nothing behind for long.
const ENTRY_TTL_SECONDS: u64 = 600;
/// How long a generation outlives its last change: longer than any entry stored under it.
const GENERATION_TTL_SECONDS: u64 = 2 * ENTRY_TTL_SECONDS;
/// How long the cache rests after a failed read before Redis is asked again.
const REST_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// How long the (background) replacement of the epoch may take.
const EPOCH_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the epoch and the user's generation (making each when missing) and the entry stored
/// under both, in one round trip: `{epoch, generation, entry or false}`.
const READ: &str = r"
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[1], epoch)
end
local generation = redis.call('GET', KEYS[2])
if not generation then
  generation = ARGV[2]
  redis.call('SET', KEYS[2], generation, 'EX', ARGV[3])
end
local entry = redis.call('GET', ARGV[1] .. ':' .. epoch .. ':' .. generation)
return {epoch, generation, entry}
";

/// What a read found: the value, or the stamp a value read from the database is stored under.
pub enum Lookup<T> {
    Hit(T),
    Miss(Stamp),
    /// Redis did not answer (in time), or this process does not trust it right now.
    Unavailable,
}

/// Where an entry read from the database goes: its key as of the read's start.
pub struct Stamp {
    key: String,
}

pub struct SharedCache {
    connection: RwLock<Option<ConnectionManager>>,
    prefix: String,
    timeout: Duration,
    read: redis::Script,
    /// Set when a change's generations could not be replaced: nothing is read from Redis until
    /// the epoch has been replaced.
    untrusted: AtomicBool,
    /// Wakes the keeper to replace the epoch.
    distrust: tokio::sync::Notify,
    /// Milliseconds since `started` until which reads skip Redis after a failure.
    resting_until: AtomicU64,
    started: Instant,
    /// Ends the background connection.
    stop: CancellationToken,
}

use crate::metrics::CACHE_READS;

impl SharedCache {
    /// The cache `config` names; `None` when none is configured. It connects in the background:
    /// until Redis answers, reads go to the database.
    pub fn open(config: &CacheConfig) -> Option<Arc<SharedCache>> {
        use secrecy::ExposeSecret;
        let url = config.redis_url.expose_secret();
        if url.is_empty() {
            return None;
        }
        let client = match redis::Client::open(url) {
            Ok(client) => client,
            Err(e) => {
                // The configuration check refuses such URLs; keep serving from the database.
                tracing::error!(error = %e, "the cache's Redis URL is unusable");
                return None;
            }
        };
        let cache = Arc::new(SharedCache {
            connection: RwLock::new(None),
            prefix: config.key_prefix.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
            read: redis::Script::new(READ),
            // Whatever Redis holds was written before this process started, perhaps by a
            // process that missed changes: start from a new epoch.
            untrusted: AtomicBool::new(true),
            distrust: tokio::sync::Notify::new(),
            resting_until: AtomicU64::new(0),
            started: Instant::now(),
            stop: CancellationToken::new(),
        });
        tokio::spawn(cache.clone().keep(client, cache.stop.clone()));
        Some(cache)
    }

    /// Stops the background connection: the process is shutting down.
    pub fn close(&self) {
        self.stop.cancel();
    }

    /// Connects, then replaces the epoch whenever this process stops trusting the cache.
    async fn keep(self: Arc<Self>, client: redis::Client, stop: CancellationToken) {
        let settings = ConnectionManagerConfig::new()
            .set_connection_timeout(EPOCH_TIMEOUT)
            .set_response_timeout(EPOCH_TIMEOUT)
            .set_number_of_retries(1);
        let mut failures = 0u32;
        let connection = loop {
            match ConnectionManager::new_with_config(client.clone(), settings.clone()).await {
                Ok(connection) => break connection,
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(error = %e, "connecting to the cache's Redis failed; reads go to the database until it answers");
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        *self.connection.write().await = Some(connection.clone());
        loop {
            if self.untrusted.load(Ordering::SeqCst) {
                let epoch: redis::RedisResult<()> = within(
                    EPOCH_TIMEOUT,
                    redis::cmd("SET")
                        .arg(self.epoch_key())
                        .arg(token())
                        .query_async(&mut connection.clone()),
                )
                .await;
                match epoch {
                    Ok(()) => {
                        self.untrusted.store(false, Ordering::SeqCst);
                        tracing::info!("the cache starts a new epoch");
                    }
                    Err(e) => tracing::debug!(error = %e, "starting a new cache epoch failed"),
                }
            }
            let retry = if self.untrusted.load(Ordering::SeqCst) {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(3600)
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.distrust.notified() => {}
                () = tokio::time::sleep(retry) => {}
            }
        }
    }

    fn epoch_key(&self) -> String {
        format!("{}:epoch", self.prefix)
    }

    fn generation_key(&self, user: UserId) -> String {
        format!("{}:generation:{user}", self.prefix)
    }

    /// A connection, unless the cache is not to be used right now.
    async fn usable(&self) -> Option<ConnectionManager> {
        if self.untrusted.load(Ordering::SeqCst) {
            return None;
        }
        let now = self.started.elapsed().as_millis() as u64;
        if now < self.resting_until.load(Ordering::Relaxed) {
            return None;
        }
        self.connection.read().await.clone()
    }

    fn rest(&self) {
        let until = self.started.elapsed() + REST_AFTER_FAILURE;
        self.resting_until
            .store(until.as_millis() as u64, Ordering::Relaxed);
    }

    /// The entry `name` of `user`'s cache (`name` says what was read and with which
    /// parameters).
    pub async fn get<T: DeserializeOwned>(&self, user: UserId, name: &str) -> Lookup<T> {
        let Some(mut connection) = self.usable().await else {
            metrics::counter!(CACHE_READS, "result" => "unavailable").increment(1);
            return Lookup::Unavailable;
        };
        let entry = format!("{}:entry:{user}:{name}", self.prefix);
        let mut invocation = self.read.prepare_invoke();
        invocation
            .key(self.epoch_key())
            .key(self.generation_key(user))
            .arg(&entry)
            .arg(token())
            .arg(GENERATION_TTL_SECONDS);
        let read: redis::RedisResult<(String, String, Option<Vec<u8>>)> =
            within(self.timeout, invocation.invoke_async(&mut connection)).await;
        match read {
            Ok((epoch, generation, stored)) => {
                if let Some(value) = stored.and_then(|s| serde_json::from_slice(&s).ok()) {
                    metrics::counter!(CACHE_READS, "result" => "hit").increment(1);
                    tracing::trace!(%user, name, "cache hit");
                    return Lookup::Hit(value);
                }
                metrics::counter!(CACHE_READS, "result" => "miss").increment(1);
                tracing::trace!(%user, name, "cache miss");
                Lookup::Miss(Stamp {
                    key: format!("{entry}:{epoch}:{generation}"),
                })
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading from the cache failed; the database answers");
                metrics::counter!(CACHE_READS, "result" => "unavailable").increment(1);
                self.rest();
                Lookup::Unavailable
            }
        }
    }

    /// Stores what the database answered to a read that missed. Not awaited by the reader: a
    /// failure only means the next read misses too.
    pub fn put<T: Serialize>(self: &Arc<Self>, stamp: Stamp, value: &T) {
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        let cache = self.clone();
        tokio::spawn(async move {
            let Some(mut connection) = cache.usable().await else {
                return;
            };
            let stored: redis::RedisResult<()> = within(
                cache.timeout,
                redis::cmd("SET")
                    .arg(&stamp.key)
                    .arg(bytes)
                    .arg("EX")
                    .arg(ENTRY_TTL_SECONDS)
                    .query_async(&mut connection),
            )
            .await;
            if let Err(e) = stored {
                tracing::debug!(error = %e, "storing in the cache failed");
            }
        });
    }

    /// Forgets every entry of `users`: called after a change that touched them has committed,
    /// before it answers. When Redis cannot be told, nothing is read from it until a new epoch
    /// has begun.
    pub async fn forget_users(&self, users: impl IntoIterator<Item = UserId>) {
        let mut users: Vec<UserId> = users.into_iter().collect();
        if users.is_empty() {
            return;
        }
        // Not trusted: nothing is read from Redis before a new epoch, which leaves every entry
        // of this one unread; telling it would only hold the change up while Redis is slow.
        if self.untrusted.load(Ordering::SeqCst) {
            return;
        }
        users.sort_unstable();
        users.dedup();
        let connection = self.connection.read().await.clone();
        let Some(mut connection) = connection else {
            // Not connected yet: the epoch is replaced once it is, whatever happens here.
            return;
        };
        let mut pipe = redis::pipe();
        for user in &users {
            pipe.cmd("SET")
                .arg(self.generation_key(*user))
                .arg(token())
                .arg("EX")
                .arg(GENERATION_TTL_SECONDS)
                .ignore();
        }
        let replaced: redis::RedisResult<()> =
            within(self.timeout, pipe.query_async(&mut connection)).await;
        if let Err(e) = replaced {
            tracing::warn!(error = %e, "the cache could not be told of a change; it is rebuilt once Redis answers");
            self.distrust_all();
        }
    }

    /// Forgets everything: for the rare changes whose readers are not known.
    pub fn distrust_all(&self) {
        self.untrusted.store(true, Ordering::SeqCst);
        self.distrust.notify_one();
    }

    /// Forgets the entries of everyone the effects reach.
    pub async fn forget_effects(&self, effects: &[&Effects]) {
        let users: Vec<UserId> = effects.iter().flat_map(|e| touched_by(e)).collect();
        self.forget_users(users).await;
    }

    /// Whether Redis answers now, for readiness.
    pub async fn answers(&self) -> bool {
        let connection = self.connection.read().await.clone();
        let Some(mut connection) = connection else {
            return false;
        };
        let pong: redis::RedisResult<String> = within(
            EPOCH_TIMEOUT,
            redis::cmd("PING").query_async(&mut connection),
        )
        .await;
        pong.is_ok()
    }
}

/// The users whose cached reads an event changes: its audience, and for a listen the listener
/// too (the inbox shows when a note was listened to).
pub fn touched(data: &hark_api::EventData, audience: &[UserId]) -> Vec<UserId> {
    let mut users = audience.to_vec();
    if let hark_api::EventData::NoteListened(listened) = data
        && let Some(listener) = UserId::parse(&listened.listener_id)
    {
        users.push(listener);
    }
    users
}

/// The users whose cached reads committing `effects` changes: the audiences of its events and
/// the recipients of its deliveries (whose `note.received` the repository makes).
pub fn touched_by(effects: &Effects) -> Vec<UserId> {
    let events = effects
        .events
        .iter()
        .flat_map(|event| touched(&event.data, &event.audience));
    let deliveries = effects
        .deliveries
        .iter()
        .flat_map(|delivery| delivery.recipients.iter().copied());
    events.chain(deliveries).collect()
}

/// A fresh random generation or epoch.
fn token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `request`'s answer, or an error once `limit` has passed without one.
async fn within<T>(
    limit: Duration,
    request: impl Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(limit, request)
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "Redis did not answer in time",
            )))
        })
}
