//! glommio's `UdpSocket` (one datagram per call) against batched
//! `recvmmsg`/`sendmmsg` on the same socket's fd (woken by a glommio peek):
//! a forwarder receives datagrams from a blaster thread and sends each one to
//! a sink, and the forwarder thread's CPU time per packet is reported.
//!
//! `cargo bench -p jsfu-shard --bench io [-- packets]`

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};
use jsfu_shard::io::{self, BATCH, RecvBatch, SendBatch};

const PAYLOAD: usize = 1200;

#[derive(Debug, Clone, Copy)]
enum Mode {
    GlommioSocket,
    Batched,
}

struct Outcome {
    forwarded: u64,
    cpu_us: u64,
    wall: Duration,
    received_by_sink: u64,
}

fn run(mode: Mode, packets: u64) -> anyhow::Result<Outcome> {
    let server = UdpSocket::bind("127.0.0.1:0")?;
    io::set_buffer_sizes(server.as_raw_fd(), 8 << 20);
    let server_addr = server.local_addr()?;
    let sink = UdpSocket::bind("127.0.0.1:0")?;
    io::set_buffer_sizes(sink.as_raw_fd(), 8 << 20);
    sink.set_read_timeout(Some(Duration::from_millis(300)))?;
    let sink_addr = sink.local_addr()?;

    let sink_count = Arc::new(AtomicU64::new(0));
    let sink_done = Arc::new(AtomicBool::new(false));
    let sink_thread = {
        let count = sink_count.clone();
        let done = sink_done.clone();
        std::thread::spawn(move || {
            let mut rx = RecvBatch::new();
            while !done.load(Ordering::Relaxed) {
                match rx.recv(sink.as_raw_fd()) {
                    Ok(0) | Err(_) => std::thread::sleep(Duration::from_micros(200)),
                    Ok(n) => {
                        count.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let forwarder = LocalExecutorBuilder::new(Placement::Unbound)
        .name("bench-forwarder")
        .spawn(move || async move {
            let socket = glommio::net::UdpSocket::from(socket2::Socket::from(server));
            socket
                .set_read_timeout(Some(Duration::from_millis(500)))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut forwarded = 0u64;
            let mut started: Option<(Instant, u64)> = None;
            match mode {
                Mode::GlommioSocket => {
                    let mut buf = vec![0u8; 2048];
                    while forwarded < packets {
                        let Ok((n, _)) = socket.recv_from(&mut buf).await else {
                            break;
                        };
                        if started.is_none() {
                            started = Some((Instant::now(), io::thread_cpu_time_us()));
                        }
                        // Loopback never refuses; a failure ends the run.
                        if socket.send_to(&buf[..n], sink_addr).await.is_err() {
                            break;
                        }
                        forwarded += 1;
                    }
                }
                Mode::Batched => {
                    let mut rx = RecvBatch::new();
                    let mut tx = SendBatch::new();
                    let mut probe = [0u8; 1];
                    let fd = socket.as_raw_fd();
                    'outer: while forwarded < packets {
                        if socket.peek_from(&mut probe).await.is_err() {
                            break;
                        }
                        if started.is_none() {
                            started = Some((Instant::now(), io::thread_cpu_time_us()));
                        }
                        loop {
                            let n = rx.recv(fd)?;
                            if n == 0 {
                                break;
                            }
                            let sent = tx.send(fd, (0..n).map(|i| (rx.bytes(i), sink_addr)));
                            forwarded += sent as u64;
                            if forwarded >= packets {
                                break 'outer;
                            }
                        }
                    }
                }
            }
            let (t0, cpu0) = started.unwrap_or((Instant::now(), io::thread_cpu_time_us()));
            Ok::<_, anyhow::Error>((forwarded, io::thread_cpu_time_us() - cpu0, t0.elapsed()))
        })
        .map_err(|e| anyhow::anyhow!("executor: {e}"))?;

    // Blaster: batches of 32, paced so the kernel queue does not overflow.
    std::thread::sleep(Duration::from_millis(50));
    let blaster = UdpSocket::bind("127.0.0.1:0")?;
    let payload = vec![0x80u8; PAYLOAD];
    let mut tx = SendBatch::new();
    let mut sent = 0u64;
    while sent < packets {
        let n = (packets - sent).min(BATCH as u64) as usize;
        sent += tx.send(
            blaster.as_raw_fd(),
            std::iter::repeat_n((payload.as_slice(), server_addr), n),
        ) as u64;
        std::thread::sleep(Duration::from_micros(20));
    }
    let (forwarded, cpu_us, wall) = forwarder
        .join()
        .map_err(|e| anyhow::anyhow!("forwarder: {e}"))??;
    std::thread::sleep(Duration::from_millis(200));
    sink_done.store(true, Ordering::Relaxed);
    let _ = sink_thread.join();
    Ok(Outcome {
        forwarded,
        cpu_us,
        wall,
        received_by_sink: sink_count.load(Ordering::Relaxed),
    })
}

fn main() -> anyhow::Result<()> {
    let packets: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    println!("forwarding {packets} datagrams of {PAYLOAD} bytes over loopback");
    for mode in [
        Mode::GlommioSocket,
        Mode::Batched,
        Mode::GlommioSocket,
        Mode::Batched,
    ] {
        let o = run(mode, packets)?;
        println!(
            "{:<14} forwarded {:>7}  sink {:>7}  cpu {:>5.2} us/pkt  wall {:>5.2} us/pkt",
            format!("{mode:?}"),
            o.forwarded,
            o.received_by_sink,
            o.cpu_us as f64 / o.forwarded.max(1) as f64,
            o.wall.as_secs_f64() * 1e6 / o.forwarded.max(1) as f64,
        );
    }
    Ok(())
}
