// jsfu script environment: the parts of the Janus Duktape environment that
// are easier to write in JavaScript than in Rust (spec/compat-notes.md §3,
// spec/script-contract.md §8 and §9.1).
//
// Evaluated once per engine, before the host functions are defined, as a
// function expression called with `native`, an object of Rust helpers:
//   native.log(level, text)          level 0 info, 1 warn, 2 error, 3 debug
//   native.gc()                      runs the garbage collector
//   native.compile(source, filename) compiles sloppy global code, returns its value
// It returns an object of helpers the host keeps for itself.
(function (native) {
    'use strict';
    var global = globalThis;
    var hasOwn = Object.prototype.hasOwnProperty;

    function defineHidden(obj, name, value) {
        Object.defineProperty(obj, name, {
            value: value, writable: true, configurable: true, enumerable: false
        });
    }

    // ---------------------------------------------------------------
    // Bytes: the byte-string rule (script-contract.md §7) and UTF-8.

    function isBufferLike(v) {
        return ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
    }

    function bufferBytes(v) {
        if (v instanceof ArrayBuffer) {
            return new Uint8Array(v);
        }
        return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    }

    function utf8Encode(s) {
        var out = [];
        for (var i = 0; i < s.length; i++) {
            var c = s.charCodeAt(i);
            if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
                var d = s.charCodeAt(i + 1);
                if (d >= 0xdc00 && d <= 0xdfff) {
                    c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
                    i++;
                }
            }
            if (c >= 0xd800 && c <= 0xdfff) {
                c = 0xfffd;
            }
            if (c < 0x80) {
                out.push(c);
            } else if (c < 0x800) {
                out.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
            } else if (c < 0x10000) {
                out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
            } else {
                out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f),
                    0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
            }
        }
        return new Uint8Array(out);
    }

    // Decodes UTF-8 bytes; invalid sequences become U+FFFD (or throw when fatal).
    function utf8Decode(bytes, fatal) {
        var s = '';
        var chunk = [];
        function flush() {
            s += String.fromCharCode.apply(null, chunk);
            chunk = [];
        }
        function bad() {
            if (fatal) {
                throw new TypeError('The encoded data was not valid utf-8');
            }
            chunk.push(0xfffd);
        }
        var i = 0;
        var n = bytes.length;
        while (i < n) {
            var b = bytes[i];
            var need = 0;
            var cp = 0;
            var min = 0;
            if (b < 0x80) {
                chunk.push(b);
                i++;
            } else {
                if (b >= 0xc2 && b <= 0xdf) {
                    need = 1; cp = b & 0x1f; min = 0x80;
                } else if (b >= 0xe0 && b <= 0xef) {
                    need = 2; cp = b & 0x0f; min = 0x800;
                } else if (b >= 0xf0 && b <= 0xf4) {
                    need = 3; cp = b & 0x07; min = 0x10000;
                } else {
                    bad();
                    i++;
                    need = -1;
                }
                if (need > 0) {
                    var j = 1;
                    for (; j <= need; j++) {
                        var c = bytes[i + j];
                        if (i + j >= n || (c & 0xc0) !== 0x80) {
                            break;
                        }
                        cp = (cp << 6) | (c & 0x3f);
                    }
                    if (j <= need || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
                        bad();
                        i += Math.max(1, j);
                    } else {
                        if (cp >= 0x10000) {
                            cp -= 0x10000;
                            chunk.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
                        } else {
                            chunk.push(cp);
                        }
                        i += need + 1;
                    }
                }
            }
            if (chunk.length >= 4096) {
                flush();
            }
        }
        flush();
        return s;
    }

    // The bytes of a value as Duktape's enc() sees them: buffers as they
    // are, strings by the byte-string rule, anything else through String().
    function bytesOf(v) {
        if (isBufferLike(v)) {
            return bufferBytes(v);
        }
        var s = String(v);
        var narrow = true;
        for (var i = 0; i < s.length; i++) {
            if (s.charCodeAt(i) > 0xff) {
                narrow = false;
                break;
            }
        }
        if (!narrow) {
            return utf8Encode(s);
        }
        var out = new Uint8Array(s.length);
        for (var k = 0; k < s.length; k++) {
            out[k] = s.charCodeAt(k);
        }
        return out;
    }

    // A byte string (one code unit per byte) from a buffer.
    function latin1Of(v) {
        var bytes = bufferBytes(v);
        var s = '';
        for (var i = 0; i < bytes.length; i += 4096) {
            s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096));
        }
        return s;
    }

    var HEX = '0123456789abcdef';

    function hexEncode(bytes) {
        var s = '';
        for (var i = 0; i < bytes.length; i++) {
            s += HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
        }
        return s;
    }

    function hexDecode(text) {
        if (text.length % 2 !== 0) {
            throw new TypeError('decode failed');
        }
        var out = new Uint8Array(text.length / 2);
        for (var i = 0; i < out.length; i++) {
            var h = parseInt(text.substr(i * 2, 2), 16);
            if (!/^[0-9a-fA-F]{2}$/.test(text.substr(i * 2, 2))) {
                throw new TypeError('decode failed');
            }
            out[i] = h;
        }
        return out;
    }

    var B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

    function base64Encode(bytes) {
        var s = '';
        var i = 0;
        for (; i + 2 < bytes.length; i += 3) {
            var n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
            s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
        }
        var rest = bytes.length - i;
        if (rest === 1) {
            var a = bytes[i] << 16;
            s += B64[a >> 18] + B64[(a >> 12) & 63] + '==';
        } else if (rest === 2) {
            var b = (bytes[i] << 16) | (bytes[i + 1] << 8);
            s += B64[b >> 18] + B64[(b >> 12) & 63] + B64[(b >> 6) & 63] + '=';
        }
        return s;
    }

    function base64Decode(text) {
        var out = [];
        var acc = 0;
        var bits = 0;
        var padded = false;
        for (var i = 0; i < text.length; i++) {
            var ch = text[i];
            if (ch === ' ' || ch === '\n' || ch === '\r' || ch === '\t') {
                continue;
            }
            if (ch === '=') {
                padded = true;
                continue;
            }
            var v = B64.indexOf(ch);
            if (v < 0 || padded) {
                throw new TypeError('decode failed');
            }
            acc = (acc << 6) | v;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out.push((acc >> bits) & 0xff);
            }
        }
        return new Uint8Array(out);
    }

    // ---------------------------------------------------------------
    // JX / JC (Duktape's extended JSON; compat-notes.md §3.1).

    var IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

    function quote(s, jx) {
        var out = '"';
        for (var i = 0; i < s.length; i++) {
            var c = s.charCodeAt(i);
            var ch = s[i];
            if (ch === '"') {
                out += '\\"';
            } else if (ch === '\\') {
                out += '\\\\';
            } else if (ch === '\n') {
                out += '\\n';
            } else if (ch === '\r') {
                out += '\\r';
            } else if (ch === '\t') {
                out += '\\t';
            } else if (ch === '\b') {
                out += '\\b';
            } else if (ch === '\f') {
                out += '\\f';
            } else if (c < 0x20 || c >= 0x7f) {
                if (jx && c < 0x100) {
                    out += '\\x' + HEX[c >> 4] + HEX[c & 15];
                } else {
                    out += '\\u' + HEX[(c >> 12) & 15] + HEX[(c >> 8) & 15] +
                        HEX[(c >> 4) & 15] + HEX[c & 15];
                }
            } else {
                out += ch;
            }
        }
        return out + '"';
    }

    function encodeExtended(value, jx, space) {
        var indent = '';
        if (typeof space === 'number') {
            indent = '          '.substr(0, Math.max(0, Math.min(10, Math.floor(space))));
        } else if (typeof space === 'string') {
            indent = space.substr(0, 10);
        }
        var stack = [];

        function special(name, val) {
            return jx ? '{_' + name + ':' + val + '}' : '{"_' + name + '":' + val + '}';
        }

        function enc(v, cur, top) {
            if (v !== null && (typeof v === 'object' || typeof v === 'function') &&
                !isBufferLike(v) && typeof v.toJSON === 'function') {
                v = v.toJSON();
            }
            switch (typeof v) {
                case 'undefined':
                    return jx ? 'undefined' : special('undef', 'true');
                case 'boolean':
                    return v ? 'true' : 'false';
                case 'number':
                    if (v !== v) {
                        return jx ? 'NaN' : special('nan', 'true');
                    }
                    if (v === Infinity) {
                        return jx ? 'Infinity' : special('inf', 'true');
                    }
                    if (v === -Infinity) {
                        return jx ? '-Infinity' : special('ninf', 'true');
                    }
                    if (v === 0 && 1 / v < 0) {
                        return jx ? '-0' : '-0';
                    }
                    return String(v);
                case 'bigint':
                    return String(v);
                case 'string':
                    return quote(v, jx);
                case 'symbol':
                    return jx ? 'undefined' : special('undef', 'true');
                case 'function':
                    return special('func', 'true');
                default:
                    break;
            }
            if (v === null) {
                return 'null';
            }
            if (isBufferLike(v)) {
                var hex = hexEncode(bufferBytes(v));
                return jx ? '|' + hex + '|' : special('buf', '"' + hex + '"');
            }
            if (v instanceof Pointer) {
                return jx ? '(' + String(v.value) + ')' : special('ptr', quote(String(v.value), false));
            }
            if (stack.indexOf(v) >= 0) {
                throw new TypeError('cyclic input');
            }
            stack.push(v);
            var inner = cur + indent;
            var parts = [];
            var open;
            var close;
            if (Array.isArray(v)) {
                for (var i = 0; i < v.length; i++) {
                    parts.push(enc(v[i], inner, false));
                }
                open = '[';
                close = ']';
            } else {
                var keys = Object.keys(v);
                for (var k = 0; k < keys.length; k++) {
                    var key = keys[k];
                    var name = jx && IDENT.test(key) ? key : quote(key, jx);
                    parts.push(name + (indent ? ': ' : ':') + enc(v[key], inner, false));
                }
                open = '{';
                close = '}';
            }
            stack.pop();
            if (parts.length === 0) {
                return open + close;
            }
            if (!indent) {
                return open + parts.join(',') + close;
            }
            return open + '\n' + inner + parts.join(',\n' + inner) + '\n' + cur + close;
        }

        return enc(value, '', true);
    }

    function decodeExtended(text, jx) {
        var pos = 0;

        function fail() {
            throw new SyntaxError('invalid ' + (jx ? 'jx' : 'jc') + ' at offset ' + pos);
        }
        function ws() {
            while (pos < text.length && ' \t\r\n'.indexOf(text[pos]) >= 0) {
                pos++;
            }
        }
        function lit(word) {
            if (text.substr(pos, word.length) === word) {
                pos += word.length;
                return true;
            }
            return false;
        }
        function str() {
            pos++; // opening quote
            var out = '';
            while (pos < text.length) {
                var ch = text[pos++];
                if (ch === '"') {
                    return out;
                }
                if (ch !== '\\') {
                    out += ch;
                    continue;
                }
                var e = text[pos++];
                var n;
                if (e === 'n') { out += '\n'; } else if (e === 'r') { out += '\r'; } else if (e === 't') {
                    out += '\t';
                } else if (e === 'b') { out += '\b'; } else if (e === 'f') { out += '\f'; } else if (e === 'u') {
                    n = text.substr(pos, 4);
                    if (!/^[0-9a-fA-F]{4}$/.test(n)) { fail(); }
                    out += String.fromCharCode(parseInt(n, 16));
                    pos += 4;
                } else if (jx && e === 'x') {
                    n = text.substr(pos, 2);
                    if (!/^[0-9a-fA-F]{2}$/.test(n)) { fail(); }
                    out += String.fromCharCode(parseInt(n, 16));
                    pos += 2;
                } else if (jx && e === 'U') {
                    n = text.substr(pos, 8);
                    if (!/^[0-9a-fA-F]{8}$/.test(n)) { fail(); }
                    out += String.fromCodePoint(parseInt(n, 16));
                    pos += 8;
                } else if (e === '"' || e === '\\' || e === '/') {
                    out += e;
                } else {
                    fail();
                }
            }
            return fail();
        }
        function convertSpecial(obj) {
            var keys = Object.keys(obj);
            if (keys.length !== 1) {
                return obj;
            }
            var k = keys[0];
            var v = obj[k];
            if (k === '_undef' && v === true) { return undefined; }
            if (k === '_nan' && v === true) { return NaN; }
            if (k === '_inf' && v === true) { return Infinity; }
            if (k === '_ninf' && v === true) { return -Infinity; }
            if (k === '_func' && v === true) { return function () {}; }
            if (k === '_buf' && typeof v === 'string') { return hexDecode(v); }
            if (k === '_ptr' && typeof v === 'string') { return new Pointer(v); }
            return obj;
        }
        function value() {
            ws();
            var ch = text[pos];
            if (ch === '{') {
                pos++;
                var obj = {};
                ws();
                if (text[pos] === '}') {
                    pos++;
                    return convertSpecial(obj);
                }
                for (;;) {
                    ws();
                    var key;
                    if (text[pos] === '"') {
                        key = str();
                    } else if (jx) {
                        var m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(text.substr(pos));
                        if (!m) { fail(); }
                        key = m[0];
                        pos += key.length;
                    } else {
                        fail();
                    }
                    ws();
                    if (text[pos++] !== ':') { fail(); }
                    obj[key] = value();
                    ws();
                    var sep = text[pos++];
                    if (sep === '}') { return convertSpecial(obj); }
                    if (sep !== ',') { fail(); }
                }
            }
            if (ch === '[') {
                pos++;
                var arr = [];
                ws();
                if (text[pos] === ']') {
                    pos++;
                    return arr;
                }
                for (;;) {
                    arr.push(value());
                    ws();
                    var s2 = text[pos++];
                    if (s2 === ']') { return arr; }
                    if (s2 !== ',') { fail(); }
                }
            }
            if (ch === '"') {
                return str();
            }
            if (lit('true')) { return true; }
            if (lit('false')) { return false; }
            if (lit('null')) { return null; }
            if (jx) {
                if (lit('undefined')) { return undefined; }
                if (lit('NaN')) { return NaN; }
                if (lit('Infinity')) { return Infinity; }
                if (lit('-Infinity')) { return -Infinity; }
                if (ch === '|') {
                    var end = text.indexOf('|', pos + 1);
                    if (end < 0) { fail(); }
                    var h = text.substring(pos + 1, end);
                    pos = end + 1;
                    return hexDecode(h);
                }
            }
            var num = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.substr(pos));
            if (!num) { fail(); }
            pos += num[0].length;
            return Number(num[0]);
        }
        var result = value();
        ws();
        if (pos !== text.length) {
            fail();
        }
        return result;
    }

    // ---------------------------------------------------------------
    // The Duktape object (compat-notes.md §3.1).

    function Pointer(v) {
        if (!(this instanceof Pointer)) {
            return new Pointer(v);
        }
        this.value = v === undefined ? null : v;
    }
    Pointer.prototype.toString = function () {
        return String(this.value);
    };
    Pointer.prototype.valueOf = function () {
        return this;
    };

    function unsupportedThread() {
        throw new Error('Duktape.Thread is not supported');
    }
    function Thread() {
        unsupportedThread();
    }
    Thread.resume = unsupportedThread;
    Thread.yield = unsupportedThread;
    Thread.current = unsupportedThread;

    var finalizers = new WeakMap();

    function stackFrames(stack) {
        var frames = [];
        if (typeof stack !== 'string') {
            return frames;
        }
        var lines = stack.split('\n');
        for (var i = 0; i < lines.length; i++) {
            var line = lines[i];
            var m = /^\s*at (?:(.*?) \()?(.*?):(\d+)(?::\d+)?\)?$/.exec(line);
            if (m) {
                frames.push({ name: m[1], file: m[2], line: Number(m[3]) });
            } else if (/^\s*at /.test(line)) {
                frames.push({ name: line.replace(/^\s*at /, ''), file: undefined, line: undefined });
            }
        }
        return frames;
    }

    function firstLocated(stack) {
        var frames = stackFrames(stack);
        for (var i = 0; i < frames.length; i++) {
            if (frames[i].line !== undefined) {
                return frames[i];
            }
        }
        return null;
    }

    var Duktape = {
        version: 20700,
        env: 'll u nl p2 a8 x64 linux gcc',
        Pointer: Pointer,
        Thread: Thread,
        modLoaded: Object.create(null),
        enc: function (fmt, v, replacer, space) {
            fmt = String(fmt);
            if (fmt === 'hex') { return hexEncode(bytesOf(v)); }
            if (fmt === 'base64') { return base64Encode(bytesOf(v)); }
            if (fmt === 'jx') { return encodeExtended(v, true, space); }
            if (fmt === 'jc') { return encodeExtended(v, false, space); }
            throw new TypeError('unsupported format: ' + fmt);
        },
        dec: function (fmt, v) {
            fmt = String(fmt);
            var text = isBufferLike(v) ? latin1Of(v) : String(v);
            if (fmt === 'hex') { return hexDecode(text); }
            if (fmt === 'base64') { return base64Decode(text); }
            if (fmt === 'jx') { return decodeExtended(text, true); }
            if (fmt === 'jc') { return decodeExtended(text, false); }
            throw new TypeError('unsupported format: ' + fmt);
        },
        fin: function (obj, fn) {
            if (obj === null || (typeof obj !== 'object' && typeof obj !== 'function')) {
                return undefined;
            }
            if (arguments.length < 2) {
                return finalizers.get(obj);
            }
            finalizers.set(obj, fn);
            return undefined;
        },
        gc: function () {
            native.gc();
            return true;
        },
        compact: function (obj) {
            return obj;
        },
        info: function (v) {
            var t = v === null ? 'null' : typeof v;
            return { type: t, itag: 0, refc: 1 };
        },
        act: function (level) {
            var frames = stackFrames(new Error().stack);
            // Level -1 is act() itself, -2 its caller, and so on.
            var n = typeof level === 'number' ? -Math.trunc(level) - 1 : 0;
            var f = frames[n];
            if (n < 0 || !f) {
                return undefined;
            }
            return { function: f.name, lineNumber: f.line, pc: 0 };
        }
    };
    defineHidden(global, 'Duktape', Duktape);

    // ---------------------------------------------------------------
    // Error.prototype.lineNumber / fileName (compat-notes.md §3.3): read
    // only `stack`, never toString.

    function stackOf(e) {
        try {
            return e.stack;
        } catch (ignored) {
            return undefined;
        }
    }

    Object.defineProperty(Error.prototype, 'lineNumber', {
        configurable: true,
        enumerable: false,
        get: function () {
            var f = firstLocated(stackOf(this));
            return f ? f.line : undefined;
        }
    });
    Object.defineProperty(Error.prototype, 'fileName', {
        configurable: true,
        enumerable: false,
        get: function () {
            var f = firstLocated(stackOf(this));
            return f ? f.file : undefined;
        }
    });

    // ---------------------------------------------------------------
    // console (script-contract.md §9.1): a Proxy, unknown methods are no-ops.

    function render(args) {
        var parts = [];
        for (var i = 0; i < args.length; i++) {
            var a = args[i];
            if (a !== null && (typeof a === 'object' || typeof a === 'function')) {
                var fmt = target.format;
                var text;
                try {
                    text = typeof fmt === 'function' ? fmt(a) : encodeExtended(a, true);
                } catch (e) {
                    text = String(a);
                }
                parts.push(String(text));
            } else {
                parts.push(String(a));
            }
        }
        return parts.join(' ');
    }

    function withStack(text) {
        var stack = new Error().stack;
        if (typeof stack !== 'string') {
            return text;
        }
        var lines = stack.split('\n').slice(2).filter(function (l) { return l.length > 0; });
        return lines.length ? text + '\n' + lines.join('\n') : text;
    }

    function logger(level, trace) {
        return function () {
            var text = render(arguments);
            native.log(level, trace ? withStack(text) : text);
        };
    }

    var target = {
        log: logger(0, false),
        debug: logger(0, false),
        info: logger(0, false),
        trace: logger(0, true),
        dir: logger(0, false),
        warn: logger(1, false),
        error: logger(2, true),
        exception: logger(2, true),
        assert: function (cond) {
            if (!cond) {
                var rest = Array.prototype.slice.call(arguments, 1);
                native.log(2, withStack('Assertion failed: ' + render(rest)));
            }
        },
        format: function (v) {
            try {
                return encodeExtended(v, true);
            } catch (e) {
                return String(v);
            }
        }
    };
    function noop() {}
    var consoleProxy = new Proxy(target, {
        get: function (t, key) {
            if (key in t) {
                return t[key];
            }
            if (typeof key === 'symbol') {
                return undefined;
            }
            return noop;
        }
    });
    defineHidden(global, 'console', consoleProxy);
    defineHidden(global, 'print', function () {
        native.log(0, render(arguments));
    });

    // ---------------------------------------------------------------
    // require (script-contract.md §8).

    function resolveId(requested, parentId) {
        if (typeof requested !== 'string') {
            throw new TypeError('cannot resolve module id: ' + String(requested));
        }
        var fail = function () {
            throw new TypeError('cannot resolve module id: ' + requested);
        };
        var input = requested;
        if (requested[0] === '.' && typeof parentId === 'string') {
            var cut = parentId.lastIndexOf('/');
            input = (cut >= 0 ? parentId.substring(0, cut + 1) : '') + requested;
        }
        if (utf8Encode(input).length >= 256) {
            fail();
        }
        var terms = input.split('/');
        var out = [];
        for (var i = 0; i < terms.length; i++) {
            var t = terms[i];
            var last = i === terms.length - 1;
            if (t === '') {
                if (i === 0 || last) {
                    fail();
                }
                continue; // duplicate slash
            }
            if (t === '.') {
                if (last) {
                    fail();
                }
                continue;
            }
            if (t === '..') {
                if (out.length === 0 || last) {
                    fail();
                }
                out.pop();
                continue;
            }
            if (t[0] === '.') {
                fail();
            }
            out.push(t);
        }
        if (out.length === 0) {
            fail();
        }
        return out.join('/');
    }

    function makeRequire(parentId) {
        var req = function require(id) {
            var resolved = resolveId(id, parentId);
            var D = global.Duktape;
            var loaded = D.modLoaded;
            if (loaded !== null && loaded !== undefined && hasOwn.call(loaded, resolved) &&
                loaded[resolved] !== undefined) {
                return loaded[resolved].exports;
            }
            var exports = {};
            var module = { exports: exports };
            Object.defineProperty(module, 'id', {
                value: resolved, writable: false, enumerable: true, configurable: false
            });
            var fresh = makeRequire(resolved);
            loaded[resolved] = module;
            var source;
            try {
                source = D.modSearch(resolved, fresh, exports, module);
            } catch (e) {
                delete loaded[resolved];
                throw e;
            }
            if (typeof source !== 'string') {
                return module.exports;
            }
            try {
                var filename = typeof module.filename === 'string' ? module.filename : resolved;
                var fn = native.compile('(function (require, exports, module) {' + source + '\n})',
                    filename);
                var fnName = typeof module.name === 'string' ? module.name :
                    resolved.substring(resolved.lastIndexOf('/') + 1);
                try {
                    Object.defineProperty(fn, 'name', { value: fnName, configurable: true });
                } catch (ignored) {
                    // A non-configurable name stays as it is.
                }
                fn.call(exports, fresh, module.exports, module);
            } catch (e2) {
                delete loaded[resolved];
                throw e2;
            }
            return module.exports;
        };
        Object.defineProperty(req, 'id', {
            value: parentId, writable: false, enumerable: true, configurable: false
        });
        return req;
    }
    defineHidden(global, 'require', makeRequire(undefined));

    // ---------------------------------------------------------------
    // TextEncoder / TextDecoder (UTF-8 only).

    function TextEncoder() {
        if (!(this instanceof TextEncoder)) {
            throw new TypeError("Constructor TextEncoder requires 'new'");
        }
    }
    Object.defineProperty(TextEncoder.prototype, 'encoding', { get: function () { return 'utf-8'; } });
    TextEncoder.prototype.encode = function (input) {
        return utf8Encode(input === undefined ? '' : String(input));
    };
    TextEncoder.prototype.encodeInto = function (input, dest) {
        var bytes = utf8Encode(String(input));
        var n = Math.min(bytes.length, dest.length);
        // Do not split a character: back up to a lead byte.
        if (n < bytes.length) {
            while (n > 0 && (bytes[n] & 0xc0) === 0x80) {
                n--;
            }
        }
        dest.set(bytes.subarray(0, n));
        return { read: utf8Decode(bytes.subarray(0, n), false).length, written: n };
    };

    function TextDecoder(label, options) {
        if (!(this instanceof TextDecoder)) {
            throw new TypeError("Constructor TextDecoder requires 'new'");
        }
        var l = label === undefined ? 'utf-8' : String(label).trim().toLowerCase();
        if (l !== 'utf-8' && l !== 'utf8' && l !== 'unicode-1-1-utf-8') {
            throw new RangeError('The encoding label provided (\'' + label + '\') is invalid.');
        }
        this._fatal = !!(options && options.fatal);
        this._ignoreBOM = !!(options && options.ignoreBOM);
    }
    Object.defineProperty(TextDecoder.prototype, 'encoding', { get: function () { return 'utf-8'; } });
    Object.defineProperty(TextDecoder.prototype, 'fatal', { get: function () { return this._fatal; } });
    Object.defineProperty(TextDecoder.prototype, 'ignoreBOM', {
        get: function () { return this._ignoreBOM; }
    });
    TextDecoder.prototype.decode = function (input) {
        if (input === undefined) {
            return '';
        }
        if (!isBufferLike(input)) {
            throw new TypeError('The "input" argument must be an ArrayBuffer or ArrayBufferView');
        }
        var bytes = bufferBytes(input);
        if (!this._ignoreBOM && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb &&
            bytes[2] === 0xbf) {
            bytes = bytes.subarray(3);
        }
        return utf8Decode(bytes, this._fatal);
    };
    if (typeof global.TextEncoder !== 'function') {
        defineHidden(global, 'TextEncoder', TextEncoder);
    }
    if (typeof global.TextDecoder !== 'function') {
        defineHidden(global, 'TextDecoder', TextDecoder);
    }

    // Helpers the host keeps for itself.
    return {
        latin1Of: latin1Of,
        isBufferLike: isBufferLike,
        frame: firstLocated
    };
})
