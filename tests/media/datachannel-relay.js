// datachannel-relay.js — test script for tests/tests/media_datachannel.rs:
// pairs sessions two by two (in the order their PeerConnections come up)
// with addRecipient both ways and lets the shards relay data-channel
// messages natively (no incomingTextData / incomingBinaryData here, so the
// native relay runs, always on the label JanusDataChannel).
// datachannel-relay-script.js is the same plus script-side relaying.
//
// Package: janus.plugin.dcrelayjs. Needs the Janus "janus-sdp" module in the
// modules folder (Debian: /usr/share/janus/duktape).

var scriptName = "datachannel-relay.js";
var sessions = {};
var tasks = [];
var up = [];

Duktape.modSearch = function (id) {
	var text = readFile(getModulesFolder() + "/" + id + ".js");
	if (typeof text !== "string") {
		throw new Error("Module not found: " + id);
	}
	return text;
};
var sdpUtils = require("janus-sdp");

function getVersion() { return 1; }
function getVersionString() { return "0.0.1"; }
function getDescription() { return "Pairs sessions and relays their data channels"; }
function getName() { return "Data channel relay (test)"; }
function getAuthor() { return "jsfu"; }
function getPackage() { return "janus.plugin.dcrelayjs"; }
function init(config) {}
function destroy() {}

function createSession(id) {
	sessions[id] = { peer: null };
	configureMedium(id, "data", "in", true);
	configureMedium(id, "data", "out", true);
}

function destroySession(id) {
	hangupMedia(id);
	delete sessions[id];
}

function querySession(id) {
	return JSON.stringify(sessions[id] || {});
}

function handleMessage(id, tr, msg, jsep) {
	if (!sessions[id]) {
		return -1;
	}
	if (!jsep) {
		return JSON.stringify({ relay: "response", result: "ok" });
	}
	tasks.push({ id: id, tr: tr, jsep: JSON.parse(jsep) });
	pokeScheduler();
	return 1;
}

function resumeScheduler() {
	var pending = tasks;
	tasks = [];
	for (var i = 0; i < pending.length; i++) {
		var t = pending[i];
		if (!sessions[t.id]) {
			continue;
		}
		var offer = sdpUtils.parse(t.jsep.sdp);
		var answer = sdpUtils.generateAnswer(offer, { audio: false, video: false, data: true });
		pushEvent(t.id, t.tr, JSON.stringify({ relay: "event", result: "ok" }),
			JSON.stringify({ type: "answer", sdp: sdpUtils.render(answer) }));
	}
}

function setupMedia(id) {
	up.push(id);
	if (up.length % 2 !== 0) {
		return;
	}
	var a = up[up.length - 2];
	var b = id;
	if (!sessions[a] || !sessions[b]) {
		return;
	}
	sessions[a].peer = b;
	sessions[b].peer = a;
	addRecipient(a, b);
	addRecipient(b, a);
	pushEvent(a, null, JSON.stringify({ relay: "event", paired: b }), null);
	pushEvent(b, null, JSON.stringify({ relay: "event", paired: a }), null);
}

function hangupMedia(id) {
	var s = sessions[id];
	if (s && s.peer !== null) {
		removeRecipient(id, s.peer);
		removeRecipient(s.peer, id);
		if (sessions[s.peer]) {
			sessions[s.peer].peer = null;
		}
		s.peer = null;
	}
}
