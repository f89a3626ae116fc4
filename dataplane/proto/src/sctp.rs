//! WebRTC data channels: one SCTP association carried in DTLS application
//! data (RFC 8261) plus the Data Channel Establishment Protocol (RFC 8832).
//!
//! [`SctpAssociation`] wraps the sans-IO `sctp-proto` stack for one
//! PeerConnection. Feed it every decrypted DTLS application record with
//! [`SctpAssociation::handle_data`], send what [`SctpAssociation::poll_transmit`]
//! returns as DTLS application data, call [`SctpAssociation::handle_timeout`]
//! when [`SctpAssociation::poll_timeout`] says so and read
//! [`SctpEvent`]s with [`SctpAssociation::poll_event`].
//!
//! Limits (media.md §8): SCTP port 5000 on both sides, at most
//! [`MAX_CHANNELS`] open channels and [`MAX_STREAMS`] streams each way,
//! messages up to [`MAX_MESSAGE_SIZE`] bytes in both directions, and at most
//! [`SEND_QUEUE_BYTES`] bytes waiting to be sent per association (messages
//! queued before the association is up included). What exceeds a limit is
//! dropped and counted in [`SctpStats`]; nothing here panics on peer input.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sctp_proto::{
    Association, AssociationHandle, ClientConfig, DatagramEvent, Endpoint, EndpointConfig, Event,
    Payload, PayloadProtocolIdentifier, ReliabilityType, ServerConfig, StreamEvent,
    TransportConfig,
};

/// The SCTP port of both ends (RFC 8841 default, media.md §8).
pub const SCTP_PORT: u16 = 5000;

/// Largest message accepted from the peer or sent to it, in bytes (256 KiB).
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024;

/// Bytes that may wait to be sent on one association (queued before the
/// association is up plus buffered in the SCTP stack); a send beyond this is
/// dropped and counted. 16 MiB is what Chromium lets an RTCDataChannel buffer
/// (`bufferedAmount`) before it gives up on the channel: a burst a browser
/// would send is queued and flushed in order (media.md §8), while a peer that
/// never reads cannot make the server hold more.
pub const SEND_QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// Open channels per association.
pub const MAX_CHANNELS: usize = 150;

/// Streams per direction offered in INIT / INIT ACK.
pub const MAX_STREAMS: u16 = 300;

/// Label of the channel used when none is given (compat-notes.md decision 13).
pub const DEFAULT_LABEL: &str = "JanusDataChannel";

/// Receive buffer of the association (bytes).
const RECEIVE_BUFFER: u32 = 1024 * 1024;

/// Lower bound of the retransmission timeout (ms). RFC 4960's 1 s floor
/// turns every lost tail packet of a burst into a one-second stall; the
/// WebRTC stacks in browsers floor it far lower for data channels, and the
/// estimate (SRTT + 4 RTTVAR) still governs on slow paths.
const RTO_MIN_MS: u64 = 200;

/// Initial retransmission timeout before any RTT sample (ms).
const RTO_INITIAL_MS: u64 = 1000;

/// DCEP message types (RFC 8832 §5).
const DCEP_ACK: u8 = 0x02;
const DCEP_OPEN: u8 = 0x03;

/// Fixed part of DATA_CHANNEL_OPEN.
const DCEP_OPEN_HEADER: usize = 12;

/// Placeholder transport address: the association runs over DTLS, so the
/// address is never used for anything but the stack's bookkeeping.
const TUNNEL_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), SCTP_PORT);

/// Reliability of a channel as DCEP describes it (RFC 8832 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reliability {
    /// Every message is retransmitted until acknowledged.
    Reliable,
    /// At most this many retransmissions per message.
    MaxRetransmits(u32),
    /// Retransmissions stop after this many milliseconds.
    MaxLifetimeMs(u32),
}

/// A parsed DATA_CHANNEL_OPEN (RFC 8832 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcepOpen {
    /// Messages may be delivered out of order.
    pub unordered: bool,
    /// Full or partial reliability.
    pub reliability: Reliability,
    /// The priority field.
    pub priority: u16,
    /// The channel label (lossy UTF-8).
    pub label: String,
    /// The subprotocol (lossy UTF-8, empty when none).
    pub protocol: String,
}

impl DcepOpen {
    /// A reliable, ordered channel.
    pub fn reliable(label: &str, protocol: &str) -> Self {
        Self {
            unordered: false,
            reliability: Reliability::Reliable,
            priority: 0,
            label: label.to_owned(),
            protocol: protocol.to_owned(),
        }
    }

    /// The wire form, or `None` when the label or protocol is longer than 65535 bytes.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let label_len = u16::try_from(self.label.len()).ok()?;
        let protocol_len = u16::try_from(self.protocol.len()).ok()?;
        let (kind, param) = match self.reliability {
            Reliability::Reliable => (0x00, 0),
            Reliability::MaxRetransmits(n) => (0x01, n),
            Reliability::MaxLifetimeMs(ms) => (0x02, ms),
        };
        let kind = if self.unordered { kind | 0x80 } else { kind };
        let mut out = Vec::with_capacity(DCEP_OPEN_HEADER + self.label.len() + self.protocol.len());
        out.push(DCEP_OPEN);
        out.push(kind);
        out.extend_from_slice(&self.priority.to_be_bytes());
        out.extend_from_slice(&param.to_be_bytes());
        out.extend_from_slice(&label_len.to_be_bytes());
        out.extend_from_slice(&protocol_len.to_be_bytes());
        out.extend_from_slice(self.label.as_bytes());
        out.extend_from_slice(self.protocol.as_bytes());
        Some(out)
    }
}

/// A DCEP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DcepMessage {
    /// DATA_CHANNEL_OPEN.
    Open(DcepOpen),
    /// DATA_CHANNEL_ACK.
    Ack,
}

/// Why a DCEP message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DcepError {
    /// Empty message.
    #[error("empty DCEP message")]
    Empty,
    /// Unknown message type.
    #[error("unknown DCEP message type {0:#04x}")]
    UnknownType(u8),
    /// Unknown channel type in an OPEN.
    #[error("unknown DCEP channel type {0:#04x}")]
    UnknownChannelType(u8),
    /// Shorter than its header or its declared label and protocol lengths.
    #[error("truncated DCEP message")]
    Truncated,
}

/// Parses one DCEP message (the fuzzing entry point for DCEP). Trailing
/// bytes after an OPEN's protocol are ignored, as are bytes after an ACK.
pub fn parse_dcep(bytes: &[u8]) -> Result<DcepMessage, DcepError> {
    let (&kind, rest) = bytes.split_first().ok_or(DcepError::Empty)?;
    match kind {
        DCEP_ACK => Ok(DcepMessage::Ack),
        DCEP_OPEN => {
            if bytes.len() < DCEP_OPEN_HEADER {
                return Err(DcepError::Truncated);
            }
            let channel_type = rest[0];
            let priority = u16::from_be_bytes([rest[1], rest[2]]);
            let param = u32::from_be_bytes([rest[3], rest[4], rest[5], rest[6]]);
            let label_len = usize::from(u16::from_be_bytes([rest[7], rest[8]]));
            let protocol_len = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
            let body = &bytes[DCEP_OPEN_HEADER..];
            if body.len() < label_len + protocol_len {
                return Err(DcepError::Truncated);
            }
            let reliability = match channel_type & 0x7f {
                0x00 => Reliability::Reliable,
                0x01 => Reliability::MaxRetransmits(param),
                0x02 => Reliability::MaxLifetimeMs(param),
                _ => return Err(DcepError::UnknownChannelType(channel_type)),
            };
            Ok(DcepMessage::Open(DcepOpen {
                unordered: channel_type & 0x80 != 0,
                reliability,
                priority,
                label: String::from_utf8_lossy(&body[..label_len]).into_owned(),
                protocol: String::from_utf8_lossy(&body[label_len..label_len + protocol_len])
                    .into_owned(),
            }))
        }
        other => Err(DcepError::UnknownType(other)),
    }
}

/// Which side starts the SCTP handshake. The DTLS client sends INIT and
/// uses even stream ids; the DTLS server waits for INIT and uses odd ids
/// (RFC 8832 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SctpRole {
    /// We are the DTLS client.
    Client,
    /// We are the DTLS server.
    Server,
}

/// A user message received on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMessage {
    /// The channel's stream id.
    pub stream: u16,
    /// The channel's label.
    pub label: String,
    /// The channel's subprotocol (empty when none).
    pub protocol: String,
    /// PPID 51/56 (else 53/57).
    pub text: bool,
    /// The message (empty for PPIDs 56/57).
    pub data: Vec<u8>,
}

/// What the association reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SctpEvent {
    /// The association is established.
    Connected,
    /// Everything queued was handed to the peer (after [`Self::Connected`] and
    /// on every drain of the send buffers): more data may be sent.
    Ready,
    /// A channel opened (by the peer with DCEP OPEN, or by us).
    ChannelOpened {
        /// Its stream id.
        stream: u16,
        /// Its label.
        label: String,
        /// Its subprotocol.
        protocol: String,
    },
    /// The peer closed (reset) a channel.
    ChannelClosed {
        /// Its stream id.
        stream: u16,
        /// Its label.
        label: String,
    },
    /// A message arrived.
    Message(DataMessage),
    /// The association failed or was closed by the peer; it is gone.
    Lost,
}

/// Why a send was refused (the message is dropped and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SctpSendError {
    /// Larger than [`MAX_MESSAGE_SIZE`].
    #[error("message larger than {MAX_MESSAGE_SIZE} bytes")]
    Oversized,
    /// [`SEND_QUEUE_BYTES`] are already waiting.
    #[error("send queue full")]
    QueueFull,
    /// No channel with the label could be opened (limit reached, bad label).
    #[error("cannot open a channel")]
    NoChannel,
    /// The association failed or was closed.
    #[error("association closed")]
    Closed,
    /// The SCTP stack refused the message.
    #[error("SCTP stack refused the message")]
    Stack,
}

/// Counters of one association.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SctpStats {
    /// User messages received.
    pub messages_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// User messages handed to the stack.
    pub messages_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Sends refused because the queue was full.
    pub dropped_queue_full: u64,
    /// Sends refused because they exceeded [`MAX_MESSAGE_SIZE`].
    pub dropped_oversized: u64,
    /// Other refused sends (no channel, closed, stack error).
    pub dropped_send_other: u64,
    /// Received messages on streams without an open channel, or with an
    /// unsupported PPID.
    pub dropped_unknown_stream: u64,
    /// Malformed or unexpected DCEP messages.
    pub dcep_errors: u64,
    /// Channels refused because [`MAX_CHANNELS`] were open.
    pub channels_refused: u64,
    /// Packets the stack could not even route (bad header, unexpected INIT).
    pub packets_ignored: u64,
    /// Times the SCTP stack failed internally (the association was dropped).
    pub stack_failures: u64,
}

#[derive(Debug)]
struct Channel {
    label: String,
    protocol: String,
}

#[derive(Debug)]
struct Pending {
    label: String,
    protocol: String,
    text: bool,
    data: Vec<u8>,
}

/// One SCTP association with its data channels (see the module docs).
#[derive(Debug)]
pub struct SctpAssociation {
    role: SctpRole,
    endpoint: Endpoint,
    transport: Arc<TransportConfig>,
    association: Option<(AssociationHandle, Association)>,
    /// The peer's initiate tag of the INIT that created our association
    /// (server side): retransmissions of that INIT are passed on, others are not.
    peer_init_tag: Option<u32>,
    started: bool,
    connected: bool,
    lost: bool,
    channels: BTreeMap<u16, Channel>,
    /// Messages sent before the association was up.
    pending: VecDeque<Pending>,
    pending_bytes: usize,
    /// Something was buffered since the last [`SctpEvent::Ready`].
    buffered: bool,
    transmit: VecDeque<Bytes>,
    events: VecDeque<SctpEvent>,
    stats: SctpStats,
}

impl SctpAssociation {
    /// A new association for a PeerConnection whose DTLS role gives `role`.
    /// Nothing happens before [`Self::start`] (client) or the first packet
    /// (server).
    pub fn new(role: SctpRole) -> Self {
        let transport = Arc::new(
            TransportConfig::default()
                .with_max_send_message_size(MAX_MESSAGE_SIZE as u32)
                .with_max_receive_message_size(MAX_MESSAGE_SIZE as u32)
                .with_max_receive_buffer_size(RECEIVE_BUFFER)
                .with_max_num_inbound_streams(MAX_STREAMS)
                .with_max_num_outbound_streams(MAX_STREAMS)
                .with_max_init_retransmits(None)
                .with_rto_min_ms(RTO_MIN_MS)
                .with_rto_initial_ms(RTO_INITIAL_MS)
                .with_local_port(SCTP_PORT)
                .with_remote_port(SCTP_PORT),
        );
        let mut server = ServerConfig::new();
        server.transport = transport.clone();
        let endpoint = Endpoint::new(Arc::new(EndpointConfig::new()), Some(Arc::new(server)));
        Self {
            role,
            endpoint,
            transport,
            association: None,
            peer_init_tag: None,
            started: false,
            connected: false,
            lost: false,
            channels: BTreeMap::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            buffered: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            stats: SctpStats::default(),
        }
    }

    /// Starts the association once DTLS is connected: the client sends INIT,
    /// the server waits for one. Idempotent.
    pub fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        self.guarded(|s| s.connect(now));
    }

    fn connect(&mut self, now: Instant) {
        if self.role == SctpRole::Client {
            let mut config = ClientConfig::new();
            config.transport = self.transport.clone();
            match self.endpoint.connect(config, TUNNEL_ADDR) {
                Ok(pair) => self.association = Some(pair),
                Err(_) => self.fail(),
            }
        }
        self.drive(now);
    }

    /// The association is established.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The association failed or was closed.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Counters.
    pub fn stats(&self) -> SctpStats {
        self.stats
    }

    /// Number of open channels.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Handles one SCTP packet (one DTLS application-data record).
    pub fn handle_data(&mut self, now: Instant, packet: &[u8]) {
        self.guarded(|a| a.handle_data_inner(now, packet));
    }

    fn handle_data_inner(&mut self, now: Instant, packet: &[u8]) {
        if self.lost {
            self.stats.packets_ignored += 1;
            return;
        }
        self.started = true;
        if !self.accept_packet(packet) {
            self.stats.packets_ignored += 1;
            return;
        }
        let Some((handle, event)) =
            self.endpoint
                .handle(now, TUNNEL_ADDR, None, None, Bytes::copy_from_slice(packet))
        else {
            self.stats.packets_ignored += 1;
            return;
        };
        match event {
            DatagramEvent::NewAssociation(association) => {
                if self.association.is_some() {
                    self.stats.packets_ignored += 1;
                    return;
                }
                self.peer_init_tag = init_tag(packet);
                self.association = Some((handle, association));
            }
            DatagramEvent::AssociationEvent(event) => match &mut self.association {
                Some((h, a)) if *h == handle => a.handle_event(event),
                _ => {
                    self.stats.packets_ignored += 1;
                    return;
                }
            },
        }
        self.drive(now);
    }

    /// Filters INITs (verification tag 0) before the stack sees them: the
    /// client never accepts one (the peer's INIT in a collision is answered by
    /// its own INIT ACK to ours), the server accepts the first and its
    /// retransmissions only. Keeps a hostile peer from creating associations.
    fn accept_packet(&self, packet: &[u8]) -> bool {
        if packet.len() < 16 {
            return false;
        }
        let vtag = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let is_init = packet[12] == 1;
        if vtag != 0 || !is_init {
            return true;
        }
        match self.role {
            SctpRole::Client => false,
            SctpRole::Server => {
                self.association.is_none() || init_tag(packet) == self.peer_init_tag
            }
        }
    }

    /// When [`Self::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.association
            .as_ref()
            .and_then(|(_, a)| a.poll_timeout())
    }

    /// Runs expired timers (retransmissions, SACK delay, heartbeats).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.guarded(|s| {
            if let Some((_, a)) = &mut s.association {
                a.handle_timeout(now);
                s.drive(now);
            }
        });
    }

    /// Runs `f` on the SCTP stack; should the third-party stack panic on
    /// some input, the association is dropped (reported as
    /// [`SctpEvent::Lost`] and counted) instead of taking the shard down.
    fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(v) => Some(v),
            Err(_) => {
                self.stats.stack_failures += 1;
                self.fail();
                None
            }
        }
    }

    /// Forgets the association and everything queued on it.
    fn fail(&mut self) {
        self.connected = false;
        self.lost = true;
        self.association = None;
        self.channels.clear();
        self.pending.clear();
        self.pending_bytes = 0;
        self.transmit.clear();
        self.events.push_back(SctpEvent::Lost);
    }

    /// The next SCTP packet to send as one DTLS application-data record.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SctpEvent> {
        self.events.pop_front()
    }

    /// Sends a message on the channel labelled `label` (empty: the default
    /// label), opening a reliable ordered channel with `protocol` when none
    /// has that label. Before the association is up the message waits (in
    /// order) within [`SEND_QUEUE_BYTES`].
    pub fn send(
        &mut self,
        now: Instant,
        label: &str,
        protocol: &str,
        text: bool,
        data: &[u8],
    ) -> Result<(), SctpSendError> {
        let label = if label.is_empty() {
            DEFAULT_LABEL
        } else {
            label
        };
        let result = self
            .guarded(|s| s.send_inner(now, label, protocol, text, data))
            .unwrap_or(Err(SctpSendError::Closed));
        match result {
            Ok(()) => {}
            Err(SctpSendError::Oversized) => self.stats.dropped_oversized += 1,
            Err(SctpSendError::QueueFull) => self.stats.dropped_queue_full += 1,
            Err(_) => self.stats.dropped_send_other += 1,
        }
        result
    }

    fn send_inner(
        &mut self,
        now: Instant,
        label: &str,
        protocol: &str,
        text: bool,
        data: &[u8],
    ) -> Result<(), SctpSendError> {
        if data.len() > MAX_MESSAGE_SIZE {
            return Err(SctpSendError::Oversized);
        }
        if self.lost {
            return Err(SctpSendError::Closed);
        }
        if !self.connected || !self.pending.is_empty() {
            if self.pending_bytes + data.len() > SEND_QUEUE_BYTES {
                return Err(SctpSendError::QueueFull);
            }
            self.pending_bytes += data.len();
            self.pending.push_back(Pending {
                label: label.to_owned(),
                protocol: protocol.to_owned(),
                text,
                data: data.to_vec(),
            });
            if self.connected {
                self.flush_pending(now);
            }
            return Ok(());
        }
        if self.buffered_amount() + data.len() > SEND_QUEUE_BYTES {
            return Err(SctpSendError::QueueFull);
        }
        self.write(label, protocol, text, data)?;
        self.drive(now);
        Ok(())
    }

    /// Writes into the stack (connected, within limits).
    fn write(
        &mut self,
        label: &str,
        protocol: &str,
        text: bool,
        data: &[u8],
    ) -> Result<(), SctpSendError> {
        let stream = match self.channels.iter().find(|(_, c)| c.label == label) {
            Some((&id, _)) => id,
            None => self.open_channel(label, protocol)?,
        };
        let Some((_, a)) = &mut self.association else {
            return Err(SctpSendError::Closed);
        };
        let (ppi, payload): (_, &[u8]) = match (text, data.is_empty()) {
            (true, false) => (PayloadProtocolIdentifier::String, data),
            (false, false) => (PayloadProtocolIdentifier::Binary, data),
            // RFC 8831 §6.6: empty messages carry one zero byte.
            (true, true) => (PayloadProtocolIdentifier::StringEmpty, &[0]),
            (false, true) => (PayloadProtocolIdentifier::BinaryEmpty, &[0]),
        };
        let mut s = a.stream(stream).map_err(|_| SctpSendError::Closed)?;
        s.write_with_ppi(payload, ppi)
            .map_err(|_| SctpSendError::Stack)?;
        self.buffered = true;
        self.stats.messages_out += 1;
        self.stats.bytes_out += data.len() as u64;
        Ok(())
    }

    /// Opens a reliable ordered channel with DCEP OPEN; returns its stream.
    fn open_channel(&mut self, label: &str, protocol: &str) -> Result<u16, SctpSendError> {
        if self.channels.len() >= MAX_CHANNELS {
            return Err(SctpSendError::NoChannel);
        }
        let open = DcepOpen::reliable(label, protocol)
            .encode()
            .ok_or(SctpSendError::NoChannel)?;
        let Some((_, a)) = &mut self.association else {
            return Err(SctpSendError::Closed);
        };
        let first = match self.role {
            SctpRole::Client => 0,
            SctpRole::Server => 1,
        };
        let existing = a.stream_ids();
        let id = (first..MAX_STREAMS)
            .step_by(2)
            .find(|id| !self.channels.contains_key(id) && !existing.contains(id))
            .ok_or(SctpSendError::NoChannel)?;
        let mut s = a
            .open_stream(id, PayloadProtocolIdentifier::Binary)
            .map_err(|_| SctpSendError::NoChannel)?;
        s.write_with_ppi(&open, PayloadProtocolIdentifier::Dcep)
            .map_err(|_| SctpSendError::Stack)?;
        self.buffered = true;
        self.channels.insert(
            id,
            Channel {
                label: label.to_owned(),
                protocol: protocol.to_owned(),
            },
        );
        self.events.push_back(SctpEvent::ChannelOpened {
            stream: id,
            label: label.to_owned(),
            protocol: protocol.to_owned(),
        });
        Ok(id)
    }

    /// Closes (resets) the channel with this label; false when there is none.
    pub fn close_channel(&mut self, now: Instant, label: &str) -> bool {
        self.guarded(|s| s.close_channel_inner(now, label))
            .unwrap_or(false)
    }

    fn close_channel_inner(&mut self, now: Instant, label: &str) -> bool {
        let Some((&id, _)) = self.channels.iter().find(|(_, c)| c.label == label) else {
            return false;
        };
        self.channels.remove(&id);
        if let Some((_, a)) = &mut self.association {
            if let Ok(mut s) = a.stream(id) {
                // A failed reset leaves a stream nobody writes to any more.
                let _ = s.close();
            }
        }
        self.drive(now);
        true
    }

    /// Bytes waiting: queued before the association was up plus buffered in
    /// the stack's streams.
    pub fn buffered_amount(&mut self) -> usize {
        let mut total = self.pending_bytes;
        if let Some((_, a)) = &mut self.association {
            for id in a.stream_ids() {
                if let Ok(s) = a.stream(id) {
                    total += s.buffered_amount().unwrap_or(0);
                }
            }
        }
        total
    }

    /// Writes the messages queued before the association came up, in order,
    /// as far as the send limit allows.
    fn flush_pending(&mut self, now: Instant) {
        while let Some(p) = self.pending.pop_front() {
            self.pending_bytes -= p.data.len();
            if self.buffered_amount() + p.data.len() > SEND_QUEUE_BYTES {
                self.stats.dropped_queue_full += 1;
                continue;
            }
            if self.write(&p.label, &p.protocol, p.text, &p.data).is_err() {
                self.stats.dropped_send_other += 1;
            }
        }
        self.drive(now);
    }

    /// Moves the stack's outputs into our queues until it is quiet.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            if let Some((handle, a)) = &mut self.association {
                while let Some(ev) = a.poll_endpoint_event() {
                    // Endpoint answers are never produced for our single
                    // association (only `Drained` exists, which returns None).
                    let _ = self.endpoint.handle_event(*handle, ev);
                }
            }
            while let Some(event) = self.association.as_mut().and_then(|(_, a)| a.poll()) {
                progressed = true;
                self.on_event(now, event);
            }
            while let Some(t) = self.endpoint.poll_transmit() {
                if let Payload::RawEncode(packets) = t.payload {
                    self.transmit.extend(packets);
                }
            }
            if let Some((_, a)) = &mut self.association {
                while let Some(t) = a.poll_transmit(now) {
                    progressed = true;
                    if let Payload::RawEncode(packets) = t.payload {
                        self.transmit.extend(packets);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        // "Sender dry": everything written so far left the send buffers.
        if self.buffered && self.connected && self.buffered_amount() == 0 {
            self.buffered = false;
            self.events.push_back(SctpEvent::Ready);
        }
    }

    fn on_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected if !self.connected => {
                self.connected = true;
                self.events.push_back(SctpEvent::Connected);
                self.events.push_back(SctpEvent::Ready);
                if !self.pending.is_empty() {
                    self.flush_pending(now);
                }
            }
            Event::HandshakeFailed { .. } | Event::AssociationLost { .. } => {
                // What was already written (e.g. an ABORT) still goes out.
                let transmit = std::mem::take(&mut self.transmit);
                self.fail();
                self.transmit = transmit;
            }
            Event::Stream(StreamEvent::Opened { .. }) => {
                // Channels exist once DCEP OPEN arrives; just empty the
                // stack's accept queue so it never grows.
                if let Some((_, a)) = &mut self.association {
                    while a.accept_stream().is_some() {}
                }
            }
            Event::Stream(StreamEvent::Readable { id }) => self.read_stream(id),
            Event::Stream(StreamEvent::Finished { id } | StreamEvent::Stopped { id, .. }) => {
                if let Some(c) = self.channels.remove(&id) {
                    self.events.push_back(SctpEvent::ChannelClosed {
                        stream: id,
                        label: c.label,
                    });
                }
            }
            _ => {}
        }
    }

    fn read_stream(&mut self, id: u16) {
        loop {
            let Some((_, a)) = &mut self.association else {
                return;
            };
            let Ok(mut s) = a.stream(id) else {
                return;
            };
            let chunks = match s.read_sctp() {
                Ok(Some(c)) => c,
                Ok(None) | Err(_) => return,
            };
            let mut data = vec![0; chunks.len()];
            if chunks.read(&mut data).is_err() {
                // The buffer has exactly `len()` bytes.
                self.stats.dropped_unknown_stream += 1;
                continue;
            }
            let text = match chunks.ppi {
                PayloadProtocolIdentifier::Dcep => {
                    self.on_dcep(id, &data);
                    continue;
                }
                PayloadProtocolIdentifier::String => true,
                PayloadProtocolIdentifier::Binary => false,
                PayloadProtocolIdentifier::StringEmpty => {
                    data.clear();
                    true
                }
                PayloadProtocolIdentifier::BinaryEmpty => {
                    data.clear();
                    false
                }
                _ => {
                    self.stats.dropped_unknown_stream += 1;
                    continue;
                }
            };
            let Some(c) = self.channels.get(&id) else {
                self.stats.dropped_unknown_stream += 1;
                continue;
            };
            self.stats.messages_in += 1;
            self.stats.bytes_in += data.len() as u64;
            self.events.push_back(SctpEvent::Message(DataMessage {
                stream: id,
                label: c.label.clone(),
                protocol: c.protocol.clone(),
                text,
                data,
            }));
        }
    }

    fn on_dcep(&mut self, id: u16, bytes: &[u8]) {
        match parse_dcep(bytes) {
            Ok(DcepMessage::Ack) => {
                if !self.channels.contains_key(&id) {
                    self.stats.dcep_errors += 1;
                }
            }
            Ok(DcepMessage::Open(open)) => {
                if self.channels.contains_key(&id) {
                    self.stats.dcep_errors += 1;
                    return;
                }
                if self.channels.len() >= MAX_CHANNELS {
                    self.stats.channels_refused += 1;
                    if let Some((_, a)) = &mut self.association {
                        if let Ok(mut s) = a.stream(id) {
                            // Refused: reset the stream; failure leaves it unused.
                            let _ = s.close();
                        }
                    }
                    return;
                }
                let Some((_, a)) = &mut self.association else {
                    return;
                };
                let Ok(mut s) = a.stream(id) else {
                    self.stats.dcep_errors += 1;
                    return;
                };
                // The ACK goes out ordered and reliable (RFC 8832 §6), before
                // the channel's own reliability applies.
                if s.write_with_ppi(&[DCEP_ACK], PayloadProtocolIdentifier::Dcep)
                    .is_err()
                {
                    self.stats.dcep_errors += 1;
                    return;
                }
                let (kind, value) = match open.reliability {
                    Reliability::Reliable => (ReliabilityType::Reliable, 0),
                    Reliability::MaxRetransmits(n) => (ReliabilityType::Rexmit, n),
                    Reliability::MaxLifetimeMs(ms) => (ReliabilityType::Timed, ms),
                };
                // The stream exists (just written to).
                let _ = s.set_reliability_params(open.unordered, kind, value);
                self.buffered = true;
                self.channels.insert(
                    id,
                    Channel {
                        label: open.label.clone(),
                        protocol: open.protocol.clone(),
                    },
                );
                self.events.push_back(SctpEvent::ChannelOpened {
                    stream: id,
                    label: open.label,
                    protocol: open.protocol,
                });
            }
            Err(_) => self.stats.dcep_errors += 1,
        }
    }
}

/// The initiate tag of a packet whose first chunk is INIT.
fn init_tag(packet: &[u8]) -> Option<u32> {
    (packet.len() >= 20 && packet[12] == 1)
        .then(|| u32::from_be_bytes([packet[16], packet[17], packet[18], packet[19]]))
}

#[cfg(test)]
mod tests;
