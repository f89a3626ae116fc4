// Janode (Meetecho's Node.js Janus client, npm `janode`, installed under
// tests/browser/node_modules) driving a VideoRoom server with its own
// VideoRoom handle class over WebSocket: room create/exists/list/edit via
// allow/listParticipants/kick/destroy, publisher join/publish/configure/
// unpublish/leave, subscriber join (server offer)/start/pause/configure/
// leave, and the error cases (codes in Janode's error `_code`).
//
// Node has no WebRTC stack here, so the SDPs are written by hand (a
// browser-like offer; an answer built from the server's offer): the
// signalling is complete but no PeerConnection comes up (media is covered by
// tests/videoroom/videoroom_client.py).
//
//   node janode_videoroom.mjs --url ws://HOST:PORT/
//
// Progress goes to stderr; stdout gets one JSON summary
// {"ok": bool, "checks": {name: {"ok", "detail"}}, "failures": [...]}.

import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Janode from "../browser/node_modules/janode/src/janode.js";
import VideoRoomPlugin from "../browser/node_modules/janode/src/plugins/videoroom-plugin.js";

const { values: args } = parseArgs({ options: { url: { type: "string" } } });
if (!args.url) {
  console.error("usage: node janode_videoroom.mjs --url ws://HOST:PORT/");
  process.exit(2);
}

const checks = {};
const failures = [];
function check(name, ok, detail) {
  checks[name] = { ok: Boolean(ok), detail: detail === undefined ? null : detail };
  if (!ok) failures.push(`${name}: ${JSON.stringify(detail)}`);
  console.error(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : " — " + JSON.stringify(detail)}`);
  return ok;
}

/** The VideoRoom error code of a rejected request (null if it succeeded). */
async function errorCode(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return e && e._code !== undefined ? e._code : String(e);
  }
}

/**
 * A real publisher (aiortc, tests/videoroom/videoroom_client.py --publish):
 * resolves with {feed, child} once its PeerConnection is up.
 */
function realPublisher(room, display, token) {
  const script = join(dirname(fileURLToPath(import.meta.url)), "videoroom_client.py");
  const child = spawn(process.env.PYTHON || "python3",
    [script, "--url", args.url, "--publish", String(room), "--display", display, "--token", token, "--seconds", "30"],
    { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the aiortc publisher did not come up")), 20000);
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const msg = JSON.parse(line);
        clearTimeout(timer);
        resolve({ feed: msg.feed, child });
      } catch (e) {
        // not the summary line
      }
    });
    child.on("exit", (code) => reject(new Error(`the aiortc publisher exited (${code})`)));
  });
}

/** Resolves with the next `event` of `emitter`, or null after `ms`. */
function nextEvent(emitter, event, ms = 5000) {
  return new Promise((resolve) => {
    const on = (data) => {
      clearTimeout(timer);
      resolve(data === undefined ? {} : data);
    };
    const timer = setTimeout(() => {
      emitter.off(event, on);
      resolve(null);
    }, ms);
    emitter.once(event, on);
  });
}

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => ((i * 11 + 3) % 256).toString(16).toUpperCase().padStart(2, "0")).join(":");

function transport(mid, setup) {
  return [
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:VnJt",
    "a=ice-pwd:dmlkZW9yb29tLXBhc3N3b3JkMQ",
    "a=ice-options:trickle",
    `a=fingerprint:sha-256 ${FINGERPRINT}`,
    `a=setup:${setup}`,
    `a=mid:${mid}`,
  ];
}

/** A browser-like offer: Opus audio and VP8/H.264 video, sendonly. */
function publisherOffer(ssrcBase) {
  return [
    "v=0",
    `o=- ${ssrcBase}42 2 IN IP4 127.0.0.1`,
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=msid-semantic: WMS stream",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
    ...transport("0", "actpass"),
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendonly",
    "a=msid:stream audio0",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:0 PCMU/8000",
    `a=ssrc:${ssrcBase}1 cname:janode`,
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102",
    ...transport("1", "actpass"),
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendonly",
    "a=msid:stream video0",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 goog-remb",
    "a=rtcp-fb:96 ccm fir",
    "a=rtcp-fb:96 nack",
    "a=rtcp-fb:96 nack pli",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
    "a=rtpmap:102 H264/90000",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    `a=ssrc-group:FID ${ssrcBase}2 ${ssrcBase}3`,
    `a=ssrc:${ssrcBase}2 cname:janode`,
    `a=ssrc:${ssrcBase}3 cname:janode`,
    "",
  ].join("\r\n");
}

/** A recvonly answer to the server's offer: the first format of each m-line. */
function subscriberAnswer(offer) {
  const sections = offer.split(/\r?\n(?=m=)/);
  const out = ["v=0", "o=- 77 2 IN IP4 127.0.0.1", "s=-", "t=0 0"];
  const mids = [];
  const media = [];
  for (const section of sections.slice(1)) {
    const lines = section.split(/\r?\n/).filter((l) => l.length > 0);
    const [kind, , proto, ...formats] = lines[0].substring(2).split(" ");
    const mid = (lines.find((l) => l.startsWith("a=mid:")) || "a=mid:" + mids.length).substring(6);
    mids.push(mid);
    if (kind === "application") {
      media.push(`m=application 9 ${proto} ${formats.join(" ")}`, ...transport(mid, "active"), "a=sctp-port:5000");
      continue;
    }
    const pt = formats[0];
    const keep = lines.filter((l) => l.startsWith(`a=rtpmap:${pt} `) || l.startsWith(`a=fmtp:${pt} `) || l.startsWith(`a=rtcp-fb:${pt} `));
    media.push(`m=${kind} 9 ${proto} ${pt}`, ...transport(mid, "active"), "a=recvonly", "a=rtcp-mux", ...keep);
  }
  out.push(`a=group:BUNDLE ${mids.join(" ")}`, ...media, "");
  return out.join("\r\n");
}

Janode.Logger.setLevel(process.env.JANODE_LOG || "none");

let connection = null;
try {
  connection = await Janode.connect({ address: { url: args.url }, retry_time_secs: 1, max_retries: 3 });
  const session = await connection.create();
  const admin = await session.attach(VideoRoomPlugin);
  const room = 100000 + Math.floor(Math.random() * 800000);
  const secret = "janode-secret";

  // ---- rooms ---------------------------------------------------------------
  const created = await admin.create({ room, description: "Janode room", max_publishers: 2, secret, notify_joining: true, bitrate: 300000 });
  check("create", created.room === room && created.permanent === false, created);
  check("create_exists_427", (await errorCode(admin.create({ room }))) === 427);
  const exists = await admin.exists({ room });
  check("exists", exists.exists === true && exists.room === room, exists);
  const listed = await admin.list();
  check("list", listed.list.some((r) => r.room === room && r.description === "Janode room" && r.max_publishers === 2), listed.list.map((r) => r.room));
  check("destroy_wrong_secret_433", (await errorCode(admin.destroy({ room, secret: "nope" }))) === 433);
  const allowed = await admin.allow({ room, secret, action: "enable", list: [] });
  check("allowed_enable", Array.isArray(allowed.list), allowed);
  await admin.allow({ room, secret, action: "add", list: ["tok-alice", "tok-bob", "tok-sub"] });

  // ---- publishers ----------------------------------------------------------
  const alice = await session.attach(VideoRoomPlugin);
  check("join_without_token_433", (await errorCode(alice.joinPublisher({ room, display: "Alice" }))) === 433);
  const aliceJoined = await alice.joinPublisher({ room, display: "Alice", token: "tok-alice" });
  check("alice_joined", typeof aliceJoined.feed === "number" && aliceJoined.room === room && Array.isArray(aliceJoined.publishers), aliceJoined);
  check("already_joined_425", (await errorCode(alice.joinPublisher({ room, token: "tok-alice" }))) === 425);
  const bob = await session.attach(VideoRoomPlugin);
  const joinedSeen = nextEvent(alice, VideoRoomPlugin.EVENT.VIDEOROOM_PUB_PEER_JOINED);
  const bobJoined = await bob.joinPublisher({ room, display: "Bob", token: "tok-bob" });
  const peerJoined = await joinedSeen;
  check("alice_sees_bob_joining", peerJoined && peerJoined.feed === bobJoined.feed && peerJoined.display === "Bob", peerJoined);

  const published = await alice.publish({ audio: true, video: true, jsep: { type: "offer", sdp: publisherOffer(1000) } });
  check(
    "alice_published",
    published.configured === "ok" && published.jsep && published.jsep.type === "answer" && /m=video 9 /.test(published.jsep.sdp) && /VP8\/90000/.test(published.jsep.sdp) && !/H264/.test(published.jsep.sdp),
    { configured: published.configured, streams: published.streams },
  );
  const twice = await errorCode(alice.publish({ jsep: { type: "offer", sdp: publisherOffer(1000) } }));
  // A second offer on a handle with a PeerConnection is a renegotiation.
  check("republish_is_renegotiation", twice === null, twice);
  // Janus accepts a "publish" without an offer until the PeerConnection is up.
  const noOffer = await errorCode(alice.publish({}));
  check("publish_without_offer_before_up", noOffer === null, noOffer);
  const configured = await alice.configure({ bitrate: 128000, display: "Alice B." });
  check("alice_configured", configured.configured === "ok", configured);
  await bob.publish({ jsep: { type: "offer", sdp: publisherOffer(2000) } });
  const carol = await session.attach(VideoRoomPlugin);
  await admin.allow({ room, secret, action: "add", list: ["tok-carol"] });
  await carol.joinPublisher({ room, display: "Carol", token: "tok-carol" });

  const parts = await admin.listParticipants({ room });
  check("list_participants", parts.participants.length === 3 && parts.participants.some((p) => p.feed === aliceJoined.feed && p.display === "Alice B."), parts.participants);

  // A publisher whose PeerConnection is up (Janode's own ones never connect:
  // hand-written SDP, no WebRTC stack), to subscribe to.
  await admin.allow({ room, secret, action: "add", list: ["tok-dave"] });
  const davePublished = nextEvent(alice, VideoRoomPlugin.EVENT.VIDEOROOM_PUB_LIST, 20000);
  const dave = await realPublisher(room, "Dave", "tok-dave");
  const pubList = await davePublished;
  check("alice_sees_dave_published", pubList && pubList.publishers.some((p) => p.feed === dave.feed && p.display === "Dave"), pubList);

  // ---- subscriber ----------------------------------------------------------
  const sub = await session.attach(VideoRoomPlugin);
  check("subscribe_missing_feed_428", (await errorCode(sub.joinSubscriber({ room, feed: 12345, token: "tok-sub" }))) === 428);
  const subscribed = await sub.joinSubscriber({ room, streams: [{ feed: dave.feed }], token: "tok-sub" });
  check(
    "subscriber_joined",
    subscribed.jsep && subscribed.jsep.type === "offer" && Array.isArray(subscribed.streams) && subscribed.streams.length === 2 && /a=sendonly/.test(subscribed.jsep.sdp),
    { streams: subscribed.streams },
  );
  const started = await sub.start({ jsep: { type: "answer", sdp: subscriberAnswer(subscribed.jsep.sdp) } });
  check("subscriber_started", started.started === "ok", started);
  const paused = await sub.pause();
  check("subscriber_paused", paused.paused === "ok", paused);
  const subConfigured = await sub.configure({ video: false, sc_substream_layer: 0 });
  check("subscriber_configured", subConfigured.configured === "ok", subConfigured);
  const restarted = await sub.start({});
  check("subscriber_restarted", restarted.started === "ok", restarted);

  // ---- unpublish, leave, kick, destroy --------------------------------------
  const daveGone = nextEvent(alice, VideoRoomPlugin.EVENT.VIDEOROOM_UNPUBLISHED, 10000);
  dave.child.kill();
  const seen = await daveGone;
  check("alice_sees_dave_unpublished", seen && seen.feed === dave.feed, seen);
  // Bob's PeerConnection never came up: he is not published.
  check("unpublish_not_published_435", (await errorCode(bob.unpublish())) === 435);
  const bobLeaving = nextEvent(alice, VideoRoomPlugin.EVENT.VIDEOROOM_LEAVING);
  const left = await bob.leave();
  check("bob_left", left.feed === bobJoined.feed, left);
  const leavingSeen = await bobLeaving;
  check("alice_sees_bob_leaving", leavingSeen && leavingSeen.feed === bobJoined.feed, leavingSeen);
  const subLeft = await sub.leave();
  check("subscriber_left", subLeft !== null && subLeft !== undefined, subLeft);

  const kickedSeen = nextEvent(alice, VideoRoomPlugin.EVENT.VIDEOROOM_KICKED);
  await admin.kick({ room, feed: carol.feed, secret });
  const kicked = await kickedSeen;
  check("alice_sees_carol_kicked", kicked && kicked.feed === carol.feed, kicked);

  const destroyedSeen = nextEvent(alice, VideoRoomPlugin.EVENT.VIDEOROOM_DESTROYED);
  const destroyed = await admin.destroy({ room, secret });
  check("destroy", destroyed.room === room, destroyed);
  check("alice_sees_destroyed", (await destroyedSeen) !== null);
  const gone = await admin.exists({ room });
  check("gone", gone.exists === false, gone);
  const late = await session.attach(VideoRoomPlugin);
  const lateCode = await errorCode(late.joinPublisher({ room }));
  check("join_destroyed_room_426", lateCode === 426, lateCode);

  await session.destroy();
  await connection.close();
  connection = null;
} catch (e) {
  check("no_exception", false, String(e && e.stack ? e.stack : e));
} finally {
  if (connection) {
    try {
      await connection.close();
    } catch (e) {
      // already closed
    }
  }
}
const ok = failures.length === 0;
process.stdout.write(JSON.stringify({ ok, checks, failures }) + "\n");
process.exit(ok ? 0 : 1);
