//! Running one test body against every server flavor and transport, and
//! comparing what the servers answered.
//!
//! A test file declares its servers once, in a `static`:
//!
//! ```no_run
//! use jsfu_tests::{Case, Reply, ServerOptions, Servers};
//! use serde_json::json;
//!
//! static SERVERS: Servers = Servers::new(ServerOptions::echotest);
//!
//! #[tokio::test]
//! async fn keepalive() -> anyhow::Result<()> {
//!     Case::new("keepalive")
//!         .run(&SERVERS, async |t| {
//!             let s = t.create_session().await?;
//!             t.request(json!({"janus": "keepalive", "session_id": s})).await?.expect_kind("ack")?;
//!             Ok(())
//!         })
//!         .await
//! }
//! ```
//!
//! The servers start on first use and stay up for the rest of the test
//! binary (they are stopped when it exits, see [`crate::server`]); tests of
//! one file share them, so every test must create its own sessions. The body
//! runs once per (flavor, transport); then, for each transport, the
//! transcript of jsfu is compared with the transcript of Janus.
//!
//! Environment: `JSFU_TEST_SERVERS` selects flavors (`jsfu,janus` by
//! default; e.g. `janus` to validate tests against the reference alone).
//! When Janus is not installed its runs are skipped with a message.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::api::{Api, Entry, Transport};
use crate::compare::{IdMap, compare_transcripts};
use crate::server::{Flavor, Server, ServerOptions};

/// Lazily started servers of both flavors with the same options.
#[derive(Debug)]
pub struct Servers {
    options: fn() -> ServerOptions,
    jsfu: OnceLock<Result<Arc<Server>, String>>,
    janus: OnceLock<Result<Option<Arc<Server>>, String>>,
}

impl Servers {
    /// Servers started with `options()` on first use.
    pub const fn new(options: fn() -> ServerOptions) -> Self {
        Self {
            options,
            jsfu: OnceLock::new(),
            janus: OnceLock::new(),
        }
    }

    /// The server of `flavor`, started if needed; `Ok(None)` when Janus is
    /// not installed. A failed start is remembered (and reported by every
    /// test that asks).
    pub fn get(&self, flavor: Flavor) -> Result<Option<Arc<Server>>> {
        let result = match flavor {
            Flavor::Jsfu => self
                .jsfu
                .get_or_init(|| {
                    Server::jsfu(&(self.options)())
                        .map(Arc::new)
                        .map_err(|e| format!("{e:#}"))
                })
                .clone()
                .map(Some),
            Flavor::Janus => self
                .janus
                .get_or_init(|| {
                    Server::janus(&(self.options)())
                        .map(|s| s.map(Arc::new))
                        .map_err(|e| format!("{e:#}"))
                })
                .clone(),
        };
        result.map_err(anyhow::Error::msg)
    }
}

/// The flavors to test: `JSFU_TEST_SERVERS` (comma-separated), default both.
pub fn selected_flavors() -> Vec<Flavor> {
    match std::env::var("JSFU_TEST_SERVERS") {
        Ok(list) => {
            let mut out = Vec::new();
            for name in list.split(',').map(str::trim) {
                match name {
                    "jsfu" => out.push(Flavor::Jsfu),
                    "janus" => out.push(Flavor::Janus),
                    _ => {}
                }
            }
            out
        }
        Err(_) => vec![Flavor::Jsfu, Flavor::Janus],
    }
}

/// One test case: which transports, what to ignore when comparing, how long.
#[derive(Debug, Clone)]
pub struct Case {
    name: String,
    transports: Vec<Transport>,
    ignore: Vec<String>,
    compare: bool,
    timeout: Duration,
}

impl Case {
    /// A case over both transports, compared, with a 60 s limit per run.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            transports: Transport::ALL.to_vec(),
            ignore: Vec::new(),
            compare: true,
            timeout: Duration::from_secs(60),
        }
    }

    /// Only over HTTP.
    pub fn http_only(mut self) -> Self {
        self.transports = vec![Transport::Http];
        self
    }

    /// Only over WebSocket.
    pub fn ws_only(mut self) -> Self {
        self.transports = vec![Transport::Ws];
        self
    }

    /// Members (dotted paths such as `error.reason`) that are not compared.
    pub fn ignore(mut self, paths: &[&str]) -> Self {
        self.ignore.extend(paths.iter().map(|p| (*p).to_owned()));
        self
    }

    /// Do not compare the servers' transcripts (only the body's assertions count).
    pub fn no_compare(mut self) -> Self {
        self.compare = false;
        self
    }

    /// The limit for one run of the body.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Run `body` for every selected flavor and every transport of the case,
    /// then compare transcripts. Fails with every failure found (each run is
    /// labelled `flavor/transport` and quotes the end of the server log).
    pub async fn run<F>(self, servers: &Servers, body: F) -> Result<()>
    where
        F: AsyncFn(&mut Api) -> Result<()>,
    {
        let mut failures: Vec<String> = Vec::new();
        let mut targets = Vec::new();
        for flavor in selected_flavors() {
            match servers.get(flavor) {
                Ok(Some(server)) => targets.push(server),
                Ok(None) => eprintln!("{}: skipping {flavor}: real Janus not installed", self.name),
                Err(e) => failures.push(format!("[{flavor}] server did not start: {e:#}")),
            }
        }
        // Flavors run concurrently (separate servers); the transports of one
        // flavor run one after the other (a body may change server state).
        let body = &body;
        let this = &self;
        let runs = targets.into_iter().map(|server| async move {
            let mut failures = Vec::new();
            let mut transcripts = Vec::new();
            for &transport in &this.transports {
                let label = format!("{}/{transport}", server.flavor());
                let mut api = match Api::connect(server.clone(), transport).await {
                    Ok(api) => api,
                    Err(e) => {
                        failures.push(format!("[{label}] cannot connect: {e:#}"));
                        continue;
                    }
                };
                match tokio::time::timeout(this.timeout, body(&mut api)).await {
                    Ok(Ok(())) => transcripts.push((
                        server.flavor(),
                        transport,
                        api.transcript().to_vec(),
                        api.ids().clone(),
                    )),
                    Ok(Err(e)) => failures.push(format!(
                        "[{label}] {e:#}\n  --- {label} server log ({}), last lines ---\n{}",
                        server.log_path().display(),
                        server.log_tail(25)
                    )),
                    Err(_) => failures.push(format!(
                        "[{label}] did not finish within {:?}",
                        self.timeout
                    )),
                }
            }
            (failures, transcripts)
        });
        let mut transcripts: Vec<(Flavor, Transport, Vec<Entry>, IdMap)> = Vec::new();
        for (run_failures, run_transcripts) in futures_util::future::join_all(runs).await {
            failures.extend(run_failures);
            transcripts.extend(run_transcripts);
        }
        if self.compare {
            let ignore: Vec<&str> = self.ignore.iter().map(String::as_str).collect();
            for &transport in &self.transports {
                let find = |flavor| {
                    transcripts
                        .iter()
                        .find(|(f, t, _, _)| *f == flavor && *t == transport)
                };
                if let (Some(jsfu), Some(janus)) = (find(Flavor::Jsfu), find(Flavor::Janus)) {
                    if let Err(e) = compare_transcripts(
                        (&format!("jsfu/{transport}"), &jsfu.2, &jsfu.3),
                        (&format!("janus/{transport}"), &janus.2, &janus.3),
                        &ignore,
                    ) {
                        failures.push(format!("{e:#}"));
                    }
                }
            }
        }
        if !failures.is_empty() {
            bail!("case {} failed:\n{}", self.name, failures.join("\n\n"));
        }
        Ok(())
    }
}
