//! The WebRTC side: a str0m `Rtc` on a loopback UDP socket, sending the
//! synthetic frames of [`crate::media`] and recording what comes back.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::media::{self, Verdict};

/// Counters and arrival times for one kind of media.
#[derive(Debug, Default)]
pub(crate) struct Track {
    pub(crate) mid: Option<Mid>,
    pub(crate) pt: Option<Pt>,
    pub(crate) sent: u32,
    /// Arrival times of echoed frames that matched a sent frame.
    pub(crate) matched: Vec<Instant>,
    pub(crate) corrupt: u32,
    pub(crate) foreign: u32,
    /// Echoed frames that arrived with `contiguous == false`.
    pub(crate) discontinuities: u32,
    /// Highest echoed frame index.
    pub(crate) last_index: Option<u32>,
    /// Keyframe requests (PLI/FIR) received for this mid.
    pub(crate) keyframe_requests: Vec<Instant>,
    /// RTCP sender reports received for this mid, with their packet count.
    pub(crate) sender_reports: Vec<(Instant, u32)>,
}

impl Track {
    /// Matched frames that arrived in `[from, to)`.
    pub(crate) fn between(&self, from: Instant, to: Instant) -> usize {
        self.matched
            .iter()
            .filter(|t| **t >= from && **t < to)
            .count()
    }
}

/// A str0m peer connection driven on the calling thread.
pub(crate) struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    buf: Vec<u8>,
    pub(crate) audio: Track,
    pub(crate) video: Track,
    pending: Option<SdpPendingOffer>,
    /// ICE connected and DTLS up (str0m's `Connected`).
    pub(crate) connected_at: Option<Instant>,
    /// The remote closed DTLS (str0m's `Closed`).
    pub(crate) closed_at: Option<Instant>,
    /// Set when str0m reported an error; the peer is inert afterwards.
    pub(crate) error: Option<String>,
    pub(crate) ice_states: Vec<String>,
    sending: bool,
    next_audio: Instant,
    next_video: Instant,
    want_keyframe: bool,
    /// The data channel, once open.
    channel: Option<ChannelId>,
    /// Data-channel messages received: (binary, bytes).
    pub(crate) data_in: Vec<(bool, Vec<u8>)>,
}

impl Peer {
    /// Bind a loopback socket and create an offer with one Opus audio and
    /// one VP8 video m-line, both sendrecv. Returns the peer and the offer SDP.
    pub(crate) fn offer() -> Result<(Self, String)> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a loopback UDP socket")?;
        let local = socket
            .local_addr()
            .context("reading the UDP socket address")?;
        let mut rtc = RtcConfig::new()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .build(Instant::now());
        let candidate =
            Candidate::host(local, "udp").map_err(|e| anyhow!("host candidate: {e}"))?;
        rtc.add_local_candidate(candidate)
            .ok_or_else(|| anyhow!("str0m refused the host candidate {local}"))?;
        let mut api = rtc.sdp_api();
        let audio_mid = api.add_media(
            MediaKind::Audio,
            Direction::SendRecv,
            Some("peer".into()),
            Some("peer-audio".into()),
            None,
        );
        let video_mid = api.add_media(
            MediaKind::Video,
            Direction::SendRecv,
            Some("peer".into()),
            Some("peer-video".into()),
            None,
        );
        // A data channel too: the echo scripts answer on it.
        api.add_channel("JanusDataChannel".into());
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| anyhow!("str0m produced no offer"))?;
        let now = Instant::now();
        let peer = Self {
            rtc,
            socket,
            local,
            buf: vec![0; 2000],
            audio: Track {
                mid: Some(audio_mid),
                ..Track::default()
            },
            video: Track {
                mid: Some(video_mid),
                ..Track::default()
            },
            pending: Some(pending),
            connected_at: None,
            closed_at: None,
            error: None,
            ice_states: Vec::new(),
            sending: false,
            next_audio: now,
            next_video: now,
            want_keyframe: true,
            channel: None,
            data_in: Vec::new(),
        };
        Ok((peer, offer.to_sdp_string()))
    }

    /// Apply the server's answer and pick the negotiated payload types.
    pub(crate) fn accept_answer(&mut self, sdp: &str) -> Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp).context("parsing the answer SDP")?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| anyhow!("no pending offer"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .context("str0m rejected the answer")?;
        self.audio.pt = self.negotiated(self.audio.mid, Codec::Opus)?;
        self.video.pt = self.negotiated(self.video.mid, Codec::Vp8)?;
        Ok(())
    }

    fn negotiated(&mut self, mid: Option<Mid>, codec: Codec) -> Result<Option<Pt>> {
        let mid = mid.ok_or_else(|| anyhow!("no mid for {codec:?}"))?;
        let writer = self
            .rtc
            .writer(mid)
            .ok_or_else(|| anyhow!("mid {mid} cannot send after the answer"))?;
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt());
        if pt.is_none() {
            bail!("{codec:?} was not negotiated on mid {mid}");
        }
        Ok(pt)
    }

    /// Start or stop sending media (it only flows once connected).
    /// The data channel is open.
    pub(crate) fn channel_open(&self) -> bool {
        self.channel.is_some()
    }

    /// Sends one data-channel message; false if the channel is not open or
    /// str0m refused it.
    pub(crate) fn send_data(&mut self, binary: bool, data: &[u8]) -> bool {
        let Some(id) = self.channel else {
            return false;
        };
        match self.rtc.channel(id) {
            Some(mut ch) => ch.write(binary, data).is_ok(),
            None => false,
        }
    }

    pub(crate) fn set_sending(&mut self, on: bool) {
        if on && !self.sending {
            let now = Instant::now();
            self.next_audio = now;
            self.next_video = now;
            self.want_keyframe = true;
        }
        self.sending = on;
    }

    /// Whether str0m still considers the connection alive.
    pub(crate) fn is_alive(&self) -> bool {
        self.rtc.is_alive() && self.error.is_none()
    }

    /// Drive the connection until `until`: send due frames, process output,
    /// read the socket.
    pub(crate) fn pump(&mut self, until: Instant) {
        loop {
            let now = Instant::now();
            if now >= until {
                return;
            }
            if self.sending && self.connected_at.is_some() && self.is_alive() {
                self.send_due(now);
            }
            let deadline = match self.poll() {
                Some(t) => t.min(until),
                None => until,
            };
            let deadline = if self.sending && self.connected_at.is_some() {
                deadline.min(self.next_audio).min(self.next_video)
            } else {
                deadline
            };
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            self.read(wait);
        }
    }

    fn send_due(&mut self, now: Instant) {
        while self.next_audio <= now {
            let index = self.audio.sent;
            let data = media::audio_frame(index);
            let time = MediaTime::new(
                u64::from(index) * media::AUDIO_TICKS,
                Frequency::FORTY_EIGHT_KHZ,
            );
            if self.write(true, time, data) {
                self.audio.sent += 1;
            }
            self.next_audio += media::AUDIO_PTIME;
        }
        while self.next_video <= now {
            let index = self.video.sent;
            let key = self.want_keyframe || index % 30 == 0;
            let data = media::video_frame(index, key);
            let time = MediaTime::new(u64::from(index) * media::VIDEO_TICKS, Frequency::NINETY_KHZ);
            if self.write(false, time, data) {
                self.video.sent += 1;
                self.want_keyframe = false;
            }
            self.next_video += media::VIDEO_INTERVAL;
        }
    }

    fn write(&mut self, audio: bool, time: MediaTime, data: Vec<u8>) -> bool {
        let track = if audio { &self.audio } else { &self.video };
        let (Some(mid), Some(pt)) = (track.mid, track.pt) else {
            return false;
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return false;
        };
        match writer.write(pt, Instant::now(), time, data) {
            Ok(()) => true,
            Err(e) => {
                self.fail(format!("writing media on mid {mid}: {e}"));
                false
            }
        }
    }

    fn fail(&mut self, what: String) {
        if self.error.is_none() {
            eprintln!("[peer] str0m error: {what}");
            self.error = Some(what);
        }
    }

    /// Process str0m output until it asks for a timeout; returns that deadline.
    fn poll(&mut self) -> Option<Instant> {
        if !self.is_alive() {
            return None;
        }
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return Some(t),
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = self.socket.send_to(&t.contents, t.destination) {
                        eprintln!("[peer] send_to {}: {e}", t.destination);
                    }
                }
                Ok(Output::Event(ev)) => self.on_event(ev),
                Err(e) => {
                    self.fail(format!("poll_output: {e}"));
                    return None;
                }
            }
        }
    }

    fn on_event(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::Connected => {
                self.connected_at.get_or_insert(now);
            }
            Event::IceConnectionStateChange(state) => {
                self.ice_states.push(format!("{state:?}"));
                if state == IceConnectionState::Disconnected {
                    eprintln!("[peer] ICE disconnected");
                }
            }
            Event::Closed => {
                self.closed_at.get_or_insert(now);
            }
            Event::ChannelOpen(id, _label) => {
                self.channel = Some(id);
            }
            Event::ChannelData(d) => {
                self.data_in.push((d.binary, d.data));
            }
            Event::MediaData(data) => {
                let audio = Some(data.mid) == self.audio.mid;
                let (track, verdict) = if audio {
                    (&mut self.audio, media::check_audio(&data.data))
                } else if Some(data.mid) == self.video.mid {
                    (&mut self.video, media::check_video(&data.data))
                } else {
                    return;
                };
                if !data.contiguous {
                    track.discontinuities += 1;
                }
                match verdict {
                    Verdict::Match(index) => {
                        track.matched.push(now);
                        track.last_index = Some(track.last_index.map_or(index, |l| l.max(index)));
                    }
                    Verdict::Corrupt => track.corrupt += 1,
                    Verdict::Foreign => track.foreign += 1,
                }
            }
            Event::SenderFeedback(fb) => {
                let count = fb.sender_info.sender_packet_count;
                if Some(fb.mid) == self.audio.mid {
                    self.audio.sender_reports.push((now, count));
                } else if Some(fb.mid) == self.video.mid {
                    self.video.sender_reports.push((now, count));
                }
            }
            Event::KeyframeRequest(req) => {
                if Some(req.mid) == self.video.mid {
                    self.video.keyframe_requests.push(now);
                    self.want_keyframe = true;
                } else if Some(req.mid) == self.audio.mid {
                    self.audio.keyframe_requests.push(now);
                }
            }
            _ => {}
        }
    }

    fn read(&mut self, wait: Duration) {
        if let Err(e) = self.socket.set_read_timeout(Some(wait)) {
            self.fail(format!("set_read_timeout: {e}"));
            return;
        }
        self.buf.resize(2000, 0);
        let input = match self.socket.recv_from(&mut self.buf) {
            Ok((n, source)) => {
                if !self.is_alive() {
                    return;
                }
                let Ok(contents) = self.buf[..n].try_into() else {
                    // Not a datagram str0m can demultiplex: ignore it.
                    return;
                };
                Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.local,
                        contents,
                    },
                )
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Input::Timeout(Instant::now())
            }
            Err(e) => {
                self.fail(format!("recv_from: {e}"));
                return;
            }
        };
        if !self.is_alive() {
            return;
        }
        if let Err(e) = self.rtc.handle_input(input) {
            self.fail(format!("handle_input: {e}"));
        }
    }
}
