//! Debian's stock VideoRoom demo page (`janus-demos`:
//! `/usr/share/janus/demos/videoroomtest.html`, unchanged) in three headless
//! Chromium pages with fake devices, driven by
//! `tests/videoroom/demo_videoroom.mjs`: everybody joins room 1234, sees the
//! two others' video playing (videoWidth > 0, frames increasing); one
//! leaves and the others drop its video.
//!
//! Servers: jsfu with `scripts/videoroom.js` serving the stock folder
//! itself (`--demos /usr/share/janus/demos`, exactly as the README tells
//! users), and the real Janus with its native VideoRoom plugin, which proves
//! the test; its pages come from a plain static server over a copy of the
//! folder with its symbolic links resolved (`javascript` links to
//! `/usr/share/javascript`), and the page is given the `token`/`apisecret`
//! globals Debian's `settings.js` lacks (jsfu's demo server declares them
//! itself). The page talks to `http://<host>:8088/janus`, so each run
//! happens in a private network namespace (`tests/browser/netns-run.sh`,
//! needs root), where port 8088 is free and Chromium uses the loopback for
//! ICE.
//!
//! Needs node with `npm ci` in `tests/browser`, Chromium and `janus-demos`;
//! skipped otherwise, except in CI.

mod browser_support;
#[allow(dead_code)]
mod videoroom_support;

use std::any::Any;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use browser_support::{
    StaticServer, browser_lock, browser_missing, in_netns, require, rerun_in_netns,
    run_with_timeout,
};
use jsfu_tests::selected_flavors;
use jsfu_tests::server::{Flavor, Server};
use videoroom_support::{DEMO_ROOM, JanusSetup, NativeJanus};

const STOCK_DEMOS: &str = "/usr/share/janus/demos";
/// The port the stock `settings.js` points the pages at.
const API_PORT: u16 = 8088;

fn demo(test: &str, flavor: Flavor) -> Result<()> {
    if !selected_flavors().contains(&flavor) {
        eprintln!("SKIPPED: {flavor} is not selected by JSFU_TEST_SERVERS");
        return Ok(());
    }
    if !require(browser_missing())? {
        return Ok(());
    }
    let page = Path::new(STOCK_DEMOS).join("videoroomtest.html");
    if !page.is_file()
        && !require(Some(format!(
            "{} is missing (apt-get install janus-demos)",
            page.display()
        )))?
    {
        return Ok(());
    }
    if !in_netns() {
        let _one_browser = browser_lock();
        return rerun_in_netns(test, Duration::from_secs(240));
    }
    // `_server` (what serves the test) is held until the end of the run.
    let (url, _server, declare_globals) = match flavor {
        Flavor::Jsfu => {
            let child = Command::new(Server::jsfu_binary()?)
                .args(["--script"])
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/videoroom.js"))
                .args([
                    "--http",
                    &format!("127.0.0.1:{API_PORT}"),
                    "--ws",
                    "off",
                    "--admin",
                    "off",
                ])
                .arg("--demos")
                .arg(STOCK_DEMOS)
                .args(["--rtp-port-base", "0", "--media-ip", "127.0.0.1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting jsfu")?;
            let guard: Box<dyn Any> = Box::new(Killed(child));
            wait_port(API_PORT)?;
            (
                format!("http://127.0.0.1:{API_PORT}/videoroomtest.html"),
                guard,
                false,
            )
        }
        Flavor::Janus => {
            let setup = JanusSetup {
                http_port: Some(API_PORT),
                rooms: DEMO_ROOM.to_owned(),
            };
            let Some(janus) = NativeJanus::start(&setup) else {
                bail!("Janus's native VideoRoom plugin is not installed");
            };
            wait_port(API_PORT)?;
            let copy = DemoCopy::make()?;
            let pages = StaticServer::start(copy.0.clone())?;
            let url = format!("{}/videoroomtest.html", pages.url());
            let guard: Box<dyn Any> = Box::new((janus, pages, copy));
            (url, guard, true)
        }
    };
    let mut cmd = Command::new("node");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("videoroom/demo_videoroom.mjs"))
        .args(["--url", &url]);
    if declare_globals {
        cmd.arg("--declare-globals");
    }
    let out = run_with_timeout(cmd, Duration::from_secs(150))?;
    println!("{}", out.text);
    let passed = out.text.lines().any(|l| {
        serde_json::from_str::<serde_json::Value>(l.trim())
            .is_ok_and(|v| v["ok"] == serde_json::Value::Bool(true) && v.get("checks").is_some())
    });
    if !out.success || !passed {
        bail!("the VideoRoom demo failed against {flavor} (output above)");
    }
    Ok(())
}

/// The stock demo pages copied with their symbolic links resolved; removed
/// when dropped.
struct DemoCopy(PathBuf);

impl DemoCopy {
    fn make() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("jsfu-videoroom-demos-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let status = Command::new("cp")
            .arg("-rL")
            .arg(STOCK_DEMOS)
            .arg(&dir)
            .status()
            .context("running cp")?;
        if !status.success() {
            bail!("copying {STOCK_DEMOS} failed");
        }
        Ok(Self(dir))
    }
}

impl Drop for DemoCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

#[test]
fn videoroom_demo_three_browsers_jsfu() -> Result<()> {
    demo("videoroom_demo_three_browsers_jsfu", Flavor::Jsfu)
}

#[test]
fn videoroom_demo_three_browsers_native_janus() -> Result<()> {
    demo("videoroom_demo_three_browsers_native_janus", Flavor::Janus)
}
