//! SDP: parse text, run the client-SDP checks, strip it for the script and
//! serialize both; a serialized SDP parses again.
#![no_main]

use jsfu::sdp::{self, RidOrder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = sdp::parse(text) else {
        return;
    };
    for order in [RidOrder::HighToLow, RidOrder::LowToHigh] {
        let _ = sdp::check_remote(&parsed, order);
    }
    let stripped = sdp::strip(&parsed);
    let again = parsed.serialize();
    assert!(sdp::parse(&again).is_ok(), "a serialized SDP parses again");
    let _ = stripped.serialize();
});
