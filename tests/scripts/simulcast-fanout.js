// simulcast-fanout.js — test script for the simulcast end-to-end test: one
// publisher, any number of viewers; every viewer receives the publisher's
// video and chooses its own simulcast layer.
//
// Requests (the body of a Janus API "message"):
//   {"role": "publisher"} or {"role": "viewer"} with the JSEP offer (a
//   viewer may add "substream"/"temporal": its layers from the start);
//   {"substream": 0-2} and/or {"temporal": 0-2} afterwards (viewers).
// Events pushed to a viewer: {"substream": n} from substreamChanged and
// {"temporal": n} from temporalLayerChanged.
//
// Modules come from the modules folder (jsfu's scripts/, for sdp.js).
// Written in ES5, like the scripts it tests.

var sessions = {};
var pending = [];
var publisher = null;

Duktape.modSearch = function (id) {
	var text = readFile(getModulesFolder() + "/" + id + ".js");
	if (typeof text !== "string") {
		throw new Error("Module not found: " + id);
	}
	return text;
};

var sdp = require("sdp");

function getVersion() { return 1; }
function getVersionString() { return "0.1.0"; }
function getDescription() { return "Simulcast fan-out test script."; }
function getName() { return "simulcast fan-out"; }
function getAuthor() { return "jsfu"; }
function getPackage() { return "janus.plugin.simulcastfanout"; }
function init(config) {}
function destroy() {}

function createSession(id) {
	sessions[id] = { id: id, role: null, up: false };
}

function destroySession(id) {
	detach(id);
	delete sessions[id];
}

function querySession(id) {
	var s = sessions[id];
	return s ? JSON.stringify({ role: s.role, up: s.up }) : null;
}

function connect(pub, viewer) {
	addRecipient(pub, viewer);
	sendPli(pub);
}

function detach(id) {
	var s = sessions[id];
	if (!s) {
		return;
	}
	if (s.role === "viewer" && publisher !== null) {
		removeRecipient(publisher, id);
	}
	if (publisher === id) {
		publisher = null;
	}
	s.up = false;
}

function handleMessage(id, transaction, message, jsep) {
	var s = sessions[id];
	if (!s) {
		return -1;
	}
	var msg = JSON.parse(message);
	if (jsep) {
		pending.push({ id: id, transaction: transaction, msg: msg, jsep: JSON.parse(jsep) });
		pokeScheduler();
		return 1;
	}
	if (typeof msg.substream === "number") {
		setSubstream(id, msg.substream);
	}
	if (typeof msg.temporal === "number") {
		setTemporalLayer(id, msg.temporal);
	}
	if (publisher !== null && (typeof msg.substream === "number" || typeof msg.temporal === "number")) {
		sendPli(publisher);
	}
	return JSON.stringify({ result: "ok" });
}

function resumeScheduler() {
	var tasks = pending;
	pending = [];
	for (var i = 0; i < tasks.length; i++) {
		var t = tasks[i];
		var s = sessions[t.id];
		if (!s) {
			continue;
		}
		var pub = t.msg.role === "publisher";
		s.role = pub ? "publisher" : "viewer";
		configureMedium(t.id, "video", pub ? "out" : "in", true);
		// A viewer may name its layers up front: set before any media flows.
		if (!pub && typeof t.msg.substream === "number") {
			setSubstream(t.id, t.msg.substream);
		}
		if (!pub && typeof t.msg.temporal === "number") {
			setTemporalLayer(t.id, t.msg.temporal);
		}
		var text = sdp.generateAnswer(t.jsep.sdp, { audio: false, video: true, data: false,
			send: !pub, recv: pub });
		pushEvent(t.id, t.transaction, JSON.stringify({ result: "ok", role: s.role }),
			JSON.stringify({ type: "answer", sdp: text }));
	}
}

function setupMedia(id) {
	var s = sessions[id];
	if (!s) {
		return;
	}
	s.up = true;
	if (s.role === "publisher") {
		publisher = id;
		for (var other in sessions) {
			if (sessions[other].role === "viewer" && sessions[other].up) {
				connect(id, Number(other));
			}
		}
	} else if (publisher !== null) {
		connect(publisher, id);
	}
}

function hangupMedia(id) {
	detach(id);
}

function substreamChanged(id, substream) {
	pushEvent(id, null, JSON.stringify({ substream: substream }), null);
}

function temporalLayerChanged(id, temporal) {
	pushEvent(id, null, JSON.stringify({ temporal: temporal }), null);
}
