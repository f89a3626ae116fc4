//! STUN: parse arbitrary bytes, read every attribute accessor, check
//! integrity and fingerprint, then rebuild a response with the writer.
#![no_main]

use jsfu_proto::stun::{self, Class, Method, StunKey, StunWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = stun::parse(data) else {
        return;
    };
    let _ = (msg.class(), msg.method(), msg.priority(), msg.use_candidate());
    let _ = (msg.ice_controlling(), msg.ice_controlled(), msg.error_code());
    let _ = (msg.unknown_comprehension_required(), msg.xor_mapped_address());
    let _ = (msg.has_integrity(), msg.has_fingerprint());
    for (ty, value) in msg.attributes() {
        let _ = (ty, value.len());
    }
    if let Ok(key) = StunKey::short_term(b"fuzzpassword") {
        let _ = msg.verify_integrity(&key);
        let _ = msg.verify_fingerprint();
        let mut out = [0u8; 1500];
        let tid = msg.transaction_id();
        if let Ok(mut w) = StunWriter::new(&mut out, Class::Success, Method::BINDING, &tid) {
            if let Some(user) = msg.username() {
                let _ = w.add_username(user);
            }
            if let Some(addr) = msg.xor_mapped_address() {
                let _ = w.add_xor_mapped_address(addr);
            }
            let _ = w.add_message_integrity(&key);
            let _ = w.add_fingerprint();
        }
    }
});
