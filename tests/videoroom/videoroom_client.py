#!/usr/bin/env python3
"""VideoRoom API test client: real WebRTC peers (aiortc) against a server
speaking the Janus VideoRoom API (package ``janus.plugin.videoroom``) over
WebSocket.

Flow: create a room (and the error cases of the room requests); publishers
Alice and Bob join and publish (Opus tone + VP8 pattern); the ``joined`` and
``publishers`` events carry what the documentation shows; a subscriber
handle joins Alice's feed, gets the server's offer, answers, starts and
receives media (inbound packet counts rise); configure/pause/start on the
subscriber; error cases (already joined, no such feed, wrong pin, publishers
limit, publish twice, unknown request, bad types); Bob unpublishes and leaves
(Alice sees ``unpublished`` and ``leaving``); a third participant is kicked;
the room is destroyed (Alice sees ``destroyed``).

ICE stays on 127.0.0.1 (the aioice patch of ``tests/media/echo_client.py``,
whose transport and media classes this client reuses). A JSON summary
``{"ok", "checks": {name: {"ok", "detail"}}, "failures"}`` goes to stdout;
the exit status is 0 when every check passed. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "media"))

from echo_client import (  # noqa: E402 - after the path set-up
    CheckFailed,
    EventLog,
    PatternTrack,
    SineTrack,
    WsTransport,
    log,
    transaction_id,
)
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402

PLUGIN = "janus.plugin.videoroom"


def vr(event: dict[str, Any]) -> dict[str, Any]:
    """The plugin data of an event or success reply ({} if none)."""
    return ((event.get("plugindata") or {}).get("data")) or {}


class Run:
    def __init__(self, url: str, rec_dir: str | None) -> None:
        self.rec_dir = rec_dir
        self.events = EventLog()
        self.api = WsTransport(url, self.events)
        self.session = 0
        self.checks: dict[str, dict[str, Any]] = {}
        self.failures: list[str] = []
        self.pcs: list[RTCPeerConnection] = []
        self.names: dict[int, str] = {}
        self.tasks: list[asyncio.Future[None]] = []

    def check(self, name: str, ok: bool, detail: Any = None) -> bool:
        self.checks[name] = {"ok": bool(ok), "detail": detail}
        if not ok:
            self.failures.append(f"{name}: {json.dumps(detail, default=str)[:800]}")
            log(f"FAIL {name}: {detail}")
        else:
            log(f"ok   {name}")
        return ok

    async def call(self, janus: str, handle: int | None = None, **extra: Any) -> dict[str, Any]:
        body = {"janus": janus, "transaction": transaction_id(), **extra}
        return await self.api.request(body, self.session or None, handle)

    async def attach(self, name: str) -> int:
        reply = await self.call("attach", plugin=PLUGIN)
        if reply.get("janus") != "success":
            raise CheckFailed(f"attach: {reply}")
        handle = int(reply["data"]["id"])
        self.names[handle] = name
        return handle

    def transcript(self) -> list[dict[str, Any]]:
        """Every plugin event, in arrival order, by handle name (for comparing servers)."""
        out = []
        for e in self.events.events:
            if e.get("janus") != "event":
                continue
            item: dict[str, Any] = {"to": self.names.get(e.get("sender"), "?"), "data": vr(e)}
            if isinstance(e.get("jsep"), dict):
                item["jsep"] = e["jsep"].get("type")
            out.append(item)
        return out

    async def sync(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous request: the plugin data of the success reply."""
        reply = await self.call("message", handle, body=body)
        if reply.get("janus") != "success":
            raise CheckFailed(f"{body}: {reply}")
        return vr(reply)

    async def request(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """An asynchronous request: ack, then the event with its transaction."""
        tr = transaction_id()
        msg: dict[str, Any] = {"janus": "message", "transaction": tr, "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        start = len(self.events.events)
        reply = await self.api.request(msg, self.session, handle)
        if reply.get("janus") == "success":
            return reply
        if reply.get("janus") != "ack":
            raise CheckFailed(f"{body}: {reply}")
        _, event = await self.events.wait_for(
            lambda e: e.get("transaction") == tr and e.get("janus") == "event", 15, start
        )
        return event

    async def wait_event(self, handle: int, pred: Any, start: int, timeout: float = 10) -> dict[str, Any]:
        _, event = await self.events.wait_for(
            lambda e: e.get("sender") == handle and e.get("janus") == "event" and pred(vr(e)),
            timeout,
            start,
        )
        return vr(event)

    def publisher_pc(self, data: bool = False) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver(SineTrack(440.0), direction="sendonly")
        pc.addTransceiver(PatternTrack(320, 240), direction="sendonly")
        if data:
            channel = pc.createDataChannel("JanusDataChannel")

            async def chatter() -> None:
                n = 0
                while channel.readyState != "closed":
                    if channel.readyState == "open":
                        channel.send(f"hello {n}")
                        n += 1
                    await asyncio.sleep(0.1)

            self.tasks.append(asyncio.ensure_future(chatter()))
        self.pcs.append(pc)
        return pc

    async def publish(self, handle: int, name: str, data: bool = False) -> dict[str, Any]:
        pc = self.publisher_pc(data)
        await pc.setLocalDescription(await pc.createOffer())
        start = len(self.events.events)
        event = await self.request(
            handle,
            {"request": "configure", "audio": True, "video": True},
            {"type": "offer", "sdp": pc.localDescription.sdp},
        )
        data = vr(event)
        jsep = event.get("jsep") or {}
        self.check(
            f"{name}_configured",
            data.get("configured") == "ok"
            and jsep.get("type") == "answer"
            and data.get("audio_codec") == "opus"
            and data.get("video_codec") == "vp8",
            data,
        )
        await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="answer"))
        await self.events.wait_for(
            lambda e: e.get("janus") == "webrtcup" and e.get("sender") == handle, 15, start
        )
        return data

    async def inbound(self, pc: RTCPeerConnection) -> dict[str, int]:
        out: dict[str, int] = {}
        for stat in (await pc.getStats()).values():
            if getattr(stat, "type", "") == "inbound-rtp":
                out[stat.kind] = out.get(stat.kind, 0) + int(stat.packetsReceived)
        return out

    async def error_of(self, handle: int, body: dict[str, Any], sync: bool) -> tuple[Any, Any]:
        if sync:
            data = await self.sync(handle, body)
        else:
            data = vr(await self.request(handle, body))
        return data.get("error_code"), data.get("error")

    async def run(self) -> None:
        await self.api.open()
        reply = await self.call("create")
        self.session = int(reply["data"]["id"])
        self.api.start_events(self.session)
        admin = await self.attach("admin")
        room = random.randint(100000, 999999)
        secret = "s3cret"

        # ---- room management ---------------------------------------------
        created = await self.sync(admin, {
            "request": "create", "room": room, "description": "Test room", "secret": secret,
            "publishers": 3, "bitrate": 256000, "fir_freq": 5, "notify_joining": True,
            "audiocodec": "opus", "videocodec": "vp8,h264",
            **({"record": True, "rec_dir": self.rec_dir} if self.rec_dir else {}),
        })
        self.check("create", created == {"videoroom": "created", "room": room, "permanent": False}, created)
        code, text = await self.error_of(admin, {"request": "create", "room": room}, True)
        self.check("create_exists_427", code == 427, [code, text])
        code, text = await self.error_of(admin, {"request": "create", "room": "x"}, True)
        self.check("create_bad_type_430", code == 430, [code, text])
        exists = await self.sync(admin, {"request": "exists", "room": room})
        self.check("exists", exists.get("exists") is True and exists.get("videoroom") == "success", exists)
        exists = await self.sync(admin, {"request": "exists", "room": room + 1})
        self.check("exists_false", exists.get("exists") is False, exists)
        listed = await self.sync(admin, {"request": "list"})
        mine = [r for r in listed.get("list", []) if r.get("room") == room]
        self.check(
            "list",
            len(mine) == 1 and mine[0].get("description") == "Test room"
            and mine[0].get("max_publishers") == 3 and mine[0].get("videocodec") == "vp8,h264",
            mine,
        )
        code, text = await self.error_of(admin, {"room": room}, True)
        self.check("missing_request_429", code == 429, [code, text])
        code, text = await self.error_of(admin, {"request": "nonsense"}, True)
        self.check("unknown_request_423", code == 423, [code, text])
        code, text = await self.error_of(admin, {"request": "listparticipants", "room": room + 1}, True)
        self.check("no_such_room_426", code == 426, [code, text])
        code, text = await self.error_of(admin, {"request": "destroy", "room": room, "secret": "bad"}, True)
        self.check("wrong_secret_433", code == 433, [code, text])
        edited = await self.sync(admin, {"request": "edit", "room": room, "secret": secret,
                                          "new_description": "Edited room"})
        self.check("edit", edited.get("videoroom") == "edited", edited)

        # ---- Alice joins and publishes -------------------------------------
        alice = await self.attach("alice")
        joined = vr(await self.request(alice, {"request": "join", "ptype": "publisher", "room": room,
                                                "display": "Alice"}))
        alice_id = joined.get("id")
        self.check(
            "alice_joined",
            joined.get("videoroom") == "joined" and joined.get("room") == room
            and isinstance(alice_id, int) and isinstance(joined.get("private_id"), int)
            and joined.get("publishers") == [] and joined.get("description") == "Edited room",
            joined,
        )
        code, text = await self.error_of(alice, {"request": "join", "ptype": "publisher", "room": room}, False)
        self.check("already_joined_425", code == 425, [code, text])
        mark = len(self.events.events)
        await self.publish(alice, "alice", data=True)

        # ---- Bob joins (sees Alice's stream descriptions) and publishes -----
        bob = await self.attach("bob")
        joined = vr(await self.request(bob, {"request": "join", "ptype": "publisher", "room": room,
                                              "display": "Bob"}))
        bob_id = joined.get("id")
        pubs = joined.get("publishers") or []
        types = sorted(s.get("type") for s in (pubs[0].get("streams") if pubs else []))
        self.check(
            "bob_joined_sees_alice",
            len(pubs) == 1 and pubs[0].get("id") == alice_id and pubs[0].get("display") == "Alice"
            and types == ["audio", "data", "video"] and pubs[0].get("video_codec") == "vp8",
            joined,
        )
        joining = await self.wait_event(alice, lambda d: "joining" in d, mark)
        self.check("alice_sees_joining", joining.get("joining", {}).get("id") == bob_id, joining)
        mark = len(self.events.events)
        await self.publish(bob, "bob")
        event = await self.wait_event(alice, lambda d: "publishers" in d, mark)
        self.check(
            "alice_sees_bob_published",
            event.get("videoroom") == "event" and event["publishers"][0].get("id") == bob_id
            and event["publishers"][0].get("display") == "Bob"
            and len(event["publishers"][0].get("streams", [])) == 2,
            event,
        )
        code, text = await self.error_of(bob, {"request": "publish"}, False)
        self.check("already_published_434", code == 434, [code, text])

        # ---- subscriber to Alice ------------------------------------------
        sub = await self.attach("subscriber")
        code, text = await self.error_of(
            sub, {"request": "join", "ptype": "subscriber", "room": room, "streams": [{"feed": 4242}]}, False)
        self.check("no_such_feed_428", code == 428, [code, text])
        code, text = await self.error_of(sub, {"request": "join", "ptype": "subscriber", "room": room}, False)
        self.check("missing_feed_429", code == 429, [code, text])
        code, text = await self.error_of(sub, {"request": "start"}, False)
        self.check("join_first_424", code == 424, [code, text])
        attached_ev = await self.request(sub, {"request": "join", "ptype": "subscriber", "room": room,
                                               "streams": [{"feed": alice_id}]})
        attached = vr(attached_ev)
        offer = attached_ev.get("jsep") or {}
        self.check(
            "subscriber_attached",
            attached.get("videoroom") == "attached" and attached.get("room") == room
            and offer.get("type") == "offer"
            and sorted(s.get("type") for s in attached.get("streams", [])) == ["audio", "data", "video"]
            and all(s.get("feed_id") == alice_id for s in attached.get("streams", []) if s.get("type") != "data"),
            attached,
        )
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        got: dict[str, int] = {}
        texts: list[str] = []

        def on_message(m: Any) -> None:
            texts.append(m if isinstance(m, str) else repr(m))

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            channel.on("message", on_message)

        # As janus.js does when an offer has data: open the default channel.
        own = pc.createDataChannel("JanusDataChannel")
        own.on("message", on_message)

        @pc.on("track")
        def on_track(track: Any) -> None:
            got[track.kind] = 0

            async def drain() -> None:
                try:
                    while True:
                        await track.recv()
                        got[track.kind] += 1
                except Exception:  # noqa: BLE001 - the track ended
                    return

            asyncio.ensure_future(drain())

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        mark = len(self.events.events)
        started = vr(await self.request(sub, {"request": "start", "room": room},
                                        {"type": "answer", "sdp": pc.localDescription.sdp}))
        self.check("subscriber_started", started.get("started") == "ok", started)
        await self.events.wait_for(lambda e: e.get("janus") == "webrtcup" and e.get("sender") == sub, 15, mark)
        await asyncio.sleep(2)
        p0 = await self.inbound(pc)
        await asyncio.sleep(2)
        p1 = await self.inbound(pc)
        self.check(
            "subscriber_receives_media",
            p1.get("audio", 0) - p0.get("audio", 0) > 50 and p1.get("video", 0) - p0.get("video", 0) > 20
            and got.get("audio", 0) > 0 and got.get("video", 0) > 0,
            {"before": p0, "after": p1, "frames": got},
        )
        self.check(
            "subscriber_receives_data",
            len(texts) >= 5 and all(t.startswith("hello ") for t in texts),
            {"messages": len(texts), "first": texts[:3]},
        )
        conf = vr(await self.request(sub, {"request": "configure", "video": False}))
        self.check("subscriber_configured", conf.get("configured") == "ok", conf)
        await asyncio.sleep(0.5)
        q0 = await self.inbound(pc)
        await asyncio.sleep(1.5)
        q1 = await self.inbound(pc)
        self.check(
            "subscriber_video_off",
            q1.get("video", 0) - q0.get("video", 0) <= 2 and q1.get("audio", 0) - q0.get("audio", 0) > 20,
            {"before": q0, "after": q1},
        )
        await self.request(sub, {"request": "configure", "video": True})
        paused = vr(await self.request(sub, {"request": "pause"}))
        self.check("subscriber_paused", paused.get("paused") == "ok", paused)
        await asyncio.sleep(0.5)
        q0 = await self.inbound(pc)
        await asyncio.sleep(1.5)
        q1 = await self.inbound(pc)
        self.check("paused_stops_media", q1.get("audio", 0) - q0.get("audio", 0) <= 2, [q0, q1])
        resumed = vr(await self.request(sub, {"request": "start"}))
        await asyncio.sleep(1.5)
        q2 = await self.inbound(pc)
        self.check(
            "restart_resumes_media",
            resumed.get("started") == "ok" and q2.get("audio", 0) - q1.get("audio", 0) > 20
            and q2.get("video", 0) - q1.get("video", 0) > 5,
            {"resumed": resumed, "before": q1, "after": q2},
        )

        # ---- participants, limits and pins ---------------------------------
        parts = await self.sync(admin, {"request": "listparticipants", "room": room})
        ids = sorted((p.get("id"), p.get("publisher"), p.get("display")) for p in parts.get("participants", []))
        self.check(
            "listparticipants",
            parts.get("videoroom") == "participants"
            and ids == sorted([(alice_id, True, "Alice"), (bob_id, True, "Bob")]),
            parts,
        )
        carol = await self.attach("carol")
        joined = vr(await self.request(carol, {"request": "join", "ptype": "publisher", "room": room,
                                                "display": "Carol"}))
        carol_id = joined.get("id")
        self.check("carol_joined", joined.get("videoroom") == "joined" and len(joined.get("publishers", [])) == 2,
                   joined)
        await self.sync(admin, {"request": "edit", "room": room, "secret": secret, "new_publishers": 2})
        pc3 = self.publisher_pc()
        await pc3.setLocalDescription(await pc3.createOffer())
        full = vr(await self.request(carol, {"request": "publish"},
                                     {"type": "offer", "sdp": pc3.localDescription.sdp}))
        self.check("publishers_full_432", full.get("error_code") == 432, full)
        pinned = random.randint(100000, 999999)
        await self.sync(admin, {"request": "create", "room": pinned, "pin": "1234"})
        dave = await self.attach("dave")
        code, text = await self.error_of(
            dave, {"request": "join", "ptype": "publisher", "room": pinned, "pin": "0000"}, False)
        self.check("wrong_pin_433", code == 433, [code, text])
        code, text = await self.error_of(
            dave, {"request": "join", "ptype": "publisher", "room": room + 7}, False)
        self.check("join_no_such_room_426", code == 426, [code, text])
        code, text = await self.error_of(
            dave, {"request": "join", "ptype": "publisher", "room": room, "id": alice_id}, False)
        self.check("id_exists_436", code == 436, [code, text])

        # ---- Bob unpublishes and leaves ------------------------------------
        mark = len(self.events.events)
        unpub = vr(await self.request(bob, {"request": "unpublish"}))
        self.check("bob_unpublished_ok", unpub.get("unpublished") == "ok", unpub)
        event = await self.wait_event(alice, lambda d: "unpublished" in d, mark)
        self.check("alice_sees_unpublished", event.get("unpublished") == bob_id and event.get("room") == room,
                   event)
        code, text = await self.error_of(bob, {"request": "unpublish"}, False)
        self.check("not_published_435", code == 435, [code, text])
        if self.rec_dir:
            # The room records: each publisher got audio and video files.
            files = sorted(os.listdir(self.rec_dir))
            sizes = {f: os.path.getsize(os.path.join(self.rec_dir, f)) for f in files}
            prefix = f"videoroom-{room}-user-{bob_id}-"
            wanted = [f for f in files if f.startswith(prefix)]
            self.check(
                "recorded",
                any("-audio" in f and f.endswith(".mjr") and sizes[f] > 1000 for f in wanted)
                and any("-video" in f and f.endswith(".mjr") and sizes[f] > 1000 for f in wanted),
                sizes,
            )
        mark = len(self.events.events)
        left = vr(await self.request(bob, {"request": "leave"}))
        self.check("bob_leaving_ok", left.get("leaving") == "ok", left)
        event = await self.wait_event(alice, lambda d: "leaving" in d, mark)
        self.check("alice_sees_leaving", event.get("leaving") == bob_id, event)

        # ---- Alice unpublishes: her subscriber is told ----------------------
        mark = len(self.events.events)
        unpub = vr(await self.request(alice, {"request": "unpublish"}))
        _, told_ev = await self.events.wait_for(
            lambda e: e.get("sender") == sub and e.get("janus") == "event", 10, mark)
        told = vr(told_ev)
        reoffer = told_ev.get("jsep") or {}
        self.check(
            "subscriber_told_feed_gone",
            unpub.get("unpublished") == "ok" and told.get("videoroom") == "updated"
            and all(s.get("active") is False for s in told.get("streams", []) if s.get("type") != "data")
            and reoffer.get("type") == "offer",
            told,
        )
        # Janus clients answer a renegotiation offer with "start" and the answer.
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reoffer["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        restarted = vr(await self.request(sub, {"request": "start"},
                                          {"type": "answer", "sdp": pc.localDescription.sdp}))
        self.check("renegotiation_answered", restarted.get("started") == "ok", restarted)

        # ---- kick Carol, destroy the room ----------------------------------
        mark = len(self.events.events)
        code, text = await self.error_of(admin, {"request": "kick", "room": room, "secret": secret, "id": 77}, True)
        self.check("kick_no_such_user_428", code == 428, [code, text])
        kicked = await self.sync(admin, {"request": "kick", "room": room, "secret": secret, "id": carol_id})
        self.check("kick", kicked == {"videoroom": "success"}, kicked)
        event = await self.wait_event(carol, lambda d: d.get("leaving") == "ok", mark)
        self.check("carol_kicked", event.get("reason") == "kicked", event)
        event = await self.wait_event(alice, lambda d: "kicked" in d, mark)
        self.check("alice_sees_kicked", event.get("kicked") == carol_id, event)
        mark = len(self.events.events)
        destroyed = await self.sync(admin, {"request": "destroy", "room": room, "secret": secret})
        self.check("destroy", destroyed.get("videoroom") == "destroyed" and destroyed.get("room") == room,
                   destroyed)
        event = await self.wait_event(alice, lambda d: d.get("videoroom") == "destroyed", mark)
        self.check("alice_sees_destroyed", event.get("room") == room, event)
        exists = await self.sync(admin, {"request": "exists", "room": room})
        self.check("gone_after_destroy", exists.get("exists") is False, exists)
        reply = await self.call("destroy")
        self.check("session_destroy", reply.get("janus") == "success", reply)

    async def publish_only(self, room: int, display: str, token: str | None, seconds: float) -> None:
        """Join `room` as a publisher, publish, print {"feed": id} on stdout
        once the PeerConnection is up, and keep sending for `seconds`."""
        await self.api.open()
        reply = await self.call("create")
        self.session = int(reply["data"]["id"])
        handle = await self.attach(display)
        body: dict[str, Any] = {"request": "join", "ptype": "publisher", "room": room, "display": display}
        if token:
            body["token"] = token
        joined = vr(await self.request(handle, body))
        if joined.get("videoroom") != "joined":
            raise CheckFailed(f"join: {joined}")
        await self.publish(handle, "publisher")
        print(json.dumps({"feed": joined["id"]}), flush=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            await asyncio.sleep(0.5)
            # Keep the Janus session alive.
            await self.call("keepalive")

    async def cleanup(self) -> None:
        for task in self.tasks:
            task.cancel()
        for pc in self.pcs:
            await pc.close()
        await self.api.close()


async def main_async(url: str, rec_dir: str | None) -> int:
    run = Run(url, rec_dir)
    try:
        await asyncio.wait_for(run.run(), 60)
    except (CheckFailed, asyncio.TimeoutError, KeyError, TypeError) as e:
        run.failures.append(f"flow aborted: {e!r}")
        log(f"aborted: {e!r}")
    finally:
        await run.cleanup()
    ok = not run.failures
    summary = {"ok": ok, "checks": run.checks, "failures": run.failures, "events": run.transcript()}
    print(json.dumps(summary, indent=1, default=str))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server's WebSocket URL")
    parser.add_argument("--rec-dir", help="make the test room record into this (empty) folder")
    parser.add_argument("--publish", type=int, metavar="ROOM",
                        help="only publish into ROOM (prints {\"feed\": id} once up)")
    parser.add_argument("--display", default="Publisher", help="display name with --publish")
    parser.add_argument("--token", help="join token with --publish")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to publish with --publish")
    args = parser.parse_args()
    if args.publish is not None:
        return asyncio.run(publish_main(args))
    return asyncio.run(main_async(args.url, args.rec_dir))


async def publish_main(args: argparse.Namespace) -> int:
    run = Run(args.url, None)
    try:
        await run.publish_only(args.publish, args.display, args.token, args.seconds)
    except (CheckFailed, asyncio.TimeoutError, KeyError, TypeError) as e:
        log(f"publisher failed: {e!r}")
        return 1
    finally:
        await run.cleanup()
    return 0 if not run.failures else 1


if __name__ == "__main__":
    sys.exit(main())
