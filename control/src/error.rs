//! The Janus API error codes (janus-api.md §2), in one enum with code and
//! default reason.

/// A Janus API error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 403
    Unauthorized,
    /// 405
    UnauthorizedPlugin,
    /// 450
    TransportSpecific,
    /// 452
    MissingRequest,
    /// 453
    UnknownRequest,
    /// 454
    InvalidJson,
    /// 455
    InvalidJsonObject,
    /// 456
    MissingMandatoryElement,
    /// 457
    InvalidRequestPath,
    /// 458
    SessionNotFound,
    /// 459
    HandleNotFound,
    /// 460
    PluginNotFound,
    /// 461
    PluginAttach,
    /// 462
    PluginMessage,
    /// 463
    PluginDetach,
    /// 464
    JsepUnknownType,
    /// 465
    JsepInvalidSdp,
    /// 466
    TrickleInvalidStream,
    /// 467
    InvalidElementType,
    /// 468
    SessionConflict,
    /// 469
    UnexpectedAnswer,
    /// 470
    TokenNotFound,
    /// 471
    WebrtcState,
    /// 472
    NotAcceptingSessions,
    /// 490
    Unknown,
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Self::Unauthorized => 403,
            Self::UnauthorizedPlugin => 405,
            Self::TransportSpecific => 450,
            Self::MissingRequest => 452,
            Self::UnknownRequest => 453,
            Self::InvalidJson => 454,
            Self::InvalidJsonObject => 455,
            Self::MissingMandatoryElement => 456,
            Self::InvalidRequestPath => 457,
            Self::SessionNotFound => 458,
            Self::HandleNotFound => 459,
            Self::PluginNotFound => 460,
            Self::PluginAttach => 461,
            Self::PluginMessage => 462,
            Self::PluginDetach => 463,
            Self::JsepUnknownType => 464,
            Self::JsepInvalidSdp => 465,
            Self::TrickleInvalidStream => 466,
            Self::InvalidElementType => 467,
            Self::SessionConflict => 468,
            Self::UnexpectedAnswer => 469,
            Self::TokenNotFound => 470,
            Self::WebrtcState => 471,
            Self::NotAcceptingSessions => 472,
            Self::Unknown => 490,
        }
    }

    /// The default reason text Janus uses.
    pub fn default_reason(self) -> &'static str {
        match self {
            Self::Unauthorized => "Unauthorized request (wrong or missing secret/token)",
            Self::UnauthorizedPlugin => "Unauthorized access to plugin (token is not allowed to)",
            Self::TransportSpecific => "Transport specific error",
            Self::MissingRequest => "Missing request",
            Self::UnknownRequest => "Unknown request",
            Self::InvalidJson => "Invalid JSON",
            Self::InvalidJsonObject => "Invalid JSON Object",
            Self::MissingMandatoryElement => "Missing mandatory element",
            Self::InvalidRequestPath => "Invalid path for this request",
            Self::SessionNotFound => "Session not found",
            Self::HandleNotFound => "Handle not found",
            Self::PluginNotFound => "Plugin not found",
            Self::PluginAttach => "Error attaching plugin",
            Self::PluginMessage => "Error sending message to plugin",
            Self::PluginDetach => "Error detaching from plugin",
            Self::JsepUnknownType => "Unsupported JSEP type",
            Self::JsepInvalidSdp => "Invalid SDP",
            Self::TrickleInvalidStream => "Invalid stream",
            Self::InvalidElementType => "Invalid element type",
            Self::SessionConflict => "Session ID already in use",
            Self::UnexpectedAnswer => "Unexpected ANSWER (no OFFER)",
            Self::TokenNotFound => "Token not found",
            Self::WebrtcState => "Wrong WebRTC state",
            Self::NotAcceptingSessions => "Currently not accepting new sessions",
            Self::Unknown => "Unknown error",
        }
    }
}

/// An error reply: a code and its reason text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} {reason}", code.code())]
pub struct JanusError {
    /// The code.
    pub code: ErrorCode,
    /// The reason text sent to the client.
    pub reason: String,
}

impl JanusError {
    /// An error with a custom reason.
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// An error with the code's default reason.
    pub fn default_for(code: ErrorCode) -> Self {
        Self::new(code, code.default_reason())
    }
}

impl From<ErrorCode> for JanusError {
    fn from(code: ErrorCode) -> Self {
        Self::default_for(code)
    }
}
