//! The `webrtc` part of the Admin API's `handle_info` (janus-api.md §8.3):
//! ICE, DTLS, negotiated extensions, congestion control and per-m-line
//! state and traffic of a handle's PeerConnection, with the key names of
//! Janus 1.x (`ice.state`, `dtls.dtls-state`, `media."0".stats.in.packets`,
//! ...). Built from what control knows: the negotiated descriptions and
//! what the shard reported (selected pair, DTLS state, periodic counters).

use std::net::SocketAddr;
use std::time::Instant;

use jsfu_route::{DtlsState, SessionStats};
use serde_json::{Map, Value, json};

use super::PcState;
use crate::media::MediaPlane;
use crate::sdp::{self, ExtensionIds, HashFunction, MediaKind, uri};

/// What the dataplane last reported about one PeerConnection.
#[derive(Debug, Default, Clone)]
pub(crate) struct PcLive {
    /// The peer address ICE selected, and when.
    pub(crate) selected: Option<(SocketAddr, Instant)>,
    /// The DTLS state and when it was entered.
    pub(crate) dtls: Option<(DtlsState, Instant)>,
    /// When the handshake started.
    pub(crate) dtls_started: Option<Instant>,
    /// The two latest counter reports (older first), for per-second rates.
    pub(crate) stats: [Option<(Instant, SessionStats)>; 2],
}

impl PcLive {
    /// Notes a DTLS state change.
    pub(crate) fn dtls_state(&mut self, state: DtlsState, now: Instant) {
        if state == DtlsState::Connecting {
            self.dtls_started = Some(now);
        }
        self.dtls = Some((state, now));
    }

    /// Notes a counter report.
    pub(crate) fn stats(&mut self, stats: SessionStats, now: Instant) {
        self.stats = [self.stats[1], Some((now, stats))];
    }
}

/// The `webrtc` object for `pc`; `mono` turns an instant into the server's
/// monotonic microseconds.
pub(crate) fn describe(
    pc: &PcState,
    media: Option<&MediaPlane>,
    mono: &dyn Fn(Instant) -> u64,
) -> Value {
    let mut out = Map::new();
    out.insert("ice".into(), ice(pc, media, mono));
    out.insert("dtls".into(), dtls(pc, media, mono));
    if let Some(local) = &pc.local_info {
        let ext = local.extensions();
        out.insert("extensions".into(), extensions(ext));
        out.insert(
            "bwe".into(),
            json!({"twcc": ext.transport_cc.is_some(),
                   "twcc-ext-id": ext.transport_cc.unwrap_or(0)}),
        );
    }
    out.insert("media".into(), media_lines(pc));
    Value::Object(out)
}

fn ice(pc: &PcState, media: Option<&MediaPlane>, mono: &dyn Fn(Instant) -> u64) -> Value {
    let mut o = Map::new();
    let Some(local) = &pc.local else {
        return Value::Object(o);
    };
    let state = match (&pc.live.selected, pc.up) {
        (Some(_), true) => "ready",
        (Some(_), false) => "connected",
        (None, _) => "connecting",
    };
    o.insert("state".into(), state.into());
    let candidates: Vec<String> = media
        .map(|m| m.local_candidate(local))
        .into_iter()
        .collect();
    if let Some((remote, at)) = pc.live.selected {
        o.insert("connected".into(), mono(at).into());
        let local_addr = media
            .map(|m| m.local_candidate_addr(local).to_string())
            .unwrap_or_default();
        // The peer's candidate type, when it announced that address.
        let typ = pc
            .remote_info
            .as_ref()
            .and_then(|r| {
                r.candidates
                    .iter()
                    .find(|c| c.port == remote.port() && c.address == remote.ip().to_string())
            })
            .map_or("prflx", |c| c.typ.as_str());
        o.insert(
            "selected-pair".into(),
            format!("{local_addr} [host,udp] <-> {remote} [{typ},udp]").into(),
        );
    }
    o.insert("local-candidates".into(), candidates.into());
    if let Some(r) = &pc.remote_info {
        let remote: Vec<String> = r
            .candidates
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {} {} {} typ {}",
                    c.foundation, c.component, c.transport, c.priority, c.address, c.port, c.typ
                )
            })
            .collect();
        o.insert("remote-candidates".into(), remote.into());
    }
    Value::Object(o)
}

fn dtls(pc: &PcState, media: Option<&MediaPlane>, mono: &dyn Fn(Instant) -> u64) -> Value {
    let mut o = Map::new();
    if pc.local.is_none() {
        return Value::Object(o);
    }
    if let Some(m) = media {
        o.insert("fingerprint".into(), m.fingerprint().into());
    }
    if let Some(r) = &pc.remote_info {
        o.insert(
            "remote-fingerprint".into(),
            r.fingerprint.value.clone().into(),
        );
        let hash = match r.fingerprint.hash {
            HashFunction::Sha256 => "sha-256",
            HashFunction::Sha1 => "sha-1",
        };
        o.insert("remote-fingerprint-hash".into(), hash.into());
        // The server's role: `active` when it is the DTLS client.
        let role = match r.dtls_role() {
            sdp::DtlsRole::Client => "active",
            sdp::DtlsRole::Server => "passive",
        };
        o.insert("dtls-role".into(), role.into());
    }
    let state = match pc.live.dtls.map(|(s, _)| s) {
        None => "created",
        Some(DtlsState::Connecting) => "trying",
        Some(DtlsState::Connected) => "connected",
        Some(DtlsState::Closed) => "closed",
        Some(DtlsState::Failed) => "failed",
    };
    o.insert("dtls-state".into(), state.into());
    let connected = matches!(pc.live.dtls, Some((DtlsState::Connected, _)));
    o.insert("valid".into(), connected.into());
    o.insert("ready".into(), connected.into());
    if let Some(t) = pc.live.dtls_started {
        o.insert("handshake-started".into(), mono(t).into());
    }
    if let Some((DtlsState::Connected, t)) = pc.live.dtls {
        o.insert("connected".into(), mono(t).into());
    }
    let data = latest(pc).map(|s| s.data).unwrap_or_default();
    o.insert("sctp-association".into(), data.association.into());
    Value::Object(o)
}

fn extensions(ids: ExtensionIds) -> Value {
    let all = [
        (uri::MID, ids.mid),
        (uri::RID, ids.rid),
        (uri::REPAIRED_RID, ids.repaired_rid),
        (uri::AUDIO_LEVEL, ids.audio_level),
        (uri::VIDEO_ORIENTATION, ids.video_orientation),
        (uri::PLAYOUT_DELAY, ids.playout_delay),
        (uri::ABS_SEND_TIME, ids.abs_send_time),
        (uri::ABS_CAPTURE_TIME, ids.abs_capture_time),
        (uri::VIDEO_LAYERS_ALLOCATION, ids.video_layers_allocation),
        (uri::TRANSPORT_CC, ids.transport_cc),
        (uri::DEPENDENCY_DESCRIPTOR, ids.dependency_descriptor),
    ];
    let mut o = Map::new();
    for (name, id) in all {
        if let Some(id) = id {
            o.insert(name.into(), id.into());
        }
    }
    Value::Object(o)
}

fn latest(pc: &PcState) -> Option<SessionStats> {
    pc.live.stats[1].map(|(_, s)| s)
}

/// Bytes per second between the two latest reports, from `bytes` of each.
fn per_second(pc: &PcState, bytes: impl Fn(&SessionStats) -> u64) -> u64 {
    match pc.live.stats {
        [Some((t0, a)), Some((t1, b))] => {
            let secs = t1.duration_since(t0).as_secs_f64();
            if secs > 0.0 {
                (bytes(&b).saturating_sub(bytes(&a)) as f64 / secs) as u64
            } else {
                0
            }
        }
        _ => 0,
    }
}

fn media_lines(pc: &PcState) -> Value {
    let mut o = Map::new();
    let Some(local) = &pc.local_info else {
        return Value::Object(o);
    };
    let stats = latest(pc);
    // The shard sends and receives each kind on the first m-line of that
    // kind (media.md §5.3 step 1): its counters belong to that line.
    let mut counted = [false; 2];
    for m in &local.media {
        let mut line = Map::new();
        let kind = match m.kind {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Application => "data",
        };
        line.insert("type".into(), kind.into());
        line.insert("mindex".into(), m.mindex.into());
        line.insert("mid".into(), m.mid.clone().into());
        if m.port == 0 {
            line.insert("disabled".into(), true.into());
            o.insert(m.mindex.to_string(), Value::Object(line));
            continue;
        }
        let remote = pc.remote_info.as_ref().and_then(|r| r.media.get(m.mindex));
        match m.kind {
            MediaKind::Audio | MediaKind::Video => {
                let video = m.kind == MediaKind::Video;
                line.insert("do_nacks".into(), m.nack.into());
                let mut ssrc = Map::new();
                if let Some(s) = m.ssrc {
                    ssrc.insert("ssrc".into(), s.into());
                }
                if let Some(s) = m.rtx_ssrc {
                    ssrc.insert("ssrc-rtx".into(), s.into());
                }
                if let Some(r) = remote {
                    for (layer, s) in r.ssrcs.iter().enumerate().filter(|(_, s)| **s != 0) {
                        let key = if layer == 0 {
                            "ssrc-peer".to_owned()
                        } else {
                            format!("ssrc-peer-sim-{layer}")
                        };
                        ssrc.insert(key, (*s).into());
                    }
                }
                line.insert("ssrc".into(), Value::Object(ssrc));
                line.insert("direction".into(), json!({"send": m.send, "recv": m.recv}));
                if let (Some(pt), Some(codec)) = (m.payload_types.first(), &m.codec) {
                    line.insert("codecs".into(), json!({"pt": pt, "codec": codec}));
                }
                let k = usize::from(video);
                if let Some(s) = stats.filter(|_| !counted[k]) {
                    counted[k] = true;
                    let c = s.kinds[k];
                    let rate_in = per_second(pc, |s| s.kinds[k].bytes_in);
                    let rate_out = per_second(pc, |s| s.kinds[k].bytes_out);
                    line.insert(
                        "stats".into(),
                        json!({
                            "in": {"packets": c.packets_in, "bytes": c.bytes_in,
                                   "bytes_lastsec": rate_in},
                            "out": {"packets": c.packets_out, "bytes": c.bytes_out,
                                    "bytes_lastsec": rate_out},
                        }),
                    );
                }
            }
            MediaKind::Application => {
                if let Some(s) = stats {
                    let d = s.data;
                    line.insert(
                        "stats".into(),
                        json!({
                            "in": {"messages": d.messages_in, "bytes": d.bytes_in},
                            "out": {"messages": d.messages_out, "bytes": d.bytes_out},
                            "dropped": d.dropped,
                        }),
                    );
                }
            }
        }
        o.insert(m.mindex.to_string(), Value::Object(line));
    }
    Value::Object(o)
}
