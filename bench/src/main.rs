//! `jsfu-bench`: a load harness for Janus API servers — jsfu or the real
//! Janus — with simulated WebRTC clients (str0m in RTP mode).
//!
//! ```text
//! jsfu-bench echo --sessions 50 --seconds 15 --compare janus
//! jsfu-bench fanout --publishers 1 --subscribers 200 --compare janus
//! jsfu-bench echo --ramp --ramp-step 50 --ramp-max 2000
//! jsfu-bench signaling --clients 4 --seconds 10 --compare janus
//! jsfu-bench echo --url http://127.0.0.1:8088/janus --ws-url ws://127.0.0.1:8188/ --pid 1234
//! ```
//!
//! Prints a table (two servers side by side with ratios), writes the JSON
//! report and, for media scenarios, an SVG plot (CPU per packet and p99
//! latency against load). Everything runs on loopback and stops by itself.

mod api;
mod media;
mod peer;
mod report;
mod server;
mod signaling;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;

use crate::api::Transport;
use crate::report::{Machine, Report, ServerRun};
use crate::server::{Flavor, LaunchOptions, Server};

/// The scenarios. Extension point: `simulcast` and `data` become new
/// variants here, mapped to a new `media::Shape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// N sessions echoing audio+video through an echo script.
    Echo,
    /// M publishers × N subscribers through scripts/fanout.js.
    Fanout,
    /// Janus API round trips per second (create/attach/message/detach/destroy).
    Signaling,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Fanout => "fanout",
            Self::Signaling => "signaling",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Jsfu,
    Janus,
}

impl Which {
    fn flavor(self) -> Flavor {
        match self {
            Self::Jsfu => Flavor::Jsfu,
            Self::Janus => Flavor::Janus,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "jsfu-bench",
    version,
    about = "Load harness for Janus API servers (jsfu and the real Janus)"
)]
struct Args {
    /// The scenario to run.
    scenario: Scenario,
    /// Server to launch and measure.
    #[arg(long, value_enum, default_value = "jsfu")]
    server: Which,
    /// Also run the same scenario on this server and print both side by side.
    #[arg(long, value_enum)]
    compare: Option<Which>,
    /// Measure a running server at this Janus API HTTP URL instead of launching one.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Its WebSocket URL (with --url).
    #[arg(long, value_name = "URL", default_value = "ws://127.0.0.1:8188/")]
    ws_url: String,
    /// Its process id (with --url), for the CPU and memory figures.
    #[arg(long)]
    pid: Option<u32>,
    /// The jsfu binary. [default: $JSFU_BIN, else target/release/jsfu]
    #[arg(long, value_name = "FILE")]
    jsfu_bin: Option<PathBuf>,
    /// The Janus binary.
    #[arg(long, value_name = "FILE", default_value = "/usr/bin/janus")]
    janus_bin: PathBuf,
    /// Extra argument for jsfu (repeatable), e.g. --jsfu-arg=--shards=1.
    #[arg(long = "jsfu-arg", value_name = "ARG", allow_hyphen_values = true)]
    jsfu_args: Vec<String>,
    /// The script both servers run. [default: scripts/echotest.js for echo
    /// and signaling, scripts/fanout.js for fanout]
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Its modules folder. [default: the script's folder]
    #[arg(long, value_name = "DIR")]
    modules: Option<PathBuf>,
    /// Plugin package to attach. [default: janus.plugin.echojs, or janus.plugin.fanoutjs for fanout]
    #[arg(long)]
    plugin: Option<String>,
    /// Janus API transport the media clients use.
    #[arg(long, value_enum, default_value = "http")]
    transport: Transport,
    /// echo: sessions.
    #[arg(long, default_value_t = 20)]
    sessions: u64,
    /// fanout: publishers.
    #[arg(long, default_value_t = 1)]
    publishers: u64,
    /// fanout: subscribers per publisher.
    #[arg(long, default_value_t = 20)]
    subscribers: u64,
    /// Length of the measurement window (seconds).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Time between the sessions being up and the window (seconds).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Raise the load step by step until loss exceeds 1 %; report the capacity.
    #[arg(long)]
    ramp: bool,
    /// Ramp increment (sessions for echo, subscribers per publisher for fanout).
    #[arg(long, default_value_t = 20)]
    ramp_step: u64,
    /// Ramp limit.
    #[arg(long, default_value_t = 2000)]
    ramp_max: u64,
    /// Generator worker threads driving the peers.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Concurrent session setups.
    #[arg(long, default_value_t = 4)]
    setup_concurrency: usize,
    /// signaling: concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// signaling: transports to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "http,ws")]
    signaling_transports: Vec<Transport>,
    /// CPU core for the launched servers.
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// CPU core for the generator.
    #[arg(long, default_value_t = 1)]
    generator_core: usize,
    /// Run the server and the generator at this niceness (e.g. -10 on a
    /// machine busy with other work; lowering it needs privileges).
    #[arg(long, allow_hyphen_values = true)]
    nice: Option<i32>,
    /// Do not pin the server and the generator to cores.
    #[arg(long)]
    no_pin: bool,
    /// Where to write the JSON report. [default: target/bench/<scenario>.json]
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Where to write the plot (media scenarios). [default: target/bench/<scenario>.svg]
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jsfu-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let pin = !args.no_pin && server::cpu_count() >= 2;
    let server_core = pin.then_some(args.server_core);
    let generator_core = pin.then_some(args.generator_core);
    if let Some(core) = generator_core {
        server::pin_current_thread(core);
    }
    if let Some(n) = args.nice {
        server::renice_self(n);
    }
    let root = workspace();
    let script = args.script.clone().unwrap_or_else(|| {
        root.join("scripts").join(match args.scenario {
            Scenario::Fanout => "fanout.js",
            _ => "echotest.js",
        })
    });
    let plugin = args.plugin.clone().unwrap_or_else(|| {
        String::from(match args.scenario {
            Scenario::Fanout => "janus.plugin.fanoutjs",
            _ => "janus.plugin.echojs",
        })
    });
    let jsfu_bin = args
        .jsfu_bin
        .clone()
        .or_else(|| std::env::var_os("JSFU_BIN").map(PathBuf::from))
        .unwrap_or_else(|| root.join("target/release/jsfu"));
    let mut servers = vec![args.server];
    if let Some(other) = args.compare {
        if other == args.server {
            bail!("--compare names the same server as --server");
        }
        if args.url.is_some() {
            bail!("--compare launches both servers; it cannot be combined with --url");
        }
        servers.push(other);
    }
    let mut report = Report {
        scenario: args.scenario.name().to_owned(),
        transport: match args.scenario {
            Scenario::Signaling => args
                .signaling_transports
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join("+"),
            _ => args.transport.name().to_owned(),
        },
        parameters: json!({
            "sessions": args.sessions,
            "publishers": args.publishers,
            "subscribers": args.subscribers,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "ramp": args.ramp.then_some(json!({"step": args.ramp_step, "max": args.ramp_max})),
            "workers": args.workers,
            "clients": args.clients,
            "script": script.display().to_string(),
            "plugin": plugin,
            "packets_per_second_per_sender": peer::PACKETS_PER_SECOND,
        }),
        machine: Machine::detect(server_core, generator_core, args.nice),
        runs: Vec::new(),
    };
    for which in servers {
        let server = match &args.url {
            Some(url) => {
                Server::external(which.flavor(), url.clone(), args.ws_url.clone(), args.pid)
            }
            None => {
                let mut jsfu_args = args.jsfu_args.clone();
                if !jsfu_args.iter().any(|a| a.starts_with("--shards")) {
                    jsfu_args.extend(["--shards".to_owned(), "1".to_owned()]);
                }
                Server::launch(&LaunchOptions {
                    flavor: which.flavor(),
                    jsfu_bin: jsfu_bin.clone(),
                    janus_bin: args.janus_bin.clone(),
                    script: script.clone(),
                    modules: args.modules.clone(),
                    core: server_core,
                    jsfu_args,
                    nice: args.nice,
                })
                .with_context(|| format!("launching {}", which.flavor().name()))?
            }
        };
        eprintln!(
            "[bench] {} ({}) at {}, pid {}, work folder {}",
            which.flavor().name(),
            server.version,
            server.http,
            server
                .pid
                .map_or_else(|| String::from("-"), |p| p.to_string()),
            server.work_dir()
        );
        let mut run = ServerRun {
            server: which.flavor().name().to_owned(),
            version: server.version.clone(),
            script: script.display().to_string(),
            media: Vec::new(),
            signaling: Vec::new(),
            capacity: None,
        };
        match args.scenario {
            Scenario::Echo | Scenario::Fanout => {
                let shape = if args.scenario == Scenario::Echo {
                    media::Shape::Echo {
                        sessions: args.sessions,
                    }
                } else {
                    media::Shape::Fanout {
                        publishers: args.publishers,
                        subscribers: args.subscribers,
                    }
                };
                let plan = media::Plan {
                    shape,
                    plugin: plugin.clone(),
                    transport: args.transport,
                    seconds: args.seconds,
                    warmup: args.warmup,
                    workers: args.workers,
                    generator_core,
                    setup_concurrency: args.setup_concurrency,
                    ramp_step: args.ramp.then_some(args.ramp_step.max(1)),
                    ramp_max: args.ramp_max,
                };
                let (steps, capacity) = media::run(&server, &plan).with_context(|| {
                    format!("{} on {}", args.scenario.name(), which.flavor().name())
                })?;
                run.media = steps;
                run.capacity = capacity;
            }
            Scenario::Signaling => {
                let plan = signaling::Plan {
                    transports: args.signaling_transports.clone(),
                    clients: args.clients,
                    seconds: args.seconds,
                    plugin: plugin.clone(),
                    body: json!({"audio": true}),
                    generator_core,
                };
                run.signaling = signaling::run(&server, &plan)?;
            }
        }
        report.runs.push(run);
        drop(server);
    }
    print!("{}", report.table());
    let out = root.join("target/bench");
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| out.join(format!("{}.json", args.scenario.name())));
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    report.write_json(&json_path)?;
    eprintln!("[bench] JSON report: {}", json_path.display());
    if args.scenario != Scenario::Signaling {
        let svg_path = args
            .svg
            .clone()
            .unwrap_or_else(|| out.join(format!("{}.svg", args.scenario.name())));
        if let Some(dir) = svg_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        report.write_svg(&svg_path)?;
        eprintln!("[bench] plot: {}", svg_path.display());
    }
    Ok(())
}
