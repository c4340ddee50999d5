//! Building and running the server: one process, with the API, its processing workers, its
//! webhook deliveries and push messages, its broker relay and its maintenance loop; and the
//! processes that take a part of that work elsewhere (`hark worker`, `hark notifier`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthService, SignedLinks, load_or_create_secret};
use crate::broker::{BrokerLink, Notifier, Relay};
use crate::cache::SharedCache;
use crate::config::Config;
use crate::db::Repos;
use crate::delivery::{DeliveryService, EventHub};
use crate::http::{AppState, Shared};
use crate::ingest::{Committer, Ingest};
use crate::maintenance::{Maintenance, clear_tmp_dir};
use crate::notes::NotesService;
use crate::pipeline::Pipeline;
use crate::pipeline::speech::Speech;
use crate::push::{KEY_FILE, PushService, load_key, load_or_create_key};
use crate::webhooks::WebhookService;

pub struct App {
    /// Held for the server's lifetime; released when it stops.
    _lock: std::fs::File,
    listener: TcpListener,
    state: AppState,
    maintenance: Maintenance,
    pipeline: Pipeline,
    relay: Option<Relay>,
}

impl App {
    /// Prepares everything and binds the listener (port 0 picks a free one).
    pub async fn build(config: Config) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        // One server per data directory: a second one would clear the first one's uploads.
        let lock = lock_data_dir(&config.data_dir)?;
        let stale = clear_tmp_dir(&config.tmp_dir()).context("clearing the temporary directory")?;
        if stale > 0 {
            tracing::info!(
                removed = stale,
                "removed temporary files of interrupted uploads"
            );
        }
        let mut repos = crate::db::connect(config.database_url.expose_secret(), true)
            .await
            .context("opening the database")?;
        if crate::db::exclusive(config.database_url.expose_secret(), &config.data_dir) {
            repos = repos.with_note_cache(&config.data_dir);
        }
        let cache = SharedCache::open(&config.cache);
        if let Some(cache) = &cache {
            repos = repos.with_shared_cache(cache.clone());
        }
        let store = crate::blob::open(&config).context("opening the blob store")?;
        let secret =
            load_or_create_secret(config.auth.jwt_secret.expose_secret(), &config.data_dir)
                .context("loading the signing secret")?;
        let auth = AuthService::new(repos.clone(), config.auth.clone(), &secret)?;
        let collector = Arc::new(Notify::new());
        let ingest = Ingest {
            committer: Committer::start(repos.notes.clone(), store.clone()),
            repos: repos.clone(),
            store: store.clone(),
            tmp_dir: config.tmp_dir(),
            max_bytes: config.limits.max_upload_bytes,
            max_duration_seconds: config.limits.max_duration_seconds,
        };
        let speech = Arc::new(Speech::load(&config.speech));
        let pipeline = Pipeline::new(
            repos.clone(),
            store.clone(),
            config.tmp_dir(),
            &config,
            speech.clone(),
        );
        let maintenance =
            Maintenance::new(&config, repos.clone(), store.clone(), collector.clone());
        maintenance.startup().await;
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let notes = NotesService::new(
            repos.clone(),
            ingest,
            Arc::new(SignedLinks::new(&secret)),
            collector,
            pipeline.clone(),
        );
        let delivery = DeliveryService::new(repos.clone(), Arc::new(EventHub::new(cache.clone())));
        let webhooks = WebhookService::new(repos.clone(), config.webhooks.clone())
            .context("making the webhooks' HTTP client")?;
        let vapid = load_or_create_key(
            config.push.vapid_private_key.expose_secret(),
            &config.data_dir,
        )
        .context("loading the VAPID key")?;
        let push = PushService::new(repos.clone(), vapid, &config.webhooks, config.push.clone())
            .context("making the push messages' HTTP client")?;
        let broker = config
            .broker
            .connection()
            .map(BrokerLink::new)
            .map(Arc::new);
        let relay = match &broker {
            Some(broker) => {
                let relay = Relay::new(repos.clone(), broker.clone());
                relay
                    .open()
                    .await
                    .context("opening the broker relay's position")?;
                Some(relay)
            }
            None => None,
        };
        let state = AppState::new(Shared {
            metrics: crate::metrics::handle(),
            config,
            repos,
            store,
            broker,
            cache,
            notes,
            delivery,
            webhooks,
            push,
            auth,
            speech,
        });
        Ok(App {
            _lock: lock,
            listener,
            state,
            maintenance,
            pipeline,
            relay,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn maintenance(&self) -> &Maintenance {
        &self.maintenance
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish (up to the
    /// configured grace) and stops the maintenance loop.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let background = tokio::spawn(self.maintenance.clone().run(stop.child_token()));
        let jobs = &self.state.config.jobs;
        let in_process_workers = if jobs.in_process {
            jobs.worker_count()
        } else {
            0
        };
        let workers = tokio::spawn(
            self.pipeline
                .clone()
                .run_workers(in_process_workers, stop.child_token()),
        );
        let events = tokio::spawn(
            self.state
                .delivery
                .hub()
                .clone()
                .follow(self.state.repos.clone(), stop.child_token()),
        );
        let hub = self.state.delivery.hub();
        // Otherwise `hark notifier` processes deliver webhooks.
        let webhooks = self.state.config.webhooks.in_process.then(|| {
            tokio::spawn(
                self.state
                    .webhooks
                    .clone()
                    .run(hub.clone(), stop.child_token()),
            )
        });
        // Otherwise `hark notifier` processes push, signing with the configured key.
        let push =
            self.state.config.push.in_process.then(|| {
                tokio::spawn(self.state.push.clone().run(hub.clone(), stop.child_token()))
            });
        let relay = self
            .relay
            .map(|relay| tokio::spawn(relay.run(hub.clone(), stop.child_token())));
        let metrics = tokio::spawn(crate::metrics::upkeep(
            self.state.metrics.clone(),
            stop.child_token(),
        ));
        let grace = Duration::from_secs(self.state.config.shutdown_grace_seconds);
        let router = crate::http::router(self.state.clone());
        let draining = stop.clone();
        let server = crate::http::serve::serve(self.listener, router, async move {
            shutdown.await;
            tracing::info!("shutting down: draining in-flight requests");
            draining.cancel();
        });
        let served = tokio::select! {
            () = server => Ok(()),
            () = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!("in-flight requests outlived the shutdown grace period");
                Ok(())
            }
        };
        stop.cancel();
        let _ = background.await;
        let _ = workers.await;
        let _ = events.await;
        for task in [webhooks, push, relay].into_iter().flatten() {
            let _ = task.await;
        }
        if let Some(cache) = &self.state.cache {
            cache.close();
        }
        let _ = metrics.await;
        served
    }
}

/// `hark worker`: processing workers alone, on a database other processes share, until
/// `shutdown` resolves (each worker finishes the pass it is in).
pub async fn run_workers(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let url = config.database_url.expose_secret();
    if crate::db::exclusive(url, &config.data_dir) {
        anyhow::bail!(
            "the database is a SQLite file in the data directory, which only `hark serve` may use \
             (it runs the workers itself); `hark worker` needs a shared database (PostgreSQL)"
        );
    }
    let mut repos = crate::db::connect(url, true)
        .await
        .context("opening the database")?;
    // Processing changes what inboxes show: the servers' shared cache must hear of it.
    let cache = SharedCache::open(&config.cache);
    if let Some(cache) = &cache {
        repos = repos.with_shared_cache(cache.clone());
    }
    let store = crate::blob::open(&config).context("opening the blob store")?;
    let scratch = WorkerScratch::create(&std::env::temp_dir())
        .context("making the worker's scratch directory")?;
    let speech = Arc::new(Speech::load(&config.speech));
    let pipeline = Pipeline::new(repos, store, scratch.dir.clone(), &config, speech);
    let stop = CancellationToken::new();
    let workers =
        tokio::spawn(pipeline.run_workers(config.jobs.worker_count(), stop.child_token()));
    shutdown.await;
    tracing::info!("shutting down: finishing the passes under way");
    stop.cancel();
    let _ = workers.await;
    if let Some(cache) = cache {
        cache.close();
    }
    Ok(())
}

/// `hark notifier`: webhook deliveries and push messages alone, for the events the broker
/// carries, on a database other processes share, until `shutdown` resolves (attempts under way
/// finish).
pub async fn run_notifier(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Some(broker) = config.broker.connection() else {
        anyhow::bail!(
            "no broker is configured: `hark notifier` delivers webhooks and push messages for the \
             events a broker carries; set [broker] url (or HARK_BROKER__URL) to amqp://... \
             (RabbitMQ) or nats://... (NATS JetStream), the same for `hark serve`"
        );
    };
    let url = config.database_url.expose_secret();
    if crate::db::exclusive(url, &config.data_dir) {
        anyhow::bail!(
            "the database is a SQLite file in the data directory, which only `hark serve` may use \
             (it delivers webhooks and push messages itself); `hark notifier` needs a shared \
             database (PostgreSQL)"
        );
    }
    let repos = crate::db::connect(url, true)
        .await
        .context("opening the database")?;
    let notifier = notifier(&config, repos, broker)?;
    let stop = CancellationToken::new();
    let notifier = tokio::spawn(notifier.run(stop.child_token()));
    shutdown.await;
    tracing::info!("shutting down: finishing the attempts under way");
    stop.cancel();
    let _ = notifier.await;
    Ok(())
}

/// The notifier `hark notifier` runs, consuming from `broker`. It pushes when it has the VAPID
/// key the servers sign with (`[push] vapid_private_key`, or a `vapid.key` in its data
/// directory), and must have it when push messages are left to notifiers (`[push] in_process =
/// false`); it never makes a key, which no browser would have subscribed to.
pub fn notifier(
    config: &Config,
    repos: Repos,
    broker: hark_broker::BrokerConfig,
) -> anyhow::Result<Notifier> {
    let webhooks = WebhookService::new(repos.clone(), config.webhooks.clone())
        .context("making the webhooks' HTTP client")?;
    let key = load_key(
        config.push.vapid_private_key.expose_secret(),
        &config.data_dir,
    )
    .context("loading the VAPID key")?;
    let push = match key {
        Some(key) => Some(
            PushService::new(repos, key, &config.webhooks, config.push.clone())
                .context("making the push messages' HTTP client")?,
        ),
        None if !config.push.in_process => anyhow::bail!(
            "no VAPID key: with [push] in_process = false `hark notifier` sends the push \
             messages, signed with the key browsers subscribed with; set [push] \
             vapid_private_key (HARK_PUSH__VAPID_PRIVATE_KEY) to the contents of `hark serve`'s \
             <data_dir>/{KEY_FILE}"
        ),
        None => {
            tracing::info!(
                "no VAPID key ([push] vapid_private_key): push messages are left to `hark serve`"
            );
            None
        }
    };
    Ok(Notifier::new(webhooks, push, broker))
}

/// A `hark worker`'s scratch directory, `hark-worker-<pid>` in the system's temporary
/// directory, locked for as long as the worker lives. A worker that is killed mid-pass leaves
/// its directory (a copy of an original, half-made renditions); the next worker to start on
/// the machine removes every such directory whose lock nobody holds.
struct WorkerScratch {
    dir: std::path::PathBuf,
    _lock: std::fs::File,
}

impl WorkerScratch {
    const PREFIX: &str = "hark-worker-";

    fn create(temp: &std::path::Path) -> std::io::Result<WorkerScratch> {
        Self::remove_abandoned(temp);
        let dir = temp.join(format!("{}{}", Self::PREFIX, std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let lock = std::fs::File::create(dir.join("lock"))?;
        lock.try_lock().map_err(std::io::Error::other)?;
        Ok(WorkerScratch { dir, _lock: lock })
    }

    /// Removes the scratch directories of workers that are gone (their lock is free).
    fn remove_abandoned(temp: &std::path::Path) {
        let Ok(entries) = std::fs::read_dir(temp) else {
            return;
        };
        for entry in entries.flatten() {
            if !entry
                .file_name()
                .to_string_lossy()
                .starts_with(Self::PREFIX)
            {
                continue;
            }
            let dir = entry.path();
            // No lock file: a worker is still making its directory.
            let Ok(lock) = std::fs::File::open(dir.join("lock")) else {
                continue;
            };
            if lock.try_lock().is_ok() {
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => {
                        tracing::info!(dir = %dir.display(), "removed the scratch directory of a worker that stopped")
                    }
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "could not remove an abandoned scratch directory")
                    }
                }
            }
        }
    }
}

impl Drop for WorkerScratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join("hark.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another hark server is using {}; stop it first",
            data_dir.display()
        )
    })?;
    Ok(file)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Logs to stderr as text or JSON; `RUST_LOG` sets the level (default `info`; the decoders only warn).
pub fn init_tracing(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,symphonia=warn,lofty=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
