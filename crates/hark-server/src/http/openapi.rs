//! The OpenAPI document, which clients generate code from: its frame (info, tags, the
//! `bearer` scheme), the problem answers operations refer to, and what the handlers read
//! beyond their extractors (request headers, upload bodies). Each handler's
//! `#[utoipa::path]` lists its own parameters, bodies and statuses.

use hark_api::Problem;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi, ToResponse, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(title = "Hark", description = "A self-hosted voice-note and audio server."),
    modifiers(&BearerAuth),
    tags((name = "notes", description = "Upload, list, stream and share audio notes"),
         (name = "tokens", description = "Sign-in and token verification"),
         (name = "delivery", description = "Channels, sending notes, the inbox"),
         (name = "webhooks", description = "Signed HTTP deliveries of the caller's events"),
         (name = "push", description = "Web Push of the caller's events to their browsers"),
         (name = "speech", description = "Transcription compatible with OpenAI's API"),
         (name = "users", description = "Accounts"), (name = "api-keys", description = "Personal API keys"),
         (name = "compat", description = "Seed-compatible routes"), (name = "ops", description = "Health and metrics")),
    components(
        schemas(hark_api::Problem, hark_api::ProblemCode, hark_api::Sort, hark_api::AudioFormat,
                hark_api::WaveformFormat, hark_api::TranscriptVersion, hark_api::TranscriptFormat,
                hark_api::TranscriptSegment, hark_api::TranscriptWord, hark_api::TranscriptEdit,
                hark_api::TranscriptMatch),
        responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict, RequestTimeout,
                  PayloadTooLarge, UnsupportedMediaType, RangeNotSatisfiable, IdempotencyKeyReused,
                  TooManyRequests, Internal, Unavailable)
    )
)]
pub struct ApiDoc;

/// The `bearer` scheme every protected route names, with the scopes a service token needs.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT or API key")
                    .build(),
            ),
        );
    }
}

/// What attributes cannot say: adds the answers any request can get, whatever its route
/// (408 from the request timeout and 500 from the panic boundary, layers around every
/// route), and makes each HEAD operation, declared with its GET, an operation of its own
/// (an id of its own, answers without a body).
pub fn complete(openapi: &mut utoipa::openapi::OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        if let Some(head) = &mut item.head {
            head.operation_id = head.operation_id.take().map(|id| format!("head_{id}"));
            for response in head.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response.content.clear();
                }
            }
        }
        for operation in operations(item) {
            for (status, response) in [("408", "RequestTimeout"), ("500", "Internal")] {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(response)));
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// `validation`: a parameter, header or body is malformed or out of range.
/// Uploads also answer `checksum_mismatch` when `Content-Digest` does not match.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadRequest(pub Problem);

/// `unauthorized`: no credential, or one that is invalid or expired.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub struct Unauthorized(pub Problem);

/// `forbidden`: a service token without the scope this route names, a route for users only,
/// or a signed link that is tampered with or expired.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Forbidden(pub Problem);

/// `not_found`: nothing there, or nothing the caller may see (the same answer).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// `conflict`: it exists already.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Conflict(pub Problem);

/// `request_timeout`: the request took longer than `limits.request_timeout_seconds`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct RequestTimeout(pub Problem);

/// `payload_too_large`: the body is over its limit (`limits.max_json_bytes` for JSON;
/// `limits.max_upload_bytes`, also after gzip, and `limits.max_duration_seconds` for audio).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(pub Problem);

/// `unsupported_media_type`: a JSON body without `Content-Type: application/json`, or an
/// unknown `Content-Encoding`; `unsupported_audio`: the bytes are no audio the server accepts.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct UnsupportedMediaType(pub Problem);

/// `range_not_satisfiable`: the range starts past the end.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Content-Range" = String, description = "`bytes */<size>`"))
)]
pub struct RangeNotSatisfiable(pub Problem);

/// `idempotency_key_reused`: the key was first used for different content.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct IdempotencyKeyReused(pub Problem);

/// `too_many_requests`: too many failed sign-ins for this email or address.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u64, description = "Seconds until another try is counted"))
)]
pub struct TooManyRequests(pub Problem);

/// `internal`: the server failed; the cause is in its log, not in the answer.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Internal(pub Problem);

/// `unavailable`: the database or the store does not answer.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unavailable(pub Problem);

/// Raw audio bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct AudioBytes(pub Vec<u8>);

/// An upload as a form: the audio in `file`, the other fields wherever they stand. A `name`
/// field wins over the part's file name. (Form fields are never null, so the optional ones
/// are declared `required = false` rather than as `Option`, which utoipa makes nullable.)
#[derive(ToSchema)]
pub struct UploadForm {
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    #[schema(required = false, max_length = 255)]
    pub name: String,
    #[schema(required = false, max_length = 500)]
    pub title: String,
    #[schema(required = false, max_length = 500)]
    pub series: String,
    /// Also make a grammar-corrected transcript and corrected audio.
    #[schema(required = false)]
    pub correct: bool,
}

/// The request headers an upload reads. (Header parameters are documented with plain types
/// and `required = false`: utoipa would declare an `Option` header nullable.)
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct UploadHeaders {
    /// Makes a retried upload answer as the first one did (1 to 255 visible ASCII characters,
    /// optionally quoted). The same key with other content is 422.
    #[param(
        rename = "Idempotency-Key",
        required = false,
        max_length = 255,
        pattern = r#"^[\t -~]*[!#-~][\t -~]*$"#
    )]
    pub idempotency_key: String,
    /// RFC 9530: `sha-256=:<base64>:` of the content as sent (the gzip bytes, the whole form)
    /// or of the audio itself; 400 `checksum_mismatch` when it matches neither. Members of
    /// other algorithms are ignored.
    #[param(
        rename = "Content-Digest",
        required = false,
        pattern = r"^[\t ]*[A-Za-z0-9_-]+=:[A-Za-z0-9+/=]*:[\t ]*(,[\t ]*[A-Za-z0-9_-]+=:[A-Za-z0-9+/=]*:[\t ]*)*$"
    )]
    pub content_digest: String,
    #[param(rename = "Content-Encoding", required = false, inline)]
    pub content_encoding: ContentCoding,
    /// Names the note when neither `?name=` nor a form field does: `filename*` (RFC 8187)
    /// or `filename`.
    #[param(rename = "Content-Disposition", required = false)]
    pub content_disposition: String,
}

/// How an upload's body is encoded: `gzip` bodies are inflated (and the size limit applies
/// to the inflated bytes).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ContentCoding {
    Gzip,
    #[schema(rename = "x-gzip")]
    XGzip,
    Identity,
}

/// The request headers that serving audio reads.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct AudioHeaders {
    /// One `bytes=` range (206); several ranges or a malformed header get the whole file.
    #[param(rename = "Range", required = false)]
    pub range: String,
    /// 304 when the note's `ETag` is listed (weak comparison) or for `*`.
    #[param(rename = "If-None-Match", required = false)]
    pub if_none_match: String,
    /// The `ETag` or `Last-Modified` the client holds: `Range` is honoured only when it
    /// still matches.
    #[param(rename = "If-Range", required = false)]
    pub if_range: String,
}

/// What the upload routes (`POST /api/v1/notes`, `POST /post`) answer.
// Never built: it only describes the document, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(IntoResponses)]
pub enum UploadResponses {
    /// Stored, its metadata probed
    #[response(status = 201, headers(
        ("Location" = String, description = "The note's URL"),
        ("Idempotent-Replayed" = String, description = "`true` when this answers a retry with the same `Idempotency-Key`")))]
    Created(hark_api::Note),
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 413)]
    PayloadTooLarge(#[ref_response] PayloadTooLarge),
    #[response(status = 415)]
    UnsupportedMediaType(#[ref_response] UnsupportedMediaType),
    #[response(status = 422)]
    IdempotencyKeyReused(#[ref_response] IdempotencyKeyReused),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}

/// What the routes serving audio bytes (`/api/v1/notes/{id}/audio`, `/download`) answer.
#[derive(IntoResponses)]
pub enum AudioResponses {
    /// The audio
    #[response(status = 200, content_type = "audio/*", headers(
        ("ETag" = String), ("Last-Modified" = String), ("Accept-Ranges" = String, description = "`bytes`"),
        ("Cache-Control" = String), ("Content-Length" = u64),
        ("Content-Disposition" = String, description = "The note's name: `inline` on the audio route, `attachment` on `/download`")))]
    Whole(AudioBytes),
    /// The requested range
    #[response(status = 206, content_type = "audio/*", headers(
        ("Content-Range" = String, description = "`bytes <first>-<last>/<size>`"), ("ETag" = String),
        ("Last-Modified" = String), ("Accept-Ranges" = String), ("Cache-Control" = String),
        ("Content-Length" = u64), ("Content-Disposition" = String)))]
    Range(AudioBytes),
    /// Not modified: the `If-None-Match` validator matches
    #[response(status = 304, headers(("ETag" = String), ("Last-Modified" = String), ("Cache-Control" = String)))]
    NotModified,
    #[response(status = 400)]
    BadRequest(#[ref_response] BadRequest),
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    #[response(status = 404)]
    NotFound(#[ref_response] NotFound),
    #[response(status = 416)]
    RangeNotSatisfiable(#[ref_response] RangeNotSatisfiable),
    #[response(status = 503)]
    Unavailable(#[ref_response] Unavailable),
}
