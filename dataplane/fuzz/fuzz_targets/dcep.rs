//! DCEP (RFC 8832): parse DATA_CHANNEL_OPEN / ACK messages.
#![no_main]

use jsfu_proto::sctp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sctp::parse_dcep(data);
});
