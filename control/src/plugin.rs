//! The boundary between the Janus API core ([`crate::gateway`]) and a plugin
//! (a loaded script, [`crate::script`]).
//!
//! The core calls a [`Plugin`] for the plugin callbacks (`createSession`,
//! `handleMessage`, ...). Calls that need an answer return a
//! [`tokio::sync::oneshot::Receiver`] that the plugin's own thread completes;
//! the others are fire-and-forget but are executed in the order they were
//! made. The plugin calls back into the core through [`Core`], synchronously
//! and without ever waiting for the plugin's thread (no re-entrancy).

use std::sync::Arc;

use jsfu_route::{HangupReason, PluginSessionId, RouteUpdate, ShardCommand};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

/// A plugin's identity, as `info` and `attach` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The package name clients attach to (`janus.plugin.echojs`).
    pub package: String,
    /// Human-readable name.
    pub name: String,
    /// Author.
    pub author: String,
    /// Description.
    pub description: String,
    /// Numeric version.
    pub version: i64,
    /// Version string.
    pub version_string: String,
}

/// A Janus API handle as the core knows it: the pair of 53-bit ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandleRef {
    /// The Janus session id.
    pub session_id: u64,
    /// The Janus handle id.
    pub handle_id: u64,
}

/// What a `message` request gets back from the plugin.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageReply {
    /// Asynchronous: the client gets `ack`, the real answer comes as an event.
    Ack,
    /// Synchronous: the client gets `success` with this object as `plugindata.data`.
    Success(Map<String, Value>),
    /// Error 462 with this reason (`Duktape error`, `Plugin returned an invalid JSON response`).
    Error(String),
}

/// Why a plugin call failed before the script could answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin's thread is gone (shut down, or failed to load).
    #[error("plugin is not running")]
    NotRunning,
    /// The plugin's command queue is full.
    #[error("plugin is overloaded")]
    Overloaded,
    /// No such plugin session.
    #[error("no such plugin session")]
    NoSession,
}

/// A client message's JSEP as handed to the plugin (already validated and
/// stripped by the core; `text` is the JSON text `handleMessage` receives).
#[derive(Debug, Clone, PartialEq)]
pub struct JsepForPlugin {
    /// `"offer"` or `"answer"`.
    pub kind: String,
    /// The JSON text of the jsep object passed to `handleMessage`
    /// (`type`, stripped `sdp`, then `simulcast`, `svc`, `update`, `e2ee` when applicable).
    pub text: String,
    /// The first video codec of the SDP, lower-case (for answers).
    pub video_codec: Option<String>,
    /// `jsep.e2ee == true`.
    pub e2ee: bool,
    /// The simulcast entries of the SDP (already in `text`, repeated for the host).
    pub simulcast: Option<Value>,
}

/// What the core says when the script's session for a handle must go away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Teardown {
    /// A negotiation was started on the handle, so `hangupMedia` must run
    /// before `destroySession` (compat-notes.md decision 16).
    pub had_pc: bool,
    /// Send the client a `detached` event once `destroySession` returned
    /// (false when the whole Janus session is being destroyed).
    pub notify_detached: bool,
}

/// A loaded plugin (one script). Implemented by [`crate::script::ScriptPlugin`].
pub trait Plugin: Send + Sync + 'static {
    /// Identity (read once at load).
    fn info(&self) -> &PluginInfo;

    /// The script's file name, for Admin `handle_info` (`plugin_specific.script`).
    fn script_name(&self) -> &str;

    /// A client attached a handle: allocate a plugin session id, remember which
    /// handle it belongs to and run `createSession(id)`. Resolves after the
    /// callback returned (or threw: the session exists anyway).
    fn create_session(
        &self,
        handle: HandleRef,
        opaque_id: Option<String>,
    ) -> oneshot::Receiver<Result<PluginSessionId, PluginError>>;

    /// A client `message`: runs `handleMessage(id, transaction, body, jsep)`.
    /// `body` is the body serialized in Janus style ([`crate::json::to_janus_string`]).
    fn handle_message(
        &self,
        id: PluginSessionId,
        transaction: String,
        body: String,
        jsep: Option<JsepForPlugin>,
    ) -> oneshot::Receiver<MessageReply>;

    /// The handle goes away: `hangupMedia` (if `teardown.had_pc` and not yet
    /// called for this cycle), then `destroySession`; afterwards the plugin
    /// calls [`Core::session_gone`].
    fn destroy_session(&self, id: PluginSessionId, teardown: Teardown);

    /// The handle's PeerConnection is up: `setupMedia(id)`. The resolved value
    /// tells the core it may send `webrtcup`.
    fn setup_media(&self, id: PluginSessionId) -> oneshot::Receiver<()>;

    /// The handle's PeerConnection went down: `hangupMedia(id)` (at most once
    /// per `setupMedia` cycle).
    fn hangup_media(&self, id: PluginSessionId, reason: HangupReason);

    /// Admin `handle_info`: `querySession(id)` parsed; `None` when it did not
    /// return a JSON object (then `plugin_specific` is omitted).
    fn query_session(&self, id: PluginSessionId) -> oneshot::Receiver<Option<Map<String, Value>>>;

    /// Admin `message_plugin`: `handleAdminMessage(request)` (`{}` when absent or failing).
    fn handle_admin_message(&self, request: Option<String>) -> oneshot::Receiver<Value>;

    /// Stops the scheduler and timers and calls `destroy()`; resolves when done.
    fn shutdown(&self) -> oneshot::Receiver<()>;

    /// The script defines `incomingRtp` (RTP then goes to it, not to the relay).
    fn wants_incoming_rtp(&self) -> bool {
        false
    }

    /// The script defines `incomingRtcp`.
    fn wants_incoming_rtcp(&self) -> bool {
        false
    }

    /// `incomingRtp(id, isVideo, packet, length)` (slow path).
    fn incoming_rtp(&self, id: PluginSessionId, video: bool, packet: Vec<u8>) {
        let _ = (id, video, packet);
    }

    /// `incomingRtcp(id, isVideo, packet, length)` (slow path).
    fn incoming_rtcp(&self, id: PluginSessionId, video: bool, packet: Vec<u8>) {
        let _ = (id, video, packet);
    }

    /// `slowLink(id, uplink, isVideo)`.
    fn slow_link(&self, id: PluginSessionId, uplink: bool, video: bool) {
        let _ = (id, uplink, video);
    }

    /// The script takes text data-channel messages (`incomingTextData` or
    /// the legacy `incomingData`); otherwise the shard relays them natively.
    fn wants_incoming_text_data(&self) -> bool {
        false
    }

    /// The script takes binary data-channel messages (`incomingBinaryData`).
    fn wants_incoming_binary_data(&self) -> bool {
        false
    }

    /// `incomingTextData(id, buf, len, label, protocol)` (`text`) or
    /// `incomingBinaryData(...)`; `data` is the message's bytes.
    fn incoming_data(
        &self,
        id: PluginSessionId,
        text: bool,
        data: Vec<u8>,
        label: String,
        protocol: String,
    ) {
        let _ = (id, text, data, label, protocol);
    }

    /// `dataReady(id)`: the data channel came up or drained its buffers.
    fn data_ready(&self, id: PluginSessionId) {
        let _ = id;
    }

    /// `substreamChanged(id, substream)`: the simulcast layer relayed to `id`
    /// changed (media.md §7.4).
    fn substream_changed(&self, id: PluginSessionId, substream: u8) {
        let _ = (id, substream);
    }

    /// `temporalLayerChanged(id, layer)`: the temporal layer relayed to `id`
    /// changed (called whenever defined, compat-notes.md decision 1).
    fn temporal_layer_changed(&self, id: PluginSessionId, layer: u8) {
        let _ = (id, layer);
    }
}

/// What a plugin may ask of the core. Every method returns without waiting
/// for any plugin thread.
pub trait Core: Send + Sync + 'static {
    /// `pushEvent` without JSEP: queue an `event` to the handle's client.
    /// Returns 0 (queued), 455 (not a JSON object), 458 (handle being detached
    /// or its session destroyed) or -2 (handle gone).
    fn push_event(&self, handle: HandleRef, transaction: Option<&str>, event: Value) -> i32;

    /// `pushEvent` with JSEP (`jsep` is an object with `type` and a parsable
    /// `sdp`): the core merges the SDP with its transport details and queues
    /// the event asynchronously; failures drop the event.
    fn push_event_with_jsep(
        &self,
        handle: HandleRef,
        transaction: Option<String>,
        event: Value,
        jsep: Map<String, Value>,
    );

    /// `endSession`: detach the handle as if the client had sent `detach`.
    fn end_session(&self, handle: HandleRef);

    /// `closePc`: tear down the handle's PeerConnection (reason `Close PC`).
    fn close_pc(&self, handle: HandleRef);

    /// Whether event handlers are enabled (`eventsIsEnabled`).
    fn events_enabled(&self) -> bool;

    /// `notifyEvent`: forward a plugin event (an object) to the event handlers;
    /// `handle` is `None` when the id named no live session.
    fn notify_event(&self, package: &str, handle: Option<HandleRef>, event: Value);

    /// The plugin finished tearing down `handle`'s session (`destroySession`
    /// returned); the core sends `detached` if the teardown asked for it.
    fn session_gone(&self, handle: HandleRef, teardown: Teardown);

    /// A compiled routing change for the dataplane.
    fn route(&self, update: RouteUpdate);

    /// A one-off media action for the dataplane.
    fn shard_command(&self, command: ShardCommand);
}

/// Shared pointer to the core, as plugins hold it.
pub type CoreRef = Arc<dyn Core>;

/// Plugin session ids in use by any plugin: shards key sessions by this id,
/// so it must be unique across every loaded script, not only within one.
static LIVE_PLUGIN_SESSIONS: std::sync::Mutex<std::collections::BTreeSet<u32>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Picks a fresh plugin session id (random, never 0, unused by any plugin)
/// and reserves it until [`release_plugin_session_id`].
pub fn allocate_plugin_session_id() -> u32 {
    let mut live = LIVE_PLUGIN_SESSIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let id: u32 = rand::random();
        if id != 0 && live.insert(id) {
            return id;
        }
    }
}

/// Frees an id reserved by [`allocate_plugin_session_id`].
pub fn release_plugin_session_id(id: u32) {
    LIVE_PLUGIN_SESSIONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&id);
}
