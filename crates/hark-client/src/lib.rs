//! A typed client for Hark's HTTP API, over `hark-api`'s wire types. The CLI and the
//! integration tests both use it, so the tests exercise what users run.

use std::path::Path;

use bytes::Bytes;
use futures_util::TryStreamExt;
use hark_api::{
    ApiKeyList, Channel, ChannelList, CreatedApiKey, Credentials, InboxPage, InboxQuery, JobList,
    LinkRequest, ListNotesQuery, NewApiKey, NewChannel, Note, NoteList, Problem, Rendition,
    SendRequest, SendResult, ServiceCredentials, SignedLink, TokenClaims, TokenResponse, User,
};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem document.
    #[error("{} ({}): {}", .0.title, .0.status, .0.detail)]
    Api(Problem),
    /// The server answered something that is not the expected type or a problem.
    #[error("unexpected answer {status}: {body}")]
    Unexpected { status: u16, body: String },
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The HTTP status of an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api(p) => Some(p.status),
            ClientError::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Optional fields of an upload.
#[derive(Debug, Default, Clone)]
pub struct UploadOptions {
    pub name: Option<String>,
    pub title: Option<String>,
    pub series: Option<String>,
    /// Recipients: emails or user ids.
    pub to: Vec<String>,
    /// A channel to deliver to.
    pub channel: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8000`).
    pub fn new(base: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            token: None,
            http: reqwest::Client::new(),
        }
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn register(&self, email: &str, password: &str) -> Result<User, ClientError> {
        let body = Credentials {
            email: email.into(),
            password: password.into(),
        };
        json(
            self.request(reqwest::Method::POST, "/api/v1/users")
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Result<TokenResponse, ClientError> {
        let body = Credentials {
            email: email.into(),
            password: password.into(),
        };
        json(
            self.request(reqwest::Method::POST, "/token")
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    pub async fn sign_in_service(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<TokenResponse, ClientError> {
        let body = ServiceCredentials {
            client_id: client_id.into(),
            client_secret: secret.into(),
        };
        json(
            self.request(reqwest::Method::POST, "/token/s2s")
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    pub async fn verify_token(&self) -> Result<TokenClaims, ClientError> {
        json(
            self.request(reqwest::Method::GET, "/token/verify")
                .send()
                .await?,
        )
        .await
    }

    pub async fn me(&self) -> Result<User, ClientError> {
        json(
            self.request(reqwest::Method::GET, "/api/v1/users/me")
                .send()
                .await?,
        )
        .await
    }

    /// Uploads bytes held in memory as a raw body.
    pub async fn upload_bytes(
        &self,
        bytes: impl Into<Bytes>,
        options: &UploadOptions,
    ) -> Result<Note, ClientError> {
        let request = self
            .upload_request(options)
            .header("content-type", "application/octet-stream")
            .body(bytes.into());
        json(request.send().await?).await
    }

    /// Streams a file as a raw body, calling `progress` with the bytes sent so far.
    pub async fn upload_file(
        &self,
        path: &Path,
        options: &UploadOptions,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<Note, ClientError> {
        let file = tokio::fs::File::open(path).await?;
        let size = file.metadata().await?.len();
        let mut options = options.clone();
        if options.name.is_none() {
            options.name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        }
        let mut sent = 0u64;
        let stream = ReaderStream::new(file).inspect_ok(move |chunk| {
            sent += chunk.len() as u64;
            progress(sent);
        });
        let request = self
            .upload_request(&options)
            .header("content-type", "application/octet-stream")
            .header("content-length", size)
            .body(reqwest::Body::wrap_stream(stream));
        json(request.send().await?).await
    }

    fn upload_request(&self, options: &UploadOptions) -> RequestBuilder {
        let to = (!options.to.is_empty()).then(|| options.to.join(","));
        let query: Vec<(&str, &str)> = [
            ("name", &options.name),
            ("title", &options.title),
            ("series", &options.series),
            ("to", &to),
            ("channel", &options.channel),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
        self.request(reqwest::Method::POST, "/api/v1/notes")
            .query(&query)
    }

    pub async fn list_notes(&self, query: &ListNotesQuery) -> Result<NoteList, ClientError> {
        json(
            self.request(reqwest::Method::GET, "/api/v1/notes")
                .query(query)
                .send()
                .await?,
        )
        .await
    }

    pub async fn note(&self, id: &str) -> Result<Note, ClientError> {
        json(
            self.request(reqwest::Method::GET, &format!("/api/v1/notes/{id}"))
                .send()
                .await?,
        )
        .await
    }

    pub async fn delete_note(&self, id: &str) -> Result<(), ClientError> {
        empty(
            self.request(reqwest::Method::DELETE, &format!("/api/v1/notes/{id}"))
                .send()
                .await?,
        )
        .await
    }

    /// The note's original bytes, in memory.
    pub async fn audio(&self, id: &str) -> Result<Bytes, ClientError> {
        let response = ok(self
            .request(reqwest::Method::GET, &format!("/api/v1/notes/{id}/audio"))
            .send()
            .await?)
        .await?;
        Ok(response.bytes().await?)
    }

    /// Delivers an owned note to more recipients.
    pub async fn send_note(
        &self,
        id: &str,
        request: &SendRequest,
    ) -> Result<SendResult, ClientError> {
        json(
            self.request(reqwest::Method::POST, &format!("/api/v1/notes/{id}/send"))
                .json(request)
                .send()
                .await?,
        )
        .await
    }

    pub async fn create_channel(&self, name: &str) -> Result<Channel, ClientError> {
        let body = NewChannel {
            name: name.to_owned(),
        };
        json(
            self.request(reqwest::Method::POST, "/api/v1/channels")
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    pub async fn channels(&self) -> Result<ChannelList, ClientError> {
        json(
            self.request(reqwest::Method::GET, "/api/v1/channels")
                .send()
                .await?,
        )
        .await
    }

    /// Adds a member (email or user id) to a channel the caller created.
    pub async fn add_member(&self, channel: &str, member: &str) -> Result<Channel, ClientError> {
        json(
            self.request(reqwest::Method::PUT, &member_path(channel, member))
                .send()
                .await?,
        )
        .await
    }

    pub async fn remove_member(&self, channel: &str, member: &str) -> Result<(), ClientError> {
        empty(
            self.request(reqwest::Method::DELETE, &member_path(channel, member))
                .send()
                .await?,
        )
        .await
    }

    /// A page of the inbox; with `query.wait`, a long-poll.
    pub async fn inbox(&self, query: &InboxQuery) -> Result<InboxPage, ClientError> {
        json(
            self.request(reqwest::Method::GET, "/api/v1/inbox")
                .query(query)
                .send()
                .await?,
        )
        .await
    }

    pub async fn mark_listened(&self, note_id: &str) -> Result<(), ClientError> {
        empty(
            self.request(
                reqwest::Method::POST,
                &format!("/api/v1/inbox/{note_id}/listened"),
            )
            .send()
            .await?,
        )
        .await
    }

    /// One of the note's renditions, in memory.
    pub async fn rendition(&self, id: &str, rendition: Rendition) -> Result<Bytes, ClientError> {
        let response = ok(self
            .request(reqwest::Method::GET, &format!("/api/v1/notes/{id}/audio"))
            .query(&[("rendition", rendition.as_str())])
            .send()
            .await?)
        .await?;
        Ok(response.bytes().await?)
    }

    /// The note's processing jobs.
    pub async fn jobs(&self, id: &str) -> Result<JobList, ClientError> {
        json(
            self.request(reqwest::Method::GET, &format!("/api/v1/notes/{id}/jobs"))
                .send()
                .await?,
        )
        .await
    }

    /// Streams the note's original bytes into a file; returns how many were written.
    pub async fn download_to(&self, id: &str, target: &Path) -> Result<u64, ClientError> {
        let response = ok(self
            .request(reqwest::Method::GET, &format!("/api/v1/notes/{id}/audio"))
            .send()
            .await?)
        .await?;
        let mut file = tokio::fs::File::create(target).await?;
        let mut stream = response.bytes_stream();
        let mut written = 0;
        while let Some(chunk) = stream.try_next().await? {
            file.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        file.sync_all().await?;
        Ok(written)
    }

    pub async fn create_link(
        &self,
        id: &str,
        request: &LinkRequest,
    ) -> Result<SignedLink, ClientError> {
        json(
            self.request(reqwest::Method::POST, &format!("/api/v1/notes/{id}/link"))
                .json(request)
                .send()
                .await?,
        )
        .await
    }

    pub async fn create_api_key(&self, name: &str) -> Result<CreatedApiKey, ClientError> {
        let body = NewApiKey { name: name.into() };
        json(
            self.request(reqwest::Method::POST, "/api/v1/api-keys")
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    pub async fn list_api_keys(&self) -> Result<ApiKeyList, ClientError> {
        json(
            self.request(reqwest::Method::GET, "/api/v1/api-keys")
                .send()
                .await?,
        )
        .await
    }

    pub async fn delete_api_key(&self, id: &str) -> Result<(), ClientError> {
        empty(
            self.request(reqwest::Method::DELETE, &format!("/api/v1/api-keys/{id}"))
                .send()
                .await?,
        )
        .await
    }
}

/// Passes a successful response through; turns any other into an error.
async fn ok(response: Response) -> Result<Response, ClientError> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Err(match serde_json::from_str::<Problem>(&body) {
        Ok(problem) => ClientError::Api(problem),
        Err(_) => ClientError::Unexpected {
            status: status.as_u16(),
            body,
        },
    })
}

async fn json<T: DeserializeOwned>(response: Response) -> Result<T, ClientError> {
    let response = ok(response).await?;
    let status = response.status();
    let body = response.text().await?;
    serde_json::from_str(&body).map_err(|_| ClientError::Unexpected {
        status: status.as_u16(),
        body,
    })
}

async fn empty(response: Response) -> Result<(), ClientError> {
    let response = ok(response).await?;
    if response.status() == StatusCode::NO_CONTENT || response.status().is_success() {
        Ok(())
    } else {
        Err(ClientError::Unexpected {
            status: response.status().as_u16(),
            body: String::new(),
        })
    }
}

/// `/api/v1/channels/{name}/members/{member}`, each segment percent-encoded.
fn member_path(channel: &str, member: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    format!(
        "/api/v1/channels/{}/members/{}",
        utf8_percent_encode(channel, NON_ALPHANUMERIC),
        utf8_percent_encode(member, NON_ALPHANUMERIC)
    )
}
