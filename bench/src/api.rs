//! A minimal blocking Janus API client over HTTP (REST + long poll) or
//! WebSocket (`janus-protocol`): what the simulated clients need to set up
//! their sessions, and what the `signaling` scenario times.

use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long one request (or the wait for its asynchronous answer) may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which Janus API transport a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    Http,
    Ws,
}

impl Transport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Ws => "ws",
        }
    }
}

fn transaction() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("b{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One Janus API connection.
pub(crate) enum Client {
    Http {
        http: reqwest::blocking::Client,
        base: String,
    },
    Ws {
        socket: Box<WebSocket<MaybeTlsStream<TcpStream>>>,
    },
}

impl Client {
    /// Connect over `transport` to a server with these endpoints.
    pub(crate) fn connect(
        transport: Transport,
        http: &reqwest::blocking::Client,
        http_base: &str,
        ws_url: &str,
    ) -> Result<Self> {
        match transport {
            Transport::Http => Ok(Self::Http {
                http: http.clone(),
                base: http_base.trim_end_matches('/').to_owned(),
            }),
            Transport::Ws => {
                let mut request = ws_url
                    .into_client_request()
                    .with_context(|| format!("WebSocket URL {ws_url}"))?;
                request.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    "janus-protocol"
                        .parse()
                        .context("a constant header value")?,
                );
                let (socket, _) = tungstenite::connect(request)
                    .with_context(|| format!("connecting to {ws_url}"))?;
                if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
                    stream
                        .set_read_timeout(Some(REPLY_TIMEOUT))
                        .context("setting the WebSocket read timeout")?;
                    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
                }
                Ok(Self::Ws {
                    socket: Box::new(socket),
                })
            }
        }
    }

    /// An HTTP client suitable for [`Client::connect`].
    pub(crate) fn http_client() -> Result<reqwest::blocking::Client> {
        reqwest::blocking::Client::builder()
            .timeout(REPLY_TIMEOUT + Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .context("building the HTTP client")
    }

    /// Send a request (to `path` under the base for HTTP) and return the
    /// final reply with the same transaction: `success`, `error`, or, after
    /// an `ack`, the plugin's `event` (when `wait_event`).
    fn request(&mut self, path: &str, mut body: Value, wait_event: bool) -> Result<Value> {
        let tx = transaction();
        body["transaction"] = json!(tx);
        match self {
            Self::Http { http, base } => {
                let url = format!("{base}{path}");
                let reply: Value = http
                    .post(&url)
                    .json(&body)
                    .send()
                    .with_context(|| format!("POST {url}"))?
                    .json()
                    .with_context(|| format!("reply of POST {url}"))?;
                check(&reply)?;
                if reply["janus"] == "ack" && wait_event {
                    let session = reply["session_id"]
                        .as_u64()
                        .or_else(|| body["session_id"].as_u64())
                        .or_else(|| path.split('/').nth(1).and_then(|s| s.parse().ok()))
                        .ok_or_else(|| anyhow!("no session for the event of {path}"))?;
                    return poll_event(http, base, session, &tx);
                }
                Ok(reply)
            }
            Self::Ws { socket } => {
                let mut ids = path.split('/').filter(|s| !s.is_empty());
                if let Some(s) = ids.next().and_then(|s| s.parse::<u64>().ok()) {
                    body["session_id"] = json!(s);
                }
                if let Some(h) = ids.next().and_then(|s| s.parse::<u64>().ok()) {
                    body["handle_id"] = json!(h);
                }
                socket
                    .send(Message::text(body.to_string()))
                    .context("sending on the WebSocket")?;
                let deadline = Instant::now() + REPLY_TIMEOUT;
                loop {
                    if Instant::now() > deadline {
                        bail!("no reply to {} in time", body["janus"]);
                    }
                    let msg = socket.read().context("reading the WebSocket")?;
                    let Message::Text(text) = msg else {
                        continue;
                    };
                    let Ok(reply) = serde_json::from_str::<Value>(text.as_str()) else {
                        continue;
                    };
                    if reply["transaction"] != json!(tx) {
                        continue;
                    }
                    if reply["janus"] == "ack" && wait_event {
                        continue;
                    }
                    check(&reply)?;
                    return Ok(reply);
                }
            }
        }
    }

    /// `create`: a new session id.
    pub(crate) fn create(&mut self) -> Result<u64> {
        let reply = self.request("", json!({"janus": "create"}), false)?;
        reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("create: no id in {reply}"))
    }

    /// `attach`: a new handle id.
    pub(crate) fn attach(&mut self, session: u64, plugin: &str) -> Result<u64> {
        let reply = self.request(
            &format!("/{session}"),
            json!({"janus": "attach", "plugin": plugin}),
            false,
        )?;
        reply["data"]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("attach: no id in {reply}"))
    }

    /// `message`: the plugin's answer (synchronous `success` or the
    /// asynchronous `event`, with its `jsep` when there is one).
    pub(crate) fn message(
        &mut self,
        session: u64,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Value> {
        let mut req = json!({"janus": "message", "body": body});
        if let Some(jsep) = jsep {
            req["jsep"] = jsep;
        }
        self.request(&format!("/{session}/{handle}"), req, true)
    }

    /// `detach`.
    pub(crate) fn detach(&mut self, session: u64, handle: u64) -> Result<()> {
        self.request(
            &format!("/{session}/{handle}"),
            json!({"janus": "detach"}),
            false,
        )
        .map(drop)
    }

    /// `keepalive`.
    pub(crate) fn keepalive(&mut self, session: u64) -> Result<()> {
        self.request(&format!("/{session}"), json!({"janus": "keepalive"}), false)
            .map(drop)
    }

    /// `destroy`.
    pub(crate) fn destroy(&mut self, session: u64) -> Result<()> {
        self.request(&format!("/{session}"), json!({"janus": "destroy"}), false)
            .map(drop)
    }
}

fn check(reply: &Value) -> Result<()> {
    if reply["janus"] == "error" {
        bail!("server error: {}", reply["error"]);
    }
    if let Some(data) = reply["plugindata"]["data"].as_object()
        && data.get("result").and_then(Value::as_str) == Some("error")
    {
        bail!("plugin error: {}", reply["plugindata"]["data"]);
    }
    Ok(())
}

/// Long-poll the session until the event with transaction `tx` arrives.
fn poll_event(
    http: &reqwest::blocking::Client,
    base: &str,
    session: u64,
    tx: &str,
) -> Result<Value> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let url = format!("{base}/{session}?maxev=1&rid={}", transaction());
    while Instant::now() < deadline {
        let reply: Value = http
            .get(&url)
            .send()
            .with_context(|| format!("GET {url}"))?
            .json()
            .with_context(|| format!("reply of GET {url}"))?;
        let events = match reply {
            Value::Array(list) => list,
            other => vec![other],
        };
        for event in events {
            if event["transaction"] == tx {
                check(&event)?;
                return Ok(event);
            }
        }
    }
    bail!("no event for transaction {tx} in time")
}
