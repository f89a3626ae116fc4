//! STUN messages (RFC 5389 / RFC 8489): a zero-copy reader and a writer into a
//! caller-owned buffer.
//!
//! [`parse`] validates the header (type bits, magic cookie, length) and walks the
//! attributes once, remembering where the ones ICE needs live; accessors then
//! read the borrowed bytes. [`StunMessage::verify_integrity`] checks
//! MESSAGE-INTEGRITY (HMAC-SHA1, short-term credentials) and
//! [`StunMessage::verify_fingerprint`] checks FINGERPRINT (CRC-32 xor
//! `0x5354554e`). [`StunWriter`] builds a message attribute by attribute into a
//! `&mut [u8]` and returns its length.
//!
//! This module never allocates per message on its own (the HMAC goes through
//! OpenSSL, which keeps a small digest context per call), never does IO and
//! never reads a clock. Long-term credentials, SOFTWARE, ALTERNATE-SERVER and
//! the TURN attributes are not interpreted (they are skipped like any
//! comprehension-optional attribute).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;

/// The fixed magic cookie (RFC 5389 §6).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// Length of the STUN header.
pub const HEADER_LEN: usize = 20;

/// XOR constant of the FINGERPRINT attribute (RFC 5389 §15.5).
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// Longest USERNAME value accepted (RFC 5389 §15.3).
pub const MAX_USERNAME_LEN: usize = 513;

/// Longest ERROR-CODE reason phrase accepted (RFC 5389 §15.6).
pub const MAX_REASON_LEN: usize = 763;

const INTEGRITY_LEN: usize = 20;

/// Attribute types used by ICE (RFC 5389 §18.2, RFC 8445 §16.1).
pub mod attr {
    /// MAPPED-ADDRESS.
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (HMAC-SHA1).
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES.
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// REALM.
    pub const REALM: u16 = 0x0014;
    /// NONCE.
    pub const NONCE: u16 = 0x0015;
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6); recognised, not checked.
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// PASSWORD-ALGORITHM (RFC 8489 §14.12); recognised, not interpreted.
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    /// USERHASH (RFC 8489 §14.4); recognised, not interpreted.
    pub const USERHASH: u16 = 0x001E;
    /// XOR-MAPPED-ADDRESS.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY (ICE).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (ICE).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// SOFTWARE.
    pub const SOFTWARE: u16 = 0x8022;
    /// FINGERPRINT.
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED.
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING.
    pub const ICE_CONTROLLING: u16 = 0x802A;
}

/// A STUN method (12 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// The Binding method, the only one ICE uses.
    pub const BINDING: Self = Self(0x001);
}

/// The class of a STUN message (RFC 5389 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request, answered by a response.
    Request,
    /// An indication, never answered.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

impl Class {
    fn from_bits(bits: u16) -> Self {
        match bits & 0b11 {
            0b00 => Self::Request,
            0b01 => Self::Indication,
            0b10 => Self::Success,
            _ => Self::Error,
        }
    }

    fn bits(self) -> u16 {
        match self {
            Self::Request => 0b00,
            Self::Indication => 0b01,
            Self::Success => 0b10,
            Self::Error => 0b11,
        }
    }
}

/// The 96-bit transaction id of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

/// Why a STUN message was refused. Small and `Copy`: it comes from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum StunError {
    /// Shorter than the 20-byte header.
    #[error("shorter than the STUN header")]
    TooShort,
    /// The two leading bits are not zero: not STUN.
    #[error("leading bits not zero")]
    NotStun,
    /// The magic cookie is not 0x2112A442 (RFC 3489 messages are refused).
    #[error("wrong magic cookie")]
    BadCookie,
    /// The length field is not a multiple of 4 or does not match the datagram.
    #[error("length field does not match the datagram")]
    BadLength,
    /// An attribute runs past the end of the message.
    #[error("attribute truncated")]
    TruncatedAttribute,
    /// An attribute follows FINGERPRINT, which must be last.
    #[error("attribute after FINGERPRINT")]
    AttributeAfterFingerprint,
    /// A known attribute has a malformed value; carries its type.
    #[error("malformed attribute {0:#06x}")]
    BadAttribute(u16),
    /// MESSAGE-INTEGRITY is absent.
    #[error("no MESSAGE-INTEGRITY")]
    NoIntegrity,
    /// MESSAGE-INTEGRITY does not match the key.
    #[error("MESSAGE-INTEGRITY mismatch")]
    IntegrityMismatch,
    /// FINGERPRINT is absent.
    #[error("no FINGERPRINT")]
    NoFingerprint,
    /// FINGERPRINT does not match the message.
    #[error("FINGERPRINT mismatch")]
    FingerprintMismatch,
    /// The output buffer cannot hold the message (writer).
    #[error("output buffer too small")]
    BufferTooSmall,
    /// An attribute was added after MESSAGE-INTEGRITY or FINGERPRINT (writer).
    #[error("attribute written after MESSAGE-INTEGRITY or FINGERPRINT")]
    WriteOrder,
    /// An ERROR-CODE outside 300..=699 was given to the writer.
    #[error("error code outside 300..=699")]
    BadErrorCode,
    /// OpenSSL failed to compute an HMAC.
    #[error("HMAC computation failed")]
    Crypto,
}

/// A MESSAGE-INTEGRITY key. For ICE (short-term credentials) it is the
/// password itself (RFC 5389 §15.4); the HMAC key is prepared once.
pub struct StunKey {
    pkey: PKey<Private>,
}

impl StunKey {
    /// A short-term credential key: the password bytes.
    pub fn short_term(password: &[u8]) -> Result<Self, StunError> {
        let pkey = PKey::hmac(password).map_err(|_| StunError::Crypto)?;
        Ok(Self { pkey })
    }

    fn hmac_sha1(&self, parts: &[&[u8]], out: &mut [u8; INTEGRITY_LEN]) -> Result<(), StunError> {
        let mut signer =
            Signer::new(MessageDigest::sha1(), &self.pkey).map_err(|_| StunError::Crypto)?;
        for part in parts {
            signer.update(part).map_err(|_| StunError::Crypto)?;
        }
        let written = signer.sign(out).map_err(|_| StunError::Crypto)?;
        if written == INTEGRITY_LEN {
            Ok(())
        } else {
            Err(StunError::Crypto)
        }
    }
}

impl fmt::Debug for StunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StunKey(..)")
    }
}

/// A parsed STUN message borrowing the datagram.
#[derive(Debug, Clone, Copy)]
pub struct StunMessage<'a> {
    bytes: &'a [u8],
    class: Class,
    method: Method,
    username: Option<(usize, usize)>,
    integrity: Option<usize>,
    fingerprint: Option<usize>,
    xor_mapped: Option<(usize, usize)>,
    error_code: Option<(u16, usize, usize)>,
    priority: Option<u32>,
    use_candidate: bool,
    ice_controlling: Option<u64>,
    ice_controlled: Option<u64>,
    unknown_required: Option<u16>,
}

/// Parses one STUN message occupying the whole datagram.
///
/// Validates the header and every attribute's framing, plus the value of each
/// attribute ICE reads. Attributes after MESSAGE-INTEGRITY other than
/// FINGERPRINT are ignored (RFC 5389 §15.4); anything after FINGERPRINT is an
/// error. For a repeated attribute the first occurrence counts. This is the
/// fuzzing entry point of the module; it accepts any input.
pub fn parse(bytes: &[u8]) -> Result<StunMessage<'_>, StunError> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(StunError::TooShort)?;
    if header[0] & 0xC0 != 0 {
        return Err(StunError::NotStun);
    }
    if u32::from_be_bytes([header[4], header[5], header[6], header[7]]) != MAGIC_COOKIE {
        return Err(StunError::BadCookie);
    }
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if length % 4 != 0 || HEADER_LEN + length != bytes.len() {
        return Err(StunError::BadLength);
    }
    let msg_type = u16::from_be_bytes([header[0], header[1]]);
    let mut msg = StunMessage {
        bytes,
        class: Class::from_bits(((msg_type >> 7) & 0b10) | ((msg_type >> 4) & 0b01)),
        method: Method(
            (msg_type & 0x000F) | ((msg_type >> 1) & 0x0070) | ((msg_type >> 2) & 0x0F80),
        ),
        username: None,
        integrity: None,
        fingerprint: None,
        xor_mapped: None,
        error_code: None,
        priority: None,
        use_candidate: false,
        ice_controlling: None,
        ice_controlled: None,
        unknown_required: None,
    };
    for item in AttributeIter::new(bytes) {
        let (pos, ty, value) = item?;
        if msg.fingerprint.is_some() {
            return Err(StunError::AttributeAfterFingerprint);
        }
        if msg.integrity.is_some() && ty != attr::FINGERPRINT {
            continue;
        }
        msg.record(pos, ty, value)?;
    }
    Ok(msg)
}

impl<'a> StunMessage<'a> {
    fn record(&mut self, pos: usize, ty: u16, value: &[u8]) -> Result<(), StunError> {
        let value_start = pos + 4;
        let value_range = (value_start, value_start + value.len());
        match ty {
            attr::USERNAME => {
                if value.len() > MAX_USERNAME_LEN {
                    return Err(StunError::BadAttribute(ty));
                }
                self.username.get_or_insert(value_range);
            }
            attr::MESSAGE_INTEGRITY => {
                if value.len() != INTEGRITY_LEN {
                    return Err(StunError::BadAttribute(ty));
                }
                self.integrity = Some(pos);
            }
            attr::FINGERPRINT => {
                if value.len() != 4 {
                    return Err(StunError::BadAttribute(ty));
                }
                self.fingerprint = Some(pos);
            }
            attr::XOR_MAPPED_ADDRESS => {
                let ok = matches!((value.get(1), value.len()), (Some(1), 8) | (Some(2), 20));
                if !ok {
                    return Err(StunError::BadAttribute(ty));
                }
                self.xor_mapped.get_or_insert(value_range);
            }
            attr::ERROR_CODE => {
                let (class, number) = match value {
                    [_, _, class, number, ..] => (class & 0x07, *number),
                    _ => return Err(StunError::BadAttribute(ty)),
                };
                if !(3..=6).contains(&class) || number > 99 || value.len() - 4 > MAX_REASON_LEN {
                    return Err(StunError::BadAttribute(ty));
                }
                let code = u16::from(class) * 100 + u16::from(number);
                self.error_code
                    .get_or_insert((code, value_start + 4, value_range.1));
            }
            attr::PRIORITY => {
                let v: [u8; 4] = value.try_into().map_err(|_| StunError::BadAttribute(ty))?;
                self.priority.get_or_insert(u32::from_be_bytes(v));
            }
            attr::USE_CANDIDATE => {
                if !value.is_empty() {
                    return Err(StunError::BadAttribute(ty));
                }
                self.use_candidate = true;
            }
            attr::ICE_CONTROLLING | attr::ICE_CONTROLLED => {
                let v: [u8; 8] = value.try_into().map_err(|_| StunError::BadAttribute(ty))?;
                let slot = if ty == attr::ICE_CONTROLLING {
                    &mut self.ice_controlling
                } else {
                    &mut self.ice_controlled
                };
                slot.get_or_insert(u64::from_be_bytes(v));
            }
            attr::MAPPED_ADDRESS
            | attr::UNKNOWN_ATTRIBUTES
            | attr::REALM
            | attr::NONCE
            | attr::MESSAGE_INTEGRITY_SHA256
            | attr::PASSWORD_ALGORITHM
            | attr::USERHASH => {}
            _ if ty < 0x8000 => {
                self.unknown_required.get_or_insert(ty);
            }
            _ => {}
        }
        Ok(())
    }

    /// The whole message as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The message class.
    pub fn class(&self) -> Class {
        self.class
    }

    /// The message method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        let mut id = [0u8; 12];
        id.copy_from_slice(&self.bytes[8..HEADER_LEN]);
        TransactionId(id)
    }

    /// The USERNAME value, if present.
    pub fn username(&self) -> Option<&'a [u8]> {
        self.username.map(|(start, end)| &self.bytes[start..end])
    }

    /// The PRIORITY value, if present.
    pub fn priority(&self) -> Option<u32> {
        self.priority
    }

    /// Whether USE-CANDIDATE is present.
    pub fn use_candidate(&self) -> bool {
        self.use_candidate
    }

    /// The ICE-CONTROLLING tie-breaker, if present.
    pub fn ice_controlling(&self) -> Option<u64> {
        self.ice_controlling
    }

    /// The ICE-CONTROLLED tie-breaker, if present.
    pub fn ice_controlled(&self) -> Option<u64> {
        self.ice_controlled
    }

    /// The ERROR-CODE as (code, reason phrase bytes), if present.
    pub fn error_code(&self) -> Option<(u16, &'a [u8])> {
        self.error_code
            .map(|(code, start, end)| (code, &self.bytes[start..end]))
    }

    /// The first comprehension-required attribute this module does not know
    /// (RFC 5389 §7.3.1: such a request deserves a 420), if any.
    pub fn unknown_comprehension_required(&self) -> Option<u16> {
        self.unknown_required
    }

    /// The XOR-MAPPED-ADDRESS, decoded, if present.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        let (start, end) = self.xor_mapped?;
        decode_xor_address(&self.bytes[start..end], &self.bytes[4..HEADER_LEN])
    }

    /// Whether MESSAGE-INTEGRITY is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    /// Whether FINGERPRINT is present.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Checks MESSAGE-INTEGRITY with `key` (RFC 5389 §15.4): the HMAC covers
    /// the header, with its length field counting up to the end of
    /// MESSAGE-INTEGRITY, and every attribute before it.
    pub fn verify_integrity(&self, key: &StunKey) -> Result<(), StunError> {
        let pos = self.integrity.ok_or(StunError::NoIntegrity)?;
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&self.bytes[..HEADER_LEN]);
        let covered = u16::try_from(pos + 4 + INTEGRITY_LEN - HEADER_LEN)
            .map_err(|_| StunError::BadLength)?;
        header[2..4].copy_from_slice(&covered.to_be_bytes());
        let mut mac = [0u8; INTEGRITY_LEN];
        key.hmac_sha1(&[&header, &self.bytes[HEADER_LEN..pos]], &mut mac)?;
        let received = &self.bytes[pos + 4..pos + 4 + INTEGRITY_LEN];
        if openssl::memcmp::eq(&mac, received) {
            Ok(())
        } else {
            Err(StunError::IntegrityMismatch)
        }
    }

    /// Checks FINGERPRINT (RFC 5389 §15.5): CRC-32 of everything before it,
    /// xor 0x5354554E.
    pub fn verify_fingerprint(&self) -> Result<(), StunError> {
        let pos = self.fingerprint.ok_or(StunError::NoFingerprint)?;
        let value = &self.bytes[pos + 4..pos + 8];
        let received = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
        if crc32(&self.bytes[..pos]) ^ FINGERPRINT_XOR == received {
            Ok(())
        } else {
            Err(StunError::FingerprintMismatch)
        }
    }

    /// Every attribute as `(type, value)`, in wire order, padding excluded.
    pub fn attributes(&self) -> impl Iterator<Item = (u16, &'a [u8])> + 'a {
        // The framing was validated by `parse`, so the iterator yields no errors.
        AttributeIter::new(self.bytes).map_while(|item| item.ok().map(|(_, ty, value)| (ty, value)))
    }
}

/// Walks the attributes of a message whose header length has been checked.
struct AttributeIter<'a> {
    bytes: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> AttributeIter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: HEADER_LEN,
            failed: false,
        }
    }
}

impl<'a> Iterator for AttributeIter<'a> {
    type Item = Result<(usize, u16, &'a [u8]), StunError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let pos = self.pos;
        let Some(&[t0, t1, l0, l1]) = self.bytes.get(pos..pos + 4) else {
            self.failed = true;
            return Some(Err(StunError::TruncatedAttribute));
        };
        let value_len = usize::from(u16::from_be_bytes([l0, l1]));
        let value_start = pos + 4;
        let padded_end = value_start + value_len.next_multiple_of(4);
        let Some(value) = self.bytes.get(value_start..value_start + value_len) else {
            self.failed = true;
            return Some(Err(StunError::TruncatedAttribute));
        };
        if padded_end > self.bytes.len() {
            self.failed = true;
            return Some(Err(StunError::TruncatedAttribute));
        }
        self.pos = padded_end;
        Some(Ok((pos, u16::from_be_bytes([t0, t1]), value)))
    }
}

fn decode_xor_address(value: &[u8], cookie_and_txid: &[u8]) -> Option<SocketAddr> {
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    match (value.get(1)?, value.len()) {
        (1, 8) => {
            let mut octets = [0u8; 4];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = value[4 + i] ^ cookie_and_txid[i];
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(octets)), port))
        }
        (2, 20) => {
            let mut octets = [0u8; 16];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = value[4 + i] ^ cookie_and_txid[i];
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => None,
    }
}

/// Builds a STUN message into a caller-owned buffer.
///
/// Attributes are appended in call order; the header length is kept current
/// after each one. MESSAGE-INTEGRITY and then FINGERPRINT, when wanted, must
/// come last, in that order.
#[derive(Debug)]
pub struct StunWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    sealed_integrity: bool,
    sealed_fingerprint: bool,
}

impl<'b> StunWriter<'b> {
    /// Starts a message with the given class, method and transaction id.
    pub fn new(
        buf: &'b mut [u8],
        class: Class,
        method: Method,
        transaction_id: &TransactionId,
    ) -> Result<Self, StunError> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(StunError::BufferTooSmall)?;
        let m = method.0 & 0x0FFF;
        let c = class.bits();
        let msg_type = (m & 0x000F)
            | ((m & 0x0070) << 1)
            | ((m & 0x0F80) << 2)
            | ((c & 1) << 4)
            | ((c & 2) << 7);
        header[0..2].copy_from_slice(&msg_type.to_be_bytes());
        header[2..4].copy_from_slice(&0u16.to_be_bytes());
        header[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        header[8..20].copy_from_slice(&transaction_id.0);
        Ok(Self {
            buf,
            len: HEADER_LEN,
            sealed_integrity: false,
            sealed_fingerprint: false,
        })
    }

    /// Reserves an attribute of `value_len` bytes (zero padding written),
    /// updates the header length, and returns the offset of the value.
    fn begin_attribute(&mut self, ty: u16, value_len: usize) -> Result<usize, StunError> {
        if self.sealed_fingerprint || (self.sealed_integrity && ty != attr::FINGERPRINT) {
            return Err(StunError::WriteOrder);
        }
        let value_len16 = u16::try_from(value_len).map_err(|_| StunError::BufferTooSmall)?;
        let end = self.len + 4 + value_len.next_multiple_of(4);
        let body_len = u16::try_from(end - HEADER_LEN).map_err(|_| StunError::BufferTooSmall)?;
        let slot = self
            .buf
            .get_mut(self.len..end)
            .ok_or(StunError::BufferTooSmall)?;
        slot[0..2].copy_from_slice(&ty.to_be_bytes());
        slot[2..4].copy_from_slice(&value_len16.to_be_bytes());
        slot[4..].fill(0);
        self.buf[2..4].copy_from_slice(&body_len.to_be_bytes());
        let value_start = self.len + 4;
        self.len = end;
        Ok(value_start)
    }

    /// Appends an attribute with an arbitrary value.
    pub fn add_attribute(&mut self, ty: u16, value: &[u8]) -> Result<(), StunError> {
        let start = self.begin_attribute(ty, value.len())?;
        self.buf[start..start + value.len()].copy_from_slice(value);
        Ok(())
    }

    /// Appends USERNAME.
    pub fn add_username(&mut self, username: &[u8]) -> Result<(), StunError> {
        if username.len() > MAX_USERNAME_LEN {
            return Err(StunError::BadAttribute(attr::USERNAME));
        }
        self.add_attribute(attr::USERNAME, username)
    }

    /// Appends PRIORITY.
    pub fn add_priority(&mut self, priority: u32) -> Result<(), StunError> {
        self.add_attribute(attr::PRIORITY, &priority.to_be_bytes())
    }

    /// Appends USE-CANDIDATE.
    pub fn add_use_candidate(&mut self) -> Result<(), StunError> {
        self.add_attribute(attr::USE_CANDIDATE, &[])
    }

    /// Appends ICE-CONTROLLING with a tie-breaker.
    pub fn add_ice_controlling(&mut self, tie_breaker: u64) -> Result<(), StunError> {
        self.add_attribute(attr::ICE_CONTROLLING, &tie_breaker.to_be_bytes())
    }

    /// Appends ICE-CONTROLLED with a tie-breaker.
    pub fn add_ice_controlled(&mut self, tie_breaker: u64) -> Result<(), StunError> {
        self.add_attribute(attr::ICE_CONTROLLED, &tie_breaker.to_be_bytes())
    }

    /// Appends XOR-MAPPED-ADDRESS for `addr` (RFC 5389 §15.2).
    pub fn add_xor_mapped_address(&mut self, addr: SocketAddr) -> Result<(), StunError> {
        let (family, value_len) = match addr {
            SocketAddr::V4(_) => (1u8, 8),
            SocketAddr::V6(_) => (2u8, 20),
        };
        let start = self.begin_attribute(attr::XOR_MAPPED_ADDRESS, value_len)?;
        let mut key = [0u8; 16];
        key.copy_from_slice(&self.buf[4..HEADER_LEN]);
        let value = &mut self.buf[start..start + value_len];
        value[0] = 0;
        value[1] = family;
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        value[2..4].copy_from_slice(&port.to_be_bytes());
        match addr.ip() {
            IpAddr::V4(ip) => {
                for (i, o) in ip.octets().iter().enumerate() {
                    value[4 + i] = o ^ key[i];
                }
            }
            IpAddr::V6(ip) => {
                for (i, o) in ip.octets().iter().enumerate() {
                    value[4 + i] = o ^ key[i];
                }
            }
        }
        Ok(())
    }

    /// Appends ERROR-CODE with a code in 300..=699 and a reason phrase.
    pub fn add_error_code(&mut self, code: u16, reason: &str) -> Result<(), StunError> {
        if !(300..=699).contains(&code) || reason.len() > MAX_REASON_LEN {
            return Err(StunError::BadErrorCode);
        }
        let start = self.begin_attribute(attr::ERROR_CODE, 4 + reason.len())?;
        let value = &mut self.buf[start..start + 4 + reason.len()];
        value[0] = 0;
        value[1] = 0;
        // Both fit in a byte: code / 100 is 3..=6 and code % 100 is 0..=99.
        value[2] = (code / 100) as u8;
        value[3] = (code % 100) as u8;
        value[4..].copy_from_slice(reason.as_bytes());
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY keyed with `key`. Only FINGERPRINT may follow.
    pub fn add_message_integrity(&mut self, key: &StunKey) -> Result<(), StunError> {
        let start = self.begin_attribute(attr::MESSAGE_INTEGRITY, INTEGRITY_LEN)?;
        let mut mac = [0u8; INTEGRITY_LEN];
        key.hmac_sha1(&[&self.buf[..start - 4]], &mut mac)?;
        self.buf[start..start + INTEGRITY_LEN].copy_from_slice(&mac);
        self.sealed_integrity = true;
        Ok(())
    }

    /// Appends FINGERPRINT. Nothing may follow.
    pub fn add_fingerprint(&mut self) -> Result<(), StunError> {
        let start = self.begin_attribute(attr::FINGERPRINT, 4)?;
        let crc = crc32(&self.buf[..start - 4]) ^ FINGERPRINT_XOR;
        self.buf[start..start + 4].copy_from_slice(&crc.to_be_bytes());
        self.sealed_fingerprint = true;
        Ok(())
    }

    /// The length written so far; the message is `buf[..len]`.
    pub fn finish(self) -> usize {
        self.len
    }

    /// Resumes writing after `len` bytes of an existing message (tests rebuild
    /// RFC vectors whose padding bytes are not zero).
    #[cfg(test)]
    fn resume(buf: &'b mut [u8], len: usize) -> Self {
        Self {
            buf,
            len,
            sealed_integrity: false,
            sealed_fingerprint: false,
        }
    }
}

/// Writes a Binding success response to `transaction_id`: XOR-MAPPED-ADDRESS
/// (`mapped`), MESSAGE-INTEGRITY (`key`), FINGERPRINT. Returns its length.
pub fn write_binding_success(
    buf: &mut [u8],
    transaction_id: &TransactionId,
    mapped: SocketAddr,
    key: &StunKey,
) -> Result<usize, StunError> {
    let mut w = StunWriter::new(buf, Class::Success, Method::BINDING, transaction_id)?;
    w.add_xor_mapped_address(mapped)?;
    w.add_message_integrity(key)?;
    w.add_fingerprint()?;
    Ok(w.finish())
}

/// Writes a Binding error response: ERROR-CODE, MESSAGE-INTEGRITY when a key
/// is given (a 401 has none: the request could not be authenticated),
/// FINGERPRINT. Returns its length.
pub fn write_binding_error(
    buf: &mut [u8],
    transaction_id: &TransactionId,
    code: u16,
    reason: &str,
    key: Option<&StunKey>,
) -> Result<usize, StunError> {
    let mut w = StunWriter::new(buf, Class::Error, Method::BINDING, transaction_id)?;
    w.add_error_code(code, reason)?;
    if let Some(key) = key {
        w.add_message_integrity(key)?;
    }
    w.add_fingerprint()?;
    Ok(w.finish())
}

/// CRC-32 (ISO 3309 / ITU-T V.42, the one FINGERPRINT uses), reflected
/// polynomial 0xEDB88320.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = CRC_TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex with spaces and line breaks, as RFCs print it.
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

    const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
    const TXID: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    /// RFC 5769 §2.1, Sample Request (short-term credentials).
    fn rfc5769_request() -> Vec<u8> {
        hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
             00 24 00 04 6e 00 01 ff
             80 29 00 08 93 2f f9 b1 51 26 3b 36
             00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
             00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
             80 28 00 04 e5 7a 3b cf")
    }

    /// RFC 5769 §2.2, Sample IPv4 Response.
    fn rfc5769_ipv4_response() -> Vec<u8> {
        hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
             00 20 00 08 00 01 a1 47 e1 12 a6 43
             00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
             80 28 00 04 c0 7d 4c 96")
    }

    /// RFC 5769 §2.3, Sample IPv6 Response.
    fn rfc5769_ipv6_response() -> Vec<u8> {
        hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
             00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
             00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
             80 28 00 04 c8 fb 0b 4c")
    }

    fn key() -> StunKey {
        StunKey::short_term(PASSWORD).expect("HMAC key")
    }

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn rfc5769_2_1_request_parses_and_verifies() {
        let bytes = rfc5769_request();
        let msg = parse(&bytes).expect("valid request");
        assert_eq!(msg.class(), Class::Request);
        assert_eq!(msg.method(), Method::BINDING);
        assert_eq!(msg.transaction_id(), TransactionId(TXID));
        assert_eq!(msg.username(), Some(&b"evtj:h6vY"[..]));
        assert_eq!(msg.priority(), Some(0x6e00_01ff));
        assert_eq!(msg.ice_controlled(), Some(0x932f_f9b1_5126_3b36));
        assert_eq!(msg.ice_controlling(), None);
        assert!(!msg.use_candidate());
        assert_eq!(msg.unknown_comprehension_required(), None);
        let software = msg.attributes().find(|(ty, _)| *ty == attr::SOFTWARE);
        assert_eq!(software, Some((attr::SOFTWARE, &b"STUN test client"[..])));
        assert_eq!(msg.attributes().count(), 6);
        msg.verify_integrity(&key()).expect("integrity");
        msg.verify_fingerprint().expect("fingerprint");
    }

    #[test]
    fn rfc5769_2_2_ipv4_response() {
        let bytes = rfc5769_ipv4_response();
        let msg = parse(&bytes).expect("valid response");
        assert_eq!(msg.class(), Class::Success);
        assert_eq!(msg.method(), Method::BINDING);
        assert_eq!(
            msg.xor_mapped_address(),
            Some("192.0.2.1:32853".parse().expect("addr"))
        );
        msg.verify_integrity(&key()).expect("integrity");
        msg.verify_fingerprint().expect("fingerprint");
    }

    #[test]
    fn rfc5769_2_3_ipv6_response() {
        let bytes = rfc5769_ipv6_response();
        let msg = parse(&bytes).expect("valid response");
        let want: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .expect("addr");
        assert_eq!(msg.xor_mapped_address(), Some(want));
        msg.verify_integrity(&key()).expect("integrity");
        msg.verify_fingerprint().expect("fingerprint");
    }

    #[test]
    fn writer_reproduces_rfc5769_integrity_and_fingerprint() {
        // Keep each vector up to MESSAGE-INTEGRITY, then let the writer append
        // MESSAGE-INTEGRITY and FINGERPRINT: the bytes must come out identical.
        for vector in [
            rfc5769_request(),
            rfc5769_ipv4_response(),
            rfc5769_ipv6_response(),
        ] {
            let msg = parse(&vector).expect("valid vector");
            let mi_pos = msg.integrity.expect("vector has MESSAGE-INTEGRITY");
            let mut buf = [0u8; 256];
            buf[..mi_pos].copy_from_slice(&vector[..mi_pos]);
            let mut w = StunWriter::resume(&mut buf, mi_pos);
            w.add_message_integrity(&key()).expect("room");
            w.add_fingerprint().expect("room");
            let len = w.finish();
            assert_eq!(&buf[..len], &vector[..]);
        }
    }

    #[test]
    fn writer_xor_mapped_address_matches_rfc5769() {
        let cases = [
            ("192.0.2.1:32853", "00 20 00 08 00 01 a1 47 e1 12 a6 43"),
            (
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
                "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9",
            ),
        ];
        for (addr, attr_hex) in cases {
            let mut buf = [0u8; 64];
            let mut w = StunWriter::new(
                &mut buf,
                Class::Success,
                Method::BINDING,
                &TransactionId(TXID),
            )
            .expect("room");
            w.add_xor_mapped_address(addr.parse().expect("addr"))
                .expect("room");
            let len = w.finish();
            assert_eq!(&buf[HEADER_LEN..len], &hex(attr_hex)[..]);
            assert_eq!(&buf[..2], &[0x01, 0x01]);
        }
    }

    #[test]
    fn binding_success_round_trips() {
        let mut buf = [0u8; 128];
        let from: SocketAddr = "[2001:db8::1]:5000".parse().expect("addr");
        let len =
            write_binding_success(&mut buf, &TransactionId(TXID), from, &key()).expect("room");
        assert_eq!(len, HEADER_LEN + 24 + 24 + 8);
        let msg = parse(&buf[..len]).expect("own output parses");
        assert_eq!(msg.class(), Class::Success);
        assert_eq!(msg.xor_mapped_address(), Some(from));
        msg.verify_integrity(&key()).expect("integrity");
        msg.verify_fingerprint().expect("fingerprint");
        let other = StunKey::short_term(b"another password").expect("key");
        assert_eq!(
            msg.verify_integrity(&other),
            Err(StunError::IntegrityMismatch)
        );
    }

    #[test]
    fn binding_error_401_round_trips() {
        let mut buf = [0u8; 128];
        let len = write_binding_error(&mut buf, &TransactionId(TXID), 401, "Unauthorized", None)
            .expect("room");
        let msg = parse(&buf[..len]).expect("own output parses");
        assert_eq!(msg.class(), Class::Error);
        assert_eq!(msg.error_code(), Some((401, &b"Unauthorized"[..])));
        assert!(!msg.has_integrity());
        msg.verify_fingerprint().expect("fingerprint");
        assert_eq!(
            write_binding_error(&mut buf, &TransactionId(TXID), 299, "x", None),
            Err(StunError::BadErrorCode)
        );
    }

    #[test]
    fn request_with_use_candidate_round_trips() {
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(
            &mut buf,
            Class::Request,
            Method::BINDING,
            &TransactionId(TXID),
        )
        .expect("room");
        w.add_username(b"abcd:wxyz").expect("room");
        w.add_priority(0x6e00_01ff).expect("room");
        w.add_ice_controlling(42).expect("room");
        w.add_use_candidate().expect("room");
        w.add_message_integrity(&key()).expect("room");
        assert_eq!(w.add_priority(1), Err(StunError::WriteOrder));
        w.add_fingerprint().expect("room");
        assert_eq!(w.add_fingerprint(), Err(StunError::WriteOrder));
        let len = w.finish();
        let msg = parse(&buf[..len]).expect("parses");
        assert_eq!(msg.username(), Some(&b"abcd:wxyz"[..]));
        assert_eq!(msg.ice_controlling(), Some(42));
        assert!(msg.use_candidate());
        msg.verify_integrity(&key()).expect("integrity");
        msg.verify_fingerprint().expect("fingerprint");
    }

    #[test]
    fn writer_refuses_small_buffers() {
        let mut tiny = [0u8; 10];
        assert!(matches!(
            StunWriter::new(
                &mut tiny,
                Class::Request,
                Method::BINDING,
                &TransactionId(TXID)
            ),
            Err(StunError::BufferTooSmall)
        ));
        let mut short = [0u8; 40];
        assert_eq!(
            write_binding_success(
                &mut short,
                &TransactionId(TXID),
                "1.2.3.4:5".parse().expect("addr"),
                &key()
            ),
            Err(StunError::BufferTooSmall)
        );
    }

    #[test]
    fn bad_integrity_is_rejected() {
        let mut bytes = rfc5769_request();
        // Flip one bit inside the HMAC value (MESSAGE-INTEGRITY starts at 80).
        bytes[90] ^= 0x01;
        let msg = parse(&bytes).expect("framing still valid");
        assert_eq!(
            msg.verify_integrity(&key()),
            Err(StunError::IntegrityMismatch)
        );
        // A wrong password fails on the untouched vector too.
        let good = rfc5769_request();
        let msg = parse(&good).expect("valid");
        let wrong = StunKey::short_term(b"VOkJxbRl1RmTxUk/WvJxBT").expect("key");
        assert_eq!(
            msg.verify_integrity(&wrong),
            Err(StunError::IntegrityMismatch)
        );
    }

    #[test]
    fn bad_fingerprint_is_rejected() {
        let mut bytes = rfc5769_request();
        // Change a byte of SOFTWARE: the CRC no longer matches.
        bytes[26] ^= 0x20;
        let msg = parse(&bytes).expect("framing still valid");
        assert_eq!(
            msg.verify_fingerprint(),
            Err(StunError::FingerprintMismatch)
        );
        let mut bytes = rfc5769_ipv4_response();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        let msg = parse(&bytes).expect("framing still valid");
        assert_eq!(
            msg.verify_fingerprint(),
            Err(StunError::FingerprintMismatch)
        );
    }

    #[test]
    fn truncated_and_malformed_are_rejected() {
        let bytes = rfc5769_request();
        assert_eq!(parse(&bytes[..19]).err(), Some(StunError::TooShort));
        // Cut in the middle: the length field no longer matches.
        assert_eq!(parse(&bytes[..60]).err(), Some(StunError::BadLength));
        // Trailing garbage after the declared length.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(parse(&longer).err(), Some(StunError::BadLength));
        // Length field shortened so that an attribute overruns the message.
        let mut overrun = bytes[..HEADER_LEN + 8].to_vec();
        overrun[3] = 8;
        assert_eq!(parse(&overrun).err(), Some(StunError::TruncatedAttribute));
        // Length not a multiple of four.
        let mut odd = bytes.clone();
        odd[3] = 0x57;
        assert_eq!(parse(&odd).err(), Some(StunError::BadLength));
        // Leading bits set: not STUN at all.
        let mut not_stun = bytes.clone();
        not_stun[0] = 0x80;
        assert_eq!(parse(&not_stun).err(), Some(StunError::NotStun));
    }

    #[test]
    fn wrong_cookie_is_rejected() {
        let mut bytes = rfc5769_request();
        bytes[4] = 0x21;
        bytes[5] = 0x12;
        bytes[6] = 0xa4;
        bytes[7] = 0x43;
        assert_eq!(parse(&bytes).err(), Some(StunError::BadCookie));
    }

    #[test]
    fn attribute_after_fingerprint_is_rejected() {
        let mut bytes = rfc5769_request();
        bytes.extend_from_slice(&[0x00, 0x25, 0x00, 0x00]);
        let body = u16::try_from(bytes.len() - HEADER_LEN).expect("small");
        bytes[2..4].copy_from_slice(&body.to_be_bytes());
        assert_eq!(
            parse(&bytes).err(),
            Some(StunError::AttributeAfterFingerprint)
        );
    }

    #[test]
    fn attributes_after_integrity_are_ignored() {
        // USE-CANDIDATE placed after MESSAGE-INTEGRITY must not count.
        let mut buf = [0u8; 256];
        let mut w = StunWriter::new(
            &mut buf,
            Class::Request,
            Method::BINDING,
            &TransactionId(TXID),
        )
        .expect("room");
        w.add_username(b"a:b").expect("room");
        w.add_message_integrity(&key()).expect("room");
        let len = w.finish();
        let mut bytes = buf[..len].to_vec();
        bytes.extend_from_slice(&[0x00, 0x25, 0x00, 0x00]);
        let body = u16::try_from(bytes.len() - HEADER_LEN).expect("small");
        bytes[2..4].copy_from_slice(&body.to_be_bytes());
        let msg = parse(&bytes).expect("valid framing");
        assert!(!msg.use_candidate());
    }

    #[test]
    fn malformed_known_attributes_are_rejected() {
        let cases: [(u16, &[u8]); 6] = [
            (attr::PRIORITY, &[1, 2, 3]),
            (attr::USE_CANDIDATE, &[1]),
            (attr::ICE_CONTROLLING, &[1, 2, 3, 4]),
            (attr::MESSAGE_INTEGRITY, &[0; 16]),
            (
                attr::XOR_MAPPED_ADDRESS,
                &[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            (attr::ERROR_CODE, &[0, 0, 7, 0]),
        ];
        for (ty, value) in cases {
            let mut buf = [0u8; 64];
            let mut w = StunWriter::new(
                &mut buf,
                Class::Request,
                Method::BINDING,
                &TransactionId(TXID),
            )
            .expect("room");
            w.add_attribute(ty, value).expect("room");
            let len = w.finish();
            assert_eq!(
                parse(&buf[..len]).err(),
                Some(StunError::BadAttribute(ty)),
                "type {ty:#x}"
            );
        }
    }

    #[test]
    fn unknown_comprehension_required_is_reported() {
        let mut buf = [0u8; 64];
        let mut w = StunWriter::new(
            &mut buf,
            Class::Request,
            Method::BINDING,
            &TransactionId(TXID),
        )
        .expect("room");
        w.add_attribute(0xC057, &[0, 1, 0, 0]).expect("room");
        w.add_attribute(0x7777, &[1]).expect("room");
        let len = w.finish();
        let msg = parse(&buf[..len]).expect("valid");
        assert_eq!(msg.unknown_comprehension_required(), Some(0x7777));
    }

    #[test]
    fn parse_never_panics_on_prefixes_and_bit_flips() {
        let vector = rfc5769_request();
        for cut in 0..vector.len() {
            let _ = parse(&vector[..cut]);
        }
        for i in 0..vector.len() {
            for bit in 0..8 {
                let mut v = vector.clone();
                v[i] ^= 1 << bit;
                if let Ok(msg) = parse(&v) {
                    let _ = msg.verify_fingerprint();
                    let _ = msg.verify_integrity(&key());
                    let _ = msg.xor_mapped_address();
                    let _ = msg.attributes().count();
                }
            }
        }
    }
}
