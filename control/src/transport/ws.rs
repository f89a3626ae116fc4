//! The Janus API and the Admin API over WebSocket (janus-api.md §9).

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

use crate::error::{ErrorCode, JanusError};
use crate::gateway::{Gateway, Origin, PathIds, WsConn, error_reply};

/// The subprotocol of the Janus API.
pub(crate) const JANUS_PROTOCOL: &str = "janus-protocol";
/// The subprotocol of the Admin API.
pub(crate) const ADMIN_PROTOCOL: &str = "janus-admin-protocol";

#[derive(Clone)]
pub(crate) struct WsState {
    pub(crate) gw: Arc<Gateway>,
    pub(crate) admin: bool,
}

fn asks_for(headers: &HeaderMap, protocol: &str) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == protocol)
}

/// Bytes a WebSocket reads at a time.
const WS_READ_BUFFER: usize = 16 * 1024;

/// Upgrades a connection that asks for the right subprotocol; others are refused.
pub(crate) async fn upgrade(
    State(st): State<WsState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let protocol = if st.admin {
        ADMIN_PROTOCOL
    } else {
        JANUS_PROTOCOL
    };
    if !asks_for(&headers, protocol) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let limit = st.gw.config().max_body_bytes;
    // The read buffer is zero-filled up to its size on every read: the
    // default 128 KiB cost more than the rest of a request. Janus API
    // messages are small; a larger one takes a few reads.
    ws.protocols([protocol])
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(socket, st))
}

async fn serve(socket: WebSocket, st: WsState) {
    let (conn, mut rx) = WsConn::new();
    let (mut sink, mut stream) = socket.split();
    let writer_conn = conn.clone();
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            writer_conn.sent();
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
            if writer_conn.is_closed() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let origin = Origin::Ws(conn.clone());
    while let Some(msg) = stream.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t.to_string(),
            Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
        };
        if conn.is_closed() {
            break;
        }
        handle_text(&st, &origin, &conn, &text).await;
    }
    st.gw.transport_gone(&conn);
    writer.abort();
}

/// One text message may hold several JSON objects back to back, processed in order.
async fn handle_text(st: &WsState, origin: &Origin, conn: &Arc<WsConn>, text: &str) {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let req = match stream.next() {
            None => break,
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                let reason = format!(
                    "Invalid Janus API request - on line {} column {}: {}",
                    e.line(),
                    e.column(),
                    e.to_string().split(" at line ").next().unwrap_or_default()
                );
                let err = JanusError::new(ErrorCode::InvalidJson, reason);
                conn.send(&error_reply(0, None, &err));
                break;
            }
        };
        if !req.is_object() && !req.is_array() {
            // Janus's parser refuses scalars at the top level.
            let near: String = req.to_string().chars().take(20).collect();
            let err = JanusError::new(
                ErrorCode::InvalidJson,
                format!("JSON error: on line 1: '[' or '{{' expected near '{near}'"),
            );
            conn.send(&error_reply(0, None, &err));
            continue;
        }
        let is_message = !st.admin
            && req
                .get("janus")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case("message"));
        if st.admin {
            st.gw.handle_admin(req, origin, PathIds::default()).await;
        } else if is_message {
            // Like Janus's worker pool: a slow script never blocks the
            // connection's keepalives and other requests.
            let gw = st.gw.clone();
            let origin = origin.clone();
            tokio::spawn(async move {
                gw.handle_request(req, &origin, PathIds::default()).await;
            });
        } else {
            st.gw.handle_request(req, origin, PathIds::default()).await;
        }
    }
}
