//! The RTCP path a relay runs per packet allocates nothing: parsing and
//! reading every view, filtering, remapping and every builder, checked with
//! a counting allocator (per thread, so concurrent tests do not interfere).

// A global allocator needs `unsafe impl`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::report::{self, NtpTime, ReportBlock, SenderInfo};
use super::tests::{COMPOUND, built_compound, exercise};
use super::twcc::{TwccRecord, write_twcc};
use super::{feedback, write_empty_rr};
use crate::rtp::{SeqNo, Ssrc};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the slot may be gone while the thread is torn down.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged; counting
// touches a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Writes one of every packet the core builds into `out`.
fn build_all(out: &mut [u8]) -> Result<usize, super::RtcpDrop> {
    let block = ReportBlock {
        ssrc: Ssrc(2),
        cumulative_lost: 3,
        ..ReportBlock::default()
    };
    let info = SenderInfo {
        ssrc: Ssrc(1),
        ntp: NtpTime::from_unix_us(1_700_000_000_000_000),
        ..SenderInfo::default()
    };
    let mut n = report::write_sr(out, &info, &[block])?;
    n += report::write_rr(&mut out[n..], Ssrc(1), &[block])?;
    n += report::write_sdes_cname(&mut out[n..], Ssrc(1), b"janus")?;
    n += report::write_bye(&mut out[n..], &[Ssrc(1)], None)?;
    n += write_empty_rr(&mut out[n..], Ssrc(1))?;
    n += feedback::write_remb(&mut out[n..], Ssrc(1), 10_000_000, &[Ssrc(2)])?;
    n += feedback::write_pli(&mut out[n..], Ssrc(1), Ssrc(2))?;
    n += feedback::write_fir(&mut out[n..], Ssrc(1), &[(Ssrc(2), 1)])?;
    n += feedback::write_nack(&mut out[n..], Ssrc(1), Ssrc(2), &[SeqNo(7), SeqNo(9)])?;
    let records = [
        TwccRecord {
            seq: 1,
            arrival_us: 1_000,
        },
        TwccRecord {
            seq: 3,
            arrival_us: 5_000,
        },
    ];
    n += write_twcc(&mut out[n..], Ssrc(1), Ssrc(2), 0, &records)?.len;
    Ok(n)
}

#[test]
fn rtcp_path_does_not_allocate() {
    // The counter works: a vector allocates.
    let before = allocations();
    let built = std::hint::black_box(built_compound());
    assert!(allocations() > before);

    let mut buf = [0u8; 1024];
    let mut out = [0u8; 1024];
    let before = allocations();
    for input in [COMPOUND, &built[..]] {
        buf[..input.len()].copy_from_slice(input);
        exercise(&mut buf[..input.len()], &mut out);
    }
    let n = build_all(&mut buf).expect("fits");
    exercise(&mut buf[..n], &mut out);
    assert_eq!(allocations(), before);
    assert_eq!(super::validate_compound(&buf[..n]), Ok(10));
}
