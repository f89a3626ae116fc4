#!/usr/bin/env python3
"""End-to-end echo test client: a real WebRTC peer (aiortc) against a Janus
API server running an echo script (package ``janus.plugin.echojs``).

It creates a session, attaches the echo plugin, offers an Opus audio track
(a generated sine tone) and a VP8 video track (generated frames with four
coloured quadrants), waits for the answer and ``webrtcup``, then checks what
comes back:

* streaming (default 5 s): audio frames arrive and their dominant frequency
  is the sent tone; video frames arrive, with the sent size and pattern;
  the server sent RTCP sender reports and ``media`` events (receiving) for
  both kinds;
* ``{"video": false}``: video stops arriving while audio continues;
* ``{"video": true}``: video resumes;
* ``hangup``: a ``hangup`` event (reason ``Janus API``) arrives and media
  stops;
* ``detach``: a ``detached`` event; ``destroy``: success.

The Janus API is spoken over HTTP (requests plus a long poll) or WebSocket
(``--transport``). ICE only uses the loopback address 127.0.0.1 and no STUN
server, so nothing leaves the machine.

A JSON summary is printed on stdout; the exit status is 0 when every check
passed, 1 when one failed, 2 on a usage error. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import math
import random
import string
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

import aioice.ice
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

LOOPBACK = "127.0.0.1"
AUDIO_RATE = 48000
AUDIO_PTIME = 0.020
VIDEO_CLOCK = 90000
VIDEO_FPS = 30
# Quadrant colours (RGB) of the generated frames: top-left, top-right,
# bottom-left, bottom-right.
QUADRANTS = [(230, 30, 30), (30, 200, 30), (30, 30, 230), (240, 240, 240)]
# Largest per-channel difference accepted between a sent quadrant colour and
# the decoded one (VP8 and the YUV 4:2:0 round trip are lossy).
COLOUR_TOLERANCE = 60


def only_loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Replacement for aioice's interface enumeration: loopback only."""
    return [LOOPBACK] if use_ipv4 else []


# aioice gathers host candidates on every interface except loopback; the test
# must stay on 127.0.0.1, so gather there and only there.
aioice.ice.get_host_addresses = only_loopback_host_addresses


def log(msg: str) -> None:
    print(f"[echo-client {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def transaction_id() -> str:
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(12))


class CheckFailed(Exception):
    """A step of the flow did not behave as expected (the test fails)."""


# --------------------------------------------------------------------------
# Janus API transports
# --------------------------------------------------------------------------


class EventLog:
    """Asynchronous events (and everything else not a reply), in arrival order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def push(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float, start: int = 0
    ) -> tuple[int, dict[str, Any]]:
        """The first event at or after index `start` matching `pred`."""
        deadline = asyncio.get_running_loop().time() + timeout
        index = start
        while True:
            while index < len(self.events):
                if pred(self.events[index]):
                    return index, self.events[index]
                index += 1
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise CheckFailed(
                    f"timed out after {timeout:.1f} s waiting for an event; "
                    f"events so far: {[e.get('janus') for e in self.events]}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass


class HttpTransport:
    """Janus API over HTTP: POST requests, events by long poll (GET)."""

    name = "http"

    def __init__(self, url: str, events: EventLog) -> None:
        self.base = url.rstrip("/")
        self.events = events
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()

    async def open(self) -> None:
        pass

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=15) as resp:
            return json.loads(resp.read().decode())

    async def request(
        self, body: dict[str, Any], session: int | None = None, handle: int | None = None
    ) -> dict[str, Any]:
        path = ""
        if session is not None:
            path += f"/{session}"
            if handle is not None:
                path += f"/{handle}"
        return await asyncio.to_thread(self._post, path, body)

    def start_events(self, session: int) -> None:
        loop = asyncio.get_running_loop()

        def poll() -> None:
            url = f"{self.base}/{session}?maxev=10"
            while not self._stop.is_set():
                try:
                    with urllib.request.urlopen(url, timeout=40) as resp:
                        payload = json.loads(resp.read().decode())
                except urllib.error.HTTPError as e:
                    # 404: the session is gone (destroyed).
                    log(f"long poll ended: HTTP {e.code}")
                    return
                except Exception as e:  # noqa: BLE001 - report and stop polling
                    if not self._stop.is_set():
                        log(f"long poll failed: {e!r}")
                    return
                items = payload if isinstance(payload, list) else [payload]
                for item in items:
                    if isinstance(item, dict) and item.get("janus") != "keepalive":
                        loop.call_soon_threadsafe(self.events.push, item)

        # A daemon thread: a parked GET must never hold the process open.
        self._poller = threading.Thread(target=poll, name="long-poll", daemon=True)
        self._poller.start()

    async def close(self) -> None:
        self._stop.set()


class WsTransport:
    """Janus API over WebSocket (subprotocol janus-protocol)."""

    name = "ws"

    def __init__(self, url: str, events: EventLog) -> None:
        self.url = url
        self.events = events
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(
            self.url, subprotocols=["janus-protocol"], open_timeout=10, max_size=None
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                msg = json.loads(raw)
                if not isinstance(msg, dict):
                    continue
                tr = msg.get("transaction")
                kind = msg.get("janus")
                fut = self._pending.get(tr) if isinstance(tr, str) else None
                # Replies (ack/success/error) complete the request; events
                # (even those carrying the request's transaction) are events.
                if fut is not None and kind in ("ack", "success", "error", "server_info"):
                    del self._pending[tr]
                    if not fut.done():
                        fut.set_result(msg)
                else:
                    self.events.push(msg)
        except Exception as e:  # noqa: BLE001 - the connection ended
            log(f"websocket reader ended: {e!r}")
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(CheckFailed("websocket closed before the reply"))

    async def request(
        self, body: dict[str, Any], session: int | None = None, handle: int | None = None
    ) -> dict[str, Any]:
        body = dict(body)
        if session is not None:
            body["session_id"] = session
        if handle is not None:
            body["handle_id"] = handle
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[body["transaction"]] = fut
        await self._ws.send(json.dumps(body))
        return await asyncio.wait_for(fut, 15)

    def start_events(self, session: int) -> None:
        pass

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


# --------------------------------------------------------------------------
# Generated media
# --------------------------------------------------------------------------


class SineTrack(MediaStreamTrack):
    """Mono 48 kHz sine tone in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self.frequency = frequency
        self.samples = int(AUDIO_RATE * AUDIO_PTIME)
        self._start: float | None = None
        self._pts = 0
        self.sent = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += self.samples
            wait = self._start + self._pts / AUDIO_RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        n = np.arange(self._pts, self._pts + self.samples)
        tone = 0.5 * np.sin(2 * math.pi * self.frequency * n / AUDIO_RATE)
        pcm = (tone * 32767).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.sent += 1
        return frame


def pattern(width: int, height: int) -> np.ndarray:
    """The test picture: four solid quadrants (see QUADRANTS)."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    hh, hw = height // 2, width // 2
    img[:hh, :hw] = QUADRANTS[0]
    img[:hh, hw:] = QUADRANTS[1]
    img[hh:, :hw] = QUADRANTS[2]
    img[hh:, hw:] = QUADRANTS[3]
    return img


class PatternTrack(MediaStreamTrack):
    """Video frames of a fixed size showing the quadrant pattern, 30 fps."""

    kind = "video"

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.image = pattern(width, height)
        self._start: float | None = None
        self._pts = 0
        self.sent = 0

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        step = VIDEO_CLOCK // VIDEO_FPS
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += step
            wait = self._start + self._pts / VIDEO_CLOCK - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        frame = VideoFrame.from_ndarray(self.image, format="rgb24")
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.sent += 1
        return frame


def quadrant_colours(img: np.ndarray) -> list[list[int]]:
    """Mean colour of a patch in the middle of each quadrant."""
    h, w = img.shape[0], img.shape[1]
    out = []
    for cy, cx in ((h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4), (3 * h // 4, 3 * w // 4)):
        dy, dx = max(h // 12, 1), max(w // 12, 1)
        patch = img[cy - dy : cy + dy, cx - dx : cx + dx].reshape(-1, 3)
        out.append([int(v) for v in patch.mean(axis=0)])
    return out


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """Frequency (Hz) of the strongest FFT bin of a Hann-windowed signal."""
    if samples.size < 1024:
        return 0.0
    x = samples.astype(np.float64)
    x -= x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    spectrum[0] = 0.0
    peak = int(np.argmax(spectrum))
    # Parabolic interpolation of the peak for sub-bin accuracy.
    if 0 < peak < spectrum.size - 1:
        a, b, c = spectrum[peak - 1], spectrum[peak], spectrum[peak + 1]
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom != 0 else 0.0
    else:
        offset = 0.0
    return (peak + offset) * rate / x.size


def delta(before: dict[str, int], after: dict[str, int], kind: str) -> int:
    """Packets of `kind` received between two inbound_stats() snapshots."""
    return after.get(kind, 0) - before.get(kind, 0)


@dataclass
class Received:
    """What came back, with arrival times (event loop clock)."""

    audio_times: list[float] = field(default_factory=list)
    audio_samples: list[np.ndarray] = field(default_factory=list)
    audio_rate: int = 0
    video_times: list[float] = field(default_factory=list)
    video_sizes: dict[str, int] = field(default_factory=dict)
    video_colours: list[list[list[int]]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    def audio_between(self, t0: float, t1: float) -> int:
        return sum(1 for t in self.audio_times if t0 <= t < t1)

    def video_between(self, t0: float, t1: float) -> int:
        return sum(1 for t in self.video_times if t0 <= t < t1)


async def consume_audio(track: MediaStreamTrack, rx: Received) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            frame = await track.recv()
            rx.audio_times.append(loop.time())
            rx.audio_rate = frame.sample_rate
            arr = frame.to_ndarray()
            channels = len(frame.layout.channels)
            mono = arr[0] if frame.format.is_planar else arr[0][::channels]
            rx.audio_samples.append(mono.copy())
            # Keep about 3 s of audio for the spectrum.
            if len(rx.audio_samples) > 150:
                del rx.audio_samples[0]
    except MediaStreamError:
        rx.ended.append("audio")


async def consume_video(track: MediaStreamTrack, rx: Received) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            frame = await track.recv()
            rx.video_times.append(loop.time())
            size = f"{frame.width}x{frame.height}"
            rx.video_sizes[size] = rx.video_sizes.get(size, 0) + 1
            # Colour check on a sample of frames (conversion costs CPU).
            if len(rx.video_times) % 10 == 1:
                rx.video_colours.append(quadrant_colours(frame.to_ndarray(format="rgb24")))
    except MediaStreamError:
        rx.ended.append("video")


# --------------------------------------------------------------------------
# The echo flow
# --------------------------------------------------------------------------


@dataclass
class Options:
    transport: str
    url: str
    plugin: str
    duration: float
    tone: float
    width: int
    height: int
    toggle_window: float


class EchoRun:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.events = EventLog()
        self.api: HttpTransport | WsTransport
        if opts.transport == "http":
            self.api = HttpTransport(opts.url, self.events)
        else:
            self.api = WsTransport(opts.url, self.events)
        self.summary: dict[str, Any] = {
            "client": "aiortc",
            "transport": opts.transport,
            "url": opts.url,
            "plugin": opts.plugin,
            "checks": {},
            "failures": [],
        }
        self.session: int | None = None
        self.handle: int | None = None
        self.pc: RTCPeerConnection | None = None
        self.rx = Received()
        self.tasks: list[asyncio.Task[None]] = []

    def check(self, name: str, ok: bool, detail: Any) -> bool:
        self.summary["checks"][name] = {"ok": bool(ok), "detail": detail}
        if not ok:
            self.summary["failures"].append(f"{name}: {detail}")
            log(f"FAIL {name}: {detail}")
        else:
            log(f"ok   {name}: {detail}")
        return ok

    async def call(self, janus: str, session: bool = True, handle: bool = False, **extra: Any) -> dict[str, Any]:
        body = {"janus": janus, "transaction": transaction_id(), **extra}
        reply = await self.api.request(
            body, self.session if session else None, self.handle if handle else None
        )
        return reply

    async def expect_success(self, name: str, janus: str, **kw: Any) -> dict[str, Any]:
        reply = await self.call(janus, **kw)
        if reply.get("janus") != "success":
            raise CheckFailed(f"{name}: expected success, got {json.dumps(reply)}")
        return reply

    async def run(self) -> None:
        opts = self.opts
        loop = asyncio.get_running_loop()
        await self.api.open()

        reply = await self.call("create", session=False)
        if reply.get("janus") != "success":
            raise CheckFailed(f"create: {json.dumps(reply)}")
        self.session = int(reply["data"]["id"])
        self.api.start_events(self.session)
        reply = await self.call("attach", plugin=opts.plugin)
        if reply.get("janus") != "success":
            raise CheckFailed(f"attach: {json.dumps(reply)}")
        self.handle = int(reply["data"]["id"])
        log(f"session {self.session}, handle {self.handle}")

        # No ICE servers: the default would be a public STUN server.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        audio_tx = SineTrack(opts.tone)
        video_tx = PatternTrack(opts.width, opts.height)
        pc.addTrack(audio_tx)
        pc.addTrack(video_tx)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            log(f"remote track: {track.kind}")
            if track.kind == "audio":
                self.tasks.append(asyncio.ensure_future(consume_audio(track, self.rx)))
            elif track.kind == "video":
                self.tasks.append(asyncio.ensure_future(consume_video(track, self.rx)))

        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        local_sdp = pc.localDescription.sdp
        ev_start = len(self.events.events)
        t_offer = loop.time()
        reply = await self.call(
            "message",
            handle=True,
            body={"audio": True, "video": True},
            jsep={"type": "offer", "sdp": local_sdp, "trickle": False},
        )
        if reply.get("janus") not in ("ack", "success"):
            raise CheckFailed(f"message with offer: {json.dumps(reply)}")
        _, answer_ev = await self.events.wait_for(
            lambda e: e.get("janus") == "event" and isinstance(e.get("jsep"), dict),
            10,
            ev_start,
        )
        jsep = answer_ev["jsep"]
        answer_sdp = jsep.get("sdp", "")
        self.summary["answer"] = {
            "type": jsep.get("type"),
            "plugindata": answer_ev.get("plugindata"),
            "candidates": [l for l in answer_sdp.splitlines() if l.startswith("a=candidate")],
            "ice_lite": "a=ice-lite" in answer_sdp,
            "setup": sorted({l for l in answer_sdp.splitlines() if l.startswith("a=setup")}),
            "codecs": [l for l in answer_sdp.splitlines() if l.startswith("a=rtpmap")],
            "delay_ms": round((loop.time() - t_offer) * 1000),
        }
        self.check("answer", jsep.get("type") == "answer", self.summary["answer"]["codecs"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        _, _ = await self.events.wait_for(lambda e: e.get("janus") == "webrtcup", 10, ev_start)
        t_up = loop.time()
        self.summary["webrtcup_ms"] = round((t_up - t_offer) * 1000)
        log(f"webrtcup after {self.summary['webrtcup_ms']} ms")

        # ---- streaming -------------------------------------------------
        await asyncio.sleep(opts.duration)
        t_end = loop.time()
        audio_n = self.rx.audio_between(t_up, t_end)
        video_n = self.rx.video_between(t_up, t_end)
        stream_stats = await self.inbound_stats()
        expected_audio = opts.duration / AUDIO_PTIME
        expected_video = opts.duration * VIDEO_FPS
        self.check(
            "audio_frames",
            audio_n >= 0.5 * expected_audio,
            {"received": audio_n, "sent": audio_tx.sent, "expected_at_least": int(0.5 * expected_audio)},
        )
        self.check(
            "video_frames",
            video_n >= 0.25 * expected_video,
            {"received": video_n, "sent": video_tx.sent, "expected_at_least": int(0.25 * expected_video)},
        )
        samples = np.concatenate(self.rx.audio_samples[-50:]) if self.rx.audio_samples else np.zeros(0)
        freq = dominant_frequency(samples, self.rx.audio_rate or AUDIO_RATE)
        self.check(
            "audio_tone",
            abs(freq - opts.tone) <= max(5.0, opts.tone * 0.02),
            {"dominant_hz": round(freq, 1), "sent_hz": opts.tone, "samples": int(samples.size)},
        )
        want = f"{opts.width}x{opts.height}"
        self.check(
            "video_size",
            bool(self.rx.video_sizes) and set(self.rx.video_sizes) == {want},
            {"received": self.rx.video_sizes, "sent": want},
        )
        colours_ok, colour_detail = self.colours_match()
        self.check("video_pattern", colours_ok, colour_detail)
        self.check(
            "rtp_packets",
            stream_stats.get("audio", 0) > 0 and stream_stats.get("video", 0) > 0,
            stream_stats,
        )
        sender_reports = await self.remote_sender_stats()
        self.check(
            "rtcp_sender_reports",
            sender_reports.get("audio", 0) > 0 and sender_reports.get("video", 0) > 0,
            {"packets_sent_per_last_sr": sender_reports},
        )
        media = [
            {k: e.get(k) for k in ("type", "mid", "receiving")}
            for e in self.events.events
            if e.get("janus") == "media"
        ]
        receiving = {m["type"] for m in media if m["receiving"] is True and isinstance(m["mid"], str)}
        self.check("media_events", receiving >= {"audio", "video"}, {"media": media})

        # ---- video off ---------------------------------------------------
        window = opts.toggle_window
        await self.expect_success("video:false", "message", handle=True, body={"video": False})
        await asyncio.sleep(0.5)  # packets already in flight
        t0, p0 = loop.time(), await self.inbound_stats()
        await asyncio.sleep(window)
        t1, p1 = loop.time(), await self.inbound_stats()
        v_off, a_off = self.rx.video_between(t0, t1), self.rx.audio_between(t0, t1)
        v_rtp, a_rtp = delta(p0, p1, "video"), delta(p0, p1, "audio")
        self.check(
            "video_off_stalls",
            v_off <= 1 and v_rtp <= 2,
            {"video_frames": v_off, "video_rtp_packets": v_rtp, "window_s": window},
        )
        self.check(
            "video_off_audio_continues",
            a_off >= 0.5 * window / AUDIO_PTIME and a_rtp >= 0.5 * window / AUDIO_PTIME,
            {"audio_frames": a_off, "audio_rtp_packets": a_rtp, "window_s": window},
        )

        # ---- video on ----------------------------------------------------
        # Resumption is judged on RTP packets: after the gap in sequence
        # numbers left by the pause, aiortc's jitter buffer holds decoded
        # output back until it has seen 512 further packets (it has no
        # "give up and wait for the keyframe" path as browsers do), so
        # decoded frames are only reported.
        p0 = await self.inbound_stats()
        await self.expect_success("video:true", "message", handle=True, body={"video": True})
        t0 = loop.time()
        resumed_at = None
        while loop.time() - t0 < 4.0:
            await asyncio.sleep(0.1)
            if delta(p0, await self.inbound_stats(), "video") >= 10:
                resumed_at = loop.time()
                break
        p1 = await self.inbound_stats()
        self.check(
            "video_on_resumes",
            resumed_at is not None,
            {
                "video_rtp_packets": delta(p0, p1, "video"),
                "after_ms": None if resumed_at is None else round((resumed_at - t0) * 1000),
                "decoded_frames": self.rx.video_between(t0, loop.time()),
            },
        )

        # ---- hangup ------------------------------------------------------
        ev_start = len(self.events.events)
        await self.expect_success("hangup", "hangup", handle=True)
        try:
            _, hangup_ev = await self.events.wait_for(lambda e: e.get("janus") == "hangup", 5, ev_start)
            reason = hangup_ev.get("reason")
            self.check("hangup_event", reason == "Janus API", {"reason": reason})
        except CheckFailed as e:
            self.check("hangup_event", False, str(e))
        await asyncio.sleep(0.5)
        t0, p0 = loop.time(), await self.inbound_stats()
        await asyncio.sleep(window)
        t1, p1 = loop.time(), await self.inbound_stats()
        a_h, v_h = self.rx.audio_between(t0, t1), self.rx.video_between(t0, t1)
        rtp_h = delta(p0, p1, "audio") + delta(p0, p1, "video")
        self.check(
            "hangup_media_stops",
            a_h == 0 and v_h == 0 and rtp_h == 0,
            {"audio_frames": a_h, "video_frames": v_h, "rtp_packets": rtp_h},
        )

        # ---- detach, destroy ---------------------------------------------
        ev_start = len(self.events.events)
        await self.expect_success("detach", "detach", handle=True)
        try:
            await self.events.wait_for(lambda e: e.get("janus") == "detached", 5, ev_start)
            self.check("detached_event", True, "received")
        except CheckFailed as e:
            self.check("detached_event", False, str(e))
        await self.expect_success("destroy", "destroy")
        self.check("destroy", True, "success")
        self.session = None

    def colours_match(self) -> tuple[bool, Any]:
        if not self.rx.video_colours:
            return False, "no decoded frame sampled"
        # Judge the last sampled frame (the first ones may still be converging).
        got = self.rx.video_colours[-1]
        worst = max(abs(g - w) for gq, wq in zip(got, QUADRANTS) for g, w in zip(gq, wq))
        return worst <= COLOUR_TOLERANCE, {"quadrants": got, "sent": QUADRANTS, "max_diff": worst}

    async def inbound_stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.pc is None:
            return out
        report = await self.pc.getStats()
        for stat in report.values():
            if getattr(stat, "type", "") == "inbound-rtp":
                out[stat.kind] = out.get(stat.kind, 0) + int(stat.packetsReceived)
        return out

    async def remote_sender_stats(self) -> dict[str, int]:
        """Per kind, the packet count of the server's last RTCP sender report."""
        out: dict[str, int] = {}
        if self.pc is None:
            return out
        report = await self.pc.getStats()
        for stat in report.values():
            if getattr(stat, "type", "") == "remote-outbound-rtp":
                out[stat.kind] = out.get(stat.kind, 0) + int(stat.packetsSent)
        return out

    async def cleanup(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            try:
                await asyncio.wait_for(self.call("destroy"), 5)
            except Exception as e:  # noqa: BLE001 - best effort after a failure
                log(f"cleanup destroy failed: {e!r}")
        await self.api.close()


async def main_async(opts: Options) -> int:
    run = EchoRun(opts)
    started = time.monotonic()
    try:
        await asyncio.wait_for(run.run(), 60)
    except CheckFailed as e:
        run.summary["failures"].append(str(e))
        log(f"FAIL {e}")
    except asyncio.TimeoutError:
        run.summary["failures"].append("the whole flow took more than 60 s")
    except Exception as e:  # noqa: BLE001 - any error fails the run, reported in the summary
        run.summary["failures"].append(f"error: {e!r}")
        log(f"ERROR {e!r}")
    finally:
        await run.cleanup()
    run.summary["events"] = [e.get("janus") for e in run.events.events]
    run.summary["elapsed_s"] = round(time.monotonic() - started, 2)
    run.summary["ok"] = not run.summary["failures"]
    print(json.dumps(run.summary, indent=1))
    return 0 if run.summary["ok"] else 1


def parse_args(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transport", choices=("http", "ws"), required=True)
    p.add_argument("--url", required=True, help="http://HOST:PORT/janus or ws://HOST:PORT/")
    p.add_argument("--plugin", default="janus.plugin.echojs")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of streaming before the checks")
    p.add_argument("--tone", type=float, default=440.0, help="sine frequency (Hz)")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--toggle-window", type=float, default=1.5, help="seconds observed after video:false and hangup")
    a = p.parse_args(argv)
    if a.width % 2 or a.height % 2 or a.width < 16 or a.height < 16:
        p.error("width and height must be even and at least 16")
    return Options(a.transport, a.url, a.plugin, a.duration, a.tone, a.width, a.height, a.toggle_window)


def main() -> int:
    opts = parse_args(sys.argv[1:])
    return asyncio.run(main_async(opts))


if __name__ == "__main__":
    sys.exit(main())
