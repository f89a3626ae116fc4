//! Janode (Meetecho's Node.js client, npm `janode`) against the server over
//! WebSocket, as it would talk to Janus: `tests/browser/janode.mjs` gets the
//! server info, creates a session, attaches `janus.plugin.echojs` with
//! Janode's EchoTest handle, sends messages with and without an offer (the
//! answer comes in an event), trickles, hangs up and detaches (receiving the
//! hangup and detached events), destroys the session and closes.
//!
//! Servers: jsfu and the real Janus with Debian's `echotest.js`, and jsfu
//! with `scripts/echotest.js`. Needs `node` and `npm ci` in `tests/browser`;
//! without them the tests are skipped, except in CI.

mod browser_support;

use std::time::Duration;

use anyhow::{Result, bail};
use browser_support::{node_missing, repo_root, require, run_node};
use jsfu_tests::{ECHOTEST_PACKAGE, Flavor, Server, ServerOptions, selected_flavors};

fn janode(flavor: Flavor, options: &ServerOptions) -> Result<()> {
    if !selected_flavors().contains(&flavor) {
        eprintln!("SKIPPED: {flavor} is not selected by JSFU_TEST_SERVERS");
        return Ok(());
    }
    if !require(node_missing())? {
        return Ok(());
    }
    let server = match Server::start(flavor, options)? {
        Some(server) => server,
        None if require(Some(
            "Janus is not installed (apt-get install janus)".into(),
        ))? =>
        {
            bail!("{flavor} is not installed")
        }
        None => return Ok(()),
    };
    let args = vec![
        "--url".to_owned(),
        server.ws_url(),
        "--plugin".to_owned(),
        ECHOTEST_PACKAGE.to_owned(),
    ];
    match run_node("janode.mjs", &args, Duration::from_secs(60)) {
        Ok(text) => {
            println!("{text}");
            Ok(())
        }
        Err(e) => bail!("{e:#}\n--- {flavor} log ---\n{}", server.log_tail(60)),
    }
}

#[test]
fn janode_with_jsfu() -> Result<()> {
    janode(Flavor::Jsfu, &ServerOptions::echotest())
}

#[test]
fn janode_with_jsfu_own_echotest() -> Result<()> {
    janode(
        Flavor::Jsfu,
        &ServerOptions::script(repo_root().join("scripts").join("echotest.js")),
    )
}

#[test]
fn janode_with_janus() -> Result<()> {
    janode(Flavor::Janus, &ServerOptions::echotest())
}
