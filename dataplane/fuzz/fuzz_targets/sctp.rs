//! SCTP (RFC 4960 over DTLS, RFC 8261) through jsfu's association wrapper:
//! the input is split into packets (2-byte big-endian length prefixes), fed
//! as the peer's datagrams to a server-side association, whose output,
//! events and timers are drained after each one.
#![no_main]

use std::time::{Duration, Instant};

use jsfu_proto::sctp::{SctpAssociation, SctpRole};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut assoc = SctpAssociation::new(SctpRole::Server);
    let mut rest = data;
    let mut step = 0u64;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = &rest[2..];
        let (packet, tail) = body.split_at(len.min(body.len()));
        rest = tail;
        step += 1;
        let now = start + Duration::from_millis(step * 10);
        assoc.handle_data(now, packet);
        while assoc.poll_transmit().is_some() {}
        while assoc.poll_event().is_some() {}
        assoc.handle_timeout(now + Duration::from_millis(5));
        while assoc.poll_transmit().is_some() {}
    }
});
