// Janode (Meetecho's Node.js Janus client, npm `janode`) against a server,
// over WebSocket: server info, a session, a handle on the echo-test script
// (janus.plugin.echojs, driven with Janode's own EchoTest handle class),
// messages with and without a JSEP offer, a trickle, a hangup and a detach
// with their events, then the session and the connection closed.
//
//   node janode.mjs --url ws://127.0.0.1:8188/ [--plugin janus.plugin.echojs]
//
// The last line on stdout is a JSON summary {"ok": bool, "checks": [...]};
// exit status 0 only when every check passed.

import { parseArgs } from "node:util";
import Janode from "janode";
import EchoTestPlugin from "janode/plugins/echotest";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    plugin: { type: "string", default: "janus.plugin.echojs" },
  },
});
if (!args.url) {
  console.error("usage: node janode.mjs --url ws://HOST:PORT/ [--plugin NAME]");
  process.exit(2);
}

const checks = [];
function check(name, ok, detail) {
  checks.push({ name, ok: Boolean(ok), detail });
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${detail === undefined ? "" : " — " + JSON.stringify(detail)}`);
  return ok;
}

/** Resolves with the first `event` emitted by `emitter`, or null after `ms`. */
function nextEvent(emitter, event, ms = 5000) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      resolve(null);
    }, ms);
    const on = (data) => {
      clearTimeout(timer);
      resolve(data === undefined ? {} : data);
    };
    emitter.once(event, on);
  });
}

function audioOffer() {
  const fingerprint = Array.from({ length: 32 }, (_, i) => ((i * 7) % 256).toString(16).toUpperCase().padStart(2, "0")).join(":");
  return [
    "v=0",
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "a=msid-semantic: WMS",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:Qm9v",
    "a=ice-pwd:c2VjcmV0LXBhc3N3b3JkLTEyMw",
    "a=ice-options:trickle",
    `a=fingerprint:sha-256 ${fingerprint}`,
    "a=setup:actpass",
    "a=mid:0",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=ssrc:1111 cname:probe",
    "",
  ].join("\r\n");
}

Janode.Logger.setLevel(process.env.JANODE_LOG || "warning");
// Janode's EchoTest handle class, attached to the echo-test script's package.
const descriptor = { ...EchoTestPlugin, id: args.plugin };

let connection = null;
try {
  connection = await Janode.connect({ address: { url: args.url }, retry_time_secs: 1, max_retries: 3 });
  check("connected over WebSocket", true);

  const info = await connection.getInfo();
  check("server info lists the plugin", info.janus === "server_info" && info.plugins && args.plugin in info.plugins, {
    janus: info.janus,
    plugins: Object.keys(info.plugins || {}),
  });

  const session = await connection.create();
  check("session created", typeof session.id === "number" && session.id > 0, session.id);

  const handle = await session.attach(descriptor);
  check("handle attached", typeof handle.id === "number" && handle.id > 0, handle.id);

  // A message without JSEP: a synchronous plugin reply.
  const plain = await handle.message({ audio: true, video: true });
  const plainData = plain.plugindata && plain.plugindata.data;
  check("message answered by the plugin", plain.plugindata && plain.plugindata.plugin === args.plugin && plainData && plainData.result === "ok", plain.plugindata);

  // A message with an offer: Janode's EchoTest start() waits for the
  // asynchronous event that carries the answer.
  const started = await handle.start({ audio: true, video: false, jsep: { type: "offer", sdp: audioOffer() } });
  check("offer answered by an event with a JSEP answer", started.result === "ok" && started.jsep && started.jsep.type === "answer" && /m=audio /.test(started.jsep.sdp), {
    result: started.result,
    jsep: started.jsep && started.jsep.type,
  });

  // A bitrate request on the live handle.
  const bitrate = await handle.message({ bitrate: 256000 });
  check("bitrate request answered", bitrate.plugindata && bitrate.plugindata.data && bitrate.plugindata.data.result === "ok", bitrate.plugindata);

  // Trickle: acknowledged.
  await handle.trickle({ candidate: "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", sdpMid: "0", sdpMLineIndex: 0 });
  await handle.trickleComplete();
  check("trickle acknowledged", true);

  // Hangup: the server confirms, and announces the hangup as an event.
  const hungUp = nextEvent(handle, Janode.EVENT.HANDLE_HANGUP);
  await handle.hangup();
  const hangupEvent = await hungUp;
  check("hangup event received", hangupEvent !== null, hangupEvent);

  // Detach: the server confirms with success and a detached event.
  const detached = nextEvent(handle, Janode.EVENT.HANDLE_DETACHED);
  await handle.detach();
  check("detached event received", (await detached) !== null);

  const destroyed = nextEvent(session, Janode.EVENT.SESSION_DESTROYED);
  await session.destroy();
  check("session destroyed", (await destroyed) !== null);

  const closed = nextEvent(connection, Janode.EVENT.CONNECTION_CLOSED);
  await connection.close();
  check("connection closed", (await closed) !== null);
  connection = null;
} catch (e) {
  check("no exception", false, String(e && e.stack ? e.stack : e));
} finally {
  if (connection) await connection.close().catch(() => {});
}

const ok = checks.length > 0 && checks.every((c) => c.ok);
console.log(JSON.stringify({ ok, checks }));
process.exit(ok ? 0 : 1);
