//! Accepting connections and serving HTTP/1.1 on them (with upgrades, for WebSocket), until
//! shutdown: then no new connection is accepted and each open one ends after the request it
//! is serving.
//!
//! Each request's head is copied out of the connection's read buffer before it is handed on.
//! While a request is in flight, hyper reads ahead on its connection (to notice a client that
//! hangs up); had the head kept the buffer shared, that read would allocate a second, larger
//! buffer, which a long-poll then keeps for as long as it waits: 24 KiB per waiting request
//! instead of 8.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` resolves, then until the connections' last
/// requests are answered.
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let connections = TaskTracker::new();
    let draining = CancellationToken::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            // Out of file descriptors or memory: wait for some to come back.
            Err(e) if !is_connection_error(&e) => {
                tracing::error!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            // The peer gave up before the accept: nothing to serve.
            Err(_) => continue,
        };
        // Small answers go out at once rather than wait for more to fill a segment.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            router.clone().oneshot(detached(request, remote))
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let draining = draining.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = draining.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    draining.cancel();
    connections.close();
    connections.wait().await;
}

/// Errors of one connection that did not happen (reset before it was accepted), as opposed to
/// the listener's own.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// The request with its target and headers copied out of the connection's read buffer (see
/// the module's comment), and the peer's address for [`ConnectInfo`].
fn detached<B>(request: Request<B>, remote: SocketAddr) -> Request<B> {
    let (mut parts, body) = request.into_parts();
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        let name =
            HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        headers.append(name, copy);
    }
    parts.headers = headers;
    parts.extensions.insert(ConnectInfo(remote));
    Request::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_request_is_the_same_request() {
        let remote: SocketAddr = "127.0.0.2:4567".parse().expect("an address");
        let mut original = Request::get("/api/v1/inbox?since=4&wait=60")
            .header("authorization", "Bearer abc")
            .header("x-custom", "one")
            .header("x-custom", "two")
            .body(())
            .expect("a request");
        original
            .headers_mut()
            .get_mut("authorization")
            .expect("the header")
            .set_sensitive(true);
        let detached = detached(original.clone(), remote);
        assert_eq!(detached.uri(), original.uri());
        assert_eq!(detached.method(), original.method());
        assert_eq!(detached.headers(), original.headers());
        assert!(detached.headers()["authorization"].is_sensitive());
        let values: Vec<_> = detached.headers().get_all("x-custom").iter().collect();
        assert_eq!(values, ["one", "two"]);
        assert_eq!(
            detached
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
            Some(remote)
        );
    }
}
