//! Sans-IO protocol pieces of the jsfu dataplane.
//!
//! Bytes in, bytes and events out, time passed in: every state machine here is
//! driven by `handle_*(now, ...)` inputs, reports through `poll_*()` outputs and
//! asks for timers through `poll_timeout()` / `handle_timeout(now)`.
//!
//! This crate never opens a socket, never reads a clock, never spawns a thread or
//! task and never logs per packet. Failures on the packet path are small `Copy`
//! reasons meant to bump counters; only setup paths return `thiserror` errors.
//! The only `unsafe` code lives in [`srtp`], the wrapper over libsrtp.
#![deny(unsafe_code)]

pub mod demux;
pub mod dtls;
pub mod ice;
pub mod mjr;
pub mod nack;
pub mod rtcp;
pub mod rtp;
pub mod rtx;
pub mod sctp;
pub mod srtp;
pub mod stun;
