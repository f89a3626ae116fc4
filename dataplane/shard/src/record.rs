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
//!   that passes the publish gate. Simulcast video (a packet with a layer
//!   tag) goes through the video recorder's own selection context (media.md
//!   §7.3 with targets 2/2, switching at keyframes; PLIs when it needs a
//!   keyframe); only the chosen layer is written, with one SSRC, continuous
//!   sequence numbers and timestamps, and VP8 picture ids kept continuous.
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
use jsfu_proto::rtp::RtpViewMut;
use jsfu_route::{Medium, PluginSessionId, ShardId, SimulcastTarget};

use crate::shard::Shard;
use crate::simulcast::{LayerSelector, LayerTag};

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
    /// Simulcast layer selection (targets 2/2) and VP8 continuity.
    layers: LayerSelector,
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
    sessions: crate::shard::FastMap<PluginSessionId, [Option<Recorder>; 3]>,
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
            layers: LayerSelector::new(),
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

    /// Records one RTP packet (`tag`: its simulcast layer); returns whether
    /// a keyframe should be asked of the session's peer (first packet of a
    /// video recording, or the simulcast selection needs one).
    fn rtp(
        &mut self,
        now: Instant,
        now_us: u64,
        session: PluginSessionId,
        video: bool,
        packet: &[u8],
        tag: Option<&LayerTag>,
    ) -> bool {
        let medium = if video { Medium::Video } else { Medium::Audio };
        let Some(slots) = self.sessions.get_mut(&session) else {
            return false;
        };
        let Some(mut r) = slots[slot(medium)].take() else {
            return false;
        };
        let mut pli = std::mem::take(&mut r.pli_pending);
        let mut vp8 = false;
        let selected = match tag.filter(|_| video) {
            None => true,
            Some(tag) => {
                let top = SimulcastTarget {
                    substream: 2,
                    temporal: 2,
                };
                let selection = r.layers.process(session, tag, top, now_us);
                if selection.temporal_drop {
                    r.rewriter.skip_packet();
                }
                pli |= selection.pli;
                vp8 = selection.vp8;
                selection.relay
            }
        };
        if selected {
            self.add_rtp(&mut r, now, now_us, packet, vp8);
        }
        if let Some(slots) = self.sessions.get_mut(&session) {
            slots[slot(medium)] = Some(r);
        }
        pli
    }

    fn add_rtp(&mut self, r: &mut Recorder, now: Instant, now_us: u64, packet: &[u8], vp8: bool) {
        if !Self::begin_frame(r, now) {
            self.stats.frames_dropped += 1;
            return;
        }
        let time = Self::frame_time(r, now);
        let mark = r.buf.len();
        let Ok(rewritten) = r
            .rewriter
            .write_frame(&mut r.buf, time, packet, now_us, r.video)
        else {
            r.buf.truncate(mark);
            self.stats.frames_dropped += 1;
            return;
        };
        if vp8 {
            if let Ok(mut v) = RtpViewMut::parse(&mut r.buf[mark + mjr::RTP_FRAME_OVERHEAD..]) {
                // A descriptor that does not parse is written as is.
                let _ = r.layers.vp8.rewrite(v.payload_mut(), rewritten.switched);
            }
        }
        r.frames_in_buf += 1;
        if r.buf.len() >= CHUNK_BYTES {
            self.hand_over(r, false);
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
        tag: Option<&LayerTag>,
    ) {
        if self.recorders.is_empty() {
            return;
        }
        let now_us = self.now_us(now);
        if self.recorders.rtp(now, now_us, session, video, packet, tag) {
            self.request_keyframe(now, session);
        }
    }

    /// Records an incoming data-channel message of `session` (text or
    /// binary alike, as Janus does: the recorder's codec decides how the
    /// file is converted).
    #[allow(dead_code, reason = "hook for the data-channel path (data.rs)")]
    pub(crate) fn record_data(&mut self, session: PluginSessionId, _text: bool, bytes: &[u8]) {
        if self.recorders.is_empty() {
            return;
        }
        self.recorders.data(Instant::now(), session, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsfu_proto::mjr::MjrVersion;
    use jsfu_proto::rtp::RtpView;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("jsfu-record-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 111];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xfc; 40]);
        p
    }

    fn start(
        r: &mut Recorders,
        session: u32,
        medium: Medium,
        codec: &str,
        path: &std::path::Path,
        final_path: Option<PathBuf>,
    ) {
        r.start(StartRecording {
            session: PluginSessionId(session),
            medium,
            codec: codec.into(),
            fmtp: None,
            file: File::create(path).unwrap(),
            path: path.to_path_buf(),
            final_path,
            encrypted: false,
        });
    }

    #[test]
    fn audio_and_data_reach_the_files_in_mjr_layout() {
        let dir = scratch("basic");
        let audio_tmp = dir.join("a.mjr.tmp");
        let audio = dir.join("a.mjr");
        let data = dir.join("d.mjr");
        let mut r = Recorders::new(ShardId(3));
        start(
            &mut r,
            7,
            Medium::Audio,
            "opus",
            &audio_tmp,
            Some(audio.clone()),
        );
        start(&mut r, 7, Medium::Data, "text", &data, None);
        let t0 = Instant::now();
        let s = PluginSessionId(7);
        for i in 0..50u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(i));
            // The sender restarts halfway: the file keeps one SSRC.
            let ssrc = if i < 25 { 0x1111 } else { 0x2222 };
            let pli = r.rtp(
                now,
                u64::from(i) * 20_000,
                s,
                false,
                &rtp(i, u32::from(i) * 960, ssrc),
                None,
            );
            assert!(!pli, "audio recordings never ask for a PLI");
            if i % 10 == 0 {
                r.data(now, s, format!("message {i}").as_bytes());
            }
        }
        // Video is not recorded for this session, nor anything for another.
        assert!(!r.rtp(t0, 0, s, true, &rtp(1, 1, 1), None));
        assert!(!r.rtp(t0, 0, PluginSessionId(8), false, &rtp(1, 1, 1), None));
        assert_eq!(r.stats().active, 2);
        r.stop(s, Medium::Audio);
        r.stop(s, Medium::Data);
        r.shutdown();
        let stats = r.stats();
        assert_eq!(
            (
                stats.active,
                stats.opened,
                stats.frames,
                stats.frames_dropped
            ),
            (0, 2, 55, 0)
        );

        assert!(!audio_tmp.exists(), "the temporary file was renamed");
        let bytes = std::fs::read(&audio).unwrap();
        let file = mjr::read(&bytes).unwrap();
        assert_eq!(file.version, MjrVersion::V2);
        let info = file.info.unwrap();
        assert!(
            info.starts_with("{\"t\": \"a\", \"c\": \"opus\", \"s\": "),
            "{info}"
        );
        assert_eq!(file.frames.len(), 50);
        assert_eq!(file.stopped_at, None);
        let mut last_ts = 0;
        for (i, f) in file.frames.iter().enumerate() {
            let v = RtpView::parse(f.body).unwrap();
            assert_eq!(v.ssrc().0, 0x1111);
            assert_eq!(usize::from(v.seq().0), i);
            assert!(i == 0 || v.timestamp() > last_ts);
            last_ts = v.timestamp();
            assert_eq!(f.time_ms, Some(20 * i as u32));
        }

        let bytes = std::fs::read(&data).unwrap();
        let file = mjr::read(&bytes).unwrap();
        assert!(
            file.info
                .unwrap()
                .starts_with("{\"t\": \"d\", \"c\": \"text\"")
        );
        let messages: Vec<&[u8]> = file.frames.iter().map(|f| f.data().unwrap().1).collect();
        assert_eq!(
            messages,
            vec![
                &b"message 0"[..],
                b"message 10",
                b"message 20",
                b"message 30",
                b"message 40"
            ]
        );
        // janus-pp-rec turns the data recording into subtitles, when installed.
        let srt = dir.join("d.srt");
        if let Ok(out) = std::process::Command::new("janus-pp-rec")
            .arg(&data)
            .arg(&srt)
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = std::fs::read_to_string(&srt).unwrap();
            assert!(
                text.contains("message 0") && text.contains("message 40"),
                "{text}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_slow_disk_drops_whole_chunks_and_the_header_survives() {
        let dir = scratch("drop");
        let path = dir.join("v.mjr");
        let mut r = Recorders::new(ShardId(0));
        start(&mut r, 1, Medium::Video, "vp8", &path, None);
        let s = PluginSessionId(1);
        let t0 = Instant::now();
        // The writer is "behind": the first chunk is dropped.
        let shared = r.writer.as_ref().unwrap().shared.clone();
        shared
            .in_flight
            .fetch_add(MAX_CHUNKS_IN_FLIGHT, Ordering::Relaxed);
        assert!(
            r.rtp(t0, 0, s, true, &rtp(0, 0, 9), None),
            "first video packet asks for a PLI"
        );
        // Fill one chunk: it is dropped as a whole when handed over.
        let frame = 40 + 12 + mjr::RTP_FRAME_OVERHEAD;
        let mut fed = 1u64;
        while r.stats().frames_dropped == 0 {
            assert!(
                fed < (2 * CHUNK_BYTES / frame) as u64,
                "nothing was dropped"
            );
            // Sequence numbers fit u16 (bounded above).
            assert!(!r.rtp(t0, 0, s, true, &rtp(fed as u16, 0, 9), None));
            fed += 1;
        }
        assert_eq!(r.stats().frames_dropped, fed);
        assert!(fed >= (CHUNK_BYTES / frame - 2) as u64);
        assert_eq!(r.stats().frames, 0);
        // It caught up: later frames are written, after the info header.
        shared
            .in_flight
            .fetch_sub(MAX_CHUNKS_IN_FLIGHT, Ordering::Relaxed);
        for i in 0..10u16 {
            r.rtp(
                t0 + Duration::from_secs(1),
                0,
                s,
                true,
                &rtp(1000 + i, 90_000, 9),
                None,
            );
        }
        r.tick(t0 + Duration::from_secs(2));
        r.stop(s, Medium::Video);
        r.shutdown();
        assert_eq!(r.stats().frames, 10);
        let bytes = std::fs::read(&path).unwrap();
        let file = mjr::read(&bytes).unwrap();
        assert!(
            file.info
                .unwrap()
                .starts_with("{\"t\": \"v\", \"c\": \"vp8\"")
        );
        assert_eq!(file.frames.len(), 10);
        assert_eq!(file.frames[0].time_ms, Some(1000));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn simulcast_records_the_top_layer_as_one_stream() {
        use jsfu_proto::rtp::codec::{PayloadInfo, VideoCodec};
        let dir = scratch("simulcast");
        let path = dir.join("v.mjr");
        let mut r = Recorders::new(ShardId(0));
        start(&mut r, 4, Medium::Video, "vp8", &path, None);
        let s = PluginSessionId(4);
        let t0 = Instant::now();
        let packet = |layer: u8, seq: u16, ts: u32| {
            let mut p = vec![0x80, 96];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&(0x100 + u32::from(layer)).to_be_bytes());
            // VP8 descriptor (S bit, no extensions), then the layer as a marker.
            p.extend_from_slice(&[0x10, layer, 0, 0]);
            p
        };
        let tag = |layer: u8, keyframe: bool| LayerTag {
            layer,
            codec: Some(VideoCodec::Vp8),
            info: PayloadInfo {
                keyframe,
                start_of_frame: true,
                ..PayloadInfo::default()
            },
        };
        // Frames of all three layers, a keyframe on layer 0 first and on
        // layer 2 from frame 5 on.
        let mut pli = false;
        for f in 0..10u16 {
            let now = t0 + Duration::from_millis(33 * u64::from(f));
            let now_us = 33_000 * u64::from(f);
            for layer in 0..3u8 {
                let keyframe = (layer == 0 && f == 0) || (layer == 2 && f == 5);
                let p = packet(
                    layer,
                    1000 * u16::from(layer) + f,
                    3000 * u32::from(f) + 7 * u32::from(layer),
                );
                pli |= r.rtp(now, now_us, s, true, &p, Some(&tag(layer, keyframe)));
            }
        }
        assert!(pli, "a video recording asks for a keyframe");
        r.stop(s, Medium::Video);
        r.shutdown();
        let bytes = std::fs::read(&path).unwrap();
        let file = mjr::read(&bytes).unwrap();
        let written: Vec<(u32, u16, u8)> = file
            .frames
            .iter()
            .map(|f| {
                let v = RtpView::parse(f.body).unwrap();
                (v.ssrc().0, v.seq().0, v.payload()[1])
            })
            .collect();
        // One packet per frame: layer 0 up to layer 2's keyframe (frame 5
        // has both: layer 0's packet came first), then layer 2.
        assert_eq!(written.len(), 11, "{written:?}");
        assert!(
            written.iter().all(|w| w.0 == 0x100),
            "one SSRC: {written:?}"
        );
        for (i, w) in written.iter().enumerate() {
            assert_eq!(
                w.1,
                written[0].1.wrapping_add(i as u16),
                "continuous: {written:?}"
            );
            assert_eq!(w.2, if i < 6 { 0 } else { 2 }, "layers: {written:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn buffers_reach_the_disk_within_the_flush_interval() {
        let dir = scratch("flush");
        let path = dir.join("a.mjr");
        let mut r = Recorders::new(ShardId(0));
        start(&mut r, 2, Medium::Audio, "opus", &path, None);
        let s = PluginSessionId(2);
        let t0 = Instant::now();
        r.rtp(t0, 0, s, false, &rtp(0, 0, 5), None);
        r.tick(t0 + FLUSH_INTERVAL / 2);
        r.tick(t0 + FLUSH_INTERVAL);
        // Without stopping (as if the process were killed now), the frame
        // is in the file once the writer has run.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let bytes = std::fs::read(&path).unwrap();
            if mjr::read(&bytes).is_ok_and(|f| f.frames.len() == 1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the frame never reached the file"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        r.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Recording's cost on the relay thread against the least a relayed
    /// packet costs there (SRTP unprotect of the sender's packet, protect of
    /// one recipient's copy), for 1200-byte video packets:
    /// `cargo test -p jsfu-shard --release --lib record::tests::cost_per_packet -- --ignored --nocapture`
    /// CPU time of the calling thread (the writer thread's work is not
    /// the relay's).
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a
        // constant the kernel supports.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    #[test]
    #[ignore = "benchmark: run in release with --ignored --nocapture"]
    fn cost_per_packet() {
        use jsfu_proto::srtp::{SrtpKeys, SrtpProfile, SrtpSession};
        const N: u16 = 30_000;
        let profile = SrtpProfile::Aes128CmSha1_80;
        let peer = SrtpKeys::new(profile, &[7; 16], &[9; 14]).unwrap();
        let local = SrtpKeys::new(profile, &[3; 16], &[4; 14]).unwrap();
        let wire = || -> Vec<Vec<u8>> {
            let mut sender = SrtpSession::outbound(&peer).unwrap();
            (0..N)
                .map(|i| {
                    let mut p = vec![0x80, 96];
                    p.extend_from_slice(&i.to_be_bytes());
                    p.extend_from_slice(&(u32::from(i) * 3000).to_be_bytes());
                    p.extend_from_slice(&0x5555u32.to_be_bytes());
                    p.resize(1200, 0xab);
                    let len = p.len();
                    p.resize(1500, 0);
                    let n = sender.protect_rtp(&mut p, len).unwrap();
                    p.truncate(n);
                    p
                })
                .collect()
        };
        let run = |packets: &[Vec<u8>], mut rec: Option<&mut Recorders>| -> Duration {
            let mut inbound = SrtpSession::inbound(&peer).unwrap();
            let mut outbound = SrtpSession::outbound(&local).unwrap();
            let mut buf = [0u8; 1500];
            let mut out = [0u8; 1500];
            let t0 = thread_cpu();
            for (i, p) in packets.iter().enumerate() {
                buf[..p.len()].copy_from_slice(p);
                let n = inbound.unprotect_rtp(&mut buf[..p.len()]).unwrap();
                if let Some(r) = rec.as_deref_mut() {
                    let now = Instant::now();
                    r.rtp(
                        now,
                        i as u64 * 33_000,
                        PluginSessionId(1),
                        true,
                        &buf[..n],
                        None,
                    );
                }
                out[..n].copy_from_slice(&buf[..n]);
                outbound.protect_rtp(&mut out, n).unwrap();
            }
            thread_cpu().saturating_sub(t0)
        };
        let dir = scratch("bench");
        let path = dir.join("v.mjr");
        let mut r = Recorders::new(ShardId(0));
        start(&mut r, 1, Medium::Video, "vp8", &path, None);
        let mut best_base = Duration::MAX;
        let mut best_rec = Duration::MAX;
        for _ in 0..3 {
            best_base = best_base.min(run(&wire(), None));
            best_rec = best_rec.min(run(&wire(), Some(&mut r)));
        }
        r.stop(PluginSessionId(1), Medium::Video);
        r.shutdown();
        let stats = r.stats();
        assert_eq!(stats.frames + stats.frames_dropped, 3 * u64::from(N));
        let per = |d: Duration| d.as_nanos() as f64 / f64::from(N);
        let (base, rec) = (per(best_base), per(best_rec));
        println!(
            "relay floor {base:.0} ns/packet, with recording {rec:.0} ns/packet (thread CPU): +{:.1} % \
             ({} frames written, {} dropped)",
            (rec - base) / base * 100.0,
            stats.frames,
            stats.frames_dropped
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
