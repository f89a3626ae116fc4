// The echo test page: janus.js (npm janus-gateway) talking to the echo-test
// plugin (janus.plugin.echojs), the same API on jsfu and on Janus.
//
// Query parameters:
//   server=URL      Janus API URL (default: /janus on this page's origin;
//                   ws:// and wss:// URLs work too)
//   plugin=NAME     plugin package (default janus.plugin.echojs)
//   debug=1         janus.js console logging
//
// window.demo exposes the page state (events, data replies, stats) so that
// automated tests can read what a person would see.

import Janus from "./node_modules/janus-gateway/npm/dist/janus.es.js";

const params = new URLSearchParams(location.search);
const server = params.get("server") || `${location.protocol}//${location.host}/janus`;
const plugin = params.get("plugin") || "janus.plugin.echojs";
const debug = params.get("debug") === "1";

const $ = (id) => document.getElementById(id);

const demo = {
  server,
  plugin,
  status: "idle",
  webrtcUp: false,
  events: [],
  dataOpen: false,
  dataReplies: [],
  errors: [],
  stats: null,
  cleanups: 0,
  audioOn: true,
  videoOn: true,
};
window.demo = demo;

let janus = null;
let handle = null;
let statsTimer = null;
let lastStats = null;

$("server-url").textContent = server;
$("plugin-name").textContent = plugin;

function setStatus(text, cls) {
  demo.status = text;
  const el = $("status");
  el.textContent = text;
  el.className = "status" + (cls ? " " + cls : "");
}

function logTo(listId, text, cls) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (cls) li.className = cls;
  const list = $(listId);
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}

function event(text, cls) {
  demo.events.push(text);
  logTo("event-log", text, cls);
}

function fail(what, err) {
  const text = `${what}: ${err && err.message ? err.message : JSON.stringify(err)}`;
  demo.errors.push(text);
  event(text, "err");
  setStatus("error", "error");
}

function setControls(inCall) {
  $("start").disabled = inCall;
  $("simulcast").disabled = inCall;
  $("hangup").disabled = !inCall;
  for (const id of ["toggle-audio", "toggle-video", "keyframe", "bitrate"]) $(id).disabled = !inCall;
  for (const b of document.querySelectorAll(".substream")) b.disabled = !inCall;
  const dataReady = inCall && demo.dataOpen;
  $("data-text").disabled = !dataReady;
  $("data-send").disabled = !dataReady;
}

/** Sends an echo-test request; resolves with the plugin's synchronous reply. */
function request(message) {
  return new Promise((resolve, reject) => {
    if (!handle) {
      reject(new Error("not attached"));
      return;
    }
    event(`→ ${JSON.stringify(message)}`);
    handle.send({ message, success: resolve, error: reject });
  });
}

function attachTrack(videoId, track, on) {
  const video = $(videoId);
  let stream = video.srcObject;
  if (!on) {
    if (stream) {
      for (const t of stream.getTracks()) if (t.id === track.id) stream.removeTrack(t);
    }
    return;
  }
  if (!stream) {
    stream = new MediaStream();
    video.srcObject = stream;
  }
  if (!stream.getTracks().some((t) => t.id === track.id)) stream.addTrack(track);
  video.play().catch(() => {});
}

function start() {
  if (!navigator.mediaDevices || !window.RTCPeerConnection) {
    fail("start", new Error("WebRTC is unavailable: open this page over HTTPS or from localhost"));
    return;
  }
  setControls(true);
  $("start").disabled = true;
  setStatus("connecting");
  janus = new Janus({
    server,
    success: attach,
    error: (err) => fail("session", err),
    destroyed: () => event("session destroyed"),
  });
}

function attach() {
  event(`session ${janus.getSessionId()}`);
  janus.attach({
    plugin,
    opaqueId: "jsfu-echotest-" + Janus.randomString(12),
    success: (h) => {
      handle = h;
      demo.handleId = h.getId();
      event(`attached to ${plugin} (handle ${h.getId()})`);
      setStatus("attached");
      offer();
    },
    error: (err) => fail("attach", err),
    iceState: (state) => event(`ICE ${state}`),
    mediaState: (medium, on, mid) => event(`${medium} (mid ${mid}) ${on ? "flowing" : "stopped"}`),
    webrtcState: (on, reason) => {
      demo.webrtcUp = on;
      event(on ? "webrtcup" : `PeerConnection down${reason ? ": " + reason : ""}`);
      if (on) {
        setStatus("webrtcup", "up");
        startStats();
      }
    },
    slowLink: (uplink, lost, mid) => event(`slow link (${uplink ? "up" : "down"}, ${lost} lost, mid ${mid})`),
    onmessage: (msg, jsep) => {
      event(`← ${JSON.stringify(msg)}`);
      if (jsep) handle.handleRemoteJsep({ jsep, error: (err) => fail("answer", err) });
      if (msg.result === "done") handle.hangup();
    },
    onlocaltrack: (track, on) => attachTrack("local", track, on),
    onremotetrack: (track, mid, on) => {
      event(`remote ${track.kind} track (mid ${mid}) ${on ? "added" : "removed"}`);
      attachTrack("remote", track, on);
    },
    ondataopen: (label) => {
      demo.dataOpen = true;
      event(`data channel "${label || "JanusDataChannel"}" open`);
      setControls(true);
    },
    ondata: (data) => {
      demo.dataReplies.push(data);
      logTo("data-log", `← ${data}`, "in");
    },
    oncleanup: () => {
      demo.cleanups += 1;
      demo.webrtcUp = false;
      demo.dataOpen = false;
      event("cleanup: PeerConnection closed");
      stopStats();
      for (const id of ["local", "remote"]) $(id).srcObject = null;
      setControls(false);
      setStatus("idle");
    },
    ondetached: () => event("detached"),
  });
}

function offer() {
  const simulcast = $("simulcast").checked;
  handle.createOffer({
    tracks: [
      { type: "audio", capture: true, recv: true },
      { type: "video", capture: true, recv: true, simulcast },
      { type: "data" },
    ],
    success: (jsep) => {
      event(`offer created (${jsep.sdp.length} bytes)`);
      const message = { audio: true, video: true, data: true };
      handle.send({ message, jsep, error: (err) => fail("offer", err) });
    },
    error: (err) => fail("createOffer", err),
  });
}

function hangup() {
  $("hangup").disabled = true;
  if (!janus) return;
  const session = janus;
  if (handle) handle.hangup(true);
  // Leave the session cleanly: detach the handle, then destroy the session.
  session.destroy({
    success: () => {
      event("hung up");
      janus = null;
      handle = null;
      setStatus("idle");
      setControls(false);
    },
    error: (err) => fail("destroy", err),
  });
}

async function toggle(kind) {
  const key = kind === "audio" ? "audioOn" : "videoOn";
  const next = !demo[key];
  try {
    await request({ [kind]: next });
    demo[key] = next;
    if (kind === "audio") $("toggle-audio").textContent = next ? "Mute audio" : "Unmute audio";
    else $("toggle-video").textContent = next ? "Stop video" : "Resume video";
  } catch (err) {
    fail(kind, err);
  }
}

function sendData() {
  const text = $("data-text").value;
  if (!text || !handle) return;
  handle.data({
    text,
    success: () => {
      logTo("data-log", `→ ${text}`);
      $("data-text").value = "";
    },
    error: (err) => fail("data", err),
  });
}

// --- live stats from getStats() ---------------------------------------------

function startStats() {
  stopStats();
  lastStats = null;
  statsTimer = setInterval(() => collectStats().catch((err) => fail("getStats", err)), 1000);
}

function stopStats() {
  if (statsTimer) clearInterval(statsTimer);
  statsTimer = null;
}

async function collectStats() {
  const pc = handle && handle.webrtcStuff && handle.webrtcStuff.pc;
  if (!pc) return;
  const report = await pc.getStats();
  const now = performance.now();
  const snap = {
    at: now,
    audioIn: { bytes: 0, packets: 0, lost: 0 },
    videoIn: { bytes: 0, packets: 0, lost: 0, frameWidth: 0, framesDecoded: 0 },
    audioOut: { bytes: 0, packets: 0 },
    videoOut: { bytes: 0, packets: 0 },
    rttMs: null,
    pair: null,
  };
  const candidates = new Map();
  report.forEach((s) => {
    if (s.type === "local-candidate" || s.type === "remote-candidate") candidates.set(s.id, s);
  });
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && (s.kind === "audio" || s.kind === "video")) {
      const t = s.kind === "audio" ? snap.audioIn : snap.videoIn;
      t.bytes += s.bytesReceived || 0;
      t.packets += s.packetsReceived || 0;
      t.lost += s.packetsLost || 0;
      if (s.kind === "video") {
        t.frameWidth = Math.max(t.frameWidth, s.frameWidth || 0);
        t.framesDecoded += s.framesDecoded || 0;
      }
    } else if (s.type === "outbound-rtp" && (s.kind === "audio" || s.kind === "video")) {
      const t = s.kind === "audio" ? snap.audioOut : snap.videoOut;
      t.bytes += s.bytesSent || 0;
      t.packets += s.packetsSent || 0;
    } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      if (typeof s.currentRoundTripTime === "number") snap.rttMs = s.currentRoundTripTime * 1000;
      const l = candidates.get(s.localCandidateId);
      const r = candidates.get(s.remoteCandidateId);
      if (l && r) snap.pair = `${l.address}:${l.port} ⇄ ${r.address}:${r.port}`;
    } else if (s.type === "remote-inbound-rtp" && snap.rttMs === null && typeof s.roundTripTime === "number") {
      snap.rttMs = s.roundTripTime * 1000;
    }
  });
  const kbps = (key) => {
    if (!lastStats) return null;
    const secs = (now - lastStats.at) / 1000;
    return secs > 0 ? ((snap[key].bytes - lastStats[key].bytes) * 8) / 1000 / secs : null;
  };
  for (const [key, prefix] of [["audioIn", "audio-in"], ["videoIn", "video-in"], ["audioOut", "audio-out"], ["videoOut", "video-out"]]) {
    snap[key].kbps = kbps(key);
    $(`${prefix}-kbps`).textContent = snap[key].kbps === null ? "–" : snap[key].kbps.toFixed(0);
    $(`${prefix}-packets`).textContent = String(snap[key].packets);
    const lost = $(`${prefix}-lost`);
    if (lost) lost.textContent = String(snap[key].lost);
  }
  $("rtt").textContent = snap.rttMs === null ? "–" : `${snap.rttMs.toFixed(1)} ms`;
  $("pair").textContent = snap.pair || "–";
  const remote = $("remote");
  $("remote-size").textContent = remote.videoWidth ? `${remote.videoWidth}×${remote.videoHeight}` : "";
  lastStats = snap;
  demo.stats = snap;
}

// --- wiring -------------------------------------------------------------------

$("start").addEventListener("click", start);
$("hangup").addEventListener("click", hangup);
$("toggle-audio").addEventListener("click", () => toggle("audio"));
$("toggle-video").addEventListener("click", () => toggle("video"));
$("keyframe").addEventListener("click", () => request({ keyframe: true }).catch((err) => fail("keyframe", err)));
$("bitrate").addEventListener("change", (e) => {
  request({ bitrate: Number(e.target.value) }).catch((err) => fail("bitrate", err));
});
for (const b of document.querySelectorAll(".substream")) {
  b.addEventListener("click", () => {
    request({ substream: Number(b.dataset.substream) }).catch((err) => fail("substream", err));
  });
}
$("data-send").addEventListener("click", sendData);
$("data-text").addEventListener("keydown", (e) => {
  if (e.key === "Enter") sendData();
});
window.addEventListener("beforeunload", () => {
  if (janus) janus.destroy({ unload: true });
});

Janus.init({
  debug: debug ? "all" : false,
  callback: () => {
    demo.ready = true;
    setStatus("ready");
  },
});
setControls(false);
