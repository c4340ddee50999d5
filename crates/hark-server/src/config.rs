//! Configuration: embedded defaults, then a TOML file, then `HARK_*` environment, then flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The defaults, fully commented; `hark config` prints them.
pub const DEFAULT_CONFIG: &str = include_str!("../hark.default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: SecretString,
    pub public_url: String,
    pub log_format: String,
    pub shutdown_grace_seconds: u64,
    pub limits: Limits,
    pub auth: AuthConfig,
    pub storage: StorageConfig,
    pub jobs: JobsConfig,
    pub webhooks: WebhooksConfig,
    pub push: PushConfig,
    pub broker: BrokerConfig,
    pub cache: CacheConfig,
    pub speech: SpeechConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Limits {
    pub max_upload_bytes: u64,
    pub max_duration_seconds: f64,
    pub request_timeout_seconds: u64,
    pub upload_timeout_seconds: u64,
    pub body_idle_timeout_seconds: u64,
    pub max_json_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthConfig {
    pub jwt_secret: SecretString,
    pub token_ttl_seconds: u64,
    pub session_ttl_seconds: u64,
    pub open_registration: bool,
    pub max_failures_per_email: u32,
    pub max_failures_per_ip: u32,
    pub failure_window_seconds: u64,
    pub service_clients: Vec<ServiceClient>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceClient {
    pub client_id: String,
    pub secret_hash: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StorageConfig {
    pub blob_dir: PathBuf,
    pub orphan_grace_seconds: u64,
    pub gc_interval_seconds: u64,
    pub reconcile_interval_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobsConfig {
    /// Whether `hark serve` runs workers.
    pub in_process: bool,
    /// 0: one per CPU core.
    pub workers: usize,
    pub lease_seconds: u64,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhooksConfig {
    /// Whether `hark serve` makes and sends webhook deliveries. false: `hark notifier`
    /// processes do, from the broker's stream.
    pub in_process: bool,
    /// Whether webhooks may point at loopback, private, link-local and other non-public
    /// addresses (never, unless every user of the server is trusted with its network).
    pub allow_private_targets: bool,
    /// How long one attempt may take, from connecting to the answer's headers.
    pub timeout_seconds: f64,
    /// Attempts of one event before it is dead-lettered.
    pub max_attempts: u32,
    /// Retries wait a random time up to `retry_base_seconds * 2^(attempt - 1)`, at most
    /// `retry_max_seconds`.
    pub retry_base_seconds: f64,
    pub retry_max_seconds: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PushConfig {
    /// Whether `hark serve` makes and sends push messages itself. false: `hark notifier`
    /// processes do, from the broker's stream.
    pub in_process: bool,
    /// The VAPID private key, base64url (what `vapid.key` holds). Empty: `<data_dir>/vapid.key`,
    /// made on first start. Set it where several processes sign: servers sharing a database,
    /// notifiers on other machines.
    pub vapid_private_key: SecretString,
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact for push services' operators.
    pub subject: String,
    /// How long a push service keeps a message for an offline browser.
    pub ttl_seconds: u32,
}

/// The broker every event is published to, for consumers such as `hark notifier`.
#[derive(Debug, Clone, Deserialize)]
pub struct BrokerConfig {
    /// `amqp://...` (RabbitMQ) or `nats://...` (NATS JetStream); empty: no broker.
    pub url: SecretString,
    /// Prefix of every name on the broker: subjects are `<namespace>.<event type>`.
    pub namespace: String,
    /// How long connecting and each publish wait for the broker.
    pub timeout_seconds: f64,
}

impl BrokerConfig {
    /// The broker to connect to; `None` when none is configured.
    pub fn connection(&self) -> Option<hark_broker::BrokerConfig> {
        use secrecy::ExposeSecret;
        let url = self.url.expose_secret();
        if url.is_empty() {
            return None;
        }
        let mut broker = hark_broker::BrokerConfig::new(url).with_namespace(self.namespace.clone());
        broker.timeout = std::time::Duration::from_secs_f64(self.timeout_seconds);
        Some(broker)
    }

    /// A URL the broker port speaks, and a namespace that is a plain name on the broker.
    fn check(&self) -> Result<(), String> {
        use secrecy::ExposeSecret;
        let url = self.url.expose_secret();
        if url.is_empty() {
            return Ok(());
        }
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        if !matches!(scheme.to_ascii_lowercase().as_str(), "amqp" | "nats") {
            return Err(format!(
                "broker.url: the scheme {scheme:?} is no broker Hark speaks; use amqp://USER:PASS@HOST:5672/VHOST (RabbitMQ) or nats://HOST:4222 (NATS JetStream)"
            ));
        }
        let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if self.namespace.is_empty() || !self.namespace.chars().all(plain) {
            return Err(format!(
                "broker.namespace: {:?} must be letters, digits, '-' and '_'",
                self.namespace
            ));
        }
        if !(self.timeout_seconds.is_finite()
            && self.timeout_seconds > 0.0
            && self.timeout_seconds < 1e6)
        {
            return Err("broker.timeout_seconds: must be a positive number of seconds".into());
        }
        Ok(())
    }
}

/// The shared cache in front of the database's inbox and name lookups.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheConfig {
    /// `redis://HOST:6379/DB`; empty: no shared cache.
    pub redis_url: SecretString,
    /// Prefix of every key the cache writes.
    pub key_prefix: String,
    /// How long a read waits for Redis before the database answers instead.
    pub timeout_ms: u64,
}

impl CacheConfig {
    fn check(&self) -> Result<(), String> {
        use secrecy::ExposeSecret;
        let url = self.redis_url.expose_secret();
        if !url.is_empty() && redis::Client::open(url).is_err() {
            return Err(
                "cache.redis_url: not a Redis URL; use redis://HOST:6379/DB (or rediss:// with TLS)"
                    .into(),
            );
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(char::is_whitespace) {
            return Err(format!(
                "cache.key_prefix: {:?} must be a non-empty name without spaces",
                self.key_prefix
            ));
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            return Err("cache.timeout_ms: must be 1 to 60000 milliseconds".into());
        }
        Ok(())
    }
}

/// Speech recognition and the corrected audio.
#[derive(Debug, Clone, Deserialize)]
pub struct SpeechConfig {
    /// The Whisper model's directory; empty: `<data_dir>/models/whisper`.
    pub model_dir: PathBuf,
    /// CPU threads inference uses; 0: one per core.
    pub threads: usize,
    /// Pauses longer than this are shortened to it in the corrected audio (no synthesiser).
    pub max_pause_seconds: f64,
    pub tts: TtsConfig,
}

/// A speech synthesiser for the corrected audio: a command, or an OpenAI-compatible URL.
#[derive(Debug, Clone, Deserialize)]
pub struct TtsConfig {
    /// Reads the text on stdin, writes WAV to stdout (split on whitespace, no shell).
    pub command: String,
    /// `.../v1/audio/speech`.
    pub url: String,
    pub api_key: SecretString,
    pub model: String,
    pub voice: String,
}

impl SpeechConfig {
    /// Threads inference uses.
    pub fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    fn check(&self) -> Result<(), String> {
        if !(self.max_pause_seconds.is_finite() && (0.05..=60.0).contains(&self.max_pause_seconds))
        {
            return Err("speech.max_pause_seconds: must be 0.05 to 60 seconds".into());
        }
        if !self.tts.url.is_empty() && url::Url::parse(&self.tts.url).is_err() {
            return Err(format!("speech.tts.url: {:?} is not a URL", self.tts.url));
        }
        Ok(())
    }
}

impl JobsConfig {
    /// Workers to run in-process.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the layers in order and validates the result once.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "{} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        let figment = figment
            .merge(
                Env::prefixed("HARK_")
                    .split("__")
                    .ignore(&["config", "server", "token"]),
            )
            .merge(Serialized::defaults(overrides));
        let mut config: Config = figment.extract().map_err(Box::new)?;
        config.derive_defaults();
        config.validate()?;
        Ok(config)
    }

    /// Paths that follow `data_dir` unless set on their own.
    fn derive_defaults(&mut self) {
        use secrecy::ExposeSecret;
        if self.database_url.expose_secret().is_empty() {
            let path = self.data_dir.join("hark.db");
            self.database_url = format!("sqlite://{}", path.display()).into();
        }
        if self.storage.blob_dir.as_os_str().is_empty() {
            self.storage.blob_dir = self.data_dir.join("blobs");
        }
        if self.speech.model_dir.as_os_str().is_empty() {
            self.speech.model_dir = self.data_dir.join("models/whisper");
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        use secrecy::ExposeSecret;
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.listen.parse::<SocketAddr>().is_err() {
            return invalid(format!(
                "listen: {:?} is not an address like 127.0.0.1:8000",
                self.listen
            ));
        }
        let url = self.database_url.expose_secret();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return invalid("database_url: must start with sqlite:// or postgres://".into());
        }
        if self.limits.max_upload_bytes == 0 {
            return invalid("limits.max_upload_bytes: must be positive".into());
        }
        if self.limits.max_duration_seconds.is_nan() || self.limits.max_duration_seconds <= 0.0 {
            return invalid("limits.max_duration_seconds: must be positive".into());
        }
        let timeouts = [
            (
                "request_timeout_seconds",
                self.limits.request_timeout_seconds,
            ),
            ("upload_timeout_seconds", self.limits.upload_timeout_seconds),
            (
                "body_idle_timeout_seconds",
                self.limits.body_idle_timeout_seconds,
            ),
        ];
        if let Some((key, _)) = timeouts.iter().find(|(_, seconds)| *seconds == 0) {
            return invalid(format!("limits.{key}: must be positive"));
        }
        if self.jobs.lease_seconds < 3 {
            return invalid("jobs.lease_seconds: must be at least 3".into());
        }
        if self.jobs.max_attempts == 0 {
            return invalid("jobs.max_attempts: must be positive".into());
        }
        let webhooks = &self.webhooks;
        let durations = [
            ("timeout_seconds", webhooks.timeout_seconds),
            ("retry_base_seconds", webhooks.retry_base_seconds),
            ("retry_max_seconds", webhooks.retry_max_seconds),
        ];
        if let Some((key, _)) = durations
            .iter()
            .find(|(_, seconds)| !(seconds.is_finite() && *seconds > 0.0 && *seconds < 1e9))
        {
            return invalid(format!(
                "webhooks.{key}: must be a positive number of seconds"
            ));
        }
        if webhooks.max_attempts == 0 {
            return invalid("webhooks.max_attempts: must be positive".into());
        }
        if let Err(e) = hark_push::check_subject(&self.push.subject) {
            return invalid(format!("push.subject: {e}"));
        }
        let vapid_key = self.push.vapid_private_key.expose_secret();
        if !vapid_key.is_empty()
            && let Err(e) = hark_push::VapidKey::from_base64url(vapid_key)
        {
            return invalid(format!("push.vapid_private_key: {e}"));
        }
        self.broker.check().map_err(ConfigError::Invalid)?;
        self.cache.check().map_err(ConfigError::Invalid)?;
        self.speech.check().map_err(ConfigError::Invalid)?;
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return invalid(format!(
                "log_format: {:?} is neither text nor json",
                self.log_format
            ));
        }
        if !self.public_url.is_empty() && !self.public_url.starts_with("http") {
            return invalid("public_url: must be an http:// or https:// URL".into());
        }
        Ok(())
    }

    /// The temporary directory for uploads in flight; emptied at start-up.
    pub fn tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn defaults_follow_data_dir() {
        let config = Config::load(
            None,
            Overrides {
                data_dir: Some("/srv/hark".into()),
                ..Default::default()
            },
        )
        .expect("defaults load");
        assert_eq!(
            config.database_url.expose_secret(),
            "sqlite:///srv/hark/hark.db"
        );
        assert_eq!(config.storage.blob_dir, PathBuf::from("/srv/hark/blobs"));
        assert_eq!(config.listen, "127.0.0.1:8000");
        assert_eq!(config.limits.max_upload_bytes, 50 * 1024 * 1024);
    }

    #[test]
    fn the_push_subject_is_a_mailto_or_https_url() {
        let config = Config::load(None, Overrides::default()).expect("defaults load");
        assert_eq!(config.push.subject, "mailto:hark@localhost");
        let mut bad = config.clone();
        bad.push.subject = "hark@localhost".into();
        assert!(matches!(bad.validate(), Err(ConfigError::Invalid(_))));
        bad.push.subject = "https://hark.example.org/contact".into();
        assert!(bad.validate().is_ok());
    }

    #[test]
    fn a_configured_vapid_key_must_be_one() {
        let config = Config::load(None, Overrides::default()).expect("defaults load");
        assert!(config.push.vapid_private_key.expose_secret().is_empty());
        assert!(config.push.in_process);
        let mut configured = config.clone();
        configured.push.vapid_private_key = hark_push::VapidKey::generate().to_base64url().into();
        assert!(configured.validate().is_ok());
        configured.push.vapid_private_key = "not a key".to_owned().into();
        let Err(ConfigError::Invalid(message)) = configured.validate() else {
            panic!("an unusable key was accepted");
        };
        assert!(message.starts_with("push.vapid_private_key"), "{message}");
        assert!(
            !message.contains("not a key"),
            "the secret is not shown: {message}"
        );
    }

    #[test]
    fn a_bad_listen_address_is_refused() {
        let err = Config::load(
            None,
            Overrides {
                listen: Some("nowhere".into()),
                ..Default::default()
            },
        );
        assert!(matches!(err, Err(ConfigError::Invalid(_))));
    }

    fn with_broker(url: &str, namespace: &str) -> Result<Config, ConfigError> {
        let mut config = Config::load(None, Overrides::default()).expect("defaults load");
        config.broker.url = url.to_owned().into();
        config.broker.namespace = namespace.to_owned();
        config.validate().map(|()| config)
    }

    #[test]
    fn no_broker_is_configured_by_default() {
        let config = Config::load(None, Overrides::default()).expect("defaults load");
        assert!(config.broker.connection().is_none());
        assert!(config.webhooks.in_process);
    }

    #[test]
    fn a_broker_url_must_name_rabbitmq_or_nats() {
        let config = with_broker("nats://127.0.0.1:4222", "hark").expect("nats");
        let broker = config.broker.connection().expect("a broker");
        assert_eq!(broker.subject("note.created"), "hark.note.created");
        assert_eq!(broker.timeout, std::time::Duration::from_secs(5));
        assert!(with_broker("amqp://guest:guest@127.0.0.1:5672/%2f", "hark-1").is_ok());
        for url in ["redis://127.0.0.1:6379", "127.0.0.1:4222", "amqps://host/"] {
            let Err(ConfigError::Invalid(message)) = with_broker(url, "hark") else {
                panic!("{url} was accepted");
            };
            assert!(
                message.contains("amqp://") && message.contains("nats://"),
                "{message}"
            );
        }
        assert!(with_broker("nats://127.0.0.1:4222", "hark.events").is_err());
    }
}
