// sdp.js — a small SDP helper module for jsfu scripts.
//
// Load it with require("sdp") (the script's modules folder must hold it; the
// stock scripts set Duktape.modSearch to read "<folder>/<id>.js").
//
// The server strips every transport detail (ICE, DTLS, candidates, SSRCs,
// RTX) from the client's SDP before a script sees it, and merges them back
// into the script's answer. So a script only chooses codecs, directions and
// header extensions: that is all this module does.
//
// Written in ES5 so that it also runs on Janus's Duktape plugin.

var CRLF = "\r\n";

// Header extensions an SFU answer keeps by default (the rest are refused).
var DEFAULT_EXTENSIONS = [
	"urn:ietf:params:rtp-hdrext:sdes:mid",
	"urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
	"urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
	"urn:ietf:params:rtp-hdrext:ssrc-audio-level",
	"http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
	"urn:3gpp:video-orientation",
	"http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
	"https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
];

// Codec preference when the script does not name one.
var AUDIO_CODECS = ["opus", "multiopus", "pcmu", "pcma", "g722", "isac16", "isac32"];
var VIDEO_CODECS = ["vp8", "vp9", "h264", "av1", "h265"];

// Splits an SDP into a session section and media sections.
// Each line is {type: "a", name: "rtpmap", value: "111 opus/48000/2"} for
// attributes and {type: "v", value: "0"} for other lines.
function parse(text) {
	var lines = String(text).split(/\r?\n/);
	var session = { lines: [] };
	var media = [];
	var current = session;
	for (var i = 0; i < lines.length; i++) {
		var l = lines[i];
		if (l.length < 2 || l.charAt(1) !== "=") {
			continue;
		}
		var type = l.charAt(0);
		var rest = l.substring(2);
		if (type === "m") {
			var parts = rest.split(" ");
			current = {
				kind: parts[0],
				port: parseInt(parts[1], 10),
				proto: parts[2],
				formats: parts.slice(3),
				lines: []
			};
			media.push(current);
			continue;
		}
		if (type === "a") {
			var colon = rest.indexOf(":");
			if (colon < 0) {
				current.lines.push({ type: "a", name: rest, value: null });
			} else {
				current.lines.push({ type: "a", name: rest.substring(0, colon), value: rest.substring(colon + 1) });
			}
		} else {
			current.lines.push({ type: type, value: rest });
		}
	}
	return { session: session, media: media };
}

function renderLine(line) {
	if (line.type === "a") {
		return "a=" + line.name + (line.value === null || line.value === undefined ? "" : ":" + line.value);
	}
	return line.type + "=" + line.value;
}

// Turns a parsed SDP back into text.
function render(sdp) {
	var out = [];
	var i, j;
	for (i = 0; i < sdp.session.lines.length; i++) {
		out.push(renderLine(sdp.session.lines[i]));
	}
	for (i = 0; i < sdp.media.length; i++) {
		var m = sdp.media[i];
		out.push("m=" + m.kind + " " + m.port + " " + m.proto + " " + m.formats.join(" "));
		for (j = 0; j < m.lines.length; j++) {
			out.push(renderLine(m.lines[j]));
		}
	}
	return out.join(CRLF) + CRLF;
}

function attributes(section, name) {
	var out = [];
	for (var i = 0; i < section.lines.length; i++) {
		var l = section.lines[i];
		if (l.type === "a" && l.name === name) {
			out.push(l.value);
		}
	}
	return out;
}

// The codecs of a media section: [{pt, name, clock, channels, fmtp, feedback}].
function codecs(section) {
	var byPt = {};
	var list = [];
	var i;
	var maps = attributes(section, "rtpmap");
	for (i = 0; i < maps.length; i++) {
		var m = /^(\d+) ([^\/]+)\/(\d+)(?:\/(\d+))?/.exec(maps[i]);
		if (!m) {
			continue;
		}
		var c = { pt: parseInt(m[1], 10), name: m[2].toLowerCase(), clock: parseInt(m[3], 10),
			channels: m[4] ? parseInt(m[4], 10) : null, fmtp: null, feedback: [], rtpmap: maps[i] };
		byPt[c.pt] = c;
		list.push(c);
	}
	var fmtps = attributes(section, "fmtp");
	for (i = 0; i < fmtps.length; i++) {
		var f = /^(\d+) (.*)$/.exec(fmtps[i]);
		if (f && byPt[f[1]]) {
			byPt[f[1]].fmtp = f[2];
		}
	}
	var fbs = attributes(section, "rtcp-fb");
	for (i = 0; i < fbs.length; i++) {
		var b = /^(\d+|\*) (.*)$/.exec(fbs[i]);
		if (!b) {
			continue;
		}
		for (var k = 0; k < list.length; k++) {
			if (b[1] === "*" || list[k].pt === parseInt(b[1], 10)) {
				list[k].feedback.push(b[2]);
			}
		}
	}
	// Static payload types without rtpmap (RFC 3551).
	var statics = { 0: ["pcmu", 8000], 8: ["pcma", 8000], 9: ["g722", 8000] };
	for (i = 0; i < section.formats.length; i++) {
		var pt = parseInt(section.formats[i], 10);
		if (!byPt[pt] && statics[pt]) {
			var s = { pt: pt, name: statics[pt][0], clock: statics[pt][1], channels: null,
				fmtp: null, feedback: [], rtpmap: null };
			byPt[pt] = s;
			list.push(s);
		}
	}
	// Keep the order of the m-line.
	list.sort(function (a, b) {
		return section.formats.indexOf(String(a.pt)) - section.formats.indexOf(String(b.pt));
	});
	return list;
}

function direction(section) {
	for (var i = 0; i < section.lines.length; i++) {
		var n = section.lines[i].name;
		if (section.lines[i].type === "a" &&
				(n === "sendrecv" || n === "sendonly" || n === "recvonly" || n === "inactive")) {
			return n;
		}
	}
	return "sendrecv";
}

function answerDirection(offered, wantSend, wantRecv) {
	var peerSends = offered === "sendrecv" || offered === "sendonly";
	var peerRecvs = offered === "sendrecv" || offered === "recvonly";
	var send = peerRecvs && wantSend;
	var recv = peerSends && wantRecv;
	if (send && recv) {
		return "sendrecv";
	}
	if (send) {
		return "sendonly";
	}
	if (recv) {
		return "recvonly";
	}
	return "inactive";
}

function fmtpValue(fmtp, key) {
	if (!fmtp) {
		return null;
	}
	var parts = fmtp.split(";");
	for (var i = 0; i < parts.length; i++) {
		var kv = parts[i].split("=");
		if (kv[0].replace(/^\s+|\s+$/g, "") === key) {
			return kv.length > 1 ? kv[1] : "";
		}
	}
	return null;
}

// Picks the codec to answer with: the preferred name (if offered), else the
// first offered codec that is in the list of supported names.
function pickCodec(list, preferred, supported, profile) {
	var i;
	var names = preferred ? [String(preferred).toLowerCase()] : supported;
	for (var n = 0; n < names.length; n++) {
		for (i = 0; i < list.length; i++) {
			var c = list[i];
			if (c.name !== names[n]) {
				continue;
			}
			if (profile && c.name === "vp9" && fmtpValue(c.fmtp, "profile-id") !== String(profile)) {
				continue;
			}
			if (profile && c.name === "h264" &&
					String(fmtpValue(c.fmtp, "profile-level-id") || "").toLowerCase().indexOf(String(profile).toLowerCase()) !== 0) {
				continue;
			}
			if (c.name === "h264" && fmtpValue(c.fmtp, "packetization-mode") === "0") {
				continue;
			}
			return c;
		}
	}
	return null;
}

function swapExtmapDirection(value) {
	return value.replace(/^(\d+)\/sendonly /, "$1/RECVONLY ")
		.replace(/^(\d+)\/recvonly /, "$1/sendonly ")
		.replace("/RECVONLY ", "/recvonly ");
}

// Builds an answer to a (stripped) offer.
// options: {audio, video, data: booleans (default true);
//           audioCodec, videoCodec: a codec name to prefer;
//           vp9Profile, h264Profile: profile-id / profile-level-id prefix;
//           send, recv: booleans (default true): whether the server sends/receives;
//           extensions: array of extmap URIs to keep (default: DEFAULT_EXTENSIONS)}
function generateAnswer(offerText, options) {
	var opts = options || {};
	var offer = typeof offerText === "string" ? parse(offerText) : offerText;
	var keepExt = opts.extensions || DEFAULT_EXTENSIONS;
	var wantSend = opts.send !== false;
	var wantRecv = opts.recv !== false;
	var answer = { session: { lines: [] }, media: [] };
	var i, j;
	for (i = 0; i < offer.session.lines.length; i++) {
		var sl = offer.session.lines[i];
		if (sl.type === "v" || sl.type === "o" || sl.type === "s" || sl.type === "t") {
			answer.session.lines.push(sl);
		}
	}
	var seen = { audio: false, video: false, application: false };
	for (i = 0; i < offer.media.length; i++) {
		var m = offer.media[i];
		var enabled = m.port !== 0 && !seen[m.kind] &&
			((m.kind === "audio" && opts.audio !== false) ||
			 (m.kind === "video" && opts.video !== false) ||
			 (m.kind === "application" && opts.data !== false));
		if (m.kind === "application") {
			if (!enabled) {
				answer.media.push({ kind: m.kind, port: 0, proto: m.proto, formats: m.formats, lines: [] });
				continue;
			}
			seen.application = true;
			answer.media.push({ kind: m.kind, port: 9, proto: m.proto, formats: m.formats,
				lines: [{ type: "c", value: "IN IP4 1.1.1.1" }] });
			continue;
		}
		var chosen = null;
		if (enabled) {
			var list = codecs(m);
			if (m.kind === "audio") {
				chosen = pickCodec(list, opts.audioCodec, AUDIO_CODECS, null);
			} else {
				chosen = pickCodec(list, opts.videoCodec, VIDEO_CODECS,
					opts.videoCodec === "vp9" ? opts.vp9Profile : (opts.videoCodec === "h264" ? opts.h264Profile : null));
			}
		}
		if (!chosen) {
			answer.media.push({ kind: m.kind, port: 0, proto: m.proto, formats: ["0"], lines: [] });
			continue;
		}
		seen[m.kind] = true;
		var lines = [{ type: "c", value: "IN IP4 1.1.1.1" }];
		var bw = [];
		for (j = 0; j < m.lines.length; j++) {
			if (m.lines[j].type === "b") {
				bw.push(m.lines[j]);
			}
		}
		lines = lines.concat(bw);
		lines.push({ type: "a", name: answerDirection(direction(m), wantSend, wantRecv), value: null });
		var exts = attributes(m, "extmap");
		for (j = 0; j < exts.length; j++) {
			var uri = exts[j].split(" ")[1];
			if (keepExt.indexOf(uri) >= 0) {
				lines.push({ type: "a", name: "extmap", value: swapExtmapDirection(exts[j]) });
			}
		}
		if (chosen.rtpmap) {
			lines.push({ type: "a", name: "rtpmap", value: chosen.rtpmap });
		}
		for (j = 0; j < chosen.feedback.length; j++) {
			lines.push({ type: "a", name: "rtcp-fb", value: chosen.pt + " " + chosen.feedback[j] });
		}
		if (chosen.fmtp) {
			lines.push({ type: "a", name: "fmtp", value: chosen.pt + " " + chosen.fmtp });
		}
		answer.media.push({ kind: m.kind, port: 9, proto: m.proto, formats: [String(chosen.pt)], lines: lines });
	}
	return render(answer);
}

// What an answer negotiated, per m-line: [{index, kind, codec, direction}].
function negotiated(text) {
	var sdp = typeof text === "string" ? parse(text) : text;
	var out = [];
	for (var i = 0; i < sdp.media.length; i++) {
		var m = sdp.media[i];
		var list = m.kind === "application" ? [] : codecs(m);
		out.push({ index: i, kind: m.kind, port: m.port,
			codec: list.length > 0 ? list[0].name : null, direction: direction(m) });
	}
	return out;
}

module.exports = {
	parse: parse,
	render: render,
	codecs: codecs,
	direction: direction,
	generateAnswer: generateAnswer,
	negotiated: negotiated,
	DEFAULT_EXTENSIONS: DEFAULT_EXTENSIONS
};
