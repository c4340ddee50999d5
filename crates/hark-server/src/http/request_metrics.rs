//! Requests counted, and their latency measured, by route (the matched pattern, so ids do not
//! explode the label set), method and status.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};

use crate::metrics::{HTTP_DURATION, HTTP_REQUESTS};

/// The counter and histogram of each route, method and status, registered on first use:
/// building a labelled key and looking it up in the recorder on every request costs more than
/// routing the request.
#[derive(Clone, Default)]
pub struct RequestMetrics {
    handles: Arc<RwLock<Routes>>,
}

type Routes = HashMap<String, HashMap<(Method, u16), (Counter, Histogram)>>;

impl RequestMetrics {
    fn handles(&self, route: &str, method: &Method, status: u16) -> (Counter, Histogram) {
        let known = self.handles.read().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = known
            .get(route)
            .and_then(|m| m.get(&(method.clone(), status)))
        {
            return found.clone();
        }
        drop(known);
        let labels = [
            ("method", method.as_str().to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        let registered = (
            metrics::counter!(HTTP_REQUESTS, &labels),
            metrics::histogram!(HTTP_DURATION, &labels),
        );
        let mut known = self.handles.write().unwrap_or_else(|p| p.into_inner());
        known
            .entry(route.to_owned())
            .or_default()
            .insert((method.clone(), status), registered.clone());
        registered
    }
}

pub async fn record(
    State(metrics): State<RequestMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let (requests, duration) = metrics.handles(route, &method, response.status().as_u16());
    requests.increment(1);
    duration.record(started.elapsed().as_secs_f64());
    response
}
