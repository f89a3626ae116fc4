// A misbehaving plugin (package janus.plugin.faulty) for the isolation
// tests: driven by message bodies {"do": "<what>"}, it throws, spins
// forever or allocates without bound, in handleMessage, in resumeScheduler
// or in a timer. {"do": "ok"} answers synchronously with a counter, to show
// that the engine keeps its state after each fault.
//
// Its identity getters misbehave too (non-string, non-number, throwing):
// the host must fall back to the defaults (compat-notes §5 #20).

var handled = 0;
var hog = null;

function getVersion() { return "not a number"; }
function getVersionString() { return 42; }
function getDescription() { throw new Error("no description"); }
function getName() { return null; }
function getAuthor() { return "jsfu tests"; }
function getPackage() { return "janus.plugin.faulty"; }

function init(config) {}
function destroy() {}
function createSession(id) {}
function destroySession(id) {}
function querySession(id) { return JSON.stringify({ handled: handled }); }
function setupMedia(id) {}
function hangupMedia(id) {}

var scheduled = [];

function resumeScheduler() {
	var what = scheduled.shift();
	if (what) {
		fault(what);
	}
}

function faultTimer(what) {
	fault(what);
}

function spin() {
	var n = 0;
	for (;;) {
		n++;
	}
}

function allocate() {
	// Keep everything reachable so that only the memory limit stops it.
	hog = [];
	for (;;) {
		hog.push(new Array(65537).join("x") + hog.length);
	}
}

function fault(what) {
	if (what === "throw") {
		throw new Error("faulty.js throws on purpose");
	}
	if (what === "loop") {
		spin();
	}
	if (what === "alloc") {
		try {
			allocate();
		} finally {
			hog = null;
		}
	}
	if (what === "stack") {
		return (function recurse(n) { return recurse(n + 1) + 1; })(0);
	}
}

function handleMessage(id, transaction, message, jsep) {
	var req = JSON.parse(message);
	handled++;
	if (req["do"] === "ok") {
		return JSON.stringify({ ok: true, handled: handled });
	}
	if (req["do"] === "later") {
		// Fault in resumeScheduler and in a timer, outside any request.
		scheduled.push(req.what);
		pokeScheduler();
		timeCallback("faultTimer", req.what, 0);
		return JSON.stringify({ ok: true, handled: handled, later: req.what });
	}
	fault(req["do"]);
	return JSON.stringify({ survived: req["do"] });
}
