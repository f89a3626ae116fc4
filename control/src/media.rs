//! The control side of the media path: starts the dataplane shards, places
//! PeerConnections on them, turns negotiated SDP into the shards' `PcConfig`,
//! and forwards route updates and commands to the shard that owns a session.
//!
//! Nothing here touches a packet: shards relay media and report
//! [`MediaEvent`]s, which the gateway turns into script callbacks and client
//! events.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use jsfu_proto::dtls::{DtlsCert, DtlsConfig, DtlsContext};
use jsfu_route::{
    DtlsRole, Fingerprint, HeaderExtensionIds, MediaDescription, MediaEvent, Medium, PayloadType,
    PcConfig, PluginSessionId, RouteUpdate, RtxMapping, ShardCommand, ShardId,
};
use jsfu_shard::{ShardSet, ShardSetConfig};

use crate::sdp::{self, LocalMediaInfo, LocalSsrcs, MediaKind, RemoteInfo};

/// Media settings (flags and `[media]` of the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address the shard sockets bind to.
    pub media_ip: IpAddr,
    /// Address written in SDP and candidates (default: `media_ip`).
    pub advertised_ip: Option<IpAddr>,
    /// Shard `i` listens on `rtp_port_base + i` (0: the kernel picks).
    pub rtp_port_base: u16,
    /// Number of shards (0: one per core but the first, at least one).
    pub shards: usize,
    /// Pin shard `i` to core `i + 1`.
    pub pin_shards: bool,
    /// Lost packets per second that make a slow link (0: off).
    pub slowlink_threshold: u32,
    /// DTLS certificate and key (PEM); generated at start when absent.
    pub dtls_cert: Option<(PathBuf, PathBuf)>,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            media_ip: IpAddr::from([127, 0, 0, 1]),
            advertised_ip: None,
            rtp_port_base: 0,
            shards: 0,
            pin_shards: false,
            slowlink_threshold: 0,
            dtls_cert: None,
        }
    }
}

/// Why the media plane could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The DTLS certificate could not be made or loaded.
    #[error("DTLS certificate: {0}")]
    Certificate(String),
    /// The shards did not start.
    #[error("dataplane shards: {0}")]
    Shards(String),
}

/// Which sessions the shards know, kept under one lock so that a route
/// update and the creation of the session's PeerConnection cannot cross.
///
/// A session's route only matters to the shards once it has a
/// PeerConnection (its packets are relayed by it, and it receives only
/// through one). Until then its latest route waits here and goes out with
/// the PeerConnection: a session that never has one (signalling only) costs
/// the shards nothing, not a wake-up per script setting.
#[derive(Debug, Default)]
struct PcSessions {
    /// Sessions with a PeerConnection on their shard.
    with_pc: HashSet<PluginSessionId>,
    /// Sessions whose route the shards hold.
    routed: HashSet<PluginSessionId>,
    /// The latest route of sessions that have neither.
    pending: HashMap<PluginSessionId, RouteUpdate>,
}

struct Shard {
    id: ShardId,
    addr: SocketAddr,
    routes: flume::Sender<RouteUpdate>,
    commands: flume::Sender<ShardCommand>,
    sessions: AtomicUsize,
}

/// The running dataplane as control sees it.
pub struct MediaPlane {
    fingerprint: String,
    advertised: IpAddr,
    shards: Vec<Shard>,
    owners: Mutex<HashMap<PluginSessionId, usize>>,
    with_pc: Mutex<PcSessions>,
    set: Mutex<Option<ShardSet>>,
    dropped_updates: AtomicUsize,
}

impl std::fmt::Debug for MediaPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaPlane")
            .field("advertised", &self.advertised)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// Transport details of one PeerConnection, chosen by control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPc {
    /// Index of the shard that owns it.
    pub shard: usize,
    /// Local ICE ufrag.
    pub ufrag: String,
    /// Local ICE password.
    pub pwd: String,
    /// Local SSRCs per m-line index.
    pub ssrcs: Vec<LocalSsrcs>,
    /// The shard already runs it (later changes are `UpdatePc`).
    pub created: bool,
}

impl MediaPlane {
    /// Starts the shards. `events` receives every [`MediaEvent`].
    pub fn start(cfg: &MediaConfig, events: flume::Sender<MediaEvent>) -> Result<Self, MediaError> {
        let cert = match &cfg.dtls_cert {
            Some((c, k)) => DtlsCert::from_pem_files(c, k),
            None => DtlsCert::generate(SystemTime::now()),
        }
        .map_err(|e| MediaError::Certificate(e.to_string()))?;
        let ctx = DtlsContext::new(&cert, &DtlsConfig::default())
            .map_err(|e| MediaError::Certificate(e.to_string()))?;
        let mut shard_cfg = ShardSetConfig::new(cfg.media_ip, ctx, events);
        shard_cfg.shards = cfg.shards;
        shard_cfg.rtp_port_base = cfg.rtp_port_base;
        shard_cfg.pin_to_cores = cfg.pin_shards;
        shard_cfg.slowlink_threshold = cfg.slowlink_threshold;
        // Counters for the Admin API's handle_info, every two seconds.
        shard_cfg.stats_interval = std::time::Duration::from_secs(2);
        let set = jsfu_shard::start(shard_cfg).map_err(|e| MediaError::Shards(e.to_string()))?;
        let shards = set
            .shards()
            .iter()
            .map(|h| Shard {
                id: h.id(),
                addr: h.local_addr(),
                routes: h.routes().clone(),
                commands: h.commands().clone(),
                sessions: AtomicUsize::new(0),
            })
            .collect::<Vec<_>>();
        for s in &shards {
            tracing::info!(shard = s.id.0, addr = %s.addr, "media shard listening");
        }
        Ok(Self {
            fingerprint: cert.fingerprint_sdp().to_owned(),
            advertised: cfg.advertised_ip.unwrap_or(cfg.media_ip),
            shards,
            owners: Mutex::new(HashMap::new()),
            with_pc: Mutex::new(PcSessions::default()),
            set: Mutex::new(Some(set)),
            dropped_updates: AtomicUsize::new(0),
        })
    }

    /// The UDP addresses of the shards (ports to open in a firewall).
    pub fn shard_addrs(&self) -> Vec<SocketAddr> {
        self.shards.iter().map(|s| s.addr).collect()
    }

    /// The certificate fingerprint written in SDP.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The shard a session lives on: chosen (fewest sessions) the first
    /// time anything names the session, so that its route updates,
    /// recordings and PeerConnection all land on the same shard.
    fn place(&self, session: PluginSessionId) -> usize {
        let mut owners = self.owners_lock();
        if let Some(i) = owners.get(&session) {
            return *i;
        }
        let i = self
            .shards
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.sessions.load(Ordering::Relaxed))
            .map_or(0, |(i, _)| i);
        if let Some(s) = self.shards.get(i) {
            s.sessions.fetch_add(1, Ordering::Relaxed);
        }
        owners.insert(session, i);
        i
    }

    /// Fresh ICE credentials and SSRCs for a new PC of `session` with
    /// `mlines` m-lines, on the session's shard.
    pub fn allocate(&self, session: PluginSessionId, mlines: usize) -> LocalPc {
        let shard = self.place(session);
        let mut rng = rand::rng();
        let (ufrag, pwd) = sdp::generate_ice_credentials(&mut rng);
        LocalPc {
            shard,
            ufrag,
            pwd,
            ssrcs: sdp::generate_local_ssrcs(&mut rng, mlines),
            created: false,
        }
    }

    /// The address announced for `local`'s PeerConnection: the advertised
    /// IP and its shard's port.
    pub fn local_candidate_addr(&self, local: &LocalPc) -> SocketAddr {
        let port = self.shards.get(local.shard).map_or(9, |s| s.addr.port());
        SocketAddr::new(self.advertised, port)
    }

    /// The one host candidate of `local`'s PeerConnection, as an attribute
    /// value without the `candidate:` prefix.
    pub fn local_candidate(&self, local: &LocalPc) -> String {
        let addr = self.local_candidate_addr(local);
        format!("1 1 udp 2015363327 {} {} typ host", addr.ip(), addr.port())
    }

    /// The transport details to merge into a local description.
    pub fn transport(&self, local: &LocalPc, setup: sdp::SetupRole) -> sdp::LocalTransport {
        let now_us = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        sdp::LocalTransport {
            ice_ufrag: local.ufrag.clone(),
            ice_pwd: local.pwd.clone(),
            fingerprint: self.fingerprint.clone(),
            setup,
            address: self.advertised,
            candidates: vec![format!("candidate:{}", self.local_candidate(local))],
            half_trickle: true,
            ice_lite: true,
            ssrcs: local.ssrcs.clone(),
            now_us,
        }
    }

    /// Starts (or updates) a PeerConnection on its shard.
    pub fn create_pc(&self, local: &mut LocalPc, config: PcConfig) -> bool {
        let Some(shard) = self.shards.get(local.shard) else {
            return false;
        };
        let session = config.session;
        let cmd = if local.created {
            ShardCommand::UpdatePc(Box::new(config))
        } else {
            ShardCommand::CreatePc(Box::new(config))
        };
        let mut sessions = self.with_pc_lock();
        if let Some(update) = sessions.pending.remove(&session) {
            // Its route first (the shard applies routes and commands in
            // separate queues; media starts after ICE and DTLS anyway).
            sessions.routed.insert(session);
            self.send_route(update);
        }
        if shard.commands.try_send(cmd).is_err() {
            tracing::warn!(session = %session, "shard command queue full: PeerConnection not created");
            return false;
        }
        sessions.with_pc.insert(session);
        local.created = true;
        true
    }

    /// Removes a PeerConnection from its shard (no client event follows).
    pub fn remove_pc(&self, session: PluginSessionId) {
        if !self.with_pc_lock().with_pc.remove(&session) {
            return;
        }
        self.command(session, ShardCommand::RemovePc { session });
    }

    /// Forgets a PC that the shard already closed.
    pub fn pc_closed(&self, session: PluginSessionId) {
        self.with_pc_lock().with_pc.remove(&session);
    }

    /// Whether the session has a PC on its shard.
    pub fn has_pc(&self, session: PluginSessionId) -> bool {
        self.with_pc_lock().with_pc.contains(&session)
    }

    /// The plugin session is gone: forget its placement.
    pub fn session_removed(&self, session: PluginSessionId) {
        if let Some(i) = self.owners_lock().remove(&session) {
            if let Some(s) = self.shards.get(i) {
                s.sessions.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    fn owner(&self, session: PluginSessionId) -> &Shard {
        let i = self.place(session);
        // `place` returns an index of `shards`, which is never empty.
        &self.shards[i.min(self.shards.len() - 1)]
    }

    fn with_pc_lock(&self) -> std::sync::MutexGuard<'_, PcSessions> {
        self.with_pc
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn owners_lock(&self) -> std::sync::MutexGuard<'_, HashMap<PluginSessionId, usize>> {
        self.owners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends a route update to the session's shard (shards share them), or
    /// keeps it until the session has a PeerConnection (see [`PcSessions`]).
    pub fn route(&self, update: RouteUpdate) {
        let session = update.session();
        let mut sessions = self.with_pc_lock();
        let known = sessions.with_pc.contains(&session) || sessions.routed.contains(&session);
        match update {
            RouteUpdate::Route { .. } if !known => {
                sessions.pending.insert(session, update);
            }
            RouteUpdate::Route { .. } => {
                sessions.routed.insert(session);
                self.send_route(update);
            }
            // Without a PeerConnection there is no peer to ask.
            RouteUpdate::SendPli { .. } if !sessions.with_pc.contains(&session) => {}
            RouteUpdate::Remove { .. } => {
                sessions.pending.remove(&session);
                sessions.routed.remove(&session);
                if known {
                    self.send_route(update);
                }
                drop(sessions);
                self.session_removed(session);
            }
            other => self.send_route(other),
        }
    }

    fn send_route(&self, update: RouteUpdate) {
        let shard = self.owner(update.session());
        if shard.routes.try_send(update).is_err() {
            self.dropped_updates.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("shard route queue full: update dropped");
        }
    }

    /// Sends a one-off command to the shard of the session it names.
    pub fn command(&self, session: PluginSessionId, command: ShardCommand) {
        let shard = self.owner(session);
        if shard.commands.try_send(command).is_err() {
            tracing::warn!(session = %session, "shard command queue full: command dropped");
        }
    }

    /// Stops the shards.
    pub fn shutdown(&self) {
        let set = self
            .set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(set) = set {
            if let Err(e) = set.shutdown() {
                tracing::warn!(error = %e, "shards did not stop cleanly");
            }
        }
    }
}

fn medium(kind: MediaKind) -> Option<Medium> {
    match kind {
        MediaKind::Audio => Some(Medium::Audio),
        MediaKind::Video => Some(Medium::Video),
        _ => None,
    }
}

/// The shard's view of a negotiated PeerConnection.
pub fn pc_config(
    session: PluginSessionId,
    local: &LocalPc,
    remote: &RemoteInfo,
    negotiated: &LocalMediaInfo,
    dtls_role: DtlsRole,
    plugin: &dyn crate::plugin::Plugin,
) -> PcConfig {
    let mut media = Vec::new();
    for lm in &negotiated.media {
        let Some(kind) = medium(lm.kind) else {
            continue;
        };
        if lm.port == 0 {
            continue;
        }
        let rm = remote.medium(lm.mindex);
        let payload_types = lm
            .payload_types
            .iter()
            .map(|pt| PayloadType {
                pt: *pt,
                codec: if Some(*pt) == lm.opus_red_pt {
                    "red".to_owned()
                } else {
                    lm.codec.clone().unwrap_or_default()
                },
                clock_rate: lm.clock_rates.iter().find(|(p, _)| p == pt).map_or(
                    if kind == Medium::Audio {
                        48_000
                    } else {
                        90_000
                    },
                    |(_, c)| *c,
                ),
            })
            .collect();
        let (remote_ssrcs, remote_rtx_ssrcs, rids) = match rm {
            Some(rm) => {
                let mut ssrcs: Vec<u32> = rm.ssrcs.iter().copied().filter(|s| *s != 0).collect();
                if ssrcs.is_empty() {
                    ssrcs.extend(rm.fallback_ssrc);
                }
                (
                    ssrcs,
                    rm.rtx_ssrcs.iter().copied().filter(|s| *s != 0).collect(),
                    rm.rids.iter().flatten().cloned().collect(),
                )
            }
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let e = lm.extensions;
        media.push(MediaDescription {
            index: u16::try_from(lm.mindex).unwrap_or(u16::MAX),
            mid: lm.mid.clone(),
            kind,
            send: lm.send && rm.is_none_or(|r| r.send),
            recv: lm.recv && rm.is_none_or(|r| r.recv),
            payload_types,
            rtx: lm
                .rtx_payload_types
                .iter()
                .map(|(apt, rtx)| RtxMapping {
                    rtx_pt: *rtx,
                    apt: *apt,
                })
                .collect(),
            local_ssrc: lm.ssrc.unwrap_or(0),
            local_rtx_ssrc: lm.rtx_ssrc,
            remote_ssrcs,
            remote_rtx_ssrcs,
            rids,
            extensions: HeaderExtensionIds {
                mid: e.mid,
                rid: e.rid,
                repaired_rid: e.repaired_rid,
                transport_cc: e.transport_cc,
                abs_send_time: e.abs_send_time,
                audio_level: e.audio_level,
                video_orientation: e.video_orientation,
                playout_delay: e.playout_delay,
                abs_capture_time: e.abs_capture_time,
                dependency_descriptor: e.dependency_descriptor,
            },
            nack: lm.nack,
        });
    }
    PcConfig {
        session,
        local_ufrag: local.ufrag.clone(),
        local_pwd: local.pwd.clone(),
        remote_ufrag: remote.ice_ufrag.clone(),
        remote_pwd: remote.ice_pwd.clone(),
        dtls_role,
        remote_fingerprint: Fingerprint {
            algorithm: match remote.fingerprint.hash {
                sdp::HashFunction::Sha256 => "sha-256".to_owned(),
                sdp::HashFunction::Sha1 => "sha-1".to_owned(),
            },
            value: remote.fingerprint.value.clone(),
        },
        media,
        data_channel: negotiated.data_channel.is_some(),
        script_incoming_rtp: plugin.wants_incoming_rtp(),
        script_incoming_rtcp: plugin.wants_incoming_rtcp(),
        script_incoming_text_data: plugin.wants_incoming_text_data(),
        script_incoming_binary_data: plugin.wants_incoming_binary_data(),
    }
}
