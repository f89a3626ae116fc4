// datachannel-relay-script.js — like datachannel-relay.js, but the script
// relays data-channel messages itself (incomingTextData/incomingBinaryData
// → relayTextData/relayBinaryData to the paired session), keeping each
// message's label and protocol.
//
// Package: janus.plugin.dcrelayscriptjs. Needs the Janus "janus-sdp" module in the
// modules folder (Debian: /usr/share/janus/duktape).

var scriptName = "datachannel-relay-script.js";
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
function getPackage() { return "janus.plugin.dcrelayscriptjs"; }
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

function incomingTextData(id, buf, len, label, protocol) {
	var s = sessions[id];
	if (s && s.peer !== null) {
		relayTextData(s.peer, buf, len, label, protocol);
	}
}

function incomingBinaryData(id, buf, len, label, protocol) {
	var s = sessions[id];
	if (s && s.peer !== null) {
		relayBinaryData(s.peer, buf, len, label, protocol);
	}
}
