//! Batched UDP IO on a shard's socket: `recvmmsg(2)` / `sendmmsg(2)` on the raw
//! file descriptor of the socket glommio owns.
//!
//! glommio's `UdpSocket` moves one datagram per call (and copies it out of a
//! DMA buffer); a shard instead waits for readiness through glommio (a
//! zero-length peek), then drains up to [`BATCH`] datagrams per system call
//! into its own pooled, aligned slots, and sends every queued datagram of a
//! turn with one `sendmmsg`. `benches/io.rs` measures both ways.
//!
//! This is the only module of the crate with `unsafe` code; each block says why
//! it is sound. Nothing here allocates after construction.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Most datagrams moved by one system call.
pub const BATCH: usize = 32;

/// Bytes of one pooled slot: a 1500-byte media datagram plus the SRTCP
/// trailer fits, and so does any DTLS record a peer sends at a 1200..=1500 MTU.
pub const SLOT_LEN: usize = 2048;

/// One pooled datagram buffer, 16-byte aligned (libsrtp needs 4).
#[repr(C, align(16))]
pub struct Slot(pub [u8; SLOT_LEN]);

impl Slot {
    /// A zeroed slot on the heap.
    pub fn boxed() -> Box<Self> {
        Box::new(Self([0; SLOT_LEN]))
    }
}

/// Aligned slots allocated once, handed out by index.
pub struct SlotPool {
    slots: Vec<Slot>,
    free: Vec<u32>,
    misses: u64,
}

impl SlotPool {
    /// A pool of `count` slots.
    pub fn new(count: usize) -> Self {
        let mut slots = Vec::with_capacity(count);
        slots.resize_with(count, || Slot([0; SLOT_LEN]));
        // Slot indices fit in u32: pools are sized in the thousands.
        let free = (0..count as u32).rev().collect();
        Self {
            slots,
            free,
            misses: 0,
        }
    }

    /// Takes a free slot; `None` (and a counted miss) when the pool is empty.
    pub fn take(&mut self) -> Option<u32> {
        let slot = self.free.pop();
        if slot.is_none() {
            self.misses += 1;
        }
        slot
    }

    /// Gives a slot back.
    pub fn put(&mut self, slot: u32) {
        debug_assert!(!self.free.contains(&slot), "slot returned twice");
        self.free.push(slot);
    }

    /// The bytes of a slot.
    pub fn get_mut(&mut self, slot: u32) -> &mut [u8; SLOT_LEN] {
        &mut self.slots[slot as usize].0
    }

    /// The bytes of a slot.
    pub fn get(&self, slot: u32) -> &[u8; SLOT_LEN] {
        &self.slots[slot as usize].0
    }

    /// How many times [`Self::take`] found the pool empty.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Slots currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

/// Scratch headers for one `recvmmsg`/`sendmmsg` call.
struct Headers {
    names: [libc::sockaddr_storage; BATCH],
    iovecs: [libc::iovec; BATCH],
    hdrs: [libc::mmsghdr; BATCH],
}

impl Headers {
    fn boxed() -> Box<Self> {
        // SAFETY: `sockaddr_storage`, `iovec` and `mmsghdr` are plain C
        // structs of integers and raw pointers, for which all-zero bytes are
        // valid values (null pointers, zero lengths).
        Box::new(unsafe { mem::zeroed() })
    }
}

/// A batch of received datagrams in [`BATCH`] owned slots.
pub struct RecvBatch {
    slots: Box<[Slot]>,
    lens: [usize; BATCH],
    truncated: [bool; BATCH],
    addrs: [SocketAddr; BATCH],
    count: usize,
    headers: Box<Headers>,
}

impl RecvBatch {
    /// An empty batch with its slots allocated.
    pub fn new() -> Self {
        let mut slots = Vec::with_capacity(BATCH);
        slots.resize_with(BATCH, || Slot([0; SLOT_LEN]));
        Self {
            slots: slots.into_boxed_slice(),
            lens: [0; BATCH],
            truncated: [false; BATCH],
            addrs: [SocketAddr::from(([0, 0, 0, 0], 0)); BATCH],
            count: 0,
            headers: Headers::boxed(),
        }
    }

    /// Receives up to [`BATCH`] datagrams without blocking. Returns how many
    /// arrived (0 when none is waiting).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.count = 0;
        let h = &mut *self.headers;
        for i in 0..BATCH {
            h.iovecs[i] = libc::iovec {
                iov_base: self.slots[i].0.as_mut_ptr().cast(),
                iov_len: SLOT_LEN,
            };
            let mut msg: libc::msghdr = zeroed_msghdr();
            msg.msg_name = (&mut h.names[i] as *mut libc::sockaddr_storage).cast();
            msg.msg_namelen = socklen_of::<libc::sockaddr_storage>();
            msg.msg_iov = &mut h.iovecs[i];
            msg.msg_iovlen = 1;
            h.hdrs[i] = libc::mmsghdr {
                msg_hdr: msg,
                msg_len: 0,
            };
        }
        // SAFETY: `hdrs` holds BATCH initialised headers whose name and iovec
        // pointers point into `h.names`, `h.iovecs` and `self.slots`, all
        // alive and exclusively borrowed for the call; each iovec covers one
        // whole slot. MSG_DONTWAIT makes the call non-blocking; no timeout.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                h.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        // Non-negative and at most BATCH, per recvmmsg(2).
        let n = n as usize;
        for i in 0..n {
            let hdr = &h.hdrs[i];
            self.lens[i] = (hdr.msg_len as usize).min(SLOT_LEN);
            self.truncated[i] = hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.addrs[i] =
                decode_addr(&h.names[i]).unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        }
        self.count = n;
        Ok(n)
    }

    /// Datagrams in the batch.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes of datagram `i`.
    pub fn bytes(&self, i: usize) -> &[u8] {
        &self.slots[i].0[..self.lens[i]]
    }

    /// Datagram `i`: its source, whether the kernel truncated it, and its
    /// bytes (writable, with the rest of the slot behind them).
    pub fn datagram(&mut self, i: usize) -> (SocketAddr, bool, usize, &mut [u8; SLOT_LEN]) {
        (
            self.addrs[i],
            self.truncated[i],
            self.lens[i],
            &mut self.slots[i].0,
        )
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

/// Sends datagrams with `sendmmsg`, [`BATCH`] per call.
pub struct SendBatch {
    headers: Box<Headers>,
}

impl SendBatch {
    /// Scratch space for sending.
    pub fn new() -> Self {
        Self {
            headers: Headers::boxed(),
        }
    }

    /// Sends every datagram of `items` without blocking. Returns how many the
    /// kernel accepted; the rest (socket buffer full, unreachable address)
    /// are the caller's to count as dropped.
    pub fn send<'a>(
        &mut self,
        fd: RawFd,
        items: impl Iterator<Item = (&'a [u8], SocketAddr)>,
    ) -> usize {
        let mut items = items.peekable();
        let mut sent = 0;
        while items.peek().is_some() {
            let h = &mut *self.headers;
            let mut n = 0;
            while n < BATCH {
                let Some((bytes, addr)) = items.next() else {
                    break;
                };
                let namelen = encode_addr(addr, &mut h.names[n]);
                h.iovecs[n] = libc::iovec {
                    iov_base: bytes.as_ptr().cast_mut().cast(),
                    iov_len: bytes.len(),
                };
                let mut msg: libc::msghdr = zeroed_msghdr();
                msg.msg_name = (&mut h.names[n] as *mut libc::sockaddr_storage).cast();
                msg.msg_namelen = namelen;
                msg.msg_iov = &mut h.iovecs[n];
                msg.msg_iovlen = 1;
                h.hdrs[n] = libc::mmsghdr {
                    msg_hdr: msg,
                    msg_len: 0,
                };
                n += 1;
            }
            let mut done = 0;
            while done < n {
                // SAFETY: headers `done..n` are initialised; their name and
                // iovec pointers point into `h` and into the `bytes` slices
                // of `items`, which the caller keeps borrowed for 'a, i.e.
                // for this whole call. The kernel only reads the iovec data
                // (sendmmsg never writes packet bytes). MSG_DONTWAIT: never
                // blocks.
                let r = unsafe {
                    libc::sendmmsg(
                        fd,
                        h.hdrs[done..].as_mut_ptr(),
                        (n - done) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if r <= 0 {
                    // Skip the datagram that failed (unreachable, buffer
                    // full): the caller counts it; the rest still go.
                    let err = io::Error::last_os_error();
                    if r < 0 && err.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    done += 1;
                } else {
                    // Positive and at most n - done, per sendmmsg(2).
                    done += r as usize;
                    sent += r as usize;
                }
            }
        }
        sent
    }
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

/// Sends one datagram with `sendto` (control paths, tests, benches).
pub fn send_one(fd: RawFd, bytes: &[u8], addr: SocketAddr) -> io::Result<usize> {
    // SAFETY: all-zero is a valid `sockaddr_storage`.
    let mut name: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let namelen = encode_addr(addr, &mut name);
    // SAFETY: `bytes` is a valid readable slice for its length; `name` is a
    // valid socket address of `namelen` bytes; MSG_DONTWAIT never blocks.
    let r = unsafe {
        libc::sendto(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT,
            (&name as *const libc::sockaddr_storage).cast(),
            namelen,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        // Non-negative, per sendto(2).
        Ok(r as usize)
    }
}

/// Raises the socket's kernel buffers (best effort: errors are ignored, the
/// kernel clamps to its limits).
pub fn set_buffer_sizes(fd: RawFd, bytes: usize) {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: `value` is a valid c_int that outlives the call, and its
        // size is passed; setsockopt only reads it.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&value as *const libc::c_int).cast(),
                socklen_of::<libc::c_int>(),
            );
        }
    }
}

/// Microseconds of CPU time the calling thread has used (benches, stats).
pub fn thread_cpu_time_us() -> u64 {
    // SAFETY: all-zero is a valid `timespec`.
    let mut ts: libc::timespec = unsafe { mem::zeroed() };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_THREAD_CPUTIME_ID always
    // exists on Linux.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return 0;
    }
    // Both fields are non-negative for a CPU-time clock.
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

fn zeroed_msghdr() -> libc::msghdr {
    // SAFETY: `msghdr` is a C struct of integers and raw pointers; all-zero
    // is a valid value (no name, no iovecs, no control data).
    unsafe { mem::zeroed() }
}

fn socklen_of<T>() -> libc::socklen_t {
    // The structs passed here are at most 128 bytes.
    size_of::<T>() as libc::socklen_t
}

fn encode_addr(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and suitably aligned
            // for `sockaddr_in` (that is its purpose); the write stays inside.
            unsafe {
                std::ptr::write(
                    (out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>(),
                    sin,
                );
            }
            socklen_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for `sockaddr_in6`.
            unsafe {
                std::ptr::write(
                    (out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>(),
                    sin6,
                );
            }
            socklen_of::<libc::sockaddr_in6>()
        }
    }
}

fn decode_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a `sockaddr_in` (family AF_INET) into
            // this storage, which is large and aligned enough for it.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for a `sockaddr_in6` (family AF_INET6).
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn addresses_round_trip() {
        for addr in [
            SocketAddr::from(([127, 0, 0, 1], 4242)),
            SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 9)),
        ] {
            // SAFETY: all-zero is a valid `sockaddr_storage`.
            let mut s: libc::sockaddr_storage = unsafe { mem::zeroed() };
            encode_addr(addr, &mut s);
            assert_eq!(decode_addr(&s), Some(addr));
        }
    }

    #[test]
    fn batch_send_and_receive_on_loopback() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a");
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind b");
        let to = b.local_addr().expect("addr b");
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let mut tx = SendBatch::new();
        let sent = tx.send(a.as_raw_fd(), payloads.iter().map(|p| (p.as_slice(), to)));
        assert_eq!(sent, 40);
        let mut rx = RecvBatch::new();
        let mut got = Vec::new();
        for _ in 0..100 {
            let n = rx.recv(b.as_raw_fd()).expect("recv");
            for i in 0..n {
                let (from, truncated, len, buf) = rx.datagram(i);
                assert_eq!(from, a.local_addr().expect("addr a"));
                assert!(!truncated);
                got.push(buf[..len].to_vec());
            }
            if got.len() == 40 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, payloads);
    }

    #[test]
    fn pool_counts_misses() {
        let mut pool = SlotPool::new(2);
        let a = pool.take().expect("first");
        let b = pool.take().expect("second");
        assert_eq!(pool.take(), None);
        assert_eq!(pool.misses(), 1);
        pool.put(a);
        pool.put(b);
        assert_eq!(pool.available(), 2);
        assert_eq!(pool.get(a).as_ptr() as usize % 16, 0);
    }
}
