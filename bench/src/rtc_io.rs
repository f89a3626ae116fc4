//! The plumbing every simulated str0m client shares, whatever it sends: a
//! non-blocking loopback UDP socket with an [`Rtc`] behind it, the
//! `poll_output` drain, the socket read loop and the worker thread that
//! drives many clients with `poll(2)`.
//!
//! A scenario's client ([`crate::peer::Peer`] for media,
//! `crate::data::DataPeer` for data channels) holds a [`Conn`] and
//! implements [`Driven`]: what it does with str0m's events and when it
//! sends.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use hdrhistogram::Histogram;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use crate::peer::{Shared, histogram};

/// One client's str0m instance and the socket it speaks through.
pub(crate) struct Conn {
    pub(crate) rtc: Rtc,
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
    /// Set when str0m or the socket failed; the worker skips the client.
    pub(crate) dead: bool,
    /// When str0m next wants `Input::Timeout`.
    pub(crate) timeout: Instant,
    /// When its session setup began.
    pub(crate) started: Instant,
    /// Set by the scenario once connected (media) or its channel is open
    /// (data): it sends only then, and one that is not this long after
    /// `started` failed.
    pub(crate) ready: bool,
}

impl Conn {
    /// An [`Rtc`] built from `config` with one host candidate on a fresh
    /// non-blocking loopback UDP socket, for a session whose setup began at
    /// `started`.
    pub(crate) fn bind(config: RtcConfig, started: Instant) -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a loopback UDP socket")?;
        socket
            .set_nonblocking(true)
            .context("making the UDP socket non-blocking")?;
        let local = socket
            .local_addr()
            .context("reading the UDP socket address")?;
        let mut rtc = config.build(Instant::now());
        let candidate =
            Candidate::host(local, "udp").map_err(|e| anyhow!("host candidate: {e}"))?;
        rtc.add_local_candidate(candidate)
            .ok_or_else(|| anyhow!("str0m refused the host candidate {local}"))?;
        Ok(Self {
            rtc,
            socket,
            local,
            dead: false,
            timeout: Instant::now(),
            started,
            ready: false,
        })
    }

    /// Apply the server's answer to the offer `pending`.
    pub(crate) fn accept_answer(
        &mut self,
        pending: Option<SdpPendingOffer>,
        sdp: &str,
    ) -> Result<()> {
        let answer = SdpAnswer::from_sdp_string(sdp).context("parsing the answer SDP")?;
        let pending = pending.ok_or_else(|| anyhow!("no pending offer"))?;
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .context("str0m rejected the answer")
    }
}

/// What a scenario's client adds to its [`Conn`].
pub(crate) trait Driven {
    /// Its str0m instance and socket.
    fn conn(&mut self) -> &mut Conn;
    /// Handle one str0m event.
    fn on_event(&mut self, ev: Event, shared: &Shared, latency: &mut Histogram<u64>);
    /// Write everything due by `now` into str0m.
    fn send_due(&mut self, now: Instant, shared: &Shared);
    /// When it next has something to send, if ever.
    fn next_send(&self) -> Option<Instant>;
}

/// A client that is not ready this long after its setup began failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(25);

/// Drain str0m's output: send datagrams, handle events; sets `timeout`.
fn drain<P: Driven>(p: &mut P, shared: &Shared, latency: &mut Histogram<u64>) {
    loop {
        let conn = p.conn();
        match conn.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                conn.timeout = t;
                return;
            }
            Ok(Output::Transmit(t)) => {
                // Dropped datagrams (full socket buffer) show up as loss.
                let _ = conn.socket.send_to(&t.contents, t.destination);
            }
            Ok(Output::Event(ev)) => p.on_event(ev, shared, latency),
            Err(_) => {
                conn.dead = true;
                return;
            }
        }
    }
}

fn handle<P: Driven>(p: &mut P, input: Input<'_>, shared: &Shared, latency: &mut Histogram<u64>) {
    if p.conn().rtc.handle_input(input).is_err() {
        p.conn().dead = true;
        return;
    }
    drain(p, shared, latency);
}

/// Read every datagram waiting on the socket.
fn read<P: Driven>(p: &mut P, buf: &mut [u8], shared: &Shared, latency: &mut Histogram<u64>) {
    loop {
        let conn = p.conn();
        match conn.socket.recv_from(buf) {
            Ok((n, source)) => {
                let Ok(contents) = buf[..n].try_into() else {
                    continue;
                };
                let input = Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: conn.local,
                        contents,
                    },
                );
                handle(p, input, shared, latency);
                if p.conn().dead {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
            Err(_) => {
                p.conn().dead = true;
                return;
            }
        }
    }
}

/// Drive clients handed over on `incoming` until `shared.stop` is set.
pub(crate) fn worker<P: Driven>(incoming: Receiver<P>, shared: Arc<Shared>, core: Option<usize>) {
    if let Some(core) = core {
        crate::server::pin_current_thread(core);
    }
    let mut peers: Vec<P> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut live: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; 2048];
    let mut latency = histogram();
    let mut flushed = Instant::now();
    let mut open = true;
    while !shared.stop.load(Ordering::Relaxed) {
        while open {
            match incoming.try_recv() {
                Ok(mut peer) => {
                    // Drive str0m once now: after the answer it may not ask
                    // for a timeout for half a second, and an ICE-lite server
                    // never sends the connectivity check that would wake it.
                    handle(
                        &mut peer,
                        Input::Timeout(Instant::now()),
                        &shared,
                        &mut latency,
                    );
                    peers.push(peer);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let now = Instant::now();
        let mut next = now + Duration::from_millis(20);
        for peer in &mut peers {
            if peer.conn().dead {
                continue;
            }
            let conn = peer.conn();
            if !conn.ready && now.duration_since(conn.started) > CONNECT_TIMEOUT {
                peer.conn().dead = true;
                shared.failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if peer.conn().ready {
                peer.send_due(now, &shared);
                drain(peer, &shared, &mut latency);
            }
            if peer.conn().timeout <= now {
                handle(peer, Input::Timeout(now), &shared, &mut latency);
            }
            next = next.min(peer.conn().timeout);
            if peer.conn().ready
                && let Some(due) = peer.next_send()
            {
                next = next.min(due);
            }
        }
        live.clear();
        live.extend((0..peers.len()).filter(|&i| !peers[i].conn().dead));
        fds.clear();
        fds.extend(live.iter().map(|&i| libc::pollfd {
            fd: peers[i].conn().socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        let wait = next.saturating_duration_since(Instant::now());
        let ms = i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(20);
        if fds.is_empty() {
            std::thread::sleep(Duration::from_millis(u64::try_from(ms.max(1)).unwrap_or(1)));
        } else {
            // SAFETY: `fds` is a valid, initialized slice of pollfd for the
            // duration of the call; the length matches.
            unsafe {
                libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
            }
            for (fd, &i) in fds.iter().zip(&live) {
                if fd.revents != 0 {
                    read(&mut peers[i], &mut buf, &shared, &mut latency);
                }
            }
        }
        if flushed.elapsed() >= Duration::from_millis(100) {
            flushed = Instant::now();
            flush(&shared, &mut latency);
        }
    }
    flush(&shared, &mut latency);
}

/// Add a worker's latency samples to the shared histogram (while
/// measuring) and start afresh.
pub(crate) fn flush(shared: &Shared, latency: &mut Histogram<u64>) {
    if latency.is_empty() {
        return;
    }
    if shared.measuring.load(Ordering::Relaxed)
        && let Ok(mut h) = shared.latency.lock()
    {
        let _ = h.add(&*latency);
    }
    latency.reset();
}
