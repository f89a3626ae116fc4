// fanout.js — a minimal one-to-many application: publishers send audio and
// video, subscribers receive the media of one publisher. It is the
// application the bench harness (bench/, scenario "fanout") runs on jsfu and
// on the real Janus's Duktape plugin alike, so it uses nothing but the Janus
// script contract and plain ES5.
//
// Package: janus.plugin.fanoutjs
//
// Requests (the body of a Janus API "message"):
//   {"request": "publish"} with a JSEP offer (the peer sends audio/video):
//       answered asynchronously with
//       {"fanout": "event", "result": "ok", "published": <id>} and an answer;
//       <id> is the feed number subscribers name.
//   {"request": "subscribe", "feed": <id>} with a JSEP offer whose m-lines
//       are recvonly: answered asynchronously with
//       {"fanout": "event", "result": "ok", "subscribed": <id>} and a
//       sendonly answer; once the subscriber's PeerConnection is up it
//       receives the publisher's packets (addRecipient), and the publisher
//       is asked for a keyframe.
//   {"request": "list"}: synchronous {"fanout": "list", "feeds": [ids]}.
// Errors are {"fanout": "event", "result": "error", "error": "..."}.
// When a publisher goes away its subscribers get
// {"fanout": "event", "unpublished": <id>}.

var scriptName = "fanout.js";
var sessions = {};
var pending = [];

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
function getDescription() { return "jsfu fan-out: publishers and subscribers."; }
function getName() { return "jsfu FanOut"; }
function getAuthor() { return "jsfu"; }
function getPackage() { return "janus.plugin.fanoutjs"; }

function init(config) {
	console.log(scriptName + ": initialized");
}

function destroy() {
	console.log(scriptName + ": stopped");
}

function createSession(id) {
	sessions[id] = { id: id, role: null, feed: null, subscribers: [], up: false };
	configureMedium(id, "audio", "in", true);
	configureMedium(id, "video", "in", true);
	configureMedium(id, "audio", "out", true);
	configureMedium(id, "video", "out", true);
}

// Detaches a subscriber from its publisher (both sides of the bookkeeping).
function unsubscribe(s) {
	var pub = s.feed !== null ? sessions[s.feed] : null;
	if (pub) {
		var at = pub.subscribers.indexOf(s.id);
		if (at >= 0) {
			pub.subscribers.splice(at, 1);
		}
		removeRecipient(pub.id, s.id);
	}
}

// Detaches every subscriber of a publisher and tells them.
function unpublish(s) {
	var subs = s.subscribers;
	s.subscribers = [];
	for (var i = 0; i < subs.length; i++) {
		var sub = sessions[subs[i]];
		removeRecipient(s.id, subs[i]);
		if (sub) {
			sub.feed = null;
			pushEvent(sub.id, null, JSON.stringify({ fanout: "event", unpublished: s.id }), null);
		}
	}
}

function destroySession(id) {
	var s = sessions[id];
	if (!s) {
		return;
	}
	if (s.role === "subscriber") {
		unsubscribe(s);
	} else if (s.role === "publisher") {
		unpublish(s);
	}
	delete sessions[id];
}

function querySession(id) {
	var s = sessions[id];
	if (!s) {
		return null;
	}
	return JSON.stringify({ script: scriptName, role: s.role, feed: s.feed,
		subscribers: s.subscribers.length });
}

function failure(text) {
	return JSON.stringify({ fanout: "event", result: "error", error: text });
}

function handleMessage(id, transaction, message, jsep) {
	var s = sessions[id];
	if (!s) {
		return -1;
	}
	var msg;
	try {
		msg = JSON.parse(message);
	} catch (e) {
		return failure("invalid JSON");
	}
	if (msg.request === "list") {
		var feeds = [];
		for (var key in sessions) {
			if (sessions[key].role === "publisher") {
				feeds.push(sessions[key].id);
			}
		}
		return JSON.stringify({ fanout: "list", feeds: feeds });
	}
	if (msg.request !== "publish" && msg.request !== "subscribe") {
		return failure("unknown request");
	}
	if (!jsep) {
		return failure("a JSEP offer is required");
	}
	if (s.role !== null) {
		return failure("this handle already is a " + s.role);
	}
	if (msg.request === "subscribe") {
		var pub = sessions[msg.feed];
		if (typeof msg.feed !== "number" || !pub || pub.role !== "publisher") {
			return failure("no such feed");
		}
	}
	// Answering needs SDP work: do it outside this callback.
	pending.push({ id: id, transaction: transaction, msg: msg, jsep: JSON.parse(jsep) });
	pokeScheduler();
	return 1;
}

function answer(task) {
	var s = sessions[task.id];
	if (!s) {
		return;
	}
	if (task.jsep.type !== "offer") {
		pushEvent(task.id, task.transaction, failure("expected an offer"), null);
		return;
	}
	var event;
	var text;
	if (task.msg.request === "publish") {
		text = sdp.generateAnswer(task.jsep.sdp, { audio: true, video: true, data: false, send: false });
		s.role = "publisher";
		event = { fanout: "event", result: "ok", published: s.id };
	} else {
		var pub = sessions[task.msg.feed];
		if (!pub || pub.role !== "publisher") {
			pushEvent(task.id, task.transaction, failure("no such feed"), null);
			return;
		}
		text = sdp.generateAnswer(task.jsep.sdp, { audio: true, video: true, data: false, recv: false });
		s.role = "subscriber";
		s.feed = pub.id;
		pub.subscribers.push(s.id);
		event = { fanout: "event", result: "ok", subscribed: pub.id };
	}
	pushEvent(task.id, task.transaction, JSON.stringify(event),
		JSON.stringify({ type: "answer", sdp: text }));
}

function resumeScheduler() {
	var tasks = pending;
	pending = [];
	for (var i = 0; i < tasks.length; i++) {
		try {
			answer(tasks[i]);
		} catch (e) {
			console.error(scriptName + ": cannot answer session " + tasks[i].id + ": " + e.message);
			pushEvent(tasks[i].id, tasks[i].transaction, failure(String(e.message)), null);
		}
	}
}

function setupMedia(id) {
	var s = sessions[id];
	if (!s) {
		return;
	}
	s.up = true;
	if (s.role === "subscriber" && s.feed !== null && sessions[s.feed]) {
		addRecipient(s.feed, id);
		sendPli(s.feed);
	}
}

function hangupMedia(id) {
	var s = sessions[id];
	if (!s) {
		return;
	}
	s.up = false;
	if (s.role === "subscriber") {
		unsubscribe(s);
		s.feed = null;
	} else if (s.role === "publisher") {
		unpublish(s);
	}
	s.role = null;
}
