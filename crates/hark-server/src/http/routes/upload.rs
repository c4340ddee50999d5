//! Receiving an upload: a raw body or a multipart form, optionally gzip-encoded, turned into
//! an `ingest` call. Shared by `POST /api/v1/notes` and the seed-compatible `POST /post`.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_compression::tokio::bufread::GzipDecoder;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_util::io::{ReaderStream, StreamReader};
use utoipa::IntoParams;

use crate::delivery::Targets;
use crate::domain::UserId;
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::http::views;
use crate::ingest::{IngestError, Spooled, UploadFields, UploadRequest, spool};
use hark_api::ProblemCode;

/// Upload fields given in the query string (form fields may give them too).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file name (the part after the last `/` or `\`, control characters removed);
    /// otherwise from the form part or `Content-Disposition`, else `<id>.<format>`.
    #[param(max_length = 255)]
    pub name: Option<String>,
    #[param(max_length = 500)]
    pub title: Option<String>,
    #[param(max_length = 500)]
    pub series: Option<String>,
    /// Recipients: comma-separated emails or user ids. Every one must exist, or nothing is
    /// stored or sent (400 naming the unknown ones).
    #[param(max_length = 4096)]
    pub to: Option<String>,
    /// A channel the caller created or belongs to: the note reaches its creator and members.
    pub channel: Option<String>,
    /// Also make a grammar-corrected transcript and corrected audio (`correct` step).
    pub correct: Option<bool>,
}

const MAX_FIELD_BYTES: usize = 4096;
/// What a multipart body may carry beyond the file part: framing and text fields.
const MAX_FORM_OVERHEAD: u64 = 1024 * 1024;

/// Spools the body, commits it, and answers 201 with `Location` and the note.
pub async fn receive_upload(
    state: &AppState,
    owner: UserId,
    query: UploadQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let headers = request.headers().clone();
    let gzip = content_encoding_is_gzip(&headers)?;
    let expected_sha256 = content_digest(&headers)?;
    // RFC 9530 digests the content as sent (gzip bytes, the whole form); hash that too when
    // a digest is given, so both a wire digest and a digest of the audio itself verify.
    let wire = expected_sha256.map(|_| Arc::new(Mutex::new(Sha256::new())));
    let request = match &wire {
        Some(hasher) => hash_body(request, hasher.clone()),
        None => request,
    };
    let from_query = UploadFields {
        name: query.name,
        title: query.title,
        series: query.series,
        correct: query.correct.unwrap_or(false),
    };
    let mut fields = from_query.clone();
    let mut delivery = (query.to, query.channel);
    let spooled = if is_multipart(&headers) {
        let max_bytes = state.notes.ingest().max_bytes;
        let over = Arc::new(AtomicBool::new(false));
        let request = form_request(request, gzip, max_bytes, over.clone());
        read_form(state, request, &mut fields, &mut delivery)
            .await
            .map_err(|e| {
                if over.load(Ordering::Relaxed) {
                    IngestError::TooLarge { limit: max_bytes }.into()
                } else {
                    e
                }
            })?
    } else {
        if fields.name.is_none() {
            fields.name = headers
                .get(header::CONTENT_DISPOSITION)
                .and_then(|v| v.to_str().ok())
                .and_then(disposition_filename);
        }
        let body = request.into_body().into_data_stream();
        spool(
            &state.notes.ingest().tmp_dir,
            body,
            gzip,
            state.notes.ingest().max_bytes,
        )
        .await?
    };
    // A query value that a form field replaced is refused all the same.
    from_query.check()?;
    let targets = Targets::from_fields(delivery.0.as_deref(), delivery.1.as_deref());
    let recipients = if targets.is_empty() {
        None
    } else {
        Some(state.delivery.resolve(owner, &targets).await?)
    };
    let request = UploadRequest {
        owner,
        fields,
        idempotency_key: idempotency_key(&headers)?,
        expected_sha256,
        wire_sha256: wire.map(|h| {
            h.lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .finalize()
                .into()
        }),
    };
    // Once the commit starts it runs to its end even if the client goes away or the request
    // times out: a note must never be committed without the blob check that follows it.
    let notes = state.notes.clone();
    let ingested = tokio::spawn(async move { notes.upload(spooled, request, recipients).await })
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let view = views::note(&ingested.note);
    let mut response = (StatusCode::CREATED, axum::Json(&view)).into_response();
    if let Ok(location) = view.links.this.parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if ingested.replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            header::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

fn content_encoding_is_gzip(headers: &HeaderMap) -> Result<bool, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    match value
        .to_str()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Ok("gzip" | "x-gzip") => Ok(true),
        Ok("identity") => Ok(false),
        _ => Err(ApiError::new(
            ProblemCode::UnsupportedMediaType,
            "Content-Encoding must be gzip or identity",
        )),
    }
}

/// The same request, its body fed through `hasher` on the way.
fn hash_body(request: Request, hasher: Arc<Mutex<Sha256>>) -> Request {
    let (parts, body) = request.into_parts();
    let hashed = body.into_data_stream().inspect_ok(move |chunk| {
        hasher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .update(chunk);
    });
    Request::from_parts(parts, Body::from_stream(hashed))
}

/// A multipart body, gunzipped when `gzip`, that fails once it passes the file cap plus room
/// for the framing and the text fields; `over` records that it did, so the answer is 413 and
/// not a malformed form. A gzip bomb is never inflated in full: multer reads its input until
/// it would wait, and inflating never waits, so inflated chunks are handed on one per turn,
/// as the network would, and the file part's own cap stops the upload early.
fn form_request(request: Request, gzip: bool, max_bytes: u64, over: Arc<AtomicBool>) -> Request {
    let (parts, body) = request.into_parts();
    let body = body.into_data_stream().map_err(io::Error::other);
    let body = if gzip {
        let inflated = GzipDecoder::new(tokio::io::BufReader::new(StreamReader::new(body)));
        ReaderStream::with_capacity(inflated, 64 * 1024)
            .then(|chunk| async move {
                tokio::task::yield_now().await;
                chunk
            })
            .boxed()
    } else {
        body.boxed()
    };
    let limit = max_bytes.saturating_add(MAX_FORM_OVERHEAD);
    let capped = futures_util::stream::unfold((body, 0u64), move |(mut body, seen)| {
        let over = over.clone();
        async move {
            if over.load(Ordering::Relaxed) {
                return None;
            }
            let chunk = match body.next().await? {
                Ok(chunk) => chunk,
                Err(e) => return Some((Err(e), (body, seen))),
            };
            let seen = seen.saturating_add(chunk.len() as u64);
            if seen > limit {
                over.store(true, Ordering::Relaxed);
                drain(&mut body).await;
                let too_large = io::Error::other(format!("the form exceeds {limit} bytes"));
                return Some((Err(too_large), (body, seen)));
            }
            Some((Ok(chunk), (body, seen)))
        }
    });
    Request::from_parts(parts, Body::from_stream(capped))
}

/// Reads and discards a bounded amount of what the client is still sending, so that a client
/// still writing reads the 413 instead of a reset (as the spool does for the file part).
async fn drain(body: &mut BoxStream<'static, io::Result<Bytes>>) {
    const DRAIN_BYTES: usize = 8 * 1024 * 1024;
    const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);
    let swallow = async {
        let mut drained = 0;
        while let Some(Ok(chunk)) = body.next().await {
            drained += chunk.len();
            if drained >= DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, swallow).await;
}

/// Reads a multipart form: spools the `file` part, collects the text fields wherever they
/// stand. A `name` field wins over the part's file name.
async fn read_form(
    state: &AppState,
    request: Request,
    fields: &mut UploadFields,
    delivery: &mut (Option<String>, Option<String>),
) -> Result<Spooled, ApiError> {
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::validation(format!("malformed multipart body: {}", e.body_text()))
    };
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::validation(e.body_text()))?;
    let mut spooled = None;
    let mut part_filename = None;
    while let Some(mut field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if spooled.is_some() {
                    return Err(ApiError::validation("only one file part is accepted"));
                }
                part_filename = field.file_name().map(str::to_owned);
                spooled = Some(
                    spool(
                        &state.notes.ingest().tmp_dir,
                        Box::pin(&mut field),
                        false,
                        state.notes.ingest().max_bytes,
                    )
                    .await?,
                );
            }
            "name" | "title" | "series" | "to" | "channel" | "correct" => {
                let mut value = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                    value.extend_from_slice(&chunk);
                    if value.len() > MAX_FIELD_BYTES {
                        return Err(ApiError::validation(format!(
                            "form field {name} is longer than {MAX_FIELD_BYTES} bytes"
                        )));
                    }
                }
                let value = String::from_utf8(value)
                    .map_err(|_| ApiError::validation(format!("form field {name} is not UTF-8")))?;
                match name.as_str() {
                    "name" => fields.name = Some(value),
                    "title" => fields.title = Some(value),
                    "series" => fields.series = Some(value),
                    "to" => delivery.0 = Some(value),
                    "channel" => delivery.1 = Some(value),
                    "correct" => {
                        fields.correct = value.parse::<bool>().map_err(|_| {
                            ApiError::validation("form field correct must be true or false")
                        })?;
                    }
                    _ => {}
                }
            }
            // Unknown parts are drained and ignored, as HTML forms send extra inputs.
            _ => while field.chunk().await.map_err(malformed)?.is_some() {},
        }
    }
    let spooled = spooled.ok_or_else(|| {
        ApiError::validation("the form has no file part (expected a part named \"file\")")
    })?;
    if fields.name.is_none() {
        fields.name = part_filename;
    }
    Ok(spooled)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::validation("Idempotency-Key must be ASCII"))?;
    let trimmed = key.trim().trim_matches('"').trim();
    if trimmed.is_empty() || key.len() > 255 {
        return Err(ApiError::validation(
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

/// The `sha-256` member of an RFC 9530 `Content-Digest`. Every member must be
/// `<algorithm>=:<base64>:`; those of other algorithms are ignored.
fn content_digest(headers: &HeaderMap) -> Result<Option<[u8; 32]>, ApiError> {
    let Some(value) = headers.get("content-digest") else {
        return Ok(None);
    };
    let invalid = || ApiError::validation("Content-Digest must look like sha-256=:<base64>:");
    let value = value.to_str().map_err(|_| invalid())?;
    let mut sha256 = None;
    for member in value.split(',') {
        let (algorithm, digest) = member.trim().split_once('=').ok_or_else(invalid)?;
        let digest = digest
            .strip_prefix(':')
            .and_then(|d| d.strip_suffix(':'))
            .ok_or_else(invalid)?;
        let named = !algorithm.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !named
            || !digest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        {
            return Err(invalid());
        }
        if algorithm.eq_ignore_ascii_case("sha-256") && sha256.is_none() {
            let bytes = STANDARD.decode(digest).map_err(|_| invalid())?;
            sha256 = Some(bytes.try_into().map_err(|_| invalid())?);
        }
    }
    Ok(sha256)
}

/// The file name of a `Content-Disposition` header: `filename*` (RFC 8187) over `filename`.
fn disposition_filename(value: &str) -> Option<String> {
    let mut plain = None;
    for param in value.split(';').skip(1) {
        let Some((key, val)) = param.trim().split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let encoded = val.trim().split_once("''").map(|(_, v)| v)?;
                return percent_encoding::percent_decode_str(encoded)
                    .decode_utf8()
                    .ok()
                    .map(|s| s.into_owned());
            }
            "filename" => plain = Some(val.trim().trim_matches('"').to_owned()),
            _ => {}
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_disposition_file_names() {
        assert_eq!(
            disposition_filename("attachment; filename=\"memo.wav\""),
            Some("memo.wav".into())
        );
        assert_eq!(
            disposition_filename("attachment; filename=a.wav; filename*=UTF-8''m%C3%A9mo.wav"),
            Some("mémo.wav".into())
        );
        assert_eq!(disposition_filename("inline"), None);
    }

    #[test]
    fn parses_content_digest() {
        let mut headers = HeaderMap::new();
        let digest = STANDARD.encode([7u8; 32]);
        headers.insert(
            "content-digest",
            format!("sha-512=:abc:, sha-256=:{digest}:")
                .parse()
                .expect("header"),
        );
        assert_eq!(content_digest(&headers).ok().flatten(), Some([7u8; 32]));
        headers.insert("content-digest", "sha-256=nope".parse().expect("header"));
        assert!(content_digest(&headers).is_err());
    }
}
