//! Tests of the script host against a recording [`Core`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsfu_route::{HangupReason, Medium, PluginSessionId, RouteUpdate, ShardCommand};
use serde_json::{Value, json};

use super::{ScriptLoadError, ScriptPlugin};
use crate::config::{RecordingConfig, ScriptConfig, ScriptLimits};
use crate::plugin::{Core, HandleRef, JsepForPlugin, MessageReply, Plugin, Teardown};

/// What the script asked of the core.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    PushEvent {
        handle: HandleRef,
        transaction: Option<String>,
        event: Value,
    },
    PushEventJsep {
        handle: HandleRef,
        transaction: Option<String>,
        event: Value,
        jsep: Value,
    },
    EndSession(HandleRef),
    ClosePc(HandleRef),
    Notify {
        package: String,
        handle: Option<HandleRef>,
        event: Value,
    },
    SessionGone(HandleRef, Teardown),
    Route(RouteUpdate),
    RelayRtp {
        session: u32,
        video: bool,
        rtcp: bool,
        packet: Vec<u8>,
    },
    RelayData {
        session: u32,
        text: bool,
        label: String,
        protocol: String,
        data: Vec<u8>,
    },
    StartRecording {
        session: u32,
        medium: Medium,
        codec: String,
        fmtp: Option<String>,
        path: PathBuf,
    },
    StopRecording {
        session: u32,
        medium: Medium,
    },
    Other,
}

#[derive(Default)]
struct TestCore {
    calls: Mutex<Vec<Call>>,
    events: AtomicBool,
    push_result: AtomicI32,
}

impl TestCore {
    fn push(&self, call: Call) {
        self.calls.lock().unwrap().push(call);
    }

    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Core for TestCore {
    fn push_event(&self, handle: HandleRef, transaction: Option<&str>, event: Value) -> i32 {
        self.push(Call::PushEvent {
            handle,
            transaction: transaction.map(str::to_owned),
            event,
        });
        self.push_result.load(Ordering::SeqCst)
    }

    fn push_event_with_jsep(
        &self,
        handle: HandleRef,
        transaction: Option<String>,
        event: Value,
        jsep: serde_json::Map<String, Value>,
    ) {
        self.push(Call::PushEventJsep {
            handle,
            transaction,
            event,
            jsep: Value::Object(jsep),
        });
    }

    fn end_session(&self, handle: HandleRef) {
        self.push(Call::EndSession(handle));
    }

    fn close_pc(&self, handle: HandleRef) {
        self.push(Call::ClosePc(handle));
    }

    fn events_enabled(&self) -> bool {
        self.events.load(Ordering::SeqCst)
    }

    fn notify_event(&self, package: &str, handle: Option<HandleRef>, event: Value) {
        self.push(Call::Notify {
            package: package.to_owned(),
            handle,
            event,
        });
    }

    fn session_gone(&self, handle: HandleRef, teardown: Teardown) {
        self.push(Call::SessionGone(handle, teardown));
    }

    fn route(&self, update: RouteUpdate) {
        self.push(Call::Route(update));
    }

    fn shard_command(&self, command: ShardCommand) {
        let call = match command {
            ShardCommand::RelayRtp {
                session,
                video,
                packet,
            } => Call::RelayRtp {
                session: session.0,
                video,
                rtcp: false,
                packet,
            },
            ShardCommand::RelayRtcp {
                session,
                video,
                packet,
            } => Call::RelayRtp {
                session: session.0,
                video,
                rtcp: true,
                packet,
            },
            ShardCommand::RelayData {
                session,
                text,
                label,
                protocol,
                data,
            } => Call::RelayData {
                session: session.0,
                text,
                label,
                protocol,
                data,
            },
            ShardCommand::StartRecording {
                session,
                medium,
                codec,
                fmtp,
                path,
                ..
            } => Call::StartRecording {
                session: session.0,
                medium,
                codec,
                fmtp,
                path,
            },
            ShardCommand::StopRecording { session, medium } => Call::StopRecording {
                session: session.0,
                medium,
            },
            _ => Call::Other,
        };
        self.push(call);
    }
}

/// A script under test: its plugin, the recording core, its folder.
struct Harness {
    plugin: Arc<ScriptPlugin>,
    core: Arc<TestCore>,
    dir: PathBuf,
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

fn scratch_dir() -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("jsfu-script-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The mandatory callbacks plus an Admin hook that evaluates its request
/// as global code and returns `{ok: result}` or `{err, name}`.
const BASE: &str = r#"
var log = [];
function init(config) { log.push('init:' + config); }
function destroy() { log.push('destroy'); }
function resumeScheduler() { log.push('resume'); }
function createSession(id) { log.push('create'); lastId = id; }
function destroySession(id) { log.push('destroySession'); }
function querySession(id) { return JSON.stringify({ id: id }); }
function handleMessage(id, tr, msg, jsep) { return (0, eval)(JSON.parse(msg).code); }
function setupMedia(id) { log.push('setup'); }
function hangupMedia(id) { log.push('hangup'); }
function handleAdminMessage(code) {
    try {
        var r = (0, eval)(code);
        return JSON.stringify({ ok: r === undefined ? null : r });
    } catch (e) {
        return JSON.stringify({ err: String(e && e.message), name: e && e.name });
    }
}
"#;

fn limits() -> ScriptLimits {
    ScriptLimits {
        callback_timeout: Duration::from_millis(300),
        memory_limit: 64 * 1024 * 1024,
    }
}

fn load_in(dir: &Path, source: &str, limits: ScriptLimits) -> Result<Harness, ScriptLoadError> {
    let file = dir.join("main.js");
    std::fs::write(&file, source).unwrap();
    let core = Arc::new(TestCore::default());
    let cfg = ScriptConfig {
        file,
        modules: dir.to_path_buf(),
        config: Some("cfg".into()),
    };
    let recording = RecordingConfig {
        dir: dir.join("rec"),
        tmp_ext: None,
        allowed: Vec::new(),
    };
    let plugin = ScriptPlugin::load(&cfg, limits, recording, core.clone())?;
    Ok(Harness {
        plugin,
        core,
        dir: dir.to_path_buf(),
    })
}

fn load(extra: &str) -> Harness {
    let dir = scratch_dir();
    load_in(&dir, &format!("{BASE}\n{extra}"), limits()).unwrap()
}

const HANDLE: HandleRef = HandleRef {
    session_id: 11,
    handle_id: 22,
};

impl Harness {
    fn eval(&self, code: &str) -> Value {
        self.plugin
            .handle_admin_message(Some(code.to_owned()))
            .blocking_recv()
            .unwrap()
    }

    fn ok(&self, code: &str) -> Value {
        let v = self.eval(code);
        v.get("ok")
            .cloned()
            .unwrap_or_else(|| panic!("{code} failed: {v}"))
    }

    fn err(&self, code: &str) -> String {
        let v = self.eval(code);
        assert_eq!(v["name"], "Error", "{code}: {v}");
        v["err"]
            .as_str()
            .unwrap_or_else(|| panic!("{code} did not throw: {v}"))
            .to_owned()
    }

    fn session(&self) -> PluginSessionId {
        self.plugin
            .create_session(HANDLE, None)
            .blocking_recv()
            .unwrap()
            .unwrap()
    }

    fn message(&self, id: PluginSessionId, code: &str) -> MessageReply {
        let body = crate::json::to_janus_string(&json!({ "code": code }));
        self.plugin
            .handle_message(id, "tr".into(), body, None)
            .blocking_recv()
            .unwrap()
    }
}

#[test]
fn argument_errors_and_return_values() {
    let h = load("");
    let id = h.session();
    let n = id.0;
    h.core.take();
    let lengths = h.ok(
        "[getModulesFolder.length, readFile.length, getDuktapeVersion.length, testExtraFunction.length, \
          pokeScheduler.length, timeCallback.length, pushEvent.length, notifyEvent.length, \
          eventsIsEnabled.length, closePc.length, endSession.length, configureMedium.length, \
          addRecipient.length, removeRecipient.length, setBitrate.length, setPliFreq.length, \
          setSubstream.length, setTemporalLayer.length, sendPli.length, relayRtp.length, relayRtcp.length, \
          relayTextData.length, relayBinaryData.length, relayData.length, startRecording.length, \
          stopRecording.length]",
    );
    assert_eq!(
        lengths,
        json!([
            0, 1, 0, 0, 0, 3, 4, 2, 0, 1, 1, 4, 2, 2, 2, 2, 2, 2, 1, 4, 4, 5, 5, 5, 13, 4
        ])
    );
    assert_eq!(h.ok("getDuktapeVersion()"), json!(20700));
    assert_eq!(h.ok("testExtraFunction()"), json!(1234));
    assert_eq!(
        h.ok("getModulesFolder()"),
        json!(h.dir.display().to_string())
    );

    assert_eq!(
        h.err("pushEvent('x')"),
        "Invalid argument (expected DUK_TYPE_NUMBER, got DUK_TYPE_STRING)\n"
    );
    assert_eq!(
        h.err("pushEvent(1, 2)"),
        "Invalid argument (expected DUK_TYPE_STRING, got DUK_TYPE_NUMBER)\n"
    );
    assert_eq!(
        h.err("pushEvent(1, null, {})"),
        "Invalid argument (expected DUK_TYPE_STRING, got DUK_TYPE_OBJECT)\n"
    );
    assert_eq!(
        h.err("pushEvent(1, null, '{}', true)"),
        "Invalid argument (expected DUK_TYPE_STRING, got DUK_TYPE_BOOLEAN)\n"
    );
    assert!(
        h.err("pushEvent(1, null, '{bad')")
            .starts_with("JSON error: on line 1: ")
    );
    assert!(
        h.err("pushEvent(1, null, 'null')")
            .contains("'[' or '{' expected near 'null'")
    );
    assert_eq!(
        h.err("pushEvent(12345, null, '{}')"),
        "Session 12345 doesn't exist"
    );
    assert_eq!(
        h.err("pushEvent(-1, null, '{}')"),
        "Session 4294967295 doesn't exist"
    );
    h.core.push_result.store(458, Ordering::SeqCst);
    assert_eq!(
        h.ok(&format!("pushEvent({n}, 'tr', '{{\"a\": 1}}')")),
        json!(458)
    );
    h.core.push_result.store(0, Ordering::SeqCst);
    assert_eq!(
        h.ok(&format!("pushEvent({n}, undefined, '[1]', null)")),
        json!(0)
    );
    assert_eq!(
        h.core.take(),
        vec![
            Call::PushEvent {
                handle: HANDLE,
                transaction: Some("tr".into()),
                event: json!({"a": 1})
            },
            Call::PushEvent {
                handle: HANDLE,
                transaction: None,
                event: json!([1])
            },
        ]
    );
    assert!(
        h.err(&format!(
            "pushEvent({n}, null, '{{}}', JSON.stringify({{type: 'offer', sdp: 'garbage'}}))"
        ))
        .starts_with("Error parsing answer: ")
    );
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n";
    let jsep = json!({"type": "answer", "sdp": sdp, "e2ee": true});
    assert_eq!(
        h.ok(&format!(
            "pushEvent({n}, 't', '{{}}', {})",
            serde_json::to_string(&jsep.to_string()).unwrap()
        )),
        json!(0)
    );
    assert_eq!(
        h.core.take(),
        vec![Call::PushEventJsep {
            handle: HANDLE,
            transaction: Some("t".into()),
            event: json!({}),
            jsep
        }]
    );

    // eventsIsEnabled / notifyEvent (decision 17: no parse when disabled).
    assert_eq!(h.ok("eventsIsEnabled()"), json!(0));
    assert_eq!(h.ok("notifyEvent(0, '{bad')"), json!(0));
    h.core.events.store(true, Ordering::SeqCst);
    assert_eq!(h.ok("eventsIsEnabled()"), json!(1));
    assert!(
        h.err("notifyEvent(0, '{bad')")
            .starts_with("JSON error: on line 1")
    );
    assert_eq!(
        h.ok(&format!(
            "notifyEvent({n}, '{{\"x\": 1}}') + notifyEvent(0, '{{}}')"
        )),
        json!(0)
    );
    assert_eq!(
        h.core.take(),
        vec![
            Call::Notify {
                package: "janus.plugin.duktape".into(),
                handle: Some(HANDLE),
                event: json!({"x": 1})
            },
            Call::Notify {
                package: "janus.plugin.duktape".into(),
                handle: None,
                event: json!({})
            },
        ]
    );

    // configureMedium and the route model.
    assert_eq!(
        h.err(&format!("configureMedium({n}, 'audio', 'in', 1)")),
        "Invalid argument (expected DUK_TYPE_BOOLEAN, got DUK_TYPE_NUMBER)\n"
    );
    assert_eq!(
        h.ok(&format!("configureMedium({n}, 'VIDEO', 'out', true)")),
        json!(0)
    );
    assert_eq!(
        h.ok(&format!("configureMedium({n}, 'screen', 'out', true)")),
        json!(0)
    );
    let calls = h.core.take();
    let [Call::Route(RouteUpdate::Route { session, route })] = calls.as_slice() else {
        panic!("expected one route update: {calls:?}")
    };
    assert_eq!(*session, id);
    assert!(route.gates.publish_video && !route.gates.receive_video);
    let first_epoch = route.epoch;

    assert_eq!(
        h.err(&format!("addRecipient({n}, 99)")),
        "Recipient session 99 doesn't exist"
    );
    assert_eq!(
        h.err(&format!("addRecipient(99, {n})")),
        "Session 99 doesn't exist"
    );
    assert_eq!(
        h.ok(&format!("addRecipient({n}, {n}) + addRecipient({n}, {n})")),
        json!(0)
    );
    let calls = h.core.take();
    let [Call::Route(RouteUpdate::Route { route, .. })] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(route.recipients, vec![id]);
    assert!(route.epoch > first_epoch);
    assert_eq!(h.ok(&format!("setBitrate({n}, 256000) + setPliFreq({n}, 65539) + setSubstream({n}, 7) + setSubstream({n}, 1) + setTemporalLayer({n}, 0)")), json!(0));
    let calls = h.core.take();
    let Some(Call::Route(RouteUpdate::Route { route, .. })) = calls.last() else {
        panic!("{calls:?}")
    };
    assert_eq!((route.bitrate_cap, route.pli_freq_secs), (256_000, 3));
    assert_eq!(
        (
            route.simulcast_target.substream,
            route.simulcast_target.temporal
        ),
        (1, 0)
    );
    assert_eq!(h.ok(&format!("removeRecipient({n}, {n})")), json!(0));
    assert!(
        matches!(h.core.take().as_slice(), [Call::Route(RouteUpdate::Route { route, .. })] if route.recipients.is_empty())
    );

    assert_eq!(h.err("sendPli(7)"), "Session 7 doesn't exist");
    assert_eq!(h.ok(&format!("sendPli({n})")), json!(0));
    assert_eq!(
        h.core.take(),
        vec![Call::Route(RouteUpdate::SendPli { session: id })]
    );

    // relay functions.
    assert_eq!(
        h.err(&format!("relayRtp({n}, true, 'abc', 0)")),
        "Invalid payload of declared size 0"
    );
    assert_eq!(
        h.err("relayRtp(99, true, 'abc', 3)"),
        "Session 99 doesn't exist"
    );
    assert_eq!(
        h.err(&format!("relayRtp({n}, 1, 'abc', 3)")),
        "Invalid argument (expected DUK_TYPE_BOOLEAN, got DUK_TYPE_NUMBER)\n"
    );
    assert_eq!(
        h.ok(&format!("relayRtp({n}, true, '\\x80\\x00ab\\xff', 100)")),
        json!(0)
    );
    assert_eq!(
        h.ok(&format!("relayRtcp({n}, false, '\\x81\\xc9xyz', 2)")),
        json!(0)
    );
    assert_eq!(
        h.core.take(),
        vec![
            Call::RelayRtp {
                session: n,
                video: true,
                rtcp: false,
                packet: vec![0x80, 0, b'a', b'b', 0xff]
            },
            Call::RelayRtp {
                session: n,
                video: false,
                rtcp: true,
                packet: vec![0x81, 0xc9]
            },
        ]
    );
    assert_eq!(
        h.err(&format!("relayTextData({n}, 'hi', 2)")),
        format!("Datachannel not ready yet for session {n}")
    );
    assert_eq!(
        h.err(&format!("relayTextData({n}, 'hi', 2, 5)")),
        "Invalid argument (expected DUK_TYPE_STRING, got DUK_TYPE_NUMBER)\n"
    );
    h.plugin.data_ready(id);
    assert_eq!(
        h.ok(&format!("relayTextData({n}, 'h\u{e9}llo', 5, null, 'p')")),
        json!(0)
    );
    assert_eq!(
        h.ok(&format!("relayBinaryData({n}, '\\xe9\\x01', 9, 'lbl')")),
        json!(0)
    );
    assert_eq!(h.ok(&format!("relayData({n}, 'x', 1)")), json!(0));
    assert_eq!(
        h.core.take(),
        vec![
            Call::RelayData {
                session: n,
                text: true,
                label: "JanusDataChannel".into(),
                protocol: "p".into(),
                data: "h\u{e9}ll".as_bytes().to_vec()
            },
            Call::RelayData {
                session: n,
                text: false,
                label: "lbl".into(),
                protocol: String::new(),
                data: vec![0xe9, 1]
            },
            Call::RelayData {
                session: n,
                text: true,
                label: "JanusDataChannel".into(),
                protocol: String::new(),
                data: b"x".to_vec()
            },
        ]
    );

    // closePc / endSession.
    assert_eq!(h.ok(&format!("closePc({n}) + endSession({n})")), json!(0));
    assert_eq!(
        h.core.take(),
        vec![Call::ClosePc(HANDLE), Call::EndSession(HANDLE)]
    );

    // readFile.
    assert_eq!(
        h.err("readFile('/nonexistent/jsfu')"),
        "Error opening file: /nonexistent/jsfu\n"
    );
    std::fs::write(h.dir.join("bin.dat"), [0xffu8, 0x00, 0x41]).unwrap();
    std::fs::write(h.dir.join("text.txt"), "h\u{e9}").unwrap();
    assert_eq!(
        h.ok(&format!(
            "var b = readFile('{}'); [b.length, b.charCodeAt(0), b.charCodeAt(2)]",
            h.dir.join("bin.dat").display()
        )),
        json!([3, 255, 65])
    );
    assert_eq!(
        h.ok(&format!("readFile('{}')", h.dir.join("text.txt").display())),
        json!("h\u{e9}")
    );

    // timeCallback argument checks (decision 5: null accepted).
    assert_eq!(
        h.err("timeCallback('f', 5, 1)"),
        "Invalid argument (expected DUK_TYPE_STRING, got DUK_TYPE_NUMBER)\n"
    );
    assert_eq!(
        h.err("timeCallback('f', 'a', 'x')"),
        "Invalid argument (expected DUK_TYPE_NUMBER, got DUK_TYPE_STRING)\n"
    );
    assert_eq!(h.ok("timeCallback('noSuchFunction', null, 0)"), json!(0));
}

#[test]
fn recordings_follow_the_file_rules() {
    let h = load("");
    let id = h.session();
    let n = id.0;
    h.core.take();
    let rec = h
        .dir
        .join("rec")
        .canonicalize()
        .unwrap_or_else(|_| h.dir.join("rec"));
    assert_eq!(
        h.err("startRecording(99, 'audio', 'opus')"),
        "Session 99 doesn't exist"
    );
    let failed = format!("Error starting the recording of session {n}");
    assert_eq!(h.err(&format!("startRecording({n})")), failed);
    assert_eq!(
        h.err(&format!("startRecording({n}, 'audio', 'mp3', null, 'x')")),
        failed
    );
    assert_eq!(
        h.err(&format!(
            "startRecording({n}, 'audio', 'opus', '/etc', 'x')"
        )),
        failed
    );
    assert!(h.core.take().is_empty());
    assert_eq!(
        h.ok(&format!(
            "startRecording({n}, 'audio', 'opus', null, 'one', 'video', 'vp9/fmtp=profile-id=2', 'sub', 'two', 'audio', 'opus', null, 'dup')"
        )),
        json!(0)
    );
    assert!(std::fs::metadata(h.dir.join("rec/one.mjr")).is_ok());
    assert!(std::fs::metadata(h.dir.join("rec/sub/two.mjr")).is_ok());
    // Decision 21: the duplicate audio recorder never created its file.
    assert!(std::fs::metadata(h.dir.join("rec/dup.mjr")).is_err());
    let calls = h.core.take();
    let rec = rec.canonicalize().unwrap();
    assert_eq!(
        calls,
        vec![
            Call::StartRecording {
                session: n,
                medium: Medium::Audio,
                codec: "opus".into(),
                fmtp: None,
                path: rec.join("one.mjr")
            },
            Call::StartRecording {
                session: n,
                medium: Medium::Video,
                codec: "vp9".into(),
                fmtp: Some("profile-id=2".into()),
                path: rec.join("sub/two.mjr"),
            },
            Call::Route(RouteUpdate::SendPli { session: id }),
        ]
    );
    // An unknown type counts as created but makes no file.
    assert_eq!(
        h.ok(&format!(
            "startRecording({n}, 'screen', 'vp8', null, 'ghost')"
        )),
        json!(0)
    );
    assert!(std::fs::metadata(h.dir.join("rec/ghost.mjr")).is_err());
    assert_eq!(
        h.ok(&format!("stopRecording({n}, 'audio', 'data', 5)")),
        json!(0)
    );
    assert_eq!(
        h.core.take(),
        vec![Call::StopRecording {
            session: n,
            medium: Medium::Audio
        }]
    );
    // A call whose only group targets a busy slot produced nothing: it throws.
    assert_eq!(
        h.err(&format!(
            "startRecording({n}, 'video', 'vp8', null, 'again')"
        )),
        failed
    );
    assert!(std::fs::metadata(h.dir.join("rec/again.mjr")).is_err());
    assert!(h.core.take().is_empty());
}

#[test]
fn handle_message_return_conventions() {
    let h = load("");
    let id = h.session();
    let duk = MessageReply::Error("Duktape error".into());
    assert_eq!(h.message(id, "0"), MessageReply::Ack);
    assert_eq!(h.message(id, "0.5"), MessageReply::Ack);
    assert_eq!(h.message(id, "-0.5"), MessageReply::Ack);
    assert_eq!(h.message(id, "1"), MessageReply::Ack);
    assert_eq!(h.message(id, "-1"), duk);
    assert_eq!(h.message(id, "NaN"), duk);
    let mut map = serde_json::Map::new();
    map.insert("a".into(), json!(1));
    assert_eq!(h.message(id, "'{\"a\": 1}'"), MessageReply::Success(map));
    assert_eq!(
        h.message(id, "'[1]'"),
        MessageReply::Error("Plugin returned an invalid JSON response".into())
    );
    assert_eq!(h.message(id, "'123'"), duk);
    assert_eq!(h.message(id, "'null'"), duk);
    assert_eq!(h.message(id, "'not json'"), duk);
    assert_eq!(h.message(id, "undefined"), duk);
    assert_eq!(h.message(id, "null"), duk);
    assert_eq!(h.message(id, "true"), duk);
    assert_eq!(h.message(id, "({})"), duk);
    assert_eq!(h.message(id, "throw new Error('x')"), duk);
    // querySession / handleAdminMessage conventions.
    let q = h.plugin.query_session(id).blocking_recv().unwrap().unwrap();
    assert_eq!(q.get("id"), Some(&json!(id.0)));
    assert_eq!(
        h.plugin
            .query_session(PluginSessionId(1))
            .blocking_recv()
            .unwrap(),
        None
    );
    assert_eq!(
        h.plugin.handle_admin_message(None).blocking_recv().unwrap(),
        json!({})
    );
    assert_eq!(h.eval("'not json'"), json!({"ok": "not json"}));
    h.ok("querySession = function () { throw new Error('q'); }; handleAdminMessage = function () { return 5; }; 0");
    let q = h.plugin.query_session(id).blocking_recv().unwrap().unwrap();
    assert_eq!(q.get("error"), Some(&json!("Error: q")));
    assert_eq!(h.eval("1"), json!({}));
}

#[test]
fn scheduler_and_timers() {
    let h = load("function fired(arg) { log.push('t:' + (arguments.length ? arg : 'none')); }");
    let id = h.session();
    assert_eq!(
        h.message(
            id,
            "log = []; for (var i = 0; i < 5; i++) pokeScheduler(); log.push('msg'); 1"
        ),
        MessageReply::Ack
    );
    assert_eq!(
        h.ok("log"),
        json!(["msg", "resume", "resume", "resume", "resume", "resume"])
    );
    h.ok("log = []; timeCallback('fired', 'late', 150); timeCallback('fired', 'early', 30); timeCallback('fired', undefined, 90); timeCallback('fired', null)");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        h.ok("log"),
        json!(["t:none", "t:early", "t:none", "t:late"])
    );
}

#[test]
fn load_time_requests_are_queued() {
    let h = load(
        "pokeScheduler(); timeCallback('resumeScheduler', undefined, 0); var v = eventsIsEnabled(); notifyEvent(0, '{\"x\": 1}');",
    );
    std::thread::sleep(Duration::from_millis(50));
    let log = h.ok("log");
    assert_eq!(log, json!(["init:cfg", "resume", "resume"]));
}

#[test]
fn require_resolves_and_caches() {
    let dir = scratch_dir();
    let mods = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/script/testdata/mods");
    let src = format!(
        "{BASE}\nDuktape.modSearch = function (id) {{ var s = readFile('{}/' + id + '.js'); return s; }};",
        mods.display()
    );
    let h = load_in(&dir, &src, limits()).unwrap();
    assert_eq!(
        h.ok(
            "var b = require('a/b'); [b.sibling, b.top, b.requireId, b.moduleId, b.thisIsExports]"
        ),
        json!(["c", "top", "a/b", "a/b", true])
    );
    assert_eq!(
        h.ok("require('./a/b') === require('a//b') && require('a/./c') === require('a/b/../c')"),
        json!(true)
    );
    assert_eq!(h.ok("require('top').count"), json!(1));
    assert_eq!(
        h.ok("Object.keys(Duktape.modLoaded).sort()"),
        json!(["a/b", "a/c", "top"])
    );
    for bad in ["'/x'", "'../x'", "'a/'", "'a/.hidden'", "'x'.repeat(256)"] {
        let v = h.eval(&format!("require({bad})"));
        assert_eq!(v["name"], "TypeError", "{bad}: {v}");
        assert!(
            v["err"]
                .as_str()
                .unwrap()
                .starts_with("cannot resolve module id"),
            "{v}"
        );
    }
    assert_eq!(h.err("require('lib/broken')"), "broken module");
    assert_eq!(h.ok("'lib/broken' in Duktape.modLoaded"), json!(false));
    assert_eq!(
        h.ok("Duktape.modSearch = function (id, r, e, m) { e.v = 42; }; require('virtual').v"),
        json!(42)
    );
    assert_eq!(
        h.ok("var m = Duktape.modLoaded['virtual']; m.id = 'changed'; m.id"),
        json!("virtual")
    );
}

#[test]
fn environment_shims() {
    let h = load("function errLine() {\n  return new Error('x');\n}\n");
    assert_eq!(h.ok("Duktape.enc('hex', 'A\\xff')"), json!("41ff"));
    assert_eq!(h.ok("Duktape.enc('base64', 'hello')"), json!("aGVsbG8="));
    assert_eq!(
        h.ok("Object.prototype.toString.call(Duktape.dec('hex', '41ff'))"),
        json!("[object Uint8Array]")
    );
    assert_eq!(
        h.ok("Array.prototype.slice.call(Duktape.dec('base64', 'aGVsbG8='))"),
        json!([104, 101, 108, 108, 111])
    );
    assert_eq!(
        h.ok("Duktape.enc('jx', {a: undefined, b: function(){}, c: NaN, d: Infinity})"),
        json!("{a:undefined,b:{_func:true},c:NaN,d:Infinity}")
    );
    assert_eq!(
        h.ok("Duktape.enc('jc', {a: undefined, 'x y': [1]})"),
        json!("{\"a\":{\"_undef\":true},\"x y\":[1]}")
    );
    assert_eq!(h.ok("var v = Duktape.dec('jx', '{a:undefined,b:NaN,c:|41|}'); [v.b !== v.b, v.c[0], 'a' in v]"), json!([true, 65, true]));
    assert_eq!(
        h.ok("Duktape.dec('jc', '{\"_inf\":true}') === Infinity"),
        json!(true)
    );
    assert_eq!(
        h.ok("Duktape.version + (Duktape.gc() ? 1 : 0)"),
        json!(20701)
    );
    assert_eq!(
        h.err("new Duktape.Thread(function(){})"),
        "Duktape.Thread is not supported"
    );
    assert_eq!(
        h.ok("console.table([1]); console.log('a', {b: 1}); typeof console.whatever"),
        json!("function")
    );
    assert_eq!(
        h.ok("console.format = function () { return 'F'; }; console.log({}); typeof print"),
        json!("function")
    );
    // The helper's `new Error` is on line 2 of the text appended after BASE.
    let line = BASE.matches('\n').count() + 3;
    assert_eq!(
        h.ok("var e = errLine(); [e.lineNumber, /main\\.js$/.test(e.fileName)]"),
        json!([line, true])
    );
    assert_eq!(h.ok("Error.prototype.lineNumber"), Value::Null);
    assert_eq!(
        h.ok("try { sendPli(7); } catch (e) { [typeof e.lineNumber, e.name] }"),
        json!(["number", "Error"])
    );
    assert_eq!(
        h.ok("Error.prototype.toString = function () { return this.message + '@' + this.lineNumber; }; String(errLine())"),
        json!(format!("x@{line}"))
    );
    assert_eq!(
        h.ok("Array.prototype.slice.call(new TextEncoder().encode('h\\u00e9'))"),
        json!([104, 195, 169])
    );
    assert_eq!(
        h.ok("new TextDecoder().decode(new Uint8Array([104, 195, 169, 255]))"),
        json!("h\u{e9}\u{fffd}")
    );
    // Undeclared assignments create globals (sloppy mode).
    assert_eq!(
        h.ok("undeclaredGlobal = 3; globalThis.undeclaredGlobal"),
        json!(3)
    );
}

#[test]
fn promises_and_async_functions_resolve() {
    let h = load("async function later(v) { await null; return v * 2; }");
    let id = h.session();
    assert_eq!(
        h.message(id, "log = []; Promise.resolve(1).then(function (v) { log.push('then:' + v); }); later(21).then(function (v) { log.push('async:' + v); }); 0"),
        MessageReply::Ack
    );
    assert_eq!(h.ok("log"), json!(["then:1", "async:42"]));
}

#[test]
fn runaway_scripts_are_contained() {
    let dir = scratch_dir();
    let limits = ScriptLimits {
        callback_timeout: Duration::from_millis(200),
        memory_limit: 32 * 1024 * 1024,
    };
    let h = load_in(&dir, BASE, limits).unwrap();
    let a = h.session();
    let b = h.session();
    let duk = MessageReply::Error("Duktape error".into());
    assert_eq!(h.message(a, "throw new Error('boom')"), duk);
    let started = std::time::Instant::now();
    assert_eq!(h.message(a, "while (true) {}"), duk);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(
        h.message(a, "try { while (true) {} } catch (e) { 'caught' }"),
        duk
    );
    assert_eq!(
        h.message(
            b,
            "var big = []; for (;;) big.push(new Array(100000).fill(1.5));"
        ),
        duk
    );
    assert_eq!(h.message(b, "var s = 'x'; for (;;) s = s + s;"), duk);
    // The same host keeps answering, for both sessions.
    assert_eq!(h.message(a, "0"), MessageReply::Ack);
    assert_eq!(h.message(b, "[1, 2].length"), MessageReply::Ack);
    assert_eq!(h.ok("new Array(1000).fill(0).length"), json!(1000));
}

#[test]
fn lifecycle_callbacks_in_order() {
    let h = load("");
    let id = h.session();
    h.plugin.setup_media(id).blocking_recv().unwrap();
    h.plugin.hangup_media(id, HangupReason::JanusApi);
    h.plugin.hangup_media(id, HangupReason::IceFailed);
    h.plugin.setup_media(id).blocking_recv().unwrap();
    h.plugin.hangup_media(id, HangupReason::ClosePc);
    let teardown = Teardown {
        had_pc: true,
        notify_detached: true,
    };
    h.plugin.destroy_session(id, teardown);
    assert_eq!(
        h.ok("log"),
        json!([
            "init:cfg",
            "create",
            "setup",
            "hangup",
            "setup",
            "hangup",
            "destroySession"
        ])
    );
    let calls = h.core.take();
    assert_eq!(calls.last(), Some(&Call::SessionGone(HANDLE, teardown)));
    assert!(calls.contains(&Call::Route(RouteUpdate::Remove { session: id })));
    assert_eq!(
        h.err(&format!("configureMedium({}, 'audio', 'in', true)", id.0)),
        format!("Session {} doesn't exist", id.0)
    );
    // A never-negotiated session gets no hangupMedia.
    let other = h.session();
    h.ok("log = []");
    h.plugin.destroy_session(
        other,
        Teardown {
            had_pc: false,
            notify_detached: false,
        },
    );
    assert_eq!(h.ok("log"), json!(["destroySession"]));
    h.plugin.shutdown().blocking_recv().unwrap();
    assert!(
        h.plugin
            .create_session(HANDLE, None)
            .blocking_recv()
            .map(|r| r.is_err())
            .unwrap_or(true)
    );
}

#[test]
fn media_callbacks_get_byte_strings() {
    let h = load(
        "function incomingRtp(id, v, p, l) { got = [v, p.length, p.charCodeAt(0), p.charCodeAt(1), l]; }\n\
         function incomingTextData(id, d, l, label, proto) { text = [d, l, label, proto]; }\n\
         function temporalLayerChanged(id, t) { layer = t; }\n\
         function dataReady(id) { ready = (typeof ready === 'number' ? ready : 0) + 1; }",
    );
    assert!(h.plugin.has_incoming_rtp() && !h.plugin.has_incoming_rtcp());
    assert!(
        h.plugin.callbacks().handles_text_data() && !h.plugin.callbacks().handles_binary_data()
    );
    let id = h.session();
    h.plugin.incoming_rtp(id, true, vec![0x80, 0xff, 0]);
    h.plugin.incoming_data(
        id,
        true,
        "h\u{e9}".as_bytes().to_vec(),
        "chat".into(),
        String::new(),
    );
    h.plugin.temporal_layer_changed(id, 1);
    h.plugin.data_ready(id);
    h.plugin.data_ready(id);
    assert_eq!(
        h.ok("[got, text, layer, ready]"),
        json!([[true, 3, 0x80, 0xff, 3], ["h\u{e9}", 3, "chat", ""], 1, 2])
    );
}

#[test]
fn uint8array_opt_in() {
    let h = load(
        "var jsfuBinaryAsUint8Array = true;\n\
         function incomingRtp(id, v, p, l) { got = Object.prototype.toString.call(p) + ':' + p[1]; relayRtp(id, v, p, l); }",
    );
    let id = h.session();
    h.plugin.incoming_rtp(id, false, vec![1, 200]);
    assert_eq!(h.ok("got"), json!("[object Uint8Array]:200"));
    assert!(h.core.take().contains(&Call::RelayRtp {
        session: id.0,
        video: false,
        rtcp: false,
        packet: vec![1, 200]
    }));
}

#[test]
fn identity_defaults_and_getters() {
    let h = load(
        "function getName() { return 5; } function getVersion() { return 3.7; } function getPackage() { return 'janus.plugin.t'; }",
    );
    let info = h.plugin.info();
    assert_eq!(info.name, "Janus JavaScript plugin (Duktape)");
    assert_eq!(info.version, 3);
    assert_eq!(info.package, "janus.plugin.t");
    assert_eq!(info.author, "Meetecho s.r.l.");
    assert_eq!(h.plugin.script_name(), "main.js");
}

#[test]
fn load_failures_are_reported() {
    let dir = scratch_dir();
    let missing = load_in(&dir, "function init() {}", limits()).err().unwrap();
    assert!(
        matches!(
            missing,
            ScriptLoadError::MissingFunction {
                name: "destroy",
                ..
            }
        ),
        "{missing}"
    );
    let syntax = load_in(&dir, &format!("{BASE}\n\nvar = ;"), limits())
        .err()
        .unwrap();
    let text = syntax.to_string();
    assert!(
        matches!(syntax, ScriptLoadError::Evaluate { .. }) && text.contains("main.js:"),
        "{text}"
    );
    let init = load_in(
        &dir,
        &format!("{BASE}\ninit = function () {{ throw new Error('no'); }};"),
        limits(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(init, ScriptLoadError::Init { .. }) && init.to_string().contains("no"),
        "{init}"
    );
    let empty = load_in(&dir, "  \n", limits()).err().unwrap();
    assert!(matches!(empty, ScriptLoadError::Empty { .. }));
}

#[test]
fn debian_echotest_runs_unchanged() {
    let folder = Path::new("/usr/share/janus/duktape");
    let file = folder.join("echotest.js");
    if !file.exists() {
        eprintln!("skipping: {} is not installed", file.display());
        return;
    }
    let core = Arc::new(TestCore::default());
    core.events.store(true, Ordering::SeqCst);
    let cfg = ScriptConfig {
        file,
        modules: folder.to_path_buf(),
        config: None,
    };
    let recording = RecordingConfig {
        dir: scratch_dir(),
        tmp_ext: None,
        allowed: Vec::new(),
    };
    let plugin =
        ScriptPlugin::load(&cfg, ScriptLimits::default(), recording, core.clone()).unwrap();
    assert_eq!(plugin.info().package, "janus.plugin.echojs");
    assert_eq!(plugin.info().version, 12);
    let calls = core.take();
    assert!(
        calls.iter().any(
            |c| matches!(c, Call::Notify { package, handle: None, event }
        if package == "janus.plugin.echojs" && event["event"] == "loaded")
        ),
        "{calls:?}"
    );
    let id = plugin
        .create_session(HANDLE, None)
        .blocking_recv()
        .unwrap()
        .unwrap();
    let reply = plugin
        .handle_message(id, "t1".into(), "{\"audio\": true}".into(), None)
        .blocking_recv()
        .unwrap();
    let mut expected = serde_json::Map::new();
    expected.insert("echotest".into(), json!("response"));
    expected.insert("result".into(), json!("ok"));
    assert_eq!(reply, MessageReply::Success(expected));
    // An offer is answered asynchronously through the scheduler.
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n";
    let jsep = JsepForPlugin {
        kind: "offer".into(),
        text: crate::json::to_janus_string(&json!({"type": "offer", "sdp": offer})),
        video_codec: None,
        e2ee: false,
        simulcast: None,
    };
    let reply = plugin
        .handle_message(id, "t2".into(), "{\"audio\": true}".into(), Some(jsep))
        .blocking_recv()
        .unwrap();
    assert_eq!(reply, MessageReply::Ack);
    let q = plugin.query_session(id).blocking_recv().unwrap().unwrap();
    assert_eq!(q.get("script"), Some(&json!("echotest.js")));
    let calls = core.take();
    let answer = calls.iter().find_map(|c| match c {
        Call::PushEventJsep {
            transaction,
            event,
            jsep,
            ..
        } if transaction.as_deref() == Some("t2") => Some((event.clone(), jsep.clone())),
        _ => None,
    });
    let (event, jsep) = answer.unwrap_or_else(|| panic!("no answer: {calls:?}"));
    assert_eq!(event, json!({"echotest": "event", "result": "ok"}));
    assert_eq!(jsep["type"], "answer");
    assert!(jsep["sdp"].as_str().unwrap().contains("opus/48000"));
    assert_eq!(
        plugin
            .handle_admin_message(Some("{\"x\": 1}".into()))
            .blocking_recv()
            .unwrap(),
        json!({"x": 1})
    );
    plugin.destroy_session(
        id,
        Teardown {
            had_pc: false,
            notify_detached: true,
        },
    );
    plugin.shutdown().blocking_recv().unwrap();
}
