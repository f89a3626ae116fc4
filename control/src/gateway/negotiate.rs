//! The bridge between the Janus API core and the SDP module: what a client's
//! description becomes for the script, and what the script's description
//! becomes for the client (media.md §2).

use serde_json::Value;

use crate::error::{ErrorCode, JanusError};
use crate::sdp::{self, JsepExtras, RemoteInfo, RidOrder};

/// A processed client description.
pub(super) struct RemoteDescription {
    /// The `jsep` object handed to `handleMessage`.
    pub(super) jsep_for_script: Value,
    /// What the core learned from it (kept for the answer merge).
    pub(super) info: RemoteInfo,
    /// The first video codec, lower case.
    pub(super) first_video_codec: Option<String>,
}

/// Parses, checks and strips a client's SDP (media.md §2.1–§2.2).
pub(super) fn remote_description(
    kind: &str,
    text: &str,
    rid_order: Option<&str>,
    svc: Option<&Value>,
    update: bool,
    e2ee: bool,
) -> Result<RemoteDescription, JanusError> {
    let parsed =
        sdp::parse(text).map_err(|e| JanusError::new(ErrorCode::JsepInvalidSdp, e.to_string()))?;
    let info = sdp::check_remote(&parsed, RidOrder::from_jsep(rid_order))
        .map_err(|e| JanusError::new(ErrorCode::JsepInvalidSdp, e.to_string()))?;
    let stripped = sdp::strip(&parsed).serialize();
    let jsep_for_script =
        sdp::jsep_for_script(kind, &stripped, &info, JsepExtras { svc, update, e2ee });
    Ok(RemoteDescription {
        jsep_for_script,
        info,
        first_video_codec: parsed.first_video_codec(),
    })
}
