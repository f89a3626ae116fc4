//! A minimal blocking Janus API client: requests and asynchronous events, over
//! HTTP (POST plus a long-poll thread) or WebSocket (a thread owning the
//! socket).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// How long a request may wait for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a parked long poll may last (the server answers after 30 s).
const POLL_TIMEOUT: Duration = Duration::from_secs(40);

/// Which transport carries the Janus API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    Http,
    Ws,
}

impl TransportKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Ws => "ws",
        }
    }
}

/// A connected Janus API client.
pub(crate) struct Janus {
    inner: Inner,
    events_rx: Receiver<Value>,
    events_tx: Sender<Value>,
    /// Every asynchronous event received so far, in order.
    pub(crate) events: Vec<Value>,
    counter: AtomicU64,
    pub(crate) session: Option<u64>,
    pub(crate) handle: Option<u64>,
}

enum Inner {
    Http {
        base: String,
        client: reqwest::blocking::Client,
        stop: Arc<AtomicBool>,
    },
    Ws {
        requests: Sender<(Value, Sender<Value>)>,
    },
}

impl Janus {
    /// Connect (WebSocket) or prepare (HTTP) a client for `url`.
    pub(crate) fn connect(kind: TransportKind, url: &str) -> Result<Self> {
        let (events_tx, events_rx) = mpsc::channel();
        let inner = match kind {
            TransportKind::Http => Inner::Http {
                base: url.trim_end_matches('/').to_owned(),
                client: reqwest::blocking::Client::builder()
                    .timeout(REPLY_TIMEOUT)
                    .build()
                    .context("building the HTTP client")?,
                stop: Arc::new(AtomicBool::new(false)),
            },
            TransportKind::Ws => Inner::Ws {
                requests: spawn_ws(url, events_tx.clone())?,
            },
        };
        Ok(Self {
            inner,
            events_rx,
            events_tx,
            events: Vec::new(),
            counter: AtomicU64::new(1),
            session: None,
            handle: None,
        })
    }

    fn transaction(&self) -> String {
        format!("peer-{}", self.counter.fetch_add(1, Ordering::Relaxed))
    }

    /// Send `{"janus": verb, ...extra}` on the session (and handle, when
    /// `on_handle`) and return the reply.
    pub(crate) fn request(&mut self, verb: &str, on_handle: bool, extra: Value) -> Result<Value> {
        let mut body = json!({"janus": verb, "transaction": self.transaction()});
        if let (Some(obj), Value::Object(more)) = (body.as_object_mut(), extra) {
            obj.extend(more);
        }
        let handle = if on_handle { self.handle } else { None };
        match &self.inner {
            Inner::Http { base, client, .. } => {
                let mut url = base.clone();
                if let Some(s) = self.session {
                    url.push_str(&format!("/{s}"));
                    if let Some(h) = handle {
                        url.push_str(&format!("/{h}"));
                    }
                }
                let resp = client
                    .post(&url)
                    .json(&body)
                    .send()
                    .with_context(|| format!("POST {url}"))?;
                resp.json::<Value>()
                    .with_context(|| format!("reply to {verb} is not JSON"))
            }
            Inner::Ws { requests } => {
                if let Some(obj) = body.as_object_mut() {
                    if let Some(s) = self.session {
                        obj.insert("session_id".into(), json!(s));
                    }
                    if let Some(h) = handle {
                        obj.insert("handle_id".into(), json!(h));
                    }
                }
                let (tx, rx) = mpsc::channel();
                requests
                    .send((body, tx))
                    .map_err(|_| anyhow!("the WebSocket connection is closed"))?;
                rx.recv_timeout(REPLY_TIMEOUT)
                    .map_err(|e| anyhow!("no reply to {verb}: {e}"))
            }
        }
    }

    /// Send a request that must be answered with `success`; returns the reply.
    pub(crate) fn expect_success(
        &mut self,
        verb: &str,
        on_handle: bool,
        extra: Value,
    ) -> Result<Value> {
        let reply = self.request(verb, on_handle, extra)?;
        if reply["janus"] != "success" {
            bail!("{verb}: expected success, got {reply}");
        }
        Ok(reply)
    }

    /// Start receiving the session's events (the long poll, over HTTP).
    pub(crate) fn start_events(&mut self) -> Result<()> {
        let Some(session) = self.session else {
            bail!("no session to poll");
        };
        if let Inner::Http { base, stop, .. } = &self.inner {
            let url = format!("{base}/{session}?maxev=10");
            let stop = Arc::clone(stop);
            let tx = self.events_tx.clone();
            let client = reqwest::blocking::Client::builder()
                .timeout(POLL_TIMEOUT)
                .build()
                .context("building the long-poll client")?;
            // Detached: a parked GET must never keep the process alive.
            thread::Builder::new()
                .name("long-poll".into())
                .spawn(move || long_poll(&client, &url, &stop, &tx))
                .context("spawning the long-poll thread")?;
        }
        Ok(())
    }

    /// Move newly received events into [`Self::events`].
    pub(crate) fn drain(&mut self) {
        while let Ok(ev) = self.events_rx.try_recv() {
            self.events.push(ev);
        }
    }

    /// Index of the first event at or after `start` for which `pred` holds.
    pub(crate) fn find(&self, start: usize, pred: impl Fn(&Value) -> bool) -> Option<usize> {
        self.events
            .iter()
            .enumerate()
            .skip(start)
            .find(|(_, e)| pred(e))
            .map(|(i, _)| i)
    }

    /// Stop the long poll (HTTP); the WebSocket closes when dropped.
    pub(crate) fn close(&self) {
        if let Inner::Http { stop, .. } = &self.inner {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

fn long_poll(client: &reqwest::blocking::Client, url: &str, stop: &AtomicBool, tx: &Sender<Value>) {
    while !stop.load(Ordering::Relaxed) {
        let resp = match client.get(url).send() {
            Ok(resp) => resp,
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    eprintln!("[peer] long poll failed: {e}");
                }
                return;
            }
        };
        if !resp.status().is_success() {
            // 404: the session is gone.
            return;
        }
        let Ok(payload) = resp.json::<Value>() else {
            eprintln!("[peer] long poll returned something that is not JSON");
            return;
        };
        let items = match payload {
            Value::Array(items) => items,
            other => vec![other],
        };
        for item in items {
            if item["janus"] != "keepalive" && tx.send(item).is_err() {
                return;
            }
        }
    }
}

type WsSocket = WebSocket<MaybeTlsStream<std::net::TcpStream>>;

/// Connect the WebSocket and start the thread that owns it; returns the
/// channel that takes requests (with the channel for their reply).
fn spawn_ws(url: &str, events: Sender<Value>) -> Result<Sender<(Value, Sender<Value>)>> {
    let mut request = url
        .into_client_request()
        .with_context(|| format!("bad WebSocket URL {url}"))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("janus-protocol"),
    );
    let (socket, _response) =
        tungstenite::connect(request).with_context(|| format!("connecting to {url}"))?;
    match socket.get_ref() {
        MaybeTlsStream::Plain(stream) => stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .context("setting the WebSocket read timeout")?,
        _ => bail!("only plain ws:// URLs are supported"),
    }
    let (tx, rx) = mpsc::channel::<(Value, Sender<Value>)>();
    thread::Builder::new()
        .name("websocket".into())
        .spawn(move || ws_loop(socket, &rx, &events))
        .context("spawning the WebSocket thread")?;
    Ok(tx)
}

fn ws_loop(
    mut socket: WsSocket,
    requests: &Receiver<(Value, Sender<Value>)>,
    events: &Sender<Value>,
) {
    let mut pending: HashMap<String, Sender<Value>> = HashMap::new();
    let mut last_keepalive = Instant::now();
    loop {
        loop {
            match requests.try_recv() {
                Ok((body, reply)) => {
                    if let Some(tr) = body["transaction"].as_str() {
                        pending.insert(tr.to_owned(), reply);
                    }
                    if let Err(e) = socket.send(Message::text(body.to_string())) {
                        eprintln!("[peer] websocket send failed: {e}");
                        return;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    let _ = socket.close(None);
                    let _ = socket.flush();
                    return;
                }
            }
        }
        if last_keepalive.elapsed() > Duration::from_secs(20) {
            // Not needed for runs this short, but harmless: ping the socket.
            let _ = socket.send(Message::Ping(Vec::new().into()));
            last_keepalive = Instant::now();
        }
        match socket.read() {
            Ok(Message::Text(text)) => {
                let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else {
                    eprintln!("[peer] websocket message is not JSON: {text}");
                    continue;
                };
                let kind = msg["janus"].as_str().unwrap_or_default().to_owned();
                let reply_to = msg["transaction"]
                    .as_str()
                    .filter(|_| matches!(kind.as_str(), "ack" | "success" | "error"))
                    .and_then(|tr| pending.remove(tr));
                match reply_to {
                    Some(reply) => {
                        let _ = reply.send(msg);
                    }
                    None => {
                        if events.send(msg).is_err() {
                            return;
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                eprintln!("[peer] websocket closed: {e}");
                return;
            }
        }
    }
}
