// echotest.js — jsfu's echo application: whatever a peer sends comes back
// to it (audio, video, data channel messages), with the controls of Janus's
// echo test: audio/video/data toggles, a bitrate cap, keyframe requests,
// simulcast layer choice and recording.
//
// Package: janus.plugin.echojs (the name the Janus echo test demo page and
// janus.js clients attach to).
//
// Requests (the body of a Janus API "message"), every member optional:
//   {"audio": bool, "video": bool, "data": bool, "bitrate": bps,
//    "keyframe": true, "substream": 0-2, "temporal": 0-2,
//    "record": bool, "filename": "base name",
//    "audiocodec": "opus", "videocodec": "vp8", "videoprofile": "..."}
// A request with a JSEP offer is answered asynchronously with an event
// carrying the answer; a request without one is answered synchronously with
// {"echotest": "response", "result": "ok"} (or "error").
//
// Configuration (the script's `config` string, optional): JSON such as
//   {"recordings": "/var/lib/jsfu/recordings"}
// naming the folder for recordings (default: the server's recordings folder).
//
// Written in ES5, so that it runs unchanged on Janus's Duktape plugin too.

var scriptName = "echotest.js";
var settings = { recordings: null };
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
function getDescription() { return "jsfu echo test: everything a peer sends is sent back to it."; }
function getName() { return "jsfu EchoTest"; }
function getAuthor() { return "jsfu"; }
function getPackage() { return "janus.plugin.echojs"; }

function init(config) {
	if (config) {
		try {
			var parsed = JSON.parse(config);
			if (parsed && typeof parsed.recordings === "string") {
				settings.recordings = parsed.recordings;
			}
		} catch (e) {
			console.warn(scriptName + ": ignoring a config that is not JSON: " + e.message);
		}
	}
	console.log(scriptName + ": initialized");
	notifyEvent(0, JSON.stringify({ event: "loaded", script: scriptName }));
}

function destroy() {
	console.log(scriptName + ": stopped");
}

function setMedium(id, medium, enabled) {
	configureMedium(id, medium, "in", enabled);
	configureMedium(id, medium, "out", enabled);
}

function createSession(id) {
	sessions[id] = { id: id, recording: false, substream: null, temporal: null };
	setMedium(id, "audio", true);
	setMedium(id, "video", true);
	setMedium(id, "data", true);
}

function destroySession(id) {
	var s = sessions[id];
	if (s && s.recording) {
		stopRecording(id, "audio", "video", "data");
	}
	delete sessions[id];
}

function querySession(id) {
	var s = sessions[id];
	if (!s) {
		return null;
	}
	return JSON.stringify({ script: scriptName, id: id, recording: s.recording,
		substream: s.substream, temporal: s.temporal });
}

// Applies a request's controls; returns false when one of them failed.
function apply(id, msg) {
	var s = sessions[id];
	var ok = true;
	if (typeof msg.audio === "boolean") {
		setMedium(id, "audio", msg.audio);
	}
	if (typeof msg.video === "boolean") {
		setMedium(id, "video", msg.video);
		if (msg.video) {
			sendPli(id);
		}
	}
	if (typeof msg.data === "boolean") {
		setMedium(id, "data", msg.data);
	}
	if (typeof msg.bitrate === "number") {
		setBitrate(id, msg.bitrate);
	}
	if (typeof msg.substream === "number") {
		s.substream = msg.substream;
		setSubstream(id, msg.substream);
		sendPli(id);
	}
	if (typeof msg.temporal === "number") {
		s.temporal = msg.temporal;
		setTemporalLayer(id, msg.temporal);
		sendPli(id);
	}
	if (msg.keyframe === true) {
		sendPli(id);
	}
	if (msg.record === true && !s.recording) {
		var base = typeof msg.filename === "string" && msg.filename.length > 0 ?
			msg.filename : "echotest-" + id + "-" + new Date().getTime();
		try {
			startRecording(id,
				"audio", s.audioCodec || "opus", settings.recordings, base + "-audio",
				"video", s.videoCodec || "vp8", settings.recordings, base + "-video",
				"data", "text", settings.recordings, base + "-data");
			s.recording = true;
		} catch (e) {
			console.error(scriptName + ": " + e.message);
			ok = false;
		}
	} else if (msg.record === false && s.recording) {
		stopRecording(id, "audio", "video", "data");
		s.recording = false;
	}
	return ok;
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
		return JSON.stringify({ echotest: "response", result: "error", error: "invalid JSON" });
	}
	if (jsep) {
		// Answering needs SDP work: do it outside this callback.
		pending.push({ id: id, transaction: transaction, msg: msg, jsep: JSON.parse(jsep) });
		pokeScheduler();
		return 1;
	}
	var ok = apply(id, msg);
	return JSON.stringify({ echotest: "response", result: ok ? "ok" : "error" });
}

function handleAdminMessage(message) {
	var req = JSON.parse(message);
	if (req.request === "list") {
		var ids = [];
		for (var id in sessions) {
			ids.push(Number(id));
		}
		return JSON.stringify({ sessions: ids });
	}
	return message;
}

function answer(task) {
	var s = sessions[task.id];
	if (!s) {
		return;
	}
	if (task.jsep.type !== "offer") {
		pushEvent(task.id, task.transaction, JSON.stringify({ echotest: "event", result: "ok" }), null);
		return;
	}
	var msg = task.msg;
	var text = sdp.generateAnswer(task.jsep.sdp, { audio: true, video: true, data: true,
		audioCodec: msg.audiocodec, videoCodec: msg.videocodec,
		vp9Profile: msg.videoprofile, h264Profile: msg.videoprofile });
	var chosen = sdp.negotiated(text);
	for (var i = 0; i < chosen.length; i++) {
		if (chosen[i].port === 0 || !chosen[i].codec) {
			continue;
		}
		if (chosen[i].kind === "audio" && !s.audioCodec) {
			s.audioCodec = chosen[i].codec;
		} else if (chosen[i].kind === "video" && !s.videoCodec) {
			s.videoCodec = chosen[i].codec;
		}
	}
	var ok = apply(task.id, msg);
	var event = { echotest: "event", result: ok ? "ok" : "error" };
	if (task.jsep.simulcast) {
		event.simulcast = true;
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
			pushEvent(tasks[i].id, tasks[i].transaction,
				JSON.stringify({ echotest: "event", result: "error", error: String(e.message) }), null);
		}
	}
}

function setupMedia(id) {
	addRecipient(id, id);
	sendPli(id);
}

function hangupMedia(id) {
	removeRecipient(id, id);
	var s = sessions[id];
	if (s) {
		s.audioCodec = null;
		s.videoCodec = null;
		if (s.recording) {
			stopRecording(id, "audio", "video", "data");
			s.recording = false;
		}
	}
}

function incomingTextData(id, data, length, label, protocol) {
	var reply = "[" + scriptName + "] --> " + data;
	// The length is in bytes (UTF-8), not in characters.
	relayTextData(id, reply, utf8Length(reply), label, protocol);
}

function utf8Length(text) {
	return unescape(encodeURIComponent(text)).length;
}

function incomingBinaryData(id, data, length, label, protocol) {
	relayBinaryData(id, data, length, label, protocol);
}

function dataReady(id) {
}

function substreamChanged(id, substream) {
	pushEvent(id, null, JSON.stringify({ echotest: "event", substream: substream }), null);
}

function temporalLayerChanged(id, temporal) {
	pushEvent(id, null, JSON.stringify({ echotest: "event", temporal: temporal }), null);
}
