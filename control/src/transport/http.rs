//! The Janus API and the Admin API over HTTP (janus-api.md §8), with long
//! polling, CORS and the 10 s answer deadline.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::{ErrorCode, JanusError};
use crate::gateway::error_reply;
use crate::gateway::{Gateway, Origin, PathIds};
use crate::json::parse_container;

/// Long polls return a keepalive after this long without events.
const LONG_POLL: Duration = Duration::from_secs(30);
/// A POST the core has not answered by then gets an empty 200.
const POST_DEADLINE: Duration = Duration::from_secs(10);

/// Which API a router serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// The Janus API at `/janus`.
    Janus,
    /// The Admin API at `/admin`.
    Admin,
}

#[derive(Clone)]
pub(crate) struct HttpState {
    gw: Arc<Gateway>,
    api: Api,
}

/// The router for one API; `ws` adds WebSocket upgrades at any path.
pub(crate) fn router(gw: Arc<Gateway>, api: Api) -> Router<()> {
    let base = match api {
        Api::Janus => "/janus",
        Api::Admin => "/admin",
    };
    let limit = gw.config().max_body_bytes;
    let state = HttpState { gw, api };
    Router::new()
        .route(base, axum::routing::any(root))
        .route(&format!("{base}/"), axum::routing::any(root))
        .route(&format!("{base}/{{session}}"), axum::routing::any(session))
        .route(
            &format!("{base}/{{session}}/{{handle}}"),
            axum::routing::any(handle),
        )
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Adds the CORS headers every answer carries (janus-api.md §8.1).
pub(crate) fn cors(gw: &Gateway, req: &HeaderMap, resp: &mut Response) {
    let h = resp.headers_mut();
    match &gw.config().allow_origin {
        Some(origin) => {
            if let Ok(v) = HeaderValue::from_str(origin) {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            }
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        None => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    if let Some(m) = req.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, m.clone());
    }
    if let Some(v) = req.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
    }
}

fn origin_refused(gw: &Gateway, req: &HeaderMap) -> bool {
    if !gw.config().enforce_cors {
        return false;
    }
    let Some(allowed) = &gw.config().allow_origin else {
        return false;
    };
    match req.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(o) => !o.starts_with(allowed.as_str()),
        None => false,
    }
}

fn json_response(v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

fn finish(st: &HttpState, headers: &HeaderMap, mut r: Response) -> Response {
    cors(&st.gw, headers, &mut r);
    r
}

/// Paths outside the API: demo files (`--demos`) on the Janus API port, else 404.
async fn not_found(
    State(st): State<HttpState>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if st.api == Api::Janus {
        if let Some(dir) = &st.gw.config().demos {
            if let Some(r) = super::demos::serve(dir, &method, uri.path()).await {
                return r;
            }
        }
    }
    finish(&st, &headers, empty(StatusCode::NOT_FOUND))
}

/// Runs a POST body through the core.
async fn post(st: &HttpState, body: &Bytes, path: PathIds) -> Response {
    if body.is_empty() {
        return empty(StatusCode::BAD_REQUEST);
    }
    let text = String::from_utf8_lossy(body);
    let req = match parse_container(&text) {
        Ok(v) => v,
        Err(e) => {
            let err = JanusError::new(ErrorCode::InvalidJson, e.to_string());
            return json_response(&error_reply(0, None, &err));
        }
    };
    if !req.is_object() {
        let err = JanusError::new(ErrorCode::InvalidJsonObject, "JSON error: not an object");
        return json_response(&error_reply(0, None, &err));
    }
    let gw = st.gw.clone();
    let api = st.api;
    let fut = async move {
        match api {
            Api::Janus => gw.handle_request(req, &Origin::Http, path).await,
            Api::Admin => gw.handle_admin(req, &Origin::Http, path).await,
        }
    };
    // The request keeps running if the deadline passes (nothing accepted is lost).
    let task = tokio::spawn(fut);
    match tokio::time::timeout(POST_DEADLINE, task).await {
        Ok(Ok(Some(reply))) => json_response(&reply),
        Ok(Ok(None)) | Err(_) => empty(StatusCode::OK),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "request task failed");
            let err = JanusError::default_for(ErrorCode::Unknown);
            json_response(&error_reply(0, None, &err))
        }
    }
}

fn unsupported(method: &Method) -> Response {
    let err = JanusError::new(
        ErrorCode::TransportSpecific,
        format!("Unsupported method {method}"),
    );
    json_response(&error_reply(0, None, &err))
}

async fn root(
    State(st): State<HttpState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if origin_refused(&st.gw, &headers) {
        return finish(&st, &headers, empty(StatusCode::FORBIDDEN));
    }
    let r = match method {
        Method::OPTIONS => empty(StatusCode::OK),
        Method::POST => post(&st, &body, PathIds::default()).await,
        Method::GET => empty(StatusCode::NOT_FOUND),
        m => unsupported(&m),
    };
    finish(&st, &headers, r)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct PollQuery {
    maxev: Option<String>,
    apisecret: Option<String>,
    token: Option<String>,
}

async fn session(
    State(st): State<HttpState>,
    method: Method,
    headers: HeaderMap,
    Path(seg): Path<String>,
    Query(query): Query<PollQuery>,
    body: Bytes,
) -> Response {
    if origin_refused(&st.gw, &headers) {
        return finish(&st, &headers, empty(StatusCode::FORBIDDEN));
    }
    let r = match method {
        Method::OPTIONS => empty(StatusCode::OK),
        Method::POST if seg == "info" => empty(StatusCode::BAD_REQUEST),
        // Janus reads the segment as a number: anything else is session 0,
        // so the request is a session-less one.
        Method::POST => {
            let session = seg.parse::<u64>().ok().filter(|id| *id > 0);
            post(
                &st,
                &body,
                PathIds {
                    session,
                    handle: None,
                },
            )
            .await
        }
        Method::GET if seg == "info" => {
            let t: String = (0..12)
                .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
                .collect();
            let req = json!({"janus": "info", "transaction": t});
            let reply = match st.api {
                Api::Janus => {
                    st.gw
                        .handle_request(req, &Origin::Http, PathIds::default())
                        .await
                }
                Api::Admin => {
                    st.gw
                        .handle_admin(req, &Origin::Http, PathIds::default())
                        .await
                }
            };
            reply.map_or_else(|| empty(StatusCode::OK), |v| json_response(&v))
        }
        Method::GET if st.api == Api::Janus => match seg.parse::<u64>() {
            Ok(id) => long_poll(&st, id, query).await,
            Err(_) => empty(StatusCode::NOT_FOUND),
        },
        Method::GET => empty(StatusCode::NOT_FOUND),
        m => unsupported(&m),
    };
    finish(&st, &headers, r)
}

async fn long_poll(st: &HttpState, id: u64, q: PollQuery) -> Response {
    let maxev = q
        .maxev
        .as_deref()
        .and_then(|m| m.parse::<i64>().ok())
        .unwrap_or(1);
    let (secret, token) = (q.apisecret.as_deref(), q.token.as_deref());
    if !st.gw.authorized(secret, token) {
        return empty(StatusCode::FORBIDDEN);
    }
    let maxev = usize::try_from(maxev.max(1)).unwrap_or(1);
    match st.gw.long_poll(id, maxev, LONG_POLL).await {
        None => empty(StatusCode::NOT_FOUND),
        Some(events) if events.is_empty() => {
            let ka = json!({"janus": "keepalive"});
            if maxev > 1 {
                json_response(&Value::Array(vec![ka]))
            } else {
                json_response(&ka)
            }
        }
        Some(mut events) => {
            if maxev > 1 {
                json_response(&Value::Array(events))
            } else {
                // maxev == 1 takes exactly one event.
                json_response(&events.swap_remove(0))
            }
        }
    }
}

async fn handle(
    State(st): State<HttpState>,
    method: Method,
    headers: HeaderMap,
    Path((s, h)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if origin_refused(&st.gw, &headers) {
        return finish(&st, &headers, empty(StatusCode::FORBIDDEN));
    }
    let ids = (s.parse::<u64>(), h.parse::<u64>());
    let r = match (method, ids) {
        (Method::OPTIONS, _) => empty(StatusCode::OK),
        (Method::POST, (Ok(s), Ok(h))) => {
            post(
                &st,
                &body,
                PathIds {
                    session: Some(s),
                    handle: Some(h),
                },
            )
            .await
        }
        (Method::GET, (Ok(s), Ok(_))) if st.api == Api::Janus => {
            // A long poll on a handle path: keepalive, then redirect to the session.
            st.gw.touch(s);
            let mut r = empty(StatusCode::FOUND);
            if let Ok(v) = HeaderValue::from_str(&format!("/janus/{s}")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        (Method::POST | Method::GET, _) => empty(StatusCode::NOT_FOUND),
        (m, _) => unsupported(&m),
    };
    finish(&st, &headers, r)
}
