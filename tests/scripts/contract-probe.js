// Contract probe: a Janus Duktape script (plain ES5, so that it runs both on
// Janus's Duktape plugin and on jsfu's QuickJS host) that exercises every host
// function and callback of the script contract and reports what it observes.
//
// Driven by `message` requests whose body is {"probe": "<name>", ...}. Most
// probes answer synchronously with {"probe": "<name>", "obs": {...}}; the
// observations never contain session ids or times, so that the answers of two
// servers can be compared field by field. Session ids inside error messages
// are replaced by "<ID>" (the probing session) or "<OTHER>" (another session).
//
// Package: janus.plugin.probe. Modules come from getModulesFolder() (the
// folder holding this file: probe-helper.js, probe-sub/*.js).

// ---- load time ----------------------------------------------------------

// Duktape (Janus) has no Promise; QuickJS (jsfu) has. Host functions that
// crash Janus when called at load time are only exercised on jsfu.
var onQuickJs = typeof Promise === "function";

var HOST_FUNCTIONS = [
	"getModulesFolder", "readFile", "getDuktapeVersion", "testExtraFunction",
	"pokeScheduler", "timeCallback", "pushEvent", "notifyEvent", "eventsIsEnabled",
	"closePc", "endSession", "configureMedium", "addRecipient", "removeRecipient",
	"setBitrate", "setPliFreq", "setSubstream", "setTemporalLayer", "sendPli",
	"relayRtp", "relayRtcp", "relayData", "relayTextData", "relayBinaryData",
	"startRecording", "stopRecording"
];

var folder = getModulesFolder();

Duktape.modSearch = function (id, req, exports, module) {
	var text;
	if (id === "probe-sub/native") {
		// A modSearch that fills exports itself and returns no source.
		exports.viaCallback = module.id === id && typeof req === "function";
		return undefined;
	}
	try {
		text = readFile(folder + "/" + id + ".js");
	} catch (e) {
		throw new Error("probe: module not found: " + id);
	}
	return text;
};

// Describe the outcome of calling f: its return value, or what it threw.
function cap(f) {
	var r;
	try {
		r = f();
	} catch (e) {
		if (e instanceof Error) {
			return { threw: "Error", name: e.name, message: e.message };
		}
		return { threw: typeof e, value: (typeof e === "number" || typeof e === "string") ? e : String(e) };
	}
	if (r === undefined) {
		return { ret: "undefined" };
	}
	if (typeof r === "number" && r !== r) {
		return { ret: "NaN" };
	}
	return { ret: r, type: typeof r };
}

// Replace the decimal rendering of session ids in an outcome's strings.
function norm(o, id, other) {
	var k, v;
	for (k in o) {
		v = o[k];
		if (typeof v === "string") {
			if (id !== undefined) {
				v = v.split(String(id)).join("<ID>");
			}
			if (other !== undefined) {
				v = v.split(String(other)).join("<OTHER>");
			}
			o[k] = v;
		} else if (typeof v === "number" && (v === id || v === other)) {
			o[k] = v === id ? "<ID>" : "<OTHER>";
		}
	}
	return o;
}

var loadObs = {
	modulesFolder: folder,
	duktapeVersion: cap(function () { return getDuktapeVersion(); }),
	extra: cap(function () { return testExtraFunction(); }),
	readFileType: typeof readFile(folder + "/probe-helper.js"),
	requireType: typeof require,
	modLoadedType: typeof Duktape.modLoaded,
	consoleLogType: typeof console.log,
	hostTypes: {},
	thisIsGlobal: (function () { return this; })() === this
};
(function () {
	var i;
	for (i = 0; i < HOST_FUNCTIONS.length; i++) {
		loadObs.hostTypes[HOST_FUNCTIONS[i]] = typeof this[HOST_FUNCTIONS[i]];
	}
})();
// Undeclared assignment in sloppy global code creates a global.
probeSloppyGlobal = "sloppy";

// Load-time calls that Janus does not survive (compat-notes §5 #4): only on
// the QuickJS host, which must make them safe.
var idleResumes = 0;       // resumeScheduler calls with no task queued
var loadTimer = "not fired";
var loadOnly = null;
if (onQuickJs) {
	loadOnly = {
		eventsIsEnabled: cap(function () { return eventsIsEnabled(); }),
		notifyEvent0: cap(function () { return notifyEvent(0, "{\"probe\": \"load\"}"); }),
		pokeScheduler: cap(function () { return pokeScheduler(); }),
		timeCallback: cap(function () { return timeCallback("probeLoadTimer", "L", 0); }),
		pushEventUnknown: cap(function () { return pushEvent(4000000001, null, "{}"); }),
		configureMediumUnknown: cap(function () { return configureMedium(4000000001, "audio", "in", true); })
	};
}

// ---- state --------------------------------------------------------------

var initObs = null;
var sessions = {};         // id -> true for live sessions
var observed = {};         // id -> true: report its callbacks to the watchers
var watchers = [];         // session ids receiving callback reports
var tasks = [];            // scheduler work: {id, tr, n}
var resumes = 0;
var timerTarget = null;    // {id, tr} receiving timer reports
var queryMode = "object";
var lastDestroyed = null;

function getVersion() { return 7.9; }
function getVersionString() { return "7.9.0"; }
function getDescription() { return "Script contract probe"; }
function getName() { return "Contract probe"; }
function getAuthor() { return "jsfu tests"; }
function getPackage() { return "janus.plugin.probe"; }

// An id no live session has; large, so that its decimal rendering cannot
// occur by accident in other text.
function unknownId() {
	var id = 4000000001;
	while (sessions[id]) {
		id++;
	}
	return id;
}

function report(obj) {
	var i, w, text = JSON.stringify(obj);
	for (i = 0; i < watchers.length; i++) {
		w = watchers[i];
		if (sessions[w]) {
			pushEvent(w, null, text);
		}
	}
}

// ---- mandatory callbacks ------------------------------------------------

function init(config) {
	initObs = { configType: typeof config, config: config === null ? "null" : config };
	if (onQuickJs) {
		// Janus runs init without the engine lock (compat-notes §5 #4).
		initObs.poke = cap(function () { return pokeScheduler(); });
	}
}

function destroy() {
}

function createSession(id) {
	sessions[id] = true;
}

function destroySession(id) {
	if (observed[id]) {
		report({
			cb: "destroySession",
			// While destroySession runs, the session still exists.
			during: norm(cap(function () { return configureMedium(id, "audio", "in", true); }), id)
		});
		lastDestroyed = id;
	}
	delete sessions[id];
	delete observed[id];
}

function querySession(id) {
	if (queryMode === "throw") {
		throw new Error("query boom");
	}
	if (queryMode === "number") {
		return 42;
	}
	if (queryMode === "array") {
		return "[1, 2]";
	}
	if (queryMode === "bad") {
		return "{bad";
	}
	return JSON.stringify({ probe: "query", known: sessions[id] === true, idType: typeof id });
}

function setupMedia(id) {
	if (observed[id]) {
		report({ cb: "setupMedia" });
	}
}

function hangupMedia(id) {
	if (observed[id]) {
		report({ cb: "hangupMedia" });
	}
}

function resumeScheduler() {
	var t;
	resumes++;
	t = tasks.shift();
	if (!t) {
		idleResumes++;
	} else {
		pushEvent(t.id, t.tr, JSON.stringify({ sched: t.n, pending: tasks.length }));
	}
}

// ---- timers ---------------------------------------------------------------

function probeLoadTimer(arg) {
	loadTimer = { argc: arguments.length, arg: arg };
}

function probeTimer(arg) {
	if (timerTarget && sessions[timerTarget.id]) {
		pushEvent(timerTarget.id, timerTarget.tr,
			JSON.stringify({ timer: arguments.length > 0 ? arg : "(none)", argc: arguments.length }));
	}
}

// Only reached where timeCallback accepts a null arg (compat-notes §5 #5).
function probeNullTimer() {
	if (timerTarget && sessions[timerTarget.id]) {
		pushEvent(timerTarget.id, timerTarget.tr, JSON.stringify({ nullTimer: arguments.length }));
	}
}

function probeNoop() {
}

var probeNotAFunction = 5;

// ---- optional callbacks ------------------------------------------------------

function handleAdminMessage(message) {
	var req = JSON.parse(message);
	if (req.mode === "array") {
		return "[1, 2]";
	}
	if (req.mode === "scalar") {
		return "123";
	}
	if (req.mode === "number") {
		return 5;
	}
	if (req.mode === "bad") {
		return "{bad";
	}
	if (req.mode === "throw") {
		throw new Error("admin boom");
	}
	return JSON.stringify({ raw: message, sessions: Object.keys(sessions).length > 0 });
}

// ---- probes -------------------------------------------------------------------

// Values of each JavaScript type used as wrong arguments.
var SAMPLES = {
	undefined: undefined,
	null: null,
	boolean: true,
	number: 7,
	string: "x",
	object: {},
	array: [1],
	function: function () {}
};
var SAMPLE_NAMES = ["undefined", "null", "boolean", "number", "string", "object", "array", "function"];

// For each host function taking arguments: per position the sample kinds it
// accepts, and a valid value for it. "ID" means the id of a session that
// does not exist (the calls must have no side effect).
function argSpecs(unknown) {
	var S = ["string"], N = ["number"], SNU = ["string", "null", "undefined"];
	return {
		readFile: [[S, "/nonexistent/probe-file"]],
		timeCallback: [[S, "probeNoop"], [["string", "undefined"], "a"], [["number", "undefined"], 10]],
		pushEvent: [[N, unknown], [SNU, "t"], [S, "{}"], [SNU, null]],
		notifyEvent: [[N, unknown], [S, "{}"]],
		closePc: [[N, unknown]],
		endSession: [[N, unknown]],
		configureMedium: [[N, unknown], [S, "audio"], [S, "in"], [["boolean"], true]],
		addRecipient: [[N, unknown], [N, unknown]],
		removeRecipient: [[N, unknown], [N, unknown]],
		setBitrate: [[N, unknown], [N, 0]],
		setPliFreq: [[N, unknown], [N, 0]],
		setSubstream: [[N, unknown], [N, 0]],
		setTemporalLayer: [[N, unknown], [N, 0]],
		sendPli: [[N, unknown]],
		relayRtp: [[N, unknown], [["boolean"], true], [S, "abc"], [N, 3]],
		relayRtcp: [[N, unknown], [["boolean"], true], [S, "abc"], [N, 3]],
		relayTextData: [[N, unknown], [S, "abc"], [N, 3], [SNU, "l"], [SNU, "p"]],
		relayBinaryData: [[N, unknown], [S, "abc"], [N, 3], [SNU, "l"], [SNU, "p"]],
		relayData: [[N, unknown], [S, "abc"], [N, 3], [SNU, "l"], [SNU, "p"]],
		startRecording: [[N, unknown]],
		stopRecording: [[N, unknown]]
	};
}

var globalObject = this;

function callWith(name, args) {
	return cap(function () { return globalObject[name].apply(globalObject, args); });
}

function probeArgs(id) {
	var unknown = unknownId();
	var specs = argSpecs(unknown), obs = {}, name, spec, i, j, k, args, kind, key;
	for (name in specs) {
		spec = specs[name];
		args = [];
		for (i = 0; i < spec.length; i++) {
			args.push(spec[i][1]);
		}
		obs[name + "()"] = norm(callWith(name, []), id, unknown);
		obs[name + "(valid)"] = norm(callWith(name, args), id, unknown);
		for (i = 0; i < spec.length; i++) {
			for (j = 0; j < SAMPLE_NAMES.length; j++) {
				kind = SAMPLE_NAMES[j];
				if (spec[i][0].indexOf(kind) >= 0) {
					continue;
				}
				args = [];
				for (k = 0; k < spec.length; k++) {
					args.push(k === i ? SAMPLES[kind] : spec[k][1]);
				}
				key = name + "#" + i + ":" + kind;
				obs[key] = norm(callWith(name, args), id, unknown);
			}
		}
	}
	return obs;
}

function probeLengths() {
	var obs = {}, i, f;
	for (i = 0; i < HOST_FUNCTIONS.length; i++) {
		f = globalObject[HOST_FUNCTIONS[i]];
		obs[HOST_FUNCTIONS[i]] = typeof f === "function" ? f.length : "missing";
	}
	return obs;
}

function probeReturns(id) {
	var other = unknownId();
	var obs = {
		getModulesFolder: cap(function () { return getModulesFolder(); }),
		getDuktapeVersion: cap(function () { return getDuktapeVersion(); }),
		testExtraFunction: cap(function () { return testExtraFunction(); }),
		eventsIsEnabled: cap(function () { return eventsIsEnabled(); }),
		pokeSchedulerType: "skipped",
		readFileExisting: cap(function () { return readFile(folder + "/probe-data.txt"); }),
		readFileMissing: cap(function () { return readFile(folder + "/no-such-file.txt"); }),
		readFileFolder: cap(function () { return readFile(folder); }),
		readFileEmpty: cap(function () { return readFile(folder + "/probe-empty.txt"); }),
		pushEventObject: cap(function () { return pushEvent(id, null, "{\"probe_event\": \"returns\"}"); }),
		pushEventArray: cap(function () { return pushEvent(id, null, "[1, 2]"); }),
		pushEventScalarNull: cap(function () { return pushEvent(id, null, "null"); }),
		pushEventScalarNumber: cap(function () { return pushEvent(id, null, "123"); }),
		pushEventBadJson: cap(function () { return pushEvent(id, null, "{bad}"); }),
		pushEventTruncated: cap(function () { return pushEvent(id, null, "{\"a\": 1"); }),
		pushEventEmpty: cap(function () { return pushEvent(id, null, ""); }),
		pushEventSecondLine: cap(function () { return pushEvent(id, null, "{\n\"a\": }"); }),
		pushEventBadJsepJson: cap(function () { return pushEvent(id, null, "{}", "{bad"); }),
		pushEventBadSdp: cap(function () { return pushEvent(id, null, "{}", "{\"type\": \"offer\", \"sdp\": \"x\"}"); }),
		pushEventBadJsonUnknown: cap(function () { return pushEvent(other, null, "{bad}"); }),
		notifyEventBadJsonUnknown: cap(function () { return notifyEvent(other, "{bad"); }),
		notifyEvent0: cap(function () { return notifyEvent(0, "{\"probe\": 1}"); }),
		notifyEventKnown: cap(function () { return notifyEvent(id, "{\"probe\": 1}"); }),
		configureMediumNumber: cap(function () { return configureMedium(id, "audio", "in", 1); }),
		configureMediumKnown: cap(function () { return configureMedium(id, "audio", "in", true); }),
		configureMediumOddMedium: cap(function () { return configureMedium(id, "smell", "out", false); }),
		configureMediumUpper: cap(function () { return configureMedium(id, "VIDEO", "OUT", true); }),
		addRecipientSelf: cap(function () { return addRecipient(id, id); }),
		addRecipientAgain: cap(function () { return addRecipient(id, id); }),
		addRecipientUnknown: cap(function () { return addRecipient(id, other); }),
		removeRecipientSelf: cap(function () { return removeRecipient(id, id); }),
		removeRecipientAbsent: cap(function () { return removeRecipient(id, id); }),
		removeRecipientUnknown: cap(function () { return removeRecipient(id, other); }),
		setBitrateKnown: cap(function () { return setBitrate(id, 128000); }),
		setPliFreqKnown: cap(function () { return setPliFreq(id, 3); }),
		setSubstreamKnown: cap(function () { return setSubstream(id, 1); }),
		setSubstreamOutOfRange: cap(function () { return setSubstream(id, 9); }),
		setTemporalLayerKnown: cap(function () { return setTemporalLayer(id, 0); }),
		sendPliKnown: cap(function () { return sendPli(id); }),
		relayRtpKnown: cap(function () { return relayRtp(id, true, "abc", 3); }),
		relayRtpZero: cap(function () { return relayRtp(id, true, "abc", 0); }),
		relayRtcpKnown: cap(function () { return relayRtcp(id, false, "abc", 3); }),
		relayTextDataNotReady: cap(function () { return relayTextData(id, "abc", 3); }),
		relayBinaryDataNotReady: cap(function () { return relayBinaryData(id, "abc", 3); }),
		relayDataNotReady: cap(function () { return relayData(id, "abc", 3); }),
		relayTextDataZero: cap(function () { return relayTextData(id, "abc", 0); }),
		startRecordingNoGroup: cap(function () { return startRecording(id); }),
		startRecordingBadCodec: cap(function () { return startRecording(id, "audio", "nosuchcodec", "/tmp", "probe-never"); }),
		stopRecordingNothing: cap(function () { return stopRecording(id, "audio", "video", "data"); })
	};
	var k;
	for (k in obs) {
		if (typeof obs[k] === "object") {
			norm(obs[k], id, other);
		}
	}
	return obs;
}

// Unknown session ids for every session-addressed host function.
function probeUnknown(id) {
	var u = unknownId();
	var calls = {
		pushEvent: function () { return pushEvent(u, null, "{}"); },
		pushEventJsep: function () { return pushEvent(u, null, "{}", null); },
		closePc: function () { return closePc(u); },
		endSession: function () { return endSession(u); },
		configureMedium: function () { return configureMedium(u, "audio", "in", true); },
		addRecipient: function () { return addRecipient(u, id); },
		addRecipientOther: function () { return addRecipient(id, u); },
		removeRecipient: function () { return removeRecipient(u, id); },
		removeRecipientOther: function () { return removeRecipient(id, u); },
		setBitrate: function () { return setBitrate(u, 1); },
		setPliFreq: function () { return setPliFreq(u, 1); },
		setSubstream: function () { return setSubstream(u, 1); },
		setTemporalLayer: function () { return setTemporalLayer(u, 1); },
		sendPli: function () { return sendPli(u); },
		relayRtp: function () { return relayRtp(u, true, "abc", 3); },
		relayRtcp: function () { return relayRtcp(u, true, "abc", 3); },
		relayTextData: function () { return relayTextData(u, "abc", 3); },
		relayBinaryData: function () { return relayBinaryData(u, "abc", 3); },
		relayData: function () { return relayData(u, "abc", 3); },
		startRecording: function () { return startRecording(u, "audio", "opus", "/tmp", "probe-never"); },
		stopRecording: function () { return stopRecording(u, "audio"); },
		notifyEvent: function () { return notifyEvent(u, "{}"); },
		// u + 2^32 wraps to u (ToUint32) in the error message.
		wrapped: function () { return configureMedium(4294967296 + u, "audio", "in", true); },
		fraction: function () { return configureMedium(u + 0.75, "audio", "in", true); }
	};
	var obs = {}, k;
	for (k in calls) {
		obs[k] = norm(cap(calls[k]), id, u);
	}
	return obs;
}

function probeReply(kind) {
	switch (kind) {
	case "zero": return 0;
	case "one": return 1;
	case "half": return 0.5;
	case "minus1": return -1;
	case "nan": return NaN;
	case "object": return "{\"reply\": \"object\", \"n\": [1, 2]}";
	case "array": return "[1, 2]";
	case "str123": return "123";
	case "strnull": return "null";
	case "notjson": return "{bad";
	case "undefined": return undefined;
	case "null": return null;
	case "true": return true;
	case "objectvalue": return { reply: "object" };
	case "throw": throw new Error("probe reply throws");
	default: return "{\"reply\": \"unknown kind\"}";
	}
}

function probeModules() {
	var obs = {};
	var h1 = require("probe-helper");
	var h2 = require("probe-helper");
	var h3 = require("./probe-helper");
	var inner = require("probe-sub/inner");
	obs.helperValue = h1.value;
	obs.helperModuleId = h1.moduleId;
	obs.helperRequireId = h1.requireId;
	obs.helperThisIsExports = h1.thisIsExports;
	obs.helperLoads = h1.loads();
	obs.sameObject = h1 === h2;
	obs.sameObjectRelative = h1 === h3;
	obs.innerId = inner.id;
	obs.innerRequireId = inner.requireId;
	obs.innerParentSame = inner.parent === h1;
	obs.innerSibling = inner.sibling;
	obs.innerReplacedExports = inner.replaced;
	obs.modLoadedKeys = Object.keys(Duktape.modLoaded).sort();
	obs.modLoadedHelperSame = Duktape.modLoaded["probe-helper"].exports === h1;
	obs.modLoadedProto = Object.getPrototypeOf(Duktape.modLoaded) === null;
	obs.missing = cap(function () { return require("probe-missing"); });
	obs.missingNotCached = Duktape.modLoaded["probe-missing"] === undefined;
	obs.throwing = cap(function () { return require("probe-sub/throws"); });
	obs.throwingNotCached = Duktape.modLoaded["probe-sub/throws"] === undefined;
	obs.syntaxError = cap(function () { return require("probe-sub/syntax"); }).threw !== undefined;
	obs.resolveAbsolute = cap(function () { return require("/x"); });
	obs.resolveAboveRoot = cap(function () { return require("../x"); });
	obs.resolveDotTerm = cap(function () { return require("a/.x"); });
	obs.resolveTrailingSlash = cap(function () { return require("a/"); });
	obs.resolveNumber = cap(function () { return require(5); });
	obs.nonStringResult = require("probe-sub/native").viaCallback;
	obs.finalComment = require("probe-sub/comment").ok;
	return obs;
}

function probeEnc() {
	var u8 = Duktape.dec("hex", "616263ff");
	var b64 = Duktape.dec("base64", "YWJj");
	return {
		encHex: Duktape.enc("hex", "abc"),
		encBase64: Duktape.enc("base64", "abc"),
		encBase64Pad: Duktape.enc("base64", "ab"),
		decHexTag: Object.prototype.toString.call(u8),
		decHexBytes: [u8.length, u8[0], u8[1], u8[2], u8[3]],
		decBase64Tag: Object.prototype.toString.call(b64),
		decBase64Bytes: [b64.length, b64[0], b64[1], b64[2]],
		encHexTyped: Duktape.enc("hex", new Uint8Array([1, 171])),
		encJx: Duktape.enc("jx", { a: undefined, b: function () {}, c: NaN, d: Infinity }),
		encJc: Duktape.enc("jc", { a: undefined, c: NaN }),
		decJx: Duktape.dec("jx", "{a:1,b:\"x\"}").b,
		version: Duktape.version,
		envType: typeof Duktape.env,
		gc: Duktape.gc(),
		compactSame: (function () { var o = {}; return Duktape.compact(o) === o; })(),
		modSearchType: typeof Duktape.modSearch,
		threadType: typeof Duktape.Thread,
		pointerType: typeof Duktape.Pointer,
		infoType: typeof Duktape.info,
		actType: typeof Duktape.act,
		finType: typeof Duktape.fin,
		textEncoder: typeof TextEncoder,
		textDecoder: typeof TextDecoder,
		textRoundTrip: typeof TextEncoder === "function" ?
			new TextDecoder().decode(new TextEncoder().encode("h\u00e9")) : "n/a"
	};
}

function probeConsole() {
	return {
		table: cap(function () { return console.table({ a: 1 }); }),
		unknown: cap(function () { return console.noSuchMethod(1, 2); }),
		log: cap(function () { return console.log("probe:", { a: 1, b: "x" }, [1, 2]); }),
		applyLog: cap(function () { return console.log.apply(console, ["probe", "apply"]); }),
		warn: cap(function () { return console.warn("probe warn"); }),
		error: cap(function () { return console.error("probe error"); }),
		info: cap(function () { return console.info("probe info"); }),
		debug: cap(function () { return console.debug("probe debug"); }),
		assertTrue: cap(function () { return console.assert(true, "never"); }),
		assertFalse: cap(function () { return console.assert(false, "probe assert"); }),
		types: [typeof console.log, typeof console.warn, typeof console.error, typeof console.info,
			typeof console.debug, typeof console.trace, typeof console.dir, typeof console.exception,
			typeof console.assert, typeof console.format]
	};
}

function probeErrors() {
	var e = new Error("line probe"); var line = probeErrorsLine;
	var own = Object.getOwnPropertyNames(e);
	var thrown = null;
	try {
		probeThrowHelper();
	} catch (err) {
		thrown = err;
	}
	return {
		lineNumberType: typeof e.lineNumber,
		lineNumberMatches: e.lineNumber === line,
		lineNumberOwn: own.indexOf("lineNumber") >= 0,
		fileNameOwn: own.indexOf("fileName") >= 0,
		messageOwn: own.indexOf("message") >= 0,
		thrownLineMatches: thrown.lineNumber === probeThrowLine,
		protoHasLineNumber: "lineNumber" in Error.prototype,
		name: e.name,
		string: String(e),
		customToString: (function () {
			var saved = Error.prototype.toString, s;
			Error.prototype.toString = function () {
				return this.name + ": " + this.message + " (at line " + (typeof this.lineNumber) + ")";
			};
			s = String(new TypeError("t"));
			Error.prototype.toString = saved;
			return s;
		})()
	};
}
// The line of `new Error` in probeErrors and of the throw in probeThrowHelper.
var probeErrorsLine = 0;
var probeThrowLine = 0;
(function () {
	var i, lines = readFile(folder + "/contract-probe.js").split("\n");
	for (i = 0; i < lines.length; i++) {
		if (lines[i].indexOf("new Error(\"line " + "probe\")") >= 0) {
			probeErrorsLine = i + 1;
		}
		if (lines[i].indexOf("throw new Error(\"thrown " + "probe\")") >= 0) {
			probeThrowLine = i + 1;
		}
	}
})();
function probeThrowHelper() {
	throw new Error("thrown probe");
}

function probeLanguage() {
	var order = {};
	order[3000000000] = 1; order.b = 1; order[5] = 1; order[4000000000] = 1; order.a = 1;
	return {
		keyOrder: Object.keys(order),
		sloppyGlobal: typeof probeSloppyGlobal,
		idKeys: (function () {
			var o = {};
			o[3047711552] = "x";
			return Object.keys(o)[0];
		})(),
		printType: typeof print,
		setTimeoutType: typeof setTimeout
	};
}

function handleMessage(id, transaction, message, jsep) {
	var req = JSON.parse(message), obs, i, n;
	var p = req.probe;
	switch (p) {
	case "echo":
		obs = {
			raw: message,
			transactionType: typeof transaction,
			jsep: jsep === null ? "null" : typeof jsep,
			idType: typeof id,
			idPositive: id > 0,
			idInteger: id === Math.floor(id),
			known: sessions[id] === true
		};
		break;
	case "load":
		obs = { load: loadObs, init: initObs, loadOnly: loadOnly, idleResumes: idleResumes, loadTimer: loadTimer };
		break;
	case "args":
		obs = probeArgs(id);
		break;
	case "lengths":
		obs = probeLengths();
		break;
	case "returns":
		obs = probeReturns(id);
		break;
	case "unknown":
		obs = probeUnknown(id);
		break;
	case "reply":
		return probeReply(req.kind);
	case "modules":
		obs = probeModules();
		break;
	case "enc":
		obs = probeEnc();
		break;
	case "console":
		obs = probeConsole();
		break;
	case "errors":
		obs = probeErrors();
		break;
	case "language":
		obs = probeLanguage();
		break;
	case "before_reply":
		// An event pushed synchronously is queued before the reply.
		obs = { pushed: cap(function () { return pushEvent(id, transaction, "{\"before\": \"reply\"}"); }) };
		break;
	case "sched":
		n = req.count || 5;
		obs = { pokes: [] };
		for (i = 1; i <= n; i++) {
			tasks.push({ id: id, tr: transaction, n: i });
		}
		for (i = 1; i <= n; i++) {
			obs.pokes.push(cap(function () { return pokeScheduler(); }));
		}
		// The resumes come after this callback returns.
		obs.pendingAfterPokes = tasks.length;
		pushEvent(id, transaction, JSON.stringify({ sched: "poked", obs: obs }));
		return 1;
	case "timers":
		timerTarget = { id: id, tr: transaction };
		obs = {
			c: cap(function () { return timeCallback("probeTimer", "c", 400); }),
			a: cap(function () { return timeCallback("probeTimer", "a", 100); }),
			notCallable: cap(function () { return timeCallback("probeNotAFunction", "z", 50); }),
			missing: cap(function () { return timeCallback("probeNoSuchGlobal", "z", 50); }),
			b: cap(function () { return timeCallback("probeTimer", "b", 250); }),
			noArg: cap(function () { return timeCallback("probeTimer"); }),
			nullArg: cap(function () { return timeCallback("probeNullTimer", null, 600); }),
			numberArg: cap(function () { return timeCallback("probeTimer", 5, 10); })
		};
		pushEvent(id, transaction, JSON.stringify({ timers: "scheduled", obs: obs }));
		return 0;
	case "watch":
		watchers.push(id);
		obs = { watching: true };
		break;
	case "end":
		observed[id] = true;
		obs = { end: cap(function () { return endSession(id); }) };
		// endSession only schedules the detach: the session still exists.
		obs.stillKnown = sessions[id] === true;
		obs.after = norm(cap(function () { return configureMedium(id, "audio", "in", true); }), id);
		break;
	case "after_end":
		// Called on another session once the ended one was destroyed.
		obs = {
			destroyedSeen: lastDestroyed !== null,
			configureMedium: norm(cap(function () { return configureMedium(lastDestroyed, "audio", "in", true); }), lastDestroyed),
			pushEvent: norm(cap(function () { return pushEvent(lastDestroyed, null, "{}"); }), lastDestroyed),
			removeRecipient: norm(cap(function () { return removeRecipient(lastDestroyed, id); }), lastDestroyed, id)
		};
		break;
	case "observe":
		observed[id] = true;
		obs = { observed: true };
		break;
	case "closepc":
		observed[id] = true;
		obs = { closePc: cap(function () { return closePc(id); }) };
		break;
	case "qmode":
		queryMode = req.mode;
		obs = { mode: queryMode };
		break;
	case "record":
		// Decision 21: the duplicate and unknown-type groups must not
		// create files on jsfu (Janus creates them).
		obs = {
			first: norm(cap(function () { return startRecording(id, "audio", "opus", req.folder, "rec-first"); }), id),
			duplicate: norm(cap(function () { return startRecording(id, "audio", "opus", req.folder, "rec-duplicate"); }), id),
			unknownType: norm(cap(function () { return startRecording(id, "smell", "opus", req.folder, "rec-unknown"); }), id),
			stop: norm(cap(function () { return stopRecording(id, "audio", "video", "data"); }), id)
		};
		break;
	default:
		obs = { error: "unknown probe" };
	}
	return JSON.stringify({ probe: p, obs: obs });
}
