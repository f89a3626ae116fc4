//! A WebSocket client for the Janus API (`janus-protocol`) and the Admin API
//! (`janus-admin-protocol`).
//!
//! A background task reads the socket and queues every message; the client
//! keeps the messages that a caller did not ask for in a stash, so replies
//! can be matched by transaction while events are collected in order.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// Subprotocol of the Janus API.
pub const JANUS_PROTOCOL: &str = "janus-protocol";
/// Subprotocol of the Admin API.
pub const ADMIN_PROTOCOL: &str = "janus-admin-protocol";

/// What the reader task saw.
#[derive(Debug, Clone)]
pub enum WsIncoming {
    /// A text message that parsed as JSON.
    Json(Value),
    /// A text or binary message that is not JSON.
    Other(String),
    /// The connection ended (close frame, error or end of stream).
    Closed(String),
}

type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;

/// A connected WebSocket client.
#[derive(Debug)]
pub struct WsClient {
    sink: Sink,
    incoming: mpsc::UnboundedReceiver<WsIncoming>,
    reader: JoinHandle<()>,
    stash: VecDeque<Value>,
    protocol: Option<String>,
    closed: Option<String>,
}

/// The `janus` kinds that answer a request (as opposed to events).
pub const REPLY_KINDS: [&str; 5] = ["success", "error", "ack", "server_info", "pong"];

impl WsClient {
    /// Connect to `url` asking for `protocol` (`None`: no subprotocol header).
    pub async fn connect(url: &str, protocol: Option<&str>) -> Result<Self> {
        let mut request = url
            .into_client_request()
            .context("building the WebSocket request")?;
        if let Some(protocol) = protocol {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(protocol).context("subprotocol header")?,
            );
        }
        let (stream, response) =
            tokio::time::timeout(Duration::from_secs(10), connect_async(request))
                .await
                .map_err(|_| anyhow!("WebSocket handshake with {url} timed out"))?
                .with_context(|| format!("WebSocket handshake with {url}"))?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (sink, mut source) = stream.split();
        let (tx, incoming) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            loop {
                let item = match source.next().await {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Value>(&text) {
                        Ok(v) => WsIncoming::Json(v),
                        Err(_) => WsIncoming::Other(text.to_string()),
                    },
                    Some(Ok(Message::Binary(bytes))) => {
                        WsIncoming::Other(String::from_utf8_lossy(&bytes).into_owned())
                    }
                    Some(Ok(Message::Close(frame))) => {
                        WsIncoming::Closed(format!("close frame {frame:?}"))
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => WsIncoming::Closed(format!("error: {e}")),
                    None => WsIncoming::Closed("end of stream".to_owned()),
                };
                let done = matches!(item, WsIncoming::Closed(_));
                if tx.send(item).is_err() || done {
                    break;
                }
            }
        });
        Ok(Self {
            sink,
            incoming,
            reader,
            stash: VecDeque::new(),
            protocol,
            closed: None,
        })
    }

    /// The subprotocol the server accepted.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Send one text message as is.
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<()> {
        self.sink
            .send(Message::text(text.into()))
            .await
            .context("sending a WebSocket message")
    }

    /// Send a JSON value as one text message.
    pub async fn send_json(&mut self, value: &Value) -> Result<()> {
        self.send_text(serde_json::to_string(value).context("serializing")?)
            .await
    }

    /// Send a close frame (the server then closes the TCP connection).
    pub async fn close(&mut self) -> Result<()> {
        self.sink
            .send(Message::Close(None))
            .await
            .context("sending close")?;
        Ok(())
    }

    /// Next JSON message (stashed ones first), or `None` after `timeout`.
    /// Fails when the connection closed or a non-JSON message arrived.
    pub async fn recv(&mut self, timeout: Duration) -> Result<Option<Value>> {
        if let Some(v) = self.stash.pop_front() {
            return Ok(Some(v));
        }
        self.recv_fresh(timeout).await
    }

    /// The first message (stashed or new) for which `pred` holds; every other
    /// message stays stashed in order. `None` after `timeout`.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Option<Value>> {
        if let Some(pos) = self.stash.iter().position(&pred) {
            return Ok(self.stash.remove(pos));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_fresh(left).await? {
                None => return Ok(None),
                Some(v) if pred(&v) => return Ok(Some(v)),
                Some(v) => self.stash.push_back(v),
            }
        }
    }

    /// Send `request` and wait for its reply: the first message of a reply
    /// kind ([`REPLY_KINDS`]) whose `transaction` equals the request's (or
    /// that has none, if the request had none).
    pub async fn request(&mut self, request: &Value, timeout: Duration) -> Result<Value> {
        self.send_json(request).await?;
        let transaction = request
            .get("transaction")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.wait_reply(transaction.as_deref(), timeout)
            .await?
            .ok_or_else(|| anyhow!("no reply within {timeout:?} to {request}"))
    }

    /// Wait for a reply with this transaction (see [`WsClient::request`]).
    pub async fn wait_reply(
        &mut self,
        transaction: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<Value>> {
        self.wait_for(timeout, |v| {
            let kind = v.get("janus").and_then(Value::as_str).unwrap_or("");
            let tx = v.get("transaction").and_then(Value::as_str);
            REPLY_KINDS.contains(&kind) && (tx == transaction || tx.is_none())
        })
        .await
    }

    /// Whether the server closes the connection within `timeout`
    /// (messages arriving meanwhile are stashed).
    pub async fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.closed.is_some() {
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.incoming.recv()).await {
                Err(_) => return false,
                Ok(None) => return true,
                Ok(Some(WsIncoming::Closed(why))) => self.closed = Some(why),
                Ok(Some(WsIncoming::Json(v))) => self.stash.push_back(v),
                Ok(Some(WsIncoming::Other(_))) => {}
            }
        }
    }

    /// Messages received but not yet consumed.
    pub fn stashed(&self) -> impl Iterator<Item = &Value> {
        self.stash.iter()
    }

    async fn recv_fresh(&mut self, timeout: Duration) -> Result<Option<Value>> {
        if let Some(why) = &self.closed {
            bail!("WebSocket closed: {why}");
        }
        match tokio::time::timeout(timeout, self.incoming.recv()).await {
            Err(_) => Ok(None),
            Ok(None) => {
                self.closed = Some("reader ended".to_owned());
                bail!("WebSocket closed");
            }
            Ok(Some(WsIncoming::Json(v))) => Ok(Some(v)),
            Ok(Some(WsIncoming::Other(text))) => bail!("non-JSON WebSocket message: {text:?}"),
            Ok(Some(WsIncoming::Closed(why))) => {
                self.closed = Some(why.clone());
                bail!("WebSocket closed: {why}");
            }
        }
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
