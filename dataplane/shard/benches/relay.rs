//! The relay micro-benchmark: server CPU per forwarded SRTP packet on one
//! shard, beside the floor measured in the same run on the same core.
//!
//! * relay: a real shard (pinned to CPU 1) with two DTLS-connected peers; A
//!   publishes 1200-byte SRTP video to B through the native relay.
//! * floor: a glommio executor pinned to the same CPU doing only what any
//!   forwarder must: the same readiness wait (io_uring peek), `recvmmsg`,
//!   one SRTP unprotect and one protect per packet, `sendmmsg` to the sink.
//!
//! The same paced blaster (on CPU 0) feeds both; each side's CPU time is
//! read from the kernel's per-thread accounting. Runs alternate floor and
//! relay rounds so drift hits both.
//!
//! `cargo bench -p jsfu-shard --bench relay [-- packets [rate]]`

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Peer, route, wait_event};
use glommio::{LocalExecutorBuilder, Placement};
use jsfu_proto::srtp::{SrtpKeys, SrtpProfile, SrtpSession};
use jsfu_route::{MediaEvent, ShardCommand};
use jsfu_shard::io::{self, RecvBatch, SendBatch};

const PAYLOAD: usize = 1200;
/// What DTLS negotiates between the shard and the harness' peers (the first
/// profile of media.md §4.2), so both sides pay for the same cipher.
const PROFILE: SrtpProfile = SrtpProfile::AeadAes256Gcm;
const SERVER_CPU: usize = 1;
const T: Duration = Duration::from_secs(10);

/// Counts datagrams arriving on `socket` until told to stop.
struct Sink {
    count: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Sink {
    fn start(socket: UdpSocket) -> Self {
        let count = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let count = count.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                pin(0);
                let mut rx = RecvBatch::new();
                while !done.load(Ordering::Relaxed) {
                    match rx.recv(socket.as_raw_fd()) {
                        Ok(0) | Err(_) => std::thread::sleep(Duration::from_micros(100)),
                        Ok(n) => {
                            count.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        Self {
            count,
            done,
            thread,
        }
    }

    fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn stop(self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and
    // sched_setaffinity only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Sends `packets` SRTP packets through `send`, paced at `rate` per second
/// in bursts of 8.
fn blast(packets: u64, rate: u64, mut send: impl FnMut()) {
    let start = Instant::now();
    let mut sent = 0;
    while sent < packets {
        for _ in 0..8.min(packets - sent) {
            send();
            sent += 1;
        }
        let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

/// CPU nanoseconds a thread of this process named `name` has used.
fn thread_cpu_ns(name: &str) -> Option<u64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).ok()?;
        if comm.trim_end().starts_with(name) {
            let sched = std::fs::read_to_string(path.join("schedstat")).ok()?;
            return sched.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

struct Round {
    cpu_ns: u64,
    delivered: u64,
}

/// The floor: recvmmsg → unprotect → protect → sendmmsg on CPU 1.
fn floor_round(packets: u64, rate: u64) -> anyhow::Result<Round> {
    let keys_in = SrtpKeys::new(PROFILE, &[7; 32], &[9; 12])?;
    let keys_out = SrtpKeys::new(PROFILE, &[8; 32], &[10; 12])?;
    let server = UdpSocket::bind("127.0.0.1:0")?;
    io::set_buffer_sizes(server.as_raw_fd(), 8 << 20);
    let server_addr = server.local_addr()?;
    let sink_socket = UdpSocket::bind("127.0.0.1:0")?;
    io::set_buffer_sizes(sink_socket.as_raw_fd(), 8 << 20);
    let sink_addr = sink_socket.local_addr()?;
    let sink = Sink::start(sink_socket);
    let done = Arc::new(AtomicBool::new(false));
    let forwarder = {
        let done = done.clone();
        LocalExecutorBuilder::new(Placement::Fixed(SERVER_CPU))
            .name("bench-floor")
            .spawn(move || async move {
                let socket = glommio::net::UdpSocket::from(socket2::Socket::from(server));
                socket
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut srtp_in = SrtpSession::inbound(&keys_in)?;
                let mut srtp_out = SrtpSession::outbound(&keys_out)?;
                let mut rx = RecvBatch::new();
                let mut tx = SendBatch::new();
                let mut out: Vec<([u8; io::SLOT_LEN], usize)> = vec![([0; io::SLOT_LEN], 0); 32];
                let mut probe = [0u8; 1];
                let fd = socket.as_raw_fd();
                let cpu0 = io::thread_cpu_time_us();
                while !done.load(Ordering::Relaxed) {
                    if socket.peek_from(&mut probe).await.is_err() {
                        continue;
                    }
                    loop {
                        let n = rx.recv(fd)?;
                        if n == 0 {
                            break;
                        }
                        let mut m = 0;
                        for i in 0..n {
                            let (_, _, len, buf) = rx.datagram(i);
                            let Ok(plain) = srtp_in.unprotect_rtp(&mut buf[..len]) else {
                                continue;
                            };
                            let (slot, slot_len) = &mut out[m];
                            slot[..plain].copy_from_slice(&buf[..plain]);
                            let Ok(sealed) = srtp_out.protect_rtp(&mut slot[..], plain) else {
                                continue;
                            };
                            *slot_len = sealed;
                            m += 1;
                        }
                        tx.send(fd, out[..m].iter().map(|(b, l)| (&b[..*l], sink_addr)));
                        if n < io::BATCH {
                            break;
                        }
                    }
                }
                Ok::<_, anyhow::Error>(io::thread_cpu_time_us() - cpu0)
            })
            .map_err(|e| anyhow::anyhow!("executor: {e}"))?
    };
    std::thread::sleep(Duration::from_millis(50));
    let client = UdpSocket::bind("127.0.0.1:0")?;
    let mut srtp = SrtpSession::outbound(&SrtpKeys::new(PROFILE, &[7; 32], &[9; 12])?)?;
    let mut buf = [0u8; 2048];
    let mut seq = 0u16;
    blast(packets, rate, || {
        seq = seq.wrapping_add(1);
        buf[0] = 0x80;
        buf[1] = 96;
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[4..8].copy_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
        buf[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        if let Ok(n) = srtp.protect_rtp(&mut buf, 12 + PAYLOAD) {
            let _ = client.send_to(&buf[..n], server_addr);
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    let cpu_us = forwarder
        .join()
        .map_err(|e| anyhow::anyhow!("floor: {e}"))??;
    let delivered = sink.get();
    sink.stop();
    Ok(Round {
        cpu_ns: cpu_us * 1_000,
        delivered,
    })
}

/// Peers A → B through one shard pinned to CPU 1.
struct RelaySetup {
    set: jsfu_shard::ShardSet,
    a: Peer,
    b_socket: UdpSocket,
}

fn relay_setup() -> anyhow::Result<RelaySetup> {
    let (set, events, cert) = start_shards_pinned()?;
    let shard = &set.shards()[0];
    let mut a = Peer::new(1, shard.local_addr(), &cert)?;
    let mut b = Peer::new(2, shard.local_addr(), &cert)?;
    shard
        .commands()
        .send(ShardCommand::CreatePc(a.pc_config()))?;
    shard
        .commands()
        .send(ShardCommand::CreatePc(b.pc_config()))?;
    a.connect(T)?;
    b.connect(T)?;
    let mut seen = Vec::new();
    for id in [1, 2] {
        wait_event(
            &events,
            &mut seen,
            T,
            |e| matches!(e, MediaEvent::WebrtcUp { session } if session.0 == id),
        )
        .ok_or_else(|| anyhow::anyhow!("no WebrtcUp for {id}"))?;
    }
    shard.routes().send(route(1, 1, true, false, &[2]))?;
    shard.routes().send(route(2, 1, false, true, &[]))?;
    std::thread::sleep(Duration::from_millis(100));
    let b_socket = b.socket.try_clone()?;
    b_socket.set_nonblocking(true)?;
    io::set_buffer_sizes(b_socket.as_raw_fd(), 8 << 20);
    // Keep the events drained in the background (stats are off).
    std::thread::spawn(move || while events.recv().is_ok() {});
    Ok(RelaySetup { set, a, b_socket })
}

fn start_shards_pinned() -> anyhow::Result<(
    jsfu_shard::ShardSet,
    flume::Receiver<MediaEvent>,
    jsfu_proto::dtls::DtlsCert,
)> {
    use jsfu_proto::dtls::{DtlsCert, DtlsConfig, DtlsContext};
    // The harness' start_shards does not pin; this bench needs CPU 1.
    let cert = DtlsCert::generate(std::time::SystemTime::now())?;
    let ctx = DtlsContext::new(&cert, &DtlsConfig::default())?;
    let (tx, rx) = flume::bounded(4096);
    let mut cfg = jsfu_shard::ShardSetConfig::new("127.0.0.1".parse()?, ctx, tx);
    cfg.shards = 1;
    cfg.pin_to_cores = true;
    cfg.stats_interval = Duration::ZERO;
    let set = jsfu_shard::start(cfg)?;
    Ok((set, rx, cert))
}

fn relay_round(setup: &mut RelaySetup, packets: u64, rate: u64) -> anyhow::Result<Round> {
    let sink = Sink::start(setup.b_socket.try_clone()?);
    let cpu0 = thread_cpu_ns("jsfu-shard-0").ok_or_else(|| {
        let names: Vec<String> = std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .collect();
        anyhow::anyhow!("no shard thread among {names:?}")
    })?;
    let a = &mut setup.a;
    blast(packets, rate, || {
        let _ = a.send_rtp(true, PAYLOAD);
    });
    std::thread::sleep(Duration::from_millis(300));
    let cpu1 = thread_cpu_ns("jsfu-shard-0").ok_or_else(|| anyhow::anyhow!("no shard thread"))?;
    let delivered = sink.get();
    sink.stop();
    Ok(Round {
        cpu_ns: cpu1 - cpu0,
        delivered,
    })
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let packets = args.next().unwrap_or(100_000);
    let rate = args.next().unwrap_or(50_000);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        anyhow::bail!("needs two CPUs (server on CPU 1, clients on CPU 0)");
    }
    pin(0);
    println!(
        "{packets} SRTP packets of {PAYLOAD} bytes at {rate}/s per round; server on CPU {SERVER_CPU}"
    );
    let mut setup = relay_setup()?;
    // Warm-up: libsrtp streams, pools, caches.
    relay_round(&mut setup, 5_000, rate)?;
    floor_round(5_000, rate)?;
    let (mut floor, mut relay) = ((0u64, 0u64), (0u64, 0u64));
    for round in 0..3 {
        let f = floor_round(packets, rate)?;
        let r = relay_round(&mut setup, packets, rate)?;
        println!(
            "round {round}: floor {:>6.2} us/pkt ({} delivered)   relay {:>6.2} us/pkt ({} delivered)",
            f.cpu_ns as f64 / 1e3 / f.delivered.max(1) as f64,
            f.delivered,
            r.cpu_ns as f64 / 1e3 / r.delivered.max(1) as f64,
            r.delivered,
        );
        floor = (floor.0 + f.cpu_ns, floor.1 + f.delivered);
        relay = (relay.0 + r.cpu_ns, relay.1 + r.delivered);
    }
    let f = floor.0 as f64 / 1e3 / floor.1.max(1) as f64;
    let r = relay.0 as f64 / 1e3 / relay.1.max(1) as f64;
    println!(
        "total: floor {f:.2} us/pkt, relay {r:.2} us/pkt, ratio {:.2}",
        r / f
    );
    setup.set.shutdown()?;
    Ok(())
}
