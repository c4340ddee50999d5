//! Authentication: passwords, tokens, API keys, sign-in throttling and signed links.

mod keys;
mod links;
mod password;
mod sessions;
mod throttle;
mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use hark_api::{Role, TokenClaims, TokenResponse};

use crate::config::{AuthConfig, ServiceClient};
use crate::db::{DbError, NewApiKeyRecord, NewSession, NewUser, Repos};
use crate::domain::ids::ApiKeyId;
use crate::domain::{Email, Password, Timestamp, User, UserId};

pub use keys::load_or_create_secret;
pub use links::{LinkSignature, SignedLinks};
pub use sessions::{CsrfTokens, SESSION_COOKIE};
pub use throttle::Throttle;
pub use tokens::TokenKeys;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("too many failed sign-ins; try again in {retry_after} s")]
    Throttled { retry_after: u64 },
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    User(User),
    Service {
        client_id: String,
        scopes: Vec<String>,
    },
}

/// A credential as a request carries it.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A token or a personal API key, from `Authorization` or `?access_token=`.
    Bearer(String),
    /// A browser session's secret, from its cookie.
    Session(String),
}

/// A verified credential, before its account is loaded.
#[derive(Debug, Clone)]
pub enum Identified {
    /// A valid user token. Its user may have been deleted since it was issued: a row that
    /// references the user (a note they own, an inbox entry) proves the account exists, and
    /// otherwise [`AuthService::account`] tells.
    Token(UserId),
    /// An API key's user (looked up with the key) or a service.
    Principal(Principal),
}

/// What a service token may be granted. Users need none: they act on what they own or
/// received. A route that names no scope is for users only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read any note: its metadata, audio and signed links.
    NotesRead,
    /// Create accounts, as an admin would.
    UsersWrite,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::NotesRead, Scope::UsersWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::NotesRead => "notes:read",
            Scope::UsersWrite => "users:write",
        }
    }
}

impl Principal {
    /// Whether this caller may use a route that grants service tokens `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        match self {
            Principal::User(_) => true,
            Principal::Service { scopes, .. } => scopes.iter().any(|s| s == scope.as_str()),
        }
    }
}

/// A personal API key just made: the only time its secret is known.
pub struct CreatedKey {
    pub record: crate::db::ApiKeyRecord,
    pub key: String,
}

pub struct AuthService {
    repos: Repos,
    config: AuthConfig,
    tokens: TokenKeys,
    throttle: Throttle,
    csrf: CsrfTokens,
    /// Verified against when the email is unknown, so both failures take the same time.
    dummy_hash: String,
}

impl AuthService {
    pub fn new(
        repos: Repos,
        config: AuthConfig,
        secret: &[u8],
    ) -> Result<Arc<AuthService>, AuthError> {
        let throttle = Throttle::new(
            config.max_failures_per_email,
            config.max_failures_per_ip,
            std::time::Duration::from_secs(config.failure_window_seconds),
        );
        let dummy_hash = password::hash_blocking("dummy password for timing")?;
        Ok(Arc::new(AuthService {
            repos,
            tokens: TokenKeys::new(secret)?,
            csrf: CsrfTokens::new(secret),
            config,
            throttle,
            dummy_hash,
        }))
    }

    pub fn open_registration(&self) -> bool {
        self.config.open_registration
    }

    /// Creates a user with a hashed password.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<User, AuthError> {
        let email = Email::parse(email).map_err(AuthError::Invalid)?;
        let password = Password::parse(password).map_err(AuthError::Invalid)?;
        let password_hash = password::hash(password.expose()).await?;
        let new = NewUser {
            id: UserId::generate(),
            email: email.as_str().to_owned(),
            password_hash,
            role,
            created_at: Timestamp::now(),
        };
        self.repos.users.create_user(new).await.map_err(|e| {
            if e.is_conflict() {
                AuthError::EmailTaken
            } else {
                e.into()
            }
        })
    }

    pub async fn set_password(&self, user: UserId, password: &str) -> Result<bool, AuthError> {
        let password = Password::parse(password).map_err(AuthError::Invalid)?;
        let hash = password::hash(password.expose()).await?;
        let changed = self.repos.users.set_password(user, &hash).await?;
        // A new password signs every browser out.
        self.repos.sessions.delete_sessions_of(user).await?;
        Ok(changed)
    }

    /// Checks an email and password and issues a user token. Unknown emails and wrong
    /// passwords fail alike; repeated failures per email and per IP are throttled.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<TokenResponse, AuthError> {
        let user = self.check_password(email, password, ip).await?;
        Ok(self.tokens.issue_user(&user, self.config.token_ttl_seconds))
    }

    /// Signs a browser in, as [`AuthService::sign_in`] does: the session's cookie value.
    pub async fn sign_in_session(
        &self,
        email: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<String, AuthError> {
        let user = self.check_password(email, password, ip).await?;
        self.start_session(&user).await
    }

    /// A new browser session for `user`: its secret, the cookie's value.
    pub async fn start_session(&self, user: &User) -> Result<String, AuthError> {
        let secret = keys::generate_session();
        let now = Timestamp::now();
        // Browsers keep a cookie for 400 days at most.
        let ttl = self.config.session_ttl_seconds.min(400 * 86_400) as i64;
        self.repos
            .sessions
            .create_session(NewSession {
                id_hash: keys::lookup_hash(&secret),
                user_id: user.id,
                created_at: now,
                expires_at: now.plus_seconds(ttl),
            })
            .await?;
        Ok(secret)
    }

    /// Ends a browser session: its cookie no longer signs anyone in, wherever it was copied.
    pub async fn end_session(&self, secret: &str) -> Result<(), AuthError> {
        Ok(self
            .repos
            .sessions
            .delete_session(&keys::lookup_hash(secret))
            .await?)
    }

    /// How long a session cookie lasts, in seconds.
    pub fn session_ttl_seconds(&self) -> u64 {
        self.config.session_ttl_seconds
    }

    /// The CSRF token a page of this session sends with every state-changing request.
    pub fn csrf_token(&self, session: &str) -> String {
        self.csrf.token(session)
    }

    pub fn verify_csrf(&self, session: &str, given: &str) -> bool {
        self.csrf.verify(session, given)
    }

    /// The user with this email and password. Unknown emails and wrong passwords fail alike;
    /// repeated failures per email and per IP are throttled.
    async fn check_password(
        &self,
        email: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<User, AuthError> {
        let normalised = email.trim().to_lowercase();
        self.throttle.attempt(&normalised, ip)?;
        let user = match Email::parse(email) {
            Ok(email) => self.repos.users.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let hash = user
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let valid = password::verify(password, hash).await?;
        match user {
            Some(user) if valid => {
                self.throttle.succeeded(&normalised, ip);
                Ok(user)
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Issues a service token for a client from the configuration.
    pub async fn sign_in_service(
        &self,
        client_id: &str,
        secret: &str,
        ip: IpAddr,
    ) -> Result<TokenResponse, AuthError> {
        let key = format!("service:{client_id}");
        self.throttle.attempt(&key, ip)?;
        let client = self
            .config
            .service_clients
            .iter()
            .find(|c| c.client_id == client_id);
        let hash = client.map_or(self.dummy_hash.as_str(), |c: &ServiceClient| {
            c.secret_hash.as_str()
        });
        let valid = password::verify(secret, hash).await?;
        match client {
            Some(client) if valid => {
                self.throttle.succeeded(&key, ip);
                Ok(self.tokens.issue_service(
                    &client.client_id,
                    &client.scopes,
                    self.config.token_ttl_seconds,
                ))
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// The claims of a valid, unexpired token.
    pub fn verify_token(&self, token: &str) -> Result<TokenClaims, AuthError> {
        self.tokens.verify(token)
    }

    /// Resolves a credential (a token, a personal API key or a session) to its principal.
    pub async fn authenticate(&self, credential: &Credential) -> Result<Principal, AuthError> {
        match self.identify(credential).await? {
            Identified::Token(id) => Ok(Principal::User(self.account(id).await?)),
            Identified::Principal(principal) => Ok(principal),
        }
    }

    /// Verifies a bearer credential without loading a token's account, which a route can
    /// often prove to exist at no cost (see [`Identified::Token`]).
    pub async fn identify(&self, credential: &Credential) -> Result<Identified, AuthError> {
        let bearer = match credential {
            Credential::Bearer(bearer) => bearer,
            Credential::Session(secret) => {
                let user = self
                    .repos
                    .sessions
                    .user_by_session(&keys::lookup_hash(secret), Timestamp::now())
                    .await?;
                return user
                    .map(|user| Identified::Principal(Principal::User(user)))
                    .ok_or_else(|| {
                        AuthError::InvalidToken("the session has ended; sign in again".into())
                    });
            }
        };
        if keys::is_api_key(bearer) {
            let user = self
                .repos
                .api_keys
                .user_by_api_key(&keys::lookup_hash(bearer))
                .await?;
            return user
                .map(|user| Identified::Principal(Principal::User(user)))
                .ok_or_else(|| AuthError::InvalidToken("unknown API key".into()));
        }
        let claims = self.tokens.verify(bearer)?;
        if let Some(client_id) = claims.sub.strip_prefix("service:") {
            return Ok(Identified::Principal(Principal::Service {
                client_id: client_id.to_owned(),
                scopes: claims.scopes.unwrap_or_default(),
            }));
        }
        let id = UserId::parse(&claims.sub)
            .ok_or_else(|| AuthError::InvalidToken("bad subject".into()))?;
        Ok(Identified::Token(id))
    }

    /// The account a user token names: the user may have been deleted since it was issued.
    pub async fn account(&self, id: UserId) -> Result<User, AuthError> {
        let user = self.repos.users.user_by_id(id).await?;
        user.ok_or_else(|| AuthError::InvalidToken("unknown user".into()))
    }

    pub async fn create_api_key(&self, user: UserId, name: &str) -> Result<CreatedKey, AuthError> {
        let trimmed = name.trim();
        if trimmed.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(AuthError::Invalid(
                "name must be 1 to 100 characters, none of them control characters".into(),
            ));
        }
        let key = keys::generate_api_key();
        let record = NewApiKeyRecord {
            id: ApiKeyId::generate(),
            user_id: user,
            name: trimmed.to_owned(),
            prefix: key.chars().take(12).collect(),
            key_hash: keys::lookup_hash(&key),
            created_at: Timestamp::now(),
        };
        let record = self.repos.api_keys.create_api_key(record).await?;
        Ok(CreatedKey { record, key })
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// An HMAC-SHA256 keyed with `key` (any length is accepted).
fn keyed_mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"))
}

/// Hashes a secret for a service client's `secret_hash` (for `hark hash-secret`).
pub fn hash_secret(secret: &str) -> Result<String, AuthError> {
    password::hash_blocking(secret)
}
