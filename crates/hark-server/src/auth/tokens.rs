//! JWTs (HS256) for users and service clients.

use std::collections::HashMap;
use std::sync::Mutex;

use hark_api::{TokenClaims, TokenResponse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use crate::domain::{Timestamp, User};

const ISSUER: &str = "hark";

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<hark_api::Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    exp: u64,
    iat: u64,
    iss: String,
}

/// Tokens remembered once verified; past that many the memory starts afresh.
const VERIFIED_TOKENS: usize = 4096;

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens whose signature was verified, with their claims: a client sends the same token
    /// on every request, and checking the signature (HMAC, base64, JSON) is most of what a
    /// cached download costs. Only the expiry needs checking again.
    verified: Mutex<HashMap<String, TokenClaims>>,
}

impl TokenKeys {
    /// Fails only for an empty secret, which HMAC keys may not be.
    pub fn new(secret: &[u8]) -> Result<TokenKeys, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        let empty = |_| AuthError::Invalid("the token signing secret is empty".into());
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret).map_err(empty)?,
            decoding: DecodingKey::from_secret(secret).map_err(empty)?,
            validation,
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn issue_user(&self, user: &User, ttl: u64) -> TokenResponse {
        self.issue(user.id.to_string(), Some(user.role), None, ttl)
    }

    pub fn issue_service(&self, client_id: &str, scopes: &[String], ttl: u64) -> TokenResponse {
        self.issue(
            format!("service:{client_id}"),
            None,
            Some(scopes.to_vec()),
            ttl,
        )
    }

    fn issue(
        &self,
        sub: String,
        role: Option<hark_api::Role>,
        scopes: Option<Vec<String>>,
        ttl: u64,
    ) -> TokenResponse {
        let now = Timestamp::now().unix_seconds().max(0) as u64;
        let claims = Claims {
            sub,
            role,
            scopes,
            exp: now + ttl,
            iat: now,
            iss: ISSUER.into(),
        };
        // Encoding a plain struct with an HMAC key cannot fail.
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default();
        TokenResponse {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: ttl,
        }
    }

    pub fn verify(&self, token: &str) -> Result<TokenClaims, AuthError> {
        let now = Timestamp::now().unix_seconds().max(0) as u64;
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(claims) = verified.get(token) {
            // As the first verification would: no leeway, expired from the second after `exp`.
            if claims.exp >= now {
                return Ok(claims.clone());
            }
            verified.remove(token);
            return Err(AuthError::InvalidToken("ExpiredSignature".into()));
        }
        drop(verified);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        let c = data.claims;
        let claims = TokenClaims {
            sub: c.sub,
            role: c.role,
            scopes: c.scopes,
            exp: c.exp,
            iat: c.iat,
        };
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }
}
