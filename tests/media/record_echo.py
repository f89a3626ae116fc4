#!/usr/bin/env python3
"""Recording client: a real WebRTC peer (aiortc) against an echo script that
records on request (Debian's ``echotest.js``: ``{"record": true,
"filename": BASE}`` writes ``/tmp/BASE-audio.mjr``, ``-video.mjr`` and
``-data.mjr``; ``{"record": false}`` stops).

It creates a session, attaches ``janus.plugin.echojs``, offers an Opus audio
track, a VP8 video track and a data channel, waits for the answer and
``webrtcup``, starts the recording, streams for ``--seconds`` while sending
one text message on the data channel every ``--message-interval`` seconds,
then stops the recording (unless ``--no-stop``: the caller kills the server
instead, and the client just stops streaming after ``--seconds``).

A JSON summary is printed on stdout: the seconds recorded (between the
replies to the start and the stop requests), the data messages sent and
whether the data channel opened. Progress goes to stderr. Exit status 0 when
the flow completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import string
import sys
import time
import urllib.request
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

LOOPBACK = "127.0.0.1"


def only_loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    """Replacement for aioice's interface enumeration: loopback only."""
    return [LOOPBACK] if use_ipv4 else []


aioice.ice.get_host_addresses = only_loopback_host_addresses


def log(msg: str) -> None:
    print(f"[record-echo {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def transaction_id() -> str:
    return "".join(random.choice(string.ascii_letters) for _ in range(12))


class Api:
    """The Janus API over HTTP with a long-poll thread for events."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.stopped = False

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = dict(body, transaction=transaction_id())
        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=15) as resp:
            return json.loads(resp.read().decode())

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._post, path, body)

    def start_polling(self, session: int) -> None:
        loop = asyncio.get_running_loop()

        def poll() -> None:
            while not self.stopped:
                try:
                    url = f"{self.base}/{session}?maxev=10"
                    with urllib.request.urlopen(url, timeout=40) as resp:
                        payload = json.loads(resp.read().decode())
                except Exception as e:  # noqa: BLE001 - the server may be gone
                    if not self.stopped:
                        log(f"long poll ended: {e!r}")
                    return
                for item in payload if isinstance(payload, list) else [payload]:
                    if isinstance(item, dict) and item.get("janus") != "keepalive":
                        loop.call_soon_threadsafe(self.events.put_nowait, item)

        import threading

        threading.Thread(target=poll, name="long-poll", daemon=True).start()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    api = Api(args.url)
    session = (await api.post("", {"janus": "create"}))["data"]["id"]
    handle = (await api.post(f"/{session}", {"janus": "attach", "plugin": "janus.plugin.echojs"}))[
        "data"
    ]["id"]
    api.start_polling(session)
    path = f"/{session}/{handle}"

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(AudioStreamTrack())
    pc.addTrack(VideoStreamTrack())
    channel = pc.createDataChannel("JanusDataChannel")
    opened = asyncio.Event()
    channel.on("open", opened.set)

    await pc.setLocalDescription(await pc.createOffer())
    reply = await api.post(
        path,
        {
            "janus": "message",
            "body": {"audio": True, "video": True, "data": True},
            "jsep": {"type": "offer", "sdp": pc.localDescription.sdp},
        },
    )
    log(f"offer sent: {reply.get('janus')}")
    answered = up = False
    deadline = time.monotonic() + 20
    while not (answered and up):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"no answer/webrtcup (answer={answered}, up={up})")
        event = await asyncio.wait_for(api.events.get(), remaining)
        if event.get("jsep"):
            jsep = event["jsep"]
            await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type=jsep["type"]))
            answered = True
        if event.get("janus") == "webrtcup":
            up = True
    log("webrtcup")
    try:
        await asyncio.wait_for(opened.wait(), 5)
    except asyncio.TimeoutError:
        log("the data channel did not open: recording audio and video only")
    # Let media settle before recording.
    await asyncio.sleep(1.0)

    reply = await api.post(path, {"janus": "message", "body": {"record": True, "filename": args.filename}})
    started = time.monotonic()
    log(f"recording started: {reply.get('janus')}")
    sent: list[str] = []
    next_message = started + args.message_interval / 2
    while time.monotonic() - started < args.seconds:
        if opened.is_set() and time.monotonic() >= next_message:
            text = f"message {len(sent) + 1}"
            channel.send(text)
            sent.append(text)
            next_message += args.message_interval
        await asyncio.sleep(0.05)
    stopped_at = time.monotonic()
    if not args.no_stop:
        reply = await api.post(path, {"janus": "message", "body": {"record": False}})
        stopped_at = time.monotonic()
        log(f"recording stopped: {reply.get('janus')}")
        await asyncio.sleep(0.5)
    api.stopped = True
    summary = {
        "recorded_seconds": stopped_at - started,
        "data_channel_open": opened.is_set(),
        "messages": sent,
    }
    if not args.no_stop:
        await api.post(path, {"janus": "hangup"})
        await api.post(f"/{session}", {"janus": "destroy"})
    await pc.close()
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="Janus API base URL (http://host:port/janus)")
    p.add_argument("--filename", required=True, help="recording file name base (in /tmp)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to record")
    p.add_argument("--message-interval", type=float, default=1.0, help="seconds between data messages")
    p.add_argument("--no-stop", action="store_true", help="do not stop the recording (the server gets killed)")
    args = p.parse_args()
    try:
        summary = asyncio.run(asyncio.wait_for(run(args), args.seconds + 60))
    except Exception as e:  # noqa: BLE001 - reported as a failed run
        log(f"failed: {e!r}")
        print(json.dumps({"error": repr(e)}))
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
