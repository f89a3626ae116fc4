//! The jsfu dataplane: glommio shards that own UDP sockets, PeerConnections and
//! the native relay.
//!
//! Control calls [`start`] once with a [`ShardSetConfig`]; afterwards it speaks
//! to each shard only through the jsfu-route messages of its [`ShardHandle`]:
//!
//! * [`ShardCommand::CreatePc`] to the shard whose [`ShardHandle::local_addr`]
//!   the session's ICE candidate advertises (every packet of a session then
//!   arrives on the shard that owns it), `UpdatePc`, `RemovePc`, `ClosePc`,
//!   `RelayRtp`, `RelayRtcp`, ...;
//! * [`RouteUpdate`]s to any shard (normally the owner of the source session):
//!   a shard applies an update when its epoch is newer than the one it holds
//!   and forwards what control sent it to every other shard, so recipients on
//!   any shard see the gates and recipient lists they need;
//! * [`MediaEvent`]s come back on the sender given in the configuration.
//!
//! Each shard runs one glommio executor with its own task queues: the relay
//! (receive batch → demultiplex → ICE / DTLS / SRTP → route → per-recipient
//! rewrite, protect, send batch), control (commands, route updates, peer
//! messages), timers (ICE consent, DTLS retransmission and deadline, RTCP
//! reports, periodic PLIs, stats) and events. State changes arrive as messages
//! and are applied between batches. Per packet there is no heap allocation,
//! lock, log line, JSON or JavaScript; every drop bumps a [`DropReason`]
//! counter readable with [`ShardHandle::stats`].
//!
//! Packets for a recipient placed on another shard are decrypted once on the
//! source's shard and handed over, in plaintext, through a bounded channel
//! with pooled buffers; the recipient's shard encrypts for each of its
//! recipients.

mod control;
mod data;
mod early;
mod feedback;
pub mod io;
mod record;
mod relay;
mod session;
mod shard;
mod simulcast;
mod stats;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use jsfu_proto::dtls::DtlsContext;
use jsfu_route::{MediaEvent, RouteUpdate, ShardCommand, ShardId};

pub use record::RecordingStats;
pub use stats::{DropReason, ShardStats};

use crate::control::Control;
use crate::shard::{PeerLinks, ShardParams};

/// Errors of [`start`] and of the [`ShardHandle`] requests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// The configuration is unusable.
    #[error("invalid shard configuration: {0}")]
    Config(&'static str),
    /// A shard's socket could not be bound.
    #[error("shard {shard}: cannot bind UDP {addr}: {source}")]
    Bind {
        /// The shard.
        shard: u16,
        /// The address it tried.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A glommio executor could not be created.
    #[error("shard {shard}: cannot start the executor: {message}")]
    Executor {
        /// The shard.
        shard: u16,
        /// glommio's error, rendered.
        message: String,
    },
    /// The shard is gone (stopped or crashed).
    #[error("shard {0} is not running")]
    Stopped(u16),
    /// The shard did not answer in time.
    #[error("shard {0} did not answer in time")]
    Timeout(u16),
}

/// Least room in a shard's command queue (see [`ShardSetConfig::queue_capacity`]).
pub const MIN_COMMAND_QUEUE: usize = 16_384;

/// How to start the shards.
#[derive(Debug, Clone)]
pub struct ShardSetConfig {
    /// Number of shards; 0 means [`default_shard_count`].
    pub shards: usize,
    /// Address every shard socket binds to (and advertises).
    pub media_ip: IpAddr,
    /// Shard `i` binds `rtp_port_base + i`; 0 lets the kernel pick a port
    /// per shard (tests). Read the bound addresses from
    /// [`ShardHandle::local_addr`].
    pub rtp_port_base: u16,
    /// Pin shard `i` to CPU `i + 1` (core 0 stays with control). Off: unbound
    /// placement (tests, CI with two cores).
    pub pin_to_cores: bool,
    /// The server's DTLS context (certificate, profiles, MTU).
    pub dtls: DtlsContext,
    /// Where shards report [`MediaEvent`]s. Lifecycle events wait for room;
    /// stats and slow-path packets are dropped (and counted) when it is full.
    pub events: flume::Sender<MediaEvent>,
    /// Capacity of each shard's route-update and command queues.
    pub queue_capacity: usize,
    /// Egress slots per shard (each [`io::SLOT_LEN`] bytes).
    pub egress_slots: usize,
    /// Plaintext buffers a shard may have in flight to other shards.
    pub cross_shard_slots: usize,
    /// How often each session's [`MediaEvent::Stats`] is sent (zero: never).
    pub stats_interval: Duration,
    /// Kernel socket buffer size requested for each shard socket.
    pub socket_buffer_bytes: usize,
    /// Packets lost in one second (by the peer on what we send, or by us on
    /// what it sends) that raise [`MediaEvent::SlowLink`] (media.md §9);
    /// 0 turns slow-link reports off.
    pub slowlink_threshold: u32,
}

impl ShardSetConfig {
    /// A configuration with defaults for everything but the essentials.
    pub fn new(media_ip: IpAddr, dtls: DtlsContext, events: flume::Sender<MediaEvent>) -> Self {
        Self {
            shards: 0,
            media_ip,
            rtp_port_base: 0,
            pin_to_cores: false,
            dtls,
            events,
            queue_capacity: 1024,
            egress_slots: 4096,
            cross_shard_slots: 1024,
            stats_interval: Duration::from_secs(10),
            socket_buffer_bytes: 4 << 20,
            slowlink_threshold: 0,
        }
    }
}

/// The default number of shards: one per core but the first, at least one.
pub fn default_shard_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1)
}

/// Control's handle on one running shard.
#[derive(Debug, Clone)]
pub struct ShardHandle {
    id: ShardId,
    local_addr: SocketAddr,
    routes: flume::Sender<RouteUpdate>,
    commands: flume::Sender<ShardCommand>,
    control: flume::Sender<Control>,
}

impl ShardHandle {
    /// The shard's id (its index).
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// The UDP address the shard's socket is bound to: the ICE candidate of
    /// every session placed on this shard.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where to send route updates (bounded; `send` waits for room).
    pub fn routes(&self) -> &flume::Sender<RouteUpdate> {
        &self.routes
    }

    /// Where to send commands (bounded; `send` waits for room).
    pub fn commands(&self) -> &flume::Sender<ShardCommand> {
        &self.commands
    }

    /// A snapshot of the shard's counters, waiting at most `timeout`.
    pub fn stats(&self, timeout: Duration) -> Result<ShardStats, ShardError> {
        let (tx, rx) = flume::bounded(1);
        self.control
            .send_timeout(Control::Stats(tx), timeout)
            .map_err(|_| ShardError::Stopped(self.id.0))?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            flume::RecvTimeoutError::Timeout => ShardError::Timeout(self.id.0),
            flume::RecvTimeoutError::Disconnected => ShardError::Stopped(self.id.0),
        })
    }
}

/// The running shards.
#[derive(Debug)]
pub struct ShardSet {
    handles: Vec<ShardHandle>,
    joins: Vec<ExecutorJoinHandle<()>>,
}

impl ShardSet {
    /// Stops every shard (sessions are dropped without events) and waits for
    /// their threads.
    pub fn shutdown(self) -> Result<(), ShardError> {
        for handle in &self.handles {
            // A shard that already stopped has dropped its receiver: fine.
            let _ = handle.control.send(Control::Shutdown);
        }
        let mut result = Ok(());
        for (i, join) in self.joins.into_iter().enumerate() {
            if join.join().is_err() && result.is_ok() {
                // Shard ids are u16 (checked in `start`).
                result = Err(ShardError::Stopped(i as u16));
            }
        }
        result
    }

    /// The shards, indexed by their id.
    pub fn shards(&self) -> &[ShardHandle] {
        &self.handles
    }

    /// One shard.
    pub fn shard(&self, id: ShardId) -> Option<&ShardHandle> {
        self.handles.get(usize::from(id.0))
    }
}

/// Starts the shards: binds one UDP socket per shard, spawns one glommio
/// executor thread per shard and returns once every socket is bound.
pub fn start(cfg: ShardSetConfig) -> Result<ShardSet, ShardError> {
    let count = if cfg.shards == 0 {
        default_shard_count()
    } else {
        cfg.shards
    };
    if count > usize::from(u16::MAX) {
        return Err(ShardError::Config("too many shards"));
    }
    if cfg.queue_capacity == 0 || cfg.egress_slots < io::BATCH * 2 {
        return Err(ShardError::Config(
            "queue capacity must be positive and egress slots at least 64",
        ));
    }
    // Bind in the calling thread, so errors are synchronous; the executors
    // take the sockets over.
    let mut sockets = Vec::with_capacity(count);
    for i in 0..count {
        let port = if cfg.rtp_port_base == 0 {
            0
        } else {
            // `count` fits u16 (checked above); overflow means a bad base.
            cfg.rtp_port_base
                .checked_add(i as u16)
                .ok_or(ShardError::Config("rtp_port_base + shards exceeds 65535"))?
        };
        let addr = SocketAddr::new(cfg.media_ip, port);
        let socket = std::net::UdpSocket::bind(addr).map_err(|source| ShardError::Bind {
            shard: i as u16,
            addr,
            source,
        })?;
        let local = socket.local_addr().map_err(|source| ShardError::Bind {
            shard: i as u16,
            addr,
            source,
        })?;
        sockets.push((socket, local));
    }

    let mut peer_inboxes = Vec::with_capacity(count);
    let mut peer_senders = Vec::with_capacity(count);
    let mut return_inboxes = Vec::with_capacity(count);
    let mut return_senders = Vec::with_capacity(count);
    for _ in 0..count {
        let (tx, rx) = flume::bounded(cfg.queue_capacity.max(cfg.cross_shard_slots));
        peer_senders.push(tx);
        peer_inboxes.push(rx);
        let (tx, rx) = flume::bounded(cfg.cross_shard_slots.max(1));
        return_senders.push(tx);
        return_inboxes.push(rx);
    }

    let mut handles = Vec::with_capacity(count);
    let mut joins = Vec::with_capacity(count);
    let peer_inboxes = peer_inboxes.into_iter();
    let return_inboxes = return_inboxes.into_iter();
    for (i, (((socket, local), peer_inbox), return_inbox)) in sockets
        .into_iter()
        .zip(peer_inboxes)
        .zip(return_inboxes)
        .enumerate()
    {
        // Checked above: count fits u16.
        let id = ShardId(i as u16);
        let (route_tx, route_rx) = flume::bounded(cfg.queue_capacity);
        // Commands carry the scripts' relayed data and packets: room for
        // a burst while the shard is busy relaying (a flume queue grows
        // only as far as it is filled).
        let (command_tx, command_rx) = flume::bounded(cfg.queue_capacity.max(MIN_COMMAND_QUEUE));
        let (control_tx, control_rx) = flume::bounded(16);
        let params = ShardParams {
            id,
            socket,
            local_addr: local,
            dtls: cfg.dtls.clone(),
            events: cfg.events.clone(),
            egress_slots: cfg.egress_slots,
            cross_shard_slots: cfg.cross_shard_slots,
            stats_interval: cfg.stats_interval,
            socket_buffer_bytes: cfg.socket_buffer_bytes,
            slowlink_threshold: cfg.slowlink_threshold,
            routes: route_rx,
            commands: command_rx,
            control: control_rx,
            links: PeerLinks {
                inbox: peer_inbox,
                peers: peer_senders.clone(),
                returns_inbox: return_inbox,
                returns: return_senders.clone(),
            },
        };
        let placement = if cfg.pin_to_cores {
            Placement::Fixed(i + 1)
        } else {
            Placement::Unbound
        };
        let mut builder = LocalExecutorBuilder::new(placement).name(&format!("jsfu-shard-{i}"));
        if cfg!(debug_assertions) {
            builder =
                builder.detect_stalls(Some(Box::new(glommio::DefaultStallDetectionHandler {})));
        }
        let join = builder
            .spawn(move || shard::run(params))
            .map_err(|e| ShardError::Executor {
                shard: i as u16,
                message: e.to_string(),
            })?;
        joins.push(join);
        handles.push(ShardHandle {
            id,
            local_addr: local,
            routes: route_tx,
            commands: command_tx,
            control: control_tx,
        });
    }
    Ok(ShardSet { handles, joins })
}
