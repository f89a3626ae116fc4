//! Several scripts in one jsfu, each its own plugin, isolated from each
//! other's faults: a script that throws, spins forever or allocates without
//! bound gets a 462 for that request, and afterwards both it and the other
//! plugins keep serving new sessions and messages. Also: `info` lists every
//! plugin with its identity, and a script written in modern JavaScript
//! (async/await, Promise) answers through pushEvent after awaiting.
//!
//! The harness's `ServerOptions` configures one script, so this file starts
//! jsfu itself with a TOML file holding several `[[scripts]]` and the
//! `[general]` script limits.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use jsfu_tests::ports::free_ports;
use jsfu_tests::{HttpClient, JANUS_PROTOCOL, Reply, Server, WsClient};
use serde_json::{Value, json};

const PROBE: &str = "janus.plugin.probe";
const FAULTY: &str = "janus.plugin.faulty";
const MODERN: &str = "janus.plugin.modern";
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// Callback budget configured for these tests.
const SCRIPT_TIMEOUT_MS: u64 = 300;
/// Engine memory limit configured for these tests.
const SCRIPT_MEMORY_MIB: u64 = 48;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// A jsfu process serving several scripts; killed on drop.
struct MultiJsfu {
    child: Child,
    ws: SocketAddr,
    http: SocketAddr,
    dir: PathBuf,
}

impl MultiJsfu {
    /// Start jsfu with `scripts` and the test limits; `None` (after saying
    /// why) when the binary has not been built.
    async fn start(scripts: &[&str]) -> Result<Option<Self>> {
        let bin = match Server::jsfu_binary() {
            Ok(bin) if bin.is_file() => bin,
            Ok(bin) => {
                eprintln!(
                    "SKIPPING: {} does not exist (cargo build -p jsfu)",
                    bin.display()
                );
                return Ok(None);
            }
            Err(e) => {
                eprintln!("SKIPPING: {e:#}");
                return Ok(None);
            }
        };
        let mut last = None;
        for attempt in 0..3 {
            match Self::launch(&bin, scripts, attempt).await {
                Ok(server) => return Ok(Some(server)),
                Err(e) => {
                    eprintln!("jsfu launch attempt {attempt} failed: {e:#}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("no launch attempt")))
    }

    async fn launch(bin: &Path, scripts: &[&str], attempt: u32) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "jsfu-isolation-{}-{}-{attempt}",
            std::process::id(),
            scripts.join("+").replace(['/', '.'], "_")
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut toml = format!(
            "[general]\nscript_timeout_ms = {SCRIPT_TIMEOUT_MS}\nscript_memory_mib = {SCRIPT_MEMORY_MIB}\n"
        );
        for name in scripts {
            let path = script(name).display().to_string();
            toml.push_str(&format!("\n[[scripts]]\nfile = {path:?}\n"));
        }
        let config = dir.join("jsfu.toml");
        fs::write(&config, toml)?;
        let ports = free_ports(3)?;
        let log = fs::File::create(dir.join("jsfu.log"))?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args([
                "--http",
                &ports[0].to_string(),
                "--ws",
                &ports[1].to_string(),
            ])
            .args(["--admin", &ports[2].to_string(), "--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let mut server = Self {
            child,
            ws: ports[1],
            http: ports[0],
            dir,
        };
        let http = HttpClient::new(format!("http://{}/janus", server.http))?;
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!(
                    "jsfu exited during startup ({status}); log:\n{}",
                    server.log()
                );
            }
            if let Ok(r) = http.get("/info").await {
                if r.status == 200 {
                    return Ok(server);
                }
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("jsfu did not come up; log:\n{}", server.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        let text = fs::read_to_string(self.dir.join("jsfu.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn client(&self) -> Result<Client> {
        Client::connect(self.ws).await
    }
}

impl Drop for MultiJsfu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- jsfu log ({}) ---\n{}", self.dir.display(), self.log());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A Janus API session over WebSocket.
struct Client {
    ws: WsClient,
    session: u64,
    next_tr: u64,
}

impl Client {
    async fn connect(ws: SocketAddr) -> Result<Self> {
        let ws = WsClient::connect(&format!("ws://{ws}/"), Some(JANUS_PROTOCOL)).await?;
        let mut client = Self {
            ws,
            session: 0,
            next_tr: 0,
        };
        let created = client.request(json!({"janus": "create"})).await?;
        client.session = created
            .expect_kind("success")?
            .data_id()
            .ok_or_else(|| anyhow!("create without data.id: {created}"))?;
        Ok(client)
    }

    async fn request(&mut self, mut body: Value) -> Result<Value> {
        self.next_tr += 1;
        body["transaction"] = json!(format!("iso-{}", self.next_tr));
        if self.session != 0 {
            body["session_id"] = json!(self.session);
        }
        self.ws.request(&body, REPLY_TIMEOUT).await
    }

    async fn attach(&mut self, plugin: &str) -> Result<u64> {
        let reply = self
            .request(json!({"janus": "attach", "plugin": plugin}))
            .await?;
        reply
            .expect_kind("success")?
            .data_id()
            .ok_or_else(|| anyhow!("attach without data.id: {reply}"))
    }

    async fn message(&mut self, handle: u64, body: Value) -> Result<Value> {
        self.request(json!({"janus": "message", "handle_id": handle, "body": body}))
            .await
    }

    /// `plugindata.data` of the next plugin event for `handle`.
    async fn event_data(&mut self, handle: u64, timeout: Duration) -> Result<Option<Value>> {
        let ev = self
            .ws
            .wait_for(timeout, |v| {
                v.kind() == "event" && v.get("sender").and_then(Value::as_u64) == Some(handle)
            })
            .await?;
        Ok(ev.and_then(|e| e.pointer("/plugindata/data").cloned()))
    }

    async fn info(&mut self) -> Result<Value> {
        let saved = self.session;
        self.session = 0;
        let info = self.request(json!({"janus": "info"})).await;
        self.session = saved;
        info
    }
}

/// The probe answers an echo synchronously on `handle`.
async fn probe_answers(c: &mut Client, handle: u64) -> Result<()> {
    let reply = c.message(handle, json!({"probe": "echo"})).await?;
    reply
        .expect_kind("success")?
        .expect_at("/plugindata/plugin", &json!(PROBE))?
        .expect_at("/plugindata/data/obs/known", &json!(true))?;
    Ok(())
}

/// faulty.js answers `ok` on `handle`; returns its message counter.
async fn faulty_answers(c: &mut Client, handle: u64) -> Result<u64> {
    let reply = c.message(handle, json!({"do": "ok"})).await?;
    reply
        .expect_kind("success")?
        .expect_at("/plugindata/plugin", &json!(FAULTY))?
        .expect_at("/plugindata/data/ok", &json!(true))?;
    reply
        .pointer("/plugindata/data/handled")
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("no handled counter in {reply}"))
}

/// After a fault: the old handles, new sessions and new handles of both
/// plugins all work, and the faulty engine kept its state.
async fn both_still_serve(
    server: &mut MultiJsfu,
    c: &mut Client,
    probe: u64,
    faulty: u64,
) -> Result<()> {
    let before = faulty_answers(c, faulty).await?;
    let after = faulty_answers(c, faulty).await?;
    if after != before + 1 {
        bail!("faulty.js lost its state: counter {before} then {after}");
    }
    probe_answers(c, probe).await?;
    let mut fresh = server.client().await?;
    let p = fresh.attach(PROBE).await?;
    let f = fresh.attach(FAULTY).await?;
    probe_answers(&mut fresh, p).await?;
    faulty_answers(&mut fresh, f).await?;
    if !server.alive() {
        bail!("jsfu exited");
    }
    Ok(())
}

/// Send a faulting message and check it fails with 462 `Duktape error`
/// within `limit`.
async fn expect_fault(c: &mut Client, handle: u64, what: &str, limit: Duration) -> Result<()> {
    let started = Instant::now();
    let reply = c.message(handle, json!({"do": what})).await?;
    let took = started.elapsed();
    reply.expect_error_reason(462, "Duktape error")?;
    if took > limit {
        bail!("{what}: the 462 took {took:?} (limit {limit:?})");
    }
    Ok(())
}

#[tokio::test]
async fn a_throwing_script_gets_462_and_everything_keeps_working() -> Result<()> {
    let Some(mut server) = MultiJsfu::start(&["contract-probe.js", "faulty.js"]).await? else {
        return Ok(());
    };
    let mut c = server.client().await?;
    let probe = c.attach(PROBE).await?;
    let faulty = c.attach(FAULTY).await?;
    expect_fault(&mut c, faulty, "throw", Duration::from_secs(5)).await?;
    both_still_serve(&mut server, &mut c, probe, faulty).await?;
    // Faults outside any request (resumeScheduler, timer) are only logged.
    let reply = c
        .message(faulty, json!({"do": "later", "what": "throw"}))
        .await?;
    reply.expect_kind("success")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    both_still_serve(&mut server, &mut c, probe, faulty).await
}

#[tokio::test]
async fn an_endless_loop_is_interrupted() -> Result<()> {
    let Some(mut server) = MultiJsfu::start(&["contract-probe.js", "faulty.js"]).await? else {
        return Ok(());
    };
    let mut c = server.client().await?;
    let probe = c.attach(PROBE).await?;
    let faulty = c.attach(FAULTY).await?;
    expect_fault(&mut c, faulty, "loop", Duration::from_secs(5)).await?;
    both_still_serve(&mut server, &mut c, probe, faulty).await?;
    // While faulty.js spins, the probe (another engine) is not blocked.
    let mut other = server.client().await?;
    let other_probe = other.attach(PROBE).await?;
    let spinning = tokio::spawn(async move {
        let result = expect_fault(&mut c, faulty, "loop", Duration::from_secs(5)).await;
        (c, result)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    probe_answers(&mut other, other_probe).await?;
    let took = started.elapsed();
    let (mut c, result) = spinning.await.context("joining the spinning request")?;
    result?;
    if took > Duration::from_millis(SCRIPT_TIMEOUT_MS * 2 / 3) {
        eprintln!("note: the probe answered in {took:?} while faulty.js was spinning");
    }
    // Loops in resumeScheduler and in a timer are interrupted too.
    let reply = c
        .message(faulty, json!({"do": "later", "what": "loop"}))
        .await?;
    reply.expect_kind("success")?;
    tokio::time::sleep(Duration::from_millis(SCRIPT_TIMEOUT_MS * 3)).await;
    both_still_serve(&mut server, &mut c, probe, faulty).await
}

#[tokio::test]
async fn unbounded_allocation_stops_at_the_memory_limit() -> Result<()> {
    let Some(mut server) = MultiJsfu::start(&["contract-probe.js", "faulty.js"]).await? else {
        return Ok(());
    };
    let mut c = server.client().await?;
    let probe = c.attach(PROBE).await?;
    let faulty = c.attach(FAULTY).await?;
    expect_fault(&mut c, faulty, "alloc", Duration::from_secs(10)).await?;
    both_still_serve(&mut server, &mut c, probe, faulty).await?;
    // Again: the memory was given back.
    expect_fault(&mut c, faulty, "alloc", Duration::from_secs(10)).await?;
    both_still_serve(&mut server, &mut c, probe, faulty).await?;
    // Unbounded recursion.
    expect_fault(&mut c, faulty, "stack", Duration::from_secs(10)).await?;
    both_still_serve(&mut server, &mut c, probe, faulty).await
}

#[tokio::test]
async fn several_packages_are_served_and_listed() -> Result<()> {
    let Some(mut server) =
        MultiJsfu::start(&["contract-probe.js", "faulty.js", "modern.js"]).await?
    else {
        return Ok(());
    };
    let mut c = server.client().await?;
    let info = c.info().await?;
    info.expect_kind("server_info")?;
    info.expect_at(
        "/plugins/janus.plugin.probe",
        &json!({"name": "Contract probe", "author": "jsfu tests", "description": "Script contract probe",
                "version_string": "7.9.0", "version": 7}),
    )?;
    // faulty.js's getters return junk or throw: defaults (compat-notes §5 #20).
    info.expect_at(
        "/plugins/janus.plugin.faulty",
        &json!({"name": "Janus JavaScript plugin (Duktape)", "author": "jsfu tests",
                "description": "A custom plugin for implementing the logic in JavaScript, via Duktape.",
                "version_string": "0.0.1", "version": 1}),
    )?;
    info.expect_at(
        "/plugins/janus.plugin.modern",
        &json!({"name": "Modern JavaScript plugin", "author": "Meetecho s.r.l.",
                "description": "A custom plugin for implementing the logic in JavaScript, via Duktape.",
                "version_string": "2.0.0", "version": 2}),
    )?;
    let plugins = info["plugins"].as_object().map(|m| m.len()).unwrap_or(0);
    if plugins != 3 {
        bail!("expected exactly 3 plugins, got {}", info["plugins"]);
    }
    // One session, a handle on each plugin; replies carry the right package.
    let probe = c.attach(PROBE).await?;
    let faulty = c.attach(FAULTY).await?;
    let modern = c.attach(MODERN).await?;
    probe_answers(&mut c, probe).await?;
    faulty_answers(&mut c, faulty).await?;
    let reply = c.message(modern, json!({"mode": "unhandled"})).await?;
    reply
        .expect_kind("success")?
        .expect_at("/plugindata/plugin", &json!(MODERN))?;
    let reply = c
        .request(json!({"janus": "attach", "plugin": "janus.plugin.duktape"}))
        .await?;
    reply.expect_error(460)?;
    // Each plugin has its own engine: the probe's sessions are its own.
    let reply = c.message(probe, json!({"probe": "echo"})).await?;
    reply.expect_at("/plugindata/data/obs/known", &json!(true))?;
    if !server.alive() {
        bail!("jsfu exited");
    }
    Ok(())
}

#[tokio::test]
async fn modern_javascript_answers_after_awaiting() -> Result<()> {
    let Some(mut server) = MultiJsfu::start(&["modern.js"]).await? else {
        return Ok(());
    };
    let mut c = server.client().await?;
    let h = c.attach(MODERN).await?;
    let reply = c.message(h, json!({"echo": "hi"})).await?;
    reply.expect_kind("ack")?;
    let data = c
        .event_data(h, Duration::from_secs(5))
        .await?
        .ok_or_else(|| anyhow!("no event after awaiting timers, the scheduler and promises"))?;
    if data
        != json!({"modern": "done", "steps": ["resolved", "timers", "tick", "caught rejected"], "echo": "hi"})
    {
        bail!("unexpected event {data}");
    }
    // Only microtasks: the job queue is drained right after handleMessage.
    let reply = c.message(h, json!({"mode": "micro"})).await?;
    reply.expect_kind("ack")?;
    let data = c
        .event_data(h, Duration::from_secs(2))
        .await?
        .ok_or_else(|| anyhow!("no event from the microtask-only path"))?;
    if data != json!({"modern": "micro", "sum": 45}) {
        bail!("unexpected event {data}");
    }
    // An unhandled rejection does not break the engine.
    c.message(h, json!({"mode": "unhandled"}))
        .await?
        .expect_kind("success")?;
    let reply = c.message(h, json!({"echo": "again"})).await?;
    reply.expect_kind("ack")?;
    let data = c
        .event_data(h, Duration::from_secs(5))
        .await?
        .ok_or_else(|| anyhow!("no event on the second run"))?;
    if data["echo"] != "again" {
        bail!("unexpected event {data}");
    }
    if !server.alive() {
        bail!("jsfu exited");
    }
    Ok(())
}

/// Scheduler and timers through the API, with two engines busy at once:
/// five pokes of the probe give exactly five resumes (events, in order) and
/// its timers fire in time order, while faulty.js faults in its own
/// scheduler and timers.
#[tokio::test]
async fn scheduler_and_timers_per_plugin() -> Result<()> {
    let Some(mut server) = MultiJsfu::start(&["contract-probe.js", "faulty.js"]).await? else {
        return Ok(());
    };
    let mut c = server.client().await?;
    let probe = c.attach(PROBE).await?;
    let faulty = c.attach(FAULTY).await?;
    c.message(faulty, json!({"do": "later", "what": "throw"}))
        .await?
        .expect_kind("success")?;
    c.message(probe, json!({"probe": "sched"}))
        .await?
        .expect_kind("ack")?;
    let mut sched = Vec::new();
    while let Some(d) = c.event_data(probe, Duration::from_secs(2)).await? {
        sched.push(d);
    }
    let numbers: Vec<Value> = sched
        .iter()
        .filter_map(|d| d.get("sched").cloned())
        .collect();
    if numbers
        != [
            json!("poked"),
            json!(1),
            json!(2),
            json!(3),
            json!(4),
            json!(5),
        ]
    {
        bail!("five pokes must give five resumes in order, got {sched:?}");
    }
    c.message(probe, json!({"probe": "timers"}))
        .await?
        .expect_kind("ack")?;
    let started = Instant::now();
    let mut fired = Vec::new();
    while let Some(d) = c.event_data(probe, Duration::from_millis(900)).await? {
        if let Some(t) = d.get("timer") {
            fired.push((t.clone(), started.elapsed()));
        }
    }
    let names: Vec<&Value> = fired.iter().map(|(n, _)| n).collect();
    if names != [&json!("(none)"), &json!("a"), &json!("b"), &json!("c")] {
        bail!("timers must fire in time order, got {fired:?}");
    }
    // c was registered for 400 ms: it may not fire much earlier.
    if let Some((_, at)) = fired.last() {
        if *at < Duration::from_millis(300) {
            bail!("the 400 ms timer fired after {at:?}");
        }
    }
    both_still_serve(&mut server, &mut c, probe, faulty).await
}
