//! Data channels on a shard (media.md §8): one SCTP association per
//! PeerConnection with a negotiated data m-line, carried in DTLS application
//! data; incoming messages go to the script (when it defines
//! `incomingTextData` / `incomingBinaryData`) or along the session's
//! `addRecipient` edges, gated by the `data` gates and always on the default
//! label (compat-notes.md decision 13); `relayTextData` / `relayBinaryData`
//! send on the session's own association.

use std::time::Instant;

use jsfu_proto::dtls::{DtlsRole as ProtoDtlsRole, DtlsState as ProtoDtlsState};
use jsfu_proto::sctp::{DEFAULT_LABEL, DataMessage, SctpAssociation, SctpEvent, SctpRole};
use jsfu_route::{MediaEvent, PluginSessionId, SessionKey};

use crate::io;
use crate::session::Session;

/// Bytes of data-channel messages that may wait behind lifecycle events
/// (a `DataReady`) for control, per shard: as much as one association may
/// buffer for sending (beyond, they are dropped and counted as
/// [`DropReason::EventQueueFull`]).
const MAX_QUEUED_DATA_BYTES: usize = jsfu_proto::sctp::SEND_QUEUE_BYTES;
use crate::shard::{PeerMsg, Shard, slab_get};
use crate::stats::DropReason;

/// Logs the counters of a session's association when its PC goes away.
pub(crate) fn log_sctp_stats(s: &Session) {
    if let Some(sctp) = &s.sctp {
        tracing::debug!(session = %s.id, stats = ?sctp.stats(), "SCTP association closed");
    }
}

impl Shard {
    /// DTLS came up: start the association of a PC with a data m-line.
    /// Also called after a renegotiation (a data m-line added later).
    pub(crate) fn sctp_start(&mut self, now: Instant, key: SessionKey) {
        let Some(s) = self.session_mut(key) else {
            return;
        };
        if !s.config.data_channel || s.sctp.is_some() || s.dtls.state() != ProtoDtlsState::Connected
        {
            return;
        }
        let role = match s.dtls.role() {
            ProtoDtlsRole::Client => SctpRole::Client,
            ProtoDtlsRole::Server => SctpRole::Server,
        };
        let mut sctp = SctpAssociation::new(role);
        sctp.start(now);
        s.sctp = Some(sctp);
        tracing::debug!(session = %s.id, ?role, "SCTP association started");
        self.drain_sctp(now, key);
    }

    /// Feeds the DTLS application records of a session into its association
    /// (counted as dropped when the PC has none).
    pub(crate) fn sctp_input(&mut self, now: Instant, key: SessionKey) {
        // Records may arrive with the handshake's last flight, before the
        // Connected event was handled.
        self.sctp_start(now, key);
        let mut fed = false;
        while let Some(s) = self.session_mut(key) {
            let Some(record) = s.dtls.poll_application_data() else {
                break;
            };
            match &mut s.sctp {
                Some(sctp) => {
                    sctp.handle_data(now, &record);
                    fed = true;
                }
                None => self.counters.drop(DropReason::DataChannelUnsupported),
            }
        }
        if fed {
            self.drain_sctp(now, key);
        }
    }

    /// Runs the association's timers.
    pub(crate) fn sctp_timers(&mut self, now: Instant, key: SessionKey) {
        let Some(sctp) = self.session_mut(key).and_then(|s| s.sctp.as_mut()) else {
            return;
        };
        if sctp.poll_timeout().is_some_and(|t| t <= now) {
            sctp.handle_timeout(now);
            self.drain_sctp(now, key);
        }
    }

    /// Sends the association's packets through DTLS and handles its events.
    fn drain_sctp(&mut self, now: Instant, key: SessionKey) {
        let mut events = Vec::new();
        {
            let Some(s) = self.session_mut(key) else {
                return;
            };
            let Some(sctp) = s.sctp.as_mut() else {
                return;
            };
            while let Some(packet) = sctp.poll_transmit() {
                // A refused record (DTLS closing) is lost like on the wire;
                // SCTP retransmits what matters.
                let _ = s.dtls.send_application_data(&packet);
            }
            while let Some(ev) = sctp.poll_event() {
                events.push(ev);
            }
            if sctp.is_lost() {
                tracing::debug!(session = %s.id, "SCTP association lost");
                s.sctp = None;
            }
        }
        self.flush_dtls_datagrams(key);
        let Some(id) = self.session(key).map(|s| s.id) else {
            return;
        };
        for ev in events {
            match ev {
                SctpEvent::Ready => self.emit(MediaEvent::DataReady { session: id }),
                SctpEvent::Message(m) => self.on_data_message(now, key, id, m),
                SctpEvent::ChannelOpened {
                    stream,
                    label,
                    protocol,
                } => {
                    tracing::debug!(session = %id, stream, %label, %protocol, "data channel open");
                }
                SctpEvent::ChannelClosed { stream, label } => {
                    tracing::debug!(session = %id, stream, %label, "data channel closed");
                }
                SctpEvent::Connected | SctpEvent::Lost => {}
            }
        }
    }

    /// Queues the DTLS datagrams the endpoint wrote (application records).
    fn flush_dtls_datagrams(&mut self, key: SessionKey) {
        loop {
            let Some(s) = slab_get(&mut self.slab, key) else {
                return;
            };
            let Some(to) = s.remote else {
                while s.dtls.poll_transmit().is_some() {}
                return;
            };
            let Some(d) = s.dtls.poll_transmit() else {
                return;
            };
            let Some(slot) = self.pool.take() else {
                self.counters.drop(DropReason::EgressPoolEmpty);
                continue;
            };
            let n = d.len().min(io::SLOT_LEN);
            self.pool.get_mut(slot)[..n].copy_from_slice(&d[..n]);
            self.queue(slot, n, to);
        }
    }

    /// A message from the peer: to the script, or along the recipient edges.
    fn on_data_message(
        &mut self,
        now: Instant,
        key: SessionKey,
        id: PluginSessionId,
        m: DataMessage,
    ) {
        // A data recording gets the message before the script or the relay
        // does (script-contract.md incomingTextData).
        self.record_data(id, m.text, &m.data);
        let Some(s) = self.session(key) else {
            return;
        };
        let to_script = if m.text {
            s.config.script_incoming_text_data
        } else {
            s.config.script_incoming_binary_data
        };
        if to_script {
            self.emit_data_ordered(
                MediaEvent::IncomingData {
                    session: id,
                    text: m.text,
                    label: m.label,
                    protocol: m.protocol,
                    data: m.data,
                },
                MAX_QUEUED_DATA_BYTES,
            );
            return;
        }
        self.relay_data(now, id, m.text, &m.data);
    }

    /// Native relay of a message of `source` to its recipients: local ones
    /// now, one copy per other shard holding recipients.
    fn relay_data(&mut self, now: Instant, source: PluginSessionId, text: bool, data: &[u8]) {
        let Some(route) = self.routes.get(&source) else {
            self.counters.drop(DropReason::NoRoute);
            return;
        };
        if !route.gates.publish_data {
            self.counters.drop(DropReason::PublishGateClosed);
            return;
        }
        let recipients = route.recipients.clone();
        let mut shards_sent = vec![false; self.peers.len()];
        for recipient in recipients {
            match self.placement.get(&recipient).copied() {
                Some(shard) if shard == self.id => {
                    self.relay_data_local(now, recipient, text, data);
                }
                Some(shard) => {
                    let index = usize::from(shard.0);
                    if shards_sent.get(index).copied().unwrap_or(true) {
                        continue;
                    }
                    shards_sent[index] = true;
                    let msg = PeerMsg::Data {
                        source,
                        text,
                        data: data.to_vec(),
                    };
                    match self.peers[index].try_send(msg) {
                        Ok(()) => self.counters.cross_shard_out += 1,
                        Err(_) => self.counters.drop(DropReason::CrossShardQueueFull),
                    }
                }
                None => self.counters.drop(DropReason::RecipientNotReady),
            }
        }
    }

    /// A message of `source` handed over by another shard: relay it to the
    /// recipients placed here.
    pub(crate) fn relay_data_from_peer(
        &mut self,
        now: Instant,
        source: PluginSessionId,
        text: bool,
        data: &[u8],
    ) {
        self.counters.cross_shard_in += 1;
        let Some(route) = self.routes.get(&source) else {
            self.counters.drop(DropReason::NoRoute);
            return;
        };
        let recipients = route.recipients.clone();
        for recipient in recipients {
            if self.placement.get(&recipient) == Some(&self.id) {
                self.relay_data_local(now, recipient, text, data);
            }
        }
    }

    /// Sends a relayed message to a recipient on this shard (receive gate,
    /// default label).
    fn relay_data_local(
        &mut self,
        now: Instant,
        recipient: PluginSessionId,
        text: bool,
        data: &[u8],
    ) {
        let open = self
            .routes
            .get(&recipient)
            .is_some_and(|r| r.gates.receive_data);
        if !open {
            self.counters.drop(DropReason::RecipientGateClosed);
            return;
        }
        let Some(&key) = self.by_id.get(&recipient) else {
            self.counters.drop(DropReason::RecipientNotReady);
            return;
        };
        self.send_data(now, key, DEFAULT_LABEL, "", text, data);
    }

    /// `relayTextData` / `relayBinaryData` from the script.
    pub(crate) fn relay_data_from_script(
        &mut self,
        now: Instant,
        session: PluginSessionId,
        text: bool,
        label: &str,
        protocol: &str,
        data: &[u8],
    ) {
        let Some(&key) = self.by_id.get(&session) else {
            self.counters.drop(DropReason::CommandUnknownSession);
            return;
        };
        self.send_data(now, key, label, protocol, text, data);
    }

    /// Sends on a session's association (queued by it until it is up);
    /// without one (no data m-line, DTLS not up) the message is dropped.
    fn send_data(
        &mut self,
        now: Instant,
        key: SessionKey,
        label: &str,
        protocol: &str,
        text: bool,
        data: &[u8],
    ) {
        let Some(sctp) = self.session_mut(key).and_then(|s| s.sctp.as_mut()) else {
            self.counters.drop(DropReason::DataChannelUnsupported);
            return;
        };
        // Refusals (oversized, queue full) are counted by the association.
        if sctp.send(now, label, protocol, text, data).is_ok() {
            self.drain_sctp(now, key);
        }
    }
}
