//! The one error type handlers return, rendered as RFC 9457 problem+json. Internal causes are
//! logged with their chain and never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hark_api::problem::PROBLEM_CONTENT_TYPE;
use hark_api::{Problem, ProblemCode};

use crate::auth::AuthError;
use crate::blob::BlobError;
use crate::db::DbError;
use crate::delivery::DeliveryError;
use crate::ingest::IngestError;
use crate::notes::NoteError;
use crate::push::PushError;
use crate::webhooks::WebhookError;

#[derive(Debug)]
pub struct ApiError {
    pub code: ProblemCode,
    pub detail: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
    /// Extra headers, e.g. `Content-Range` on 416.
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            detail: detail.into(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    pub fn validation(detail: impl Into<String>) -> ApiError {
        Self::new(ProblemCode::Validation, detail)
    }

    pub fn not_found(what: &str) -> ApiError {
        Self::new(ProblemCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        Self::new(ProblemCode::Unauthorized, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        Self::new(ProblemCode::Forbidden, detail)
    }

    /// Logs the cause and answers a bare 500: the cause stays on the server.
    pub fn internal(cause: &dyn std::error::Error) -> ApiError {
        let mut chain = cause.to_string();
        let mut source = cause.source();
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "request failed");
        Self::new(
            ProblemCode::Internal,
            "the server could not complete the request",
        )
    }

    pub fn unavailable(cause: &dyn std::error::Error) -> ApiError {
        tracing::warn!(error = %cause, "dependency unavailable");
        Self::new(
            ProblemCode::Unavailable,
            "the server is temporarily unable to answer",
        )
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(Problem::new(self.code, self.detail))).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == ProblemCode::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> ApiError {
        match &err {
            DbError::Sqlx(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
                ApiError::unavailable(&err)
            }
            _ => ApiError::internal(&err),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(err: BlobError) -> ApiError {
        if err.is_not_found() {
            // The reconciler reports such a note as failed; say so rather than a bare 500.
            tracing::error!(error = %err, "a note's stored audio is missing");
            return ApiError::new(
                ProblemCode::NotFound,
                "the stored audio of this note is missing",
            );
        }
        ApiError::internal(&err)
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> ApiError {
        match err {
            AuthError::InvalidCredentials => ApiError::unauthorized(err.to_string()),
            AuthError::Throttled { retry_after } => ApiError {
                retry_after: Some(retry_after),
                ..ApiError::new(ProblemCode::TooManyRequests, err.to_string())
            },
            AuthError::InvalidToken(_) => ApiError::unauthorized(err.to_string()),
            AuthError::EmailTaken => ApiError::new(ProblemCode::Conflict, err.to_string()),
            AuthError::Invalid(detail) => ApiError::validation(detail),
            AuthError::Forbidden(detail) => ApiError::forbidden(detail),
            AuthError::Db(db) => db.into(),
            AuthError::Hashing(_) => ApiError::internal(&err),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> ApiError {
        let detail = err.to_string();
        match err {
            IngestError::TooLarge { .. } | IngestError::TooLong { .. } => {
                ApiError::new(ProblemCode::PayloadTooLarge, detail)
            }
            IngestError::Unsupported { .. } => ApiError::new(ProblemCode::UnsupportedAudio, detail),
            IngestError::UnknownOwner => ApiError::unauthorized(detail),
            IngestError::ChecksumMismatch { .. } => {
                ApiError::new(ProblemCode::ChecksumMismatch, detail)
            }
            IngestError::BadEncoding(_) | IngestError::Body(_) | IngestError::Invalid(_) => {
                ApiError::validation(detail)
            }
            IngestError::IdempotencyKeyReused(_) => {
                ApiError::new(ProblemCode::IdempotencyKeyReused, detail)
            }
            IngestError::ReplayedNoteGone => ApiError::new(ProblemCode::NotFound, detail),
            IngestError::Db(db) => db.into(),
            IngestError::Blob(blob) => blob.into(),
            IngestError::Io(io) => ApiError::internal(&io),
        }
    }
}

impl From<NoteError> for ApiError {
    fn from(err: NoteError) -> ApiError {
        let detail = err.to_string();
        match err {
            NoteError::NotFound(what) => ApiError::not_found(what),
            NoteError::RenditionMissing { .. } | NoteError::NotYet { .. } => {
                ApiError::new(ProblemCode::NotFound, detail)
            }
            NoteError::BadLink => ApiError::forbidden(detail),
            NoteError::Conflict(detail) => ApiError::new(ProblemCode::Conflict, detail),
            NoteError::Invalid(detail) => ApiError::validation(detail),
            NoteError::Db(db) => db.into(),
        }
    }
}

impl From<DeliveryError> for ApiError {
    fn from(err: DeliveryError) -> ApiError {
        let detail = err.to_string();
        match err {
            DeliveryError::UnknownRecipients(_) | DeliveryError::Invalid(_) => {
                ApiError::validation(detail)
            }
            DeliveryError::NotFound(what) => ApiError::not_found(what),
            DeliveryError::Forbidden(_) => ApiError::forbidden(detail),
            DeliveryError::ChannelTaken(_) => ApiError::new(ProblemCode::Conflict, detail),
            DeliveryError::Db(db) => db.into(),
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(err: WebhookError) -> ApiError {
        let detail = err.to_string();
        match err {
            WebhookError::Invalid(_) => ApiError::validation(detail),
            WebhookError::NotFound(what) => ApiError::not_found(what),
            WebhookError::Db(db) => db.into(),
        }
    }
}

impl From<PushError> for ApiError {
    fn from(err: PushError) -> ApiError {
        let detail = err.to_string();
        match err {
            PushError::Invalid(_) => ApiError::validation(detail),
            PushError::NotFound(what) => ApiError::not_found(what),
            PushError::Db(db) => db.into(),
        }
    }
}
