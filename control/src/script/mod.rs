//! The QuickJS host: one engine on its own thread per loaded script,
//! implementing spec/script-contract.md so that Janus Duktape scripts run
//! unchanged.
//!
//! [`ScriptPlugin::load`] spawns the script's thread, which owns one
//! `rquickjs` runtime and context. Every entry into JavaScript (callbacks,
//! `resumeScheduler`, timers, `init`, `destroy`) happens on that thread, one
//! at a time; the [`Plugin`] methods and the media entry points below only
//! queue commands on a bounded channel and, where an answer is needed,
//! return a oneshot receiver the thread completes. Host functions called by
//! the script update a per-session media model and tell the core
//! ([`crate::plugin::Core`]) synchronously, never waiting for this thread.
//!
//! Runaway scripts are contained: each entry runs under a time budget
//! ([`ScriptLimits::callback_timeout`], enforced by an interrupt handler)
//! and the runtime has a memory limit. A callback that throws, loops or
//! exhausts memory is logged with the script's file and line, and the
//! thread goes on serving later callbacks and other sessions.
//!
//! # Binary data
//!
//! Packets and binary data-channel messages reach `incomingRtp`,
//! `incomingRtcp` and `incomingBinaryData` as Duktape-style byte strings
//! (one code unit 0–255 per byte, script-contract.md §7). A script may opt
//! in to `Uint8Array`s instead by setting the global
//! `jsfuBinaryAsUint8Array = true` at load time (at top level or in
//! `init`); the relay functions then also accept typed arrays and
//! `ArrayBuffer`s as payloads. The switch is read once, after `init`.

mod convert;
mod engine;
mod extra;
mod host;
mod recording;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jsfu_route::{HangupReason, PluginSessionId};
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tracing::warn;

use self::engine::{Command, Setup};
pub use self::extra::{ExtraError, ExtraFunction, ScriptValue, default_extra_functions};
use crate::config::{RecordingConfig, ScriptConfig, ScriptLimits};
use crate::plugin::{
    CoreRef, HandleRef, JsepForPlugin, MessageReply, Plugin, PluginError, PluginInfo, Teardown,
};

/// How many commands may wait for the script thread.
const QUEUE_CAPACITY: usize = 4096;

/// Why a script could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptLoadError {
    /// The script file could not be read.
    #[error("cannot read script {}: {source}", path.display())]
    Read {
        /// The script.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The script file is empty.
    #[error("script {} is empty", path.display())]
    Empty {
        /// The script.
        path: PathBuf,
    },
    /// Evaluating the script failed (syntax error or uncaught exception).
    #[error("error loading script {}: {message}", path.display())]
    Evaluate {
        /// The script.
        path: PathBuf,
        /// `String(exception)` and the location (`file:line`).
        message: String,
    },
    /// A mandatory callback is not defined.
    #[error("error loading script {}: Function '{name}' is missing", path.display())]
    MissingFunction {
        /// The script.
        path: PathBuf,
        /// The missing function.
        name: &'static str,
    },
    /// `init(config)` threw.
    #[error("error initializing script {}: {message}", path.display())]
    Init {
        /// The script.
        path: PathBuf,
        /// `String(exception)` and the location (`file:line`).
        message: String,
    },
    /// The engine could not be set up.
    #[error("cannot set up the JavaScript engine for {}: {message}", path.display())]
    Engine {
        /// The script.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The script thread could not be started.
    #[error("cannot start the script thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Which optional callbacks the script defines (looked up once, after the
/// script was evaluated; script-contract.md §2 step 6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Callbacks {
    /// `handleAdminMessage`.
    pub handle_admin_message: bool,
    /// `incomingRtp`: every RTP packet goes to the script instead of the native relay.
    pub incoming_rtp: bool,
    /// `incomingRtcp`: every RTCP packet goes to the script.
    pub incoming_rtcp: bool,
    /// `incomingTextData`.
    pub incoming_text_data: bool,
    /// `incomingBinaryData`.
    pub incoming_binary_data: bool,
    /// The deprecated `incomingData` (text messages only).
    pub incoming_data_legacy: bool,
    /// `dataReady`.
    pub data_ready: bool,
    /// `slowLink`.
    pub slow_link: bool,
    /// `substreamChanged`.
    pub substream_changed: bool,
    /// `temporalLayerChanged`.
    pub temporal_layer_changed: bool,
}

impl Callbacks {
    /// Text data-channel messages go to the script (else the native relay).
    pub fn handles_text_data(&self) -> bool {
        self.incoming_text_data || self.incoming_data_legacy
    }

    /// Binary data-channel messages go to the script (else the native relay).
    pub fn handles_binary_data(&self) -> bool {
        self.incoming_binary_data
    }
}

/// A loaded script, as a [`Plugin`].
#[derive(Debug)]
pub struct ScriptPlugin {
    commands: flume::Sender<Command>,
    info: PluginInfo,
    script_name: String,
    callbacks: Callbacks,
}

impl ScriptPlugin {
    /// Spawns the script's thread, installs the environment, evaluates the script,
    /// checks the mandatory callbacks, calls `init(config)` and reads the identity
    /// getters. Blocks until loaded; on failure the error names the file and,
    /// when known, the line.
    pub fn load(
        cfg: &ScriptConfig,
        limits: ScriptLimits,
        recording: RecordingConfig,
        core: CoreRef,
    ) -> Result<Arc<Self>, ScriptLoadError> {
        Self::load_with_extras(cfg, limits, recording, core, default_extra_functions())
    }

    /// [`ScriptPlugin::load`] with a custom set of extra native functions
    /// (script-contract.md §10) instead of [`default_extra_functions`].
    pub fn load_with_extras(
        cfg: &ScriptConfig,
        limits: ScriptLimits,
        recording: RecordingConfig,
        core: CoreRef,
        extras: Vec<ExtraFunction>,
    ) -> Result<Arc<Self>, ScriptLoadError> {
        let (commands, receiver) = flume::bounded(QUEUE_CAPACITY);
        let (loaded_tx, loaded_rx) = std::sync::mpsc::channel();
        let setup = Setup {
            config: cfg.clone(),
            limits,
            recording,
            core,
            extras,
        };
        let thread_name = format!(
            "jsfu-script-{}",
            cfg.file
                .file_stem()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        );
        std::thread::Builder::new()
            .name(thread_name)
            .stack_size(16 * 1024 * 1024)
            .spawn(move || engine::run(setup, loaded_tx, receiver))
            .map_err(ScriptLoadError::Thread)?;
        let loaded = loaded_rx.recv().map_err(|_| ScriptLoadError::Engine {
            path: cfg.file.clone(),
            message: "the script thread ended while loading".to_owned(),
        })??;
        let script_name = cfg
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| cfg.file.display().to_string());
        Ok(Arc::new(Self {
            commands,
            info: loaded.info,
            script_name,
            callbacks: loaded.callbacks,
        }))
    }

    /// The optional callbacks the script defines.
    pub fn callbacks(&self) -> Callbacks {
        self.callbacks
    }

    /// The script defines `incomingRtp` (RTP bypasses the native relay).
    pub fn has_incoming_rtp(&self) -> bool {
        self.callbacks.incoming_rtp
    }

    /// The script defines `incomingRtcp`.
    pub fn has_incoming_rtcp(&self) -> bool {
        self.callbacks.incoming_rtcp
    }

    /// An RTP packet from the peer of `id` (only when [`Self::has_incoming_rtp`]).
    pub fn incoming_rtp(&self, id: PluginSessionId, video: bool, packet: Vec<u8>) {
        self.send_media(Command::IncomingRtp {
            id,
            video,
            rtcp: false,
            packet,
        });
    }

    /// An RTCP compound from the peer of `id` (only when [`Self::has_incoming_rtcp`]).
    pub fn incoming_rtcp(&self, id: PluginSessionId, video: bool, packet: Vec<u8>) {
        self.send_media(Command::IncomingRtp {
            id,
            video,
            rtcp: true,
            packet,
        });
    }

    /// A data-channel message from the peer of `id`: text goes to
    /// `incomingTextData` (or the legacy `incomingData`), binary to
    /// `incomingBinaryData`, if defined.
    pub fn incoming_data(
        &self,
        id: PluginSessionId,
        text: bool,
        data: Vec<u8>,
        label: String,
        protocol: String,
    ) {
        self.send_media(Command::IncomingData {
            id,
            text,
            data,
            label,
            protocol,
        });
    }

    /// The data channel of `id` is ready / drained its buffers: marks the
    /// session data-ready and calls `dataReady` if defined. Never dropped.
    pub fn data_ready(&self, id: PluginSessionId) {
        self.send_lifecycle(Command::DataReady { id });
    }

    /// Packets were lost (`slowLink(id, uplink, isVideo)` if defined).
    pub fn slow_link(&self, id: PluginSessionId, uplink: bool, video: bool) {
        self.send_media(Command::SlowLink { id, uplink, video });
    }

    /// The simulcast substream relayed to `id` changed.
    pub fn substream_changed(&self, id: PluginSessionId, substream: u8) {
        self.send_media(Command::LayerChanged {
            id,
            temporal: false,
            layer: substream,
        });
    }

    /// The temporal layer relayed to `id` changed (called whenever the
    /// script defines `temporalLayerChanged`, decision 1).
    pub fn temporal_layer_changed(&self, id: PluginSessionId, layer: u8) {
        self.send_media(Command::LayerChanged {
            id,
            temporal: true,
            layer,
        });
    }

    /// Queues a command that may be dropped when the script is overloaded.
    fn send_media(&self, command: Command) {
        if let Err(flume::TrySendError::Full(_)) = self.commands.try_send(command) {
            warn!(script = %self.script_name, "script queue full, media callback dropped");
        }
    }

    /// Queues a command that must not be lost: waits for room when the queue is full.
    fn send_lifecycle(&self, command: Command) {
        match self.commands.try_send(command) {
            Ok(()) | Err(flume::TrySendError::Disconnected(_)) => {}
            Err(flume::TrySendError::Full(command)) => {
                warn!(script = %self.script_name, "script queue full, waiting");
                let _ = self.commands.send_timeout(command, Duration::from_secs(30));
            }
        }
    }
}

impl Plugin for ScriptPlugin {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn script_name(&self) -> &str {
        &self.script_name
    }

    fn create_session(
        &self,
        handle: HandleRef,
        _opaque_id: Option<String>,
    ) -> oneshot::Receiver<Result<PluginSessionId, PluginError>> {
        let (reply, rx) = oneshot::channel();
        match self
            .commands
            .try_send(Command::CreateSession { handle, reply })
        {
            Ok(()) => {}
            Err(flume::TrySendError::Full(Command::CreateSession { reply, .. })) => {
                let _ = reply.send(Err(PluginError::Overloaded));
            }
            Err(flume::TrySendError::Disconnected(Command::CreateSession { reply, .. })) => {
                let _ = reply.send(Err(PluginError::NotRunning));
            }
            Err(_) => {}
        }
        rx
    }

    fn handle_message(
        &self,
        id: PluginSessionId,
        transaction: String,
        body: String,
        jsep: Option<JsepForPlugin>,
    ) -> oneshot::Receiver<MessageReply> {
        let (reply, rx) = oneshot::channel();
        if let Err(e) = self.commands.try_send(Command::HandleMessage {
            id,
            transaction,
            body,
            jsep,
            reply,
        }) {
            if let Command::HandleMessage { reply, .. } = e.into_inner() {
                warn!(script = %self.script_name, "script queue full or closed, message refused");
                let _ = reply.send(MessageReply::Error("Duktape error".to_owned()));
            }
        }
        rx
    }

    fn destroy_session(&self, id: PluginSessionId, teardown: Teardown) {
        self.send_lifecycle(Command::DestroySession { id, teardown });
    }

    fn setup_media(&self, id: PluginSessionId) -> oneshot::Receiver<()> {
        let (reply, rx) = oneshot::channel();
        self.send_lifecycle(Command::SetupMedia { id, reply });
        rx
    }

    fn hangup_media(&self, id: PluginSessionId, reason: HangupReason) {
        self.send_lifecycle(Command::HangupMedia { id, reason });
    }

    fn query_session(&self, id: PluginSessionId) -> oneshot::Receiver<Option<Map<String, Value>>> {
        let (reply, rx) = oneshot::channel();
        if let Err(e) = self.commands.try_send(Command::QuerySession { id, reply }) {
            if let Command::QuerySession { reply, .. } = e.into_inner() {
                let _ = reply.send(None);
            }
        }
        rx
    }

    fn substream_changed(&self, id: PluginSessionId, substream: u8) {
        Self::substream_changed(self, id, substream);
    }

    fn wants_incoming_rtp(&self) -> bool {
        self.has_incoming_rtp()
    }

    fn wants_incoming_rtcp(&self) -> bool {
        self.has_incoming_rtcp()
    }

    fn incoming_rtp(&self, id: PluginSessionId, video: bool, packet: Vec<u8>) {
        Self::incoming_rtp(self, id, video, packet);
    }

    fn incoming_rtcp(&self, id: PluginSessionId, video: bool, packet: Vec<u8>) {
        Self::incoming_rtcp(self, id, video, packet);
    }

    fn slow_link(&self, id: PluginSessionId, uplink: bool, video: bool) {
        Self::slow_link(self, id, uplink, video);
    }

    fn wants_incoming_text_data(&self) -> bool {
        self.callbacks().handles_text_data()
    }

    fn wants_incoming_binary_data(&self) -> bool {
        self.callbacks().handles_binary_data()
    }

    fn incoming_data(
        &self,
        id: PluginSessionId,
        text: bool,
        data: Vec<u8>,
        label: String,
        protocol: String,
    ) {
        Self::incoming_data(self, id, text, data, label, protocol);
    }

    fn data_ready(&self, id: PluginSessionId) {
        Self::data_ready(self, id);
    }

    fn temporal_layer_changed(&self, id: PluginSessionId, layer: u8) {
        Self::temporal_layer_changed(self, id, layer);
    }

    fn handle_admin_message(&self, request: Option<String>) -> oneshot::Receiver<Value> {
        let (reply, rx) = oneshot::channel();
        if let Err(e) = self
            .commands
            .try_send(Command::AdminMessage { request, reply })
        {
            if let Command::AdminMessage { reply, .. } = e.into_inner() {
                let _ = reply.send(Value::Object(Map::new()));
            }
        }
        rx
    }

    fn shutdown(&self) -> oneshot::Receiver<()> {
        let (reply, rx) = oneshot::channel();
        match self.commands.try_send(Command::Shutdown { reply }) {
            Ok(()) => {}
            Err(flume::TrySendError::Disconnected(Command::Shutdown { reply })) => {
                let _ = reply.send(());
            }
            Err(flume::TrySendError::Full(command)) => {
                let _ = self.commands.send_timeout(command, Duration::from_secs(30));
            }
            Err(_) => {}
        }
        rx
    }
}
