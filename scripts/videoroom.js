// videoroom.js — jsfu's conference rooms, speaking the API of Janus's
// VideoRoom plugin (package janus.plugin.videoroom), so that existing
// VideoRoom clients (the Janus demo page, janus.js, Janode) work unchanged.
//
// One PeerConnection per handle, as the Janus demo page uses it: a
// publisher handle joins a room and publishes its media on its own
// PeerConnection; each subscriber handle receives the media of one
// publisher (one "feed") on another PeerConnection, offered by the server.
// Media, data channel messages and keyframe requests travel on the native
// relay (addRecipient edges from a publisher to its subscribers); the script
// only keeps the room bookkeeping and does the signalling.
//
// Requests (body of a Janus API "message", member "request"):
//   synchronous: create, edit, destroy, exists, list, listparticipants,
//                kick, allowed
//   asynchronous (ack, then an event): join (ptype publisher | subscriber),
//                joinandconfigure, configure, publish, unpublish, start,
//                pause, leave
// Errors: {"videoroom": "event", "error_code": 4xx, "error": "text"} with
// the codes of the VideoRoom documentation (421-437, 499).
//
// Configuration (the script's `config` string, optional): JSON such as
//   {"admin_key": "supersecret", "rec_dir": "/var/lib/jsfu/recordings",
//    "rooms": [{"room": 1234, "description": "Demo Room", "publishers": 6}]}
// Without "rooms" the server starts with room 1234 ("Demo Room", secret
// "adminpwd", 6 publishers, 128 kbps, PLI every 10 s), like Janus's sample
// configuration.

"use strict";

var scriptName = "videoroom.js";

Duktape.modSearch = function (id) {
	const text = readFile(getModulesFolder() + "/" + id + ".js");
	if (typeof text !== "string") {
		throw new Error("Module not found: " + id);
	}
	return text;
};

const sdp = require("sdp");

// --------------------------------------------------------------------------
// Errors
// --------------------------------------------------------------------------

const ERR = {
	UNKNOWN: 499,
	NO_MESSAGE: 421,
	INVALID_JSON: 422,
	INVALID_REQUEST: 423,
	JOIN_FIRST: 424,
	ALREADY_JOINED: 425,
	NO_SUCH_ROOM: 426,
	ROOM_EXISTS: 427,
	NO_SUCH_FEED: 428,
	MISSING_ELEMENT: 429,
	INVALID_ELEMENT: 430,
	INVALID_SDP_TYPE: 431,
	PUBLISHERS_FULL: 432,
	UNAUTHORIZED: 433,
	ALREADY_PUBLISHED: 434,
	NOT_PUBLISHED: 435,
	ID_EXISTS: 436,
	INVALID_SDP: 437
};

class VideoRoomError extends Error {
	constructor(code, text) {
		super(text);
		this.code = code;
	}
}

function fail(code, text) {
	throw new VideoRoomError(code, text);
}

function errorEvent(e) {
	if (e instanceof VideoRoomError) {
		return { videoroom: "event", error_code: e.code, error: e.message };
	}
	console.error(scriptName + ": internal error: " + (e && e.stack ? e.stack : String(e)));
	return { videoroom: "event", error_code: ERR.UNKNOWN, error: String(e && e.message ? e.message : e) };
}

// Validation of request members, with Janus's texts.
const TYPES = {
	string: [(v) => typeof v === "string", "a string"],
	boolean: [(v) => typeof v === "boolean", "a boolean"],
	positive: [(v) => Number.isInteger(v) && v > 0, "a positive integer"],
	nonneg: [(v) => Number.isInteger(v) && v >= 0, "a positive integer"],
	integer: [(v) => Number.isInteger(v), "an integer"],
	array: [(v) => Array.isArray(v), "an array"],
	object: [(v) => v !== null && typeof v === "object" && !Array.isArray(v), "an object"]
};

// specs: {name: "type" | "type!"} ("!" = mandatory).
function validate(msg, specs) {
	for (const name of Object.keys(specs)) {
		const spec = specs[name];
		const required = spec.endsWith("!");
		const type = TYPES[required ? spec.slice(0, -1) : spec];
		const value = msg[name];
		if (value === undefined || value === null) {
			if (required) {
				fail(ERR.MISSING_ELEMENT, "Missing mandatory element (" + name + ")");
			}
			continue;
		}
		if (!type[0](value)) {
			fail(ERR.INVALID_ELEMENT, "Invalid element type (" + name + " should be " + type[1] + ")");
		}
	}
}

// --------------------------------------------------------------------------
// State
// --------------------------------------------------------------------------

const settings = { adminKey: null, recDir: null };
const rooms = new Map();     // room id -> Room
const sessions = new Map();  // plugin session id -> Handle
const pending = [];          // asynchronous requests for resumeScheduler

const AUDIO_CODECS = ["opus", "multiopus", "pcmu", "pcma", "g722", "isac16", "isac32"];
const VIDEO_CODECS = ["vp8", "vp9", "h264", "av1", "h265"];

// Header extensions offered to subscribers (the core rewrites them per peer).
const SUBSCRIBER_EXTENSIONS = {
	audio: [
		[1, "urn:ietf:params:rtp-hdrext:sdes:mid"],
		[2, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"]
	],
	video: [
		[1, "urn:ietf:params:rtp-hdrext:sdes:mid"],
		[3, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"],
		[4, "urn:3gpp:video-orientation"],
		[5, "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"]
	]
};

function randomId() {
	// Janus uses random 64-bit ids; keep them exact in a JavaScript number.
	return Math.floor(Math.random() * 9007199254740990) + 1;
}

function codecList(value, allowed, fallback, field) {
	if (value === undefined || value === null) {
		return fallback.slice();
	}
	if (typeof value !== "string") {
		fail(ERR.INVALID_ELEMENT, "Invalid element type (" + field + " should be a string)");
	}
	const list = value.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c.length > 0);
	if (list.length === 0 || list.length > 5 || list.some((c) => allowed.indexOf(c) < 0)) {
		fail(ERR.INVALID_ELEMENT, "Invalid element (" + field + ")");
	}
	return list;
}

const ROOM_SPECS = {
	room: "positive", description: "string", is_private: "boolean", secret: "string",
	pin: "string", permanent: "boolean", allowed: "array", publishers: "positive",
	bitrate: "nonneg", bitrate_cap: "boolean", fir_freq: "nonneg", audiocodec: "string",
	videocodec: "string", notify_joining: "boolean", require_pvtid: "boolean",
	record: "boolean", rec_dir: "string", lock_record: "boolean", admin_key: "string"
};

function makeRoom(id, cfg) {
	return {
		room: id,
		description: typeof cfg.description === "string" ? cfg.description : "Room " + id,
		isPrivate: cfg.is_private === true,
		secret: typeof cfg.secret === "string" ? cfg.secret : null,
		pin: typeof cfg.pin === "string" ? cfg.pin : null,
		maxPublishers: Number.isInteger(cfg.publishers) && cfg.publishers > 0 ? cfg.publishers : 3,
		bitrate: Number.isInteger(cfg.bitrate) && cfg.bitrate >= 0 ? cfg.bitrate : 0,
		bitrateCap: cfg.bitrate_cap === true,
		firFreq: Number.isInteger(cfg.fir_freq) && cfg.fir_freq >= 0 ? cfg.fir_freq : 0,
		audiocodec: codecList(cfg.audiocodec, AUDIO_CODECS, ["opus"], "audiocodec"),
		videocodec: codecList(cfg.videocodec, VIDEO_CODECS, ["vp8"], "videocodec"),
		notifyJoining: cfg.notify_joining === true,
		requirePvtid: cfg.require_pvtid === true,
		record: cfg.record === true,
		recDir: typeof cfg.rec_dir === "string" ? cfg.rec_dir : settings.recDir,
		lockRecord: cfg.lock_record === true,
		allowed: Array.isArray(cfg.allowed) ? cfg.allowed.filter((t) => typeof t === "string") : null,
		participants: new Map() // participant id -> handle (publishers' handles)
	};
}

function roomInfo(r) {
	const info = {
		room: r.room,
		description: r.description,
		pin_required: r.pin !== null,
		is_private: r.isPrivate,
		max_publishers: r.maxPublishers,
		bitrate: r.bitrate,
		fir_freq: r.firFreq,
		require_pvtid: r.requirePvtid,
		require_e2ee: false,
		dummy_publisher: false,
		notify_joining: r.notifyJoining,
		audiocodec: r.audiocodec.join(","),
		videocodec: r.videocodec.join(","),
		opus_fec: true,
		record: r.record,
		lock_record: r.lockRecord,
		num_participants: r.participants.size,
		audiolevel_ext: true,
		audiolevel_event: false,
		videoorient_ext: true,
		playoutdelay_ext: true,
		transport_wide_cc_ext: true
	};
	if (r.bitrateCap) {
		info.bitrate_cap = true;
	}
	if (r.recDir) {
		info.rec_dir = r.recDir;
	}
	return info;
}

function getRoom(msg) {
	validate(msg, { room: "positive!" });
	const r = rooms.get(msg.room);
	if (!r) {
		fail(ERR.NO_SUCH_ROOM, "No such room (" + msg.room + ")");
	}
	return r;
}

function checkSecret(r, msg) {
	if (r.secret !== null && msg.secret !== r.secret) {
		fail(ERR.UNAUTHORIZED, "Unauthorized (wrong secret)");
	}
}

function checkPin(r, msg) {
	if (r.pin !== null && msg.pin !== r.pin) {
		fail(ERR.UNAUTHORIZED, "Unauthorized (wrong pin)");
	}
}

// A handle: role null until it joins.
function newHandle(id) {
	return {
		id: id,
		role: null,          // "publisher" | "subscriber"
		room: null,          // room id
		// publisher side
		userId: null,
		privateId: null,
		display: null,
		published: false,    // an answer was sent
		active: false,       // PeerConnection up, announced to the room
		media: [],           // negotiated m-lines [{type, mindex, mid, codec}]
		details: [],         // the same with the full codec ({kind, mid, codec})
		subscribers: new Set(),
		audioCodec: null,
		videoCodec: null,
		recording: false,
		wantRecord: null,    // record request of the publisher (null: room's choice)
		recordName: null,    // base file name requested with "filename"
		sendAudio: true,
		sendVideo: true,
		sendData: true,
		bitrate: 0,
		// subscriber side
		feed: null,          // publisher's handle id
		feedId: null,        // publisher's participant id
		pvtId: null,
		streams: null,       // the streams of the "attached" event
		offered: null,       // what the subscriber's offer carries (details)
		offeredBy: null,     // the publisher's participant id at that time
		paused: false,
		started: false,
		up: false,
		recvAudio: true,
		recvVideo: true,
		recvData: true
	};
}

function publisherOf(userId, room) {
	const r = rooms.get(room);
	if (!r) {
		return null;
	}
	const h = r.participants.get(userId);
	return h && sessions.get(h.id) === h ? h : null;
}

// A publisher as the "joined" event lists it (`forJoined`, with talking
// flags) or as the "publishers" event announces it.
function publisherInfo(h, forJoined) {
	const info = { id: h.userId };
	if (h.display !== null) {
		info.display = h.display;
	}
	if (h.audioCodec) {
		info.audio_codec = h.audioCodec;
	}
	if (h.videoCodec) {
		info.video_codec = h.videoCodec;
	}
	info.streams = h.media.map((m) => {
		const s = streamInfo(m);
		if (forJoined && m.type === "audio") {
			s.talking = false;
		}
		return s;
	});
	if (forJoined) {
		info.talking = false;
	}
	return info;
}

function streamInfo(m) {
	const s = { type: m.type, mindex: m.mindex, mid: m.mid };
	if (m.codec) {
		s.codec = m.codec;
	}
	if (m.type === "data") {
		delete s.codec;
	}
	return s;
}

function activePublishers(r, except) {
	const list = [];
	for (const h of r.participants.values()) {
		if (h.active && h !== except) {
			list.push(publisherInfo(h, true));
		}
	}
	return list;
}

function attendees(r, except) {
	const list = [];
	for (const h of r.participants.values()) {
		if (!h.active && h !== except) {
			const a = { id: h.userId };
			if (h.display !== null) {
				a.display = h.display;
			}
			list.push(a);
		}
	}
	return list;
}

function send(id, event, jsep) {
	try {
		pushEvent(id, null, JSON.stringify(event), jsep ? JSON.stringify(jsep) : null);
	} catch (e) {
		console.warn(scriptName + ": cannot notify session " + id + ": " + e.message);
	}
}

// Tells every participant of a room (publisher handles) but `except`.
function notifyRoom(r, event, except) {
	for (const h of r.participants.values()) {
		if (h !== except) {
			send(h.id, event, null);
		}
	}
}

// --------------------------------------------------------------------------
// Plugin identity and life cycle
// --------------------------------------------------------------------------

function getVersion() { return 1; }
function getVersionString() { return "0.1.0"; }
function getDescription() { return "jsfu VideoRoom: an SFU speaking the Janus VideoRoom API."; }
function getName() { return "jsfu VideoRoom"; }
function getAuthor() { return "jsfu"; }
function getPackage() { return "janus.plugin.videoroom"; }

function init(config) {
	let parsed = null;
	if (config) {
		try {
			parsed = JSON.parse(config);
		} catch (e) {
			console.warn(scriptName + ": ignoring a config that is not JSON: " + e.message);
		}
	}
	if (parsed && typeof parsed.admin_key === "string") {
		settings.adminKey = parsed.admin_key;
	}
	if (parsed && typeof parsed.rec_dir === "string") {
		settings.recDir = parsed.rec_dir;
	}
	const list = parsed && Array.isArray(parsed.rooms) ? parsed.rooms : [{
		room: 1234, description: "Demo Room", secret: "adminpwd", publishers: 6,
		bitrate: 128000, fir_freq: 10, record: false
	}];
	for (const cfg of list) {
		try {
			validate(cfg, Object.assign({}, ROOM_SPECS, { room: "positive!" }));
			rooms.set(cfg.room, makeRoom(cfg.room, cfg));
		} catch (e) {
			console.error(scriptName + ": skipping a configured room: " + e.message);
		}
	}
	console.log(scriptName + ": initialized with " + rooms.size + " room(s)");
}

function destroy() {
	console.log(scriptName + ": stopped");
}

function createSession(id) {
	sessions.set(id, newHandle(id));
}

function destroySession(id) {
	const h = sessions.get(id);
	if (!h) {
		return;
	}
	try {
		leaveRoom(h, false);
	} catch (e) {
		console.error(scriptName + ": cleaning up session " + id + ": " + e.message);
	}
	sessions.delete(id);
}

function querySession(id) {
	const h = sessions.get(id);
	if (!h) {
		return null;
	}
	const info = { script: scriptName, role: h.role, room: h.room };
	if (h.role === "publisher") {
		Object.assign(info, { id: h.userId, display: h.display, published: h.published,
			active: h.active, subscribers: h.subscribers.size, recording: h.recording });
	} else if (h.role === "subscriber") {
		Object.assign(info, { feed: h.feedId, started: h.started, paused: h.paused });
	}
	return JSON.stringify(info);
}

function handleAdminMessage(message) {
	const list = [];
	for (const r of rooms.values()) {
		list.push(roomInfo(r));
	}
	return JSON.stringify({ videoroom: "success", list: list });
}

// --------------------------------------------------------------------------
// Requests
// --------------------------------------------------------------------------

const SYNC = { create: 1, edit: 1, destroy: 1, exists: 1, list: 1, listparticipants: 1,
	kick: 1, allowed: 1 };
const ASYNC = { join: 1, joinandconfigure: 1, configure: 1, publish: 1, unpublish: 1,
	start: 1, pause: 1, leave: 1 };

function handleMessage(id, transaction, message, jsep) {
	const h = sessions.get(id);
	if (!h) {
		return -1;
	}
	let msg;
	let request;
	try {
		try {
			msg = JSON.parse(message);
		} catch (e) {
			fail(ERR.INVALID_JSON, "JSON error: not an object");
		}
		if (msg === null || typeof msg !== "object" || Array.isArray(msg)) {
			fail(ERR.INVALID_JSON, "JSON error: not an object");
		}
		validate(msg, { request: "string!" });
		request = msg.request.toLowerCase();
		if (SYNC[request]) {
			return JSON.stringify(syncRequest(h, request, msg));
		}
		if (!ASYNC[request]) {
			fail(ERR.INVALID_REQUEST, "Unknown request '" + msg.request + "'");
		}
	} catch (e) {
		return JSON.stringify(errorEvent(e));
	}
	let parsedJsep = null;
	if (jsep) {
		try {
			parsedJsep = JSON.parse(jsep);
		} catch (e) {
			parsedJsep = null;
		}
	}
	pending.push({ id: id, transaction: transaction, request: request, msg: msg, jsep: parsedJsep });
	pokeScheduler();
	return 0;
}

function resumeScheduler() {
	while (pending.length > 0) {
		const task = pending.shift();
		const h = sessions.get(task.id);
		if (!h) {
			continue;
		}
		let result;
		try {
			result = asyncRequest(h, task.request, task.msg, task.jsep);
		} catch (e) {
			result = { event: errorEvent(e) };
		}
		if (!result || sessions.get(task.id) !== h) {
			continue;
		}
		try {
			pushEvent(task.id, task.transaction, JSON.stringify(result.event),
				result.jsep ? JSON.stringify(result.jsep) : null);
		} catch (e) {
			console.error(scriptName + ": cannot answer session " + task.id + ": " + e.message);
			pushEvent(task.id, task.transaction, JSON.stringify(errorEvent(
				new VideoRoomError(ERR.INVALID_SDP, e.message))), null);
		}
	}
}

function syncRequest(h, request, msg) {
	switch (request) {
	case "create": return createRoom(msg);
	case "edit": return editRoom(msg);
	case "destroy": return destroyRoom(msg);
	case "exists": {
		validate(msg, { room: "positive!" });
		return { videoroom: "success", room: msg.room, exists: rooms.has(msg.room) };
	}
	case "list": {
		const admin = settings.adminKey !== null && msg.admin_key === settings.adminKey;
		const list = [];
		for (const r of rooms.values()) {
			if (!r.isPrivate || admin) {
				list.push(roomInfo(r));
			}
		}
		return { videoroom: "success", list: list };
	}
	case "listparticipants": {
		const r = getRoom(msg);
		const participants = [];
		for (const p of r.participants.values()) {
			const info = { id: p.userId };
			if (p.display !== null) {
				info.display = p.display;
			}
			info.publisher = p.active;
			if (p.active) {
				info.talking = false;
			}
			participants.push(info);
		}
		return { videoroom: "participants", room: r.room, participants: participants };
	}
	case "kick": return kick(msg);
	case "allowed": return allowed(msg);
	default:
		return fail(ERR.INVALID_REQUEST, "Unknown request '" + request + "'");
	}
}

function createRoom(msg) {
	validate(msg, ROOM_SPECS);
	if (settings.adminKey !== null && msg.admin_key !== settings.adminKey) {
		fail(ERR.UNAUTHORIZED, "Unauthorized (wrong admin_key)");
	}
	if (msg.permanent === true) {
		fail(ERR.INVALID_ELEMENT, "Invalid element (permanent: rooms cannot be saved to a configuration file)");
	}
	let id = msg.room;
	if (id === undefined || id === null) {
		do {
			id = Math.floor(Math.random() * 4294967294) + 1;
		} while (rooms.has(id));
	} else if (rooms.has(id)) {
		fail(ERR.ROOM_EXISTS, "Room " + id + " already exists");
	}
	rooms.set(id, makeRoom(id, msg));
	console.log(scriptName + ": created room " + id);
	return { videoroom: "created", room: id, permanent: false };
}

function editRoom(msg) {
	validate(msg, {
		room: "positive!", secret: "string", new_description: "string", new_is_private: "boolean",
		new_secret: "string", new_pin: "string", new_require_pvtid: "boolean", new_bitrate: "nonneg",
		new_fir_freq: "nonneg", new_publishers: "positive", new_lock_record: "boolean",
		new_rec_dir: "string", permanent: "boolean"
	});
	const r = getRoom(msg);
	checkSecret(r, msg);
	if (msg.permanent === true) {
		fail(ERR.INVALID_ELEMENT, "Invalid element (permanent: rooms cannot be saved to a configuration file)");
	}
	if (typeof msg.new_description === "string" && msg.new_description.length > 0) {
		r.description = msg.new_description;
	}
	if (typeof msg.new_is_private === "boolean") {
		r.isPrivate = msg.new_is_private;
	}
	if (typeof msg.new_secret === "string") {
		r.secret = msg.new_secret;
	}
	if (typeof msg.new_pin === "string") {
		r.pin = msg.new_pin.length > 0 ? msg.new_pin : null;
	}
	if (typeof msg.new_require_pvtid === "boolean") {
		r.requirePvtid = msg.new_require_pvtid;
	}
	if (Number.isInteger(msg.new_bitrate)) {
		r.bitrate = msg.new_bitrate;
		for (const p of r.participants.values()) {
			if (p.active) {
				applyBitrate(p, r);
			}
		}
	}
	if (Number.isInteger(msg.new_fir_freq)) {
		r.firFreq = msg.new_fir_freq;
		for (const p of r.participants.values()) {
			if (p.active) {
				setPliFreq(p.id, r.firFreq);
			}
		}
	}
	if (Number.isInteger(msg.new_publishers)) {
		r.maxPublishers = msg.new_publishers;
	}
	if (typeof msg.new_lock_record === "boolean") {
		r.lockRecord = msg.new_lock_record;
	}
	if (typeof msg.new_rec_dir === "string") {
		r.recDir = msg.new_rec_dir;
	}
	return { videoroom: "edited", room: r.room, permanent: false };
}

function destroyRoom(msg) {
	validate(msg, { room: "positive!", secret: "string", permanent: "boolean" });
	const r = getRoom(msg);
	checkSecret(r, msg);
	const event = { videoroom: "destroyed", room: r.room };
	// The participants are told; everybody (subscribers too) is let go.
	for (const h of sessions.values()) {
		if (h.room === r.room && h.role !== null) {
			if (h.role === "publisher") {
				send(h.id, event, null);
			}
			leaveRoom(h, true);
			closePc(h.id);
		}
	}
	rooms.delete(r.room);
	console.log(scriptName + ": destroyed room " + r.room);
	return { videoroom: "destroyed", room: r.room, permanent: false };
}

function kick(msg) {
	validate(msg, { room: "positive!", secret: "string", id: "positive!" });
	const r = getRoom(msg);
	checkSecret(r, msg);
	const h = r.participants.get(msg.id);
	if (!h) {
		fail(ERR.NO_SUCH_FEED, "No such user " + msg.id + " in room " + r.room);
	}
	send(h.id, { videoroom: "event", room: r.room, leaving: "ok", reason: "kicked" }, null);
	notifyRoom(r, { videoroom: "event", room: r.room, kicked: h.userId }, h);
	leaveRoom(h, false, true);
	closePc(h.id);
	return { videoroom: "success" };
}

function allowed(msg) {
	validate(msg, { room: "positive!", secret: "string", action: "string!", allowed: "array" });
	const r = getRoom(msg);
	checkSecret(r, msg);
	const action = msg.action;
	if (["enable", "disable", "add", "remove"].indexOf(action) < 0) {
		fail(ERR.INVALID_ELEMENT, "Unsupported action '" + action + "' (allowed)");
	}
	if ((action === "add" || action === "remove") && !Array.isArray(msg.allowed)) {
		fail(ERR.MISSING_ELEMENT, "Missing element (allowed)");
	}
	const tokens = Array.isArray(msg.allowed) ? msg.allowed : [];
	if (tokens.some((t) => typeof t !== "string")) {
		fail(ERR.INVALID_ELEMENT, "Invalid element in the allowed array (not a string)");
	}
	if (action === "enable") {
		r.allowed = r.allowed || [];
	} else if (action === "disable") {
		r.allowed = null;
	} else if (action === "add") {
		r.allowed = r.allowed || [];
		for (const t of tokens) {
			if (r.allowed.indexOf(t) < 0) {
				r.allowed.push(t);
			}
		}
	} else if (r.allowed) {
		r.allowed = r.allowed.filter((t) => tokens.indexOf(t) < 0);
	}
	const reply = { videoroom: "success", room: r.room };
	if (r.allowed) {
		reply.allowed = r.allowed.slice();
	}
	return reply;
}

function asyncRequest(h, request, msg, jsep) {
	if (h.role === null) {
		if (request !== "join" && request !== "joinandconfigure") {
			fail(ERR.JOIN_FIRST, "Invalid request on unconfigured participant");
		}
		validate(msg, { ptype: "string!" });
		if (msg.ptype === "publisher") {
			return joinPublisher(h, msg, jsep, request === "joinandconfigure");
		}
		if (msg.ptype === "subscriber" || msg.ptype === "listener") {
			return joinSubscriber(h, msg);
		}
		return fail(ERR.INVALID_ELEMENT, "Invalid element (ptype)");
	}
	if (request === "join" || request === "joinandconfigure") {
		fail(ERR.ALREADY_JOINED, "Already in as a " + h.role + " on this handle");
	}
	if (!rooms.has(h.room)) {
		fail(ERR.NO_SUCH_ROOM, "No such room (" + h.room + ")");
	}
	return h.role === "publisher" ? publisherRequest(h, request, msg, jsep)
		: subscriberRequest(h, request, msg, jsep);
}

// --------------------------------------------------------------------------
// Publishers
// --------------------------------------------------------------------------

function joinPublisher(h, msg, jsep, andConfigure) {
	validate(msg, { room: "positive!", id: "positive", display: "string", token: "string",
		pin: "string" });
	const r = getRoom(msg);
	checkPin(r, msg);
	if (r.allowed && (typeof msg.token !== "string" || r.allowed.indexOf(msg.token) < 0)) {
		fail(ERR.UNAUTHORIZED, "Unauthorized (not in the allowed list)");
	}
	let userId = msg.id;
	if (userId !== undefined && userId !== null) {
		if (r.participants.has(userId)) {
			fail(ERR.ID_EXISTS, "User ID " + userId + " already exists");
		}
	} else {
		do {
			userId = randomId();
		} while (r.participants.has(userId));
	}
	let privateId;
	do {
		privateId = Math.floor(Math.random() * 4294967294) + 1;
	} while ([...r.participants.values()].some((p) => p.privateId === privateId));
	if (andConfigure) {
		checkPublish(r, h, jsep);
	}
	h.role = "publisher";
	h.room = r.room;
	h.userId = userId;
	h.privateId = privateId;
	h.display = typeof msg.display === "string" ? msg.display : null;
	const event = {
		videoroom: "joined", room: r.room, description: r.description, id: userId,
		private_id: privateId, publishers: activePublishers(r, h)
	};
	if (r.notifyJoining) {
		event.attendees = attendees(r, h);
		const joining = { id: userId };
		if (h.display !== null) {
			joining.display = h.display;
		}
		notifyRoom(r, { videoroom: "event", room: r.room, joining: joining }, h);
	}
	r.participants.set(userId, h);
	if (!andConfigure) {
		return { event: event };
	}
	// joinandconfigure: the "joined" event, then the "configured" one with the answer.
	send(h.id, event, null);
	return publisherRequest(h, "configure", msg, jsep);
}

function checkPublish(r, h, jsep) {
	if (!jsep || typeof jsep.sdp !== "string") {
		return;
	}
	if (String(jsep.type).toLowerCase() !== "offer") {
		fail(ERR.INVALID_SDP_TYPE, "Unsupported SDP type '" + jsep.type + "'");
	}
	if (h.published && !jsep.update) {
		fail(ERR.ALREADY_PUBLISHED, "Can't publish, already published");
	}
	if (!h.published) {
		// As in Janus, publishers count once their PeerConnection is up.
		let count = 0;
		for (const p of r.participants.values()) {
			if (p.active) {
				count++;
			}
		}
		if (count >= r.maxPublishers) {
			fail(ERR.PUBLISHERS_FULL, "Maximum number of publishers (" + r.maxPublishers + ") already reached");
		}
	}
}

// The first codec of `preferred` that the m-line offers.
function chooseCodec(section, preferred) {
	const names = sdp.codecs(section).map((c) => c.name);
	for (const name of preferred) {
		if (names.indexOf(name) >= 0) {
			return name;
		}
	}
	return null;
}

function midOf(section, index) {
	for (const l of section.lines) {
		if (l.type === "a" && l.name === "mid" && l.value) {
			return l.value;
		}
	}
	return String(index);
}

function publisherRequest(h, request, msg, jsep) {
	const r = rooms.get(h.room);
	if (request === "leave") {
		const roomId = h.room;
		leaveRoom(h, false);
		closePc(h.id);
		return { event: { videoroom: "event", room: roomId, leaving: "ok" } };
	}
	if (request === "unpublish") {
		// As in Janus, a publisher is published once its PeerConnection is up.
		if (!h.active) {
			fail(ERR.NOT_PUBLISHED, "Can't unpublish, not published");
		}
		unpublish(h, true);
		closePc(h.id);
		return { event: { videoroom: "event", room: r.room, unpublished: "ok" } };
	}
	if (request !== "configure" && request !== "publish") {
		fail(ERR.INVALID_REQUEST, "Unknown request '" + request + "'");
	}
	validate(msg, { audio: "boolean", video: "boolean", data: "boolean", bitrate: "nonneg",
		keyframe: "boolean", record: "boolean", filename: "string", display: "string",
		audiocodec: "string", videocodec: "string" });
	// As in Janus: a "publish" without an offer once the PeerConnection is up
	// is refused; before, it is a configure.
	if (request === "publish" && !(jsep && typeof jsep.sdp === "string") && h.active) {
		fail(ERR.ALREADY_PUBLISHED, "Can't publish, already published");
	}
	if (msg.audiocodec !== undefined && r.audiocodec.indexOf(String(msg.audiocodec).toLowerCase()) < 0) {
		fail(ERR.INVALID_ELEMENT, "Invalid element (audiocodec: not allowed in this room)");
	}
	if (msg.videocodec !== undefined && r.videocodec.indexOf(String(msg.videocodec).toLowerCase()) < 0) {
		fail(ERR.INVALID_ELEMENT, "Invalid element (videocodec: not allowed in this room)");
	}
	let answer = null;
	if (jsep && typeof jsep.sdp === "string") {
		checkPublish(r, h, jsep);
		answer = answerPublisher(h, r, msg, jsep);
	}
	if (typeof msg.audio === "boolean") {
		h.sendAudio = msg.audio;
		configureMedium(h.id, "audio", "out", msg.audio);
	}
	if (typeof msg.video === "boolean") {
		h.sendVideo = msg.video;
		configureMedium(h.id, "video", "out", msg.video);
		if (msg.video && h.active) {
			sendPli(h.id);
		}
	}
	if (typeof msg.data === "boolean") {
		h.sendData = msg.data;
		configureMedium(h.id, "data", "out", msg.data);
	}
	if (Number.isInteger(msg.bitrate)) {
		h.bitrate = msg.bitrate;
		if (h.active) {
			applyBitrate(h, r);
		}
	}
	if (msg.keyframe === true && h.active) {
		sendPli(h.id);
	}
	if (typeof msg.display === "string" && msg.display !== h.display) {
		h.display = msg.display;
		notifyRoom(r, { videoroom: "event", room: r.room, id: h.userId, display: h.display }, h);
	}
	if (typeof msg.record === "boolean" && !r.lockRecord) {
		h.wantRecord = msg.record;
		if (typeof msg.filename === "string") {
			h.recordName = msg.filename;
		}
		if (h.active) {
			updateRecording(h, r);
		}
	}
	const event = { videoroom: "event", room: r.room, configured: "ok" };
	if (answer) {
		if (h.audioCodec) {
			event.audio_codec = h.audioCodec;
		}
		if (h.videoCodec) {
			event.video_codec = h.videoCodec;
		}
		event.streams = h.media.map(streamInfo);
	}
	return { event: event, jsep: answer };
}

// Answers a publisher's offer with the room's codecs; records what was
// negotiated (subscriber offers are built from it).
function answerPublisher(h, r, msg, jsep) {
	const offer = sdp.parse(jsep.sdp);
	if (offer.media.length === 0) {
		fail(ERR.INVALID_SDP, "Invalid SDP (no media)");
	}
	const audioPrefs = msg.audiocodec ? [String(msg.audiocodec).toLowerCase()] : r.audiocodec;
	const videoPrefs = msg.videocodec ? [String(msg.videocodec).toLowerCase()] : r.videocodec;
	let audioCodec = null;
	let videoCodec = null;
	for (const m of offer.media) {
		if (m.port === 0) {
			continue;
		}
		if (m.kind === "audio" && audioCodec === null) {
			audioCodec = chooseCodec(m, audioPrefs);
		} else if (m.kind === "video" && videoCodec === null) {
			videoCodec = chooseCodec(m, videoPrefs);
		}
	}
	const text = sdp.generateAnswer(offer, {
		audio: audioCodec !== null, video: videoCodec !== null, data: true,
		audioCodec: audioCodec, videoCodec: videoCodec, send: false
	});
	const answer = sdp.parse(text);
	const media = [];
	const details = [];
	answer.media.forEach((m, index) => {
		if (m.port === 0) {
			return;
		}
		const mid = midOf(offer.media[index], index);
		if (m.kind === "application") {
			media.push({ type: "data", mindex: index, mid: mid });
			details.push({ kind: "application", mid: mid, codec: null });
			return;
		}
		const codec = sdp.codecs(m)[0] || null;
		media.push({ type: m.kind, mindex: index, mid: mid, codec: codec ? codec.name : null });
		details.push({ kind: m.kind, mid: mid, codec: codec });
	});
	h.media = media;
	h.details = details;
	h.audioCodec = audioCodec;
	h.videoCodec = videoCodec;
	h.published = true;
	configureMedium(h.id, "audio", "out", h.sendAudio);
	configureMedium(h.id, "video", "out", h.sendVideo);
	configureMedium(h.id, "data", "out", h.sendData);
	return { type: "answer", sdp: text };
}

function applyBitrate(h, r) {
	let cap = r.bitrate;
	if (h.bitrate > 0 && (!r.bitrateCap || cap === 0 || h.bitrate < cap)) {
		cap = h.bitrate;
	}
	setBitrate(h.id, cap);
}

function recordingBase(h, r) {
	if (h.recordName) {
		return h.recordName;
	}
	// Janus 1.x names: videoroom-<room>-user-<id>-<microseconds>-<type>-<mindex>.
	return "videoroom-" + r.room + "-user-" + h.userId + "-" + Date.now() * 1000;
}

function updateRecording(h, r) {
	const want = r.record || h.wantRecord === true;
	if (want && !h.recording && h.media.length > 0) {
		const base = recordingBase(h, r);
		const args = [h.id];
		for (const m of h.media) {
			if ((m.type === "audio" || m.type === "video") && m.codec) {
				args.push(m.type, m.codec, r.recDir, base + "-" + m.type + "-" + m.mindex);
			} else if (m.type === "data") {
				args.push("data", "text", r.recDir, base + "-data-" + m.mindex);
			}
		}
		if (args.length > 1) {
			try {
				startRecording(...args);
				h.recording = true;
			} catch (e) {
				console.error(scriptName + ": " + e.message);
			}
		}
	} else if (!want && h.recording) {
		stopRecording(h.id, "audio", "video", "data");
		h.recording = false;
	}
}

// The publisher stops publishing: subscribers are detached and told, the
// room is told.
//
// After an "unpublish" request (`renegotiate`) each subscriber gets an
// "updated" event with an offer that makes its m-lines inactive, as in
// Janus. When the publisher's PeerConnection or handle goes away (hangup,
// leave, kick, detach), its subscribers' PeerConnections are closed instead:
// clients (the demo page among them) detach those handles on the
// "unpublished"/"leaving" notifications, and an offer racing that detach
// would only produce errors.
function unpublish(h, renegotiate) {
	const r = rooms.get(h.room);
	const wasActive = h.active;
	for (const subId of h.subscribers) {
		removeRecipient(h.id, subId);
		const sub = sessions.get(subId);
		if (sub && !renegotiate) {
			sub.feed = null;
			sub.started = false;
			closePc(sub.id);
		} else if (sub) {
			sub.feed = null;
			sub.started = false;
			// (The data stream stays, without sources, as in Janus.)
			const streams = (sub.streams || []).map((s) => ({ type: s.type, active: s.type === "data",
				mindex: s.mindex, mid: s.mid, ready: false, send: s.send }));
			sub.streams = streams;
			// Renegotiate: every m-line of the subscriber becomes inactive.
			let offer = null;
			if (sub.offered && r) {
				offer = { type: "offer", sdp: subscriberOffer(r, sub.offeredBy, sub.offered, "inactive") };
			}
			send(sub.id, { videoroom: "updated", room: h.room, streams: streams }, offer);
		}
	}
	h.subscribers.clear();
	if (h.recording) {
		stopRecording(h.id, "audio", "video", "data");
		h.recording = false;
	}
	h.published = false;
	h.active = false;
	h.media = [];
	h.details = [];
	h.audioCodec = null;
	h.videoCodec = null;
	if (r && wasActive) {
		notifyRoom(r, { videoroom: "event", room: r.room, unpublished: h.userId }, h);
	}
}

// The handle leaves its room (leave request, detach, room destroyed, kick).
function leaveRoom(h, roomGone, kicked) {
	const r = rooms.get(h.room);
	if (h.role === "publisher") {
		if (h.published) {
			unpublish(h, false);
		}
		if (r) {
			r.participants.delete(h.userId);
			if (!roomGone && !kicked) {
				notifyRoom(r, { videoroom: "event", room: r.room, leaving: h.userId }, h);
			}
		}
	} else if (h.role === "subscriber") {
		const pub = h.feed !== null ? sessions.get(h.feed) : null;
		if (pub) {
			pub.subscribers.delete(h.id);
			removeRecipient(pub.id, h.id);
		}
	}
	const id = h.id;
	const fresh = newHandle(id);
	Object.assign(h, fresh);
}

// --------------------------------------------------------------------------
// Subscribers
// --------------------------------------------------------------------------

function joinSubscriber(h, msg) {
	validate(msg, { room: "positive!", feed: "positive", streams: "array", private_id: "positive",
		pin: "string", audio: "boolean", video: "boolean", data: "boolean",
		offer_audio: "boolean", offer_video: "boolean", offer_data: "boolean",
		substream: "nonneg", temporal: "nonneg" });
	const r = getRoom(msg);
	checkPin(r, msg);
	let feedId = msg.feed;
	let mids = null;
	// The simulcast layers to relay, as Janus takes them with the join
	// (in a stream of the Janus 1.x form, or at the top level).
	let substream = msg.substream;
	let temporal = msg.temporal;
	if (Array.isArray(msg.streams)) {
		if (msg.streams.length === 0) {
			fail(ERR.INVALID_ELEMENT, "Invalid element (streams: empty)");
		}
		for (const s of msg.streams) {
			if (s === null || typeof s !== "object") {
				fail(ERR.INVALID_ELEMENT, "Invalid element type (streams should be an array of objects)");
			}
			validate(s, { feed: "positive!", mid: "string", substream: "nonneg", temporal: "nonneg" });
			if (Number.isInteger(s.substream)) {
				substream = s.substream;
			}
			if (Number.isInteger(s.temporal)) {
				temporal = s.temporal;
			}
			if (feedId !== undefined && feedId !== null && s.feed !== feedId) {
				fail(ERR.INVALID_ELEMENT, "Invalid element (streams: one feed per handle)");
			}
			feedId = s.feed;
			if (typeof s.mid === "string") {
				mids = mids || [];
				mids.push(s.mid);
			} else {
				mids = null;
			}
		}
	}
	if (feedId === undefined || feedId === null) {
		fail(ERR.MISSING_ELEMENT, "Missing mandatory element (feed)");
	}
	if (r.requirePvtid) {
		const owner = [...r.participants.values()].find((p) => p.privateId === msg.private_id);
		if (!owner) {
			fail(ERR.UNAUTHORIZED, "Unauthorized (this room requires a valid private_id)");
		}
	}
	const pub = publisherOf(feedId, r.room);
	// As in Janus, a feed exists once its PeerConnection is up.
	if (!pub || !pub.active || !pub.details) {
		fail(ERR.NO_SUCH_FEED, "No such feed (" + feedId + ")");
	}
	const chosen = pub.details.filter((d) => {
		if (mids && mids.indexOf(d.mid) < 0) {
			return false;
		}
		if (d.kind === "audio") {
			return msg.offer_audio !== false;
		}
		if (d.kind === "video") {
			return msg.offer_video !== false;
		}
		return msg.offer_data !== false;
	});
	if (chosen.length === 0) {
		fail(ERR.NO_SUCH_FEED, "No such feed (" + feedId + ": none of the requested streams)");
	}
	h.role = "subscriber";
	h.room = r.room;
	h.feed = pub.id;
	h.feedId = feedId;
	h.pvtId = Number.isInteger(msg.private_id) ? msg.private_id : null;
	h.recvAudio = msg.audio !== false;
	h.recvVideo = msg.video !== false;
	h.recvData = msg.data !== false;
	if (Number.isInteger(substream)) {
		setSubstream(h.id, substream);
	}
	if (Number.isInteger(temporal)) {
		setTemporalLayer(h.id, temporal);
	}
	pub.subscribers.add(h.id);
	h.offered = chosen;
	h.offeredBy = pub.userId;
	const offer = subscriberOffer(r, pub.userId, chosen, "sendonly");
	h.streams = chosen.map((d, index) => {
		if (d.kind === "application") {
			return { type: "data", active: true, mindex: index, mid: String(index), ready: false,
				send: true, sources: 1, source_ids: [feedId] };
		}
		const s = { type: d.kind, active: true, mindex: index,
			mid: String(index), ready: false, send: true, feed_id: feedId };
		if (pub.display !== null) {
			s.feed_display = pub.display;
		}
		s.feed_mid = d.mid;
		if (d.codec) {
			s.codec = d.codec.name;
		}
		return s;
	});
	const event = { videoroom: "attached", room: r.room, streams: h.streams };
	return { event: event, jsep: { type: "offer", sdp: offer } };
}

// An offer carrying the publisher's negotiated codecs (same payload types:
// the relay does not rewrite them); `direction` is "sendonly", or "inactive"
// for the renegotiation after the publisher went away.
function subscriberOffer(r, pubUserId, chosen, direction) {
	const out = {
		session: { lines: [
			{ type: "v", value: "0" },
			{ type: "o", value: "- " + randomId() + " 1 IN IP4 127.0.0.1" },
			{ type: "s", value: "VideoRoom " + r.room },
			{ type: "t", value: "0 0" }
		] },
		media: []
	};
	chosen.forEach((d, index) => {
		const mid = String(index);
		if (d.kind === "application") {
			out.media.push({ kind: "application", port: 9, proto: "UDP/DTLS/SCTP",
				formats: ["webrtc-datachannel"], lines: [
					{ type: "c", value: "IN IP4 1.1.1.1" },
					{ type: "a", name: "mid", value: mid }
				] });
			return;
		}
		const c = d.codec;
		const lines = [
			{ type: "c", value: "IN IP4 1.1.1.1" },
			{ type: "a", name: direction, value: null },
			{ type: "a", name: "mid", value: mid }
		];
		if (r.bitrate > 0 && d.kind === "video") {
			lines.splice(1, 0, { type: "b", value: "AS:" + Math.floor(r.bitrate / 1000) });
		}
		for (const ext of SUBSCRIBER_EXTENSIONS[d.kind] || []) {
			lines.push({ type: "a", name: "extmap", value: ext[0] + " " + ext[1] });
		}
		lines.push({ type: "a", name: "msid", value: "janus" + pubUserId + " janus" + pubUserId + d.kind + mid });
		if (c.rtpmap) {
			lines.push({ type: "a", name: "rtpmap", value: c.rtpmap });
		}
		for (const fb of c.feedback) {
			lines.push({ type: "a", name: "rtcp-fb", value: c.pt + " " + fb });
		}
		if (c.fmtp) {
			lines.push({ type: "a", name: "fmtp", value: c.pt + " " + c.fmtp });
		}
		out.media.push({ kind: d.kind, port: 9, proto: "UDP/TLS/RTP/SAVPF", formats: [String(c.pt)],
			lines: lines });
	});
	return sdp.render(out);
}

function applySubscriberGates(h) {
	const on = !h.paused && h.feed !== null;
	configureMedium(h.id, "audio", "in", on && h.recvAudio);
	configureMedium(h.id, "video", "in", on && h.recvVideo);
	configureMedium(h.id, "data", "in", on && h.recvData);
}

// Connects the subscriber to its publisher once both are able to.
function connectSubscriber(h) {
	const pub = h.feed !== null ? sessions.get(h.feed) : null;
	if (!pub || !h.up || !h.started) {
		return;
	}
	applySubscriberGates(h);
	addRecipient(pub.id, h.id);
	if (pub.active) {
		sendPli(pub.id);
	}
}

function subscriberRequest(h, request, msg, jsep) {
	const roomId = h.room;
	switch (request) {
	case "start": {
		if (jsep && typeof jsep.sdp === "string") {
			if (String(jsep.type).toLowerCase() !== "answer") {
				fail(ERR.INVALID_SDP_TYPE, "Unsupported SDP type '" + jsep.type + "'");
			}
		}
		if (h.feed === null || !sessions.get(h.feed)) {
			if (jsep && typeof jsep.sdp === "string") {
				// The answer to a renegotiation after the feed went away.
				return { event: { videoroom: "event", room: roomId, started: "ok" } };
			}
			fail(ERR.NO_SUCH_FEED, "No such feed (" + h.feedId + ")");
		}
		h.started = true;
		h.paused = false;
		connectSubscriber(h);
		if (h.up) {
			applySubscriberGates(h);
		}
		return { event: { videoroom: "event", room: roomId, started: "ok" } };
	}
	case "pause":
		h.paused = true;
		applySubscriberGates(h);
		return { event: { videoroom: "event", room: roomId, paused: "ok" } };
	case "configure": {
		validate(msg, { audio: "boolean", video: "boolean", data: "boolean", substream: "nonneg",
			temporal: "nonneg", spatial_layer: "nonneg", temporal_layer: "nonneg", streams: "array" });
		if (typeof msg.audio === "boolean") {
			h.recvAudio = msg.audio;
		}
		if (typeof msg.video === "boolean") {
			h.recvVideo = msg.video;
		}
		if (typeof msg.data === "boolean") {
			h.recvData = msg.data;
		}
		// Janus 1.x form: {"streams": [{"mid": "1", "send": false, "substream": 0}]}.
		let substream = msg.substream;
		let temporal = msg.temporal;
		for (const s of Array.isArray(msg.streams) ? msg.streams : []) {
			if (s === null || typeof s !== "object") {
				continue;
			}
			const stream = (h.streams || []).find((x) => x.mid === s.mid);
			if (stream && typeof s.send === "boolean") {
				if (stream.type === "audio") {
					h.recvAudio = s.send;
				} else if (stream.type === "video") {
					h.recvVideo = s.send;
				} else {
					h.recvData = s.send;
				}
				stream.send = s.send;
			}
			if (Number.isInteger(s.substream)) {
				substream = s.substream;
			}
			if (Number.isInteger(s.temporal)) {
				temporal = s.temporal;
			}
		}
		if (h.up) {
			applySubscriberGates(h);
		}
		const pub = h.feed !== null ? sessions.get(h.feed) : null;
		if (Number.isInteger(substream)) {
			setSubstream(h.id, substream);
		}
		if (Number.isInteger(temporal)) {
			setTemporalLayer(h.id, temporal);
		}
		if (pub && pub.active && (Number.isInteger(substream) || Number.isInteger(temporal) ||
				msg.video === true)) {
			sendPli(pub.id);
		}
		return { event: { videoroom: "event", room: roomId, configured: "ok" } };
	}
	case "leave":
		leaveRoom(h, false);
		closePc(h.id);
		return { event: { videoroom: "event", room: roomId, left: "ok" } };
	default:
		return fail(ERR.INVALID_REQUEST, "Unknown request '" + request + "'");
	}
}

// --------------------------------------------------------------------------
// Media callbacks
// --------------------------------------------------------------------------

function setupMedia(id) {
	const h = sessions.get(id);
	if (!h) {
		return;
	}
	h.up = true;
	const r = rooms.get(h.room);
	if (h.role === "publisher" && h.published && r) {
		configureMedium(id, "audio", "out", h.sendAudio);
		configureMedium(id, "video", "out", h.sendVideo);
		configureMedium(id, "data", "out", h.sendData);
		applyBitrate(h, r);
		setPliFreq(id, r.firFreq);
		if (!h.active) {
			h.active = true;
			notifyRoom(r, { videoroom: "event", room: r.room, publishers: [publisherInfo(h, false)] }, h);
		}
		updateRecording(h, r);
		for (const subId of h.subscribers) {
			const sub = sessions.get(subId);
			if (sub) {
				connectSubscriber(sub);
			}
		}
	} else if (h.role === "subscriber") {
		for (const s of h.streams || []) {
			s.ready = true;
		}
		connectSubscriber(h);
	}
}

function hangupMedia(id) {
	const h = sessions.get(id);
	if (!h) {
		return;
	}
	h.up = false;
	if (h.role === "publisher" && h.published) {
		// Its PeerConnection is gone: it stays in the room, unpublished.
		unpublish(h, false);
	} else if (h.role === "subscriber") {
		const pub = h.feed !== null ? sessions.get(h.feed) : null;
		if (pub) {
			removeRecipient(pub.id, h.id);
		}
		h.started = false;
	}
}

function videoMid(h) {
	const video = (h.streams || []).find((s) => s.type === "video");
	return video ? video.mid : "1";
}

// The simulcast layer relayed to a subscriber changed: tell it, as Janus does.
function substreamChanged(id, substream) {
	const h = sessions.get(id);
	if (h && h.role === "subscriber") {
		send(id, { videoroom: "event", room: h.room, mid: videoMid(h), substream: substream }, null);
	}
}

function temporalLayerChanged(id, layer) {
	const h = sessions.get(id);
	if (h && h.role === "subscriber") {
		send(id, { videoroom: "event", room: h.room, mid: videoMid(h), temporal: layer }, null);
	}
}
