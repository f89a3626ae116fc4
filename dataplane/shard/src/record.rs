//! Recording (recording.md): per session and medium, a recorder that turns
//! what the session's peer publishes into MJR frames, and one writer thread
//! per shard that puts them on disk.
//!
//! The packet path only appends a frame to the recorder's chunk buffer (a
//! reused `Vec`, no allocation once warm). A chunk goes to the writer when it
//! is [`CHUNK_BYTES`] long or [`FLUSH_INTERVAL`] old, through an unbounded
//! channel whose data is bounded by [`MAX_CHUNKS_IN_FLIGHT`]: when the disk
//! cannot keep up, whole chunks are dropped and counted (a warning is logged
//! at most every [`DROP_WARNING_INTERVAL`]), so a slow disk never delays
//! media. Open and close messages are never dropped.
//!
//! The writer writes every chunk with one `write` call, so the frames reach
//! the kernel within [`FLUSH_INTERVAL`]: a server killed with SIGKILL leaves
//! files that end with whole frames except at most the last one, which
//! `janus-pp-rec` converts up to there. On stop the writer fsyncs, closes and
//! renames a temporary file to its final name.
//!
//! Hooks for other parts of the shard:
//! * [`Shard::record_rtp`]: called on the native relay path for every packet
//!   that passes the publish gate. Simulcast video must call it only with the
//!   packets of the layer the recording's own selection context (media.md
//!   §7.3, targets 2/2, switching at keyframes) chooses, and call
//!   [`Shard::record_skip`] for packets that context drops within the chosen
//!   layer (temporal filter); the recorder itself keeps one SSRC and
//!   continuous sequence numbers and timestamps across layer switches.
//!   [`Shard::is_recording_video`] tells whether such a context is needed.
//! * [`Shard::record_data`]: every incoming data-channel message, before any
//!   script callback and regardless of the publish gate.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsfu_proto::mjr::{self, InfoHeader, MjrKind, RtpRecordRewriter};
use jsfu_route::{Medium, PluginSessionId, ShardId};

use crate::shard::Shard;

/// A recorder hands its buffer to the writer once it holds this many bytes.
pub(crate) const CHUNK_BYTES: usize = 32 * 1024;

/// ... or once its oldest frame is this old.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// Chunks a shard may have queued for its writer; beyond that, chunks are
/// dropped (at most 2 MiB waiting per shard).
pub(crate) const MAX_CHUNKS_IN_FLIGHT: usize = 64;

/// Minimum time between two "disk too slow" warnings of a shard.
const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(5);

/// Recycled chunk buffers kept by the writer for the shard.
const RECYCLED_BUFFERS: usize = 16;

/// The recording counters of one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordingStats {
    /// Recorders open now.
    pub active: u64,
    /// Recorders opened since the shard started.
    pub opened: u64,
    /// Frames handed to the writer.
    pub frames: u64,
    /// Frames dropped because the writer was behind (or too large for a frame).
    pub frames_dropped: u64,
    /// Bytes written to disk by the writer (headers included).
    pub bytes_written: u64,
    /// Failed writes, fsyncs or renames.
    pub write_errors: u64,
}

/// What the shard tells its writer thread.
enum WriterMsg {
    Open {
        id: u64,
        file: File,
        path: PathBuf,
        final_path: Option<PathBuf>,
    },
    Write {
        id: u64,
        buf: Vec<u8>,
    },
    Close {
        id: u64,
    },
}

/// Counters shared with the writer thread.
#[derive(Default)]
struct Shared {
    in_flight: AtomicUsize,
    bytes_written: AtomicU64,
    write_errors: AtomicU64,
}

/// The shard's side of its writer thread.
struct Writer {
    tx: flume::Sender<WriterMsg>,
    recycled: flume::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
    join: JoinHandle<()>,
}

/// One active recorder.
struct Recorder {
    id: u64,
    video: bool,
    info: InfoHeader,
    /// When the info header was written (first frame).
    header_at: Option<Instant>,
    /// The writer has accepted a chunk starting with the info header.
    header_delivered: bool,
    rewriter: RtpRecordRewriter,
    /// Frames waiting for the writer.
    buf: Vec<u8>,
    frames_in_buf: u64,
    /// When the oldest frame in `buf` was added.
    buf_since: Option<Instant>,
    /// A PLI is due when the first video packet arrives.
    pli_pending: bool,
}

/// The recorders of one shard and its writer.
#[derive(Default)]
pub(crate) struct Recorders {
    shard: u16,
    sessions: HashMap<PluginSessionId, [Option<Recorder>; 3]>,
    writer: Option<Writer>,
    next_id: u64,
    stats: RecordingStats,
    last_drop_warning: Option<Instant>,
    drops_since_warning: u64,
}

fn slot(medium: Medium) -> usize {
    match medium {
        Medium::Audio => 0,
        Medium::Video => 1,
        Medium::Data => 2,
    }
}

fn wall_us() -> u64 {
    // A clock before 1970 is reported as 0.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Everything `StartRecording` carries.
pub(crate) struct StartRecording {
    pub(crate) session: PluginSessionId,
    pub(crate) medium: Medium,
    pub(crate) codec: String,
    pub(crate) fmtp: Option<String>,
    pub(crate) file: File,
    pub(crate) path: PathBuf,
    pub(crate) final_path: Option<PathBuf>,
    pub(crate) encrypted: bool,
}

impl Recorders {
    /// The recorders of shard `shard` (the writer starts with the first one).
    pub(crate) fn new(shard: ShardId) -> Self {
        Self {
            shard: shard.0,
            ..Self::default()
        }
    }

    /// Whether no recorder is open (the packet path's fast exit).
    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> RecordingStats {
        let mut s = self.stats;
        if let Some(w) = &self.writer {
            s.bytes_written = w.shared.bytes_written.load(Ordering::Relaxed);
            s.write_errors = w.shared.write_errors.load(Ordering::Relaxed);
        }
        s
    }

    fn writer(&mut self) -> Option<&Writer> {
        if self.writer.is_none() {
            let (tx, rx) = flume::unbounded();
            let (recycle_tx, recycled) = flume::bounded(RECYCLED_BUFFERS);
            let shared = Arc::new(Shared::default());
            let thread_shared = shared.clone();
            let shard = self.shard;
            let spawned = std::thread::Builder::new()
                .name(format!("jsfu-rec-{shard}"))
                .spawn(move || writer_thread(shard, &rx, &recycle_tx, &thread_shared));
            match spawned {
                Ok(join) => {
                    self.writer = Some(Writer {
                        tx,
                        recycled,
                        shared,
                        join,
                    });
                }
                Err(e) => {
                    tracing::error!(shard, error = %e, "cannot start the recording writer");
                }
            }
        }
        self.writer.as_ref()
    }

    /// Opens a recorder (replacing one already in the slot).
    pub(crate) fn start(&mut self, cmd: StartRecording) {
        let StartRecording {
            session,
            medium,
            codec,
            fmtp,
            file,
            path,
            final_path,
            encrypted,
        } = cmd;
        // Control only sends codecs it knows; the slot decides otherwise.
        let kind = MjrKind::for_codec(&codec).unwrap_or(match medium {
            Medium::Audio => MjrKind::Audio,
            Medium::Video => MjrKind::Video,
            Medium::Data => MjrKind::Data,
        });
        self.stop(session, medium);
        self.next_id += 1;
        let id = self.next_id;
        let Some(writer) = self.writer() else {
            tracing::warn!(session = %session, path = %path.display(), "recording not started: no writer");
            return;
        };
        if writer
            .tx
            .send(WriterMsg::Open {
                id,
                file,
                path: path.clone(),
                final_path,
            })
            .is_err()
        {
            tracing::warn!(session = %session, path = %path.display(), "recording not started: the writer stopped");
            return;
        }
        let mut info = InfoHeader::new(kind, codec, wall_us());
        info.fmtp = fmtp;
        info.encrypted = encrypted;
        let recorder = Recorder {
            id,
            video: medium == Medium::Video,
            info,
            header_at: None,
            header_delivered: false,
            rewriter: RtpRecordRewriter::new(),
            buf: Vec::new(),
            frames_in_buf: 0,
            buf_since: None,
            pli_pending: medium == Medium::Video,
        };
        self.sessions.entry(session).or_default()[slot(medium)] = Some(recorder);
        self.stats.active += 1;
        self.stats.opened += 1;
        tracing::info!(session = %session, medium = medium.as_str(), path = %path.display(), "recording started");
    }

    /// Closes a recorder: pending frames are written, the file is synced,
    /// closed and renamed to its final name.
    pub(crate) fn stop(&mut self, session: PluginSessionId, medium: Medium) {
        let Some(slots) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(mut recorder) = slots[slot(medium)].take() else {
            return;
        };
        if slots.iter().all(Option::is_none) {
            self.sessions.remove(&session);
        }
        self.stats.active = self.stats.active.saturating_sub(1);
        self.hand_over(&mut recorder, true);
        if let Some(w) = &self.writer {
            // A stopped writer has nothing left to close.
            let _ = w.tx.send(WriterMsg::Close { id: recorder.id });
        }
        tracing::info!(session = %session, medium = medium.as_str(), "recording stopped");
    }

    /// Closes every recorder and waits for the writer to finish.
    pub(crate) fn shutdown(&mut self) {
        let open: Vec<(PluginSessionId, Medium)> = self
            .sessions
            .iter()
            .flat_map(|(&s, slots)| {
                [Medium::Audio, Medium::Video, Medium::Data]
                    .into_iter()
                    .filter(move |&m| slots[slot(m)].is_some())
                    .map(move |m| (s, m))
            })
            .collect();
        for (session, medium) in open {
            self.stop(session, medium);
        }
        if let Some(w) = self.writer.take() {
            drop(w.tx);
            if w.join.join().is_err() {
                tracing::error!(shard = self.shard, "the recording writer panicked");
            }
        }
    }

    /// Gives the recorder's buffer to the writer (or drops it when the
    /// writer is behind, unless `force`).
    fn hand_over(&mut self, r: &mut Recorder, force: bool) {
        if r.buf.is_empty() {
            return;
        }
        let frames = r.frames_in_buf;
        r.frames_in_buf = 0;
        r.buf_since = None;
        let Some(w) = &self.writer else {
            r.buf.clear();
            self.stats.frames_dropped += frames;
            return;
        };
        if !force && w.shared.in_flight.load(Ordering::Relaxed) >= MAX_CHUNKS_IN_FLIGHT {
            r.buf.clear();
            self.count_drop(frames);
            return;
        }
        let fresh = w
            .recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_BYTES + 2048));
        let buf = std::mem::replace(&mut r.buf, fresh);
        w.shared.in_flight.fetch_add(1, Ordering::Relaxed);
        match w.tx.send(WriterMsg::Write { id: r.id, buf }) {
            Ok(()) => {
                r.header_delivered = true;
                self.stats.frames += frames;
            }
            Err(_) => {
                self.stats.frames_dropped += frames;
            }
        }
    }

    fn count_drop(&mut self, frames: u64) {
        self.stats.frames_dropped += frames;
        self.drops_since_warning += frames;
        let now = Instant::now();
        if self
            .last_drop_warning
            .is_none_or(|t| now >= t + DROP_WARNING_INTERVAL)
        {
            tracing::warn!(
                shard = self.shard,
                dropped = self.drops_since_warning,
                total = self.stats.frames_dropped,
                "recording: the disk is not keeping up, frames dropped"
            );
            self.last_drop_warning = Some(now);
            self.drops_since_warning = 0;
        }
    }

    /// Prepares `r` for one more frame; `false` if the frame is to be
    /// dropped (the info header could not be built).
    fn begin_frame(r: &mut Recorder, now: Instant) -> bool {
        if r.header_at.is_none() {
            r.header_at = Some(now);
            r.info.written_us = wall_us();
        }
        if r.buf.is_empty() && !r.header_delivered && mjr::write_info(&mut r.buf, &r.info).is_err()
        {
            return false;
        }
        r.buf_since.get_or_insert(now);
        true
    }

    fn frame_time(r: &Recorder, now: Instant) -> u32 {
        // Milliseconds since the header; a recording longer than 49 days
        // saturates.
        r.header_at.map_or(0, |t| {
            u32::try_from(now.saturating_duration_since(t).as_millis()).unwrap_or(u32::MAX)
        })
    }

    /// Records one RTP packet; returns whether a PLI should be sent to the
    /// session's peer (first packet of a video recording).
    fn rtp(
        &mut self,
        now: Instant,
        now_us: u64,
        session: PluginSessionId,
        video: bool,
        packet: &[u8],
    ) -> bool {
        let Some(slots) = self.sessions.get_mut(&session) else {
            return false;
        };
        let Some(mut r) = slots[slot(if video { Medium::Video } else { Medium::Audio })].take()
        else {
            return false;
        };
        let pli = std::mem::take(&mut r.pli_pending);
        self.add_rtp(&mut r, now, now_us, packet);
        if let Some(slots) = self.sessions.get_mut(&session) {
            slots[slot(if video { Medium::Video } else { Medium::Audio })] = Some(r);
        }
        pli
    }

    fn add_rtp(&mut self, r: &mut Recorder, now: Instant, now_us: u64, packet: &[u8]) {
        if !Self::begin_frame(r, now) {
            self.stats.frames_dropped += 1;
            return;
        }
        let time = Self::frame_time(r, now);
        let mark = r.buf.len();
        if r.rewriter
            .write_frame(&mut r.buf, time, packet, now_us, r.video)
            .is_err()
        {
            r.buf.truncate(mark);
            self.stats.frames_dropped += 1;
            return;
        }
        r.frames_in_buf += 1;
        if r.buf.len() >= CHUNK_BYTES {
            self.hand_over(r, false);
        }
    }

    #[allow(dead_code, reason = "hook for the simulcast path")]
    fn skip(&mut self, session: PluginSessionId) {
        if let Some(Some(r)) = self
            .sessions
            .get_mut(&session)
            .map(|s| &mut s[slot(Medium::Video)])
        {
            r.rewriter.skip_packet();
        }
    }

    #[allow(dead_code, reason = "hook for the data-channel path")]
    fn data(&mut self, now: Instant, session: PluginSessionId, bytes: &[u8]) {
        let Some(slots) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(mut r) = slots[slot(Medium::Data)].take() else {
            return;
        };
        if Self::begin_frame(&mut r, now) {
            let time = Self::frame_time(&r, now);
            let mark = r.buf.len();
            if mjr::write_data_frame(&mut r.buf, time, wall_us(), bytes).is_ok() {
                r.frames_in_buf += 1;
                if r.buf.len() >= CHUNK_BYTES {
                    self.hand_over(&mut r, false);
                }
            } else {
                r.buf.truncate(mark);
                self.stats.frames_dropped += 1;
            }
        } else {
            self.stats.frames_dropped += 1;
        }
        if let Some(slots) = self.sessions.get_mut(&session) {
            slots[slot(Medium::Data)] = Some(r);
        }
    }

    /// Hands over every buffer whose oldest frame is [`FLUSH_INTERVAL`] old.
    pub(crate) fn tick(&mut self, now: Instant) {
        if self.sessions.is_empty() {
            return;
        }
        let mut due: Vec<(PluginSessionId, usize)> = Vec::new();
        for (&session, slots) in &self.sessions {
            for (i, r) in slots.iter().enumerate() {
                if let Some(r) = r {
                    if r.buf_since.is_some_and(|t| now >= t + FLUSH_INTERVAL) {
                        due.push((session, i));
                    }
                }
            }
        }
        for (session, i) in due {
            let taken = self.sessions.get_mut(&session).and_then(|s| s[i].take());
            if let Some(mut r) = taken {
                self.hand_over(&mut r, false);
                if let Some(slots) = self.sessions.get_mut(&session) {
                    slots[i] = Some(r);
                }
            }
        }
    }

    #[allow(dead_code, reason = "hook for the simulcast path")]
    fn video_active(&self, session: PluginSessionId) -> bool {
        self.sessions
            .get(&session)
            .is_some_and(|s| s[slot(Medium::Video)].is_some())
    }
}

/// The writer thread: opens, appends, syncs, closes and renames.
fn writer_thread(
    shard: u16,
    rx: &flume::Receiver<WriterMsg>,
    recycle: &flume::Sender<Vec<u8>>,
    shared: &Shared,
) {
    struct Open {
        file: File,
        path: PathBuf,
        final_path: Option<PathBuf>,
        failed: bool,
    }
    let mut files: HashMap<u64, Open> = HashMap::new();
    let error = |shared: &Shared| {
        shared.write_errors.fetch_add(1, Ordering::Relaxed);
    };
    while let Ok(msg) = rx.recv() {
        match msg {
            WriterMsg::Open {
                id,
                mut file,
                path,
                final_path,
            } => {
                let failed = match file.write_all(mjr::MAGIC) {
                    Ok(()) => {
                        shared
                            .bytes_written
                            .fetch_add(mjr::MAGIC.len() as u64, Ordering::Relaxed);
                        false
                    }
                    Err(e) => {
                        error(shared);
                        tracing::warn!(shard, path = %path.display(), error = %e, "recording: cannot write");
                        true
                    }
                };
                files.insert(
                    id,
                    Open {
                        file,
                        path,
                        final_path,
                        failed,
                    },
                );
            }
            WriterMsg::Write { id, mut buf } => {
                shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                if let Some(f) = files.get_mut(&id) {
                    if !f.failed {
                        match f.file.write_all(&buf) {
                            Ok(()) => {
                                shared
                                    .bytes_written
                                    .fetch_add(buf.len() as u64, Ordering::Relaxed);
                            }
                            Err(e) => {
                                f.failed = true;
                                error(shared);
                                tracing::warn!(shard, path = %f.path.display(), error = %e, "recording: cannot write, the rest is lost");
                            }
                        }
                    }
                }
                buf.clear();
                // Full: the shard has enough spare buffers.
                let _ = recycle.try_send(buf);
            }
            WriterMsg::Close { id } => {
                let Some(f) = files.remove(&id) else { continue };
                if let Err(e) = f.file.sync_all() {
                    error(shared);
                    tracing::warn!(shard, path = %f.path.display(), error = %e, "recording: fsync failed");
                }
                drop(f.file);
                if let Some(to) = &f.final_path {
                    if let Err(e) = std::fs::rename(&f.path, to) {
                        error(shared);
                        tracing::warn!(shard, from = %f.path.display(), to = %to.display(), error = %e, "recording: rename failed");
                    }
                }
            }
        }
    }
    // The shard stopped without closing some files: sync what is there.
    for (_, f) in files {
        let _ = f.file.sync_all();
    }
}

impl Shard {
    /// Records a packet that passed `session`'s publish gate (see the module
    /// documentation for simulcast).
    pub(crate) fn record_rtp(
        &mut self,
        now: Instant,
        session: PluginSessionId,
        video: bool,
        packet: &[u8],
    ) {
        if self.recorders.is_empty() {
            return;
        }
        let now_us = self.now_us(now);
        if self.recorders.rtp(now, now_us, session, video, packet) {
            self.request_pli(now, session);
        }
    }

    /// A simulcast packet of the recorded layer was left out by the
    /// recording's temporal filter: keep the written sequence gapless.
    #[allow(dead_code, reason = "hook for the simulcast and data-channel paths")]
    pub(crate) fn record_skip(&mut self, session: PluginSessionId) {
        self.recorders.skip(session);
    }

    /// Whether `session` has a video recorder (simulcast hook).
    #[allow(dead_code, reason = "hook for the simulcast and data-channel paths")]
    pub(crate) fn is_recording_video(&self, session: PluginSessionId) -> bool {
        self.recorders.video_active(session)
    }

    /// Records an incoming data-channel message of `session` (text or
    /// binary alike, as Janus does: the recorder's codec decides how the
    /// file is converted).
    #[allow(dead_code, reason = "hook for the simulcast and data-channel paths")]
    pub(crate) fn record_data(&mut self, session: PluginSessionId, _text: bool, bytes: &[u8]) {
        if self.recorders.is_empty() {
            return;
        }
        self.recorders.data(Instant::now(), session, bytes);
    }
}
