//! The Admin API (janus-api.md §11): same framing as the Janus API, its own
//! endpoint and secret.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use jsfu_route::HangupReason;
use serde_json::{Map, Value, json};

use super::api::{Ctx, Kind, check, id_member};
use super::{DestroyCause, Gateway, Origin, PathIds, lock};
use crate::error::{ErrorCode, JanusError};
use crate::json::to_janus_string;
use crate::plugin::HandleRef;

impl Gateway {
    /// Handles one Admin API request. WebSocket replies are queued on the
    /// connection (`None` returned); HTTP replies are returned.
    pub async fn handle_admin(&self, req: Value, origin: &Origin, path: PathIds) -> Option<Value> {
        let reply = self.process_admin(req, path).await;
        match origin {
            Origin::Ws(conn) => {
                conn.send(&reply);
                None
            }
            Origin::Http => Some(reply),
        }
    }

    async fn process_admin(&self, req: Value, path: PathIds) -> Value {
        let Value::Object(mut req) = req else {
            let e = JanusError::new(ErrorCode::InvalidJsonObject, "JSON error: not an object");
            return Ctx::default().error(e);
        };
        for (key, id) in [("session_id", path.session), ("handle_id", path.handle)] {
            if let Some(id) = id {
                if let Some(Value::Number(n)) = req.get(key) {
                    if n.as_u64() != Some(id) {
                        let what = if key == "session_id" {
                            "session"
                        } else {
                            "handle"
                        };
                        return Ctx::default().error(JanusError::new(
                            ErrorCode::InvalidRequestPath,
                            format!("Conflicting {what} ID (payload and path)"),
                        ));
                    }
                }
                req.insert(key.into(), id.into());
            }
        }
        let mut ctx = Ctx {
            session_id: id_member(&req, "session_id"),
            transaction: None,
        };
        let handle_id = id_member(&req, "handle_id");
        for (name, kind) in [("transaction", Kind::String), ("janus", Kind::String)] {
            if let Err(e) = check(&req, name, kind, true, "") {
                return ctx.error(e);
            }
        }
        ctx.transaction = req
            .get("transaction")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let verb_text = req
            .get("janus")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let verb = verb_text.to_ascii_lowercase();
        let t = ctx.transaction.clone();
        if ctx.session_id == 0 && handle_id == 0 {
            match verb.as_str() {
                "info" => return self.server_info(t.as_deref()),
                "ping" => return json!({"janus": "pong", "transaction": t}),
                _ => {}
            }
        }
        let secret = req.get("admin_secret").and_then(Value::as_str);
        if !self.admin_authorized(secret) {
            return ctx.error(ErrorCode::Unauthorized.into());
        }
        let ok = |extra: Value| {
            let mut m = Map::new();
            m.insert("janus".into(), "success".into());
            if ctx.session_id != 0 {
                m.insert("session_id".into(), ctx.session_id.into());
            }
            m.insert("transaction".into(), t.clone().into());
            if let Value::Object(e) = extra {
                m.extend(e);
            }
            Value::Object(m)
        };
        if ctx.session_id == 0 && handle_id == 0 {
            return match verb.as_str() {
                "get_status" => ok(json!({"status": {
                    "token_auth": self.config.token_auth,
                    "session_timeout": self.session_timeout().as_secs(),
                    "reclaim_session_timeout": self.config.reclaim_session_timeout.as_secs(),
                    "candidates_timeout": 45,
                    "log_level": self.config.log_level,
                    "accepting_new_sessions": self.settings.accepting.load(Ordering::Relaxed),
                    "uptime_secs": self.started.elapsed().as_secs(),
                }})),
                "list_sessions" => {
                    let mut ids: Vec<u64> = lock(&self.sessions).keys().copied().collect();
                    ids.sort_unstable();
                    ok(json!({"sessions": ids}))
                }
                "set_session_timeout" => match timeout_arg(&req, false) {
                    Ok(secs) => {
                        let secs = u64::try_from(secs).unwrap_or(0);
                        self.settings
                            .session_timeout_secs
                            .store(secs, Ordering::Relaxed);
                        ok(json!({"timeout": secs}))
                    }
                    Err(e) => ctx.error(e),
                },
                "accept_new_sessions" => {
                    if let Err(e) = check(&req, "accept", Kind::Boolean, true, "") {
                        return ctx.error(e);
                    }
                    let accept = req.get("accept").and_then(Value::as_bool).unwrap_or(true);
                    self.settings.accepting.store(accept, Ordering::Relaxed);
                    ok(json!({"accept": accept}))
                }
                "add_token" | "allow_token" | "disallow_token" | "remove_token" => {
                    self.token_request(&verb, &req, &ctx, ok)
                }
                "list_tokens" => {
                    if !self.config.token_auth {
                        return ctx.error(token_auth_disabled());
                    }
                    let tokens = lock(&self.tokens);
                    // Like Janus, a token allowed no plugin is not listed.
                    let list: Vec<Value> = tokens
                        .iter()
                        .filter(|(_, plugins)| !plugins.is_empty())
                        .map(|(tok, plugins)| {
                            let mut ps: Vec<&String> = plugins.iter().collect();
                            ps.sort();
                            json!({"token": tok, "allowed_plugins": ps})
                        })
                        .collect();
                    ok(json!({"data": {"tokens": list}}))
                }
                "message_plugin" => self.admin_message_plugin(&req, &ctx, ok).await,
                "custom_event" | "custom_logline" => {
                    if verb == "custom_logline" {
                        if let Err(e) = check(&req, "line", Kind::String, true, "") {
                            return ctx.error(e);
                        }
                        let line = req.get("line").and_then(Value::as_str).unwrap_or_default();
                        tracing::info!(target: "jsfu::admin", "{line}");
                    } else {
                        if let Err(e) = check(&req, "schema", Kind::String, true, "") {
                            return ctx.error(e);
                        }
                        if let Err(e) = check(&req, "data", Kind::Object, true, "") {
                            return ctx.error(e);
                        }
                        self.events.custom_event(
                            req.get("schema").cloned().unwrap_or(Value::Null),
                            req.get("data").cloned().unwrap_or(Value::Null),
                        );
                    }
                    ok(Value::Null)
                }
                _ => ctx.error(JanusError::new(
                    ErrorCode::InvalidRequestPath,
                    format!("Unhandled request '{verb_text}' at this path"),
                )),
            };
        }
        if ctx.session_id < 1 {
            return ctx.error(ErrorCode::SessionNotFound.into());
        }
        let sid = ctx.session_id.unsigned_abs();
        let Some(session) = self.session(sid) else {
            return ctx.error(JanusError::new(
                ErrorCode::SessionNotFound,
                format!("No such session {sid}"),
            ));
        };
        if handle_id == 0 {
            return match verb.as_str() {
                "list_handles" => {
                    let mut ids: Vec<u64> = lock(&session.state).handles.keys().copied().collect();
                    ids.sort_unstable();
                    ok(json!({"handles": ids}))
                }
                "destroy_session" => {
                    self.destroy_session(&session, DestroyCause::Admin);
                    ok(Value::Null)
                }
                "set_session_timeout" => match timeout_arg(&req, true) {
                    Ok(secs) => {
                        lock(&session.state).timeout = match secs {
                            -1 => None,
                            s => Some(Duration::from_secs(u64::try_from(s).unwrap_or(0))),
                        };
                        ok(json!({"timeout": secs}))
                    }
                    Err(e) => ctx.error(e),
                },
                _ => ctx.error(JanusError::new(
                    ErrorCode::UnknownRequest,
                    format!("Unknown request '{verb_text}'"),
                )),
            };
        }
        if handle_id < 1 {
            return ctx.error(ErrorCode::HandleNotFound.into());
        }
        let hid = handle_id.unsigned_abs();
        let Some(handle) = lock(&session.state).handles.get(&hid).cloned() else {
            return ctx.error(JanusError::new(
                ErrorCode::HandleNotFound,
                format!("No such handle {hid} in session {sid}"),
            ));
        };
        match verb.as_str() {
            "handle_info" => {
                let plugin_only = req
                    .get("plugin_only")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let mut info = Map::new();
                let (last_activity, timeout, transport) = {
                    let st = lock(&session.state);
                    (
                        st.last_activity,
                        st.timeout.unwrap_or_else(|| self.session_timeout()),
                        st.source.transport_name(),
                    )
                };
                let mono = |t: Instant| t.duration_since(self.started).as_micros() as u64;
                info.insert("session_id".into(), sid.into());
                info.insert("session_last_activity".into(), mono(last_activity).into());
                info.insert("session_timeout".into(), timeout.as_secs().into());
                info.insert("session_transport".into(), transport.into());
                info.insert("handle_id".into(), hid.into());
                if let Some(o) = &handle.opaque_id {
                    info.insert("opaque_id".into(), o.clone().into());
                }
                info.insert("loop-running".into(), true.into());
                info.insert("created".into(), mono(handle.created).into());
                info.insert("current_time".into(), mono(Instant::now()).into());
                info.insert("plugin".into(), handle.plugin.info().package.clone().into());
                if let Some(pid) = handle.plugin_session.get() {
                    if let Ok(Some(specific)) = handle.plugin.query_session(*pid).await {
                        info.insert("plugin_specific".into(), Value::Object(specific));
                    }
                }
                if !plugin_only {
                    let pc = lock(&handle.pc).clone();
                    info.insert(
                        "flags".into(),
                        json!({
                            "got-offer": pc.got_offer, "got-answer": pc.got_answer,
                            "negotiated": pc.negotiated, "processing-offer": false,
                            "starting": false, "ice-restart": false,
                            "ready": pc.up,
                            "stopped": !pc.started, "alert": false, "trickle": pc.trickle,
                            "all-trickles": pc.all_trickles, "resend-trickles": false,
                            "trickle-synced": false, "data-channels": pc.data_channels,
                            "has-audio": false, "has-video": false, "new-datachan-sdp": false,
                            "rfc4588-rtx": pc.local_info.as_ref().is_some_and(|l| l.rtx),
                            "cleaning": false, "e2ee": pc.e2ee,
                        }),
                    );
                    let mut sdps = Map::new();
                    sdps.insert("profile".into(), "UDP/TLS/RTP/SAVPF".into());
                    if let Some(l) = &pc.local_sdp {
                        sdps.insert("local".into(), l.clone().into());
                    }
                    if let Some(r) = &pc.remote_sdp {
                        sdps.insert("remote".into(), r.clone().into());
                    }
                    info.insert("sdps".into(), Value::Object(sdps));
                    if pc.local.is_some() {
                        // jsfu is an ICE-lite agent: always controlled.
                        info.insert("ice-mode".into(), "lite".into());
                        info.insert("ice-role".into(), "controlled".into());
                    }
                    info.insert(
                        "queued-packets".into(),
                        (pc.pending_trickles.len() as u64).into(),
                    );
                    info.insert(
                        "webrtc".into(),
                        super::webrtc_info::describe(&pc, self.media.get().map(|m| &**m), &mono),
                    );
                }
                let mut m = Map::new();
                m.insert("janus".into(), "success".into());
                m.insert("session_id".into(), sid.into());
                m.insert("transaction".into(), t.into());
                m.insert("handle_id".into(), hid.into());
                m.insert("info".into(), Value::Object(info));
                Value::Object(m)
            }
            "detach_handle" => {
                self.detach(HandleRef {
                    session_id: sid,
                    handle_id: hid,
                });
                ok(Value::Null)
            }
            "hangup_webrtc" => {
                self.hangup_pc(&session, &handle, HangupReason::AdminApi);
                ok(Value::Null)
            }
            _ => ctx.error(JanusError::new(
                ErrorCode::UnknownRequest,
                format!("Unknown request '{verb_text}'"),
            )),
        }
    }

    async fn admin_message_plugin(
        &self,
        req: &Map<String, Value>,
        ctx: &Ctx,
        ok: impl Fn(Value) -> Value,
    ) -> Value {
        if let Err(e) = check(req, "plugin", Kind::String, true, "") {
            return ctx.error(e);
        }
        if let Err(e) = check(req, "request", Kind::Object, false, "") {
            return ctx.error(e);
        }
        let package = req
            .get("plugin")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(plugin) = self.plugin(package) else {
            return ctx.error(JanusError::new(ErrorCode::PluginNotFound, "Invalid plugin"));
        };
        let request = req.get("request").map(to_janus_string);
        let response = plugin
            .handle_admin_message(request)
            .await
            .unwrap_or_else(|_| json!({}));
        ok(json!({"response": response}))
    }

    fn token_request(
        &self,
        verb: &str,
        req: &Map<String, Value>,
        ctx: &Ctx,
        ok: impl Fn(Value) -> Value,
    ) -> Value {
        if !self.config.token_auth {
            return ctx.error(token_auth_disabled());
        }
        if let Err(e) = check(req, "token", Kind::String, true, "") {
            return ctx.error(e);
        }
        let token = req
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if verb == "remove_token" {
            if lock(&self.tokens).remove(&token).is_none() {
                // Janus answers an unknown token with its generic failure.
                return ctx.error(JanusError::new(ErrorCode::Unknown, "Error removing token"));
            }
            return ok(Value::Null);
        }
        if let Err(e) = check(req, "plugins", Kind::Array, false, "") {
            return ctx.error(e);
        }
        let add = verb == "add_token";
        // A missing or empty list means every plugin (add_token only).
        let listed = req
            .get("plugins")
            .and_then(Value::as_array)
            .filter(|list| !list.is_empty());
        if !add && listed.is_none() {
            return ctx.error(JanusError::new(
                ErrorCode::InvalidElementType,
                "Invalid element type (plugins should be a non-empty array)",
            ));
        }
        if !add && !lock(&self.tokens).contains_key(&token) {
            return ctx.error(JanusError::new(
                ErrorCode::TokenNotFound,
                format!("Token {token} not found"),
            ));
        }
        let named: HashSet<String> = match listed {
            Some(list) => {
                let mut out = HashSet::new();
                for p in list {
                    match p.as_str().filter(|p| self.plugin(p).is_some()) {
                        Some(p) => {
                            out.insert(p.to_owned());
                        }
                        // add_token skips what is not a known plugin's package, as Janus does.
                        None if add => {}
                        None => {
                            return ctx.error(JanusError::new(
                                ErrorCode::InvalidElementType,
                                "Invalid element type (some of the provided plugins are invalid)",
                            ));
                        }
                    }
                }
                out
            }
            None => self
                .plugins()
                .iter()
                .map(|p| p.info().package.clone())
                .collect(),
        };
        let mut tokens = lock(&self.tokens);
        let set = if add {
            tokens.entry(token).or_default()
        } else {
            match tokens.get_mut(&token) {
                Some(set) => set,
                // Removed meanwhile by a concurrent remove_token.
                None => {
                    return ctx.error(JanusError::new(
                        ErrorCode::TokenNotFound,
                        format!("Token {token} not found"),
                    ));
                }
            }
        };
        if verb == "disallow_token" {
            set.retain(|p| !named.contains(p));
        } else {
            set.extend(named);
        }
        let mut list: Vec<&String> = set.iter().collect();
        list.sort();
        ok(json!({"data": {"plugins": list}}))
    }
}

/// The answer to token management without `--token-auth` (Janus's wording).
fn token_auth_disabled() -> JanusError {
    JanusError::new(
        ErrorCode::Unknown,
        "Stored-Token based authentication disabled",
    )
}

/// Reads `timeout` for `set_session_timeout` (≥ 0; per session also −1).
fn timeout_arg(req: &Map<String, Value>, per_session: bool) -> Result<i64, JanusError> {
    check(req, "timeout", Kind::Integer, true, "")?;
    let v = req.get("timeout").and_then(Value::as_i64).unwrap_or(0);
    let min = if per_session { -1 } else { 0 };
    if v < min {
        return Err(JanusError::new(
            ErrorCode::InvalidElementType,
            "Invalid element type (timeout should be a positive integer)",
        ));
    }
    Ok(v)
}
