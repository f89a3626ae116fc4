// A plugin (package janus.plugin.modern) written in modern JavaScript:
// classes, let/const, arrow functions, template literals, async functions,
// await and Promise. It answers through pushEvent after awaiting, which only
// works if the host drains the promise job queue after every entry into the
// engine (callbacks, timers, scheduler).

function getPackage() { return "janus.plugin.modern"; }
function getName() { return "Modern JavaScript plugin"; }
function getVersionString() { return "2.0.0"; }
function getVersion() { return 2; }

class Waiters {
	constructor() {
		this.next = 0;
		this.pending = new Map();
	}
	// A promise resolved by a host timer after `ms` milliseconds.
	sleep(ms) {
		return new Promise((resolve) => {
			const key = `w${this.next++}`;
			this.pending.set(key, resolve);
			timeCallback("modernWake", key, ms);
		});
	}
	// A promise resolved by the next resumeScheduler call.
	tick() {
		return new Promise((resolve) => {
			scheduled.push(resolve);
			pokeScheduler();
		});
	}
	wake(key) {
		const resolve = this.pending.get(key);
		this.pending.delete(key);
		if (resolve) {
			resolve(key);
		}
	}
}

const waiters = new Waiters();
const scheduled = [];
const sessions = new Set();

function modernWake(key) {
	waiters.wake(key);
}

function resumeScheduler() {
	const resolve = scheduled.shift();
	if (resolve) {
		resolve("tick");
	}
}

function init(config) {}
function destroy() {}
function createSession(id) { sessions.add(id); }
function destroySession(id) { sessions.delete(id); }
function querySession(id) { return JSON.stringify({ modern: true }); }
function setupMedia(id) {}
function hangupMedia(id) {}

async function answer(id, transaction, request) {
	const steps = [];
	steps.push(await Promise.resolve("resolved"));
	const [a, b] = await Promise.all([waiters.sleep(30), waiters.sleep(10)]);
	steps.push(a.startsWith("w") && b.startsWith("w") && a !== b ? "timers" : `bad timers ${a} ${b}`);
	steps.push(await waiters.tick());
	try {
		await Promise.reject(new Error("rejected"));
	} catch (e) {
		steps.push(`caught ${e.message}`);
	}
	const echo = request.echo ?? null;
	if (sessions.has(id)) {
		pushEvent(id, transaction, JSON.stringify({ modern: "done", steps, echo }));
	}
}

async function microOnly(id, transaction) {
	let n = 0;
	for (let i = 0; i < 10; i++) {
		n += await Promise.resolve(i);
	}
	pushEvent(id, transaction, JSON.stringify({ modern: "micro", sum: n }));
}

function handleMessage(id, transaction, message, jsep) {
	const request = JSON.parse(message);
	if (request.mode === "micro") {
		microOnly(id, transaction);
		return 1;
	}
	if (request.mode === "unhandled") {
		// An unhandled rejection must be logged, not break the engine.
		Promise.reject(new Error("nobody catches this"));
		return JSON.stringify({ modern: "unhandled" });
	}
	answer(id, transaction, request);
	return 0;
}
