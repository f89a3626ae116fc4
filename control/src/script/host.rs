//! The host side of the script contract: the per-session media model that
//! the host functions change (gates, recipients, caps, recordings, ...) and
//! the host functions themselves (script-contract.md §6).
//!
//! Everything here runs on the script's thread. Host functions never call
//! back into JavaScript; they update the model, tell the core, and return.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use jsfu_route::{
    Medium, PluginSessionId, RouteUpdate, SessionRoute, ShardCommand, SimulcastTarget,
};
use rquickjs::function::Rest;
use rquickjs::{Ctx, Exception, Function, Object, Persistent, Value};
use serde_json::Value as Json;
use tracing::{debug, warn};

use super::convert::{
    binary_bytes_of_text, duk_type, invalid_argument, js_text, to_i32, to_u16, to_u32,
};
use super::extra::{ExtraFunction, ScriptValue};
use super::recording;
use crate::config::RecordingConfig;
use crate::plugin::{CoreRef, HandleRef};

/// Shared handle to the host state, captured by every host function.
pub(crate) type HostRef = Rc<RefCell<Host>>;

/// The control-side model of one plugin session.
#[derive(Debug)]
pub(crate) struct Session {
    /// The Janus handle it belongs to.
    pub(crate) handle: HandleRef,
    /// Gates, recipients, caps and simulcast target, as the script set them.
    pub(crate) route: SessionRoute,
    /// The route as last sent to the dataplane (None: never sent).
    pub(crate) sent_route: Option<SessionRoute>,
    /// The session whose media this one currently receives (for keyframe requests).
    pub(crate) sender: Option<PluginSessionId>,
    /// The first simulcast entry of the last JSEP (`handleMessage`).
    pub(crate) simulcast: Option<Json>,
    /// The negotiated video codec (from answers).
    pub(crate) video_codec: Option<String>,
    /// The client asked for end-to-end encryption.
    pub(crate) e2ee: bool,
    /// Active recorders: audio, video, data.
    pub(crate) recording: [bool; 3],
    /// The data channel signalled readiness (`dataReady`).
    pub(crate) data_ready: bool,
    /// `setupMedia` ran in the current cycle.
    pub(crate) started: bool,
    /// `hangupMedia` ran in the current cycle (cleared by `setupMedia`).
    pub(crate) hanging_up: bool,
}

impl Session {
    pub(crate) fn new(handle: HandleRef) -> Self {
        Self {
            handle,
            route: SessionRoute::default(),
            sent_route: None,
            sender: None,
            simulcast: None,
            video_codec: None,
            e2ee: false,
            recording: [false; 3],
            data_ready: false,
            started: false,
            hanging_up: false,
        }
    }
}

fn slot(medium: Medium) -> usize {
    match medium {
        Medium::Audio => 0,
        Medium::Video => 1,
        Medium::Data => 2,
    }
}

/// A pending `timeCallback`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timer {
    pub(crate) at: Instant,
    pub(crate) seq: u64,
    pub(crate) name: String,
    pub(crate) arg: Option<String>,
}

/// Everything the host functions share.
pub(crate) struct Host {
    pub(crate) core: CoreRef,
    /// The script's path, for logs.
    pub(crate) script: String,
    /// `getModulesFolder()`.
    pub(crate) modules: String,
    pub(crate) recording: RecordingConfig,
    pub(crate) sessions: HashMap<u32, Session>,
    /// Wake-ups requested by `pokeScheduler` and not yet delivered.
    pub(crate) pokes: usize,
    pub(crate) timers: BinaryHeap<Reverse<Timer>>,
    timer_seq: u64,
    epoch: u64,
    /// The package, once the identity was read; `notifyEvent`s before that wait.
    pub(crate) package: Option<String>,
    pub(crate) pending_notifications: Vec<(Option<HandleRef>, Json)>,
    /// The script opted in to `Uint8Array` binary data.
    pub(crate) binary_as_u8: bool,
    /// JavaScript helpers returned by the prelude.
    pub(crate) helpers: Option<Persistent<Object<'static>>>,
}

impl Host {
    pub(crate) fn new(
        core: CoreRef,
        script: String,
        modules: String,
        recording: RecordingConfig,
    ) -> Self {
        Self {
            core,
            script,
            modules,
            recording,
            sessions: HashMap::new(),
            pokes: 0,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            epoch: 0,
            package: None,
            pending_notifications: Vec::new(),
            binary_as_u8: false,
            helpers: None,
        }
    }

    /// A fresh plugin session id: random, never 0, not in use by any plugin
    /// (shards key sessions by it).
    pub(crate) fn allocate_id(&self) -> u32 {
        crate::plugin::allocate_plugin_session_id()
    }

    /// Sends `id`'s route state to the dataplane with a new epoch, unless
    /// the dataplane already holds exactly this state (a script repeating a
    /// setting: each update wakes a shard).
    pub(crate) fn emit_route(&mut self, id: u32) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if let Some(sent) = &s.sent_route {
            s.route.epoch = sent.epoch;
            if s.route == *sent {
                return;
            }
        }
        self.epoch += 1;
        s.route.epoch = jsfu_route::Epoch(self.epoch);
        s.sent_route = Some(s.route.clone());
        self.core.route(RouteUpdate::Route {
            session: PluginSessionId(id),
            route: s.route.clone(),
        });
    }

    /// The reset before `hangupMedia` (script-contract.md §9).
    pub(crate) fn reset_for_hangup(&mut self, id: u32) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.started = false;
        s.hanging_up = true;
        s.route.gates = Default::default();
        s.route.bitrate_cap = 0;
        s.route.pli_freq_secs = 0;
        s.route.simulcast_target = SimulcastTarget::default();
        s.e2ee = false;
        s.video_codec = None;
        s.simulcast = None;
        s.data_ready = false;
        let recipients = std::mem::take(&mut s.route.recipients);
        for r in recipients {
            if let Some(rs) = self.sessions.get_mut(&r.0) {
                rs.sender = None;
            }
        }
        self.emit_route(id);
    }

    /// Forgets a session after `destroySession` returned.
    pub(crate) fn remove_session(&mut self, id: u32) -> Option<Session> {
        let mut s = self.sessions.remove(&id)?;
        crate::plugin::release_plugin_session_id(id);
        for r in s.route.recipients.drain(..) {
            if let Some(rs) = self.sessions.get_mut(&r.0) {
                if rs.sender == Some(PluginSessionId(id)) {
                    rs.sender = None;
                }
            }
        }
        for (i, medium) in [Medium::Audio, Medium::Video, Medium::Data]
            .into_iter()
            .enumerate()
        {
            if s.recording[i] {
                s.recording[i] = false;
                self.core.shard_command(ShardCommand::StopRecording {
                    session: PluginSessionId(id),
                    medium,
                });
            }
        }
        self.core.route(RouteUpdate::Remove {
            session: PluginSessionId(id),
        });
        Some(s)
    }

    /// Queues a timer.
    pub(crate) fn add_timer(&mut self, name: String, arg: Option<String>, after: Duration) {
        self.timer_seq += 1;
        let at = Instant::now() + after;
        self.timers.push(Reverse(Timer {
            at,
            seq: self.timer_seq,
            name,
            arg,
        }));
    }

    /// Hands an event-handler notification to the core (or keeps it until
    /// the package is known).
    pub(crate) fn notify(&mut self, handle: Option<HandleRef>, event: Json) {
        match &self.package {
            Some(package) => self.core.notify_event(package, handle, event),
            None => self.pending_notifications.push((handle, event)),
        }
    }

    fn session(&self, id: u32) -> Result<&Session, HostError> {
        self.sessions
            .get(&id)
            .ok_or_else(|| HostError::Throw(format!("Session {id} doesn't exist")))
    }

    fn session_mut(&mut self, id: u32) -> Result<&mut Session, HostError> {
        self.sessions
            .get_mut(&id)
            .ok_or_else(|| HostError::Throw(format!("Session {id} doesn't exist")))
    }
}

/// Why a host function failed.
#[derive(Debug)]
pub(crate) enum HostError {
    /// Throw a plain `Error` with this message.
    Throw(String),
    /// An engine error (an exception is already pending).
    Js(rquickjs::Error),
}

impl From<rquickjs::Error> for HostError {
    fn from(e: rquickjs::Error) -> Self {
        Self::Js(e)
    }
}

type HostResult<'js> = Result<Value<'js>, HostError>;

/// The arguments of one call, cut to the function's length.
pub(crate) struct ArgList<'js> {
    ctx: Ctx<'js>,
    values: Vec<Value<'js>>,
}

impl<'js> ArgList<'js> {
    fn get(&self, i: usize) -> Value<'js> {
        self.values
            .get(i)
            .cloned()
            .unwrap_or_else(|| Value::new_undefined(self.ctx.clone()))
    }

    fn type_error(&self, i: usize, expected: &str) -> HostError {
        HostError::Throw(invalid_argument(expected, duk_type(&self.get(i))))
    }

    fn number(&self, i: usize) -> Result<f64, HostError> {
        self.get(i)
            .as_number()
            .ok_or_else(|| self.type_error(i, "NUMBER"))
    }

    fn boolean(&self, i: usize) -> Result<bool, HostError> {
        self.get(i)
            .as_bool()
            .ok_or_else(|| self.type_error(i, "BOOLEAN"))
    }

    fn string(&self, i: usize) -> Result<String, HostError> {
        let v = self.get(i);
        if !v.is_string() {
            return Err(self.type_error(i, "STRING"));
        }
        Ok(js_text(&self.ctx, &v)?)
    }

    /// A string, `null` or `undefined`.
    fn opt_string(&self, i: usize) -> Result<Option<String>, HostError> {
        let v = self.get(i);
        if v.is_null() || v.is_undefined() {
            Ok(None)
        } else {
            self.string(i).map(Some)
        }
    }

    /// The string if it is one (no error otherwise).
    fn string_if(&self, i: usize) -> Result<Option<String>, HostError> {
        let v = self.get(i);
        if v.is_string() {
            Ok(Some(js_text(&self.ctx, &v)?))
        } else {
            Ok(None)
        }
    }
}

fn number<'js>(ctx: &Ctx<'js>, n: f64) -> HostResult<'js> {
    Ok(Value::new_number(ctx.clone(), n))
}

fn zero<'js>(ctx: &Ctx<'js>) -> HostResult<'js> {
    number(ctx, 0.0)
}

type HostFn = for<'js> fn(&Ctx<'js>, &HostRef, &ArgList<'js>) -> HostResult<'js>;

/// The host functions of script-contract.md §6 with their `.length`.
const HOST_FUNCTIONS: &[(&str, usize, HostFn)] = &[
    ("getModulesFolder", 0, get_modules_folder),
    ("readFile", 1, read_file),
    ("getDuktapeVersion", 0, get_duktape_version),
    ("pokeScheduler", 0, poke_scheduler),
    ("timeCallback", 3, time_callback),
    ("pushEvent", 4, push_event),
    ("notifyEvent", 2, notify_event),
    ("eventsIsEnabled", 0, events_is_enabled),
    ("closePc", 1, close_pc),
    ("endSession", 1, end_session),
    ("configureMedium", 4, configure_medium),
    ("addRecipient", 2, add_recipient),
    ("removeRecipient", 2, remove_recipient),
    ("setBitrate", 2, set_bitrate),
    ("setPliFreq", 2, set_pli_freq),
    ("setSubstream", 2, set_substream),
    ("setTemporalLayer", 2, set_temporal_layer),
    ("sendPli", 1, send_pli),
    ("relayRtp", 4, relay_rtp),
    ("relayRtcp", 4, relay_rtcp),
    ("relayTextData", 5, relay_text_data),
    ("relayBinaryData", 5, relay_binary_data),
    ("relayData", 5, relay_data),
    ("startRecording", 13, start_recording),
    ("stopRecording", 4, stop_recording),
];

/// Defines the host functions, then the extra functions, as globals.
pub(crate) fn install<'js>(
    ctx: &Ctx<'js>,
    host: &HostRef,
    extras: &[ExtraFunction],
) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    for &(name, length, f) in HOST_FUNCTIONS {
        let host = host.clone();
        let func = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
            let mut values = args.0;
            values.truncate(length);
            let list = ArgList {
                ctx: ctx.clone(),
                values,
            };
            match f(&ctx, &host, &list) {
                Ok(v) => Ok(v),
                Err(HostError::Throw(msg)) => Err(Exception::throw_message(&ctx, &msg)),
                Err(HostError::Js(e)) => Err(e),
            }
        })?
        .with_name(name)?
        .with_length(length)?;
        globals.set(name, func)?;
    }
    for extra in extras {
        let extra = *extra;
        let func = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
            let mut values = Vec::with_capacity(extra.length);
            for i in 0..extra.length {
                let v = args
                    .0
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| Value::new_undefined(ctx.clone()));
                values.push(to_script_value(&ctx, &v)?);
            }
            match (extra.call)(&values) {
                Ok(v) => from_script_value(&ctx, v),
                Err(e) => Err(Exception::throw_message(&ctx, &e.to_string())),
            }
        })?
        .with_name(extra.name)?
        .with_length(extra.length)?;
        globals.set(extra.name, func)?;
    }
    Ok(())
}

fn to_script_value<'js>(ctx: &Ctx<'js>, v: &Value<'js>) -> rquickjs::Result<ScriptValue> {
    Ok(if v.is_undefined() {
        ScriptValue::Undefined
    } else if v.is_null() {
        ScriptValue::Null
    } else if let Some(b) = v.as_bool() {
        ScriptValue::Boolean(b)
    } else if let Some(n) = v.as_number() {
        ScriptValue::Number(n)
    } else if v.is_string() {
        ScriptValue::String(js_text(ctx, v)?)
    } else {
        ScriptValue::Object
    })
}

fn from_script_value<'js>(ctx: &Ctx<'js>, v: ScriptValue) -> rquickjs::Result<Value<'js>> {
    Ok(match v {
        ScriptValue::Undefined | ScriptValue::Object => Value::new_undefined(ctx.clone()),
        ScriptValue::Null => Value::new_null(ctx.clone()),
        ScriptValue::Boolean(b) => Value::new_bool(ctx.clone(), b),
        ScriptValue::Number(n) => Value::new_number(ctx.clone(), n),
        ScriptValue::String(s) => rquickjs::String::from_str(ctx.clone(), &s)?.into_value(),
    })
}

fn get_modules_folder<'js>(
    ctx: &Ctx<'js>,
    host: &HostRef,
    _args: &ArgList<'js>,
) -> HostResult<'js> {
    let folder = host.borrow().modules.clone();
    Ok(rquickjs::String::from_str(ctx.clone(), &folder)?.into_value())
}

fn read_file<'js>(ctx: &Ctx<'js>, _host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    use std::io::Read;
    let path = args.string(0)?;
    let mut file = std::fs::File::open(&path)
        .map_err(|_| HostError::Throw(format!("Error opening file: {path}\n")))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|_| HostError::Throw(format!("Error reading file: {path}\n")))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => super::convert::latin1_string(e.as_bytes()),
    };
    Ok(rquickjs::String::from_str(ctx.clone(), &text)?.into_value())
}

fn get_duktape_version<'js>(
    ctx: &Ctx<'js>,
    _host: &HostRef,
    _args: &ArgList<'js>,
) -> HostResult<'js> {
    number(ctx, 20700.0)
}

fn poke_scheduler<'js>(ctx: &Ctx<'js>, host: &HostRef, _args: &ArgList<'js>) -> HostResult<'js> {
    host.borrow_mut().pokes += 1;
    zero(ctx)
}

fn time_callback<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let name = args.string(0)?;
    // Decision 5: `null` is accepted as "no argument".
    let arg = args.opt_string(1)?;
    let ms_value = args.get(2);
    let ms = if ms_value.is_undefined() {
        0.0
    } else {
        ms_value
            .as_number()
            .ok_or_else(|| args.type_error(2, "NUMBER"))?
    };
    let ms = if ms.is_finite() && ms > 0.0 {
        ms.trunc().min(u32::MAX as f64)
    } else {
        0.0
    };
    host.borrow_mut()
        .add_timer(name, arg, Duration::from_millis(ms as u64));
    zero(ctx)
}

fn push_event<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let transaction = args.opt_string(1)?;
    let event_text = args.string(2)?;
    let jsep_text = args.opt_string(3)?;
    let event =
        crate::json::parse_container(&event_text).map_err(|e| HostError::Throw(e.to_string()))?;
    let jsep = match &jsep_text {
        Some(t) => {
            Some(crate::json::parse_container(t).map_err(|e| HostError::Throw(e.to_string()))?)
        }
        None => None,
    };
    let mut h = host.borrow_mut();
    let core = h.core.clone();
    let handle = h.session(id)?.handle;
    let Some(jsep) = jsep else {
        drop(h);
        let result = core.push_event(handle, transaction.as_deref(), event);
        return number(ctx, f64::from(result));
    };
    let Json::Object(jsep) = jsep else {
        return Err(HostError::Throw(
            "Error parsing answer: Invalid SDP (the JSEP is not an object)".into(),
        ));
    };
    let sdp_text = jsep.get("sdp").and_then(Json::as_str).unwrap_or("");
    let sdp = crate::sdp::parse(sdp_text)
        .map_err(|e| HostError::Throw(format!("Error parsing answer: {e}")))?;
    let session = h.session_mut(id)?;
    if jsep.get("e2ee").and_then(Json::as_bool) == Some(true) {
        session.e2ee = true;
    }
    let is_answer = jsep
        .get("type")
        .and_then(Json::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("answer"));
    if is_answer {
        session.video_codec = sdp.first_video_codec();
    }
    drop(h);
    core.push_event_with_jsep(handle, transaction, event, jsep);
    zero(ctx)
}

fn notify_event<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let text = args.string(1)?;
    let core = host.borrow().core.clone();
    if !core.events_enabled() {
        return zero(ctx);
    }
    let event = crate::json::parse_container(&text).map_err(|e| HostError::Throw(e.to_string()))?;
    let mut h = host.borrow_mut();
    let handle = h.sessions.get(&id).map(|s| s.handle);
    h.notify(handle, event);
    zero(ctx)
}

fn events_is_enabled<'js>(ctx: &Ctx<'js>, host: &HostRef, _args: &ArgList<'js>) -> HostResult<'js> {
    let enabled = host.borrow().core.events_enabled();
    number(ctx, if enabled { 1.0 } else { 0.0 })
}

fn close_pc<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let h = host.borrow();
    let handle = h.session(id)?.handle;
    let core = h.core.clone();
    drop(h);
    core.close_pc(handle);
    zero(ctx)
}

fn end_session<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let h = host.borrow();
    let handle = h.session(id)?.handle;
    let core = h.core.clone();
    drop(h);
    core.end_session(handle);
    zero(ctx)
}

fn configure_medium<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let medium = args.string(1)?;
    let direction = args.string(2)?;
    let enabled = args.boolean(3)?;
    let mut h = host.borrow_mut();
    let session = h.session_mut(id)?;
    let Some(medium) = Medium::parse(&medium) else {
        return zero(ctx);
    };
    let incoming = direction.eq_ignore_ascii_case("in");
    if session.route.gates.get(medium, incoming) != enabled {
        session.route.gates.set(medium, incoming, enabled);
        h.emit_route(id);
    }
    zero(ctx)
}

fn add_recipient<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let rid = to_u32(args.number(1)?);
    let mut h = host.borrow_mut();
    h.session(id)?;
    if !h.sessions.contains_key(&rid) {
        return Err(HostError::Throw(format!(
            "Recipient session {rid} doesn't exist"
        )));
    }
    let rid_key = PluginSessionId(rid);
    let session = h.session_mut(id)?;
    if !session.route.recipients.contains(&rid_key) {
        session.route.recipients.push(rid_key);
        if let Some(r) = h.sessions.get_mut(&rid) {
            r.sender = Some(PluginSessionId(id));
        }
        h.emit_route(id);
    }
    zero(ctx)
}

fn remove_recipient<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let rid = to_u32(args.number(1)?);
    let mut h = host.borrow_mut();
    h.session(id)?;
    if !h.sessions.contains_key(&rid) {
        return Err(HostError::Throw(format!(
            "Recipient session {rid} doesn't exist"
        )));
    }
    let rid_key = PluginSessionId(rid);
    let session = h.session_mut(id)?;
    if let Some(pos) = session.route.recipients.iter().position(|r| *r == rid_key) {
        session.route.recipients.remove(pos);
        // Decision 10: cleared even if it pointed at another session.
        if let Some(r) = h.sessions.get_mut(&rid) {
            r.sender = None;
        }
        h.emit_route(id);
    }
    zero(ctx)
}

fn set_bitrate<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let bitrate = to_u32(args.number(1)?);
    let mut h = host.borrow_mut();
    h.session_mut(id)?.route.bitrate_cap = bitrate;
    // Always sent: a cap applies at once (a REMB) even if unchanged.
    h.emit_route(id);
    zero(ctx)
}

fn set_pli_freq<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let freq = to_u16(args.number(1)?);
    let mut h = host.borrow_mut();
    let session = h.session_mut(id)?;
    if session.route.pli_freq_secs != freq {
        session.route.pli_freq_secs = freq;
        h.emit_route(id);
    }
    zero(ctx)
}

fn set_layer<'js>(
    ctx: &Ctx<'js>,
    host: &HostRef,
    args: &ArgList<'js>,
    temporal: bool,
) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let value = to_u16(args.number(1)?);
    let mut h = host.borrow_mut();
    let session = h.session_mut(id)?;
    if value > 2 {
        return zero(ctx);
    }
    // At most 2 (checked above).
    let value = value as u8;
    let target = &mut session.route.simulcast_target;
    let field = if temporal {
        &mut target.temporal
    } else {
        &mut target.substream
    };
    if *field != value {
        *field = value;
        h.emit_route(id);
    }
    zero(ctx)
}

fn set_substream<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    set_layer(ctx, host, args, false)
}

fn set_temporal_layer<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    set_layer(ctx, host, args, true)
}

fn send_pli<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let h = host.borrow();
    // Decision 2: an Error, not the bare id.
    h.session(id)?;
    h.core.route(RouteUpdate::SendPli {
        session: PluginSessionId(id),
    });
    zero(ctx)
}

/// The bytes of a payload argument (already type-checked): a string by the
/// binary or text rule, or a buffer when the script opted in.
fn payload_bytes<'js>(
    ctx: &Ctx<'js>,
    host: &HostRef,
    value: &Value<'js>,
    text: bool,
) -> Result<Vec<u8>, HostError> {
    if value.is_string() {
        let s = js_text(ctx, value)?;
        return Ok(if text {
            s.into_bytes()
        } else {
            binary_bytes_of_text(s)
        });
    }
    let helpers = host.borrow().helpers.clone();
    let Some(helpers) = helpers else {
        return Ok(Vec::new());
    };
    let helpers = helpers.restore(ctx)?;
    let latin1: Function = helpers.get("latin1Of")?;
    let s: Value = latin1.call((value.clone(),))?;
    Ok(binary_bytes_of_text(js_text(ctx, &s)?))
}

/// Checks a payload argument's type: a string, or (opted in) a buffer.
fn payload_arg<'js>(
    ctx: &Ctx<'js>,
    host: &HostRef,
    args: &ArgList<'js>,
    i: usize,
) -> Result<Value<'js>, HostError> {
    let v = args.get(i);
    if v.is_string() {
        return Ok(v);
    }
    if host.borrow().binary_as_u8 && v.is_object() {
        let helpers = host.borrow().helpers.clone();
        if let Some(helpers) = helpers {
            let helpers = helpers.restore(ctx)?;
            let is_buffer: Function = helpers.get("isBufferLike")?;
            if is_buffer.call::<_, bool>((v.clone(),))? {
                return Ok(v);
            }
        }
    }
    Err(args.type_error(i, "STRING"))
}

fn relay_media<'js>(
    ctx: &Ctx<'js>,
    host: &HostRef,
    args: &ArgList<'js>,
    rtcp: bool,
) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let video = args.boolean(1)?;
    let packet = payload_arg(ctx, host, args, 2)?;
    let declared = to_i32(args.number(3)?);
    if declared < 1 {
        return Err(HostError::Throw(format!(
            "Invalid payload of declared size {declared}"
        )));
    }
    host.borrow().session(id)?;
    let mut bytes = payload_bytes(ctx, host, &packet, false)?;
    // Decision 8: clamp to the available bytes.
    bytes.truncate(declared as usize);
    if bytes.is_empty() {
        return zero(ctx);
    }
    let session = PluginSessionId(id);
    let command = if rtcp {
        ShardCommand::RelayRtcp {
            session,
            video,
            packet: bytes,
        }
    } else {
        ShardCommand::RelayRtp {
            session,
            video,
            packet: bytes,
        }
    };
    host.borrow().core.shard_command(command);
    zero(ctx)
}

fn relay_rtp<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    relay_media(ctx, host, args, false)
}

fn relay_rtcp<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    relay_media(ctx, host, args, true)
}

fn relay_datachannel<'js>(
    ctx: &Ctx<'js>,
    host: &HostRef,
    args: &ArgList<'js>,
    text: bool,
) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let data = payload_arg(ctx, host, args, 1)?;
    let declared = to_i32(args.number(2)?);
    let label = args.opt_string(3)?;
    let protocol = args.opt_string(4)?;
    if declared < 1 {
        return Err(HostError::Throw(format!(
            "Invalid payload of declared size {declared}"
        )));
    }
    if !host.borrow().session(id)?.data_ready {
        return Err(HostError::Throw(format!(
            "Datachannel not ready yet for session {id}"
        )));
    }
    let mut bytes = payload_bytes(ctx, host, &data, text)?;
    bytes.truncate(declared as usize);
    if bytes.is_empty() {
        return zero(ctx);
    }
    host.borrow().core.shard_command(ShardCommand::RelayData {
        session: PluginSessionId(id),
        text,
        label: label.unwrap_or_else(|| "JanusDataChannel".to_owned()),
        protocol: protocol.unwrap_or_default(),
        data: bytes,
    });
    zero(ctx)
}

fn relay_text_data<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    relay_datachannel(ctx, host, args, true)
}

fn relay_binary_data<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    relay_datachannel(ctx, host, args, false)
}

fn relay_data<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    warn!(script = %host.borrow().script, "relayData is deprecated, use relayTextData or relayBinaryData");
    relay_datachannel(ctx, host, args, true)
}

/// One recorder `startRecording` is about to start.
struct Planned {
    medium: Medium,
    codec: String,
    fmtp: Option<String>,
    target: std::path::PathBuf,
}

fn start_recording<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let mut h = host.borrow_mut();
    let session = h.session(id)?;
    let mut occupied = session.recording;
    let encrypted = session.e2ee;
    let failed = || HostError::Throw(format!("Error starting the recording of session {id}"));
    let mut produced = 0usize;
    let mut planned: Vec<Planned> = Vec::new();
    for group in 0..3 {
        let base = 1 + group * 4;
        let (Some(kind), Some(codec)) = (args.string_if(base)?, args.string_if(base + 1)?) else {
            continue;
        };
        let folder = args.string_if(base + 2)?;
        let filename = args.string_if(base + 3)?;
        let (name, fmtp) = recording::split_codec(&codec);
        if !recording::known_codec(name) {
            warn!(script = %h.script, session = id, codec = %name, "startRecording: unsupported codec");
            return Err(failed());
        }
        let target = recording::target_path(
            &h.recording,
            folder.as_deref(),
            filename.as_deref(),
            rand::random(),
        )
        .map_err(|reason| {
            warn!(script = %h.script, session = id, %reason, "startRecording: refused");
            failed()
        })?;
        // Decision 21: decide the slot before any file exists. A recorder
        // discarded for a busy slot was not produced (Janus throws when that
        // is all a call did); an unknown type counts as produced.
        match Medium::parse(&kind) {
            None => {
                produced += 1;
                warn!(script = %h.script, session = id, kind = %kind, "startRecording: unknown type, ignored");
            }
            Some(medium) if occupied[slot(medium)] => {
                warn!(script = %h.script, session = id, kind = %kind, "startRecording: already recording, ignored");
            }
            Some(medium) => {
                produced += 1;
                occupied[slot(medium)] = true;
                planned.push(Planned {
                    medium,
                    codec: name.to_owned(),
                    fmtp: fmtp.map(str::to_owned),
                    target,
                });
            }
        }
    }
    if produced == 0 {
        return Err(failed());
    }
    let mut created = Vec::with_capacity(planned.len());
    for plan in planned {
        match recording::create(&plan.target, h.recording.tmp_ext.as_deref()) {
            Ok(file) => created.push((plan, file)),
            Err(reason) => {
                warn!(script = %h.script, session = id, %reason, "startRecording: cannot create the file");
                for (_, file) in created {
                    let _ = std::fs::remove_file(&file.path);
                }
                return Err(failed());
            }
        }
    }
    let mut video = false;
    let core = h.core.clone();
    let session = h.session_mut(id)?;
    for (plan, file) in created {
        debug!(session = id, path = %file.path.display(), "recording started");
        session.recording[slot(plan.medium)] = true;
        video |= plan.medium == Medium::Video;
        core.shard_command(ShardCommand::StartRecording {
            session: PluginSessionId(id),
            medium: plan.medium,
            codec: plan.codec,
            fmtp: plan.fmtp,
            file: file.file,
            path: file.path,
            final_path: file.final_path,
            encrypted,
        });
    }
    if video {
        core.route(RouteUpdate::SendPli {
            session: PluginSessionId(id),
        });
    }
    zero(ctx)
}

fn stop_recording<'js>(ctx: &Ctx<'js>, host: &HostRef, args: &ArgList<'js>) -> HostResult<'js> {
    let id = to_u32(args.number(0)?);
    let mut h = host.borrow_mut();
    let core = h.core.clone();
    let session = h.session_mut(id)?;
    for i in 1..4 {
        let Some(kind) = args.string_if(i)? else {
            continue;
        };
        let Some(medium) = Medium::parse(&kind) else {
            continue;
        };
        if session.recording[slot(medium)] {
            session.recording[slot(medium)] = false;
            core.shard_command(ShardCommand::StopRecording {
                session: PluginSessionId(id),
                medium,
            });
        }
    }
    zero(ctx)
}
