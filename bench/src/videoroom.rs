//! The `videoroom` scenario's client flows: the Janus VideoRoom API
//! (`janus.plugin.videoroom`), as the Janus demo page (videoroomtest.js)
//! uses it, one PeerConnection per handle. The same flows run against jsfu
//! with `scripts/videoroom.js` and against Janus's native VideoRoom plugin.
//!
//! - Room: `{"request":"create","room":R,"publishers":M,"bitrate":0,...}`
//!   on a short-lived session; `{"request":"destroy"}` at the end.
//! - Publisher handle: `{"request":"join","ptype":"publisher","room":R}`
//!   → `joined` with its id (the feed), then `{"request":"configure",
//!   "audio":true,"video":true}` with a sendonly offer → the answer.
//! - Subscriber handle: `{"request":"join","ptype":"subscriber","room":R,
//!   "streams":[{"feed":ID}]}` (the current form; Janus logs the legacy
//!   `"feed":ID` as deprecated) → `attached` with the server's offer; the
//!   peer answers it (recvonly) and sends `{"request":"start"}` with the
//!   answer.
//!
//! Two layouts: M publishers with N subscribers each, every handle in its
//! own Janus session (viewers), or a meeting of P participants, each one
//! Janus session holding its publisher handle and P − 1 subscriber handles
//! (one per other participant), as a browser running the demo page does.
//! Subscribers join once their publisher's PeerConnection is up (both
//! servers only know a feed from then on).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::api::Client;
use crate::media::{self, Held, Plan, Setup, Shape};
use crate::peer::{self, Peer, Role, Shared};
use crate::server::Server;

/// The plugin both servers expose.
pub(crate) const PLUGIN: &str = "janus.plugin.videoroom";
/// How long the publishers may take to connect before subscribers join.
pub(crate) const PUBLISHERS_WAIT: Duration = Duration::from_secs(30);
/// How long a subscriber keeps retrying a feed the server does not know yet
/// (error 428: its publisher's PeerConnection is not up on the server side).
const FEED_WAIT: Duration = Duration::from_secs(5);
/// The VideoRoom error code for an unknown feed.
const NO_SUCH_FEED: i64 = 428;

/// The room the scenario uses, distinct per harness process (a server given
/// with `--url` may hold other rooms).
pub(crate) fn room_id() -> u64 {
    1_000_000 + u64::from(std::process::id())
}

/// The plugin data of a VideoRoom reply, or an error naming the VideoRoom
/// error (`error_code`, `error`) it carries instead.
fn data(reply: &Value) -> Result<&Value> {
    let data = &reply["plugindata"]["data"];
    if let Some(code) = data["error_code"].as_i64() {
        return Err(VideoRoomError {
            code,
            text: data["error"].as_str().unwrap_or_default().to_owned(),
        }
        .into());
    }
    if data.is_null() {
        bail!("no plugin data in {reply}");
    }
    Ok(data)
}

/// An error answer of the VideoRoom plugin.
#[derive(Debug)]
struct VideoRoomError {
    code: i64,
    text: String,
}

impl std::fmt::Display for VideoRoomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VideoRoom error {}: {}", self.code, self.text)
    }
}

impl std::error::Error for VideoRoomError {}

/// A Janus API connection of the plan's transport with a new session.
fn connect(
    server: &Server,
    plan: &Plan,
    http: &reqwest::blocking::Client,
) -> Result<(Client, u64)> {
    let mut client = Client::connect(plan.common.transport, http, &server.http, &server.ws)?;
    let session = client.create()?;
    Ok((client, session))
}

/// A Janus API connection with a new session, for a handle's setup.
pub(crate) fn open(setup: &Setup<'_>) -> Result<(Client, u64)> {
    connect(setup.server, setup.plan, setup.http)
}

/// Hand a peer to the next worker thread.
fn deliver(setup: &Setup<'_>, peer: Peer) -> Result<()> {
    media::deliver(setup.senders, setup.next_worker, peer)
}

/// Keep a session alive (keepalives) until the run's teardown.
pub(crate) fn hold(setup: &Setup<'_>, client: Client, session: u64) {
    if let Ok(mut list) = setup.held.lock() {
        list.push(Held { client, session });
    }
}

/// Send one synchronous room request on a short-lived session.
fn room_request(
    server: &Server,
    plan: &Plan,
    http: &reqwest::blocking::Client,
    body: Value,
) -> Result<Value> {
    let (mut client, session) = connect(server, plan, http)?;
    let result = client
        .attach(session, &plan.common.plugin)
        .and_then(|handle| client.message(session, handle, body, None));
    let _ = client.destroy(session);
    let reply = result?;
    data(&reply).cloned()
}

/// Create the room for `publishers` publishers, with no bitrate cap and no
/// periodic keyframe requests.
pub(crate) fn create_room(setup: &Setup<'_>, publishers: u64) -> Result<()> {
    let room = room_id();
    let created = room_request(
        setup.server,
        setup.plan,
        setup.http,
        json!({
            "request": "create",
            "room": room,
            "description": "jsfu-bench",
            "publishers": publishers.max(1),
            "bitrate": 0,
            "fir_freq": 0,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "permanent": false,
        }),
    )
    .context("creating the room")?;
    if created["videoroom"] != "created" || created["room"] != json!(room) {
        bail!("creating room {room}: unexpected reply {created}");
    }
    Ok(())
}

/// Destroy the scenario's room (best effort: the server may be gone).
pub(crate) fn destroy_room(server: &Server, plan: &Plan) {
    let Ok(http) = Client::http_client() else {
        return;
    };
    if let Err(e) = room_request(
        server,
        plan,
        &http,
        json!({"request": "destroy", "room": room_id(), "permanent": false}),
    ) {
        eprintln!("[bench] destroying the room: {e:#}");
    }
}

/// Attach a publisher handle in `session`, join the room, publish audio and
/// video; hands the peer to a worker and returns the feed id.
fn publish(setup: &Setup<'_>, client: &mut Client, session: u64, index: u64) -> Result<u64> {
    publish_with(setup, client, session, index, |started| {
        Peer::offer(Role::Publisher, started)
    })
}

/// [`publish`] with the peer and offer `make` returns (given when the setup
/// began).
pub(crate) fn publish_with(
    setup: &Setup<'_>,
    client: &mut Client,
    session: u64,
    index: u64,
    make: impl FnOnce(Instant) -> Result<(Peer, String)>,
) -> Result<u64> {
    let started = Instant::now();
    let handle = client.attach(session, &setup.plan.common.plugin)?;
    let joined = client.message(
        session,
        handle,
        json!({
            "request": "join",
            "ptype": "publisher",
            "room": room_id(),
            "display": format!("bench-{index}"),
        }),
        None,
    )?;
    let joined_data = data(&joined).context("joining as a publisher")?;
    if joined_data["videoroom"] != "joined" {
        bail!("join as a publisher: expected \"joined\", got {joined}");
    }
    let feed = joined_data["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("the joined event names no numeric id: {joined}"))?;
    let (mut peer, offer) = make(started)?;
    let configured = client.message(
        session,
        handle,
        json!({"request": "configure", "audio": true, "video": true}),
        Some(json!({"type": "offer", "sdp": offer})),
    )?;
    data(&configured).context("configuring the publisher")?;
    peer.accept_answer(&peer::answer_sdp(&configured)?)?;
    deliver(setup, peer)?;
    Ok(feed)
}

/// Attach a subscriber handle to `feed` in `session`: join, answer the
/// server's offer, start; hands the peer to a worker. `started` is when its
/// setup began (setup time is measured from there to DTLS connected).
fn subscribe(
    setup: &Setup<'_>,
    client: &mut Client,
    session: u64,
    feed: u64,
    started: Instant,
) -> Result<()> {
    subscribe_with(
        setup,
        client,
        session,
        feed,
        started,
        None,
        Peer::answer_offer,
    )
}

/// [`subscribe`] with the peer and answer `make` returns for the server's
/// offer. With `substream`, asks for that simulcast layer in the join's
/// stream (`streams:[{feed, substream}]`, as Janus 1.x clients do).
pub(crate) fn subscribe_with(
    setup: &Setup<'_>,
    client: &mut Client,
    session: u64,
    feed: u64,
    started: Instant,
    substream: Option<u8>,
    make: impl FnOnce(&str, Instant) -> Result<(Peer, String)>,
) -> Result<()> {
    let handle = client.attach(session, &setup.plan.common.plugin)?;
    let mut stream = json!({"feed": feed});
    if let Some(layer) = substream {
        stream["substream"] = json!(layer);
    }
    let body = json!({
        "request": "join",
        "ptype": "subscriber",
        "room": room_id(),
        "streams": [stream],
    });
    let give_up = Instant::now() + FEED_WAIT;
    let attached = loop {
        let reply = client.message(session, handle, body.clone(), None)?;
        match data(&reply) {
            Ok(_) => break reply,
            Err(e)
                if e.downcast_ref::<VideoRoomError>()
                    .is_some_and(|v| v.code == NO_SUCH_FEED)
                    && Instant::now() < give_up =>
            {
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e.context(format!("joining as a subscriber of {feed}"))),
        }
    };
    let jsep = &attached["jsep"];
    if jsep["type"] != "offer" {
        bail!("join as a subscriber: expected an offer, got {attached}");
    }
    let offer = jsep["sdp"]
        .as_str()
        .ok_or_else(|| anyhow!("offer without SDP"))?;
    let (peer, answer) = make(offer, started)?;
    let reply = client.message(
        session,
        handle,
        json!({"request": "start"}),
        Some(json!({"type": "answer", "sdp": answer})),
    )?;
    data(&reply).context("starting the subscription")?;
    deliver(setup, peer)
}

/// Grow the room from `load` to `target` subscribers per publisher (the
/// first call also creates the room and its publishers, whose feed ids it
/// keeps in `feeds`). Returns the PeerConnections set up and the setups
/// that failed.
pub(crate) fn grow(
    setup: &Setup<'_>,
    shared: &Shared,
    feeds: &mut Vec<u64>,
    load: u64,
    target: u64,
) -> Result<(u64, u64)> {
    let Shape::VideoRoom {
        publishers,
        meeting,
        ..
    } = setup.plan.shape
    else {
        bail!("not a VideoRoom plan");
    };
    if meeting {
        if !feeds.is_empty() {
            bail!("a meeting cannot grow (no --ramp with --meeting)");
        }
        return meet(setup, shared, feeds, publishers);
    }
    let mut added = 0;
    if feeds.is_empty() {
        create_room(setup, publishers)?;
        for i in 0..publishers {
            let (mut client, session) = open(setup)?;
            let feed = publish(setup, &mut client, session, i);
            hold(setup, client, session);
            feeds.push(feed.context("setting up a publisher")?);
        }
        added += publishers;
        media::wait_connected(shared, publishers, 0, PUBLISHERS_WAIT);
    }
    let list = feeds.clone();
    let n = target.saturating_sub(load) * list.len() as u64;
    let failed = media::parallel(setup.plan.common.setup_concurrency, n, "VideoRoom", |i| {
        let feed = list[(i % list.len() as u64) as usize];
        let started = Instant::now();
        let (mut client, session) = open(setup)?;
        let result = subscribe(setup, &mut client, session, feed, started);
        hold(setup, client, session);
        result
    });
    if failed == n && n > 0 {
        bail!("every subscriber setup failed ({n})");
    }
    Ok((added + n, failed))
}

/// A meeting of `participants`: each publishes, then subscribes to every
/// other one on handles of its own session.
fn meet(
    setup: &Setup<'_>,
    shared: &Shared,
    feeds: &mut Vec<u64>,
    participants: u64,
) -> Result<(u64, u64)> {
    create_room(setup, participants)?;
    let threads = setup.plan.common.setup_concurrency;
    let slots = Mutex::new(Vec::new());
    let failed = media::parallel(threads, participants, "VideoRoom", |i| {
        let (mut client, session) = open(setup)?;
        let feed = publish(setup, &mut client, session, i);
        if let Ok(mut s) = slots.lock() {
            s.push((i, client, session, feed.as_ref().ok().copied()));
        }
        feed.map(drop)
    });
    let mut slots = slots
        .into_inner()
        .map_err(|_| anyhow!("a setup thread panicked"))?;
    slots.sort_by_key(|s| s.0);
    if failed > 0 || slots.len() as u64 != participants {
        for (_, client, session, _) in slots {
            hold(setup, client, session);
        }
        bail!("{failed} of {participants} participants could not publish");
    }
    let mut ids: Vec<u64> = Vec::new();
    let mut sessions: Vec<Mutex<(Client, u64)>> = Vec::new();
    for (_, client, session, feed) in slots {
        ids.push(feed.ok_or_else(|| anyhow!("a participant has no feed"))?);
        sessions.push(Mutex::new((client, session)));
    }
    feeds.extend(&ids);
    media::wait_connected(shared, participants, 0, PUBLISHERS_WAIT);
    let others = participants.saturating_sub(1);
    let total = participants * others;
    let failed = AtomicU64::new(0);
    let broken = media::parallel(threads, participants, "VideoRoom", |i| {
        let slot = &sessions[i as usize];
        let mut guard = slot
            .lock()
            .map_err(|_| anyhow!("a setup thread panicked"))?;
        let (client, session) = &mut *guard;
        for (j, &feed) in ids.iter().enumerate() {
            if j as u64 == i {
                continue;
            }
            if let Err(e) = subscribe(setup, client, *session, feed, Instant::now()) {
                if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("[bench] participant {i} subscribing to {feed}: {e:#}");
                }
            }
        }
        Ok(())
    });
    for slot in sessions {
        if let Ok((client, session)) = slot.into_inner() {
            hold(setup, client, session);
        }
    }
    let failed = failed.load(Ordering::Relaxed) + broken * others;
    if failed == total && total > 0 {
        bail!("every subscriber setup failed ({total})");
    }
    Ok((participants + total, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_the_plugin_are_recognised() {
        let ok = json!({"plugindata": {"data": {"videoroom": "joined", "id": 7}}});
        assert_eq!(data(&ok).expect("a joined event")["id"], 7);
        let err = json!({"plugindata": {"data": {"videoroom": "event", "error_code": 428, "error": "No such feed (9)"}}});
        let e = data(&err).expect_err("an error event");
        let v = e
            .downcast_ref::<VideoRoomError>()
            .expect("a VideoRoom error");
        assert_eq!(v.code, NO_SUCH_FEED);
        assert!(e.to_string().contains("No such feed"), "{e}");
        assert!(data(&json!({"janus": "success"})).is_err());
    }
}
