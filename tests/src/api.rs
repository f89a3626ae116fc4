//! [`Api`]: one Janus API client that runs the same test body over HTTP or
//! over WebSocket, and records what the server answered for comparison.
//!
//! Requests are JSON objects as a WebSocket client sends them (with
//! `session_id`/`handle_id` in the body). Over HTTP, positive integer ids are
//! moved from the body into the URL path the way `janus.js` does
//! (`POST /janus/{session}/{handle}`); any other id value stays in the body
//! and the request goes to `POST /janus`. Events are read over HTTP by one
//! background long poll per session (`maxev=10`, like `janus.js`), started
//! the first time events of that session are asked for, so no event is ever
//! lost to a cancelled poll.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::compare::IdMap;
use crate::http::HttpClient;
use crate::reply::Reply;
use crate::server::{ECHOTEST_PACKAGE, Flavor, Server};
use crate::ws::{JANUS_PROTOCOL, REPLY_KINDS, WsClient};

/// How long a reply may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// The Janus API transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// REST over HTTP with long polls.
    Http,
    /// WebSocket, subprotocol `janus-protocol`.
    Ws,
}

impl Transport {
    /// Both transports.
    pub const ALL: [Self; 2] = [Self::Http, Self::Ws];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Ws => "ws",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One message recorded in a transcript: what it answered, and the message.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `reply to <verb>`, `event`, or a label given by the test.
    pub what: String,
    /// The message as received.
    pub message: Value,
}

/// One background long poll.
#[derive(Debug)]
struct Poller {
    events: mpsc::UnboundedReceiver<Value>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
enum Conn {
    Http {
        client: HttpClient,
        pollers: HashMap<u64, Poller>,
    },
    Ws(WsClient),
}

/// A Janus API client over either transport, with a transcript.
#[derive(Debug)]
pub struct Api {
    server: Arc<Server>,
    transport: Transport,
    conn: Conn,
    next_transaction: u64,
    ids: IdMap,
    transcript: Vec<Entry>,
    recording: bool,
}

impl Api {
    /// Connect to `server` over `transport`.
    pub async fn connect(server: Arc<Server>, transport: Transport) -> Result<Self> {
        let conn = match transport {
            Transport::Http => Conn::Http {
                client: HttpClient::new(server.api_url())?,
                pollers: HashMap::new(),
            },
            Transport::Ws => {
                Conn::Ws(WsClient::connect(&server.ws_url(), Some(JANUS_PROTOCOL)).await?)
            }
        };
        Ok(Self {
            server,
            transport,
            conn,
            next_transaction: 0,
            ids: IdMap::default(),
            transcript: Vec::new(),
            recording: true,
        })
    }

    /// The server this client talks to.
    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }

    /// Which server implementation.
    pub fn flavor(&self) -> Flavor {
        self.server.flavor()
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// `flavor/transport`, for messages.
    pub fn label(&self) -> String {
        format!("{}/{}", self.flavor(), self.transport)
    }

    /// The HTTP client (fails over WebSocket).
    pub fn http(&self) -> Result<&HttpClient> {
        match &self.conn {
            Conn::Http { client, .. } => Ok(client),
            Conn::Ws(_) => bail!("this case needs the HTTP transport"),
        }
    }

    /// The WebSocket client (fails over HTTP).
    pub fn ws(&mut self) -> Result<&mut WsClient> {
        match &mut self.conn {
            Conn::Ws(ws) => Ok(ws),
            Conn::Http { .. } => bail!("this case needs the WebSocket transport"),
        }
    }

    /// A fresh transaction string. Transactions are deterministic per client
    /// (`tx1`, `tx2`, ...) so transcripts of two servers compare equal.
    pub fn transaction(&mut self) -> String {
        self.next_transaction += 1;
        format!("tx{}", self.next_transaction)
    }

    /// The ids learned so far (for normalization).
    pub fn ids(&self) -> &IdMap {
        &self.ids
    }

    /// Name an id that the test chose itself (e.g. for `create` with `id`),
    /// so it is normalized like a server-chosen one.
    pub fn register_id(&mut self, id: u64, role: &str) {
        self.ids.register(id, role);
    }

    /// What was recorded so far.
    pub fn transcript(&self) -> &[Entry] {
        &self.transcript
    }

    /// Turn recording on or off (e.g. around answers known to differ).
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Add a message to the transcript under a label of the test's choice.
    pub fn record(&mut self, what: impl Into<String>, message: &Value) {
        if self.recording {
            self.transcript.push(Entry {
                what: what.into(),
                message: message.clone(),
            });
        }
    }

    /// Send a request and return its reply. A `transaction` is added when
    /// the request has none (use [`Api::request_exact`] to send one without).
    pub async fn request(&mut self, mut request: Value) -> Result<Value> {
        if request
            .as_object()
            .is_some_and(|o| !o.contains_key("transaction"))
        {
            let tx = self.transaction();
            if let Some(obj) = request.as_object_mut() {
                obj.insert("transaction".to_owned(), Value::String(tx));
            }
        }
        self.request_exact(request).await
    }

    /// Send a request exactly as given and return its reply.
    pub async fn request_exact(&mut self, request: Value) -> Result<Value> {
        let verb = request
            .get("janus")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_ascii_lowercase();
        let reply = match &mut self.conn {
            Conn::Http { client, .. } => {
                let (path, body) = http_route(&request);
                client.post_json(&path, &body).await?
            }
            Conn::Ws(ws) => ws.request(&request, REPLY_TIMEOUT).await?,
        };
        if let Some(id) = reply.data_id() {
            match verb.as_str() {
                "create" => self.ids.register(id, "session"),
                "attach" => self.ids.register(id, "handle"),
                _ => {}
            }
        }
        self.record(format!("reply to {verb}"), &reply);
        Ok(reply)
    }

    /// Send raw text (over HTTP: `POST /janus{path}` with a JSON content
    /// type; over WebSocket: one text message, `path` ignored) and return
    /// the first reply. Over HTTP a non-JSON answer is an error.
    pub async fn request_text(&mut self, path: &str, text: &str) -> Result<Value> {
        let reply = match &mut self.conn {
            Conn::Http { client, .. } => {
                let raw = client.post_raw(path, text, "application/json").await?;
                if raw.status != 200 {
                    bail!("HTTP {} {:?} for {text:?}", raw.status, raw.text());
                }
                raw.json()?
            }
            Conn::Ws(ws) => {
                ws.send_text(text).await?;
                ws.wait_for(REPLY_TIMEOUT, |v| REPLY_KINDS.contains(&v.kind()))
                    .await?
                    .ok_or_else(|| anyhow!("no reply to {text:?}"))?
            }
        };
        self.record("reply to raw text", &reply);
        Ok(reply)
    }

    /// The next event of `session`, or `None` after `timeout`.
    pub async fn event(&mut self, session: u64, timeout: Duration) -> Result<Option<Value>> {
        let event = match &mut self.conn {
            Conn::Http { client, pollers } => {
                let poller = pollers
                    .entry(session)
                    .or_insert_with(|| start_poller(client.clone(), session));
                match tokio::time::timeout(timeout, poller.events.recv()).await {
                    Err(_) | Ok(None) => None,
                    Ok(Some(v)) => Some(v),
                }
            }
            Conn::Ws(ws) => {
                ws.wait_for(timeout, |v| {
                    !REPLY_KINDS.contains(&v.kind())
                        && v.get("session_id").and_then(Value::as_u64) == Some(session)
                })
                .await?
            }
        };
        if let Some(e) = &event {
            self.record("event", e);
        }
        Ok(event)
    }

    /// The next event of `session`, which must be of `kind`.
    pub async fn expect_event(
        &mut self,
        session: u64,
        kind: &str,
        timeout: Duration,
    ) -> Result<Value> {
        let label = self.label();
        match self.event(session, timeout).await? {
            Some(e) if e.kind() == kind => Ok(e),
            Some(e) => bail!("{label}: expected a {kind:?} event, got {e}"),
            None => bail!("{label}: no {kind:?} event within {timeout:?}"),
        }
    }

    /// The next event of `session`, whatever its kind; fails after `timeout`.
    pub async fn expect_event_any(&mut self, session: u64, timeout: Duration) -> Result<Value> {
        let label = self.label();
        self.event(session, timeout)
            .await?
            .ok_or_else(|| anyhow!("{label}: no event within {timeout:?}"))
    }

    /// Fails if `session` gets an event within `wait`.
    pub async fn expect_no_event(&mut self, session: u64, wait: Duration) -> Result<()> {
        match self.event(session, wait).await? {
            Some(e) => bail!("{}: expected no event, got {e}", self.label()),
            None => Ok(()),
        }
    }

    /// `create` → the new session id.
    pub async fn create_session(&mut self) -> Result<u64> {
        let reply = self.request(json!({"janus": "create"})).await?;
        reply.expect_kind("success")?;
        reply
            .data_id()
            .ok_or_else(|| anyhow!("create reply without data.id: {reply}"))
    }

    /// `attach` to `plugin` → the new handle id.
    pub async fn attach(&mut self, session: u64, plugin: &str) -> Result<u64> {
        let reply = self
            .request(json!({"janus": "attach", "session_id": session, "plugin": plugin}))
            .await?;
        reply.expect_kind("success")?;
        reply
            .data_id()
            .ok_or_else(|| anyhow!("attach reply without data.id: {reply}"))
    }

    /// A new session with a handle attached to Debian's echo test.
    pub async fn echo_handle(&mut self) -> Result<(u64, u64)> {
        let session = self.create_session().await?;
        let handle = self.attach(session, ECHOTEST_PACKAGE).await?;
        Ok((session, handle))
    }

    /// `destroy` the session; fails unless it succeeds.
    pub async fn destroy_session(&mut self, session: u64) -> Result<()> {
        let reply = self
            .request(json!({"janus": "destroy", "session_id": session}))
            .await?;
        reply.expect_kind("success").map(|_| ()).context("destroy")
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Conn::Http { pollers, .. } = &self.conn {
            for poller in pollers.values() {
                poller.task.abort();
            }
        }
    }
}

/// Over HTTP: the path and body for a WebSocket-style request.
pub fn http_route(request: &Value) -> (String, Value) {
    let mut body = request.clone();
    let id = |name: &str| request.get(name).and_then(Value::as_u64).filter(|&n| n > 0);
    let (Some(session), Some(obj)) = (id("session_id"), body.as_object_mut()) else {
        return (String::new(), body);
    };
    obj.remove("session_id");
    let mut path = format!("/{session}");
    if let Some(handle) = id("handle_id") {
        obj.remove("handle_id");
        path.push_str(&format!("/{handle}"));
    }
    (path, body)
}

/// Long-poll `session` until it is gone (404) or the client drops it,
/// forwarding every event except `keepalive`.
fn start_poller(client: HttpClient, session: u64) -> Poller {
    let (tx, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let Ok(answer) = client.long_poll(session, Some(10)).await else {
                break;
            };
            if answer.status != 200 {
                break;
            }
            let Ok(body) = answer.json() else {
                break;
            };
            let list = match body {
                Value::Array(list) => list,
                one => vec![one],
            };
            for event in list {
                if event.kind() != "keepalive" && tx.send(event).is_err() {
                    return;
                }
            }
        }
    });
    Poller { events, task }
}
