//! The steady-state relay loop allocates nothing per packet: relaying ten
//! times more packets in the same number of bursts and the same wall time
//! costs (almost) no more allocations.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Peer, route, start_shards, wait_event};
use jsfu_route::{MediaEvent, ShardCommand};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sends `bursts` bursts of `per_burst` packets, 40 ms apart, draining B
/// meanwhile; returns (allocations, packets B received).
fn phase(a: &mut Peer, b: &mut Peer, bursts: usize, per_burst: usize) -> (u64, usize) {
    let start = ALLOCATIONS.load(Ordering::Relaxed);
    let mut received = 0;
    for _ in 0..bursts {
        for _ in 0..per_burst {
            // Protect and send reuse the peer's buffer: no allocation.
            if a.send_rtp(true, 300).is_err() {
                return (u64::MAX, received);
            }
        }
        received += b.count_rtp(Duration::from_millis(40));
    }
    received += b.count_rtp(Duration::from_millis(200));
    (ALLOCATIONS.load(Ordering::Relaxed) - start, received)
}

#[test]
fn relay_does_not_allocate_per_packet() -> anyhow::Result<()> {
    let (set, events, cert) = start_shards(1)?;
    let shard = &set.shards()[0];
    let mut a = Peer::new(1, shard.local_addr(), &cert)?;
    let mut b = Peer::new(2, shard.local_addr(), &cert)?;
    shard
        .commands()
        .send(ShardCommand::CreatePc(a.pc_config()))?;
    shard
        .commands()
        .send(ShardCommand::CreatePc(b.pc_config()))?;
    a.connect(Duration::from_secs(10))?;
    b.connect(Duration::from_secs(10))?;
    let mut seen = Vec::new();
    for id in [1, 2] {
        assert!(
            wait_event(&events, &mut seen, Duration::from_secs(10), |e| {
                matches!(e, MediaEvent::WebrtcUp { session } if session.0 == id)
            })
            .is_some()
        );
    }
    shard.routes().send(route(1, 1, true, false, &[2]))?;
    shard.routes().send(route(2, 1, false, true, &[]))?;
    std::thread::sleep(Duration::from_millis(100));

    // Warm-up: libsrtp learns the SSRCs, maps and queues reach their size.
    let (_, warm) = phase(&mut a, &mut b, 5, 100);
    assert_eq!(warm, 500);

    let (small, got_small) = phase(&mut a, &mut b, 10, 10);
    let (large, got_large) = phase(&mut a, &mut b, 10, 100);
    assert_eq!(got_small, 100);
    assert_eq!(got_large, 1000);
    eprintln!("allocations: 100 packets -> {small}, 1000 packets -> {large}");
    // 900 more packets may cost a few more executor wake-ups, never one
    // allocation per packet.
    assert!(
        large <= small + 90,
        "100 packets: {small} allocations, 1000 packets: {large}"
    );
    set.shutdown()?;
    Ok(())
}
