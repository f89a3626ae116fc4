//! Janus API request processing, in the order of janus-api.md §3 (which
//! decides which error wins).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use jsfu_route::HangupReason;
use serde_json::{Map, Value, json};

use super::negotiate;
use super::{DestroyCause, Gateway, Handle, Origin, PcState, Session, SessionState, Source, lock};
use crate::error::{ErrorCode, JanusError};
use crate::json::to_janus_string;
use crate::plugin::{HandleRef, JsepForPlugin, MessageReply};

/// Ids taken from an HTTP path (`/janus/{session}/{handle}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathIds {
    /// The session id in the path.
    pub session: Option<u64>,
    /// The handle id in the path.
    pub handle: Option<u64>,
}

/// A request's identity, as far as it was read before failing.
#[derive(Debug, Default, Clone)]
pub(super) struct Ctx {
    pub(super) session_id: i64,
    pub(super) transaction: Option<String>,
}

impl Ctx {
    pub(super) fn error(&self, e: JanusError) -> Value {
        error_reply(self.session_id, self.transaction.as_deref(), &e)
    }
}

/// Builds an error reply (`session_id` when non-zero, `transaction` when read).
pub fn error_reply(session_id: i64, transaction: Option<&str>, e: &JanusError) -> Value {
    let mut m = Map::new();
    m.insert("janus".into(), "error".into());
    if session_id != 0 {
        m.insert("session_id".into(), session_id.into());
    }
    if let Some(t) = transaction {
        m.insert("transaction".into(), t.into());
    }
    m.insert(
        "error".into(),
        json!({"code": e.code.code(), "reason": e.reason}),
    );
    Value::Object(m)
}

/// Reads an integer id member: absent, null or not an integer is 0.
pub(super) fn id_member(req: &Map<String, Value>, key: &str) -> i64 {
    match req.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            .unwrap_or(0),
        _ => 0,
    }
}

/// The JSON types that validation talks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    String,
    Boolean,
    Integer,
    PositiveInteger,
    Object,
    Array,
}

impl Kind {
    fn words(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Boolean => "a boolean",
            Self::Integer => "an integer",
            Self::PositiveInteger => "a positive integer",
            Self::Object => "an object",
            Self::Array => "an array",
        }
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Boolean => v.is_boolean(),
            Self::Integer => v.is_i64() || v.is_u64(),
            Self::PositiveInteger => v.is_u64(),
            Self::Object => v.is_object(),
            Self::Array => v.is_array(),
        }
    }
}

/// Validates one member: `Missing mandatory element (NAME)` /
/// `Invalid element type (NAME should be TYPE)`, with an optional prefix
/// (`JSEP error: `, `Trickle error: `) that lower-cases the first word.
pub(super) fn check(
    obj: &Map<String, Value>,
    name: &str,
    kind: Kind,
    required: bool,
    prefix: &str,
) -> Result<(), JanusError> {
    let (missing, invalid) = if prefix.is_empty() {
        ("Missing mandatory element", "Invalid element type")
    } else {
        ("missing mandatory element", "invalid element type")
    };
    match obj.get(name) {
        None if required => Err(JanusError::new(
            ErrorCode::MissingMandatoryElement,
            format!("{prefix}{missing} ({name})"),
        )),
        None => Ok(()),
        Some(v) if kind.matches(v) => Ok(()),
        Some(_) => Err(JanusError::new(
            ErrorCode::InvalidElementType,
            format!("{prefix}{invalid} ({name} should be {})", kind.words()),
        )),
    }
}

fn str_member<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// What a processed request leaves to do after its reply went out.
pub(super) enum After {
    Nothing,
    /// Tear down these handles' plugin sessions (detach: with `detached` events).
    Teardown(Vec<Arc<Handle>>, bool),
}

const SESSION_VERBS: [&str; 4] = ["keepalive", "attach", "destroy", "claim"];
/// Session verbs that Janus also accepts at a handle path.
const ANYWHERE_VERBS: [&str; 2] = ["keepalive", "claim"];
const HANDLE_VERBS: [&str; 4] = ["detach", "hangup", "message", "trickle"];

impl Gateway {
    /// Handles one Janus API request (already parsed JSON) from `origin`.
    /// For WebSocket origins the reply is queued on the connection (before any
    /// event the request triggers afterwards) and `None` is returned; for
    /// HTTP the reply is returned.
    pub async fn handle_request(
        &self,
        req: Value,
        origin: &Origin,
        path: PathIds,
    ) -> Option<Value> {
        let (reply, after) = self.process(req, origin, path).await;
        let out = match origin {
            Origin::Ws(conn) => {
                conn.send(&reply);
                None
            }
            Origin::Http => Some(reply),
        };
        if let After::Teardown(handles, notify) = after {
            for h in handles {
                self.teardown_handle(&h, notify);
            }
        }
        out
    }

    async fn process(&self, req: Value, origin: &Origin, path: PathIds) -> (Value, After) {
        let mut req = match req {
            Value::Object(o) => o,
            // Over WebSocket an array reaches the core, which finds no
            // transaction in it (as Janus does).
            Value::Array(_) => {
                let e = JanusError::new(
                    ErrorCode::MissingMandatoryElement,
                    "Missing mandatory element (transaction)",
                );
                return (Ctx::default().error(e), After::Nothing);
            }
            _ => {
                let e = JanusError::new(ErrorCode::InvalidJsonObject, "JSON error: not an object");
                return (Ctx::default().error(e), After::Nothing);
            }
        };
        // HTTP path ids fill in, or conflict with, the payload's.
        if let Some(s) = path.session {
            match req.get("session_id") {
                Some(Value::Number(n)) if n.as_u64() != Some(s) => {
                    let e = JanusError::new(
                        ErrorCode::InvalidRequestPath,
                        "Conflicting session ID (payload and path)",
                    );
                    return (Ctx::default().error(e), After::Nothing);
                }
                _ => {
                    req.insert("session_id".into(), s.into());
                }
            }
        }
        if let Some(h) = path.handle {
            match req.get("handle_id") {
                Some(Value::Number(n)) if n.as_u64() != Some(h) => {
                    let e = JanusError::new(
                        ErrorCode::InvalidRequestPath,
                        "Conflicting handle ID (payload and path)",
                    );
                    return (Ctx::default().error(e), After::Nothing);
                }
                _ => {
                    req.insert("handle_id".into(), h.into());
                }
            }
        }
        let mut ctx = Ctx {
            session_id: id_member(&req, "session_id"),
            transaction: None,
        };
        let handle_present =
            req.contains_key("handle_id") && matches!(req.get("handle_id"), Some(Value::Number(_)));
        let handle_id = id_member(&req, "handle_id");
        for (name, kind, required) in [
            ("transaction", Kind::String, true),
            ("janus", Kind::String, true),
            ("id", Kind::PositiveInteger, false),
        ] {
            if let Err(e) = check(&req, name, kind, required, "") {
                return (ctx.error(e), After::Nothing);
            }
        }
        ctx.transaction = str_member(&req, "transaction").map(str::to_owned);
        let verb_text = str_member(&req, "janus").unwrap_or_default().to_owned();
        let verb = verb_text.to_ascii_lowercase();

        if ctx.session_id == 0 && handle_id == 0 {
            let reply = match verb.as_str() {
                "info" => self.server_info(ctx.transaction.as_deref()),
                "ping" => json!({"janus": "pong", "transaction": ctx.transaction}),
                "create" => self.create(&req, origin, &ctx),
                _ => ctx.error(JanusError::new(
                    ErrorCode::InvalidRequestPath,
                    format!("Unhandled request '{verb_text}' at this path"),
                )),
            };
            return (reply, After::Nothing);
        }
        if ctx.session_id < 1 {
            return (ctx.error(ErrorCode::SessionNotFound.into()), After::Nothing);
        }
        if handle_present && handle_id < 1 {
            return (ctx.error(ErrorCode::HandleNotFound.into()), After::Nothing);
        }
        if !self.authorized(str_member(&req, "apisecret"), str_member(&req, "token")) {
            return (ctx.error(ErrorCode::Unauthorized.into()), After::Nothing);
        }
        // Both ids are >= 1 here.
        let sid = ctx.session_id.unsigned_abs();
        let Some(session) = self.session(sid) else {
            let e = JanusError::new(ErrorCode::SessionNotFound, format!("No such session {sid}"));
            return (ctx.error(e), After::Nothing);
        };
        {
            let mut st = lock(&session.state);
            if st.destroyed {
                drop(st);
                let e =
                    JanusError::new(ErrorCode::SessionNotFound, format!("No such session {sid}"));
                return (ctx.error(e), After::Nothing);
            }
            st.last_activity = Instant::now();
        }
        let handle = if handle_id > 0 {
            let hid = handle_id.unsigned_abs();
            match lock(&session.state).handles.get(&hid).cloned() {
                Some(h) => Some(h),
                None => {
                    let e = JanusError::new(
                        ErrorCode::HandleNotFound,
                        format!("No such handle {hid} in session {sid}"),
                    );
                    return (ctx.error(e), After::Nothing);
                }
            }
        } else {
            None
        };
        let is_session_verb = SESSION_VERBS.contains(&verb.as_str());
        let is_handle_verb = HANDLE_VERBS.contains(&verb.as_str());
        if !is_session_verb && !is_handle_verb {
            let e = JanusError::new(
                ErrorCode::UnknownRequest,
                format!("Unknown request '{verb_text}'"),
            );
            return (ctx.error(e), After::Nothing);
        }
        let session_only = is_session_verb && !ANYWHERE_VERBS.contains(&verb.as_str());
        if (session_only && handle.is_some()) || (is_handle_verb && handle.is_none()) {
            let e = JanusError::new(
                ErrorCode::InvalidRequestPath,
                format!("Unhandled request '{verb_text}' at this path"),
            );
            return (ctx.error(e), After::Nothing);
        }
        let ok = || json!({"janus": "success", "session_id": sid, "transaction": ctx.transaction});
        match (verb.as_str(), handle) {
            ("keepalive", _) => (
                json!({"janus": "ack", "session_id": sid, "transaction": ctx.transaction}),
                After::Nothing,
            ),
            ("claim", _) => {
                self.claim(&session, origin);
                (ok(), After::Nothing)
            }
            ("destroy", None) => {
                self.destroy_session(&session, DestroyCause::Request);
                (ok(), After::Nothing)
            }
            ("attach", None) => (self.attach(&session, &req, &ctx).await, After::Nothing),
            ("detach", Some(h)) => {
                let removed = lock(&session.state).handles.remove(&h.id);
                match removed {
                    Some(h) => {
                        h.detaching.store(true, Ordering::Relaxed);
                        (ok(), After::Teardown(vec![h], true))
                    }
                    None => (
                        ctx.error(JanusError::new(
                            ErrorCode::PluginDetach,
                            "No plugin to detach from",
                        )),
                        After::Nothing,
                    ),
                }
            }
            ("hangup", Some(h)) => {
                self.hangup_pc(&session, &h, HangupReason::JanusApi);
                (ok(), After::Nothing)
            }
            ("message", Some(h)) => (self.message(&session, &h, &req, &ctx).await, After::Nothing),
            ("trickle", Some(h)) => (self.trickle(&session, &h, &req, &ctx), After::Nothing),
            _ => (
                ctx.error(JanusError::new(
                    ErrorCode::UnknownRequest,
                    format!("Unknown request '{verb_text}'"),
                )),
                After::Nothing,
            ),
        }
    }

    fn create(&self, req: &Map<String, Value>, origin: &Origin, ctx: &Ctx) -> Value {
        if !self.authorized(str_member(req, "apisecret"), str_member(req, "token")) {
            return ctx.error(ErrorCode::Unauthorized.into());
        }
        if !self.settings.accepting.load(Ordering::Relaxed) {
            return ctx.error(ErrorCode::NotAcceptingSessions.into());
        }
        let wanted = req.get("id").and_then(Value::as_u64).unwrap_or(0);
        let source = Source::from_origin(origin);
        let now = Instant::now();
        let id = {
            let mut sessions = lock(&self.sessions);
            let id = if wanted > 0 {
                if sessions.contains_key(&wanted) {
                    let e = JanusError::default_for(ErrorCode::SessionConflict);
                    return error_reply(
                        i64::try_from(wanted).unwrap_or(i64::MAX),
                        ctx.transaction.as_deref(),
                        &e,
                    );
                }
                wanted
            } else {
                Self::random_id(|id| sessions.contains_key(&id))
            };
            sessions.insert(
                id,
                Arc::new(Session {
                    id,
                    state: std::sync::Mutex::new(SessionState {
                        handles: Default::default(),
                        last_activity: now,
                        timeout: None,
                        source: source.clone(),
                        transport_gone: None,
                        destroyed: false,
                        queue: Default::default(),
                    }),
                    notify: tokio::sync::Notify::new(),
                }),
            );
            id
        };
        if let Source::Ws(conn) = &source {
            lock(&conn.sessions).insert(id);
        }
        self.events.session_event(
            id,
            "created",
            json!({"transport": source.transport_name(), "id": id.to_string()}),
        );
        json!({"janus": "success", "transaction": ctx.transaction, "data": {"id": id}})
    }

    fn claim(&self, session: &Arc<Session>, origin: &Origin) {
        let new_source = Source::from_origin(origin);
        let mut st = lock(&session.state);
        let same = match (&st.source, &new_source) {
            (Source::Ws(a), Source::Ws(b)) => a.id == b.id,
            (Source::Http, Source::Http) => true,
            _ => false,
        };
        st.transport_gone = None;
        if same {
            return;
        }
        if let Source::Ws(old) = &st.source {
            lock(&old.sessions).remove(&session.id);
        }
        if let Source::Ws(new) = &new_source {
            lock(&new.sessions).insert(session.id);
        }
        st.source = new_source;
        // Events queued while nobody listened go to the new owner.
        if let Source::Ws(conn) = st.source.clone() {
            while let Some(ev) = st.queue.pop_front() {
                if !conn.send(&ev) {
                    st.queue.push_front(ev);
                    break;
                }
            }
        }
    }

    async fn attach(&self, session: &Arc<Session>, req: &Map<String, Value>, ctx: &Ctx) -> Value {
        for (name, kind, required) in [
            ("plugin", Kind::String, true),
            ("opaque_id", Kind::String, false),
            ("token", Kind::String, false),
            ("loop_index", Kind::Integer, false),
        ] {
            if let Err(e) = check(req, name, kind, required, "") {
                return ctx.error(e);
            }
        }
        let package = str_member(req, "plugin").unwrap_or_default();
        let Some(plugin) = self.plugin(package) else {
            return ctx.error(JanusError::new(
                ErrorCode::PluginNotFound,
                format!("No such plugin '{package}'"),
            ));
        };
        let token = str_member(req, "token").map(str::to_owned);
        if self.config.token_auth {
            if let Some(t) = &token {
                let allowed = lock(&self.tokens)
                    .get(t)
                    .is_some_and(|plugins| plugins.contains(package));
                if !allowed {
                    return ctx.error(JanusError::new(
                        ErrorCode::UnauthorizedPlugin,
                        format!("Provided token can't access plugin '{package}'"),
                    ));
                }
            }
        }
        let opaque_id = str_member(req, "opaque_id").map(str::to_owned);
        let handle = {
            let mut st = lock(&session.state);
            let hid = Self::random_id(|id| st.handles.contains_key(&id));
            let h = Arc::new(Handle {
                id: hid,
                session_id: session.id,
                plugin: plugin.clone(),
                plugin_session: Default::default(),
                opaque_id: opaque_id.clone(),
                token: token.clone(),
                created: Instant::now(),
                detaching: Default::default(),
                pc: std::sync::Mutex::new(PcState::default()),
            });
            st.handles.insert(hid, h.clone());
            h
        };
        let href = HandleRef {
            session_id: session.id,
            handle_id: handle.id,
        };
        let created = plugin.create_session(href, opaque_id.clone()).await;
        match created {
            Ok(Ok(pid)) => {
                // Set once, right here: the handle was created above.
                let _ = handle.plugin_session.set(pid);
                lock(&self.by_plugin_session).insert(pid, Arc::downgrade(&handle));
            }
            Ok(Err(e)) => {
                lock(&session.state).handles.remove(&handle.id);
                return ctx.error(JanusError::new(
                    ErrorCode::PluginAttach,
                    format!("Couldn't attach to plugin: error '{e}'"),
                ));
            }
            Err(_) => {
                lock(&session.state).handles.remove(&handle.id);
                return ctx.error(JanusError::new(
                    ErrorCode::PluginAttach,
                    "Couldn't attach to plugin: error 'plugin is not running'",
                ));
            }
        }
        self.events.handle_event(
            session.id,
            handle.id,
            "attached",
            package,
            opaque_id.as_deref(),
            token.as_deref(),
        );
        json!({"janus": "success", "session_id": session.id, "transaction": ctx.transaction, "data": {"id": handle.id}})
    }

    async fn message(
        &self,
        session: &Arc<Session>,
        handle: &Arc<Handle>,
        req: &Map<String, Value>,
        ctx: &Ctx,
    ) -> Value {
        if let Err(e) = check(req, "body", Kind::Object, true, "") {
            return ctx.error(e);
        }
        let Some(pid) = handle.plugin_session.get().copied() else {
            return ctx.error(JanusError::new(
                ErrorCode::PluginMessage,
                "No plugin to handle this message",
            ));
        };
        let body = req.get("body").cloned().unwrap_or(Value::Null);
        let jsep = match req.get("jsep") {
            None => None,
            Some(Value::Object(j)) => match self.process_remote_jsep(handle, j) {
                Ok(j) => Some(j),
                Err(e) => return ctx.error(e),
            },
            Some(_) => {
                return ctx.error(JanusError::new(
                    ErrorCode::InvalidJsonObject,
                    "Invalid jsep object",
                ));
            }
        };
        let transaction = ctx.transaction.clone().unwrap_or_default();
        let reply = handle
            .plugin
            .handle_message(pid, transaction, to_janus_string(&body), jsep)
            .await;
        let package = handle.plugin.info().package.clone();
        match reply {
            Ok(MessageReply::Ack) => {
                json!({"janus": "ack", "session_id": session.id, "transaction": ctx.transaction})
            }
            Ok(MessageReply::Success(data)) => json!({
                "janus": "success", "session_id": session.id, "transaction": ctx.transaction,
                "sender": handle.id, "plugindata": {"plugin": package, "data": Value::Object(data)}
            }),
            Ok(MessageReply::Error(reason)) => {
                ctx.error(JanusError::new(ErrorCode::PluginMessage, reason))
            }
            Err(_) => ctx.error(JanusError::new(ErrorCode::PluginMessage, "Duktape error")),
        }
    }

    /// Validates a client's JSEP, processes its SDP (media.md §2.1–§2.2) and
    /// builds what the plugin receives.
    fn process_remote_jsep(
        &self,
        handle: &Handle,
        jsep: &Map<String, Value>,
    ) -> Result<JsepForPlugin, JanusError> {
        check(jsep, "type", Kind::String, true, "JSEP error: ")?;
        check(jsep, "sdp", Kind::String, true, "JSEP error: ")?;
        check(jsep, "trickle", Kind::Boolean, false, "JSEP error: ")?;
        check(jsep, "e2ee", Kind::Boolean, false, "JSEP error: ")?;
        let kind_text = str_member(jsep, "type").unwrap_or_default();
        let kind = kind_text.to_ascii_lowercase();
        let offer = match kind.as_str() {
            "offer" => true,
            "answer" => false,
            _ => {
                return Err(JanusError::new(
                    ErrorCode::JsepUnknownType,
                    format!("JSEP error: unknown message type '{kind_text}'"),
                ));
            }
        };
        let mut pc = lock(&handle.pc);
        if !offer && !pc.server_offered {
            return Err(JanusError::new(
                ErrorCode::UnexpectedAnswer,
                "Unexpected ANSWER (did we offer?)",
            ));
        }
        let text = str_member(jsep, "sdp").unwrap_or_default();
        let e2ee = jsep.get("e2ee").and_then(Value::as_bool).unwrap_or(false);
        let update = pc.started && pc.remote_sdp.is_some();
        let remote = negotiate::remote_description(
            &kind,
            text,
            str_member(jsep, "rid_order"),
            jsep.get("svc"),
            update,
            e2ee,
        )?;
        let value = remote.jsep_for_script;
        pc.started = true;
        if offer {
            pc.got_offer = true;
        } else {
            pc.got_answer = true;
            pc.server_offered = false;
            pc.negotiated = true;
        }
        pc.remote_sdp = Some(text.to_owned());
        pc.e2ee = e2ee;
        pc.trickle = jsep.get("trickle").and_then(Value::as_bool).unwrap_or(true) || pc.trickle;
        pc.data_channels = remote.info.data_channel.is_some();
        pc.remote_info = Some(remote.info);
        if !offer {
            self.start_offered_pc(handle, &mut pc);
        }
        let video_codec = if offer {
            None
        } else {
            remote.first_video_codec
        };
        let simulcast = value.get("simulcast").cloned();
        Ok(JsepForPlugin {
            kind,
            text: to_janus_string(&value),
            video_codec,
            e2ee,
            simulcast,
        })
    }

    fn trickle(
        &self,
        session: &Arc<Session>,
        handle: &Arc<Handle>,
        req: &Map<String, Value>,
        ctx: &Ctx,
    ) -> Value {
        let ack = json!({"janus": "ack", "session_id": session.id, "transaction": ctx.transaction});
        let candidate = req.get("candidate");
        let candidates = req.get("candidates");
        match (candidate, candidates) {
            (Some(_), Some(_)) => {
                return ctx.error(JanusError::new(
                    ErrorCode::InvalidJson,
                    "Can't have both candidate and candidates",
                ));
            }
            (None, None) => {
                return ctx.error(JanusError::new(
                    ErrorCode::MissingMandatoryElement,
                    "Missing mandatory element (candidate|candidates)",
                ));
            }
            _ => {}
        }
        let mut pc = lock(&handle.pc);
        pc.trickle = true;
        // Trickles that arrive before the PC exists are queued unchecked.
        let immediate = pc.remote_sdp.is_some() && pc.local_sdp.is_some();
        if immediate && candidates.is_some_and(|c| !c.is_array()) {
            return ctx.error(JanusError::new(
                ErrorCode::InvalidElementType,
                "candidates is not an array",
            ));
        }
        let now = Instant::now();
        if let Some(c) = candidate {
            if immediate {
                if let Err(e) = validate_candidate(c) {
                    return ctx.error(e);
                }
            }
            if is_end_of_candidates(c) {
                pc.all_trickles = true;
            }
            pc.pending_trickles.push((now, c.clone()));
        } else if let Some(Value::Array(list)) = candidates {
            for c in list {
                if is_end_of_candidates(c) {
                    pc.all_trickles = true;
                }
                // Errors inside a `candidates` array are ignored.
                if is_end_of_candidates(c) || validate_candidate(c).is_ok() {
                    pc.pending_trickles.push((now, c.clone()));
                }
            }
        }
        ack
    }

    /// Detaches a handle as the client's `detach` would (used by `endSession`
    /// and Admin `detach_handle`).
    pub(super) fn detach(&self, href: HandleRef) {
        let Some(session) = self.session(href.session_id) else {
            return;
        };
        let removed = lock(&session.state).handles.remove(&href.handle_id);
        if let Some(h) = removed {
            self.teardown_handle(&h, true);
        }
    }

    /// Delivers a plugin event that carries a JSEP (media.md §2.3–§2.4).
    pub(super) async fn deliver_jsep_event(
        &self,
        href: HandleRef,
        transaction: Option<String>,
        event: Value,
        jsep: Map<String, Value>,
    ) {
        let Some((session, handle)) = self.handle(href) else {
            return;
        };
        if handle.detaching.load(Ordering::Relaxed) {
            return;
        }
        let Value::Object(data) = event else { return };
        let kind = str_member(&jsep, "type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let Some(sdp_text) = str_member(&jsep, "sdp") else {
            return;
        };
        let merged = match self.merge_local_sdp(&handle, &kind, sdp_text) {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!(session = href.session_id, handle = href.handle_id, %why, "dropping plugin event with JSEP");
                return;
            }
        };
        let mut out_jsep = Map::new();
        out_jsep.insert("type".into(), kind.clone().into());
        out_jsep.insert("sdp".into(), merged.into());
        if lock(&handle.pc).e2ee {
            out_jsep.insert("e2ee".into(), true.into());
        }
        let mut ev = Map::new();
        ev.insert("janus".into(), "event".into());
        ev.insert("session_id".into(), session.id.into());
        if let Some(t) = transaction {
            ev.insert("transaction".into(), t.into());
        }
        ev.insert("sender".into(), handle.id.into());
        ev.insert(
            "plugindata".into(),
            json!({"plugin": handle.plugin.info().package, "data": Value::Object(data)}),
        );
        ev.insert("jsep".into(), Value::Object(out_jsep));
        self.deliver(&session, Value::Object(ev));
    }

    /// Merges the plugin's SDP with the transport details of the handle's
    /// PeerConnection (media.md §2.3–§2.5). For an answer this also starts
    /// (or updates) the PC on its shard; for an offer that happens when the
    /// client's answer arrives.
    fn merge_local_sdp(
        &self,
        handle: &Handle,
        kind: &str,
        sdp_text: &str,
    ) -> Result<String, String> {
        let media = self
            .media()
            .ok_or("no media plane runs: cannot negotiate a PeerConnection")?;
        let pid = handle
            .plugin_session
            .get()
            .copied()
            .ok_or("the handle has no plugin session")?;
        let plugin_sdp = crate::sdp::parse(sdp_text).map_err(|e| e.to_string())?;
        let offer = kind == "offer";
        let mut pc = lock(&handle.pc);
        if !offer && pc.remote_info.is_none() {
            return Err("an answer, but the client never offered".into());
        }
        let mlines = plugin_sdp.media.len();
        let mut local = match pc.local.take() {
            Some(l) => l,
            None => media.allocate(pid, mlines),
        };
        if local.ssrcs.len() < mlines {
            let more =
                crate::sdp::generate_local_ssrcs(&mut rand::rng(), mlines - local.ssrcs.len());
            local.ssrcs.extend(more);
        }
        let setup = if offer {
            crate::sdp::SetupRole::Actpass
        } else {
            match pc
                .remote_info
                .as_ref()
                .map(crate::sdp::RemoteInfo::dtls_role)
            {
                Some(crate::sdp::DtlsRole::Server) => crate::sdp::SetupRole::Passive,
                _ => crate::sdp::SetupRole::Active,
            }
        };
        let transport = media.transport(&local, setup);
        let merged = crate::sdp::merge_local(&plugin_sdp, pc.remote_info.as_ref(), &transport);
        let (text, info) = match merged {
            Ok(m) => m,
            Err(e) => {
                pc.local = Some(local);
                return Err(e.to_string());
            }
        };
        pc.started = true;
        if offer {
            pc.server_offered = true;
        } else if let Some(remote) = pc.remote_info.as_ref() {
            let config = crate::media::pc_config(
                pid,
                &local,
                remote,
                &info,
                route_role(remote),
                &*handle.plugin,
            );
            media.create_pc(&mut local, config);
            pc.negotiated = true;
        }
        pc.local = Some(local);
        pc.local_sdp = Some(text.clone());
        pc.local_info = Some(info);
        Ok(text)
    }

    /// The client answered the server's offer: start the PC on its shard.
    fn start_offered_pc(&self, handle: &Handle, pc: &mut PcState) {
        let (Some(media), Some(pid)) = (self.media(), handle.plugin_session.get().copied()) else {
            return;
        };
        let (Some(remote), Some(info), Some(local)) = (
            pc.remote_info.as_ref(),
            pc.local_info.as_ref(),
            pc.local.as_mut(),
        ) else {
            return;
        };
        let config = crate::media::pc_config(
            pid,
            local,
            remote,
            info,
            route_role(remote),
            &*handle.plugin,
        );
        media.create_pc(local, config);
    }

    /// `server_info` (janus-api.md §4.10).
    pub(super) fn server_info(&self, transaction: Option<&str>) -> Value {
        let mut plugins = Map::new();
        for p in self.plugins() {
            let i = p.info();
            plugins.insert(
                i.package.clone(),
                json!({"name": i.name, "author": i.author, "description": i.description,
                       "version_string": i.version_string, "version": i.version}),
            );
        }
        let mut transports = Map::new();
        if self.config.http.is_some() {
            transports.insert(
                "janus.transport.http".into(),
                json!({"name": "JSFU REST (HTTP/HTTPS) transport plugin", "author": "jsfu",
                       "description": "The Janus API over HTTP with long polling (axum).",
                       "version_string": env!("CARGO_PKG_VERSION"), "version": 1}),
            );
        }
        if self.config.ws.is_some() {
            transports.insert(
                "janus.transport.websockets".into(),
                json!({"name": "JSFU WebSockets transport plugin", "author": "jsfu",
                       "description": "The Janus API over WebSockets (axum).",
                       "version_string": env!("CARGO_PKG_VERSION"), "version": 1}),
            );
        }
        let mut m = Map::new();
        m.insert("janus".into(), "server_info".into());
        if let Some(t) = transaction {
            m.insert("transaction".into(), t.into());
        }
        let fields = json!({
            "name": "jsfu",
            "version": 1102,
            "version_string": "1.1.2",
            "author": "jsfu developers",
            "jsfu-version": env!("CARGO_PKG_VERSION"),
            "commit-hash": "not-a-git-repo",
            "compile-time": "",
            "log-to-stdout": true,
            "log-to-file": false,
            "data_channels": true,
            "accepting-new-sessions": self.settings.accepting.load(Ordering::Relaxed),
            "session-timeout": self.session_timeout().as_secs(),
            "reclaim-session-timeout": self.config.reclaim_session_timeout.as_secs(),
            "candidates-timeout": 45,
            "server-name": self.config.server_name,
            "local-ip": "127.0.0.1",
            "ipv6": false,
            "ice-lite": true,
            "ice-tcp": false,
            "full-trickle": false,
            "mdns-enabled": false,
            "min-nack-queue": 200,
            "nack-optimizations": false,
            "twcc-period": 200,
            "dtls-mtu": 1200,
            "static-event-loops": 0,
            "api_secret": self.config.api_secret.is_some(),
            "auth_token": self.config.token_auth,
            "event_handlers": self.events.enabled(),
            "opaqueid_in_api": false,
            "dependencies": {"quickjs": "quickjs-ng (rquickjs)", "axum": "0.8", "tokio": "1"},
            "transports": Value::Object(transports),
            "events": {},
            "loggers": {},
            "plugins": Value::Object(plugins),
        });
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        Value::Object(m)
    }
}

fn is_end_of_candidates(c: &Value) -> bool {
    match c {
        Value::Object(o) => o.contains_key("completed"),
        _ => true,
    }
}

/// Checks one trickled candidate (janus-api.md §4.9).
fn validate_candidate(c: &Value) -> Result<(), JanusError> {
    let Value::Object(o) = c else { return Ok(()) };
    if o.contains_key("completed") {
        return Ok(());
    }
    check(o, "sdpMid", Kind::String, false, "Trickle error: ")?;
    check(
        o,
        "sdpMLineIndex",
        Kind::PositiveInteger,
        false,
        "Trickle error: ",
    )?;
    if !o.contains_key("sdpMid") && !o.contains_key("sdpMLineIndex") {
        return Err(JanusError::new(
            ErrorCode::MissingMandatoryElement,
            "Trickle error: missing mandatory element (sdpMid or sdpMLineIndex)",
        ));
    }
    check(o, "candidate", Kind::String, true, "Trickle error: ")?;
    Ok(())
}

/// The server's DTLS role for a client description (media.md §4.1).
fn route_role(remote: &crate::sdp::RemoteInfo) -> jsfu_route::DtlsRole {
    match remote.dtls_role() {
        crate::sdp::DtlsRole::Client => jsfu_route::DtlsRole::Client,
        crate::sdp::DtlsRole::Server => jsfu_route::DtlsRole::Server,
    }
}
