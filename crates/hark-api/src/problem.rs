//! RFC 9457 problem details, with Hark's stable machine codes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type every error answer carries.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// A stable, machine-readable error code. Clients match on these, never on titles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    Validation,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedAudio,
    UnsupportedMediaType,
    ChecksumMismatch,
    IdempotencyKeyReused,
    RangeNotSatisfiable,
    RequestTimeout,
    TooManyRequests,
    NotFinished,
    Unavailable,
    Internal,
}

impl ProblemCode {
    /// The HTTP status this code is always sent with.
    pub fn status(self) -> u16 {
        match self {
            Self::Validation | Self::ChecksumMismatch | Self::NotFinished => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedAudio | Self::UnsupportedMediaType => 415,
            Self::RangeNotSatisfiable => 416,
            Self::RequestTimeout => 408,
            Self::IdempotencyKeyReused => 422,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// A short human title, the same for every occurrence of the code.
    pub fn title(self) -> &'static str {
        match self {
            Self::Validation => "Invalid request",
            Self::Unauthorized => "Authentication required",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not found",
            Self::Conflict => "Conflict",
            Self::MethodNotAllowed => "Method not allowed",
            Self::PayloadTooLarge => "Payload too large",
            Self::UnsupportedAudio => "Unsupported audio",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::ChecksumMismatch => "Checksum mismatch",
            Self::IdempotencyKeyReused => "Idempotency key reused",
            Self::RangeNotSatisfiable => "Range not satisfiable",
            Self::RequestTimeout => "Request timeout",
            Self::TooManyRequests => "Too many requests",
            Self::NotFinished => "Not finished",
            Self::Unavailable => "Service unavailable",
            Self::Internal => "Internal server error",
        }
    }

    /// The snake_case string form, as it appears in `code` and in `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "validation",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedAudio => "unsupported_audio",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::RangeNotSatisfiable => "range_not_satisfiable",
            Self::RequestTimeout => "request_timeout",
            Self::TooManyRequests => "too_many_requests",
            Self::NotFinished => "not_finished",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:hark:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ProblemCode,
}

impl Problem {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:hark:problem:{}", code.as_str()),
            title: code.title().to_owned(),
            status: code.status(),
            detail: detail.into(),
            code,
        }
    }
}
