//! `jsfu-test-peer`: a WebRTC peer built on str0m that runs the echo-test
//! flow against a Janus API server and checks the echoed media.
//!
//! ```text
//! jsfu-test-peer --transport http --url http://127.0.0.1:8088/janus
//! jsfu-test-peer --transport ws   --url ws://127.0.0.1:8188/
//! ```
//!
//! Flow: create a session, attach the echo plugin (`janus.plugin.echojs`),
//! send `{"audio": true, "video": true}` with an offer (Opus + VP8, both
//! sendrecv, one loopback host candidate, no trickle), apply the answer,
//! wait for ICE/DTLS and `webrtcup`, then stream synthetic frames (see
//! `media.rs`) and check that what comes back is exactly what was sent:
//!
//! 1. streaming (`--duration`, 5 s): audio and video frames come back
//!    byte-identical, in sufficient number; the server sends RTCP sender
//!    reports and `media` events (receiving) for both kinds;
//! 2. `{"video": false}`: no video comes back for `--toggle-window` seconds
//!    while audio does;
//! 3. `{"video": true}`: video comes back again (and the server asks for a
//!    keyframe, as the echo scripts call `sendPli`);
//! 4. `hangup`: a `hangup` event (reason `Janus API`), a DTLS close_notify,
//!    then no more media;
//! 5. `detach`: a `detached` event; `destroy`: success.
//!
//! A JSON summary goes to stdout; exit status 0 when every check passed,
//! 1 when one failed, 2 on a usage error. Progress goes to stderr
//! (`RUST_LOG=str0m=debug` shows str0m's own log).

mod janus;
mod media;
mod peer;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value, json};

use crate::janus::{Janus, TransportKind};
use crate::peer::Peer;

/// Command-line options.
struct Options {
    transport: TransportKind,
    url: String,
    plugin: String,
    duration: Duration,
    window: Duration,
}

const USAGE: &str = "usage: jsfu-test-peer --transport http|ws --url URL \
    [--plugin janus.plugin.echojs] [--duration SECS] [--toggle-window SECS]";

fn parse_args() -> Result<Options, String> {
    let mut transport = None;
    let mut url = None;
    let mut plugin = "janus.plugin.echojs".to_owned();
    let mut duration = Duration::from_secs(5);
    let mut window = Duration::from_millis(1500);
    let mut args = std::env::args().skip(1);
    let secs = |v: Option<String>, name: &str| -> Result<Duration, String> {
        let v = v.ok_or_else(|| format!("{name} needs a value"))?;
        let f: f64 = v
            .parse()
            .map_err(|_| format!("{name}: not a number: {v}"))?;
        Duration::try_from_secs_f64(f).map_err(|_| format!("{name}: out of range: {v}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--transport" => {
                transport = match args.next().as_deref() {
                    Some("http") => Some(TransportKind::Http),
                    Some("ws") => Some(TransportKind::Ws),
                    other => return Err(format!("--transport: http or ws, not {other:?}")),
                }
            }
            "--url" => url = Some(args.next().ok_or("--url needs a value")?),
            "--plugin" => plugin = args.next().ok_or("--plugin needs a value")?,
            "--duration" => duration = secs(args.next(), "--duration")?,
            "--toggle-window" => window = secs(args.next(), "--toggle-window")?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Options {
        transport: transport.ok_or("--transport is required")?,
        url: url.ok_or("--url is required")?,
        plugin,
        duration,
        window,
    })
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("jsfu-test-peer: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    // str0m logs through `tracing`; off unless RUST_LOG asks for it.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .try_init();
    str0m::crypto::from_feature_flags().install_process_default();

    let mut run = Run::new();
    let started = Instant::now();
    let outcome = run.flow(&opts);
    if let Err(e) = &outcome {
        run.failures.push(format!("{e:#}"));
        eprintln!("[peer] FAIL {e:#}");
    }
    run.cleanup();
    let ok = run.failures.is_empty();
    let summary = json!({
        "client": "str0m",
        "transport": opts.transport.name(),
        "url": opts.url,
        "plugin": opts.plugin,
        "checks": Value::Object(run.checks.clone()),
        "failures": run.failures,
        "answer": run.answer.clone(),
        "webrtcup_ms": run.webrtcup_ms,
        "events": run.janus.as_ref().map(|j| j.events.iter().map(|e| e["janus"].clone()).collect::<Vec<_>>()),
        "ice_states": run.peer.as_ref().map(|p| p.ice_states.clone()),
        "elapsed_s": (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        "ok": ok,
    });
    match serde_json::to_string_pretty(&summary) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("[peer] cannot print the summary: {e}"),
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// State of one run of the flow.
struct Run {
    janus: Option<Janus>,
    peer: Option<Peer>,
    checks: Map<String, Value>,
    failures: Vec<String>,
    answer: Value,
    webrtcup_ms: Option<u128>,
    destroyed: bool,
}

impl Run {
    fn new() -> Self {
        Self {
            janus: None,
            peer: None,
            checks: Map::new(),
            failures: Vec::new(),
            answer: Value::Null,
            webrtcup_ms: None,
            destroyed: false,
        }
    }

    fn check(&mut self, name: &str, ok: bool, detail: Value) {
        eprintln!(
            "[peer] {} {name}: {detail}",
            if ok { "ok  " } else { "FAIL" }
        );
        if !ok {
            self.failures.push(format!("{name}: {detail}"));
        }
        self.checks
            .insert(name.to_owned(), json!({"ok": ok, "detail": detail}));
    }

    fn parts(&mut self) -> Result<(&mut Janus, &mut Peer)> {
        match (self.janus.as_mut(), self.peer.as_mut()) {
            (Some(j), Some(p)) => Ok((j, p)),
            _ => bail!("not connected"),
        }
    }

    /// Drive the peer for `d`, collecting signalling events meanwhile.
    fn pump_for(&mut self, d: Duration) -> Result<()> {
        let (janus, peer) = self.parts()?;
        let until = Instant::now() + d;
        while Instant::now() < until {
            peer.pump((Instant::now() + Duration::from_millis(20)).min(until));
            janus.drain();
        }
        Ok(())
    }

    /// Drive the peer until an event at or after `start` satisfies `pred`.
    fn wait_event(
        &mut self,
        what: &str,
        start: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let (janus, peer) = self.parts()?;
        let until = Instant::now() + timeout;
        loop {
            janus.drain();
            if let Some(i) = janus.find(start, &pred) {
                return Ok(janus.events[i].clone());
            }
            if Instant::now() >= until {
                let seen: Vec<Value> = janus.events.iter().map(|e| e["janus"].clone()).collect();
                bail!("timed out after {timeout:?} waiting for {what}; events: {seen:?}");
            }
            peer.pump((Instant::now() + Duration::from_millis(20)).min(until));
        }
    }

    fn flow(&mut self, opts: &Options) -> Result<()> {
        let mut janus = Janus::connect(opts.transport, &opts.url)?;
        let reply = janus.expect_success("create", false, json!({}))?;
        janus.session = Some(
            reply["data"]["id"]
                .as_u64()
                .ok_or_else(|| anyhow!("create: no session id in {reply}"))?,
        );
        janus.start_events()?;
        let reply = janus.expect_success("attach", false, json!({"plugin": opts.plugin}))?;
        janus.handle = Some(
            reply["data"]["id"]
                .as_u64()
                .ok_or_else(|| anyhow!("attach: no handle id in {reply}"))?,
        );
        eprintln!(
            "[peer] session {:?}, handle {:?}",
            janus.session, janus.handle
        );
        self.janus = Some(janus);

        let (peer, offer) = Peer::offer()?;
        self.peer = Some(peer);
        let (janus, _) = self.parts()?;
        janus.drain();
        let start = janus.events.len();
        let sent_at = Instant::now();
        let reply = janus.request(
            "message",
            true,
            json!({
                "body": {"audio": true, "video": true},
                "jsep": {"type": "offer", "sdp": offer, "trickle": false},
            }),
        )?;
        if reply["janus"] != "ack" && reply["janus"] != "success" {
            bail!("message with the offer: {reply}");
        }
        let event = self.wait_event("the answer", start, Duration::from_secs(10), |e| {
            e["janus"] == "event" && e["jsep"].is_object()
        })?;
        let sdp = event["jsep"]["sdp"].as_str().unwrap_or_default().to_owned();
        let lines = |prefix: &str| -> Vec<String> {
            sdp.lines()
                .filter(|l| l.starts_with(prefix))
                .map(str::to_owned)
                .collect()
        };
        self.answer = json!({
            "type": event["jsep"]["type"],
            "plugindata": event["plugindata"],
            "candidates": lines("a=candidate"),
            "ice_lite": sdp.lines().any(|l| l == "a=ice-lite"),
            "setup": lines("a=setup"),
            "codecs": lines("a=rtpmap"),
            "delay_ms": sent_at.elapsed().as_millis(),
        });
        let is_answer = event["jsep"]["type"] == "answer";
        self.check("answer", is_answer, json!(lines("a=rtpmap")));
        if !is_answer {
            bail!("the event's jsep is not an answer");
        }
        let (_, peer) = self.parts()?;
        peer.accept_answer(&sdp)?;
        peer.set_sending(true);
        self.wait_event("webrtcup", start, Duration::from_secs(10), |e| {
            e["janus"] == "webrtcup"
        })?;
        let up = Instant::now();
        self.webrtcup_ms = Some(sent_at.elapsed().as_millis());
        eprintln!("[peer] webrtcup after {:?} ms", self.webrtcup_ms);

        // ---- 1. streaming ---------------------------------------------
        self.pump_for(opts.duration)?;
        let end = Instant::now();
        let secs = opts.duration.as_secs_f64();
        let (_, peer) = self.parts()?;
        let connected = peer.connected_at.is_some();
        let (a, v) = (peer.audio.between(up, end), peer.video.between(up, end));
        let audio = json!({
            "received": a, "sent": peer.audio.sent, "corrupt": peer.audio.corrupt,
            "foreign": peer.audio.foreign, "last_index": peer.audio.last_index,
            "expected_at_least": (secs * 50.0 * 0.6) as u64,
        });
        let video = json!({
            "received": v, "sent": peer.video.sent, "corrupt": peer.video.corrupt,
            "foreign": peer.video.foreign, "last_index": peer.video.last_index,
            "discontinuities": peer.video.discontinuities,
            "expected_at_least": (secs * 30.0 * 0.6) as u64,
        });
        let audio_clean = peer.audio.corrupt == 0 && peer.audio.foreign == 0;
        let video_clean = peer.video.corrupt == 0 && peer.video.foreign == 0;
        self.check("dtls_connected", connected, json!(connected));
        self.check("audio_frames", a as f64 >= secs * 50.0 * 0.6, audio.clone());
        self.check("video_frames", v as f64 >= secs * 30.0 * 0.6, video.clone());
        self.check("audio_content", audio_clean && a > 0, audio);
        self.check("video_content", video_clean && v > 0, video);
        let srs = |t: &peer::Track| -> (usize, u32) {
            let n = t.sender_reports.iter().filter(|(at, _)| *at >= up).count();
            (n, t.sender_reports.last().map_or(0, |(_, c)| *c))
        };
        let (_, peer) = self.parts()?;
        let ((sa, ca), (sv, cv)) = (srs(&peer.audio), srs(&peer.video));
        // One SR per second and m-line: at least two in the streaming time.
        self.check(
            "rtcp_sender_reports",
            sa >= 2 && sv >= 2 && ca > 0 && cv > 0,
            json!({"audio": {"reports": sa, "last_packet_count": ca},
                   "video": {"reports": sv, "last_packet_count": cv}}),
        );
        let (janus, _) = self.parts()?;
        let media: Vec<Value> = janus
            .events
            .iter()
            .filter(|e| e["janus"] == "media")
            .map(|e| json!({"type": e["type"], "mid": e["mid"], "receiving": e["receiving"]}))
            .collect();
        let receiving = |kind: &str| {
            media
                .iter()
                .any(|m| m["type"] == kind && m["receiving"] == true && m["mid"].is_string())
        };
        let ok = receiving("audio") && receiving("video");
        self.check("media_events", ok, json!({"media": media}));

        // ---- 1b. data channel echo -------------------------------------
        // ASCII text: the stock echotest.js passes `string.length` as the
        // byte count, which would cut non-ASCII text (a known sample bug).
        let text = b"hello from str0m";
        let binary: Vec<u8> = (0..=255u8).collect();
        let (_, peer) = self.parts()?;
        let open = peer.channel_open();
        let sent = open && peer.send_data(false, text) && peer.send_data(true, &binary);
        self.pump_for(Duration::from_secs(2))?;
        let (_, peer) = self.parts()?;
        let expected_text = [b"[echotest.js] --> ".as_slice(), text].concat();
        let text_back = peer
            .data_in
            .iter()
            .any(|(bin, d)| !*bin && *d == expected_text);
        let binary_back = peer.data_in.iter().any(|(bin, d)| *bin && *d == binary);
        let received: Vec<Value> = peer
            .data_in
            .iter()
            .map(|(bin, d)| json!({"binary": bin, "len": d.len(), "text": String::from_utf8_lossy(d)}))
            .collect();
        self.check(
            "data_echo",
            sent && text_back && binary_back,
            json!({"open": open, "sent": sent, "text_back": text_back,
                   "binary_back": binary_back, "received": received}),
        );

        // ---- 2. video off -----------------------------------------------
        let win = opts.window;
        let (janus, _) = self.parts()?;
        janus.expect_success("message", true, json!({"body": {"video": false}}))?;
        self.pump_for(Duration::from_millis(500))?;
        let t0 = Instant::now();
        self.pump_for(win)?;
        let t1 = Instant::now();
        let (_, peer) = self.parts()?;
        let (a, v) = (peer.audio.between(t0, t1), peer.video.between(t0, t1));
        self.check(
            "video_off_stalls",
            v == 0,
            json!({"video_frames": v, "window_s": win.as_secs_f64()}),
        );
        self.check(
            "video_off_audio_continues",
            a as f64 >= win.as_secs_f64() * 50.0 * 0.6,
            json!({"audio_frames": a, "window_s": win.as_secs_f64()}),
        );

        // ---- 3. video on --------------------------------------------------
        let (janus, peer) = self.parts()?;
        let plis_before = peer.video.keyframe_requests.len();
        janus.expect_success("message", true, json!({"body": {"video": true}}))?;
        let t0 = Instant::now();
        let mut resumed = None;
        while t0.elapsed() < Duration::from_secs(4) {
            self.pump_for(Duration::from_millis(50))?;
            let (_, peer) = self.parts()?;
            if peer.video.between(t0, Instant::now()) >= 5 {
                resumed = Some(t0.elapsed());
                break;
            }
        }
        let (_, peer) = self.parts()?;
        let plis = peer.video.keyframe_requests.len() - plis_before;
        let frames = peer.video.between(t0, Instant::now());
        self.check(
            "video_on_resumes",
            resumed.is_some(),
            json!({"video_frames": frames, "after_ms": resumed.map(|d| d.as_millis())}),
        );
        self.check(
            "video_on_keyframe_request",
            plis > 0,
            json!({"keyframe_requests": plis}),
        );

        // ---- 4. hangup ------------------------------------------------------
        let (janus, _) = self.parts()?;
        janus.drain();
        let start = janus.events.len();
        janus.expect_success("hangup", true, json!({}))?;
        match self.wait_event("hangup", start, Duration::from_secs(5), |e| {
            e["janus"] == "hangup"
        }) {
            Ok(ev) => self.check(
                "hangup_event",
                ev["reason"] == "Janus API",
                json!({"reason": ev["reason"]}),
            ),
            Err(e) => self.check("hangup_event", false, json!(format!("{e:#}"))),
        }
        self.pump_for(Duration::from_millis(500))?;
        let t0 = Instant::now();
        self.pump_for(win)?;
        let t1 = Instant::now();
        let (_, peer) = self.parts()?;
        let (a, v) = (peer.audio.between(t0, t1), peer.video.between(t0, t1));
        let closed = peer.closed_at.is_some();
        self.check(
            "hangup_media_stops",
            a == 0 && v == 0,
            json!({"audio_frames": a, "video_frames": v}),
        );
        // media.md §4.2: the server sends a DTLS close_notify on hangup.
        self.check(
            "hangup_dtls_close",
            closed,
            json!({"dtls_closed_by_server": closed}),
        );

        // ---- 5. detach, destroy -------------------------------------------
        let (janus, _) = self.parts()?;
        janus.drain();
        let start = janus.events.len();
        janus.expect_success("detach", true, json!({}))?;
        match self.wait_event("detached", start, Duration::from_secs(5), |e| {
            e["janus"] == "detached"
        }) {
            Ok(_) => self.check("detached_event", true, json!("received")),
            Err(e) => self.check("detached_event", false, json!(format!("{e:#}"))),
        }
        let (janus, _) = self.parts()?;
        janus.handle = None;
        janus
            .expect_success("destroy", false, json!({}))
            .context("destroy")?;
        self.destroyed = true;
        self.check("destroy", true, json!("success"));

        let (_, peer) = self.parts()?;
        if let Some(e) = peer.error.clone() {
            // An error after the server closed DTLS is expected; before, not.
            if peer.closed_at.is_none() {
                self.check("str0m_errors", false, json!(e));
            }
        }
        Ok(())
    }

    fn cleanup(&mut self) {
        if let Some(janus) = self.janus.as_mut() {
            if !self.destroyed && janus.session.is_some() {
                janus.handle = None;
                if let Err(e) = janus.request("destroy", false, json!({})) {
                    eprintln!("[peer] cleanup destroy failed: {e:#}");
                }
            }
            janus.close();
        }
    }
}
