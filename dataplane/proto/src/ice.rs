//! An ICE-lite agent (RFC 8445 §2.5) with consent freshness (RFC 7675).
//!
//! The server side of a PeerConnection in jsfu is always ICE-lite and always
//! controlled (media.md §3.1): it never sends checks, it answers the peer's
//! Binding requests. [`IceLiteAgent::handle_stun`] verifies a request
//! (FINGERPRINT, USERNAME `local:remote`, MESSAGE-INTEGRITY keyed with the local
//! password), writes the response into a caller buffer, and tracks candidate
//! pairs by the peer's transport address. The address of the last request
//! carrying USE-CANDIDATE is where media and DTLS go
//! ([`IceLiteAgent::selected_address`]).
//!
//! Timers: once connected, a valid check from the selected address must arrive
//! at least every [`IceConfig::consent_timeout`] (30 s, RFC 7675 §5.1) or the
//! agent fails; before connecting, [`IceConfig::connect_timeout`] bounds the
//! wait for a nomination. What happens after `Failed` (grace periods, hangup,
//! the `ice-failed` event of media.md §3.5) is the owner's decision; a later
//! valid check from the selected address, or a new nomination, reconnects.
//!
//! ICE-CONTROLLING / ICE-CONTROLLED are parsed but not acted on: a lite agent
//! is controlled and never switches roles, so it never answers 487. Consent is
//! inferred from the peer's own checks, since a lite agent sends none.
//!
//! Sans-IO: inputs are `handle_stun(now, ..)`, `handle_timeout(now)` and the
//! credential setters; outputs are the returned [`StunOutcome`],
//! [`IceLiteAgent::poll_event`] and [`IceLiteAgent::poll_timeout`]. The agent
//! never does IO, never reads a clock and never draws randomness itself (the
//! caller passes an RNG to [`IceCredentials::generate`]).

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::stun::{self, Class, Method, StunError, StunKey};

/// Length of a generated local ufrag (24 bits of randomness, RFC 8445 §5.3).
pub const LOCAL_UFRAG_LEN: usize = 4;

/// Length of a generated local password (132 bits, RFC 8445 §5.3 asks 128).
pub const LOCAL_PWD_LEN: usize = 22;

/// The 64 `ice-char`s (RFC 8839 §5.4): ALPHA / DIGIT / "+" / "/".
const ICE_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Errors of the agent's setup calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IceError {
    /// The ufrag is not 4 to 256 `ice-char`s (RFC 8839 §5.4).
    #[error("ice-ufrag must be 4 to 256 ice-chars")]
    BadUfrag,
    /// The password is not 22 to 256 `ice-char`s (RFC 8839 §5.4).
    #[error("ice-pwd must be 22 to 256 ice-chars")]
    BadPwd,
    /// The agent is closed.
    #[error("the ICE agent is closed")]
    Closed,
    /// The HMAC key could not be prepared.
    #[error("could not prepare the MESSAGE-INTEGRITY key")]
    Crypto,
}

/// An ICE username fragment and password (`a=ice-ufrag` / `a=ice-pwd`).
#[derive(Clone, PartialEq, Eq)]
pub struct IceCredentials {
    ufrag: String,
    pwd: String,
}

impl IceCredentials {
    /// Fresh local credentials: a 4-char ufrag and a 22-char password drawn
    /// from `fill_random`, which must fill its argument with random bytes
    /// (from a CSPRNG: the password is the check's only secret).
    pub fn generate(fill_random: impl FnOnce(&mut [u8])) -> Self {
        let mut bytes = [0u8; LOCAL_UFRAG_LEN + LOCAL_PWD_LEN];
        fill_random(&mut bytes);
        // 256 is a multiple of 64, so masking keeps every char equally likely.
        let mut chars = bytes
            .iter()
            .map(|b| char::from(ICE_CHARS[usize::from(b & 63)]));
        let ufrag = chars.by_ref().take(LOCAL_UFRAG_LEN).collect();
        let pwd = chars.collect();
        Self { ufrag, pwd }
    }

    /// Credentials read from an SDP, validated per RFC 8839 §5.4.
    pub fn new(ufrag: &str, pwd: &str) -> Result<Self, IceError> {
        let valid = |s: &str, min: usize| {
            (min..=256).contains(&s.len()) && s.bytes().all(|b| ICE_CHARS.contains(&b))
        };
        if !valid(ufrag, 4) {
            return Err(IceError::BadUfrag);
        }
        if !valid(pwd, 22) {
            return Err(IceError::BadPwd);
        }
        Ok(Self {
            ufrag: ufrag.to_owned(),
            pwd: pwd.to_owned(),
        })
    }

    /// The username fragment.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// The password.
    pub fn pwd(&self) -> &str {
        &self.pwd
    }
}

impl fmt::Debug for IceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceCredentials")
            .field("ufrag", &self.ufrag)
            .finish_non_exhaustive()
    }
}

/// Timers and limits of the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceConfig {
    /// How long a connected agent waits for a valid check from the selected
    /// address before failing (RFC 7675 §5.1: 30 s).
    pub consent_timeout: Duration,
    /// How long after the remote credentials are set (or the first valid
    /// check, whichever is first) the agent waits for a nomination before
    /// failing. 7 s by default: with the 5 s grace of media.md §3.5, an
    /// unreachable peer is hung up about 12 s after the answer, as Janus does.
    pub connect_timeout: Duration,
    /// Most candidate pairs (remote addresses) remembered; the least recently
    /// checked unselected pair is forgotten first. At least 2.
    pub max_pairs: usize,
}

impl Default for IceConfig {
    fn default() -> Self {
        Self {
            consent_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(7),
            max_pairs: 8,
        }
    }
}

/// The agent's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IceState {
    /// Nothing heard, no remote credentials yet.
    New,
    /// Waiting for the peer to nominate a pair.
    Checking,
    /// A pair is nominated and has consent: media may flow.
    Connected,
    /// No nomination in time, or consent expired. Media must stop.
    Failed,
    /// Closed by the owner; terminal.
    Closed,
}

/// What the agent reports through [`IceLiteAgent::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceEvent {
    /// The state changed to this.
    StateChanged(IceState),
    /// Media and DTLS now go to this address.
    SelectedAddress(SocketAddr),
}

/// Why a STUN datagram was not accepted. Small and `Copy`: it counts a drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum IceDrop {
    /// Not a well-formed STUN message.
    #[error("malformed STUN: {0}")]
    Malformed(StunError),
    /// A method other than Binding.
    #[error("not a Binding message")]
    NotBinding,
    /// A response: a lite agent sends no requests.
    #[error("unexpected STUN response")]
    UnexpectedResponse,
    /// A request without FINGERPRINT (RFC 8445 §7.1.1 requires it).
    #[error("request without FINGERPRINT")]
    NoFingerprint,
    /// FINGERPRINT does not match.
    #[error("FINGERPRINT mismatch")]
    BadFingerprint,
    /// A request without USERNAME.
    #[error("request without USERNAME")]
    NoUsername,
    /// A request without MESSAGE-INTEGRITY.
    #[error("request without MESSAGE-INTEGRITY")]
    NoIntegrity,
    /// USERNAME is not `<local ufrag>:<remote ufrag>` (answered with 401).
    #[error("unknown USERNAME")]
    UnknownUsername,
    /// MESSAGE-INTEGRITY does not verify with the local password (401).
    #[error("MESSAGE-INTEGRITY mismatch")]
    BadIntegrity,
    /// A comprehension-required attribute this agent does not know.
    #[error("unknown comprehension-required attribute")]
    UnknownRequiredAttribute,
    /// The agent is closed.
    #[error("agent closed")]
    Closed,
    /// The caller's response buffer is too small for the response.
    #[error("response buffer too small")]
    ResponseBufferTooSmall,
}

impl IceDrop {
    const COUNT: usize = 12;

    fn slot(self) -> usize {
        match self {
            Self::Malformed(_) => 0,
            Self::NotBinding => 1,
            Self::UnexpectedResponse => 2,
            Self::NoFingerprint => 3,
            Self::BadFingerprint => 4,
            Self::NoUsername => 5,
            Self::NoIntegrity => 6,
            Self::UnknownUsername => 7,
            Self::BadIntegrity => 8,
            Self::UnknownRequiredAttribute => 9,
            Self::Closed => 10,
            Self::ResponseBufferTooSmall => 11,
        }
    }
}

/// The result of [`IceLiteAgent::handle_stun`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunOutcome {
    /// A valid check: send `out[..response_len]` back to its source.
    Accepted {
        /// Length of the success response written into the caller's buffer.
        response_len: usize,
    },
    /// A Binding indication (keepalive): nothing to send.
    Indication,
    /// Not accepted. When `response_len` is set, send that error response
    /// (401) back to the source; otherwise send nothing.
    Rejected {
        /// Why.
        reason: IceDrop,
        /// Length of an error response written into the caller's buffer.
        response_len: Option<usize>,
    },
}

/// Counters kept by the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceStats {
    /// Valid checks answered.
    pub accepted: u64,
    /// Binding indications seen.
    pub indications: u64,
    dropped: [u64; IceDrop::COUNT],
}

impl IceStats {
    /// How many datagrams were dropped for `reason` (any `Malformed(_)`
    /// counts under one slot).
    pub fn dropped(&self, reason: IceDrop) -> u64 {
        self.dropped[reason.slot()]
    }

    /// How many datagrams were dropped in total.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// A candidate pair, known by the peer's transport address (the local side is
/// the one socket the agent's owner listens on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidatePair {
    /// The peer's address as seen on the wire.
    pub remote: SocketAddr,
    /// When the last valid check on this pair arrived.
    pub last_check: Instant,
    /// Valid checks received on this pair.
    pub checks: u64,
    /// Whether the peer ever nominated this pair.
    pub nominated: bool,
}

/// One set of local credentials, with the remote ones they pair with.
struct Generation {
    local: IceCredentials,
    key: StunKey,
    remote: Option<IceCredentials>,
}

impl Generation {
    fn new(local: IceCredentials) -> Result<Self, IceError> {
        let key = StunKey::short_term(local.pwd.as_bytes()).map_err(|_| IceError::Crypto)?;
        Ok(Self {
            local,
            key,
            remote: None,
        })
    }
}

/// The ICE-lite agent of one PeerConnection (one component: RTCP is muxed).
pub struct IceLiteAgent {
    config: IceConfig,
    current: Generation,
    /// The credentials before an ICE restart, honoured until a check with the
    /// new ones arrives, so consent survives the renegotiation.
    previous: Option<Generation>,
    state: IceState,
    pairs: Vec<CandidatePair>,
    selected: Option<SocketAddr>,
    connect_deadline: Option<Instant>,
    consent_deadline: Option<Instant>,
    events: VecDeque<IceEvent>,
    stats: IceStats,
}

impl IceLiteAgent {
    /// An agent with the given local credentials, in state `New`.
    pub fn new(config: IceConfig, local: IceCredentials) -> Result<Self, IceError> {
        let config = IceConfig {
            max_pairs: config.max_pairs.max(2),
            ..config
        };
        Ok(Self {
            current: Generation::new(local)?,
            previous: None,
            state: IceState::New,
            pairs: Vec::with_capacity(config.max_pairs),
            selected: None,
            connect_deadline: None,
            consent_deadline: None,
            events: VecDeque::with_capacity(4),
            stats: IceStats::default(),
            config,
        })
    }

    /// Sets the peer's credentials from its SDP; the agent starts `Checking`
    /// (if it was `New`) and the connect timer runs.
    pub fn set_remote_credentials(&mut self, now: Instant, remote: IceCredentials) {
        self.current.remote = Some(remote);
        if self.state == IceState::New {
            self.set_state(IceState::Checking);
        }
        if self.state == IceState::Checking && self.connect_deadline.is_none() {
            self.connect_deadline = Some(now + self.config.connect_timeout);
        }
    }

    /// ICE restart (RFC 8445 §9): new local credentials; the remote ones are
    /// expected next through [`Self::set_remote_credentials`]. Checks with the
    /// old credentials keep consent alive until one with the new ones arrives.
    /// A failed agent goes back to `Checking`.
    pub fn restart(&mut self, now: Instant, local: IceCredentials) -> Result<(), IceError> {
        if self.state == IceState::Closed {
            return Err(IceError::Closed);
        }
        let next = Generation::new(local)?;
        self.previous = Some(std::mem::replace(&mut self.current, next));
        match self.state {
            IceState::Failed | IceState::Checking => {
                self.set_state(IceState::Checking);
                self.connect_deadline = Some(now + self.config.connect_timeout);
            }
            IceState::New | IceState::Connected | IceState::Closed => {}
        }
        Ok(())
    }

    /// Handles one STUN datagram from `from`, writing any response into `out`
    /// (a buffer of at least 128 bytes is always enough).
    pub fn handle_stun(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &[u8],
        out: &mut [u8],
    ) -> StunOutcome {
        if self.state == IceState::Closed {
            return self.reject(IceDrop::Closed, None);
        }
        let msg = match stun::parse(packet) {
            Ok(msg) => msg,
            Err(e) => return self.reject(IceDrop::Malformed(e), None),
        };
        if msg.method() != Method::BINDING {
            return self.reject(IceDrop::NotBinding, None);
        }
        match msg.class() {
            Class::Request => {}
            Class::Indication => {
                self.stats.indications += 1;
                return StunOutcome::Indication;
            }
            Class::Success | Class::Error => return self.reject(IceDrop::UnexpectedResponse, None),
        }
        match msg.verify_fingerprint() {
            Ok(()) => {}
            Err(StunError::NoFingerprint) => return self.reject(IceDrop::NoFingerprint, None),
            Err(_) => return self.reject(IceDrop::BadFingerprint, None),
        }
        // Requests without USERNAME or MESSAGE-INTEGRITY would deserve a 400;
        // they are dropped silently so that a small forged datagram never
        // draws a larger answer.
        let Some(username) = msg.username() else {
            return self.reject(IceDrop::NoUsername, None);
        };
        if !msg.has_integrity() {
            return self.reject(IceDrop::NoIntegrity, None);
        }
        let txid = msg.transaction_id();
        let unauthorized =
            |out: &mut [u8]| stun::write_binding_error(out, &txid, 401, "Unauthorized", None).ok();
        let Some(generation) = self.generation_for(username) else {
            let response = unauthorized(out);
            return self.reject(IceDrop::UnknownUsername, response);
        };
        let key = match generation {
            Which::Current => &self.current.key,
            Which::Previous => match &self.previous {
                Some(previous) => &previous.key,
                None => return self.reject(IceDrop::UnknownUsername, unauthorized(out)),
            },
        };
        if msg.verify_integrity(key).is_err() {
            let response = unauthorized(out);
            return self.reject(IceDrop::BadIntegrity, response);
        }
        if msg.unknown_comprehension_required().is_some() {
            return self.reject(IceDrop::UnknownRequiredAttribute, None);
        }
        let response_len = match stun::write_binding_success(out, &txid, from, key) {
            Ok(len) => len,
            Err(_) => return self.reject(IceDrop::ResponseBufferTooSmall, None),
        };
        if generation == Which::Current {
            // A check with the new credentials completes an ICE restart.
            self.previous = None;
        }
        self.on_valid_check(now, from, msg.use_candidate());
        StunOutcome::Accepted { response_len }
    }

    /// Runs the timers: call when [`Self::poll_timeout`]'s instant is reached.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            IceState::Checking => {
                if self
                    .connect_deadline
                    .is_some_and(|deadline| now >= deadline)
                {
                    self.connect_deadline = None;
                    self.set_state(IceState::Failed);
                }
            }
            IceState::Connected => {
                if self
                    .consent_deadline
                    .is_some_and(|deadline| now >= deadline)
                {
                    self.consent_deadline = None;
                    self.set_state(IceState::Failed);
                }
            }
            IceState::New | IceState::Failed | IceState::Closed => {}
        }
    }

    /// Closes the agent: every later datagram is dropped.
    pub fn close(&mut self) {
        self.connect_deadline = None;
        self.consent_deadline = None;
        self.set_state(IceState::Closed);
    }

    /// The next event, if any. Call after every `handle_*` until `None`.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    fn generation_for(&self, username: &[u8]) -> Option<Which> {
        let colon = username.iter().position(|&b| b == b':')?;
        let (local, remote) = (&username[..colon], &username[colon + 1..]);
        let matches = |generation: &Generation| {
            local == generation.local.ufrag.as_bytes()
                && generation
                    .remote
                    .as_ref()
                    .is_none_or(|r| remote == r.ufrag.as_bytes())
        };
        if matches(&self.current) {
            Some(Which::Current)
        } else if self.previous.as_ref().is_some_and(matches) {
            Some(Which::Previous)
        } else {
            None
        }
    }

    fn on_valid_check(&mut self, now: Instant, from: SocketAddr, nominate: bool) {
        self.stats.accepted += 1;
        let index = self.pair_index(now, from);
        let pair = &mut self.pairs[index];
        pair.last_check = now;
        pair.checks += 1;
        if nominate {
            pair.nominated = true;
            if self.selected != Some(from) {
                self.selected = Some(from);
                self.events.push_back(IceEvent::SelectedAddress(from));
            }
        }
        let from_selected = self.selected == Some(from);
        if from_selected {
            self.consent_deadline = Some(now + self.config.consent_timeout);
        }
        match self.state {
            IceState::New | IceState::Checking | IceState::Failed if from_selected => {
                self.connect_deadline = None;
                self.set_state(IceState::Connected);
            }
            IceState::New => {
                self.connect_deadline = Some(now + self.config.connect_timeout);
                self.set_state(IceState::Checking);
            }
            IceState::Checking | IceState::Connected | IceState::Failed | IceState::Closed => {}
        }
    }

    /// The index of the pair for `from`, inserting it (and evicting the least
    /// recently checked unselected pair when full).
    fn pair_index(&mut self, now: Instant, from: SocketAddr) -> usize {
        if let Some(index) = self.pairs.iter().position(|p| p.remote == from) {
            return index;
        }
        if self.pairs.len() >= self.config.max_pairs {
            let selected = self.selected;
            let victim = self
                .pairs
                .iter()
                .enumerate()
                .filter(|(_, p)| Some(p.remote) != selected)
                .min_by_key(|(_, p)| p.last_check)
                .map(|(i, _)| i);
            if let Some(victim) = victim {
                self.pairs.swap_remove(victim);
            }
        }
        self.pairs.push(CandidatePair {
            remote: from,
            last_check: now,
            checks: 0,
            nominated: false,
        });
        self.pairs.len() - 1
    }

    fn set_state(&mut self, state: IceState) {
        if self.state != state {
            self.state = state;
            self.events.push_back(IceEvent::StateChanged(state));
        }
    }

    fn reject(&mut self, reason: IceDrop, response_len: Option<usize>) -> StunOutcome {
        self.stats.dropped[reason.slot()] += 1;
        StunOutcome::Rejected {
            reason,
            response_len,
        }
    }

    /// When [`Self::handle_timeout`] must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            IceState::Checking => self.connect_deadline,
            IceState::Connected => self.consent_deadline,
            IceState::New | IceState::Failed | IceState::Closed => None,
        }
    }

    /// The current state.
    pub fn state(&self) -> IceState {
        self.state
    }

    /// The nominated remote address: where media and DTLS go while the state
    /// is `Connected`.
    pub fn selected_address(&self) -> Option<SocketAddr> {
        self.selected
    }

    /// Whether `addr` has sent a valid check (non-STUN datagrams from other
    /// addresses must be dropped, media.md §3.4).
    pub fn is_known_address(&self, addr: SocketAddr) -> bool {
        self.pairs.iter().any(|p| p.remote == addr)
    }

    /// The candidate pairs heard from, in no particular order.
    pub fn pairs(&self) -> &[CandidatePair] {
        &self.pairs
    }

    /// The local credentials to put in the SDP.
    pub fn local_credentials(&self) -> &IceCredentials {
        &self.current.local
    }

    /// The remote credentials, once set.
    pub fn remote_credentials(&self) -> Option<&IceCredentials> {
        self.current.remote.as_ref()
    }

    /// Counters of accepted and dropped datagrams.
    pub fn stats(&self) -> &IceStats {
        &self.stats
    }
}

impl fmt::Debug for IceLiteAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceLiteAgent")
            .field("state", &self.state)
            .field("local", &self.current.local)
            .field("selected", &self.selected)
            .field("pairs", &self.pairs.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Current,
    Previous,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::{StunWriter, TransactionId};

    const LOCAL_UFRAG: &str = "lOcA";
    const LOCAL_PWD: &str = "localpasswordlocalpass";
    const REMOTE_UFRAG: &str = "rEmO";
    const REMOTE_PWD: &str = "remotepasswordremotepa";

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn agent(now: Instant) -> IceLiteAgent {
        let local = IceCredentials::new(LOCAL_UFRAG, LOCAL_PWD).expect("valid");
        let mut agent = IceLiteAgent::new(IceConfig::default(), local).expect("agent");
        let remote = IceCredentials::new(REMOTE_UFRAG, REMOTE_PWD).expect("valid");
        agent.set_remote_credentials(now, remote);
        agent
    }

    /// A browser-like check: USERNAME, PRIORITY, ICE-CONTROLLING,
    /// optionally USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT.
    fn check(username: &str, pwd: &str, nominate: bool, seq: u8) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let txid = TransactionId([seq; 12]);
        let mut w =
            StunWriter::new(&mut buf, Class::Request, Method::BINDING, &txid).expect("room");
        w.add_username(username.as_bytes()).expect("room");
        w.add_priority(0x6e7f_1eff).expect("room");
        w.add_ice_controlling(0x1234_5678_9abc_def0).expect("room");
        if nominate {
            w.add_use_candidate().expect("room");
        }
        w.add_message_integrity(&StunKey::short_term(pwd.as_bytes()).expect("key"))
            .expect("room");
        w.add_fingerprint().expect("room");
        let len = w.finish();
        buf[..len].to_vec()
    }

    fn good_check(nominate: bool, seq: u8) -> Vec<u8> {
        check(
            &format!("{LOCAL_UFRAG}:{REMOTE_UFRAG}"),
            LOCAL_PWD,
            nominate,
            seq,
        )
    }

    fn events(agent: &mut IceLiteAgent) -> Vec<IceEvent> {
        std::iter::from_fn(|| agent.poll_event()).collect()
    }

    fn send(
        agent: &mut IceLiteAgent,
        now: Instant,
        from: SocketAddr,
        packet: &[u8],
    ) -> StunOutcome {
        let mut out = [0u8; 128];
        let outcome = agent.handle_stun(now, from, packet, &mut out);
        if let StunOutcome::Accepted { response_len } = outcome {
            // Every success response is one the peer would accept.
            let msg = stun::parse(&out[..response_len]).expect("response parses");
            assert_eq!(msg.class(), Class::Success);
            assert_eq!(msg.xor_mapped_address(), Some(from));
            let key = StunKey::short_term(agent.local_credentials().pwd().as_bytes()).expect("key");
            let previous_ok = agent
                .previous
                .as_ref()
                .is_some_and(|p| msg.verify_integrity(&p.key).is_ok());
            assert!(msg.verify_integrity(&key).is_ok() || previous_ok);
            msg.verify_fingerprint().expect("fingerprint");
        }
        outcome
    }

    #[test]
    fn every_drop_reason_has_its_own_counter() {
        let all = [
            IceDrop::Malformed(StunError::TooShort),
            IceDrop::NotBinding,
            IceDrop::UnexpectedResponse,
            IceDrop::NoFingerprint,
            IceDrop::BadFingerprint,
            IceDrop::NoUsername,
            IceDrop::NoIntegrity,
            IceDrop::UnknownUsername,
            IceDrop::BadIntegrity,
            IceDrop::UnknownRequiredAttribute,
            IceDrop::Closed,
            IceDrop::ResponseBufferTooSmall,
        ];
        let mut seen = [false; IceDrop::COUNT];
        for reason in all {
            assert!(!seen[reason.slot()], "{reason:?} shares a slot");
            seen[reason.slot()] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn generated_credentials_are_ice_chars_of_the_right_length() {
        let mut counter = 0u8;
        let a = IceCredentials::generate(|buf| {
            for b in buf.iter_mut() {
                *b = counter;
                counter = counter.wrapping_add(37);
            }
        });
        assert_eq!(a.ufrag().len(), LOCAL_UFRAG_LEN);
        assert_eq!(a.pwd().len(), LOCAL_PWD_LEN);
        assert!(IceCredentials::new(a.ufrag(), a.pwd()).is_ok());
        let b = IceCredentials::generate(|buf| buf.fill(0xFF));
        assert_eq!(b.ufrag(), "////");
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(a.pwd()));
    }

    #[test]
    fn remote_credentials_are_validated() {
        assert_eq!(
            IceCredentials::new("abc", REMOTE_PWD),
            Err(IceError::BadUfrag)
        );
        assert_eq!(
            IceCredentials::new("ab:c", REMOTE_PWD),
            Err(IceError::BadUfrag)
        );
        assert_eq!(IceCredentials::new("abcd", "short"), Err(IceError::BadPwd));
        assert!(IceCredentials::new("abcd", "0123456789+/0123456789").is_ok());
    }

    #[test]
    fn checks_then_nomination_connect() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        assert_eq!(agent.state(), IceState::Checking);
        assert_eq!(
            events(&mut agent),
            [IceEvent::StateChanged(IceState::Checking)]
        );
        assert_eq!(agent.poll_timeout(), Some(t0 + Duration::from_secs(7)));

        let peer = addr("192.0.2.10:50000");
        let t1 = t0 + Duration::from_millis(100);
        assert!(matches!(
            send(&mut agent, t1, peer, &good_check(false, 1)),
            StunOutcome::Accepted { .. }
        ));
        assert_eq!(agent.state(), IceState::Checking);
        assert_eq!(agent.selected_address(), None);
        assert!(agent.is_known_address(peer));
        assert!(events(&mut agent).is_empty());

        let t2 = t1 + Duration::from_millis(50);
        assert!(matches!(
            send(&mut agent, t2, peer, &good_check(true, 2)),
            StunOutcome::Accepted { .. }
        ));
        assert_eq!(agent.state(), IceState::Connected);
        assert_eq!(agent.selected_address(), Some(peer));
        assert_eq!(
            events(&mut agent),
            [
                IceEvent::SelectedAddress(peer),
                IceEvent::StateChanged(IceState::Connected)
            ]
        );
        assert_eq!(agent.poll_timeout(), Some(t2 + Duration::from_secs(30)));
        assert_eq!(agent.stats().accepted, 2);
        assert_eq!(agent.pairs().len(), 1);
        assert!(agent.pairs()[0].nominated);
    }

    #[test]
    fn nomination_on_the_first_check_connects_directly() {
        let t0 = Instant::now();
        let local = IceCredentials::new(LOCAL_UFRAG, LOCAL_PWD).expect("valid");
        let mut agent = IceLiteAgent::new(IceConfig::default(), local).expect("agent");
        // Checks may arrive before the remote SDP: the remote ufrag is not
        // known yet, the integrity check still authenticates the peer.
        let peer = addr("[2001:db8::7]:9");
        let outcome = send(&mut agent, t0, peer, &good_check(true, 1));
        assert!(matches!(outcome, StunOutcome::Accepted { .. }));
        assert_eq!(agent.state(), IceState::Connected);
        assert_eq!(
            events(&mut agent),
            [
                IceEvent::SelectedAddress(peer),
                IceEvent::StateChanged(IceState::Connected)
            ]
        );
    }

    #[test]
    fn wrong_password_is_dropped_counted_and_answered_401() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        events(&mut agent);
        let peer = addr("192.0.2.10:50000");
        let bad = check(
            &format!("{LOCAL_UFRAG}:{REMOTE_UFRAG}"),
            "wrongpasswordwrongpass",
            true,
            1,
        );
        let mut out = [0u8; 128];
        let outcome = agent.handle_stun(t0, peer, &bad, &mut out);
        let StunOutcome::Rejected {
            reason: IceDrop::BadIntegrity,
            response_len: Some(len),
        } = outcome
        else {
            panic!("expected a 401 rejection, got {outcome:?}");
        };
        let response = stun::parse(&out[..len]).expect("401 parses");
        assert_eq!(response.class(), Class::Error);
        assert_eq!(response.error_code().map(|(code, _)| code), Some(401));
        assert_eq!(response.transaction_id(), TransactionId([1; 12]));
        assert_eq!(agent.stats().dropped(IceDrop::BadIntegrity), 1);
        assert_eq!(agent.stats().accepted, 0);
        assert_eq!(agent.state(), IceState::Checking);
        assert_eq!(agent.selected_address(), None);
        assert!(!agent.is_known_address(peer));
        assert!(events(&mut agent).is_empty());
    }

    #[test]
    fn wrong_usernames_are_rejected() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        let peer = addr("192.0.2.10:50000");
        for username in ["XXXX:rEmO", "lOcA:XXXX", "lOcArEmO", "lOcA"] {
            let outcome = send(&mut agent, t0, peer, &check(username, LOCAL_PWD, true, 1));
            assert!(
                matches!(
                    outcome,
                    StunOutcome::Rejected {
                        reason: IceDrop::UnknownUsername,
                        response_len: Some(_)
                    }
                ),
                "{username}: {outcome:?}"
            );
        }
        assert_eq!(agent.stats().dropped(IceDrop::UnknownUsername), 4);
        assert_eq!(agent.state(), IceState::Checking);
    }

    #[test]
    fn unauthenticated_junk_is_dropped_silently() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        let peer = addr("192.0.2.10:50000");
        // No FINGERPRINT.
        let mut buf = [0u8; 128];
        let mut w = StunWriter::new(
            &mut buf,
            Class::Request,
            Method::BINDING,
            &TransactionId([3; 12]),
        )
        .expect("room");
        w.add_username(b"lOcA:rEmO").expect("room");
        let len = w.finish();
        let outcome = send(&mut agent, t0, peer, &buf[..len]);
        assert_eq!(
            outcome,
            StunOutcome::Rejected {
                reason: IceDrop::NoFingerprint,
                response_len: None
            }
        );
        // FINGERPRINT but no MESSAGE-INTEGRITY.
        let mut w = StunWriter::new(
            &mut buf,
            Class::Request,
            Method::BINDING,
            &TransactionId([3; 12]),
        )
        .expect("room");
        w.add_username(b"lOcA:rEmO").expect("room");
        w.add_fingerprint().expect("room");
        let len = w.finish();
        let outcome = send(&mut agent, t0, peer, &buf[..len]);
        assert_eq!(
            outcome,
            StunOutcome::Rejected {
                reason: IceDrop::NoIntegrity,
                response_len: None
            }
        );
        // Corrupted FINGERPRINT.
        let mut bad = good_check(true, 4);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let outcome = send(&mut agent, t0, peer, &bad);
        assert_eq!(
            outcome,
            StunOutcome::Rejected {
                reason: IceDrop::BadFingerprint,
                response_len: None
            }
        );
        // Not STUN at all.
        let outcome = send(&mut agent, t0, peer, &[0x01, 0x01, 0, 0]);
        assert!(matches!(
            outcome,
            StunOutcome::Rejected {
                reason: IceDrop::Malformed(StunError::TooShort),
                response_len: None
            }
        ));
        assert_eq!(agent.stats().dropped_total(), 4);
        assert_eq!(agent.state(), IceState::Checking);
    }

    #[test]
    fn responses_and_indications_are_not_checks() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        let peer = addr("192.0.2.10:50000");
        let mut buf = [0u8; 128];
        let key = StunKey::short_term(LOCAL_PWD.as_bytes()).expect("key");
        let len = stun::write_binding_success(&mut buf, &TransactionId([5; 12]), peer, &key)
            .expect("room");
        let outcome = send(&mut agent, t0, peer, &buf[..len]);
        assert_eq!(
            outcome,
            StunOutcome::Rejected {
                reason: IceDrop::UnexpectedResponse,
                response_len: None
            }
        );
        let mut w = StunWriter::new(
            &mut buf,
            Class::Indication,
            Method::BINDING,
            &TransactionId([6; 12]),
        )
        .expect("room");
        w.add_fingerprint().expect("room");
        let len = w.finish();
        assert_eq!(
            send(&mut agent, t0, peer, &buf[..len]),
            StunOutcome::Indication
        );
        assert_eq!(agent.stats().indications, 1);
        assert_eq!(agent.state(), IceState::Checking);
    }

    #[test]
    fn small_response_buffer_is_refused_without_state_change() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        let mut out = [0u8; 40];
        let outcome = agent.handle_stun(t0, addr("192.0.2.10:1"), &good_check(true, 1), &mut out);
        assert_eq!(
            outcome,
            StunOutcome::Rejected {
                reason: IceDrop::ResponseBufferTooSmall,
                response_len: None
            }
        );
        assert_eq!(agent.state(), IceState::Checking);
        assert_eq!(agent.selected_address(), None);
    }

    #[test]
    fn consent_keeps_the_pair_alive_and_expires_after_30s() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        let peer = addr("192.0.2.10:50000");
        send(&mut agent, t0, peer, &good_check(true, 0));
        assert_eq!(agent.state(), IceState::Connected);
        events(&mut agent);

        // Consent checks every 5 s for two minutes (no USE-CANDIDATE, as
        // browsers send them), with the owner running timers as asked.
        let mut now = t0;
        for seq in 1..=24u8 {
            now += Duration::from_secs(5);
            if let Some(deadline) = agent.poll_timeout() {
                if deadline <= now {
                    agent.handle_timeout(deadline);
                }
            }
            let outcome = send(&mut agent, now, peer, &good_check(false, seq));
            assert!(matches!(outcome, StunOutcome::Accepted { .. }));
            assert_eq!(agent.state(), IceState::Connected);
        }
        assert!(events(&mut agent).is_empty());

        // The peer goes silent: nothing happens before the 30 s are up.
        let last = now;
        assert_eq!(agent.poll_timeout(), Some(last + Duration::from_secs(30)));
        agent.handle_timeout(last + Duration::from_secs(29));
        assert_eq!(agent.state(), IceState::Connected);
        agent.handle_timeout(last + Duration::from_secs(30));
        assert_eq!(agent.state(), IceState::Failed);
        assert_eq!(
            events(&mut agent),
            [IceEvent::StateChanged(IceState::Failed)]
        );
        assert_eq!(agent.poll_timeout(), None);

        // Consent comes back (the network recovered): connected again.
        let later = last + Duration::from_secs(33);
        send(&mut agent, later, peer, &good_check(false, 99));
        assert_eq!(agent.state(), IceState::Connected);
        assert_eq!(
            events(&mut agent),
            [IceEvent::StateChanged(IceState::Connected)]
        );
    }

    #[test]
    fn no_nomination_fails_after_connect_timeout() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        events(&mut agent);
        let peer = addr("192.0.2.10:50000");
        send(
            &mut agent,
            t0 + Duration::from_secs(1),
            peer,
            &good_check(false, 1),
        );
        let deadline = agent.poll_timeout().expect("connect timer");
        assert_eq!(deadline, t0 + Duration::from_secs(7));
        agent.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(agent.state(), IceState::Checking);
        agent.handle_timeout(deadline);
        assert_eq!(agent.state(), IceState::Failed);
        assert_eq!(
            events(&mut agent),
            [IceEvent::StateChanged(IceState::Failed)]
        );
        // A late nomination still connects.
        send(
            &mut agent,
            deadline + Duration::from_secs(1),
            peer,
            &good_check(true, 2),
        );
        assert_eq!(agent.state(), IceState::Connected);
    }

    #[test]
    fn address_switch_after_nomination() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        let wifi = addr("192.0.2.10:50000");
        let cellular = addr("198.51.100.20:40000");
        send(&mut agent, t0, wifi, &good_check(true, 1));
        events(&mut agent);

        // The peer checks a second path, then nominates it.
        let t1 = t0 + Duration::from_secs(2);
        send(&mut agent, t1, cellular, &good_check(false, 2));
        assert_eq!(agent.selected_address(), Some(wifi));
        let t2 = t1 + Duration::from_secs(1);
        send(&mut agent, t2, cellular, &good_check(true, 3));
        assert_eq!(agent.selected_address(), Some(cellular));
        assert_eq!(events(&mut agent), [IceEvent::SelectedAddress(cellular)]);
        assert_eq!(agent.state(), IceState::Connected);
        assert_eq!(agent.pairs().len(), 2);

        // Checks on the old path no longer keep consent for the new one.
        let mut now = t2;
        for seq in 4..12u8 {
            now += Duration::from_secs(5);
            agent.handle_timeout(now);
            send(&mut agent, now, wifi, &good_check(false, seq));
        }
        assert_eq!(agent.state(), IceState::Failed);
        assert_eq!(agent.selected_address(), Some(cellular));
    }

    #[test]
    fn ice_restart_keeps_consent_until_new_credentials_are_used() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        let peer = addr("192.0.2.10:50000");
        send(&mut agent, t0, peer, &good_check(true, 1));
        events(&mut agent);

        let new_local = IceCredentials::new("nEwL", "newlocalpasswordnewloc").expect("valid");
        agent.restart(t0, new_local).expect("not closed");
        assert_eq!(agent.local_credentials().ufrag(), "nEwL");
        assert_eq!(agent.remote_credentials(), None);
        assert_eq!(agent.state(), IceState::Connected);

        // Until the peer has the new offer, its checks use the old credentials.
        let t1 = t0 + Duration::from_secs(3);
        assert!(matches!(
            send(&mut agent, t1, peer, &good_check(false, 2)),
            StunOutcome::Accepted { .. }
        ));
        assert_eq!(agent.poll_timeout(), Some(t1 + Duration::from_secs(30)));

        let new_remote = IceCredentials::new("nEwR", "newremotepasswordnewre").expect("valid");
        agent.set_remote_credentials(t1, new_remote);
        let t2 = t1 + Duration::from_secs(1);
        let fresh = check("nEwL:nEwR", "newlocalpasswordnewloc", true, 3);
        assert!(matches!(
            send(&mut agent, t2, peer, &fresh),
            StunOutcome::Accepted { .. }
        ));
        assert!(events(&mut agent).is_empty());

        // The restart is complete: the old credentials are now refused.
        let outcome = send(&mut agent, t2, peer, &good_check(false, 4));
        assert!(matches!(
            outcome,
            StunOutcome::Rejected {
                reason: IceDrop::UnknownUsername,
                response_len: Some(_)
            }
        ));
    }

    #[test]
    fn restart_after_failure_checks_again() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        agent.handle_timeout(t0 + Duration::from_secs(7));
        assert_eq!(agent.state(), IceState::Failed);
        let t1 = t0 + Duration::from_secs(8);
        agent
            .restart(
                t1,
                IceCredentials::new("nEwL", "newlocalpasswordnewloc").expect("valid"),
            )
            .expect("not closed");
        assert_eq!(agent.state(), IceState::Checking);
        assert_eq!(agent.poll_timeout(), Some(t1 + Duration::from_secs(7)));
    }

    #[test]
    fn closed_agent_drops_everything() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        let peer = addr("192.0.2.10:50000");
        send(&mut agent, t0, peer, &good_check(true, 1));
        events(&mut agent);
        agent.close();
        assert_eq!(
            events(&mut agent),
            [IceEvent::StateChanged(IceState::Closed)]
        );
        assert_eq!(agent.poll_timeout(), None);
        let outcome = send(&mut agent, t0, peer, &good_check(true, 2));
        assert_eq!(
            outcome,
            StunOutcome::Rejected {
                reason: IceDrop::Closed,
                response_len: None
            }
        );
        let restart = agent.restart(
            t0,
            IceCredentials::new("nEwL", "newlocalpasswordnewloc").expect("valid"),
        );
        assert_eq!(restart, Err(IceError::Closed));
    }

    #[test]
    fn pair_table_is_bounded_and_keeps_the_selected_pair() {
        let t0 = Instant::now();
        let mut agent = agent(t0);
        let selected = addr("192.0.2.1:1000");
        send(&mut agent, t0, selected, &good_check(true, 0));
        for i in 0..40u16 {
            let from = SocketAddr::new(addr("203.0.113.5:0").ip(), 2000 + i);
            send(
                &mut agent,
                t0 + Duration::from_millis(u64::from(i) + 1),
                from,
                &good_check(false, 1),
            );
        }
        assert_eq!(agent.pairs().len(), IceConfig::default().max_pairs);
        assert!(agent.is_known_address(selected));
        assert_eq!(agent.selected_address(), Some(selected));
    }
}
