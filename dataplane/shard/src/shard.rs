//! One shard: its state, its tasks, and everything but the per-packet relay
//! (in `relay.rs`): PeerConnection lifecycle, commands, route updates, peer
//! messages and timers.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

/// The shard's lookup tables, hit on every packet: foldhash (seeded per
/// process) instead of SipHash. Keys are ids the server made and addresses
/// of peers that passed ICE, so no peer chooses what is inserted.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::channels::local_channel::{self, LocalSender};
use glommio::{Latency, Shares};
use jsfu_proto::dtls::{
    DtlsContext, DtlsEndpoint, DtlsEvent, DtlsFailure, DtlsState as ProtoDtlsState, Fingerprint,
};
use jsfu_proto::ice::{IceConfig, IceCredentials, IceEvent, IceLiteAgent, IceState};
use jsfu_proto::rtcp::RtcpDrop;
use jsfu_proto::rtcp::feedback::write_pli;
use jsfu_proto::rtcp::report::{
    NtpTime, ReportBlock, SenderInfo, extrapolate_rtp_ts, write_rr, write_sdes_cname, write_sr,
};
use jsfu_proto::rtp::Ssrc;
use jsfu_proto::srtp::{SRTCP_MAX_TRAILER, SrtpKeys, SrtpSession};
use jsfu_route::{
    DtlsRole, DtlsState, HangupReason, MediaEvent, PcConfig, PluginSessionId, RouteUpdate,
    SessionKey, SessionRoute, SessionStats, ShardCommand, ShardId,
};

use crate::control::Control;
use crate::io::{self, RecvBatch, SendBatch, Slot, SlotPool};
use crate::session::{Inbound, Outbound, Session, kind_index};
use crate::simulcast::MAX_LAYERS;
use crate::stats::{Counters, DropReason, ShardStats};

/// How long a failed ICE agent may recover before the PC is hung up
/// (media.md §3.5).
const ICE_FAILED_GRACE: Duration = Duration::from_secs(5);

/// Timer task period.
const TICK: Duration = Duration::from_millis(20);

/// RTCP report period (media.md §5.5).
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Receive batches per relay turn before yielding to the other task queues.
const BATCHES_PER_TURN: usize = 8;

/// The REMB answer when no cap is set (media.md §6.6).
pub(crate) const DEFAULT_REMB_BPS: u64 = 10_000_000;

/// Everything [`run`] needs; built by [`crate::start`].
pub(crate) struct ShardParams {
    pub(crate) id: ShardId,
    pub(crate) socket: std::net::UdpSocket,
    pub(crate) local_addr: SocketAddr,
    pub(crate) dtls: DtlsContext,
    pub(crate) events: flume::Sender<MediaEvent>,
    pub(crate) egress_slots: usize,
    pub(crate) cross_shard_slots: usize,
    pub(crate) stats_interval: Duration,
    pub(crate) socket_buffer_bytes: usize,
    pub(crate) slowlink_threshold: u32,
    pub(crate) routes: flume::Receiver<RouteUpdate>,
    pub(crate) commands: flume::Receiver<ShardCommand>,
    pub(crate) control: flume::Receiver<Control>,
    pub(crate) links: PeerLinks,
}

/// The channels between shards.
pub(crate) struct PeerLinks {
    /// Messages from other shards.
    pub(crate) inbox: flume::Receiver<PeerMsg>,
    /// Every shard's inbox (ours included, never used).
    pub(crate) peers: Vec<flume::Sender<PeerMsg>>,
    /// Our cross-shard buffers coming back.
    pub(crate) returns_inbox: flume::Receiver<Box<Slot>>,
    /// Every shard's return queue.
    pub(crate) returns: Vec<flume::Sender<Box<Slot>>>,
}

/// A message between shards.
pub(crate) enum PeerMsg {
    /// A route update control sent to another shard.
    Route(RouteUpdate),
    /// A session's PC now lives on `shard`.
    Placed {
        session: PluginSessionId,
        shard: ShardId,
    },
    /// A session's PC left `shard`.
    Unplaced {
        session: PluginSessionId,
        shard: ShardId,
    },
    /// Plaintext RTP of `source` for its recipients on the receiving shard;
    /// the buffer goes back to `origin` afterwards.
    Rtp {
        source: PluginSessionId,
        video: bool,
        len: usize,
        slot: Box<Slot>,
        origin: ShardId,
        /// The simulcast layer and payload info (simulcast video only).
        layer: Option<crate::simulcast::LayerTag>,
    },
    /// Send a PLI to the peer of `session` (its PC is on the receiving shard).
    Pli { session: PluginSessionId },
    /// A data-channel message of `source` for its recipients on the
    /// receiving shard (native data relay, data.rs).
    Data {
        source: PluginSessionId,
        text: bool,
        data: Vec<u8>,
    },
}

pub(crate) struct Entry {
    generation: u32,
    session: Option<Session>,
}

/// The live session of `key` in `slab` (a free function so callers can
/// borrow other fields of the shard at the same time).
pub(crate) fn slab_get(slab: &mut [Entry], key: SessionKey) -> Option<&mut Session> {
    let e = slab.get_mut(key.slot as usize)?;
    if e.generation == key.generation {
        e.session.as_mut()
    } else {
        None
    }
}

/// The state of one shard, owned by its executor thread.
pub(crate) struct Shard {
    pub(crate) id: ShardId,
    pub(crate) fd: RawFd,
    dtls: DtlsContext,
    /// Origin of the microsecond clock given to the rewriting contexts.
    epoch: Instant,
    pub(crate) slab: Vec<Entry>,
    free_slots: Vec<u32>,
    pub(crate) by_tuple: FastMap<SocketAddr, SessionKey>,
    pub(crate) by_ufrag: FastMap<String, SessionKey>,
    /// Checks that arrived before their PeerConnection (see `early.rs`).
    pub(crate) early_stun: crate::early::EarlyStun,
    pub(crate) by_id: FastMap<PluginSessionId, SessionKey>,
    pub(crate) routes: FastMap<PluginSessionId, SessionRoute>,
    /// Which shard holds each session's PC (ours included).
    pub(crate) placement: FastMap<PluginSessionId, ShardId>,
    pub(crate) pool: SlotPool,
    /// Datagrams waiting for the next `sendmmsg`: slot, length, destination.
    txq: Vec<(u32, usize, SocketAddr)>,
    sender: SendBatch,
    /// Boxed so a slot moves to another shard by pointer, not by copy.
    #[allow(clippy::vec_box)]
    pub(crate) cross_free: Vec<Box<Slot>>,
    /// Scratch: which shards got the current packet already.
    pub(crate) cross_sent: Vec<bool>,
    pub(crate) peers: Vec<flume::Sender<PeerMsg>>,
    returns: Vec<flume::Sender<Box<Slot>>>,
    returns_inbox: flume::Receiver<Box<Slot>>,
    /// Peer messages that must reach every other shard (sent from tasks).
    peer_outbox: VecDeque<PeerMsg>,
    /// Lifecycle events, forwarded to control by the event task.
    lifecycle: LocalSender<MediaEvent>,
    /// Bytes of data-channel messages waiting in `lifecycle` (the event
    /// task subtracts what it forwards).
    lifecycle_data_bytes: Rc<Cell<usize>>,
    /// Control's event queue, for events that may be dropped.
    events: flume::Sender<MediaEvent>,
    stats_interval: Duration,
    pub(crate) counters: Counters,
    /// Recorders of the sessions whose commands reach this shard (record.rs).
    pub(crate) recorders: crate::record::Recorders,
    stopping: bool,
    /// Slow-link threshold, packets lost per second (0: off; feedback.rs).
    pub(crate) slowlink_threshold: u32,
    /// On-demand keyframe requests per sender (simulcast.rs).
    pub(crate) pli_fanin: crate::simulcast::PliFanIn,
}

/// Runs a shard until [`Control::Shutdown`] (or until control drops every
/// handle).
pub(crate) async fn run(params: ShardParams) {
    let ShardParams {
        id,
        socket,
        local_addr,
        dtls,
        events,
        egress_slots,
        cross_shard_slots,
        stats_interval,
        socket_buffer_bytes,
        slowlink_threshold,
        routes,
        commands,
        control,
        links,
    } = params;
    io::set_buffer_sizes(socket.as_raw_fd(), socket_buffer_bytes);
    let socket = Rc::new(glommio::net::UdpSocket::from(socket2::Socket::from(socket)));
    let (lifecycle_tx, lifecycle_rx) = local_channel::new_unbounded();
    let lifecycle_data_bytes = Rc::new(Cell::new(0usize));
    let mut cross_free = Vec::with_capacity(cross_shard_slots);
    cross_free.resize_with(cross_shard_slots, Slot::boxed);
    let shard_count = links.peers.len();
    let shard = Rc::new(RefCell::new(Shard {
        id,
        fd: socket.as_raw_fd(),
        dtls,
        epoch: Instant::now(),
        slab: Vec::new(),
        free_slots: Vec::new(),
        by_tuple: FastMap::default(),
        by_ufrag: FastMap::default(),
        early_stun: crate::early::EarlyStun::new(),
        by_id: FastMap::default(),
        routes: FastMap::default(),
        placement: FastMap::default(),
        pool: SlotPool::new(egress_slots),
        txq: Vec::with_capacity(egress_slots),
        sender: SendBatch::new(),
        cross_free,
        cross_sent: vec![false; shard_count],
        peers: links.peers,
        returns: links.returns,
        returns_inbox: links.returns_inbox,
        peer_outbox: VecDeque::new(),
        lifecycle: lifecycle_tx,
        lifecycle_data_bytes: lifecycle_data_bytes.clone(),
        events: events.clone(),
        stats_interval,
        counters: Counters::default(),
        recorders: crate::record::Recorders::new(id),
        stopping: false,
        slowlink_threshold,
        pli_fanin: crate::simulcast::PliFanIn::default(),
    }));
    tracing::info!(shard = id.0, %local_addr, "shard started");

    let ex = glommio::executor();
    let relay_q = ex.create_task_queue(Shares::Static(1000), Latency::NotImportant, "relay");
    let control_q = ex.create_task_queue(
        Shares::Static(200),
        Latency::Matters(Duration::from_millis(10)),
        "control",
    );

    // Relay: wait for readiness, drain batches.
    let relay = glommio::spawn_local_into(relay_task(shard.clone(), socket.clone()), relay_q);
    // Events: lifecycle events never dropped (await room in control's queue).
    let event_task = glommio::spawn_local_into(
        async move {
            while let Some(ev) = lifecycle_rx.recv().await {
                if let MediaEvent::IncomingData { data, .. } = &ev {
                    let left = lifecycle_data_bytes.get().saturating_sub(data.len());
                    lifecycle_data_bytes.set(left);
                }
                if events.send_async(ev).await.is_err() {
                    break;
                }
            }
        },
        control_q,
    );
    let route_task = glommio::spawn_local_into(
        {
            let shard = shard.clone();
            async move {
                while let Ok(update) = routes.recv_async().await {
                    let out = {
                        let mut s = shard.borrow_mut();
                        s.apply_route(update.clone());
                        s.flush();
                        s.peers.clone()
                    };
                    let me = usize::from(shard.borrow().id.0);
                    for (i, peer) in out.iter().enumerate() {
                        if i != me {
                            // A stopped peer is not an error here.
                            let _ = peer.send_async(PeerMsg::Route(update.clone())).await;
                        }
                    }
                    flush_peer_outbox(&shard).await;
                }
            }
        },
        control_q,
    );
    let command_task = glommio::spawn_local_into(
        {
            let shard = shard.clone();
            async move {
                while let Ok(command) = commands.recv_async().await {
                    {
                        let mut s = shard.borrow_mut();
                        s.handle_command(Instant::now(), command);
                        s.flush();
                    }
                    flush_peer_outbox(&shard).await;
                }
            }
        },
        control_q,
    );
    let peer_task = glommio::spawn_local_into(
        {
            let shard = shard.clone();
            let inbox = links.inbox;
            async move {
                while let Ok(msg) = inbox.recv_async().await {
                    let mut s = shard.borrow_mut();
                    let now = Instant::now();
                    s.handle_peer(now, msg);
                    // Drain what else is waiting, bounded, then send.
                    for _ in 0..io::BATCH * 4 {
                        match inbox.try_recv() {
                            Ok(msg) => s.handle_peer(now, msg),
                            Err(_) => break,
                        }
                    }
                    s.flush();
                }
            }
        },
        relay_q,
    );
    let timer_task = glommio::spawn_local_into(
        {
            let shard = shard.clone();
            async move {
                loop {
                    glommio::timer::sleep(TICK).await;
                    {
                        let mut s = shard.borrow_mut();
                        if s.stopping {
                            break;
                        }
                        s.handle_timers(Instant::now());
                        s.flush();
                    }
                    flush_peer_outbox(&shard).await;
                }
            }
        },
        control_q,
    );
    let (
        Ok(relay),
        Ok(event_task),
        Ok(route_task),
        Ok(command_task),
        Ok(peer_task),
        Ok(timer_task),
    ) = (
        relay,
        event_task,
        route_task,
        command_task,
        peer_task,
        timer_task,
    )
    else {
        tracing::error!(shard = id.0, "cannot spawn the shard tasks");
        return;
    };
    let tasks = [
        relay,
        event_task,
        route_task,
        command_task,
        peer_task,
        timer_task,
    ];
    for task in tasks {
        task.detach();
    }

    // The executor lives as long as this loop; detached tasks end with it.
    while let Ok(request) = control.recv_async().await {
        match request {
            Control::Stats(reply) => {
                let snapshot = shard.borrow().snapshot();
                // The requester may have timed out and gone.
                let _ = reply.try_send(snapshot);
            }
            Control::Shutdown => break,
        }
    }
    shard.borrow_mut().stopping = true;
    shard.borrow_mut().recorders.shutdown();
    tracing::info!(shard = id.0, "shard stopped");
}

async fn relay_task(shard: Rc<RefCell<Shard>>, socket: Rc<glommio::net::UdpSocket>) {
    let mut batch = RecvBatch::new();
    let mut probe = [0u8; 1];
    loop {
        // Readiness: a non-blocking peek first, io_uring only when idle.
        if let Err(e) = socket.peek_from(&mut probe).await {
            tracing::warn!(error = %e, "shard socket peek failed");
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        {
            let mut s = shard.borrow_mut();
            if s.stopping {
                return;
            }
            s.reclaim_cross_slots();
            let now = Instant::now();
            for _ in 0..BATCHES_PER_TURN {
                let n = match batch.recv(s.fd) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "recvmmsg failed");
                        0
                    }
                };
                if n == 0 {
                    break;
                }
                s.counters.batches += 1;
                for i in 0..n {
                    let (from, truncated, len, buf) = batch.datagram(i);
                    s.handle_datagram(now, from, truncated, buf, len);
                }
                s.flush();
                if n < io::BATCH {
                    break;
                }
            }
        }
        glommio::yield_if_needed().await;
    }
}

/// Sends the queued lifecycle peer messages to every other shard, waiting for
/// room (never dropped).
async fn flush_peer_outbox(shard: &Rc<RefCell<Shard>>) {
    loop {
        let (msg, peers, me) = {
            let mut s = shard.borrow_mut();
            match s.peer_outbox.pop_front() {
                Some(msg) => (msg, s.peers.clone(), usize::from(s.id.0)),
                None => return,
            }
        };
        for (i, peer) in peers.iter().enumerate() {
            if i == me {
                continue;
            }
            let copy = match &msg {
                PeerMsg::Placed { session, shard } => PeerMsg::Placed {
                    session: *session,
                    shard: *shard,
                },
                PeerMsg::Unplaced { session, shard } => PeerMsg::Unplaced {
                    session: *session,
                    shard: *shard,
                },
                PeerMsg::Route(u) => PeerMsg::Route(u.clone()),
                PeerMsg::Pli { session } => PeerMsg::Pli { session: *session },
                // Packets are never broadcast.
                PeerMsg::Rtp { .. } | PeerMsg::Data { .. } => continue,
            };
            // A stopped peer is not an error here.
            let _ = peer.send_async(copy).await;
        }
    }
}

/// Drains this thread's OpenSSL error queue. Other OpenSSL users on the
/// shard thread (libsrtp's GCM, failed DTLS record decryption) leave entries
/// there, and a stale entry makes the DTLS endpoint's next `SSL_*` call look
/// fatal, hanging the PC up on a harmless datagram. Call before every DTLS
/// input; it allocates nothing when the queue is empty.
pub(crate) fn clear_openssl_errors() {
    drop(openssl::error::ErrorStack::get());
}

/// The wall clock as an NTP timestamp (SR sender info, RTT arrival time).
pub(crate) fn ntp_now() -> NtpTime {
    NtpTime::from_unix_us(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
    )
}

fn dtls_role(role: DtlsRole) -> jsfu_proto::dtls::DtlsRole {
    match role {
        DtlsRole::Client => jsfu_proto::dtls::DtlsRole::Client,
        DtlsRole::Server => jsfu_proto::dtls::DtlsRole::Server,
    }
}

impl Shard {
    // ----- slab -----

    pub(crate) fn session(&self, key: SessionKey) -> Option<&Session> {
        let e = self.slab.get(key.slot as usize)?;
        (e.generation == key.generation)
            .then_some(e.session.as_ref())
            .flatten()
    }

    pub(crate) fn session_mut(&mut self, key: SessionKey) -> Option<&mut Session> {
        let e = self.slab.get_mut(key.slot as usize)?;
        if e.generation == key.generation {
            e.session.as_mut()
        } else {
            None
        }
    }

    fn insert(&mut self, session: Session) -> SessionKey {
        if let Some(slot) = self.free_slots.pop() {
            let e = &mut self.slab[slot as usize];
            e.generation = e.generation.wrapping_add(1);
            e.session = Some(session);
            SessionKey {
                slot,
                generation: e.generation,
            }
        } else {
            // Slab indices fit u32: a shard holds far fewer sessions.
            let slot = self.slab.len() as u32;
            self.slab.push(Entry {
                generation: 0,
                session: Some(session),
            });
            SessionKey {
                slot,
                generation: 0,
            }
        }
    }

    fn take(&mut self, key: SessionKey) -> Option<Session> {
        let e = self.slab.get_mut(key.slot as usize)?;
        if e.generation != key.generation {
            return None;
        }
        let session = e.session.take()?;
        self.free_slots.push(key.slot);
        self.by_tuple.retain(|_, k| *k != key);
        if self.by_ufrag.get(session.config.local_ufrag.as_str()) == Some(&key) {
            self.by_ufrag.remove(session.config.local_ufrag.as_str());
        }
        if self.by_id.get(&session.id) == Some(&key) {
            self.by_id.remove(&session.id);
            if self.placement.get(&session.id) == Some(&self.id) {
                self.placement.remove(&session.id);
            }
            self.peer_outbox.push_back(PeerMsg::Unplaced {
                session: session.id,
                shard: self.id,
            });
        }
        Some(session)
    }

    pub(crate) fn now_us(&self, now: Instant) -> u64 {
        // Microseconds since the shard started: u64 covers 584 000 years.
        now.saturating_duration_since(self.epoch).as_micros() as u64
    }

    // ----- output -----

    /// Queues `len` bytes of egress slot `slot` for `to`.
    pub(crate) fn queue(&mut self, slot: u32, len: usize, to: SocketAddr) {
        self.txq.push((slot, len, to));
        if self.txq.len() >= self.txq.capacity() {
            self.flush();
        }
    }

    /// Sends everything queued with as few `sendmmsg` calls as possible.
    pub(crate) fn flush(&mut self) {
        if self.txq.is_empty() {
            return;
        }
        let pool = &self.pool;
        let sent = self.sender.send(
            self.fd,
            self.txq
                .iter()
                .map(|&(slot, len, to)| (&pool.get(slot)[..len], to)),
        );
        let total = self.txq.len();
        self.counters.datagrams_out += sent as u64;
        for _ in sent..total {
            self.counters.drop(DropReason::SendFailed);
        }
        for i in 0..total {
            let slot = self.txq[i].0;
            self.pool.put(slot);
        }
        self.txq.clear();
    }

    /// Reports a lifecycle event (never dropped).
    pub(crate) fn emit(&mut self, event: MediaEvent) {
        // The unbounded local channel only fails once the event task is gone
        // (shutdown), when nobody listens anyway.
        let _ = self.lifecycle.try_send(event);
    }

    /// Reports an event that may be dropped when control is slow.
    pub(crate) fn emit_lossy(&mut self, event: MediaEvent) {
        if self.events.try_send(event).is_err() {
            self.counters.drop(DropReason::EventQueueFull);
        }
    }

    /// Reports a data-channel message for the script, which must not
    /// overtake lifecycle events still waiting (data after `DataReady`):
    /// while some wait, it queues behind them as long as the messages
    /// queued there stay within `max_bytes`; otherwise it goes directly.
    /// Beyond, or when control's queue is full, it is dropped and counted.
    pub(crate) fn emit_data_ordered(&mut self, event: MediaEvent, max_bytes: usize) {
        let len = match &event {
            MediaEvent::IncomingData { data, .. } => data.len(),
            _ => 0,
        };
        if self.lifecycle.len() == 0 {
            self.emit_lossy(event);
            return;
        }
        let queued = self.lifecycle_data_bytes.get();
        if queued + len <= max_bytes {
            self.lifecycle_data_bytes.set(queued + len);
            self.emit(event);
        } else {
            self.counters.drop(DropReason::EventQueueFull);
        }
    }

    fn reclaim_cross_slots(&mut self) {
        while let Ok(slot) = self.returns_inbox.try_recv() {
            self.cross_free.push(slot);
        }
    }

    pub(crate) fn return_cross_slot(&mut self, origin: ShardId, slot: Box<Slot>) {
        if origin == self.id {
            self.cross_free.push(slot);
        } else if let Some(tx) = self.returns.get(usize::from(origin.0)) {
            // The return queue holds every slot of the origin's pool, so it
            // only fails when the origin stopped.
            let _ = tx.try_send(slot);
        }
    }

    pub(crate) fn snapshot(&self) -> ShardStats {
        let mut stats = ShardStats::new(
            self.id,
            self.by_id.len(),
            &self.counters,
            self.pool.misses(),
        );
        stats.recording = self.recorders.stats();
        stats
    }

    // ----- lifecycle -----

    fn create_pc(&mut self, now: Instant, config: Box<PcConfig>) {
        let session_id = config.session;
        if let Some(&old) = self.by_id.get(&session_id) {
            if let Some(mut s) = self.take(old) {
                s.dtls.close(now);
                s.ice.close();
            }
        }
        let built = (|| {
            let local = IceCredentials::new(&config.local_ufrag, &config.local_pwd)
                .map_err(|_| HangupReason::IceFailed)?;
            let remote = IceCredentials::new(&config.remote_ufrag, &config.remote_pwd)
                .map_err(|_| HangupReason::IceFailed)?;
            let mut ice = IceLiteAgent::new(IceConfig::default(), local)
                .map_err(|_| HangupReason::IceFailed)?;
            ice.set_remote_credentials(now, remote);
            let fingerprint = Fingerprint::parse(
                &config.remote_fingerprint.algorithm,
                &config.remote_fingerprint.value,
            )
            .map_err(|_| HangupReason::DtlsAlert)?;
            let dtls = DtlsEndpoint::new(&self.dtls, dtls_role(config.dtls_role), fingerprint)
                .map_err(|_| HangupReason::DtlsAlert)?;
            Ok::<_, HangupReason>((ice, dtls))
        })();
        let (ice, dtls) = match built {
            Ok(parts) => parts,
            Err(reason) => {
                tracing::warn!(session = %session_id, reason = reason.as_str(), "invalid PcConfig");
                self.emit(MediaEvent::Hangup {
                    session: session_id,
                    reason,
                });
                return;
            }
        };
        if self.by_ufrag.contains_key(config.local_ufrag.as_str()) {
            tracing::warn!(session = %session_id, "local ICE ufrag already in use on this shard");
            self.emit(MediaEvent::Hangup {
                session: session_id,
                reason: HangupReason::IceFailed,
            });
            return;
        }
        let mut inbound: [Inbound; 2] = Default::default();
        let layer_inbound: [Inbound; 2] = Default::default();
        for video in [false, true] {
            inbound[kind_index(video)].ssrc = config
                .media
                .iter()
                .find(|m| m.is_video() == video && m.recv)
                .and_then(|m| m.remote_ssrcs.first().copied());
        }
        let feedback = crate::feedback::Feedback::new(&config);
        let layers = crate::simulcast::LayerMap::from_config(&config);
        let ufrag = config.local_ufrag.clone();
        let session = Session {
            id: session_id,
            pt_table: crate::session::PtTable::of(&config),
            lines: crate::session::LineIndex::of(&config),
            config,
            ice,
            dtls,
            srtp_in: None,
            srtp_out: None,
            remote: None,
            started: false,
            ice_failed_since: None,
            inbound,
            layer_inbound,
            outbound: [Outbound::default(), Outbound::default()],
            current_sender: None,
            last_pli: None,
            next_report: now + REPORT_INTERVAL,
            next_stats: now + self.stats_interval,
            stats: SessionStats::default(),
            feedback,
            layers,
            layers_rx: crate::simulcast::LayerSelector::new(),
            sctp: None,
        };
        let key = self.insert(session);
        self.by_ufrag.insert(ufrag.clone(), key);
        // Checks that came before this PeerConnection, answered now.
        while let Some(replay) = self.early_stun.take(now, ufrag.as_bytes()) {
            self.counters.stun_early_replayed += 1;
            self.handle_stun(now, replay.from, replay.packet());
        }
        self.by_id.insert(session_id, key);
        self.placement.insert(session_id, self.id);
        self.peer_outbox.push_back(PeerMsg::Placed {
            session: session_id,
            shard: self.id,
        });
        tracing::debug!(session = %session_id, shard = self.id.0, "PeerConnection created");
    }

    fn update_pc(&mut self, now: Instant, config: Box<PcConfig>) {
        let Some(&key) = self.by_id.get(&config.session) else {
            self.counters.drop(DropReason::CommandUnknownSession);
            return;
        };
        let old_ufrag = match self.session(key) {
            Some(s) => s.config.local_ufrag.clone(),
            None => return,
        };
        let ufrag_changed = old_ufrag != config.local_ufrag;
        if ufrag_changed && self.by_ufrag.contains_key(config.local_ufrag.as_str()) {
            tracing::warn!(session = %config.session, "new local ICE ufrag already in use");
            return;
        }
        let Some(s) = self.session_mut(key) else {
            return;
        };
        if ufrag_changed {
            match IceCredentials::new(&config.local_ufrag, &config.local_pwd) {
                Ok(local) => {
                    if s.ice.restart(now, local).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        if ufrag_changed || s.config.remote_ufrag != config.remote_ufrag {
            if let Ok(remote) = IceCredentials::new(&config.remote_ufrag, &config.remote_pwd) {
                s.ice.set_remote_credentials(now, remote);
            }
        }
        for video in [false, true] {
            if let Some(ssrc) = config
                .media
                .iter()
                .find(|m| m.is_video() == video && m.recv)
                .and_then(|m| m.remote_ssrcs.first().copied())
            {
                s.inbound[kind_index(video)].ssrc = Some(ssrc);
            }
        }
        s.layers.update(&config);
        s.feedback.update(&config);
        let new_ufrag = config.local_ufrag.clone();
        s.pt_table = crate::session::PtTable::of(&config);
        s.lines = crate::session::LineIndex::of(&config);
        s.config = config;
        if ufrag_changed {
            self.by_ufrag.remove(old_ufrag.as_str());
            self.by_ufrag.insert(new_ufrag, key);
        }
        // A renegotiation may add the data m-line.
        self.sctp_start(now, key);
    }

    /// Tears a PC down; with a reason, reports the hangup.
    pub(crate) fn hangup(&mut self, now: Instant, key: SessionKey, reason: Option<HangupReason>) {
        let Some(mut s) = self.take(key) else {
            return;
        };
        s.dtls.close(now);
        if let Some(remote) = s.remote {
            while let Some(d) = s.dtls.poll_transmit() {
                let d: &[u8] = d;
                let n = d.len();
                if let Some(slot) = self.pool.take() {
                    let m = n.min(io::SLOT_LEN);
                    self.pool.get_mut(slot)[..m].copy_from_slice(&d[..m]);
                    self.queue(slot, m, remote);
                }
            }
        }
        s.ice.close();
        crate::data::log_sctp_stats(&s);
        if let Some(reason) = reason {
            self.emit(MediaEvent::Hangup {
                session: s.id,
                reason,
            });
        }
        tracing::debug!(session = %s.id, "PeerConnection removed");
    }

    // ----- ICE and DTLS outputs -----

    /// Processes ICE events after a STUN input or a timeout.
    pub(crate) fn drain_ice(&mut self, now: Instant, key: SessionKey) {
        loop {
            let Some(s) = self.session_mut(key) else {
                return;
            };
            let Some(event) = s.ice.poll_event() else {
                return;
            };
            let id = s.id;
            match event {
                IceEvent::SelectedAddress(addr) => {
                    s.remote = Some(addr);
                    self.by_tuple.insert(addr, key);
                    self.emit(MediaEvent::IcePairSelected {
                        session: id,
                        remote: addr,
                    });
                }
                IceEvent::StateChanged(IceState::Connected) => {
                    s.ice_failed_since = None;
                    if s.dtls.state() == ProtoDtlsState::New {
                        clear_openssl_errors();
                        s.dtls.start(now);
                        self.emit(MediaEvent::DtlsState {
                            session: id,
                            state: DtlsState::Connecting,
                        });
                        self.drain_dtls(now, key, None);
                    }
                }
                IceEvent::StateChanged(IceState::Failed) => {
                    if s.ice_failed_since.is_none() {
                        s.ice_failed_since = Some(now);
                    }
                }
                IceEvent::StateChanged(_) => {}
            }
        }
    }

    /// Sends what the DTLS endpoint wrote and handles its events. `from` is
    /// where the last DTLS datagram came from (used before ICE selected).
    pub(crate) fn drain_dtls(&mut self, now: Instant, key: SessionKey, from: Option<SocketAddr>) {
        // Datagrams.
        loop {
            let e = &mut self.slab[key.slot as usize];
            let Some(s) = e
                .session
                .as_mut()
                .filter(|_| e.generation == key.generation)
            else {
                return;
            };
            let Some(to) = s.remote.or(from) else {
                // Nowhere to send yet: the retransmission timer resends.
                while s.dtls.poll_transmit().is_some() {}
                break;
            };
            let Some(d) = s.dtls.poll_transmit() else {
                break;
            };
            let Some(slot) = self.pool.take() else {
                self.counters.drop(DropReason::EgressPoolEmpty);
                continue;
            };
            let n = d.len().min(io::SLOT_LEN);
            self.pool.get_mut(slot)[..n].copy_from_slice(&d[..n]);
            self.queue(slot, n, to);
        }
        // Application data: SCTP of the data channels (data.rs).
        self.sctp_input(now, key);
        // Events.
        loop {
            let Some(s) = self.session_mut(key) else {
                return;
            };
            let Some(event) = s.dtls.poll_event() else {
                return;
            };
            let id = s.id;
            match event {
                DtlsEvent::Connected(keys) => {
                    let profile = keys.profile;
                    let inbound = SrtpKeys::new(profile, keys.remote.key(), keys.remote.salt())
                        .and_then(|k| SrtpSession::inbound(&k));
                    let outbound = SrtpKeys::new(profile, keys.local.key(), keys.local.salt())
                        .and_then(|k| SrtpSession::outbound(&k));
                    match (inbound, outbound) {
                        (Ok(i), Ok(o)) => {
                            s.srtp_in = Some(i);
                            s.srtp_out = Some(o);
                            s.started = true;
                            self.emit(MediaEvent::DtlsState {
                                session: id,
                                state: DtlsState::Connected,
                            });
                            self.emit(MediaEvent::WebrtcUp { session: id });
                            self.sctp_start(now, key);
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            tracing::warn!(session = %id, error = %e, "SRTP setup failed");
                            self.emit(MediaEvent::DtlsState {
                                session: id,
                                state: DtlsState::Failed,
                            });
                            self.hangup(now, key, Some(HangupReason::DtlsAlert));
                            return;
                        }
                    }
                }
                DtlsEvent::Failed(failure) => {
                    self.emit(MediaEvent::DtlsState {
                        session: id,
                        state: DtlsState::Failed,
                    });
                    let reason = if failure == DtlsFailure::Timeout {
                        HangupReason::DtlsTimeout
                    } else {
                        HangupReason::DtlsAlert
                    };
                    self.hangup(now, key, Some(reason));
                    return;
                }
                DtlsEvent::Closed => {
                    self.emit(MediaEvent::DtlsState {
                        session: id,
                        state: DtlsState::Closed,
                    });
                    self.hangup(now, key, Some(HangupReason::DtlsAlert));
                    return;
                }
            }
        }
    }

    // ----- commands, routes, peers -----

    pub(crate) fn handle_command(&mut self, now: Instant, command: ShardCommand) {
        match command {
            ShardCommand::CreatePc(config) => self.create_pc(now, config),
            ShardCommand::UpdatePc(config) => self.update_pc(now, config),
            ShardCommand::RemovePc { session } => match self.by_id.get(&session) {
                Some(&key) => self.hangup(now, key, None),
                None => self.counters.drop(DropReason::CommandUnknownSession),
            },
            ShardCommand::ClosePc { session, reason } => match self.by_id.get(&session) {
                Some(&key) => self.hangup(now, key, Some(reason)),
                None => self.counters.drop(DropReason::CommandUnknownSession),
            },
            ShardCommand::RelayRtp {
                session,
                video,
                packet,
            } => self.relay_rtp_from_script(now, session, video, &packet),
            ShardCommand::RelayRtcp {
                session,
                video,
                packet,
            } => self.relay_rtcp_from_script(session, video, &packet),
            ShardCommand::RelayData {
                session,
                text,
                label,
                protocol,
                data,
            } => self.relay_data_from_script(now, session, text, &label, &protocol, &data),
            ShardCommand::StartRecording {
                session,
                medium,
                codec,
                fmtp,
                file,
                path,
                final_path,
                encrypted,
            } => self.recorders.start(crate::record::StartRecording {
                session,
                medium,
                codec,
                fmtp,
                file,
                path,
                final_path,
                encrypted,
            }),
            ShardCommand::StopRecording { session, medium } => {
                self.recorders.stop(session, medium);
            }
            // Commands added to jsfu-route later (the enum is non-exhaustive).
            _ => self.counters.drop(DropReason::CommandUnsupported),
        }
    }

    pub(crate) fn apply_route(&mut self, update: RouteUpdate) {
        match update {
            RouteUpdate::Route { session, route } => {
                let newer = self
                    .routes
                    .get(&session)
                    .is_none_or(|old| route.epoch > old.epoch);
                if newer {
                    self.routes.insert(session, route);
                }
            }
            RouteUpdate::SendPli { session } => {
                if let Some(&key) = self.by_id.get(&session) {
                    self.send_pli(Instant::now(), key);
                }
            }
            RouteUpdate::Remove { session } => {
                self.routes.remove(&session);
                if let Some(&key) = self.by_id.get(&session) {
                    self.hangup(Instant::now(), key, None);
                }
            }
        }
    }

    pub(crate) fn handle_peer(&mut self, now: Instant, msg: PeerMsg) {
        match msg {
            PeerMsg::Route(update) => self.apply_route(update),
            PeerMsg::Placed { session, shard } => {
                self.placement.insert(session, shard);
            }
            PeerMsg::Unplaced { session, shard } => {
                if self.placement.get(&session) == Some(&shard) {
                    self.placement.remove(&session);
                }
            }
            PeerMsg::Rtp {
                source,
                video,
                len,
                mut slot,
                origin,
                layer,
            } => {
                self.counters.cross_shard_in += 1;
                let len = len.min(io::SLOT_LEN);
                self.relay_to_local_recipients(now, source, video, &mut slot.0[..len], layer);
                self.return_cross_slot(origin, slot);
            }
            PeerMsg::Pli { session } => {
                if let Some(&key) = self.by_id.get(&session) {
                    self.send_pli(now, key);
                }
            }
            PeerMsg::Data { source, text, data } => {
                self.relay_data_from_peer(now, source, text, &data);
            }
        }
    }

    // ----- timers -----

    pub(crate) fn handle_timers(&mut self, now: Instant) {
        self.recorders.tick(now);
        // By index: hangups free slots while iterating, never shrink the slab.
        for slot in 0..self.slab.len() {
            let e = &self.slab[slot];
            if e.session.is_some() {
                let key = SessionKey {
                    // Slab indices fit u32 (see `insert`).
                    slot: slot as u32,
                    generation: e.generation,
                };
                self.session_timers(now, key);
            }
        }
    }

    fn session_timers(&mut self, now: Instant, key: SessionKey) {
        let Some(s) = self.session_mut(key) else {
            return;
        };
        if s.ice.poll_timeout().is_some_and(|t| t <= now) {
            s.ice.handle_timeout(now);
        }
        self.drain_ice(now, key);
        let Some(s) = self.session_mut(key) else {
            return;
        };
        if s.ice_failed_since
            .is_some_and(|t| now >= t + ICE_FAILED_GRACE)
        {
            self.hangup(now, key, Some(HangupReason::IceFailed));
            return;
        }
        if s.dtls.poll_timeout().is_some_and(|t| t <= now) {
            clear_openssl_errors();
            s.dtls.handle_timeout(now);
            self.drain_dtls(now, key, None);
        }
        self.sctp_timers(now, key);
        let Some(s) = self.session_mut(key) else {
            return;
        };
        if !s.started {
            return;
        }
        self.feedback_timers(now, key);
        let Some(s) = self.session_mut(key) else {
            return;
        };
        if now >= s.next_report {
            s.next_report = now + REPORT_INTERVAL;
            self.send_reports(now, key);
        }
        // Periodic PLI (setPliFreq) to this session's peer.
        let Some(s) = self.session(key) else {
            return;
        };
        let freq = self
            .routes
            .get(&s.id)
            .map_or(0, |r| u64::from(r.pli_freq_secs));
        if freq > 0
            && s.recv_line(true).is_some()
            && s.last_pli
                .is_none_or(|t| now >= t + Duration::from_secs(freq))
        {
            self.send_pli(now, key);
        }
        let stats_interval = self.stats_interval;
        let Some(s) = self.session_mut(key) else {
            return;
        };
        if !stats_interval.is_zero() && now >= s.next_stats {
            s.next_stats = now + stats_interval;
            let mut stats = s.stats;
            if let Some(sctp) = &s.sctp {
                let c = sctp.stats();
                stats.data = jsfu_route::DataStats {
                    association: true,
                    messages_in: c.messages_in,
                    bytes_in: c.bytes_in,
                    messages_out: c.messages_out,
                    bytes_out: c.bytes_out,
                    dropped: c.dropped_queue_full
                        + c.dropped_oversized
                        + c.dropped_send_other
                        + c.dropped_unknown_stream,
                };
            }
            let event = MediaEvent::Stats {
                session: s.id,
                stats,
            };
            self.emit_lossy(event);
        }
    }

    // ----- RTCP generation -----

    /// Builds RTCP into an egress slot with `write` (which gets the slot
    /// minus room for the SRTCP trailer and returns the length written, 0
    /// for nothing to send), protects and queues it.
    pub(crate) fn send_rtcp(
        &mut self,
        key: SessionKey,
        write: impl FnOnce(&Session, &mut [u8]) -> Result<usize, RtcpDrop>,
    ) -> RtcpSent {
        let Some(slot) = self.pool.take() else {
            self.counters.drop(DropReason::EgressPoolEmpty);
            return RtcpSent::Failed;
        };
        let mut empty = false;
        let e = &mut self.slab[key.slot as usize];
        let sent = match e.session.as_mut() {
            Some(s) if e.generation == key.generation => {
                let buf = self.pool.get_mut(slot);
                // A slot (2048 bytes) is far larger than the SRTCP trailer.
                let room = buf.len() - SRTCP_MAX_TRAILER;
                let written = write(s, &mut buf[..room]);
                empty = written == Ok(0);
                // A write error sends nothing and counts as not sent.
                let len = written.unwrap_or(0);
                match (s.remote, s.srtp_out.as_mut()) {
                    (Some(to), Some(srtp)) if len > 0 => {
                        match srtp.protect_rtcp(&mut buf[..], len) {
                            Ok(n) => {
                                s.stats.rtcp_packets_out += 1;
                                Some((n, to))
                            }
                            Err(_) => None,
                        }
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match sent {
            Some((n, to)) => {
                self.queue(slot, n, to);
                RtcpSent::Sent
            }
            None if empty => {
                self.pool.put(slot);
                RtcpSent::Nothing
            }
            None => {
                self.pool.put(slot);
                self.counters.drop(DropReason::RtcpNotSent);
                RtcpSent::Failed
            }
        }
    }

    /// Asks the session's peer for a keyframe.
    pub(crate) fn send_pli(&mut self, now: Instant, key: SessionKey) {
        let Some(s) = self.session_mut(key) else {
            return;
        };
        let Some(media) = s.inbound[kind_index(true)]
            .ssrc
            .or_else(|| s.layers.ssrcs().into_iter().flatten().next())
        else {
            self.counters.drop(DropReason::RtcpNotSent);
            return;
        };
        s.last_pli = Some(now);
        let sender = s.local_ssrc(true);
        // A simulcasting peer gets one PLI per layer (media.md §5.5).
        let layers = s.layers.ssrcs();
        let write = |_: &Session, out: &mut [u8]| {
            let mut n = write_pli(out, Ssrc(sender), Ssrc(media))?;
            for ssrc in layers.into_iter().flatten().filter(|&l| l != media) {
                n += write_pli(&mut out[n..], Ssrc(sender), Ssrc(ssrc))?;
            }
            Ok(n)
        };
        if self.send_rtcp(key, write) == RtcpSent::Sent {
            self.counters.plis_sent += 1;
            if let Some(s) = self.session_mut(key) {
                s.stats.plis_sent += 1;
            }
        }
    }

    /// Routes a PLI to the PC of `session`, wherever it is.
    pub(crate) fn request_pli(&mut self, now: Instant, session: PluginSessionId) {
        if let Some(&key) = self.by_id.get(&session) {
            self.send_pli(now, key);
        } else if let Some(&shard) = self.placement.get(&session) {
            if let Some(peer) = self.peers.get(usize::from(shard.0)) {
                if peer.try_send(PeerMsg::Pli { session }).is_err() {
                    self.counters.drop(DropReason::CrossShardQueueFull);
                }
            }
        }
    }

    /// SR (when sending) or RR (when receiving) per kind, once a second.
    fn send_reports(&mut self, now: Instant, key: SessionKey) {
        let ntp = ntp_now();
        for video in [false, true] {
            let sent = self.send_rtcp(key, |s, out| {
                let k = kind_index(video);
                let outbound = &s.outbound[k];
                // One block per received stream: the kind's, and on video
                // each further simulcast layer's.
                let mut blocks = [None; MAX_LAYERS];
                blocks[0] = report_block(&s.inbound[k], now, s.feedback.jitter(video));
                if video {
                    for (i, inbound) in s.layer_inbound.iter().enumerate() {
                        blocks[i + 1] = report_block(inbound, now, s.feedback.layer_jitter(i + 1));
                    }
                }
                let mut list = [ReportBlock::default(); MAX_LAYERS];
                let mut n = 0;
                for block in blocks.into_iter().flatten() {
                    list[n] = block;
                    n += 1;
                }
                let local = Ssrc(s.local_ssrc(video));
                let sending = s.send_line(video).is_some() && outbound.packets > 0;
                let info = sending.then(|| {
                    let since = outbound.last_sent.map_or(0, |t| {
                        let d = now.saturating_duration_since(t).as_micros();
                        u64::try_from(d).unwrap_or(u64::MAX)
                    });
                    SenderInfo {
                        ssrc: local,
                        ntp,
                        // Extrapolated from the last sent packet (media.md §5.5).
                        rtp_ts: extrapolate_rtp_ts(
                            outbound.last_rtp_ts,
                            0,
                            since,
                            if video { 90_000 } else { 48_000 },
                        ),
                        // RTCP counters are 32-bit and wrap.
                        packet_count: outbound.packets as u32,
                        octet_count: outbound.octets as u32,
                    }
                });
                write_report(out, local, info.as_ref(), &list[..n])
            });
            if let Some(s) = self.session_mut(key) {
                s.inbound[kind_index(video)].mark_reported();
                if video {
                    for inbound in &mut s.layer_inbound {
                        inbound.mark_reported();
                    }
                }
            }
            if sent == RtcpSent::Sent {
                self.counters.rtcp_reports_sent += 1;
            }
        }
    }
}

/// The report block about one received stream (RFC 3550 §6.4.1), or `None`
/// before its first packet.
fn report_block(inbound: &Inbound, now: Instant, jitter: u32) -> Option<ReportBlock> {
    let ssrc = inbound.ssrc.filter(|_| inbound.received > 0)?;
    let expected = inbound.highest - inbound.base + 1;
    let lost = expected.saturating_sub(inbound.received);
    let exp_int = expected - inbound.expected_prior.min(expected);
    let rec_int = inbound.received - inbound.received_prior.min(inbound.received);
    let lost_int = exp_int.saturating_sub(rec_int);
    // At most 256 * exp_int / exp_int = 256, clamped.
    let fraction = (lost_int << 8).checked_div(exp_int).unwrap_or(0).min(255) as u8;
    let (lsr, dlsr) = inbound.last_sr.map_or((0, 0), |(lsr, at)| {
        let d = now.saturating_duration_since(at);
        // DLSR in 1/65536 s, 32 bits (saturating).
        let dlsr = (d.as_micros() * 65_536 / 1_000_000).min(u128::from(u32::MAX));
        (lsr, dlsr as u32)
    });
    Some(ReportBlock {
        ssrc: Ssrc(ssrc),
        fraction_lost: fraction,
        // Clamped to 24 bits by the writer.
        cumulative_lost: i32::try_from(lost).unwrap_or(i32::MAX),
        // The highest sequence number with the count of cycles since the
        // first packet (the unwrapper's extended numbers start one cycle
        // up), low 32 bits.
        ext_highest_seq: ((inbound.highest >> 16).saturating_sub(inbound.base >> 16) << 16
            | (inbound.highest & 0xffff)) as u32,
        jitter,
        lsr,
        dlsr,
    })
}

/// The periodic report of one m-line (media.md §5.5): an SR when `sender`
/// is given (we sent something), else an RR when there are report blocks
/// (we receive), then an SDES CNAME `janus`; nothing (0) otherwise.
fn write_report(
    out: &mut [u8],
    local: Ssrc,
    sender: Option<&SenderInfo>,
    blocks: &[ReportBlock],
) -> Result<usize, RtcpDrop> {
    let n = match sender {
        Some(info) => write_sr(out, info, blocks)?,
        None if !blocks.is_empty() => write_rr(out, local, blocks)?,
        None => return Ok(0),
    };
    Ok(n + write_sdes_cname(&mut out[n..], local, b"janus")?)
}

/// What [`Shard::send_rtcp`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RtcpSent {
    /// Protected and queued.
    Sent,
    /// The writer had nothing to say.
    Nothing,
    /// No slot, keys or address (counted).
    Failed,
}

#[cfg(test)]
mod tests {
    use jsfu_proto::rtcp::{self, RtcpPacket};
    use jsfu_proto::rtp::SeqNo;

    use super::*;

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: Ssrc(0x0a0b_0c0d),
            fraction_lost: 0x40,
            cumulative_lost: 5,
            ext_highest_seq: 0x0001_0010,
            jitter: 0x20,
            lsr: 0x1234_5678,
            dlsr: 0x0001_0000,
        }
    }

    #[test]
    fn sender_report_then_cname() {
        let info = SenderInfo {
            ssrc: Ssrc(0x0102_0304),
            ntp: NtpTime(0x1122_3344_5566_7788),
            rtp_ts: 0x99aa_bbcc,
            packet_count: 7,
            octet_count: 8,
        };
        let mut out = [0u8; 128];
        let n = write_report(&mut out, info.ssrc, Some(&info), &[block()]).expect("fits");
        #[rustfmt::skip]
        let expect: &[u8] = &[
            // SR, RC=1, 12 words: sender info, one block
            0x81, 200, 0, 12, 1, 2, 3, 4,
            0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
            0x99, 0xaa, 0xbb, 0xcc, 0, 0, 0, 7, 0, 0, 0, 8,
            0x0a, 0x0b, 0x0c, 0x0d, 0x40, 0, 0, 5,
            0, 1, 0, 0x10, 0, 0, 0, 0x20,
            0x12, 0x34, 0x56, 0x78, 0, 1, 0, 0,
            // SDES, SC=1, 3 words: CNAME "janus", null-terminated, padded
            0x81, 202, 0, 3, 1, 2, 3, 4,
            1, 5, b'j', b'a', b'n', b'u', b's', 0,
        ];
        assert_eq!(&out[..n], expect);
        // Without blocks the SR is 28 bytes, RC 0.
        let n = write_report(&mut out, info.ssrc, Some(&info), &[]).expect("fits");
        assert_eq!((n, out[0], &out[2..4]), (44, 0x80, &[0u8, 6][..]));
    }

    #[test]
    fn receiver_report_or_nothing() {
        let mut out = [0u8; 128];
        assert_eq!(write_report(&mut out, Ssrc(9), None, &[]), Ok(0));
        let mut b = block();
        // The cumulative loss is clamped to the 24-bit field.
        b.cumulative_lost = i32::MAX;
        let n = write_report(&mut out, Ssrc(9), None, &[b]).expect("fits");
        assert_eq!(n, 32 + 16);
        assert_eq!(&out[..8], &[0x81, 201, 0, 7, 0, 0, 0, 9]);
        assert_eq!(&out[12..16], &[0x40, 0x7f, 0xff, 0xff]);
        let kinds: Vec<bool> = rtcp::parse(&out[..n])
            .map(|p| match p {
                Ok(RtcpPacket::ReceiverReport(rr)) => rr.report_blocks().count() == 1,
                Ok(RtcpPacket::Sdes(s)) => s.cname() == Some((Ssrc(9), &b"janus"[..])),
                _ => false,
            })
            .collect();
        assert_eq!(kinds, [true, true]);
        // Too small a buffer is an error, not a panic.
        assert!(write_report(&mut out[..40], Ssrc(9), None, &[b]).is_err());
    }

    #[test]
    fn report_blocks_count_each_stream() {
        let now = Instant::now();
        let mut layer = Inbound::default();
        assert!(
            report_block(&layer, now, 0).is_none(),
            "nothing received yet"
        );
        // 10 sent, 8 received (4 and 7 lost).
        for seq in [1u16, 2, 3, 5, 6, 8, 9, 10] {
            layer.follow(0xbeef, SeqNo(seq));
        }
        let b = report_block(&layer, now, 77).expect("a block");
        assert_eq!(b.ssrc, Ssrc(0xbeef));
        assert_eq!(b.cumulative_lost, 2);
        assert_eq!(b.ext_highest_seq, 10);
        assert_eq!(b.fraction_lost, 51, "2 of 10 lost: 256 * 2 / 10");
        assert_eq!(b.jitter, 77);
        layer.mark_reported();
        // The next interval: 5 more, none lost.
        for seq in 11u16..16 {
            layer.follow(0xbeef, SeqNo(seq));
        }
        let b = report_block(&layer, now, 0).expect("a block");
        assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 2));
        // A restarted sender (new SSRC) starts over.
        layer.follow(0xcafe, SeqNo(500));
        let b = report_block(&layer, now, 0).expect("a block");
        assert_eq!(
            (b.ssrc, b.cumulative_lost, b.ext_highest_seq),
            (Ssrc(0xcafe), 0, 500)
        );
        // Across a wrap the cycle count appears.
        for seq in [65534u16, 65535, 0, 1] {
            layer.follow(0xd00d, SeqNo(seq));
        }
        let b = report_block(&layer, now, 0).expect("a block");
        assert_eq!((b.ext_highest_seq, b.cumulative_lost), (0x1_0001, 0));
    }
}
