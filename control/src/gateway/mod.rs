//! The Janus API core: the session/handle registry, request processing
//! (janus-api.md §3–§4), event delivery to the transports (§5, §7), the
//! session watchdog, and the [`Core`] side that plugins call.
//!
//! Transports parse bytes into JSON and hand each request to
//! [`Gateway::handle_request`] (or [`Gateway::handle_admin`]) together with
//! the [`Origin`] it came from. Replies to WebSocket requests and every event
//! of a session bound to a WebSocket are written to that connection's
//! outbound queue in the order they were produced; HTTP replies are returned
//! and HTTP events wait in the session's queue for a long poll.

mod admin;
mod api;
pub mod events;
mod negotiate;
mod webrtc_info;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use jsfu_route::{HangupReason, MediaEvent, PluginSessionId, RouteUpdate, ShardCommand};
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, mpsc};

use crate::config::Config;
use crate::media::{LocalPc, MediaPlane};
use crate::plugin::{Core, HandleRef, Plugin, Teardown};

pub use api::{PathIds, error_reply};
use events::EventHandlers;

/// Upper bound of random Janus ids (2^53 - 1, safe in a JavaScript Number).
const MAX_ID: u64 = (1 << 53) - 1;

/// How many events a WebSocket connection may have waiting before it is
/// considered stuck and closed.
const WS_OUTBOUND_LIMIT: usize = 16_384;

/// Locks a mutex, recovering the data if a thread panicked while holding it
/// (the registry stays usable; a panic is a bug that was already reported).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a request came from, and so where a session it creates or claims
/// sends its events.
#[derive(Clone, Debug)]
pub enum Origin {
    /// An HTTP request: events wait for long polls.
    Http,
    /// A WebSocket connection.
    Ws(Arc<WsConn>),
}

/// One WebSocket connection as the core sees it: an outbound queue of JSON
/// texts and the sessions bound to it.
#[derive(Debug)]
pub struct WsConn {
    id: u64,
    tx: mpsc::UnboundedSender<String>,
    queued: AtomicU64,
    closed: AtomicBool,
    sessions: Mutex<HashSet<u64>>,
}

impl WsConn {
    /// A new connection; the transport drains `rx` into the socket and calls
    /// [`WsConn::sent`] after each message.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<String>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = Arc::new(Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            tx,
            queued: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            sessions: Mutex::new(HashSet::new()),
        });
        (conn, rx)
    }

    /// The transport wrote one message to the socket.
    pub fn sent(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether the connection has been closed (by the peer or for overload).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Queues a JSON message; false if the connection is gone.
    pub(crate) fn send(&self, value: &Value) -> bool {
        if self.is_closed() {
            return false;
        }
        if self.queued.load(Ordering::Relaxed) as usize >= WS_OUTBOUND_LIMIT {
            tracing::warn!(
                conn = self.id,
                "websocket client is not reading; closing it"
            );
            self.closed.store(true, Ordering::Relaxed);
            return false;
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(value.to_string()).is_err() {
            self.closed.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// Where a session's events go.
#[derive(Debug, Clone)]
enum Source {
    Http,
    Ws(Arc<WsConn>),
}

impl Source {
    fn from_origin(origin: &Origin) -> Self {
        match origin {
            Origin::Http => Self::Http,
            Origin::Ws(c) => Self::Ws(c.clone()),
        }
    }

    fn transport_name(&self) -> &'static str {
        match self {
            Self::Http => "janus.transport.http",
            Self::Ws(_) => "janus.transport.websockets",
        }
    }
}

/// WebRTC negotiation state of one handle (the part the signalling core
/// tracks; the media layer owns the transport itself).
#[derive(Debug, Default, Clone)]
pub(crate) struct PcState {
    /// A negotiation was started (an offer or answer went either way).
    pub(crate) started: bool,
    /// The client sent an offer (`got-offer`).
    pub(crate) got_offer: bool,
    /// The client sent an answer (`got-answer`).
    pub(crate) got_answer: bool,
    /// The server sent an offer and waits for the answer.
    pub(crate) server_offered: bool,
    /// Both descriptions are known.
    pub(crate) negotiated: bool,
    /// The client's last SDP as received.
    pub(crate) remote_sdp: Option<String>,
    /// The last SDP sent to the client.
    pub(crate) local_sdp: Option<String>,
    /// Candidates that arrived before the PC could use them.
    pub(crate) pending_trickles: Vec<(Instant, Value)>,
    /// The client said it has no more candidates.
    pub(crate) all_trickles: bool,
    /// The client trickles.
    pub(crate) trickle: bool,
    /// The client asked for end-to-end encryption.
    pub(crate) e2ee: bool,
    /// The client offered data channels.
    pub(crate) data_channels: bool,
    /// What the core learned from the client's last description.
    pub(crate) remote_info: Option<crate::sdp::RemoteInfo>,
    /// The transport the core chose for this PC (shard, ICE credentials, SSRCs).
    pub(crate) local: Option<LocalPc>,
    /// What the last local description negotiated.
    pub(crate) local_info: Option<crate::sdp::LocalMediaInfo>,
    /// The shard reported the PC up (`webrtcup` sent).
    pub(crate) up: bool,
    /// What the shard reported since (Admin `handle_info`).
    pub(crate) live: webrtc_info::PcLive,
}

/// One handle: a client's attachment to a plugin.
pub(crate) struct Handle {
    pub(crate) id: u64,
    pub(crate) session_id: u64,
    pub(crate) plugin: Arc<dyn Plugin>,
    pub(crate) plugin_session: OnceLock<PluginSessionId>,
    pub(crate) opaque_id: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) created: Instant,
    pub(crate) detaching: AtomicBool,
    pub(crate) pc: Mutex<PcState>,
}

impl Handle {
    fn href(&self) -> HandleRef {
        HandleRef {
            session_id: self.session_id,
            handle_id: self.id,
        }
    }
}

/// Mutable part of a session.
pub(crate) struct SessionState {
    pub(crate) handles: HashMap<u64, Arc<Handle>>,
    pub(crate) last_activity: Instant,
    /// Per-session timeout: `None` = the global one; `Some(0)` = never.
    pub(crate) timeout: Option<Duration>,
    source: Source,
    /// The WebSocket that owned the session closed at this time (reclaim window).
    transport_gone: Option<Instant>,
    pub(crate) destroyed: bool,
    /// Events waiting for a long poll (HTTP-bound sessions).
    queue: VecDeque<Value>,
}

/// A Janus API session.
pub(crate) struct Session {
    pub(crate) id: u64,
    pub(crate) state: Mutex<SessionState>,
    notify: Notify,
}

/// Settings the core keeps and the Admin API can change at run time.
struct Settings {
    session_timeout_secs: AtomicU64,
    accepting: AtomicBool,
}

/// The Janus API core. Shared by every transport and every plugin thread.
pub struct Gateway {
    config: Config,
    settings: Settings,
    sessions: Mutex<HashMap<u64, Arc<Session>>>,
    plugins: RwLock<Vec<Arc<dyn Plugin>>>,
    tokens: Mutex<HashMap<String, HashSet<String>>>,
    events: EventHandlers,
    started: Instant,
    me: Weak<Self>,
    runtime: tokio::runtime::Handle,
    media: OnceLock<Arc<MediaPlane>>,
    by_plugin_session: Mutex<HashMap<PluginSessionId, Weak<Handle>>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// Creates the core. Must be called inside a tokio runtime; plugins are
    /// added afterwards with [`Gateway::add_plugin`].
    pub fn new(config: Config) -> Arc<Self> {
        let runtime = tokio::runtime::Handle::current();
        let events = EventHandlers::new(&config.events, config.server_name.clone());
        Arc::new_cyclic(|me| Self {
            settings: Settings {
                session_timeout_secs: AtomicU64::new(config.session_timeout.as_secs()),
                accepting: AtomicBool::new(true),
            },
            config,
            sessions: Mutex::new(HashMap::new()),
            plugins: RwLock::new(Vec::new()),
            tokens: Mutex::new(HashMap::new()),
            events,
            started: Instant::now(),
            me: me.clone(),
            runtime,
            media: OnceLock::new(),
            by_plugin_session: Mutex::new(HashMap::new()),
        })
    }

    /// Registers a loaded plugin. A second plugin with the same package is refused.
    pub fn add_plugin(&self, plugin: Arc<dyn Plugin>) -> Result<(), String> {
        let mut plugins = self
            .plugins
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let package = plugin.info().package.clone();
        if plugins.iter().any(|p| p.info().package == package) {
            return Err(format!("two scripts use the package name {package}"));
        }
        plugins.push(plugin);
        Ok(())
    }

    /// Connects the dataplane and starts turning its events into script
    /// callbacks and client events. Call once.
    pub fn connect_media(
        self: &Arc<Self>,
        media: Arc<MediaPlane>,
        events: flume::Receiver<MediaEvent>,
    ) {
        if self.media.set(media).is_err() {
            return;
        }
        let me = Arc::downgrade(self);
        self.runtime.spawn(async move {
            while let Ok(ev) = events.recv_async().await {
                let Some(gw) = me.upgrade() else { return };
                gw.media_event(ev).await;
            }
        });
    }

    /// The media plane, when one runs.
    pub fn media(&self) -> Option<&Arc<MediaPlane>> {
        self.media.get()
    }

    /// The configuration the core runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The loaded plugins, in load order.
    pub fn plugins(&self) -> Vec<Arc<dyn Plugin>> {
        self.plugins
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn plugin(&self, package: &str) -> Option<Arc<dyn Plugin>> {
        self.plugins
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|p| p.info().package == package)
            .cloned()
    }

    fn arc(&self) -> Option<Arc<Self>> {
        self.me.upgrade()
    }

    pub(crate) fn session_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.session_timeout_secs.load(Ordering::Relaxed))
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    fn session(&self, id: u64) -> Option<Arc<Session>> {
        lock(&self.sessions).get(&id).cloned()
    }

    fn handle(&self, href: HandleRef) -> Option<(Arc<Session>, Arc<Handle>)> {
        let session = self.session(href.session_id)?;
        let handle = lock(&session.state).handles.get(&href.handle_id).cloned()?;
        Some((session, handle))
    }

    fn random_id(taken: impl Fn(u64) -> bool) -> u64 {
        loop {
            let id = rand::random_range(1..=MAX_ID);
            if !taken(id) {
                return id;
            }
        }
    }

    /// Queues `event` for the session's client. Dropped if the session is gone.
    fn deliver(&self, session: &Session, event: Value) {
        let mut st = lock(&session.state);
        if st.destroyed {
            return;
        }
        Self::deliver_locked(session, &mut st, event);
    }

    fn deliver_locked(session: &Session, st: &mut SessionState, event: Value) {
        match &st.source {
            Source::Ws(conn) if !conn.is_closed() => {
                if conn.send(&event) {
                    return;
                }
                st.queue.push_back(event);
            }
            _ => st.queue.push_back(event),
        }
        session.notify.notify_waiters();
    }

    /// Refreshes a session's activity time; false if it does not exist.
    pub fn touch(&self, session_id: u64) -> bool {
        match self.session(session_id) {
            Some(s) => {
                let mut st = lock(&s.state);
                if st.destroyed {
                    return false;
                }
                st.last_activity = Instant::now();
                true
            }
            None => false,
        }
    }

    /// HTTP long poll (janus-api.md §8.3): refreshes the session like a
    /// keepalive, then waits up to `wait` for events. `None`: unknown or
    /// finished session (404). An empty vector: nothing arrived (keepalive).
    pub async fn long_poll(
        &self,
        session_id: u64,
        maxev: usize,
        wait: Duration,
    ) -> Option<Vec<Value>> {
        let session = self.session(session_id)?;
        {
            let mut st = lock(&session.state);
            if st.destroyed && st.queue.is_empty() {
                return None;
            }
            st.last_activity = Instant::now();
        }
        let maxev = maxev.max(1);
        let deadline = tokio::time::Instant::now() + wait;
        let mut woken = false;
        loop {
            let notified = session.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = lock(&session.state);
                if !st.queue.is_empty() {
                    let n = maxev.min(st.queue.len());
                    return Some(st.queue.drain(..n).collect());
                }
                if st.destroyed {
                    return None;
                }
                if woken {
                    // Another parked poll took the events.
                    return Some(Vec::new());
                }
            }
            tokio::select! {
                () = &mut notified => woken = true,
                () = tokio::time::sleep_until(deadline) => return Some(Vec::new()),
            }
        }
    }

    /// Authorizes a Janus API request by `apisecret` and/or `token`.
    pub fn authorized(&self, apisecret: Option<&str>, token: Option<&str>) -> bool {
        let secret_ok = |s: &str| apisecret == Some(s);
        let token_ok = |t: Option<&str>| t.is_some_and(|t| lock(&self.tokens).contains_key(t));
        match (&self.config.api_secret, self.config.token_auth) {
            (None, false) => true,
            (Some(s), false) => secret_ok(s),
            (None, true) => token_ok(token),
            // Either credential is enough when both are configured, as in Janus.
            (Some(s), true) => secret_ok(s) || token_ok(token),
        }
    }

    /// Authorizes an Admin API request.
    pub fn admin_authorized(&self, secret: Option<&str>) -> bool {
        match &self.config.admin_secret {
            None => true,
            Some(s) => secret == Some(s.as_str()),
        }
    }

    /// A WebSocket closed: its sessions are destroyed now, or after the reclaim
    /// timeout unless claimed (janus-api.md §7.3).
    pub fn transport_gone(&self, conn: &WsConn) {
        conn.closed.store(true, Ordering::Relaxed);
        let ids: Vec<u64> = lock(&conn.sessions).drain().collect();
        let reclaim = self.config.reclaim_session_timeout;
        for id in ids {
            let Some(session) = self.session(id) else {
                continue;
            };
            let bound_here = {
                let mut st = lock(&session.state);
                let here = matches!(&st.source, Source::Ws(c) if c.id == conn.id);
                if here && !reclaim.is_zero() {
                    st.transport_gone = Some(Instant::now());
                }
                here
            };
            if bound_here && reclaim.is_zero() {
                self.destroy_session(&session, DestroyCause::TransportGone);
            }
        }
    }

    /// Starts the watchdog (every 2 s: session timeouts, reclaim windows,
    /// stale trickles). Call once.
    pub fn start_watchdog(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        self.runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(gw) = me.upgrade() else { return };
                gw.watchdog_pass(Instant::now());
            }
        });
    }

    fn watchdog_pass(&self, now: Instant) {
        let global = self.session_timeout();
        let reclaim = self.config.reclaim_session_timeout;
        let sessions: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        for session in sessions {
            let verdict = {
                let st = lock(&session.state);
                let timeout = st.timeout.unwrap_or(global);
                if st.destroyed {
                    None
                } else if st
                    .transport_gone
                    .is_some_and(|t| now.duration_since(t) >= reclaim)
                {
                    Some(DestroyCause::TransportGone)
                } else if !timeout.is_zero() && now.duration_since(st.last_activity) >= timeout {
                    Some(DestroyCause::Timeout)
                } else {
                    None
                }
            };
            if let Some(cause) = verdict {
                self.destroy_session(&session, cause);
            }
            // Candidates that waited too long for their PC are dropped (45 s).
            for h in lock(&session.state).handles.values() {
                lock(&h.pc)
                    .pending_trickles
                    .retain(|(t, _)| now.duration_since(*t) < Duration::from_secs(45));
            }
        }
    }

    /// Removes a session and tears its handles down (no `detached` events).
    fn destroy_session(&self, session: &Arc<Session>, cause: DestroyCause) {
        let handles: Vec<Arc<Handle>> = {
            let mut st = lock(&session.state);
            if st.destroyed {
                return;
            }
            if cause == DestroyCause::Timeout {
                let ev = json!({"janus": "timeout", "session_id": session.id});
                Self::deliver_locked(session, &mut st, ev);
            } else {
                st.queue.clear();
            }
            st.destroyed = true;
            if let Source::Ws(conn) = &st.source {
                lock(&conn.sessions).remove(&session.id);
            }
            session.notify.notify_waiters();
            st.handles.drain().map(|(_, h)| h).collect()
        };
        lock(&self.sessions).remove(&session.id);
        tracing::debug!(session = session.id, ?cause, "session destroyed");
        let name = match cause {
            DestroyCause::Timeout => "timeout",
            DestroyCause::Request | DestroyCause::TransportGone | DestroyCause::Admin => {
                "destroyed"
            }
        };
        self.events
            .session_event(session.id, name, self.transport_info(session));
        for h in handles {
            self.teardown_handle(&h, false);
        }
    }

    fn transport_info(&self, session: &Session) -> Value {
        let st = lock(&session.state);
        json!({"transport": st.source.transport_name(), "id": session.id.to_string()})
    }

    /// Starts tearing a handle down: the plugin runs `hangupMedia` (if a
    /// negotiation started) and `destroySession`, then calls `session_gone`.
    fn teardown_handle(&self, handle: &Arc<Handle>, notify_detached: bool) {
        handle.detaching.store(true, Ordering::Relaxed);
        let had_pc = lock(&handle.pc).started;
        let teardown = Teardown {
            had_pc,
            notify_detached,
        };
        self.events.handle_event(
            handle.session_id,
            handle.id,
            "detached",
            &handle.plugin.info().package,
            handle.opaque_id.as_deref(),
            handle.token.as_deref(),
        );
        if let Some(pid) = handle.plugin_session.get() {
            lock(&self.by_plugin_session).remove(pid);
            if let Some(media) = self.media.get() {
                media.remove_pc(*pid);
            }
        }
        match handle.plugin_session.get() {
            Some(pid) => handle.plugin.destroy_session(*pid, teardown),
            // createSession never completed: nothing on the plugin side.
            None => self.session_gone(handle.href(), teardown),
        }
    }

    /// Tears down a handle's PeerConnection (client `hangup`, `closePc`, Admin
    /// `hangup_webrtc`, a transport failure): the plugin's `hangupMedia` and the
    /// client's `hangup` event, only if a negotiation had started.
    fn hangup_pc(&self, session: &Session, handle: &Handle, reason: HangupReason) {
        let pid = handle.plugin_session.get().copied();
        if let (Some(pid), Some(media)) = (pid, self.media.get()) {
            if media.has_pc(pid) {
                // The shard closes the PC and reports `Hangup` with this reason,
                // which runs `hangupMedia` and tells the client.
                media.command(
                    pid,
                    ShardCommand::ClosePc {
                        session: pid,
                        reason,
                    },
                );
                return;
            }
        }
        self.pc_down(session, handle, reason);
    }

    /// The PC of `handle` is gone: reset its state, run `hangupMedia` and send
    /// the client `hangup` (only if a negotiation had started).
    fn pc_down(&self, session: &Session, handle: &Handle, reason: HangupReason) {
        let had = {
            let mut pc = lock(&handle.pc);
            let had = pc.started;
            *pc = PcState::default();
            had
        };
        if !had || handle.detaching.load(Ordering::Relaxed) {
            return;
        }
        if let Some(pid) = handle.plugin_session.get() {
            handle.plugin.hangup_media(*pid, reason);
        }
        self.deliver(
            session,
            json!({"janus": "hangup", "session_id": session.id, "sender": handle.id, "reason": reason.as_str()}),
        );
    }

    fn handle_of(&self, pid: PluginSessionId) -> Option<(Arc<Session>, Arc<Handle>)> {
        let h = lock(&self.by_plugin_session).get(&pid)?.upgrade()?;
        let s = self.session(h.session_id)?;
        Some((s, h))
    }

    /// Turns one dataplane event into script callbacks and client events.
    async fn media_event(&self, ev: MediaEvent) {
        match ev {
            MediaEvent::WebrtcUp { session } => {
                let Some((s, h)) = self.handle_of(session) else {
                    return;
                };
                if h.detaching.load(Ordering::Relaxed) {
                    return;
                }
                // setupMedia completes before the client hears webrtcup.
                let _ = h.plugin.setup_media(session).await;
                lock(&h.pc).up = true;
                self.deliver(
                    &s,
                    json!({"janus": "webrtcup", "session_id": s.id, "sender": h.id}),
                );
            }
            MediaEvent::Hangup { session, reason } => {
                if let Some(media) = self.media.get() {
                    media.pc_closed(session);
                }
                let Some((s, h)) = self.handle_of(session) else {
                    return;
                };
                self.pc_down(&s, &h, reason);
            }
            MediaEvent::Receiving {
                session,
                mid_index,
                video,
                receiving,
            } => {
                let Some((s, h)) = self.handle_of(session) else {
                    return;
                };
                let mid = lock(&h.pc)
                    .local_info
                    .as_ref()
                    .and_then(|i| i.media.get(usize::from(mid_index)))
                    .map_or_else(|| mid_index.to_string(), |m| m.mid.clone());
                self.deliver(
                    &s,
                    json!({"janus": "media", "session_id": s.id, "sender": h.id, "mid": mid,
                           "type": if video { "video" } else { "audio" }, "receiving": receiving}),
                );
            }
            MediaEvent::SlowLink {
                session,
                uplink,
                video,
                lost,
            } => {
                let Some((s, h)) = self.handle_of(session) else {
                    return;
                };
                h.plugin.slow_link(session, uplink, video);
                self.deliver(
                    &s,
                    json!({"janus": "slowlink", "session_id": s.id, "sender": h.id,
                           "media": if video { "video" } else { "audio" }, "uplink": uplink, "lost": lost}),
                );
            }
            MediaEvent::IncomingRtp {
                session,
                video,
                bytes,
            } => {
                if let Some((_, h)) = self.handle_of(session) {
                    h.plugin.incoming_rtp(session, video, bytes);
                }
            }
            MediaEvent::IncomingRtcp {
                session,
                video,
                bytes,
            } => {
                if let Some((_, h)) = self.handle_of(session) {
                    h.plugin.incoming_rtcp(session, video, bytes);
                }
            }
            MediaEvent::IncomingData {
                session,
                text,
                label,
                protocol,
                data,
            } => {
                if let Some((_, h)) = self.handle_of(session) {
                    h.plugin.incoming_data(session, text, data, label, protocol);
                }
            }
            MediaEvent::DataReady { session } => {
                if let Some((_, h)) = self.handle_of(session) {
                    h.plugin.data_ready(session);
                }
            }
            MediaEvent::SubstreamChanged { session, substream } => {
                if let Some((_, h)) = self.handle_of(session) {
                    h.plugin.substream_changed(session, substream);
                }
            }
            MediaEvent::TemporalLayerChanged { session, layer } => {
                if let Some((_, h)) = self.handle_of(session) {
                    h.plugin.temporal_layer_changed(session, layer);
                }
            }
            MediaEvent::IcePairSelected { session, remote } => {
                if let Some((_, h)) = self.handle_of(session) {
                    lock(&h.pc).live.selected = Some((remote, Instant::now()));
                }
            }
            MediaEvent::DtlsState { session, state } => {
                if let Some((_, h)) = self.handle_of(session) {
                    lock(&h.pc).live.dtls_state(state, Instant::now());
                }
            }
            MediaEvent::Stats { session, stats } => {
                if let Some((_, h)) = self.handle_of(session) {
                    lock(&h.pc).live.stats(stats, Instant::now());
                }
            }
            _ => {}
        }
    }
}

/// Why a session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DestroyCause {
    Request,
    Timeout,
    TransportGone,
    Admin,
}

impl Core for Gateway {
    fn push_event(&self, handle: HandleRef, transaction: Option<&str>, event: Value) -> i32 {
        let Value::Object(data) = event else {
            return 455;
        };
        let Some(session) = self.session(handle.session_id) else {
            return -2;
        };
        let mut st = lock(&session.state);
        let Some(h) = st.handles.get(&handle.handle_id).cloned() else {
            return -2;
        };
        if st.destroyed || h.detaching.load(Ordering::Relaxed) {
            return 458;
        }
        let mut ev = Map::new();
        ev.insert("janus".into(), "event".into());
        ev.insert("session_id".into(), handle.session_id.into());
        if let Some(t) = transaction {
            ev.insert("transaction".into(), t.into());
        }
        ev.insert("sender".into(), handle.handle_id.into());
        ev.insert(
            "plugindata".into(),
            json!({"plugin": h.plugin.info().package, "data": Value::Object(data)}),
        );
        Self::deliver_locked(&session, &mut st, Value::Object(ev));
        0
    }

    fn push_event_with_jsep(
        &self,
        handle: HandleRef,
        transaction: Option<String>,
        event: Value,
        jsep: Map<String, Value>,
    ) {
        let Some(me) = self.arc() else { return };
        self.runtime.spawn(async move {
            me.deliver_jsep_event(handle, transaction, event, jsep)
                .await;
        });
    }

    fn end_session(&self, handle: HandleRef) {
        let Some(me) = self.arc() else { return };
        // Asynchronous, never re-entrant: the plugin thread is busy right now.
        self.runtime.spawn(async move {
            me.detach(handle);
        });
    }

    fn close_pc(&self, handle: HandleRef) {
        let Some(me) = self.arc() else { return };
        self.runtime.spawn(async move {
            if let Some((s, h)) = me.handle(handle) {
                me.hangup_pc(&s, &h, HangupReason::ClosePc);
            }
        });
    }

    fn events_enabled(&self) -> bool {
        self.events.enabled()
    }

    fn notify_event(&self, package: &str, handle: Option<HandleRef>, event: Value) {
        let opaque = handle
            .and_then(|h| self.handle(h))
            .and_then(|(_, h)| h.opaque_id.clone());
        self.events
            .plugin_event(package, handle, opaque.as_deref(), event);
    }

    fn session_gone(&self, handle: HandleRef, teardown: Teardown) {
        if !teardown.notify_detached {
            return;
        }
        if let Some(session) = self.session(handle.session_id) {
            self.deliver(
                &session,
                json!({"janus": "detached", "session_id": handle.session_id, "sender": handle.handle_id}),
            );
        }
    }

    fn route(&self, update: RouteUpdate) {
        if let Some(media) = self.media.get() {
            media.route(update);
        }
    }

    fn shard_command(&self, command: ShardCommand) {
        let Some(media) = self.media.get() else {
            return;
        };
        let session = match &command {
            ShardCommand::RelayRtp { session, .. }
            | ShardCommand::RelayRtcp { session, .. }
            | ShardCommand::RelayData { session, .. }
            | ShardCommand::ClosePc { session, .. }
            | ShardCommand::StartRecording { session, .. }
            | ShardCommand::StopRecording { session, .. }
            | ShardCommand::RemovePc { session } => *session,
            ShardCommand::CreatePc(c) | ShardCommand::UpdatePc(c) => c.session,
            _ => return,
        };
        media.command(session, command);
    }
}
