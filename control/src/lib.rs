//! jsfu's control plane: configuration, the Janus API (HTTP with long poll,
//! WebSocket, Admin API), the session/handle registry, SDP handling, and the
//! QuickJS host that runs Janus Duktape scripts unchanged.
//!
//! Nothing here is on the packet path: the dataplane shards relay media, and
//! control speaks to them only in `jsfu-route` messages.
#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod gateway;
pub mod json;
pub mod media;
pub mod plugin;
pub mod script;
pub mod sdp;
pub mod transport;
