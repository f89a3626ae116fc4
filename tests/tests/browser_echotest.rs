//! The echo-test demo page (`demos/index.html`, janus.js from npm) in Debian's
//! headless Chromium, driven by `tests/browser/echotest.mjs` (playwright-core):
//! it reaches `webrtcup`, the echoed video plays (`videoWidth > 0`),
//! getStats shows inbound audio and video packets increasing, the
//! data-channel echo arrives, the video stops and resumes with the `video`
//! request, the bitrate and substream requests are accepted, and the hangup
//! is clean. A screenshot of each run is saved under `artifacts/browser/`.
//!
//! Servers: jsfu (which serves the page itself, from its default demos
//! folder) and the real Janus (the page comes from a static server of the
//! test), each with Debian's unchanged `echotest.js` and with jsfu's
//! `scripts/echotest.js`.
//!
//! Chromium never gathers ICE candidates on a loopback interface: each test
//! re-runs itself, server and browser, inside a private network namespace
//! (`tests/browser/netns-run.sh`, needs root). Prerequisites: see
//! `browser_support`; without them the tests are skipped, except in CI.

mod browser_support;

use std::time::Duration;

use anyhow::{Result, bail};
use browser_support::{
    StaticServer, artifact, browser_lock, browser_missing, demos_dir, in_netns, repo_root, require,
    rerun_in_netns, run_node,
};
use jsfu_tests::{Flavor, Server, ServerOptions, selected_flavors};

/// Which echo-test script the server runs.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Debian's `/usr/share/janus/duktape/echotest.js`, unchanged.
    Debian,
    /// jsfu's `scripts/echotest.js`.
    Jsfu,
}

impl Script {
    fn options(self) -> ServerOptions {
        match self {
            Self::Debian => ServerOptions::echotest(),
            Self::Jsfu => ServerOptions::script(repo_root().join("scripts").join("echotest.js")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Debian => "debian-echotest",
            Self::Jsfu => "jsfu-echotest",
        }
    }
}

fn echo_page(test: &str, flavor: Flavor, script: Script) -> Result<()> {
    if !selected_flavors().contains(&flavor) {
        eprintln!("SKIPPED: {flavor} is not selected by JSFU_TEST_SERVERS");
        return Ok(());
    }
    if !require(browser_missing())? {
        return Ok(());
    }
    if flavor == Flavor::Janus
        && Server::janus_binary().is_none()
        && !require(Some(
            "Janus is not installed (apt-get install janus)".into(),
        ))?
    {
        return Ok(());
    }
    if !in_netns() {
        let _one_browser = browser_lock();
        return rerun_in_netns(test, Duration::from_secs(240));
    }

    let server = match Server::start(flavor, &script.options())? {
        Some(server) => server,
        None => bail!("{flavor} is not installed"),
    };
    // jsfu serves the page next to /janus; Janus does not, so a static server
    // of this test does and the page is pointed at Janus's API.
    let static_server;
    let url = match flavor {
        Flavor::Jsfu => format!("http://{}/", server.endpoints().http),
        Flavor::Janus => {
            static_server = StaticServer::start(demos_dir())?;
            format!("{}/?server={}", static_server.url(), server.api_url())
        }
    };
    let shot = artifact(&format!("echotest-{flavor}-{}.png", script.name()));
    let _ = std::fs::remove_file(&shot);
    let args = vec![
        "--url".to_owned(),
        url,
        "--screenshot".to_owned(),
        shot.display().to_string(),
        "--expect-prefix".to_owned(),
        "[".to_owned(),
    ];
    match run_node("echotest.mjs", &args, Duration::from_secs(150)) {
        Ok(text) => println!("{text}"),
        Err(e) => bail!("{e:#}\n--- {flavor} log ---\n{}", server.log_tail(80)),
    }
    if !shot.is_file() {
        bail!("no screenshot at {}", shot.display());
    }
    Ok(())
}

#[test]
fn jsfu_debian_echotest_in_chromium() -> Result<()> {
    echo_page(
        "jsfu_debian_echotest_in_chromium",
        Flavor::Jsfu,
        Script::Debian,
    )
}

#[test]
fn jsfu_own_echotest_in_chromium() -> Result<()> {
    echo_page("jsfu_own_echotest_in_chromium", Flavor::Jsfu, Script::Jsfu)
}

#[test]
fn janus_debian_echotest_in_chromium() -> Result<()> {
    echo_page(
        "janus_debian_echotest_in_chromium",
        Flavor::Janus,
        Script::Debian,
    )
}

#[test]
fn janus_own_echotest_in_chromium() -> Result<()> {
    echo_page(
        "janus_own_echotest_in_chromium",
        Flavor::Janus,
        Script::Jsfu,
    )
}
