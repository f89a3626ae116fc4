//! DTLS 1.2 for DTLS-SRTP (RFC 5764), driven sans-IO over OpenSSL.
//!
//! One [`DtlsEndpoint`] per PeerConnection. OpenSSL never sees a socket: an
//! in-memory channel hands it one whole incoming datagram at a time and collects
//! the records it writes, which are packed into outgoing datagrams of at most the
//! configured MTU (1200 bytes by default).
//!
//! Run loop: feed every DTLS datagram (RFC 7983 first byte 20..=63) to
//! [`DtlsEndpoint::handle_datagram`], call [`DtlsEndpoint::handle_timeout`] when
//! [`DtlsEndpoint::poll_timeout`] says so, and after each input drain
//! [`DtlsEndpoint::poll_transmit`], [`DtlsEndpoint::poll_event`] and
//! [`DtlsEndpoint::poll_application_data`] until they return `None`.
//!
//! Retransmission: the OpenSSL crate does not expose `DTLSv1_get_timeout` /
//! `DTLSv1_handle_timeout` without `unsafe`, and OpenSSL's own DTLS timer reads
//! the wall clock, so this module runs the RFC 6347 §4.2.4 timer itself on the
//! caller's `now`: 1 s initially, doubling up to 60 s, reset when a new flight is
//! sent. On expiry it first lets OpenSSL retransmit (it does so with fresh record
//! sequence numbers when its own wall-clock timer has also expired, which is the
//! normal case in production) and otherwise re-sends the last flight verbatim.
//! A server that sent the final flight re-sends it when the peer retransmits
//! handshake records after the handshake completed (RFC 6347 §4.2.4, the
//! "finished" state). The whole handshake is bounded by a deadline (20 s,
//! media.md §4.2), after which the endpoint fails with [`DtlsFailure::Timeout`].
//!
//! The peer's certificate is pinned by the remote SDP fingerprint: the verify
//! callback accepts self-signed and chain-less certificates, refuses expired or
//! not-yet-valid ones, and fails the handshake (with a `bad_certificate` alert)
//! when the leaf's digest does not match; the match is checked again once the
//! handshake has completed.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::srtp::SrtpProfileId;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode,
    SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509, X509NameBuilder, X509Ref, X509VerifyResult};

/// Default DTLS MTU: the largest datagram this endpoint writes (media.md §4.2).
pub const DEFAULT_MTU: u16 = 1200;

/// Default bound on the whole handshake, from `start` (media.md §4.2).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Initial retransmission timeout (RFC 6347 §4.2.4.1).
const INITIAL_RTO: Duration = Duration::from_secs(1);

/// Upper bound of the doubled retransmission timeout (RFC 6347 §4.2.4.1).
const MAX_RTO: Duration = Duration::from_secs(60);

/// How long a server keeps its final flight to answer a peer's retransmission.
const FINAL_FLIGHT_HOLD: Duration = Duration::from_secs(30);

/// How many times the final flight is re-sent at most.
const FINAL_FLIGHT_MAX_RESENDS: u8 = 8;

/// Undelivered application-data records kept before new ones are dropped.
const MAX_QUEUED_APPLICATION_DATA: usize = 256;

/// Largest DTLS plaintext record (RFC 6347 §4.1 / RFC 5246 §6.2.1).
const MAX_RECORD_PLAINTEXT: usize = 16_384;

/// Keying material exporter label of RFC 5764 §4.2.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// ECDHE suites with AEAD only. CBC suites are left out on purpose: OpenSSL 3.0
/// treats a forged CBC record with a bad MAC (encrypt-then-MAC) as fatal, so
/// anyone able to spoof the peer's address could tear the association down.
/// Every WebRTC stack offers AES-GCM.
const CIPHER_LIST: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// DTLS record header length (RFC 6347 §4.1).
const RECORD_HEADER_LEN: usize = 13;

/// Smallest protected record for AES-GCM: 8-byte explicit nonce and 16-byte
/// tag (RFC 5288 §3).
const MIN_GCM_RECORD: usize = 8 + 16;

/// Smallest protected record for ChaCha20-Poly1305: the 16-byte tag (RFC 7905).
const MIN_CHACHA_RECORD: usize = 16;

/// Key-exchange groups, most preferred first.
const GROUPS_LIST: &str = "X25519:P-256:P-384";

/// `X509_V_ERR_CERT_NOT_YET_VALID` (stable OpenSSL ABI value).
const X509_V_ERR_CERT_NOT_YET_VALID: i32 = 9;

/// `X509_V_ERR_CERT_HAS_EXPIRED` (stable OpenSSL ABI value).
const X509_V_ERR_CERT_HAS_EXPIRED: i32 = 10;

/// DTLS record content type `change_cipher_spec` (RFC 5246 §6.2.1).
const CONTENT_TYPE_CHANGE_CIPHER_SPEC: u8 = 20;

/// DTLS record content type `handshake` (RFC 5246 §6.2.1).
const CONTENT_TYPE_HANDSHAKE: u8 = 22;

/// Lifetime of a generated certificate on each side of its creation time.
const GENERATED_CERT_VALIDITY_SECS: u64 = 365 * 24 * 60 * 60;

/// Setup-path errors of this module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsError {
    /// OpenSSL refused an operation.
    #[error("openssl: {0}")]
    OpenSsl(#[from] ErrorStack),
    /// A PEM file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file that failed.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The private key does not belong to the certificate.
    #[error("private key does not match the certificate")]
    KeyMismatch,
    /// The configuration offers no SRTP protection profile.
    #[error("no SRTP protection profile configured")]
    NoSrtpProfiles,
    /// The configured MTU is outside 256..=16384.
    #[error("DTLS MTU {0} out of range")]
    BadMtu(u16),
    /// The system time is before 1970 or beyond what a certificate can hold.
    #[error("system time out of range for a certificate")]
    BadTime,
}

/// Why an SDP fingerprint could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// The hash function is not one of sha-1, sha-256, sha-384, sha-512.
    #[error("unsupported fingerprint hash function")]
    UnknownAlgorithm,
    /// The value is not colon-separated pairs of hex digits.
    #[error("malformed fingerprint value")]
    Malformed,
    /// The number of bytes does not fit the hash function.
    #[error("fingerprint length does not match its hash function")]
    WrongLength,
}

/// Hash function of an SDP `a=fingerprint` (RFC 8122 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// `sha-1`
    Sha1,
    /// `sha-256`
    Sha256,
    /// `sha-384`
    Sha384,
    /// `sha-512`
    Sha512,
}

impl HashAlgorithm {
    /// Parses the SDP token (`sha-256`), case-insensitively.
    pub fn from_sdp_name(name: &str) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|a| a.sdp_name().eq_ignore_ascii_case(name))
    }

    /// The SDP token, lower-case as browsers write it.
    pub fn sdp_name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    fn message_digest(self) -> MessageDigest {
        match self {
            Self::Sha1 => MessageDigest::sha1(),
            Self::Sha256 => MessageDigest::sha256(),
            Self::Sha384 => MessageDigest::sha384(),
            Self::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// A certificate fingerprint as carried by SDP `a=fingerprint` (RFC 8122).
///
/// `Display` writes the value part: upper-case hex pairs joined by colons.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    algorithm: HashAlgorithm,
    digest: [u8; 64],
}

impl Fingerprint {
    /// Parses the two SDP tokens, e.g. `("sha-256", "AB:CD:...")`; hex is
    /// accepted in either case.
    pub fn parse(algorithm: &str, value: &str) -> Result<Self, FingerprintError> {
        let algorithm =
            HashAlgorithm::from_sdp_name(algorithm).ok_or(FingerprintError::UnknownAlgorithm)?;
        let mut digest = [0u8; 64];
        let mut len = 0usize;
        for pair in value.split(':') {
            let &[hi, lo] = pair.as_bytes() else {
                return Err(FingerprintError::Malformed);
            };
            let byte = (hex_value(hi).ok_or(FingerprintError::Malformed)? << 4)
                | hex_value(lo).ok_or(FingerprintError::Malformed)?;
            let slot = digest.get_mut(len).ok_or(FingerprintError::WrongLength)?;
            *slot = byte;
            len += 1;
        }
        if len != algorithm.digest_len() {
            return Err(FingerprintError::WrongLength);
        }
        Ok(Self { algorithm, digest })
    }

    /// Parses an `a=fingerprint` attribute value: `sha-256 AB:CD:...`.
    pub fn parse_attribute(value: &str) -> Result<Self, FingerprintError> {
        let mut parts = value.split_ascii_whitespace();
        let (Some(algorithm), Some(digest), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(FingerprintError::Malformed);
        };
        Self::parse(algorithm, digest)
    }

    /// The fingerprint of a DER-encoded certificate.
    pub fn of_certificate_der(algorithm: HashAlgorithm, der: &[u8]) -> Result<Self, DtlsError> {
        let cert = X509::from_der(der)?;
        Ok(Self::of_certificate(algorithm, &cert)?)
    }

    fn of_certificate(algorithm: HashAlgorithm, cert: &X509Ref) -> Result<Self, ErrorStack> {
        let bytes = cert.digest(algorithm.message_digest())?;
        let mut digest = [0u8; 64];
        let len = algorithm.digest_len();
        // OpenSSL returns exactly `digest_len` bytes for these hash functions;
        // a mismatch would make the slices below differ in length, so it is
        // turned into an error instead of a panic.
        match (digest.get_mut(..len), bytes.get(..len)) {
            (Some(dst), Some(src)) if bytes.len() == len => dst.copy_from_slice(src),
            _ => return Err(ErrorStack::get()),
        }
        Ok(Self { algorithm, digest })
    }

    /// The hash function.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8] {
        // `digest_len()` is at most 64, the array's length.
        &self.digest[..self.algorithm.digest_len()]
    }

    /// The whole attribute value, e.g. `sha-256 AB:CD:...`.
    pub fn to_attribute_value(&self) -> String {
        format!("{} {self}", self.algorithm.sdp_name())
    }

    /// Whether `cert` has this fingerprint.
    fn matches(&self, cert: &X509Ref) -> bool {
        Self::of_certificate(self.algorithm, cert).is_ok_and(|actual| actual == *self)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.digest().iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({} {self})", self.algorithm.sdp_name())
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The server's DTLS certificate and key (media.md §4.2): one per process.
pub struct DtlsCert {
    cert: X509,
    key: PKey<Private>,
    fingerprint: Fingerprint,
    fingerprint_text: String,
}

impl DtlsCert {
    /// Generates a self-signed ECDSA P-256 certificate: X.509 v3, random
    /// 64-bit serial, subject and issuer `O=jsfu, CN=jsfu`, valid from one year
    /// before `now` to one year after, signed with SHA-256.
    pub fn generate(now: SystemTime) -> Result<Self, DtlsError> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&group)?)?;

        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "jsfu")?;
        name.append_entry_by_nid(Nid::COMMONNAME, "jsfu")?;
        let name = name.build();

        let mut serial = BigNum::new()?;
        serial.rand(64, MsbOption::ONE, false)?;

        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| DtlsError::BadTime)?
            .as_secs();
        let not_before = now_secs.saturating_sub(GENERATED_CERT_VALIDITY_SECS);
        let not_after = now_secs
            .checked_add(GENERATED_CERT_VALIDITY_SECS)
            .ok_or(DtlsError::BadTime)?;

        let serial = serial.to_asn1_integer()?;
        let not_before =
            Asn1Time::from_unix(not_before.try_into().map_err(|_| DtlsError::BadTime)?)?;
        let not_after = Asn1Time::from_unix(not_after.try_into().map_err(|_| DtlsError::BadTime)?)?;

        let mut builder = X509::builder()?;
        builder.set_version(2)?;
        builder.set_serial_number(&serial)?;
        builder.set_subject_name(&name)?;
        builder.set_issuer_name(&name)?;
        builder.set_pubkey(&key)?;
        builder.set_not_before(&not_before)?;
        builder.set_not_after(&not_after)?;
        builder.sign(&key, MessageDigest::sha256())?;
        Self::from_parts(builder.build(), key)
    }

    /// Loads a certificate and its private key from PEM text.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, DtlsError> {
        let cert = X509::from_pem(cert_pem)?;
        let key = PKey::private_key_from_pem(key_pem)?;
        Self::from_parts(cert, key)
    }

    /// Loads a certificate and its private key from PEM files.
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<Self, DtlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| DtlsError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        Self::from_pem(&read(cert_path)?, &read(key_path)?)
    }

    fn from_parts(cert: X509, key: PKey<Private>) -> Result<Self, DtlsError> {
        if !cert.public_key()?.public_eq(&key) {
            return Err(DtlsError::KeyMismatch);
        }
        let fingerprint = Fingerprint::of_certificate(HashAlgorithm::Sha256, &cert)?;
        let fingerprint_text = fingerprint.to_string();
        Ok(Self {
            cert,
            key,
            fingerprint,
            fingerprint_text,
        })
    }

    /// The certificate and the private key (PKCS#8) as PEM, e.g. to persist a
    /// generated certificate.
    pub fn to_pem(&self) -> Result<(Vec<u8>, Vec<u8>), DtlsError> {
        Ok((self.cert.to_pem()?, self.key.private_key_to_pem_pkcs8()?))
    }

    /// The SHA-256 fingerprint.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// The SHA-256 fingerprint in SDP form: `AB:CD:...` (upper-case hex pairs).
    pub fn fingerprint_sdp(&self) -> &str {
        &self.fingerprint_text
    }
}

impl fmt::Debug for DtlsCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsCert")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The SRTP protection profiles DTLS negotiates are the SRTP layer's own
/// (one type for both, so the negotiated profile keys the SRTP session as is).
pub use crate::srtp::SrtpProfile;

/// The `use_srtp` profile OpenSSL reports, as an [`SrtpProfile`].
fn profile_from_openssl(id: SrtpProfileId) -> Option<SrtpProfile> {
    SrtpProfile::ALL.into_iter().find(|p| openssl_id(*p) == id)
}

fn openssl_id(profile: SrtpProfile) -> SrtpProfileId {
    match profile {
        SrtpProfile::AeadAes256Gcm => SrtpProfileId::SRTP_AEAD_AES_256_GCM,
        SrtpProfile::AeadAes128Gcm => SrtpProfileId::SRTP_AEAD_AES_128_GCM,
        SrtpProfile::Aes128CmSha1_80 => SrtpProfileId::SRTP_AES128_CM_SHA1_80,
        SrtpProfile::Aes128CmSha1_32 => SrtpProfileId::SRTP_AES128_CM_SHA1_32,
    }
}

/// One direction's SRTP master key and salt. `Debug` does not print them.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeyMaterial {
    key: [u8; 32],
    key_len: u8,
    salt: [u8; 14],
    salt_len: u8,
}

impl SrtpKeyMaterial {
    /// Copies `key` and `salt`; `None` if longer than any profile uses (32 and
    /// 14 bytes).
    pub fn new(key: &[u8], salt: &[u8]) -> Option<Self> {
        let mut out = Self {
            key: [0; 32],
            key_len: u8::try_from(key.len()).ok()?,
            salt: [0; 14],
            salt_len: u8::try_from(salt.len()).ok()?,
        };
        out.key.get_mut(..key.len())?.copy_from_slice(key);
        out.salt.get_mut(..salt.len())?.copy_from_slice(salt);
        Some(out)
    }

    /// The master key.
    pub fn key(&self) -> &[u8] {
        // `key_len` never exceeds 32 (checked in `new`).
        &self.key[..usize::from(self.key_len)]
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8] {
        // `salt_len` never exceeds 14 (checked in `new`).
        &self.salt[..usize::from(self.salt_len)]
    }
}

impl fmt::Debug for SrtpKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SrtpKeyMaterial {{ key: <{} bytes>, salt: <{} bytes> }}",
            self.key_len, self.salt_len
        )
    }
}

/// The outcome of a DTLS-SRTP handshake (RFC 5764 §4.2), split for our role:
/// `local` protects what we send, `remote` unprotects what we receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsSrtpKeys {
    /// The negotiated protection profile.
    pub profile: SrtpProfile,
    /// Our master key and salt (the client's when we are the DTLS client).
    pub local: SrtpKeyMaterial,
    /// The peer's master key and salt.
    pub remote: SrtpKeyMaterial,
}

/// Our DTLS role (media.md §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// We send the ClientHello; SDP `a=setup:active`.
    Client,
    /// We wait for the ClientHello; SDP `a=setup:passive`.
    Server,
}

impl DtlsRole {
    /// Our role when answering an offer whose `a=setup` value is given
    /// (`None` when absent): `actpass`, `passive` or absent make us the client,
    /// `active` the server. `None` for any other value (e.g. `holdconn`).
    pub fn answering(remote_offer_setup: Option<&str>) -> Option<Self> {
        match remote_offer_setup.map(str::trim) {
            None => Some(Self::Client),
            Some(s) if s.eq_ignore_ascii_case("actpass") || s.eq_ignore_ascii_case("passive") => {
                Some(Self::Client)
            }
            Some(s) if s.eq_ignore_ascii_case("active") => Some(Self::Server),
            Some(_) => None,
        }
    }

    /// Our role after we offered `actpass` and the answer carries
    /// `remote_answer_setup`: `active` makes us the server, `passive` the
    /// client; `None` for any other value.
    pub fn from_answer(remote_answer_setup: &str) -> Option<Self> {
        let s = remote_answer_setup.trim();
        if s.eq_ignore_ascii_case("active") {
            Some(Self::Server)
        } else if s.eq_ignore_ascii_case("passive") {
            Some(Self::Client)
        } else {
            None
        }
    }

    /// The `a=setup` value we write in an answer for this role.
    pub fn setup_attribute(self) -> &'static str {
        match self {
            Self::Client => "active",
            Self::Server => "passive",
        }
    }
}

/// Settings shared by all endpoints of a [`DtlsContext`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsConfig {
    /// Largest datagram written (default [`DEFAULT_MTU`]).
    pub mtu: u16,
    /// Bound on the handshake from `start` (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    pub handshake_timeout: Duration,
    /// Protection profiles offered or accepted, most preferred first (default
    /// [`SrtpProfile::ALL`]); restrict it to what the SRTP layer implements.
    pub srtp_profiles: Vec<SrtpProfile>,
}

impl Default for DtlsConfig {
    fn default() -> Self {
        Self {
            mtu: DEFAULT_MTU,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            srtp_profiles: SrtpProfile::ALL.to_vec(),
        }
    }
}

/// The OpenSSL context built once from the certificate and configuration;
/// cheap to clone and shareable between threads.
#[derive(Clone)]
pub struct DtlsContext {
    ssl: SslContext,
    mtu: u16,
    handshake_timeout: Duration,
}

impl DtlsContext {
    /// Builds the DTLS 1.2 context: ECDHE cipher suites, `use_srtp` with the
    /// configured profiles, session tickets and caching off, renegotiation off,
    /// peer certificate required.
    pub fn new(cert: &DtlsCert, config: &DtlsConfig) -> Result<Self, DtlsError> {
        if config.srtp_profiles.is_empty() {
            return Err(DtlsError::NoSrtpProfiles);
        }
        if !(256..=16_384).contains(&config.mtu) {
            return Err(DtlsError::BadMtu(config.mtu));
        }
        let mut builder = SslContextBuilder::new(SslMethod::dtls())?;
        builder.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
        builder.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
        builder.set_cipher_list(CIPHER_LIST)?;
        builder.set_groups_list(GROUPS_LIST)?;
        builder.set_certificate(&cert.cert)?;
        builder.set_private_key(&cert.key)?;
        builder.check_private_key()?;
        let profiles = config
            .srtp_profiles
            .iter()
            .map(|p| p.openssl_name())
            .collect::<Vec<_>>()
            .join(":");
        builder.set_tlsext_use_srtp(&profiles)?;
        // NO_QUERY_MTU keeps the MTU set on each `Ssl` across SSL_clear.
        builder.set_options(
            SslOptions::NO_TICKET | SslOptions::NO_QUERY_MTU | SslOptions::NO_RENEGOTIATION,
        );
        builder.set_session_cache_mode(SslSessionCacheMode::OFF);
        builder.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        Ok(Self {
            ssl: builder.build(),
            mtu: config.mtu,
            handshake_timeout: config.handshake_timeout,
        })
    }
}

impl fmt::Debug for DtlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsContext")
            .field("mtu", &self.mtu)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

/// Why an endpoint failed. Maps to a hangup reason with
/// [`DtlsFailure::hangup_reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsFailure {
    /// The handshake did not complete within the handshake timeout.
    #[error("DTLS handshake timed out")]
    Timeout,
    /// The peer's certificate does not match the SDP fingerprint.
    #[error("peer certificate does not match the SDP fingerprint")]
    FingerprintMismatch,
    /// The peer's certificate is missing, expired or not yet valid.
    #[error("peer certificate missing or outside its validity period")]
    CertificateInvalid,
    /// The handshake failed otherwise (alert received, no common cipher, ...).
    #[error("DTLS handshake failed")]
    Handshake,
    /// The handshake completed without an SRTP protection profile.
    #[error("no SRTP protection profile negotiated")]
    NoSrtpProfile,
    /// The SRTP keying material could not be exported.
    #[error("SRTP keying material export failed")]
    KeyExport,
    /// A fatal alert or protocol error after the handshake.
    #[error("DTLS fatal alert or protocol error")]
    Protocol,
}

impl DtlsFailure {
    /// The Janus hangup reason (media.md §4.2, §10): `DTLS timeout` or
    /// `DTLS alert`.
    pub fn hangup_reason(self) -> &'static str {
        match self {
            Self::Timeout => "DTLS timeout",
            _ => "DTLS alert",
        }
    }
}

/// What an endpoint reports through [`DtlsEndpoint::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake completed, the fingerprint matched and SRTP keys are ready.
    Connected(DtlsSrtpKeys),
    /// The endpoint failed; it ignores all further input.
    Failed(DtlsFailure),
    /// The peer sent close_notify (we answered with ours); no further input is
    /// processed. Janus hangs up with `DTLS alert` here too.
    Closed,
}

/// Lifecycle of a [`DtlsEndpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsState {
    /// Created, not started.
    New,
    /// Handshake in progress.
    Handshaking,
    /// Handshake done, keys exported.
    Connected,
    /// Closed by us or by the peer's close_notify.
    Closed,
    /// Failed; see the `Failed` event.
    Failed,
}

/// Why application data could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsSendError {
    /// The handshake has not completed, or the endpoint is closed or failed.
    #[error("DTLS not connected")]
    NotConnected,
    /// The message is empty or larger than one DTLS record (16384 bytes).
    #[error("application data size not sendable in one record")]
    BadSize,
    /// OpenSSL refused the write.
    #[error("DTLS write failed")]
    WriteFailed,
}

/// Counters of one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DtlsStats {
    /// Datagrams passed to `handle_datagram`.
    pub datagrams_received: u64,
    /// Datagrams ignored because the endpoint was closed or failed.
    pub datagrams_ignored: u64,
    /// Datagrams discarded before OpenSSL because a protected record in them
    /// is shorter than the cipher's overhead (forged or corrupt).
    pub datagrams_discarded: u64,
    /// Datagrams written (handshake, alerts and application data).
    pub datagrams_sent: u64,
    /// Flights re-sent on the retransmission timer or on a peer's
    /// retransmission.
    pub retransmissions: u64,
    /// Application-data records dropped because the queue was full.
    pub application_data_dropped: u64,
}

/// The in-memory datagram channel OpenSSL reads from and writes to.
#[derive(Debug, Default)]
struct MemoryChannel {
    /// The one incoming datagram not yet read by OpenSSL.
    incoming: Vec<u8>,
    incoming_pending: bool,
    /// Records written by OpenSSL since the last collection.
    outgoing: Vec<Vec<u8>>,
}

impl Read for MemoryChannel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // An empty datagram is never handed over: `Ok(0)` would mean EOF.
        if !self.incoming_pending || self.incoming.is_empty() {
            self.incoming_pending = false;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.incoming_pending = false;
        // A datagram larger than OpenSSL's buffer is truncated, as a datagram
        // socket would; OpenSSL then discards the broken record.
        let n = self.incoming.len().min(buf.len());
        // `n` is within both lengths.
        buf[..n].copy_from_slice(&self.incoming[..n]);
        Ok(n)
    }
}

impl Write for MemoryChannel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push(buf.to_vec());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Retransmission state of the handshake (RFC 6347 §4.2.4).
#[derive(Debug)]
struct Retransmit {
    /// The last flight we sent, as datagrams.
    flight: Vec<Vec<u8>>,
    /// Current timeout value.
    rto: Duration,
    /// When the timer fires; `None` when not armed.
    at: Option<Instant>,
}

/// One DTLS-SRTP association (one per PeerConnection).
pub struct DtlsEndpoint {
    stream: SslStream<MemoryChannel>,
    role: DtlsRole,
    remote_fingerprint: Fingerprint,
    state: DtlsState,
    mtu: usize,
    handshake_timeout: Duration,
    handshake_deadline: Option<Instant>,
    retransmit: Retransmit,
    /// Until when a server answers the peer's retransmission with its final
    /// flight, and how many times it still may.
    final_flight_until: Option<Instant>,
    final_flight_resends: u8,
    transmit: VecDeque<Vec<u8>>,
    /// The datagram handed out by the last `poll_transmit`.
    current_transmit: Vec<u8>,
    events: VecDeque<DtlsEvent>,
    application_data: VecDeque<Vec<u8>>,
    read_buf: Vec<u8>,
    stats: DtlsStats,
}

impl DtlsEndpoint {
    /// Creates an endpoint for `role`, pinning the peer certificate to
    /// `remote_fingerprint` (from the remote SDP). Nothing is sent before
    /// [`start`](Self::start) or the first datagram.
    pub fn new(
        context: &DtlsContext,
        role: DtlsRole,
        remote_fingerprint: Fingerprint,
    ) -> Result<Self, DtlsError> {
        let mut ssl = Ssl::new(&context.ssl)?;
        ssl.set_mtu(u32::from(context.mtu))?;
        let pinned = remote_fingerprint;
        ssl.set_verify_callback(
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            move |preverified, store| {
                if !preverified {
                    let error = store.error().as_raw();
                    if error == X509_V_ERR_CERT_NOT_YET_VALID
                        || error == X509_V_ERR_CERT_HAS_EXPIRED
                    {
                        return false;
                    }
                }
                // Only the leaf is pinned; chain errors (self-signed, unknown
                // issuer) do not matter once the fingerprint matches.
                if store.error_depth() != 0 {
                    return true;
                }
                let matches = store
                    .current_cert()
                    .is_some_and(|cert| pinned.matches(cert));
                if !matches {
                    store.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
                }
                matches
            },
        );
        match role {
            DtlsRole::Client => ssl.set_connect_state(),
            DtlsRole::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, MemoryChannel::default())?;
        Ok(Self {
            stream,
            role,
            remote_fingerprint,
            state: DtlsState::New,
            mtu: usize::from(context.mtu),
            handshake_timeout: context.handshake_timeout,
            handshake_deadline: None,
            retransmit: Retransmit {
                flight: Vec::new(),
                rto: INITIAL_RTO,
                at: None,
            },
            final_flight_until: None,
            final_flight_resends: 0,
            transmit: VecDeque::new(),
            current_transmit: Vec::new(),
            events: VecDeque::new(),
            application_data: VecDeque::new(),
            read_buf: vec![0; MAX_RECORD_PLAINTEXT],
            stats: DtlsStats::default(),
        })
    }

    /// Starts the handshake (call when ICE has selected a pair): a client
    /// writes its ClientHello, a server starts waiting for one. Both start the
    /// handshake deadline. Does nothing unless the endpoint is new.
    pub fn start(&mut self, now: Instant) {
        if self.state != DtlsState::New {
            return;
        }
        self.state = DtlsState::Handshaking;
        self.handshake_deadline = Some(now + self.handshake_timeout);
        self.drive_handshake();
        self.collect_flight(now, true);
    }

    /// Feeds one received DTLS datagram. A new endpoint starts implicitly
    /// (a browser's ClientHello can arrive before ICE reports the pair).
    /// Garbage is discarded by OpenSSL as DTLS requires (RFC 6347 §4.1.2.7).
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        self.stats.datagrams_received += 1;
        if self.state == DtlsState::New {
            self.start(now);
        }
        // An empty read would look like end-of-stream to OpenSSL.
        if datagram.is_empty() || matches!(self.state, DtlsState::Closed | DtlsState::Failed) {
            self.stats.datagrams_ignored += 1;
            return;
        }
        if self.has_short_protected_record(datagram) {
            self.stats.datagrams_discarded += 1;
            return;
        }
        let channel = self.stream.get_mut();
        channel.incoming.clear();
        channel.incoming.extend_from_slice(datagram);
        channel.incoming_pending = true;

        if self.state == DtlsState::Handshaking {
            self.drive_handshake();
            self.collect_flight(now, true);
        } else {
            self.drive_read();
            let answered = self.collect_output();
            if !answered {
                self.answer_retransmission(now, datagram);
            }
        }
        // Whatever OpenSSL left unread of this datagram is dropped.
        self.stream.get_mut().incoming_pending = false;
    }

    /// Fires the retransmission timer and the handshake deadline when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != DtlsState::Handshaking {
            return;
        }
        if self
            .handshake_deadline
            .is_some_and(|deadline| now >= deadline)
        {
            self.fail(DtlsFailure::Timeout);
            self.collect_output();
            return;
        }
        let Some(at) = self.retransmit.at else {
            return;
        };
        if now < at {
            return;
        }
        self.retransmit.rto = (self.retransmit.rto * 2).min(MAX_RTO);
        self.stats.retransmissions += 1;
        // OpenSSL retransmits by itself (fresh record numbers) when its own
        // wall-clock timer has expired too; otherwise re-send verbatim.
        self.drive_handshake();
        if !self.collect_flight(now, false) && self.state == DtlsState::Handshaking {
            self.resend_flight();
            self.retransmit.at = Some(now + self.retransmit.rto);
        }
    }

    /// Sends application data (e.g. SCTP packets) as one DTLS record.
    pub fn send_application_data(&mut self, data: &[u8]) -> Result<(), DtlsSendError> {
        if self.state != DtlsState::Connected {
            return Err(DtlsSendError::NotConnected);
        }
        if data.is_empty() || data.len() > MAX_RECORD_PLAINTEXT {
            return Err(DtlsSendError::BadSize);
        }
        let result = self.stream.ssl_write(data);
        self.collect_output();
        match result {
            Ok(n) if n == data.len() => Ok(()),
            _ => Err(DtlsSendError::WriteFailed),
        }
    }

    /// Closes the association: sends close_notify when connected. No event is
    /// reported for a local close; all further input is ignored.
    pub fn close(&mut self, _now: Instant) {
        match self.state {
            DtlsState::Connected => {
                // The result only says whether the peer's close_notify arrived
                // already; either way ours is written.
                let _ = self.stream.shutdown();
                self.collect_output();
            }
            DtlsState::New | DtlsState::Handshaking => {}
            DtlsState::Closed | DtlsState::Failed => return,
        }
        self.state = DtlsState::Closed;
        self.stop_timers();
    }

    /// The next datagram to send to the peer, valid until the next call on
    /// this endpoint. Call until `None` after every input.
    pub fn poll_transmit(&mut self) -> Option<&[u8]> {
        let next = self.transmit.pop_front()?;
        self.current_transmit = next;
        Some(&self.current_transmit)
    }

    /// The next event. Call until `None` after every input.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// The next received application-data record (e.g. an SCTP packet). Call
    /// until `None` after every `handle_datagram`.
    pub fn poll_application_data(&mut self) -> Option<Vec<u8>> {
        self.application_data.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next;
    /// `None` while no timer runs (connected, closed, failed or not started).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != DtlsState::Handshaking {
            return None;
        }
        match (self.retransmit.at, self.handshake_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Our role.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// The current state.
    pub fn state(&self) -> DtlsState {
        self.state
    }

    /// Counters.
    pub fn stats(&self) -> DtlsStats {
        self.stats
    }

    /// Whether a record of a protected epoch is too short to hold the AEAD
    /// nonce and tag. OpenSSL 3.0 answers such a record with a fatal internal
    /// error instead of discarding it as RFC 6347 §4.1.2.7 asks, so it never
    /// gets to see one.
    fn has_short_protected_record(&self, datagram: &[u8]) -> bool {
        let min_len = match self.stream.ssl().current_cipher() {
            Some(cipher) if cipher.name().contains("CHACHA20") => MIN_CHACHA_RECORD,
            Some(_) => MIN_GCM_RECORD,
            // Not yet known to OpenSSL's API during the handshake: the smallest
            // overhead of the allowed suites. Plaintext epoch-0 alerts can end
            // a handshake anyway.
            None => MIN_CHACHA_RECORD,
        };
        let mut rest = datagram;
        while let Some(header) = rest.get(..RECORD_HEADER_LEN) {
            // `header` has RECORD_HEADER_LEN bytes.
            let epoch = u16::from_be_bytes([header[3], header[4]]);
            let len = usize::from(u16::from_be_bytes([header[11], header[12]]));
            if epoch != 0 && len != 0 && len < min_len {
                return true;
            }
            rest = rest.get(RECORD_HEADER_LEN + len..).unwrap_or_default();
        }
        false
    }

    /// Runs the OpenSSL handshake as far as the buffered input allows.
    fn drive_handshake(&mut self) {
        match self.stream.do_handshake() {
            Ok(()) => self.finish_handshake(),
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {}
            Err(_) => {
                let failure = self.classify_handshake_error();
                self.fail(failure);
            }
        }
    }

    fn classify_handshake_error(&self) -> DtlsFailure {
        let verify = self.stream.ssl().verify_result();
        if verify == X509VerifyResult::APPLICATION_VERIFICATION {
            DtlsFailure::FingerprintMismatch
        } else if matches!(
            verify.as_raw(),
            X509_V_ERR_CERT_NOT_YET_VALID | X509_V_ERR_CERT_HAS_EXPIRED
        ) {
            DtlsFailure::CertificateInvalid
        } else {
            DtlsFailure::Handshake
        }
    }

    /// Checks the peer, exports the keys and reports `Connected`.
    fn finish_handshake(&mut self) {
        match self.export_keys() {
            Ok(keys) => {
                self.state = DtlsState::Connected;
                self.events.push_back(DtlsEvent::Connected(keys));
                // Records that followed the Finished in the same datagram.
                self.drive_read();
            }
            Err(failure) => {
                // Tell the peer; the handshake itself succeeded, so the only
                // alert we can still send is close_notify.
                let _ = self.stream.shutdown();
                self.fail(failure);
            }
        }
    }

    fn export_keys(&self) -> Result<DtlsSrtpKeys, DtlsFailure> {
        let ssl = self.stream.ssl();
        // The verify callback already pinned the certificate; check again
        // against the negotiated session's certificate.
        let Some(peer) = ssl.peer_certificate() else {
            return Err(DtlsFailure::CertificateInvalid);
        };
        if !self.remote_fingerprint.matches(&peer) {
            return Err(DtlsFailure::FingerprintMismatch);
        }
        let profile = ssl
            .selected_srtp_profile()
            .and_then(|p| profile_from_openssl(p.id()))
            .ok_or(DtlsFailure::NoSrtpProfile)?;
        let (key_len, salt_len) = (profile.key_len(), profile.salt_len());
        let mut material = [0u8; 2 * (32 + 14)];
        let material = &mut material[..2 * (key_len + salt_len)];
        ssl.export_keying_material(material, SRTP_EXPORTER_LABEL, None)
            .map_err(|_| DtlsFailure::KeyExport)?;
        // RFC 5764 §4.2: client key | server key | client salt | server salt.
        let (client_key, rest) = material.split_at(key_len);
        let (server_key, rest) = rest.split_at(key_len);
        let (client_salt, server_salt) = rest.split_at(salt_len);
        let client = SrtpKeyMaterial::new(client_key, client_salt).ok_or(DtlsFailure::KeyExport)?;
        let server = SrtpKeyMaterial::new(server_key, server_salt).ok_or(DtlsFailure::KeyExport)?;
        let (local, remote) = match self.role {
            DtlsRole::Client => (client, server),
            DtlsRole::Server => (server, client),
        };
        Ok(DtlsSrtpKeys {
            profile,
            local,
            remote,
        })
    }

    /// Reads application data after the handshake until OpenSSL wants input.
    fn drive_read(&mut self) {
        while self.state == DtlsState::Connected {
            match self.stream.ssl_read(&mut self.read_buf) {
                Ok(n) => {
                    if self.application_data.len() >= MAX_QUEUED_APPLICATION_DATA {
                        self.stats.application_data_dropped += 1;
                    } else {
                        // `ssl_read` returns at most the buffer's length.
                        self.application_data.push_back(self.read_buf[..n].to_vec());
                    }
                }
                Err(e) => match e.code() {
                    ErrorCode::WANT_READ | ErrorCode::WANT_WRITE => break,
                    ErrorCode::ZERO_RETURN => {
                        // Answer the peer's close_notify with ours.
                        let _ = self.stream.shutdown();
                        self.state = DtlsState::Closed;
                        self.stop_timers();
                        self.events.push_back(DtlsEvent::Closed);
                    }
                    _ => self.fail(DtlsFailure::Protocol),
                },
            }
        }
    }

    /// Queues what OpenSSL wrote during the handshake and treats it as the new
    /// flight. `fresh` marks a flight caused by peer input or start (timer
    /// reset); otherwise it is OpenSSL's own retransmission. Returns whether
    /// anything was written.
    fn collect_flight(&mut self, now: Instant, fresh: bool) -> bool {
        let records = std::mem::take(&mut self.stream.get_mut().outgoing);
        if records.is_empty() {
            if self.state == DtlsState::Connected {
                // We completed on the peer's final flight: nothing to repeat.
                self.retransmit.flight.clear();
                self.retransmit.at = None;
            }
            return false;
        }
        let datagrams = pack_records(records, self.mtu);
        self.stats.datagrams_sent += datagrams.len() as u64;
        self.transmit.extend(datagrams.iter().cloned());
        match self.state {
            DtlsState::Handshaking => {
                if fresh {
                    self.retransmit.rto = INITIAL_RTO;
                }
                self.retransmit.flight = datagrams;
                self.retransmit.at = Some(now + self.retransmit.rto);
            }
            DtlsState::Connected => {
                // We sent the final flight (server in a full handshake): keep it
                // to answer the peer's retransmission.
                self.retransmit.flight = datagrams;
                self.retransmit.at = None;
                self.final_flight_until = Some(now + FINAL_FLIGHT_HOLD);
                self.final_flight_resends = FINAL_FLIGHT_MAX_RESENDS;
            }
            DtlsState::New | DtlsState::Closed | DtlsState::Failed => {}
        }
        true
    }

    /// Queues what OpenSSL wrote outside the handshake. Returns whether
    /// anything was written.
    fn collect_output(&mut self) -> bool {
        let records = std::mem::take(&mut self.stream.get_mut().outgoing);
        if records.is_empty() {
            return false;
        }
        let datagrams = pack_records(records, self.mtu);
        self.stats.datagrams_sent += datagrams.len() as u64;
        self.transmit.extend(datagrams);
        true
    }

    /// After the handshake, a peer that repeats handshake records did not get
    /// our final flight: send it again (RFC 6347 §4.2.4).
    fn answer_retransmission(&mut self, now: Instant, datagram: &[u8]) {
        let is_handshake = matches!(
            datagram.first(),
            Some(&(CONTENT_TYPE_HANDSHAKE | CONTENT_TYPE_CHANGE_CIPHER_SPEC))
        );
        let holding = self.final_flight_until.is_some_and(|until| now < until)
            && self.final_flight_resends > 0
            && !self.retransmit.flight.is_empty();
        if is_handshake && holding && self.state == DtlsState::Connected {
            self.final_flight_resends -= 1;
            self.stats.retransmissions += 1;
            self.resend_flight();
        }
    }

    fn resend_flight(&mut self) {
        self.stats.datagrams_sent += self.retransmit.flight.len() as u64;
        self.transmit.extend(self.retransmit.flight.iter().cloned());
    }

    fn fail(&mut self, failure: DtlsFailure) {
        self.state = DtlsState::Failed;
        self.stop_timers();
        self.events.push_back(DtlsEvent::Failed(failure));
    }

    fn stop_timers(&mut self) {
        self.handshake_deadline = None;
        self.retransmit.at = None;
        self.retransmit.flight.clear();
        self.final_flight_until = None;
    }
}

impl fmt::Debug for DtlsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsEndpoint")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Packs records into datagrams of at most `mtu` bytes, in order (RFC 6347
/// §4.1.1 allows several records per datagram). A record larger than `mtu`
/// travels alone.
fn pack_records(records: Vec<Vec<u8>>, mtu: usize) -> Vec<Vec<u8>> {
    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    for record in records {
        match datagrams.last_mut() {
            Some(last) if last.len() + record.len() <= mtu => last.extend_from_slice(&record),
            _ => datagrams.push(record),
        }
    }
    datagrams
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// Two certificates (generation is the slow part), made once per test run.
    fn certs() -> &'static (DtlsCert, DtlsCert) {
        static CERTS: OnceLock<(DtlsCert, DtlsCert)> = OnceLock::new();
        CERTS.get_or_init(|| {
            let now = SystemTime::now();
            (
                DtlsCert::generate(now).expect("certificate generation works"),
                DtlsCert::generate(now).expect("certificate generation works"),
            )
        })
    }

    fn sha256(cert: &DtlsCert) -> Fingerprint {
        *cert.fingerprint()
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Dir {
        ToServer,
        ToClient,
    }

    /// Client and server endpoints joined by a simulated link.
    struct Link {
        client: DtlsEndpoint,
        server: DtlsEndpoint,
        start: Instant,
        now: Instant,
        client_events: Vec<(Instant, DtlsEvent)>,
        server_events: Vec<(Instant, DtlsEvent)>,
        sent_to_server: usize,
        sent_to_client: usize,
        max_datagram: usize,
    }

    impl Link {
        fn new(client_ctx: &DtlsContext, server_ctx: &DtlsContext) -> Self {
            let (client_cert, server_cert) = certs();
            Self::with_fingerprints(
                client_ctx,
                server_ctx,
                sha256(server_cert),
                sha256(client_cert),
            )
        }

        /// `client_expects` is what the client pins for the server, and vice
        /// versa.
        fn with_fingerprints(
            client_ctx: &DtlsContext,
            server_ctx: &DtlsContext,
            client_expects: Fingerprint,
            server_expects: Fingerprint,
        ) -> Self {
            let start = Instant::now();
            Self {
                client: DtlsEndpoint::new(client_ctx, DtlsRole::Client, client_expects)
                    .expect("endpoint"),
                server: DtlsEndpoint::new(server_ctx, DtlsRole::Server, server_expects)
                    .expect("endpoint"),
                start,
                now: start,
                client_events: Vec::new(),
                server_events: Vec::new(),
                sent_to_server: 0,
                sent_to_client: 0,
                max_datagram: 0,
            }
        }

        fn start(&mut self) {
            self.server.start(self.now);
            self.client.start(self.now);
        }

        /// Moves datagrams and fires timers until both sides are idle or
        /// `limit` of simulated time has passed. `drop` sees every datagram
        /// with its direction and per-direction index and returns true to lose
        /// it.
        fn run(&mut self, limit: Duration, drop: &mut dyn FnMut(Dir, usize, &[u8]) -> bool) {
            loop {
                let mut to_server = Vec::new();
                while let Some(d) = self.client.poll_transmit() {
                    let d = d.to_vec();
                    self.max_datagram = self.max_datagram.max(d.len());
                    if !drop(Dir::ToServer, self.sent_to_server, &d) {
                        to_server.push(d);
                    }
                    self.sent_to_server += 1;
                }
                let mut to_client = Vec::new();
                while let Some(d) = self.server.poll_transmit() {
                    let d = d.to_vec();
                    self.max_datagram = self.max_datagram.max(d.len());
                    if !drop(Dir::ToClient, self.sent_to_client, &d) {
                        to_client.push(d);
                    }
                    self.sent_to_client += 1;
                }
                let moved = !to_server.is_empty() || !to_client.is_empty();
                for d in &to_server {
                    self.server.handle_datagram(self.now, d);
                }
                for d in &to_client {
                    self.client.handle_datagram(self.now, d);
                }
                self.collect_events();
                if moved {
                    continue;
                }
                let next = match (self.client.poll_timeout(), self.server.poll_timeout()) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(a), None) | (None, Some(a)) => a,
                    (None, None) => return,
                };
                if next > self.start + limit {
                    return;
                }
                self.now = self.now.max(next);
                self.client.handle_timeout(self.now);
                self.server.handle_timeout(self.now);
                self.collect_events();
            }
        }

        fn run_clean(&mut self) {
            self.run(Duration::from_secs(60), &mut |_, _, _| false);
        }

        fn collect_events(&mut self) {
            while let Some(e) = self.client.poll_event() {
                self.client_events.push((self.now, e));
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push((self.now, e));
            }
        }

        fn keys(events: &[(Instant, DtlsEvent)]) -> Option<&DtlsSrtpKeys> {
            events.iter().find_map(|(_, e)| match e {
                DtlsEvent::Connected(keys) => Some(keys),
                _ => None,
            })
        }

        fn failure(events: &[(Instant, DtlsEvent)]) -> Option<DtlsFailure> {
            events.iter().find_map(|(_, e)| match e {
                DtlsEvent::Failed(f) => Some(*f),
                _ => None,
            })
        }

        fn assert_connected(&self) -> (DtlsSrtpKeys, DtlsSrtpKeys) {
            assert_eq!(
                self.client.state(),
                DtlsState::Connected,
                "{:?}",
                self.client_events
            );
            assert_eq!(
                self.server.state(),
                DtlsState::Connected,
                "{:?}",
                self.server_events
            );
            let client = Self::keys(&self.client_events).expect("client connected event");
            let server = Self::keys(&self.server_events).expect("server connected event");
            assert_eq!(self.client_events.len(), 1);
            assert_eq!(self.server_events.len(), 1);
            (client.clone(), server.clone())
        }
    }

    fn context(cert: &DtlsCert, config: &DtlsConfig) -> DtlsContext {
        DtlsContext::new(cert, config).expect("context")
    }

    fn default_contexts() -> (DtlsContext, DtlsContext) {
        let (client_cert, server_cert) = certs();
        let config = DtlsConfig::default();
        (context(client_cert, &config), context(server_cert, &config))
    }

    /// Deterministic xorshift for garbage.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bytes(&mut self, max_len: usize) -> Vec<u8> {
            let len = (self.next() as usize) % (max_len + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn handshake_exports_mirrored_keys() {
        let (c, s) = default_contexts();
        let mut link = Link::new(&c, &s);
        link.start();
        assert!(link.client.poll_timeout().is_some(), "client armed a timer");
        link.run_clean();
        let (client, server) = link.assert_connected();
        // Server preference, both offer all: AEAD_AES_256_GCM.
        assert_eq!(client.profile, SrtpProfile::AeadAes256Gcm);
        assert_eq!(server.profile, client.profile);
        assert_eq!(client.local, server.remote);
        assert_eq!(client.remote, server.local);
        assert_ne!(client.local, client.remote);
        assert_eq!(client.local.key().len(), 32);
        assert_eq!(client.local.salt().len(), 12);
        assert!(link.max_datagram <= usize::from(DEFAULT_MTU));
        assert_eq!(link.now, link.start, "no timer needed on a clean link");
        assert_eq!(link.client.poll_timeout(), None);
        assert_eq!(link.server.poll_timeout(), None);
        assert_eq!(link.client.stats().retransmissions, 0);
        assert_eq!(link.server.stats().retransmissions, 0);
    }

    #[test]
    fn server_preference_picks_profile() {
        let (client_cert, server_cert) = certs();
        let client = context(client_cert, &DtlsConfig::default());
        for (server_profiles, expected) in [
            (
                vec![SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80],
                SrtpProfile::AeadAes128Gcm,
            ),
            (
                vec![SrtpProfile::Aes128CmSha1_80],
                SrtpProfile::Aes128CmSha1_80,
            ),
            (
                vec![SrtpProfile::Aes128CmSha1_32],
                SrtpProfile::Aes128CmSha1_32,
            ),
        ] {
            let server = context(
                server_cert,
                &DtlsConfig {
                    srtp_profiles: server_profiles,
                    ..DtlsConfig::default()
                },
            );
            let mut link = Link::new(&client, &server);
            link.start();
            link.run_clean();
            let (c, s) = link.assert_connected();
            assert_eq!(c.profile, expected);
            assert_eq!(s.profile, expected);
            assert_eq!(c.local.key().len(), expected.key_len());
            assert_eq!(c.local.salt().len(), expected.salt_len());
            assert_eq!(c.local, s.remote);
            assert_eq!(c.remote, s.local);
        }
    }

    #[test]
    fn no_common_profile_fails() {
        let (client_cert, server_cert) = certs();
        let only = |p| DtlsConfig {
            srtp_profiles: vec![p],
            ..DtlsConfig::default()
        };
        let client = context(client_cert, &only(SrtpProfile::Aes128CmSha1_80));
        let server = context(server_cert, &only(SrtpProfile::AeadAes128Gcm));
        let mut link = Link::new(&client, &server);
        link.start();
        link.run_clean();
        // OpenSSL completes without use_srtp when nothing matches; we refuse.
        assert_eq!(
            Link::failure(&link.client_events),
            Some(DtlsFailure::NoSrtpProfile)
        );
        assert_ne!(link.server.state(), DtlsState::Connected);
    }

    #[test]
    fn small_mtu_fragments_flights() {
        let (client_cert, server_cert) = certs();
        let config = DtlsConfig {
            mtu: 300,
            ..DtlsConfig::default()
        };
        let mut link = Link::new(
            &context(client_cert, &config),
            &context(server_cert, &config),
        );
        link.start();
        link.run_clean();
        link.assert_connected();
        assert!(link.max_datagram <= 300, "max {}", link.max_datagram);
        assert!(link.sent_to_client >= 3, "certificate flight was split");
    }

    #[test]
    fn lost_client_hello_is_retransmitted() {
        let (c, s) = default_contexts();
        let mut link = Link::new(&c, &s);
        link.start();
        link.run(Duration::from_secs(60), &mut |dir, i, _| {
            dir == Dir::ToServer && i == 0
        });
        link.assert_connected();
        assert_eq!(
            link.now - link.start,
            INITIAL_RTO,
            "recovered at the first timeout"
        );
        assert_eq!(link.client.stats().retransmissions, 1);
    }

    #[test]
    fn lost_flights_recover_with_backoff() {
        let (c, s) = default_contexts();
        let mut link = Link::new(&c, &s);
        link.start();
        // Lose the ClientHello twice and the server's first flight once.
        link.run(Duration::from_secs(60), &mut |dir, i, _| match dir {
            Dir::ToServer => i < 2,
            Dir::ToClient => i == 0,
        });
        link.assert_connected();
        // 1 s, then 2 s for the ClientHello; the server's retransmission
        // after 1 s more.
        assert_eq!(link.now - link.start, Duration::from_secs(4));
        assert!(link.client.stats().retransmissions >= 2);
        assert!(link.server.stats().retransmissions >= 1);
    }

    #[test]
    fn lost_final_flight_is_answered_after_connect() {
        let (c, s) = default_contexts();
        let mut link = Link::new(&c, &s);
        link.start();
        let mut dropped_after_connect = 0;
        link.run(Duration::from_secs(60), &mut |dir, i, _| {
            // The server's second datagram is its ChangeCipherSpec + Finished.
            let drop = dir == Dir::ToClient && i == 1;
            dropped_after_connect += usize::from(drop);
            drop
        });
        assert_eq!(dropped_after_connect, 1);
        link.assert_connected();
        assert_eq!(link.client.stats().retransmissions, 1);
        assert_eq!(
            link.server.stats().retransmissions,
            1,
            "server answered the repeated flight with its final flight"
        );
    }

    #[test]
    fn handshake_times_out_with_doubling_timer() {
        let (c, _) = default_contexts();
        let (_, server_cert) = certs();
        let mut client =
            DtlsEndpoint::new(&c, DtlsRole::Client, sha256(server_cert)).expect("endpoint");
        let start = Instant::now();
        client.start(start);
        let mut sent_at = Vec::new();
        let mut now = start;
        loop {
            while client.poll_transmit().is_some() {
                sent_at.push(now - start);
            }
            let Some(next) = client.poll_timeout() else {
                break;
            };
            now = next;
            client.handle_timeout(now);
        }
        let secs = |s| Duration::from_secs(s);
        assert_eq!(sent_at, [secs(0), secs(1), secs(3), secs(7), secs(15)]);
        assert_eq!(now - start, DEFAULT_HANDSHAKE_TIMEOUT);
        assert_eq!(
            client.poll_event(),
            Some(DtlsEvent::Failed(DtlsFailure::Timeout))
        );
        assert_eq!(client.state(), DtlsState::Failed);
        assert_eq!(DtlsFailure::Timeout.hangup_reason(), "DTLS timeout");
        // A failed endpoint ignores input.
        client.handle_datagram(now, &[22, 0xfe, 0xfd]);
        assert_eq!(client.stats().datagrams_ignored, 1);
        assert!(client.poll_transmit().is_none());
    }

    #[test]
    fn idle_server_times_out() {
        let (_, s) = default_contexts();
        let (client_cert, _) = certs();
        let mut server =
            DtlsEndpoint::new(&s, DtlsRole::Server, sha256(client_cert)).expect("endpoint");
        let start = Instant::now();
        assert_eq!(server.poll_timeout(), None, "not started");
        server.start(start);
        assert!(server.poll_transmit().is_none(), "a server waits");
        let deadline = server.poll_timeout().expect("deadline armed");
        assert_eq!(deadline - start, DEFAULT_HANDSHAKE_TIMEOUT);
        server.handle_timeout(deadline - Duration::from_millis(1));
        assert_eq!(server.poll_event(), None);
        server.handle_timeout(deadline);
        assert_eq!(
            server.poll_event(),
            Some(DtlsEvent::Failed(DtlsFailure::Timeout))
        );
    }

    #[test]
    fn client_detects_server_fingerprint_mismatch() {
        let (c, s) = default_contexts();
        let (client_cert, _) = certs();
        // The client pins its own certificate instead of the server's.
        let mut link = Link::with_fingerprints(&c, &s, sha256(client_cert), sha256(client_cert));
        link.start();
        link.run_clean();
        assert_eq!(
            Link::failure(&link.client_events),
            Some(DtlsFailure::FingerprintMismatch)
        );
        // The client's alert fails the server too.
        assert_eq!(
            Link::failure(&link.server_events),
            Some(DtlsFailure::Handshake)
        );
        assert!(Link::keys(&link.client_events).is_none());
        assert!(Link::keys(&link.server_events).is_none());
        assert_eq!(
            DtlsFailure::FingerprintMismatch.hangup_reason(),
            "DTLS alert"
        );
    }

    #[test]
    fn server_detects_client_fingerprint_mismatch() {
        let (c, s) = default_contexts();
        let (_, server_cert) = certs();
        let mut link = Link::with_fingerprints(&c, &s, sha256(server_cert), sha256(server_cert));
        link.start();
        link.run_clean();
        assert_eq!(
            Link::failure(&link.server_events),
            Some(DtlsFailure::FingerprintMismatch)
        );
        assert_eq!(
            Link::failure(&link.client_events),
            Some(DtlsFailure::Handshake)
        );
        assert!(Link::keys(&link.server_events).is_none());
    }

    #[test]
    fn sha1_fingerprint_is_accepted() {
        let (c, s) = default_contexts();
        let (client_cert, server_cert) = certs();
        let der = |cert: &DtlsCert| cert.cert.to_der().expect("der");
        let client_sha1 =
            Fingerprint::of_certificate_der(HashAlgorithm::Sha1, &der(client_cert)).expect("fp");
        let server_sha512 =
            Fingerprint::of_certificate_der(HashAlgorithm::Sha512, &der(server_cert)).expect("fp");
        let mut link = Link::with_fingerprints(&c, &s, server_sha512, client_sha1);
        link.start();
        link.run_clean();
        link.assert_connected();
    }

    #[test]
    fn expired_certificate_is_refused() {
        let (c, _) = default_contexts();
        let (client_cert, _) = certs();
        let three_years = Duration::from_secs(3 * 365 * 24 * 60 * 60);
        let old = DtlsCert::generate(SystemTime::now() - three_years).expect("cert");
        let s = context(&old, &DtlsConfig::default());
        let mut link = Link::with_fingerprints(&c, &s, sha256(&old), sha256(client_cert));
        link.start();
        link.run_clean();
        assert_eq!(
            Link::failure(&link.client_events),
            Some(DtlsFailure::CertificateInvalid)
        );
    }

    #[test]
    fn garbage_is_dropped_without_panic() {
        let (c, s) = default_contexts();
        let mut link = Link::new(&c, &s);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let now = link.now;
        // Before start: random bytes do not start or break a server.
        for _ in 0..50 {
            let g = rng.bytes(1500);
            link.server.handle_datagram(now, &g);
        }
        assert_eq!(
            link.server.state(),
            DtlsState::Handshaking,
            "implicit start"
        );
        link.client.start(now);
        // During the handshake: garbage before every real datagram, on both
        // sides, including record-shaped garbage with a wrong version.
        let mut garbage = Rng(7);
        let mut inject = |ep: &mut DtlsEndpoint, now| {
            for _ in 0..3 {
                let mut g = garbage.bytes(1300);
                if g.len() >= 13 && garbage.next() & 1 == 0 {
                    g[0] = 22;
                    g[1] = 0x01;
                }
                ep.handle_datagram(now, &g);
                ep.handle_datagram(now, &[]);
                ep.handle_datagram(now, &[23]);
            }
        };
        for _ in 0..20 {
            let now = link.now;
            inject(&mut link.server, now);
            inject(&mut link.client, now);
            link.run(Duration::from_secs(60), &mut |_, _, _| false);
            if link.client.state() == DtlsState::Connected {
                break;
            }
        }
        link.assert_connected();
        // After the handshake: random data and well-formed epoch-1
        // application-data records with garbage ciphertext are discarded.
        for i in 0..200u16 {
            let mut record = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0x10, i as u8];
            let body = rng.bytes(200);
            record.extend_from_slice(&(body.len() as u16).to_be_bytes());
            record.extend_from_slice(&body);
            link.server.handle_datagram(link.now, &record);
            link.client.handle_datagram(link.now, &rng.bytes(1500));
            // Truncated copies of a real protected record.
            link.client
                .send_application_data(b"truncate me")
                .expect("send");
            let real = link.client.poll_transmit().expect("record").to_vec();
            let cut = (rng.next() as usize) % real.len();
            link.server.handle_datagram(link.now, &real[..cut]);
        }
        assert_eq!(link.server.state(), DtlsState::Connected);
        assert_eq!(link.client.state(), DtlsState::Connected);
        assert!(link.server.poll_application_data().is_none());
        // And the association still carries data.
        link.client
            .send_application_data(b"still alive")
            .expect("send");
        link.run_clean();
        assert_eq!(
            link.server.poll_application_data().as_deref(),
            Some(&b"still alive"[..])
        );
    }

    #[test]
    fn short_forged_records_are_discarded() {
        let (c, s) = default_contexts();
        let mut link = Link::new(&c, &s);
        link.start();
        link.run_clean();
        link.assert_connected();
        // Epoch-1 records of every length up to the AES-GCM overhead, alone
        // and behind a valid-looking epoch-0 record in the same datagram.
        for len in 1..=MIN_GCM_RECORD + 8 {
            let mut record = vec![23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0x20, len as u8];
            record.extend_from_slice(&(len as u16).to_be_bytes());
            record.extend(std::iter::repeat_n(0x42, len));
            let mut pair = vec![21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0x30, 0, 0, 2, 1, 0];
            pair.extend_from_slice(&record);
            link.server.handle_datagram(link.now, &record);
            link.client.handle_datagram(link.now, &pair);
            assert_eq!(link.server.state(), DtlsState::Connected, "len {len}");
            assert_eq!(link.client.state(), DtlsState::Connected, "len {len}");
        }
        assert_eq!(
            link.server.stats().datagrams_discarded,
            (MIN_GCM_RECORD - 1) as u64
        );
        link.client.send_application_data(b"ping").expect("send");
        link.server.send_application_data(b"pong").expect("send");
        link.run_clean();
        assert_eq!(
            link.server.poll_application_data().as_deref(),
            Some(&b"ping"[..])
        );
        assert_eq!(
            link.client.poll_application_data().as_deref(),
            Some(&b"pong"[..])
        );
    }

    #[test]
    fn random_input_never_panics() {
        let (c, s) = default_contexts();
        let (client_cert, server_cert) = certs();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let start = Instant::now();
        for round in 0..200 {
            let (ctx, role, fp) = if round % 2 == 0 {
                (&s, DtlsRole::Server, sha256(client_cert))
            } else {
                (&c, DtlsRole::Client, sha256(server_cert))
            };
            let mut ep = DtlsEndpoint::new(ctx, role, fp).expect("endpoint");
            for step in 0..10u32 {
                let mut g = rng.bytes(400);
                // Make most of them look like DTLS 1.2 / 1.0 handshake records.
                if g.len() >= 13 && rng.next() & 3 != 0 {
                    g[0] = 22;
                    g[1] = 0xfe;
                    g[2] = if rng.next() & 1 == 0 { 0xfd } else { 0xff };
                    g[3] = 0;
                    g[4] = 0;
                    let len = (g.len() - 13) as u16;
                    g[11..13].copy_from_slice(&len.to_be_bytes());
                }
                let now = start + Duration::from_millis(u64::from(step) * 300);
                ep.handle_datagram(now, &g);
                ep.handle_timeout(now);
                while ep.poll_transmit().is_some() {}
                while let Some(event) = ep.poll_event() {
                    assert!(
                        matches!(event, DtlsEvent::Failed(_)),
                        "garbage cannot connect: {event:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn close_notify_reaches_the_peer() {
        let (c, s) = default_contexts();
        let mut link = Link::new(&c, &s);
        link.start();
        link.run_clean();
        link.assert_connected();
        let now = link.now;
        link.client.close(now);
        assert_eq!(link.client.state(), DtlsState::Closed);
        assert_eq!(
            link.client.send_application_data(b"x"),
            Err(DtlsSendError::NotConnected)
        );
        link.run_clean();
        assert_eq!(link.server.state(), DtlsState::Closed);
        assert_eq!(
            link.server_events.last().map(|(_, e)| e),
            Some(&DtlsEvent::Closed)
        );
        // The server's answering close_notify is ignored by the closed client.
        assert!(link.client.stats().datagrams_ignored >= 1);
        assert_eq!(link.client_events.len(), 1, "no event for a local close");
    }

    #[test]
    fn server_close_reaches_the_client() {
        let (c, s) = default_contexts();
        let mut link = Link::new(&c, &s);
        link.start();
        link.run_clean();
        link.assert_connected();
        let now = link.now;
        link.server.close(now);
        link.run_clean();
        assert_eq!(
            link.client_events.last().map(|(_, e)| e),
            Some(&DtlsEvent::Closed)
        );
    }

    #[test]
    fn application_data_both_ways() {
        let (c, s) = default_contexts();
        let mut link = Link::new(&c, &s);
        link.start();
        assert_eq!(
            link.client.send_application_data(b"early"),
            Err(DtlsSendError::NotConnected)
        );
        link.run_clean();
        link.assert_connected();
        assert_eq!(
            link.client.send_application_data(&[]),
            Err(DtlsSendError::BadSize)
        );
        let big = vec![0x5a; 1100];
        link.client.send_application_data(&big).expect("send");
        link.server.send_application_data(b"pong").expect("send");
        link.run_clean();
        assert_eq!(link.server.poll_application_data(), Some(big));
        assert_eq!(link.server.poll_application_data(), None);
        assert_eq!(
            link.client.poll_application_data().as_deref(),
            Some(&b"pong"[..])
        );
    }

    #[test]
    fn fingerprint_parse_and_format() {
        let text = "sha-256 01:23:45:67:89:ab:CD:EF:01:23:45:67:89:AB:CD:EF:\
                    01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF";
        let fp = Fingerprint::parse_attribute(text).expect("valid");
        assert_eq!(fp.algorithm(), HashAlgorithm::Sha256);
        assert_eq!(fp.digest()[..4], [0x01, 0x23, 0x45, 0x67]);
        assert_eq!(
            fp.to_attribute_value(),
            "sha-256 01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:\
             01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"
        );
        // Case-insensitive: upper-case hash name and hex parse equal.
        let upper = Fingerprint::parse_attribute(&text.to_ascii_uppercase()).expect("valid");
        assert_eq!(upper, fp);
        assert_eq!(
            Fingerprint::parse("md5", "00"),
            Err(FingerprintError::UnknownAlgorithm)
        );
        assert_eq!(
            Fingerprint::parse("sha-1", "00:11"),
            Err(FingerprintError::WrongLength)
        );
        assert_eq!(
            Fingerprint::parse("sha-1", "0g:11"),
            Err(FingerprintError::Malformed)
        );
        assert_eq!(
            Fingerprint::parse("sha-1", "001:1"),
            Err(FingerprintError::Malformed)
        );
        assert_eq!(
            Fingerprint::parse("sha-1", ""),
            Err(FingerprintError::Malformed)
        );
        let long = vec!["AA"; 65].join(":");
        assert_eq!(
            Fingerprint::parse("sha-512", &long),
            Err(FingerprintError::WrongLength)
        );
        assert_eq!(
            Fingerprint::parse_attribute("sha-256"),
            Err(FingerprintError::Malformed)
        );
        assert_eq!(
            Fingerprint::parse_attribute("sha-256 AA BB"),
            Err(FingerprintError::Malformed)
        );
    }

    #[test]
    fn generated_certificate_shape() {
        let (a, b) = certs();
        let sdp = a.fingerprint_sdp();
        assert_eq!(sdp.len(), 32 * 3 - 1);
        assert!(sdp.split(':').all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        }));
        assert_eq!(
            Fingerprint::parse("sha-256", sdp).as_ref(),
            Ok(a.fingerprint())
        );
        assert_ne!(a.fingerprint(), b.fingerprint());
        let der = a.cert.to_der().expect("der");
        assert_eq!(
            &Fingerprint::of_certificate_der(HashAlgorithm::Sha256, &der).expect("fp"),
            a.fingerprint()
        );
        assert_eq!(a.cert.version(), 2, "X.509 v3");
        assert_ne!(
            a.cert.serial_number().to_bn().expect("bn"),
            b.cert.serial_number().to_bn().expect("bn")
        );
        let cn = a
            .cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .expect("CN")
            .data()
            .to_string()
            .expect("CN is text");
        assert_eq!(cn, "jsfu");
        assert_eq!(
            a.cert.signature_algorithm().object().nid(),
            Nid::ECDSA_WITH_SHA256
        );
        let key = a.cert.public_key().expect("key").ec_key().expect("EC key");
        assert_eq!(key.group().curve_name(), Some(Nid::X9_62_PRIME256V1));
        // Valid now, from about a year ago to about a year ahead.
        let now = Asn1Time::days_from_now(0).expect("time");
        let before = a.cert.not_before().diff(&now).expect("diff");
        let after = now.diff(a.cert.not_after()).expect("diff");
        assert!((364..=366).contains(&before.days), "{before:?}");
        assert!((364..=366).contains(&after.days), "{after:?}");
    }

    #[test]
    fn pem_round_trip_and_key_check() {
        let (a, b) = certs();
        let (cert_pem, key_pem) = a.to_pem().expect("pem");
        let loaded = DtlsCert::from_pem(&cert_pem, &key_pem).expect("load");
        assert_eq!(loaded.fingerprint(), a.fingerprint());
        let (_, other_key) = b.to_pem().expect("pem");
        assert!(matches!(
            DtlsCert::from_pem(&cert_pem, &other_key),
            Err(DtlsError::KeyMismatch)
        ));
        assert!(matches!(
            DtlsCert::from_pem(b"junk", &key_pem),
            Err(DtlsError::OpenSsl(_))
        ));
        let dir = std::env::temp_dir().join(format!("jsfu-dtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, &cert_pem).expect("write");
        std::fs::write(&key_path, &key_pem).expect("write");
        let from_files = DtlsCert::from_pem_files(&cert_path, &key_path).expect("load files");
        assert_eq!(from_files.fingerprint(), a.fingerprint());
        assert!(matches!(
            DtlsCert::from_pem_files(&dir.join("missing.pem"), &key_path),
            Err(DtlsError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn config_is_validated() {
        let (a, _) = certs();
        let no_profiles = DtlsConfig {
            srtp_profiles: Vec::new(),
            ..DtlsConfig::default()
        };
        assert!(matches!(
            DtlsContext::new(a, &no_profiles),
            Err(DtlsError::NoSrtpProfiles)
        ));
        let tiny = DtlsConfig {
            mtu: 100,
            ..DtlsConfig::default()
        };
        assert!(matches!(
            DtlsContext::new(a, &tiny),
            Err(DtlsError::BadMtu(100))
        ));
    }

    #[test]
    fn roles_follow_media_spec_table() {
        assert_eq!(DtlsRole::answering(Some("actpass")), Some(DtlsRole::Client));
        assert_eq!(DtlsRole::answering(None), Some(DtlsRole::Client));
        assert_eq!(DtlsRole::answering(Some("passive")), Some(DtlsRole::Client));
        assert_eq!(DtlsRole::answering(Some("ACTIVE")), Some(DtlsRole::Server));
        assert_eq!(DtlsRole::answering(Some("holdconn")), None);
        assert_eq!(DtlsRole::from_answer("active"), Some(DtlsRole::Server));
        assert_eq!(DtlsRole::from_answer("passive"), Some(DtlsRole::Client));
        assert_eq!(DtlsRole::from_answer("actpass"), None);
        assert_eq!(DtlsRole::Client.setup_attribute(), "active");
        assert_eq!(DtlsRole::Server.setup_attribute(), "passive");
    }

    #[test]
    fn key_material_debug_hides_secrets() {
        let km = SrtpKeyMaterial::new(&[0xab; 16], &[0xcd; 14]).expect("fits");
        let text = format!("{km:?}");
        assert!(
            !text.contains("171") && !text.to_lowercase().contains("ab"),
            "{text}"
        );
        assert_eq!(SrtpKeyMaterial::new(&[0; 33], &[]), None);
        assert_eq!(SrtpKeyMaterial::new(&[], &[0; 15]), None);
    }

    /// OpenSSL's own retransmission (fresh record sequence number) is used
    /// once its wall-clock timer has expired too; this takes one real second.
    #[test]
    fn openssl_retransmits_natively_when_its_clock_agrees() {
        let (c, _) = default_contexts();
        let (_, server_cert) = certs();
        let mut client =
            DtlsEndpoint::new(&c, DtlsRole::Client, sha256(server_cert)).expect("endpoint");
        let start = Instant::now();
        client.start(start);
        let first = client.poll_transmit().expect("ClientHello").to_vec();
        std::thread::sleep(Duration::from_millis(1100));
        client.handle_timeout(start + INITIAL_RTO);
        let again = client.poll_transmit().expect("retransmission").to_vec();
        assert!(client.poll_transmit().is_none());
        assert_eq!(client.stats().retransmissions, 1);
        // Same record type, version and epoch; the sequence number moved on.
        assert_eq!(first[..5], again[..5]);
        assert_ne!(first[5..11], again[5..11], "not a verbatim copy");
        assert_eq!(
            client.poll_timeout(),
            Some(start + INITIAL_RTO + 2 * INITIAL_RTO),
            "timer doubled"
        );
    }

    fn find_in_path(binary: &str) -> Option<std::path::PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
    }

    /// Handshake against an independent implementation (GnuTLS's
    /// `gnutls-cli`) over real UDP on loopback, comparing the RFC 5764
    /// keying material it exports with our split. Skipped when gnutls-cli is
    /// not installed (Debian package `gnutls-bin`).
    #[test]
    fn interop_with_gnutls_cli() {
        let Some(gnutls_cli) = find_in_path("gnutls-cli") else {
            eprintln!("skipped: gnutls-cli not installed");
            return;
        };
        let (client_cert, server_cert) = certs();
        let dir = std::env::temp_dir().join(format!("jsfu-dtls-gnutls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let (cert_pem, key_pem) = client_cert.to_pem().expect("pem");
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert_pem).expect("write");
        std::fs::write(&key_path, key_pem).expect("write");

        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let child = std::process::Command::new(gnutls_cli)
            .arg("--udp")
            .arg(format!("--port={port}"))
            .arg("--insecure")
            .arg("--priority=NORMAL:-VERS-ALL:+VERS-DTLS1.2")
            // GnuTLS 3.7 has no AEAD SRTP profiles.
            .arg("--srtp-profiles=SRTP_AES128_CM_HMAC_SHA1_32:SRTP_AES128_CM_HMAC_SHA1_80")
            .arg("--keymatexport=EXTRACTOR-dtls_srtp")
            .arg("--keymatexportsize=60")
            .arg(format!("--x509certfile={}", cert_path.display()))
            .arg(format!("--x509keyfile={}", key_path.display()))
            .arg("127.0.0.1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn gnutls-cli");

        let server_ctx = context(server_cert, &DtlsConfig::default());
        let mut server = DtlsEndpoint::new(&server_ctx, DtlsRole::Server, sha256(client_cert))
            .expect("endpoint");
        server.start(Instant::now());
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut peer = None;
        let mut events = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline && !events.contains(&DtlsEvent::Closed) {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                peer = Some(from);
                server.handle_datagram(Instant::now(), &buf[..n]);
            }
            if server.poll_timeout().is_some_and(|at| at <= Instant::now()) {
                server.handle_timeout(Instant::now());
            }
            while let Some(d) = server.poll_transmit() {
                let to = peer.expect("we only answer a peer");
                socket.send_to(d, to).expect("send");
            }
            while let Some(e) = server.poll_event() {
                events.push(e);
            }
        }
        let output = child.wait_with_output().expect("gnutls-cli output");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let Some(DtlsEvent::Connected(keys)) = events.first() else {
            panic!("no handshake: {events:?}\n{stdout}\n{stderr}");
        };
        // Our (server) preference wins over the client's order.
        assert_eq!(keys.profile, SrtpProfile::Aes128CmSha1_80);
        let exported = stdout
            .lines()
            .chain(stderr.lines())
            .find_map(|line| line.split_once("Key material: ").map(|(_, hex)| hex.trim()))
            .unwrap_or_else(|| panic!("no key material printed:\n{stdout}\n{stderr}"));
        // RFC 5764 §4.2 from the client's side: client key, server key,
        // client salt, server salt. We are the server.
        let mut expected = String::new();
        for part in [
            keys.remote.key(),
            keys.local.key(),
            keys.remote.salt(),
            keys.local.salt(),
        ] {
            for byte in part {
                expected.push_str(&format!("{byte:02x}"));
            }
        }
        assert_eq!(exported.to_ascii_lowercase(), expected);
        assert_eq!(
            events.last(),
            Some(&DtlsEvent::Closed),
            "gnutls-cli said bye"
        );
    }

    /// Our client against GnuTLS's `gnutls-serv` (HelloVerifyRequest cookie
    /// exchange, client certificate required, echo of application data,
    /// close_notify) over real UDP on loopback. Skipped
    /// when gnutls-serv is not installed (Debian package `gnutls-bin`).
    #[test]
    fn interop_with_gnutls_serv() {
        let (Some(gnutls_serv), Some(stdbuf)) =
            (find_in_path("gnutls-serv"), find_in_path("stdbuf"))
        else {
            eprintln!("skipped: gnutls-serv or stdbuf not installed");
            return;
        };
        let (client_cert, server_cert) = certs();
        let dir =
            std::env::temp_dir().join(format!("jsfu-dtls-gnutls-serv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let (cert_pem, key_pem) = server_cert.to_pem().expect("pem");
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert_pem).expect("write");
        std::fs::write(&key_path, key_pem).expect("write");
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("free port")
            .port();
        let mut child = std::process::Command::new(stdbuf)
            .arg("-oL")
            .arg(gnutls_serv)
            .arg("--udp")
            .arg(format!("--port={port}"))
            .arg("--echo")
            .arg("--require-client-cert")
            .arg("--priority=NORMAL:-VERS-ALL:+VERS-DTLS1.2")
            .arg("--srtp-profiles=SRTP_AES128_CM_HMAC_SHA1_80")
            .arg("--keymatexport=EXTRACTOR-dtls_srtp")
            .arg("--keymatexportsize=60")
            .arg(format!("--x509certfile={}", cert_path.display()))
            .arg(format!("--x509keyfile={}", key_path.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn gnutls-serv");

        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let server_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let client_ctx = context(client_cert, &DtlsConfig::default());
        let mut client = DtlsEndpoint::new(&client_ctx, DtlsRole::Client, sha256(server_cert))
            .expect("endpoint");
        client.start(Instant::now());
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut events = Vec::new();
        let mut echoed = None;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline && echoed.is_none() {
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                client.handle_datagram(Instant::now(), &buf[..n]);
            }
            if client.poll_timeout().is_some_and(|at| at <= Instant::now()) {
                client.handle_timeout(Instant::now());
            }
            while let Some(e) = client.poll_event() {
                if matches!(e, DtlsEvent::Connected(_)) {
                    client.send_application_data(b"hello gnutls").expect("send");
                }
                events.push(e);
            }
            while let Some(d) = client.poll_transmit() {
                // The server may not listen yet; the retransmission timer
                // covers that.
                let _ = socket.send_to(d, server_addr);
            }
            echoed = client.poll_application_data();
        }
        client.close(Instant::now());
        while let Some(d) = client.poll_transmit() {
            let _ = socket.send_to(d, server_addr);
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = child.kill();
        let output = child.wait_with_output().expect("gnutls-serv output");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let Some(DtlsEvent::Connected(keys)) = events.first() else {
            panic!("no handshake: {events:?}\n{stdout}\n{stderr}");
        };
        assert_eq!(echoed.as_deref(), Some(&b"hello gnutls"[..]));
        assert_eq!(keys.profile, SrtpProfile::Aes128CmSha1_80);
        // gnutls-serv does not print exported keys (gnutls-cli does, see
        // above); it does report the profile, our certificate and our
        // close_notify.
        let log = format!("{stdout}\n{stderr}");
        assert!(
            log.contains("DTLS profile set to SRTP_AES128_CM_HMAC_SHA1_80"),
            "{log}"
        );
        assert!(log.contains("Accepted connection"), "{log}");
        assert!(log.contains("\nEOF"), "close_notify seen: {log}");
    }

    #[test]
    fn pack_records_respects_mtu() {
        let records = vec![
            vec![1; 500],
            vec![2; 600],
            vec![3; 200],
            vec![4; 1300],
            vec![5; 10],
        ];
        let packed = pack_records(records, 1200);
        let lens: Vec<usize> = packed.iter().map(Vec::len).collect();
        assert_eq!(lens, [1100, 200, 1300, 10]);
        assert_eq!(packed[0][499..501], [1, 2]);
    }
}
