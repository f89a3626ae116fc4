//! SRTP and SRTCP (RFC 3711, RFC 7714) over libsrtp 2 built against OpenSSL.
//!
//! An [`SrtpSession`] is one direction of one DTLS-SRTP association: inbound
//! sessions unprotect, outbound sessions protect, both in place in the caller's
//! buffer. Keys come from the DTLS exporter: [`split_keying_material`] cuts the
//! RFC 5764 §4.2 material into the client and server master key + salt.
//! Packet-path failures are small `Copy` reasons ([`SrtpDrop`]); setup failures
//! are [`SrtpError`].
//!
//! In-place contract: a buffer handed to `protect_*` must have room for the
//! packet plus [`SRTP_MAX_TRAILER`] (RTP) or [`SRTCP_MAX_TRAILER`] (RTCP) bytes,
//! the most libsrtp documents it may write, and every buffer must be 4-byte
//! aligned (libsrtp reads the header through `uint32_t` pointers).
//!
//! This module never does IO, never reads a clock and never allocates per
//! packet (libsrtp allocates once per new SSRC). It is the only module of the
//! crate with `unsafe` code; every block states why it is sound.
#![allow(unsafe_code)]

use std::fmt;
use std::os::raw::{c_int, c_ulong};
use std::ptr::{self, NonNull};
use std::sync::OnceLock;

use srtp2_sys as sys;

/// Most bytes `srtp_protect` may append (libsrtp's `SRTP_MAX_TRAILER_LEN`:
/// the longest tag plus the longest MKI).
pub const SRTP_MAX_TRAILER: usize = sys::SRTP_MAX_TRAILER_LEN as usize;

/// Most bytes `srtp_protect_rtcp` may append: [`SRTP_MAX_TRAILER`] plus the
/// 4-byte SRTCP index.
pub const SRTCP_MAX_TRAILER: usize = SRTP_MAX_TRAILER + 4;

/// Longest master key + master salt of any profile (AES-256 key, GCM salt).
const MAX_MASTER_LEN: usize = 32 + 12;

/// The SRTP protection profiles negotiated by DTLS-SRTP (RFC 5764 §4.1.2,
/// RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80` (0x0001).
    Aes128CmSha1_80,
    /// `SRTP_AES128_CM_HMAC_SHA1_32` (0x0002); SRTCP keeps an 80-bit tag.
    Aes128CmSha1_32,
    /// `SRTP_AEAD_AES_128_GCM` (0x0007).
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM` (0x0008).
    AeadAes256Gcm,
}

impl SrtpProfile {
    /// Every supported profile, in the preference order of media.md §4.2.
    pub const ALL: [Self; 4] = [
        Self::AeadAes256Gcm,
        Self::AeadAes128Gcm,
        Self::Aes128CmSha1_80,
        Self::Aes128CmSha1_32,
    ];

    /// The profile for a DTLS `use_srtp` id.
    pub fn from_dtls_id(id: u16) -> Option<Self> {
        match id {
            0x0001 => Some(Self::Aes128CmSha1_80),
            0x0002 => Some(Self::Aes128CmSha1_32),
            0x0007 => Some(Self::AeadAes128Gcm),
            0x0008 => Some(Self::AeadAes256Gcm),
            _ => None,
        }
    }

    /// The DTLS `use_srtp` id.
    pub fn dtls_id(self) -> u16 {
        match self {
            Self::Aes128CmSha1_80 => 0x0001,
            Self::Aes128CmSha1_32 => 0x0002,
            Self::AeadAes128Gcm => 0x0007,
            Self::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile name OpenSSL uses (`SSL_CTX_set_tlsext_use_srtp`).
    pub fn openssl_name(self) -> &'static str {
        match self {
            Self::Aes128CmSha1_80 => "SRTP_AES128_CM_SHA1_80",
            Self::Aes128CmSha1_32 => "SRTP_AES128_CM_SHA1_32",
            Self::AeadAes128Gcm => "SRTP_AEAD_AES_128_GCM",
            Self::AeadAes256Gcm => "SRTP_AEAD_AES_256_GCM",
        }
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128CmSha1_80 | Self::Aes128CmSha1_32 | Self::AeadAes128Gcm => 16,
            Self::AeadAes256Gcm => 32,
        }
    }

    /// Master salt length in bytes.
    pub fn salt_len(self) -> usize {
        match self {
            Self::Aes128CmSha1_80 | Self::Aes128CmSha1_32 => 14,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
        }
    }

    /// Bytes to export from DTLS (label `EXTRACTOR-dtls_srtp`, no context):
    /// two keys and two salts (RFC 5764 §4.2).
    pub fn keying_material_len(self) -> usize {
        2 * (self.key_len() + self.salt_len())
    }

    /// Bytes SRTP adds to an RTP packet (the authentication tag).
    pub fn rtp_overhead(self) -> usize {
        match self {
            Self::Aes128CmSha1_80 => 10,
            Self::Aes128CmSha1_32 => 4,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
        }
    }

    /// Bytes SRTCP adds to an RTCP packet (index plus tag).
    pub fn rtcp_overhead(self) -> usize {
        match self {
            Self::Aes128CmSha1_80 | Self::Aes128CmSha1_32 => 4 + 10,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 4 + 16,
        }
    }

    fn policy_setters(self) -> (PolicySetter, PolicySetter) {
        match self {
            Self::Aes128CmSha1_80 => (
                sys::srtp_crypto_policy_set_rtp_default,
                sys::srtp_crypto_policy_set_rtcp_default,
            ),
            Self::Aes128CmSha1_32 => (
                sys::srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32,
                sys::srtp_crypto_policy_set_rtcp_default,
            ),
            Self::AeadAes128Gcm => (
                sys::srtp_crypto_policy_set_aes_gcm_128_16_auth,
                sys::srtp_crypto_policy_set_aes_gcm_128_16_auth,
            ),
            Self::AeadAes256Gcm => (
                sys::srtp_crypto_policy_set_aes_gcm_256_16_auth,
                sys::srtp_crypto_policy_set_aes_gcm_256_16_auth,
            ),
        }
    }
}

type PolicySetter = unsafe extern "C" fn(*mut sys::srtp_crypto_policy_t);

/// Setup errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Key, salt or keying material of the wrong length for the profile.
    #[error("keying material for {profile:?} must be {expected} bytes, got {got}")]
    KeyLength {
        /// The profile.
        profile: SrtpProfile,
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The replay window is outside 64..=32767 packets.
    #[error("replay window must be 64..=32767 packets")]
    ReplayWindow,
    /// `srtp_init` failed (libsrtp status code).
    #[error("libsrtp initialisation failed with status {0}")]
    Init(u32),
    /// `srtp_create` failed (libsrtp status code).
    #[error("libsrtp session creation failed with status {0}")]
    Create(u32),
}

/// Why a packet was not protected or unprotected. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpDrop {
    /// Not a valid RTP/RTCP header (version, CSRC count, extension length).
    #[error("malformed RTP/RTCP header")]
    Malformed,
    /// The authentication tag does not verify (tampered, or wrong keys).
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// This packet index was already received (or sent, without repeat).
    #[error("replayed packet")]
    Replayed,
    /// The packet index is older than the replay window.
    #[error("packet older than the replay window")]
    TooOld,
    /// `protect_*`: the buffer has no room for the trailer.
    #[error("no room for the SRTP trailer")]
    NoTrailerRoom,
    /// `protect_*`: the given length exceeds the buffer.
    #[error("length exceeds the buffer")]
    BadLength,
    /// The buffer is not 4-byte aligned.
    #[error("buffer not 4-byte aligned")]
    Misaligned,
    /// Protect on an inbound session, or unprotect on an outbound one.
    #[error("wrong direction for this session")]
    WrongDirection,
    /// Another libsrtp failure (status code).
    #[error("libsrtp failure {0}")]
    Library(u32),
}

/// A master key and salt for one direction.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    profile: SrtpProfile,
    /// Key followed by salt, the layout libsrtp reads.
    master: [u8; MAX_MASTER_LEN],
}

impl SrtpKeys {
    /// Keys from a master key and master salt of the profile's lengths.
    pub fn new(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        let expected = profile.key_len() + profile.salt_len();
        if key.len() != profile.key_len() || salt.len() != profile.salt_len() {
            return Err(SrtpError::KeyLength {
                profile,
                expected,
                got: key.len() + salt.len(),
            });
        }
        let mut master = [0u8; MAX_MASTER_LEN];
        master[..key.len()].copy_from_slice(key);
        master[key.len()..expected].copy_from_slice(salt);
        Ok(Self { profile, master })
    }

    /// The profile these keys are for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    fn master(&self) -> &[u8] {
        &self.master[..self.profile.key_len() + self.profile.salt_len()]
    }
}

impl fmt::Debug for SrtpKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Which end of the DTLS handshake this endpoint was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsSide {
    /// The DTLS client (sent the ClientHello).
    Client,
    /// The DTLS server.
    Server,
}

/// The two directions' keys cut from the DTLS-SRTP keying material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrtpKeyMaterial {
    /// Keys the DTLS client protects with.
    pub client: SrtpKeys,
    /// Keys the DTLS server protects with.
    pub server: SrtpKeys,
}

impl SrtpKeyMaterial {
    /// The keys this endpoint protects (sends) with.
    pub fn outbound(&self, side: DtlsSide) -> &SrtpKeys {
        match side {
            DtlsSide::Client => &self.client,
            DtlsSide::Server => &self.server,
        }
    }

    /// The keys this endpoint unprotects (receives) with.
    pub fn inbound(&self, side: DtlsSide) -> &SrtpKeys {
        match side {
            DtlsSide::Client => &self.server,
            DtlsSide::Server => &self.client,
        }
    }
}

/// Cuts exported keying material (RFC 5764 §4.2: client key, server key,
/// client salt, server salt) into per-direction keys.
pub fn split_keying_material(
    profile: SrtpProfile,
    material: &[u8],
) -> Result<SrtpKeyMaterial, SrtpError> {
    let expected = profile.keying_material_len();
    if material.len() != expected {
        return Err(SrtpError::KeyLength {
            profile,
            expected,
            got: material.len(),
        });
    }
    let (k, s) = (profile.key_len(), profile.salt_len());
    let (client_key, rest) = material.split_at(k);
    let (server_key, rest) = rest.split_at(k);
    let (client_salt, server_salt) = rest.split_at(s);
    Ok(SrtpKeyMaterial {
        client: SrtpKeys::new(profile, client_key, client_salt)?,
        server: SrtpKeys::new(profile, server_key, server_salt)?,
    })
}

/// Whether a session protects or unprotects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpDirection {
    /// Unprotects packets from the peer.
    Inbound,
    /// Protects packets to the peer.
    Outbound,
}

/// Session options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpConfig {
    /// Replay window in packets (RFC 3711 §3.3.2); media.md §4.2 uses 128.
    pub replay_window: u16,
    /// Outbound: allow protecting a packet index again (retransmissions
    /// answering a NACK without RTX resend the same sequence number).
    pub allow_repeat_tx: bool,
}

impl Default for SrtpConfig {
    fn default() -> Self {
        Self {
            replay_window: 128,
            allow_repeat_tx: true,
        }
    }
}

/// One direction of SRTP/SRTCP for every SSRC of a peer.
pub struct SrtpSession {
    ctx: NonNull<sys::srtp_ctx_t>,
    direction: SrtpDirection,
    profile: SrtpProfile,
}

// SAFETY: the libsrtp context is owned by this value alone and only touched
// through `&mut self`; it holds no thread-local or thread-affine state. The
// global crypto kernel it refers to is initialised once (`init`) before any
// session exists and only read afterwards. So moving a session to another
// thread is sound; it is not `Sync`.
unsafe impl Send for SrtpSession {}

impl SrtpSession {
    /// A session for `direction` with the given keys.
    pub fn new(
        keys: &SrtpKeys,
        direction: SrtpDirection,
        config: SrtpConfig,
    ) -> Result<Self, SrtpError> {
        init()?;
        if !(64..0x8000).contains(&config.replay_window) {
            return Err(SrtpError::ReplayWindow);
        }
        let (rtp_setter, rtcp_setter) = keys.profile.policy_setters();
        let mut master = [0u8; MAX_MASTER_LEN];
        master[..keys.master().len()].copy_from_slice(keys.master());
        // SAFETY: `srtp_policy_t` is a C struct of integers, enums and raw
        // pointers; all-zero is a valid value of each (null pointers, zero
        // lengths), the state libsrtp's own examples start from.
        let mut policy: sys::srtp_policy_t = unsafe { std::mem::zeroed() };
        // SAFETY: each setter only writes the crypto policy struct it is given,
        // which is a valid, exclusively borrowed field of `policy`.
        unsafe {
            rtp_setter(&mut policy.rtp);
            rtcp_setter(&mut policy.rtcp);
        }
        policy.ssrc.type_ = match direction {
            SrtpDirection::Inbound => sys::srtp_ssrc_type_t_ssrc_any_inbound,
            SrtpDirection::Outbound => sys::srtp_ssrc_type_t_ssrc_any_outbound,
        };
        policy.key = master.as_mut_ptr();
        policy.window_size = c_ulong::from(config.replay_window);
        policy.allow_repeat_tx = c_int::from(config.allow_repeat_tx);
        policy.next = ptr::null_mut();
        let mut ctx: sys::srtp_t = ptr::null_mut();
        // SAFETY: `policy` is fully initialised; `policy.key` points at
        // `master`, which holds key + salt of the lengths the crypto policies
        // set above expect and outlives the call (libsrtp copies the key into
        // the session); `policy.next` is null so no further policies are read;
        // `ctx` is a valid out-pointer.
        let status = unsafe { sys::srtp_create(&mut ctx, &policy) };
        master.fill(0);
        if status != sys::srtp_err_status_t_srtp_err_status_ok {
            return Err(SrtpError::Create(status));
        }
        let ctx = NonNull::new(ctx).ok_or(SrtpError::Create(status))?;
        Ok(Self {
            ctx,
            direction,
            profile: keys.profile,
        })
    }

    /// An inbound session with [`SrtpConfig::default`].
    pub fn inbound(keys: &SrtpKeys) -> Result<Self, SrtpError> {
        Self::new(keys, SrtpDirection::Inbound, SrtpConfig::default())
    }

    /// An outbound session with [`SrtpConfig::default`].
    pub fn outbound(keys: &SrtpKeys) -> Result<Self, SrtpError> {
        Self::new(keys, SrtpDirection::Outbound, SrtpConfig::default())
    }

    /// Protects the RTP packet in `buf[..len]` in place; returns the SRTP
    /// length. `buf` must extend at least [`SRTP_MAX_TRAILER`] bytes past
    /// `len`.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpDrop> {
        self.check_protect(buf, len, SRTP_MAX_TRAILER)?;
        validate_rtp(&buf[..len])?;
        // `call`'s contract: libsrtp's `srtp_protect` writes at most
        // `SRTP_MAX_TRAILER_LEN` bytes past `len`, and `check_protect` made
        // sure the buffer extends that far.
        self.call(buf, len, sys::srtp_protect)
    }

    /// Protects the RTCP packet in `buf[..len]` in place; returns the SRTCP
    /// length. `buf` must extend at least [`SRTCP_MAX_TRAILER`] bytes past
    /// `len`.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpDrop> {
        self.check_protect(buf, len, SRTCP_MAX_TRAILER)?;
        validate_rtcp(&buf[..len])?;
        // `call`'s contract: `srtp_protect_rtcp` writes at most
        // `SRTP_MAX_TRAILER_LEN + 4` bytes past `len`, which `check_protect`
        // made sure the buffer holds.
        self.call(buf, len, sys::srtp_protect_rtcp)
    }

    /// Unprotects the SRTP packet filling `buf` in place; returns the RTP
    /// length (the plaintext is `buf[..len]`).
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpDrop> {
        self.check_unprotect(buf)?;
        validate_rtp(buf)?;
        let len = buf.len();
        // `call`'s contract: unprotecting only shortens the packet, so
        // libsrtp touches no byte past `len`.
        self.call(buf, len, sys::srtp_unprotect)
    }

    /// Unprotects the SRTCP packet filling `buf` in place; returns the RTCP
    /// length (the plaintext is `buf[..len]`).
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpDrop> {
        self.check_unprotect(buf)?;
        validate_rtcp(buf)?;
        let len = buf.len();
        // `call`'s contract: unprotecting only shortens the packet, so
        // libsrtp touches no byte past `len`.
        self.call(buf, len, sys::srtp_unprotect_rtcp)
    }

    fn check_protect(&self, buf: &[u8], len: usize, trailer: usize) -> Result<(), SrtpDrop> {
        if self.direction != SrtpDirection::Outbound {
            return Err(SrtpDrop::WrongDirection);
        }
        check_alignment(buf)?;
        if len > buf.len() {
            return Err(SrtpDrop::BadLength);
        }
        if buf.len() - len < trailer {
            return Err(SrtpDrop::NoTrailerRoom);
        }
        Ok(())
    }

    fn check_unprotect(&self, buf: &[u8]) -> Result<(), SrtpDrop> {
        if self.direction != SrtpDirection::Inbound {
            return Err(SrtpDrop::WrongDirection);
        }
        check_alignment(buf)
    }

    /// Runs one libsrtp packet function on `buf[..len]`.
    ///
    /// Callers guarantee: `buf` is 4-byte aligned and `len <= buf.len()`, and
    /// `buf` has the room past `len` that `f` may write.
    fn call(
        &mut self,
        buf: &mut [u8],
        len: usize,
        f: unsafe extern "C" fn(sys::srtp_t, *mut std::os::raw::c_void, *mut c_int) -> u32,
    ) -> Result<usize, SrtpDrop> {
        let mut c_len = c_int::try_from(len).map_err(|_| SrtpDrop::BadLength)?;
        // SAFETY: `self.ctx` is a live session created by `srtp_create` and
        // freed only in `Drop`; `&mut self` gives exclusive use of it. `buf` is
        // a valid, exclusively borrowed, 4-byte aligned region holding `len`
        // packet bytes plus the room the caller checked for `f`; `c_len` is a
        // valid in/out length.
        let status = unsafe { f(self.ctx.as_ptr(), buf.as_mut_ptr().cast(), &mut c_len) };
        match status {
            sys::srtp_err_status_t_srtp_err_status_ok => {
                let out = usize::try_from(c_len).map_err(|_| SrtpDrop::Library(status))?;
                if out > buf.len() {
                    return Err(SrtpDrop::Library(status));
                }
                Ok(out)
            }
            sys::srtp_err_status_t_srtp_err_status_auth_fail => Err(SrtpDrop::AuthFailed),
            sys::srtp_err_status_t_srtp_err_status_replay_fail => Err(SrtpDrop::Replayed),
            sys::srtp_err_status_t_srtp_err_status_replay_old => Err(SrtpDrop::TooOld),
            sys::srtp_err_status_t_srtp_err_status_bad_param
            | sys::srtp_err_status_t_srtp_err_status_parse_err => Err(SrtpDrop::Malformed),
            other => Err(SrtpDrop::Library(other)),
        }
    }

    /// The session's profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The session's direction.
    pub fn direction(&self) -> SrtpDirection {
        self.direction
    }
}

impl Drop for SrtpSession {
    fn drop(&mut self) {
        // SAFETY: `self.ctx` came from `srtp_create` and is freed exactly once,
        // here; nothing uses it afterwards.
        unsafe {
            sys::srtp_dealloc(self.ctx.as_ptr());
        }
    }
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession")
            .field("direction", &self.direction)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// Initialises libsrtp once per process.
fn init() -> Result<(), SrtpError> {
    static STATUS: OnceLock<u32> = OnceLock::new();
    // SAFETY: `srtp_init` takes no arguments and is called exactly once, before
    // any session is created (every constructor goes through here).
    let status = *STATUS.get_or_init(|| unsafe { sys::srtp_init() });
    if status == sys::srtp_err_status_t_srtp_err_status_ok {
        Ok(())
    } else {
        Err(SrtpError::Init(status))
    }
}

fn check_alignment(buf: &[u8]) -> Result<(), SrtpDrop> {
    if buf.as_ptr().align_offset(4) == 0 {
        Ok(())
    } else {
        Err(SrtpDrop::Misaligned)
    }
}

/// Version 2, fixed header, CSRCs and header extension inside the packet.
fn validate_rtp(packet: &[u8]) -> Result<(), SrtpDrop> {
    let [b0, ..] = packet else {
        return Err(SrtpDrop::Malformed);
    };
    if packet.len() < 12 || b0 >> 6 != 2 {
        return Err(SrtpDrop::Malformed);
    }
    let mut header_len = 12 + 4 * usize::from(b0 & 0x0F);
    if b0 & 0x10 != 0 {
        let ext = packet
            .get(header_len..header_len + 4)
            .ok_or(SrtpDrop::Malformed)?;
        header_len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if header_len > packet.len() {
        return Err(SrtpDrop::Malformed);
    }
    Ok(())
}

/// Version 2 and at least the common header plus sender SSRC.
fn validate_rtcp(packet: &[u8]) -> Result<(), SrtpDrop> {
    match packet.first() {
        Some(b0) if packet.len() >= 8 && b0 >> 6 == 2 => Ok(()),
        _ => Err(SrtpDrop::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4-byte (in fact 16-byte) aligned packet buffer.
    #[repr(C, align(16))]
    struct Slot([u8; 2048]);

    fn slot() -> Box<Slot> {
        Box::new(Slot([0; 2048]))
    }

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|pair| {
                // Test input: pairs of ASCII hex digits.
                u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex")
            })
            .collect()
    }

    /// An RTP packet: version 2, PT 96, `seq`, timestamp, `ssrc`, payload.
    fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// An RTCP receiver report with one report block.
    fn rtcp(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x81, 201, 0, 7];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0x11; 24]);
        p
    }

    /// A test-only SRTP transform written from RFC 3711 and RFC 7714 with
    /// OpenSSL primitives, itself checked against the RFC vectors, used to
    /// check libsrtp's output byte for byte.
    mod reference {
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::sign::Signer;
        use openssl::symm::{Cipher, Crypter, Mode, encrypt_aead};

        /// AES in counter mode from `iv`: the SRTP AES-CM keystream
        /// (RFC 3711 §4.1.1), written over `out`.
        pub(super) fn aes_cm_keystream(key: &[u8], iv: &[u8; 16], out: &mut [u8]) {
            let cipher = match key.len() {
                16 => Cipher::aes_128_ctr(),
                _ => Cipher::aes_256_ctr(),
            };
            let zeros = vec![0u8; out.len()];
            let mut buf = vec![0u8; out.len() + 32];
            let mut c = Crypter::new(cipher, Mode::Encrypt, key, Some(iv)).expect("AES-CTR");
            let n = c.update(&zeros, &mut buf).expect("AES-CTR");
            assert_eq!(n, out.len());
            out.copy_from_slice(&buf[..n]);
        }

        /// The RFC 3711 §4.3 KDF with key_derivation_rate 0 and index 0. A
        /// 12-byte (AEAD) master salt is zero-padded to 112 bits.
        pub(super) fn kdf(master_key: &[u8], master_salt: &[u8], label: u8, out: &mut [u8]) {
            let mut x = [0u8; 16];
            x[..master_salt.len()].copy_from_slice(master_salt);
            x[7] ^= label;
            aes_cm_keystream(master_key, &x, out);
        }

        /// Session keys: (encryption key, authentication key, salt).
        pub(super) fn session_keys(
            master_key: &[u8],
            master_salt: &[u8],
        ) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
            let mut k_e = vec![0u8; master_key.len()];
            let mut k_a = vec![0u8; 20];
            let mut k_s = vec![0u8; master_salt.len()];
            kdf(master_key, master_salt, 0x00, &mut k_e);
            kdf(master_key, master_salt, 0x01, &mut k_a);
            kdf(master_key, master_salt, 0x02, &mut k_s);
            (k_e, k_a, k_s)
        }

        fn header_len(packet: &[u8]) -> usize {
            12 + 4 * usize::from(packet[0] & 0x0F)
        }

        /// AES_CM_128_HMAC_SHA1_80 for one RTP packet (RFC 3711 §4.1.1, §4.2).
        pub(super) fn protect_cm_sha1_80(
            k_e: &[u8],
            k_a: &[u8],
            k_s: &[u8],
            roc: u32,
            packet: &[u8],
        ) -> Vec<u8> {
            let hl = header_len(packet);
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(k_s);
            for (i, b) in packet[8..12].iter().enumerate() {
                iv[4 + i] ^= b;
            }
            let index =
                (u64::from(roc) << 16) | u64::from(u16::from_be_bytes([packet[2], packet[3]]));
            for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
                iv[8 + i] ^= b;
            }
            let mut out = packet.to_vec();
            let mut ks = vec![0u8; packet.len() - hl];
            aes_cm_keystream(k_e, &iv, &mut ks);
            for (o, k) in out[hl..].iter_mut().zip(ks) {
                *o ^= k;
            }
            let key = PKey::hmac(k_a).expect("HMAC key");
            let mut signer = Signer::new(MessageDigest::sha1(), &key).expect("HMAC");
            signer.update(&out).expect("HMAC");
            signer.update(&roc.to_be_bytes()).expect("HMAC");
            let tag = signer.sign_to_vec().expect("HMAC");
            out.extend_from_slice(&tag[..10]);
            out
        }

        /// AEAD_AES_128/256_GCM for one RTP packet (RFC 7714 §8).
        pub(super) fn protect_gcm(k_e: &[u8], k_s: &[u8], roc: u32, packet: &[u8]) -> Vec<u8> {
            let hl = header_len(packet);
            let mut iv = [0u8; 12];
            iv[2..6].copy_from_slice(&packet[8..12]);
            iv[6..10].copy_from_slice(&roc.to_be_bytes());
            iv[10..12].copy_from_slice(&packet[2..4]);
            for (v, s) in iv.iter_mut().zip(k_s) {
                *v ^= s;
            }
            let cipher = match k_e.len() {
                16 => Cipher::aes_128_gcm(),
                _ => Cipher::aes_256_gcm(),
            };
            let mut tag = [0u8; 16];
            let ct = encrypt_aead(
                cipher,
                k_e,
                Some(&iv),
                &packet[..hl],
                &packet[hl..],
                &mut tag,
            )
            .expect("AES-GCM");
            let mut out = packet[..hl].to_vec();
            out.extend_from_slice(&ct);
            out.extend_from_slice(&tag);
            out
        }
    }

    #[test]
    fn reference_kdf_matches_rfc3711_b3() {
        // RFC 3711 Appendix B.3 (key derivation test vectors).
        let master_key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        let master_salt = hex("0EC675AD498AFEEBB6960B3AABE6");
        let (k_e, k_a, k_s) = reference::session_keys(&master_key, &master_salt);
        assert_eq!(k_e, hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(k_s, hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(k_a, hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
    }

    #[test]
    fn reference_keystream_matches_rfc3711_b2() {
        // RFC 3711 Appendix B.2 (AES-CM test vectors): session key, and the
        // IV formed from salt F0..FD, SSRC 0, index 0.
        let key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
        let mut ks = [0u8; 48];
        reference::aes_cm_keystream(&key, &iv, &mut ks);
        assert_eq!(ks[..16], hex("E03EAD0935C95E80E166B16DD92B4EB4")[..]);
        assert_eq!(ks[16..32], hex("D23513162B02D0F72A43A2FE4A5F97AB")[..]);
        assert_eq!(ks[32..], hex("41E95B3BB0A2E8DD477901E4FCA894C0")[..]);
    }

    #[test]
    fn reference_gcm_matches_rfc7714_16() {
        // RFC 7714 §16.1.1 (AEAD_AES_128_GCM, RTP packet encryption): session
        // key and salt given directly.
        let key = hex("000102030405060708090a0b0c0d0e0f");
        let salt = hex("517569642070726f2071756f");
        let plain = hex(
            "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
             69736120 696e2070 61727465 73207472 6573",
        );
        let want = hex(
            "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5
             0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439
             0cce",
        );
        assert_eq!(reference::protect_gcm(&key, &salt, 0, &plain), want);
    }

    /// libsrtp must produce what the RFC-checked reference produces from the
    /// same master key: key derivation, cipher, IV and tag all agree.
    fn libsrtp_matches_reference(profile: SrtpProfile) {
        // RFC 3711 B.3's master key (doubled for AES-256) and salt (cut to 96
        // bits for the AEAD profiles).
        let b3_key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        let master_key: Vec<u8> = b3_key
            .iter()
            .cycle()
            .take(profile.key_len())
            .copied()
            .collect();
        let master_salt = &hex("0EC675AD498AFEEBB6960B3AABE6")[..profile.salt_len()];
        let keys = SrtpKeys::new(profile, &master_key, master_salt).expect("lengths");
        let (k_e, k_a, k_s) = reference::session_keys(&master_key, master_salt);
        let mut tx = SrtpSession::outbound(&keys).expect("session");
        let mut rx = SrtpSession::inbound(&keys).expect("session");
        for seq in [0x1234u16, 0x1235, 0xFFFF] {
            let plain = rtp(seq, 0xCAFE_BABE, &[0xAB; 40]);
            let want = match profile {
                SrtpProfile::Aes128CmSha1_80 | SrtpProfile::Aes128CmSha1_32 => {
                    let mut p = reference::protect_cm_sha1_80(&k_e, &k_a, &k_s, 0, &plain);
                    // The 32-bit tag is the 80-bit one cut short (RFC 3711 §4.2).
                    p.truncate(plain.len() + profile.rtp_overhead());
                    p
                }
                SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => {
                    reference::protect_gcm(&k_e, &k_s, 0, &plain)
                }
            };
            let mut buf = slot();
            buf.0[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect_rtp(&mut buf.0, plain.len()).expect("protect");
            assert_eq!(&buf.0[..n], &want[..], "{profile:?} seq {seq:#x}");
            let n = rx.unprotect_rtp(&mut buf.0[..n]).expect("unprotect");
            assert_eq!(&buf.0[..n], &plain[..]);
        }
    }

    #[test]
    fn libsrtp_aes_cm_sha1_80_matches_reference() {
        libsrtp_matches_reference(SrtpProfile::Aes128CmSha1_80);
    }

    #[test]
    fn libsrtp_aes_cm_sha1_32_matches_reference() {
        libsrtp_matches_reference(SrtpProfile::Aes128CmSha1_32);
    }

    #[test]
    fn libsrtp_aead_aes_128_gcm_matches_reference() {
        libsrtp_matches_reference(SrtpProfile::AeadAes128Gcm);
    }

    #[test]
    fn libsrtp_aead_aes_256_gcm_matches_reference() {
        libsrtp_matches_reference(SrtpProfile::AeadAes256Gcm);
    }

    fn pair(profile: SrtpProfile, config: SrtpConfig) -> (SrtpSession, SrtpSession) {
        let material: Vec<u8> = (0..profile.keying_material_len())
            .map(|i| (i * 7 + 3) as u8)
            .collect();
        let keys = split_keying_material(profile, &material).expect("length");
        let tx = SrtpSession::new(
            keys.outbound(DtlsSide::Client),
            SrtpDirection::Outbound,
            config,
        )
        .expect("session");
        let rx = SrtpSession::new(
            keys.inbound(DtlsSide::Server),
            SrtpDirection::Inbound,
            config,
        )
        .expect("session");
        (tx, rx)
    }

    #[test]
    fn round_trips_for_every_profile() {
        for profile in SrtpProfile::ALL {
            let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
            for seq in 65_000u16..=65_535 {
                let plain = rtp(seq, 0x0102_0304, &[seq as u8; 100]);
                let mut buf = slot();
                buf.0[..plain.len()].copy_from_slice(&plain);
                let n = tx.protect_rtp(&mut buf.0, plain.len()).expect("protect");
                assert_eq!(n, plain.len() + profile.rtp_overhead(), "{profile:?}");
                assert_ne!(
                    &buf.0[12..plain.len()],
                    &plain[12..],
                    "payload is encrypted"
                );
                let m = rx.unprotect_rtp(&mut buf.0[..n]).expect("unprotect");
                assert_eq!(&buf.0[..m], &plain[..]);
            }
            // Sequence wrap: the rollover counter advances on both sides.
            let plain = rtp(3, 0x0102_0304, b"after wrap");
            let mut buf = slot();
            buf.0[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect_rtp(&mut buf.0, plain.len()).expect("protect");
            let m = rx
                .unprotect_rtp(&mut buf.0[..n])
                .expect("unprotect after wrap");
            assert_eq!(&buf.0[..m], &plain[..]);

            for _ in 0..3 {
                let plain = rtcp(0x0102_0304);
                let mut buf = slot();
                buf.0[..plain.len()].copy_from_slice(&plain);
                let n = tx
                    .protect_rtcp(&mut buf.0, plain.len())
                    .expect("protect rtcp");
                assert_eq!(n, plain.len() + profile.rtcp_overhead(), "{profile:?}");
                let m = rx.unprotect_rtcp(&mut buf.0[..n]).expect("unprotect rtcp");
                assert_eq!(&buf.0[..m], &plain[..]);
            }
        }
    }

    #[test]
    fn tampering_is_detected() {
        for profile in SrtpProfile::ALL {
            let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
            let plain = rtp(10, 0xAABB_CCDD, &[0x55; 64]);
            let mut buf = slot();
            buf.0[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect_rtp(&mut buf.0, plain.len()).expect("protect");
            let protected = buf.0[..n].to_vec();
            // A flipped bit in the header, the payload or the tag.
            for at in [1, 20, n - 1] {
                let mut bad = slot();
                bad.0[..n].copy_from_slice(&protected);
                bad.0[at] ^= 0x01;
                assert_eq!(
                    rx.unprotect_rtp(&mut bad.0[..n]),
                    Err(SrtpDrop::AuthFailed),
                    "{profile:?} at {at}"
                );
            }
            // Keys of the other direction do not verify either.
            let material = vec![0x42; profile.keying_material_len()];
            let other = split_keying_material(profile, &material).expect("length");
            let mut wrong_rx = SrtpSession::inbound(&other.client).expect("session");
            let mut copy = slot();
            copy.0[..n].copy_from_slice(&protected);
            assert_eq!(
                wrong_rx.unprotect_rtp(&mut copy.0[..n]),
                Err(SrtpDrop::AuthFailed)
            );
            // The intact packet still passes after the forgeries.
            let mut good = slot();
            good.0[..n].copy_from_slice(&protected);
            assert!(rx.unprotect_rtp(&mut good.0[..n]).is_ok());

            let plain = rtcp(0xAABB_CCDD);
            let mut buf = slot();
            buf.0[..plain.len()].copy_from_slice(&plain);
            let n = tx
                .protect_rtcp(&mut buf.0, plain.len())
                .expect("protect rtcp");
            buf.0[10] ^= 0x80;
            assert_eq!(
                rx.unprotect_rtcp(&mut buf.0[..n]),
                Err(SrtpDrop::AuthFailed)
            );
        }
    }

    #[test]
    fn replays_are_detected() {
        for profile in [SrtpProfile::Aes128CmSha1_80, SrtpProfile::AeadAes128Gcm] {
            let (mut tx, mut rx) = pair(profile, SrtpConfig::default());
            let mut protected = Vec::new();
            for seq in [1u16, 2, 300] {
                let plain = rtp(seq, 7, &[1; 20]);
                let mut buf = slot();
                buf.0[..plain.len()].copy_from_slice(&plain);
                let n = tx.protect_rtp(&mut buf.0, plain.len()).expect("protect");
                protected.push(buf.0[..n].to_vec());
            }
            let mut unprotect = |p: &[u8]| {
                let mut buf = slot();
                buf.0[..p.len()].copy_from_slice(p);
                rx.unprotect_rtp(&mut buf.0[..p.len()])
            };
            assert!(unprotect(&protected[0]).is_ok());
            assert_eq!(unprotect(&protected[0]), Err(SrtpDrop::Replayed));
            assert!(unprotect(&protected[2]).is_ok());
            // Seq 2 is now 298 behind: outside the 128-packet window.
            assert_eq!(unprotect(&protected[1]), Err(SrtpDrop::TooOld));
        }
    }

    #[test]
    fn repeated_transmission_needs_allow_repeat_tx() {
        let plain = rtp(42, 9, &[3; 30]);
        for (allow, want_ok) in [(true, true), (false, false)] {
            let config = SrtpConfig {
                allow_repeat_tx: allow,
                ..SrtpConfig::default()
            };
            let (mut tx, mut rx) = pair(SrtpProfile::Aes128CmSha1_80, config);
            let mut first = slot();
            first.0[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect_rtp(&mut first.0, plain.len()).expect("first");
            let mut again = slot();
            again.0[..plain.len()].copy_from_slice(&plain);
            let result = tx.protect_rtp(&mut again.0, plain.len());
            assert_eq!(
                result.is_ok(),
                want_ok,
                "allow_repeat_tx {allow}: {result:?}"
            );
            if want_ok {
                // The retransmission is the same ciphertext; the receiver
                // accepts it once (the original was lost).
                assert_eq!(&again.0[..n], &first.0[..n]);
                assert!(rx.unprotect_rtp(&mut again.0[..n]).is_ok());
            } else {
                assert_eq!(result, Err(SrtpDrop::Replayed));
            }
        }
    }

    #[test]
    fn keying_material_is_split_per_rfc5764() {
        let profile = SrtpProfile::Aes128CmSha1_80;
        let material: Vec<u8> = (0u8..60).collect();
        let keys = split_keying_material(profile, &material).expect("60 bytes");
        // client key 0..16, server key 16..32, client salt 32..46, server salt 46..60.
        let client: Vec<u8> = (0u8..16).chain(32..46).collect();
        let server: Vec<u8> = (16u8..32).chain(46..60).collect();
        assert_eq!(keys.client.master(), &client[..]);
        assert_eq!(keys.server.master(), &server[..]);
        assert_eq!(keys.outbound(DtlsSide::Client), &keys.client);
        assert_eq!(keys.inbound(DtlsSide::Client), &keys.server);
        assert_eq!(keys.outbound(DtlsSide::Server), &keys.server);

        let gcm = SrtpProfile::AeadAes256Gcm;
        let material: Vec<u8> = (0u8..88).collect();
        let keys = split_keying_material(gcm, &material).expect("88 bytes");
        let server: Vec<u8> = (32u8..64).chain(76..88).collect();
        assert_eq!(keys.server.master(), &server[..]);
        assert_eq!(
            split_keying_material(gcm, &material[..60]),
            Err(SrtpError::KeyLength {
                profile: gcm,
                expected: 88,
                got: 60
            })
        );
        assert!(!format!("{:?}", keys.client).contains("32"));
    }

    #[test]
    fn profile_ids_round_trip() {
        for profile in SrtpProfile::ALL {
            assert_eq!(SrtpProfile::from_dtls_id(profile.dtls_id()), Some(profile));
        }
        assert_eq!(SrtpProfile::from_dtls_id(0x0005), None);
        assert_eq!(SrtpProfile::AeadAes128Gcm.keying_material_len(), 56);
    }

    #[test]
    fn misuse_is_refused_without_touching_memory() {
        let (mut tx, mut rx) = pair(SrtpProfile::AeadAes128Gcm, SrtpConfig::default());
        let plain = rtp(1, 1, &[0; 10]);
        let mut buf = slot();
        buf.0[..plain.len()].copy_from_slice(&plain);
        // No trailer room.
        let tight = plain.len() + SRTP_MAX_TRAILER - 1;
        assert_eq!(
            tx.protect_rtp(&mut buf.0[..tight], plain.len()),
            Err(SrtpDrop::NoTrailerRoom)
        );
        assert_eq!(
            tx.protect_rtp(&mut buf.0[..10], 20),
            Err(SrtpDrop::BadLength)
        );
        // Misaligned buffer.
        assert_eq!(
            tx.protect_rtp(&mut buf.0[1..], plain.len()),
            Err(SrtpDrop::Misaligned)
        );
        assert_eq!(
            rx.unprotect_rtp(&mut buf.0[2..40]),
            Err(SrtpDrop::Misaligned)
        );
        // Wrong direction.
        assert_eq!(
            rx.protect_rtp(&mut buf.0, plain.len()),
            Err(SrtpDrop::WrongDirection)
        );
        assert_eq!(
            tx.unprotect_rtp(&mut buf.0[..plain.len()]),
            Err(SrtpDrop::WrongDirection)
        );
        // Malformed headers: short, wrong version, CSRCs or extension past the end.
        assert_eq!(rx.unprotect_rtp(&mut buf.0[..8]), Err(SrtpDrop::Malformed));
        let mut bad = slot();
        bad.0[..plain.len()].copy_from_slice(&plain);
        bad.0[0] = 0x40;
        assert_eq!(
            rx.unprotect_rtp(&mut bad.0[..plain.len()]),
            Err(SrtpDrop::Malformed)
        );
        bad.0[0] = 0x8F;
        assert_eq!(
            rx.unprotect_rtp(&mut bad.0[..plain.len()]),
            Err(SrtpDrop::Malformed)
        );
        bad.0[0] = 0x90;
        bad.0[14] = 0xFF;
        assert_eq!(
            rx.unprotect_rtp(&mut bad.0[..plain.len()]),
            Err(SrtpDrop::Malformed)
        );
        assert_eq!(rx.unprotect_rtcp(&mut bad.0[..4]), Err(SrtpDrop::Malformed));
        // Too short to hold an SRTCP trailer: libsrtp refuses it.
        let mut short = slot();
        short.0[..8].copy_from_slice(&rtcp(5)[..8]);
        assert!(rx.unprotect_rtcp(&mut short.0[..8]).is_err());
        // Bad configuration.
        let keys = SrtpKeys::new(SrtpProfile::AeadAes128Gcm, &[0; 16], &[0; 12]).expect("lengths");
        let config = SrtpConfig {
            replay_window: 16,
            ..SrtpConfig::default()
        };
        assert!(matches!(
            SrtpSession::new(&keys, SrtpDirection::Inbound, config),
            Err(SrtpError::ReplayWindow)
        ));
        assert!(SrtpKeys::new(SrtpProfile::AeadAes128Gcm, &[0; 16], &[0; 14]).is_err());
    }

    #[test]
    fn session_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<SrtpSession>();
        let (mut tx, _) = pair(SrtpProfile::Aes128CmSha1_32, SrtpConfig::default());
        let handle = std::thread::spawn(move || {
            let plain = rtp(1, 1, &[0; 10]);
            let mut buf = slot();
            buf.0[..plain.len()].copy_from_slice(&plain);
            tx.protect_rtp(&mut buf.0, plain.len())
        });
        let joined = handle.join().expect("no panic");
        assert_eq!(joined, Ok(12 + 10 + 4));
    }
}
