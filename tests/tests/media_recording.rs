//! Recording end to end (issue 5, recording.md): Debian's unchanged
//! `echotest.js` records an aiortc peer (`tests/media/record_echo.py`: Opus
//! audio, VP8 video, a data channel) into `/tmp` on `{"record": true}`;
//! `janus-pp-rec` must turn the audio file into `.opus` and the video file
//! into `.webm`, `ffprobe` must read both, and their durations must be within
//! 10 % of the time recorded. The data recording, when it holds messages,
//! must convert to subtitles with the messages sent.
//!
//! The second case kills the server with SIGKILL mid-recording: the files it
//! leaves must convert the same way, up to (almost) the kill.
//!
//! Needs `python3` with the packages of `tests/media/requirements.txt`,
//! `janus-pp-rec` (Debian `janus-tools`) and `ffprobe` (Debian `ffmpeg`).
//! The server is started here rather than through [`jsfu_tests::Server`]
//! because the second case must SIGKILL the server process itself.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use jsfu_tests::ports::free_ports;
use jsfu_tests::{ECHOTEST_SCRIPT, Server};
use serde_json::Value;

/// The cases stream real-time media: run them one at a time so that CPU
/// contention on small machines does not distort the timing.
static SERIAL: Mutex<()> = Mutex::new(());

/// How long each case records.
const RECORD_SECONDS: f64 = 5.0;

/// Allowed relative difference between a converted file's duration and the
/// time recorded.
const TOLERANCE: f64 = 0.10;

/// A jsfu process started by this test; killed (SIGKILL) when dropped.
struct Jsfu {
    child: Child,
    api: String,
    log: PathBuf,
}

impl Jsfu {
    fn start(name: &str) -> Result<Self> {
        let bin = Server::jsfu_binary()?;
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("media-recording-{name}"));
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("jsfu.log");
        let ports = free_ports(2)?;
        let (http, admin) = (ports[0], ports[1]);
        let child = Command::new(&bin)
            .current_dir(&dir)
            .args([
                "--http",
                &http.to_string(),
                "--ws",
                "off",
                "--admin",
                &admin.to_string(),
            ])
            .args(["--rtp-port-base", "0", "--media-ip", "127.0.0.1"])
            .args(["--recordings-dir", &dir.display().to_string()])
            .args(["--recordings-allowed", "/tmp"])
            .args(["--script", ECHOTEST_SCRIPT, "--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(dir.join("jsfu.stderr"))?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let jsfu = Self {
            child,
            api: format!("http://{http}/janus"),
            log,
        };
        jsfu.wait_listening(http)?;
        Ok(jsfu)
    }

    fn wait_listening(&self, addr: SocketAddr) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("jsfu did not listen on {addr}; log: {}", self.log_tail())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGKILL (std's `Child::kill` on Unix) and reap.
    fn kill(&mut self) -> Result<()> {
        self.child.kill().context("killing jsfu")?;
        self.child.wait().context("reaping jsfu")?;
        Ok(())
    }
}

impl Drop for Jsfu {
    fn drop(&mut self) {
        // Already gone after `kill`.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files echotest.js writes for `base`, removed when dropped.
struct Recordings {
    base: String,
}

impl Recordings {
    fn new(case: &str) -> Self {
        let base = format!("jsfu-media-recording-{}-{case}", std::process::id());
        let me = Self { base };
        me.remove();
        me
    }

    fn path(&self, medium: &str, ext: &str) -> PathBuf {
        PathBuf::from(format!("/tmp/{}-{medium}.{ext}", self.base))
    }

    fn remove(&self) {
        for medium in ["audio", "video", "data"] {
            for ext in ["mjr", "opus", "webm", "srt"] {
                let _ = std::fs::remove_file(self.path(medium, ext));
            }
        }
    }
}

impl Drop for Recordings {
    fn drop(&mut self) {
        self.remove();
    }
}

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("media/record_echo.py")
}

/// Runs the client; `on_started` is called once the recording started (the
/// client logs it) and may kill the server.
fn run_client(
    jsfu: &mut Jsfu,
    rec: &Recordings,
    no_stop: bool,
    on_started: impl FnOnce(&mut Jsfu) -> Result<()>,
) -> Result<Value> {
    let mut cmd = Command::new("python3");
    cmd.arg(client_script())
        .args(["--url", &jsfu.api, "--filename", &rec.base])
        .args(["--seconds", &RECORD_SECONDS.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if no_stop {
        cmd.arg("--no-stop");
    }
    let mut child = cmd
        .spawn()
        .context("starting python3 (tests/media/record_echo.py)")?;
    let stderr = child.stderr.take().context("client stderr")?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("recording started") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = rx.recv_timeout(Duration::from_secs(60));
    let hook = match started {
        Ok(()) => on_started(jsfu),
        Err(_) => Ok(()),
    };
    let output = child.wait_with_output().context("waiting for the client")?;
    let log = reader.join().unwrap_or_default();
    hook?;
    ensure!(
        started.is_ok() && output.status.success(),
        "client failed ({}):\n{log}\nstdout: {}\nserver log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        jsfu.log_tail()
    );
    let summary: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "client summary: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })?;
    Ok(summary)
}

/// `janus-pp-rec in out`; its output on success.
fn convert(from: &Path, to: &Path) -> Result<String> {
    let out = Command::new("janus-pp-rec")
        .arg(from)
        .arg(to)
        .output()
        .context("running janus-pp-rec (Debian janus-tools)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "janus-pp-rec {} failed:\n{text}",
        from.display()
    );
    Ok(text)
}

/// The container duration ffprobe reads, in seconds.
fn duration(path: &Path) -> Result<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(path)
        .output()
        .context("running ffprobe (Debian ffmpeg)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "ffprobe {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text.trim()
        .parse::<f64>()
        .with_context(|| format!("ffprobe duration of {}: {text:?}", path.display()))
}

/// The codec ffprobe sees in the first stream.
fn codec(path: &Path) -> Result<String> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(path)
        .output()
        .context("running ffprobe")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// Converts audio and video and checks codecs and durations against
/// `recorded` seconds; returns the two durations.
fn check_media(rec: &Recordings, recorded: f64) -> Result<(f64, f64)> {
    let mut durations = Vec::new();
    for (medium, ext, expected_codec) in [("audio", "opus", "opus"), ("video", "webm", "vp8")] {
        let mjr = rec.path(medium, "mjr");
        let bytes = std::fs::read(&mjr).with_context(|| format!("reading {}", mjr.display()))?;
        ensure!(
            bytes.starts_with(b"MJR00002"),
            "{} does not start with the MJR magic",
            mjr.display()
        );
        let out = rec.path(medium, ext);
        let log = convert(&mjr, &out)?;
        ensure!(
            !log.contains("unexpected SSRC"),
            "{medium}: packets with a foreign SSRC:\n{log}"
        );
        assert_eq!(codec(&out)?, expected_codec, "{medium} codec");
        let d = duration(&out)?;
        eprintln!("{medium}: {d:.3} s for {recorded:.3} s recorded");
        ensure!(
            (d - recorded).abs() <= recorded * TOLERANCE,
            "{medium} lasts {d:.3} s, recorded {recorded:.3} s (more than {:.0} % apart)",
            TOLERANCE * 100.0
        );
        durations.push(d);
    }
    Ok((durations[0], durations[1]))
}

/// The data recording: when it holds messages, its subtitles must list the
/// messages sent (in order; after a kill, the ones sent before it).
fn check_data(rec: &Recordings, sent: &[String], complete: bool) -> Result<()> {
    let mjr = rec.path("data", "mjr");
    let bytes = std::fs::read(&mjr).with_context(|| format!("reading {}", mjr.display()))?;
    ensure!(
        bytes.starts_with(b"MJR00002"),
        "{} does not start with the MJR magic",
        mjr.display()
    );
    if bytes.len() == 8 {
        eprintln!("data: no message was recorded (the data path does not feed the recorder)");
        return Ok(());
    }
    let srt = rec.path("data", "srt");
    convert(&mjr, &srt)?;
    let text = std::fs::read_to_string(&srt)?;
    let got: Vec<&str> = text.lines().filter(|l| l.starts_with("message ")).collect();
    eprintln!(
        "data: {} of {} messages in the subtitles",
        got.len(),
        sent.len()
    );
    ensure!(!got.is_empty(), "no message in {}:\n{text}", srt.display());
    ensure!(
        sent.iter()
            .map(String::as_str)
            .zip(&got)
            .all(|(a, b)| a == *b),
        "subtitles {got:?}, sent {sent:?}"
    );
    // After a kill the client went on sending: only a prefix was recorded.
    if complete {
        ensure!(got.len() == sent.len(), "subtitles {got:?}, sent {sent:?}");
    }
    Ok(())
}

fn sent_messages(summary: &Value) -> Vec<String> {
    summary["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn echotest_recording_converts_with_janus_pp_rec() -> Result<()> {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rec = Recordings::new("stop");
    let mut jsfu = Jsfu::start("stop")?;
    let summary = run_client(&mut jsfu, &rec, false, |_| Ok(()))?;
    let recorded = summary["recorded_seconds"]
        .as_f64()
        .context("recorded_seconds")?;
    // The files are renamed/closed by the writer right after the stop.
    std::thread::sleep(Duration::from_millis(300));
    check_media(&rec, recorded)?;
    check_data(&rec, &sent_messages(&summary), true)?;
    Ok(())
}

#[test]
fn recording_survives_sigkill() -> Result<()> {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let rec = Recordings::new("kill");
    let mut jsfu = Jsfu::start("kill")?;
    let kill_after = Duration::from_secs_f64(RECORD_SECONDS * 0.8);
    let mut recorded = 0.0;
    let summary = run_client(&mut jsfu, &rec, true, |jsfu| {
        let started = Instant::now();
        std::thread::sleep(kill_after);
        jsfu.kill()?;
        recorded = started.elapsed().as_secs_f64();
        Ok(())
    })?;
    check_media(&rec, recorded)?;
    check_data(&rec, &sent_messages(&summary), false)?;
    Ok(())
}
