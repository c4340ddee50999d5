//! Serving a note's bytes: ranges, conditional requests, HEAD, and a safe Content-Disposition.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::blob::{self, BlobKey, CACHED_BLOB_BYTES};
use crate::domain::{Note, UserId};
use crate::http::AppState;
use crate::http::extract::{AppPath, AppQuery, AudioAccess};
use crate::http::openapi;
use crate::http::problem::ApiError;
use crate::notes::{self, AudioFile};
use hark_api::{ProblemCode, Rendition};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AudioQuery {
    /// A derived rendition instead of the original.
    pub rendition: Option<Rendition>,
    /// A token, for clients that cannot set headers (`<audio>`, EventSource).
    pub access_token: Option<String>,
    /// Signed-link expiry (Unix seconds). Anything that is not a genuine signature is 403.
    pub expires: Option<String>,
    /// Signed-link signature.
    pub sig: Option<String>,
}

/// The original bytes of a note (or a rendition), with `Range`, `If-None-Match`, `If-Range`
/// and `HEAD`. Authorised by a bearer token, `?access_token=`, or a signed link.
#[utoipa::path(method(get, head), path = "/api/v1/notes/{id}/audio", tag = "notes",
    params(("id" = String, Path, format = Uuid, description = "The note's id"), AudioQuery, openapi::AudioHeaders),
    responses(openapi::AudioResponses),
    security((), ("bearer" = ["notes:read"])))]
pub async fn get_note_audio(
    State(state): State<AppState>,
    method: Method,
    AppPath(id): AppPath<String>,
    AppQuery(query): AppQuery<AudioQuery>,
    access: AudioAccess,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rendition = query.rendition;
    let (note, reader) = match access {
        AudioAccess::Link(signature) => {
            let note = state.notes.linked(&id, rendition, signature).await?;
            (note, None)
        }
        AudioAccess::Reader(reader) => (reader.note(&state, &id).await?, reader.user()),
    };
    let audio = notes::audio_of(&note, rendition)?;
    let response = serve_note(&state, &audio, &headers, Disposition::Inline).await?;
    match reader {
        Some(user) if method == Method::GET && response.status() == StatusCode::OK => {
            Ok(listened_when_sent(&state, user, note, response))
        }
        _ => Ok(response),
    }
}

/// A recipient's whole download, once its last byte is handed on, is their first listen (if
/// it is one): the sender learns of it as they do of an explicit mark.
fn listened_when_sent(state: &AppState, user: UserId, note: Note, response: Response) -> Response {
    if note.owner_id == user {
        return response;
    }
    let (parts, body) = response.into_parts();
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let delivery = state.delivery.clone();
    let mut listen = Some(async move {
        if let Err(e) = delivery.downloaded(user, &note).await {
            tracing::warn!(note = %note.id, error = %e, "recording a listen");
        }
    });
    let mut sent = 0u64;
    // The server stops reading a body once Content-Length bytes are out, so the last chunk,
    // not the end of the stream, is what says it was all sent.
    let body = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            sent += bytes.len() as u64;
            if sent >= length
                && let Some(listen) = listen.take()
            {
                tokio::spawn(listen);
            }
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}

#[derive(Debug, Clone, Copy)]
pub enum Disposition {
    Inline,
    Attachment,
}

/// Answers with a note's bytes, honouring the request's conditional and range headers.
pub async fn serve_note(
    state: &AppState,
    audio: &AudioFile,
    request: &HeaderMap,
    disposition: Disposition,
) -> Result<Response, ApiError> {
    let size = audio.size_bytes;
    let etag = format!("\"{}\"", audio.sha256);
    let last_modified = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(audio.created_at.unix_seconds().max(0) as u64),
    );
    let mut headers = HeaderMap::new();
    insert(&mut headers, header::ETAG, &etag);
    insert(&mut headers, header::LAST_MODIFIED, &last_modified);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, must-revalidate"),
    );
    if etag_matches(request.get(header::IF_NONE_MATCH), &etag) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    insert(&mut headers, header::CONTENT_TYPE, &audio.mime);
    insert(
        &mut headers,
        header::CONTENT_DISPOSITION,
        &content_disposition(disposition, &audio.name),
    );
    let honour_range = match request.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        Some(validator) => validator == etag || validator == last_modified,
        None => true,
    };
    let range = match request.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(spec) if honour_range => parse_range(spec, size),
        _ => RangeRequest::Full,
    };
    let (status, start, end) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, size),
        RangeRequest::Partial(start, end) => {
            insert(
                &mut headers,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{}/{size}", end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        RangeRequest::Unsatisfiable => {
            return Err(ApiError::new(
                ProblemCode::RangeNotSatisfiable,
                format!("the note has {size} bytes"),
            )
            .with_header(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            ));
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    let key = BlobKey::parse(&audio.sha256)?;
    let body = if end == start {
        Body::empty()
    } else if size <= CACHED_BLOB_BYTES {
        // One buffer, shared with the store's cache: no copy per answer.
        let bytes = state.store.read(&key).await?;
        Body::from(blob::slice(&bytes, start..end, &key)?)
    } else {
        Body::from_stream(state.store.read_range(&key, start..end).await?)
    };
    Ok((status, headers, body).into_response())
}

fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// `If-None-Match` uses the weak comparison: `W/"x"` matches `"x"`.
fn etag_matches(header: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    Full,
    /// `[start, end)`.
    Partial(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range. A malformed header, or several ranges, is ignored (RFC 9110 allows
/// serving the whole representation instead).
pub fn parse_range(spec: &str, size: u64) -> RangeRequest {
    let Some(ranges) = spec.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if ranges.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = ranges.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (true, true) => RangeRequest::Full,
        (true, false) => match parse(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial(size.saturating_sub(n), size),
            None => RangeRequest::Full,
        },
        (false, _) => {
            let Some(start) = parse(first) else {
                return RangeRequest::Full;
            };
            let end = if last.is_empty() {
                Some(u64::MAX)
            } else {
                parse(last)
            };
            match end {
                None => RangeRequest::Full,
                Some(end) if end < start => RangeRequest::Full,
                Some(_) if start >= size => RangeRequest::Unsatisfiable,
                Some(end) => RangeRequest::Partial(start, end.saturating_add(1).min(size)),
            }
        }
    }
}

/// RFC 6266: an ASCII `filename` with quotes, backslashes and control characters replaced,
/// plus `filename*` (RFC 8187) when the name is not ASCII.
pub fn content_disposition(disposition: Disposition, name: &str) -> String {
    const ATTR: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let kind = match disposition {
        Disposition::Inline => "inline",
        Disposition::Attachment => "attachment",
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_ascii() && !name.chars().any(|c| c.is_ascii_control()) {
        format!("{kind}; filename=\"{ascii}\"")
    } else {
        format!(
            "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
            utf8_percent_encode(name, ATTR)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-0", 10), Partial(0, 1));
        assert_eq!(parse_range("bytes=2-", 10), Partial(2, 10));
        assert_eq!(parse_range("bytes=-3", 10), Partial(7, 10));
        assert_eq!(parse_range("bytes=-30", 10), Partial(0, 10));
        assert_eq!(parse_range("bytes=5-100", 10), Partial(5, 10));
        assert_eq!(parse_range("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 10), Full);
        assert_eq!(parse_range("bytes=0-1,3-4", 10), Full);
        assert_eq!(parse_range("items=0-1", 10), Full);
        assert_eq!(parse_range("bytes=x-1", 10), Full);
    }

    #[test]
    fn dispositions_are_safe() {
        assert_eq!(
            content_disposition(Disposition::Attachment, "memo.wav"),
            "attachment; filename=\"memo.wav\""
        );
        assert_eq!(
            content_disposition(Disposition::Inline, "say \"hi\".wav"),
            "inline; filename=\"say _hi_.wav\""
        );
        assert_eq!(
            content_disposition(Disposition::Inline, "mémo.ogg"),
            "inline; filename=\"m_mo.ogg\"; filename*=UTF-8''m%C3%A9mo.ogg"
        );
    }
}
