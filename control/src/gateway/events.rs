//! Event handlers (janus-api.md §10): notifications about sessions, handles
//! and plugin events, in Janus's shape, written as JSON lines to a file and
//! POSTed to webhooks. Off by default (`eventsIsEnabled()` then returns 0).

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::config::EventsConfig;
use crate::plugin::HandleRef;

/// Event types (bit flags, as in Janus).
const TYPE_SESSION: u32 = 1;
const TYPE_HANDLE: u32 = 2;
const TYPE_EXTERNAL: u32 = 4;
const TYPE_PLUGIN: u32 = 64;

/// How many notifications may wait for the sinks before new ones are dropped
/// (and counted).
const QUEUE: usize = 8192;

/// The configured event handlers.
#[derive(Debug)]
pub struct EventHandlers {
    enabled: bool,
    emitter: String,
    tx: Option<mpsc::Sender<Value>>,
    dropped: Mutex<u64>,
}

impl EventHandlers {
    /// Starts the sinks (inside a tokio runtime) when enabled.
    pub fn new(cfg: &EventsConfig, emitter: String) -> Self {
        let tx = if cfg.enabled {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run_sinks(rx, cfg.clone()));
            Some(tx)
        } else {
            None
        };
        Self {
            enabled: cfg.enabled,
            emitter,
            tx,
            dropped: Mutex::new(0),
        }
    }

    /// Whether handlers are enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Notifications dropped because the sinks could not keep up.
    pub fn dropped(&self) -> u64 {
        *self
            .dropped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn emit(
        &self,
        kind: u32,
        session: Option<u64>,
        handle: Option<u64>,
        opaque: Option<&str>,
        event: Value,
    ) {
        let Some(tx) = &self.tx else { return };
        let mut m = Map::new();
        m.insert("emitter".into(), self.emitter.clone().into());
        m.insert("type".into(), kind.into());
        m.insert("timestamp".into(), now_us().into());
        if let Some(s) = session {
            m.insert("session_id".into(), s.into());
        }
        if let Some(h) = handle {
            m.insert("handle_id".into(), h.into());
        }
        if let Some(o) = opaque {
            m.insert("opaque_id".into(), o.into());
        }
        m.insert("event".into(), event);
        if tx.try_send(Value::Object(m)).is_err() {
            *self
                .dropped
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        }
    }

    /// A session was created, destroyed or timed out.
    pub fn session_event(&self, session: u64, name: &str, transport: Value) {
        self.emit(
            TYPE_SESSION,
            Some(session),
            None,
            None,
            json!({"name": name, "transport": transport}),
        );
    }

    /// A handle was attached or detached.
    pub fn handle_event(
        &self,
        session: u64,
        handle: u64,
        name: &str,
        plugin: &str,
        opaque: Option<&str>,
        token: Option<&str>,
    ) {
        let mut ev = json!({"name": name, "plugin": plugin});
        if let (Value::Object(m), Some(o)) = (&mut ev, opaque) {
            m.insert("opaque_id".into(), o.into());
        }
        if let (Value::Object(m), Some(t)) = (&mut ev, token) {
            m.insert("token".into(), t.into());
        }
        self.emit(TYPE_HANDLE, Some(session), Some(handle), opaque, ev);
    }

    /// A script's `notifyEvent`. Non-object events are dropped, as Janus does.
    pub fn plugin_event(
        &self,
        package: &str,
        handle: Option<HandleRef>,
        opaque: Option<&str>,
        event: Value,
    ) {
        if !event.is_object() {
            return;
        }
        self.emit(
            TYPE_PLUGIN,
            handle.map(|h| h.session_id),
            handle.map(|h| h.handle_id),
            opaque,
            json!({"plugin": package, "data": event}),
        );
    }

    /// Admin `custom_event`.
    pub fn custom_event(&self, schema: Value, data: Value) {
        self.emit(
            TYPE_EXTERNAL,
            None,
            None,
            None,
            json!({"schema": schema, "data": data}),
        );
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

async fn run_sinks(mut rx: mpsc::Receiver<Value>, cfg: EventsConfig) {
    let mut file = match &cfg.log_file {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot open the event log file");
                None
            }
        },
        None => None,
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .ok();
    while let Some(ev) = rx.recv().await {
        if let Some(f) = file.as_mut() {
            if writeln!(f, "{ev}").is_err() {
                tracing::warn!("writing to the event log file failed");
            }
        }
        if let Some(client) = &client {
            // One at a time: a slow webhook fills the bounded queue and later
            // notifications are dropped and counted, never buffered without bound.
            for url in &cfg.webhooks {
                if let Err(e) = client.post(url).json(&ev).send().await {
                    tracing::warn!(%url, error = %e, "event webhook failed");
                }
            }
        }
    }
}
