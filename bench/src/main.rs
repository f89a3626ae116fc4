//! `jsfu-bench`: a load harness for Janus API servers — jsfu or the real
//! Janus — with simulated WebRTC clients (str0m in RTP mode).
//!
//! ```text
//! jsfu-bench echo --sessions 50 --seconds 15 --compare janus
//! jsfu-bench fanout --publishers 1 --subscribers 200 --compare janus
//! jsfu-bench videoroom --publishers 1 --subscribers 200 --compare janus
//! jsfu-bench videoroom --meeting 10 --compare janus
//! jsfu-bench simulcast --publishers 1 --subscribers 60 --compare janus
//! jsfu-bench echo --ramp --ramp-step 50 --ramp-max 2000
//! jsfu-bench signaling --clients 4 --seconds 10 --compare janus
//! jsfu-bench echo --url http://127.0.0.1:8088/janus --ws-url ws://127.0.0.1:8188/ --pid 1234
//! ```
//!
//! Prints a table (two servers side by side with ratios), writes the JSON
//! report and, for media scenarios, an SVG plot (CPU per packet and p99
//! latency against load). Everything runs on loopback and stops by itself.

mod api;
mod data;
mod floor;
mod media;
mod peer;
mod quota;
mod report;
mod rtc_io;
mod server;
mod signaling;
mod simulcast;
mod videoroom;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::json;

use crate::api::Transport;
use crate::report::{Machine, Report, ServerRun};
use crate::server::{Flavor, LaunchOptions, Server};

/// The scenarios. Extension point: a new media scenario becomes a new
/// variant here, mapped to a new `media::Shape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// N sessions echoing audio+video through an echo script.
    Echo,
    /// M publishers × N subscribers through scripts/fanout.js.
    Fanout,
    /// Janus API round trips per second (create/attach/message/detach/destroy).
    Signaling,
    /// The VideoRoom API: M publishers × N subscribers, or a --meeting;
    /// jsfu runs scripts/videoroom.js, Janus its native VideoRoom plugin.
    #[value(name = "videoroom")]
    VideoRoom,
    /// N sessions echoing data-channel messages through an echo script.
    Data,
    /// The VideoRoom API with rid simulcast: M publishers of three VP8
    /// layers × N subscribers, each asking for one layer (spread evenly).
    Simulcast,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Fanout => "fanout",
            Self::Signaling => "signaling",
            Self::VideoRoom => "videoroom",
            Self::Data => "data",
            Self::Simulcast => "simulcast",
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
    /// fanout, videoroom, simulcast: publishers.
    #[arg(long, default_value_t = 1)]
    publishers: u64,
    /// fanout, videoroom, simulcast: subscribers per publisher.
    #[arg(long, default_value_t = 20)]
    subscribers: u64,
    /// videoroom: a meeting of P participants, each publishing and
    /// subscribing to the P − 1 others (instead of --publishers/--subscribers).
    #[arg(long, value_name = "P")]
    meeting: Option<u64>,
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
    /// Run each launched server in a cgroup limited to this fraction of one
    /// core (e.g. 0.25; needs root and the cgroup cpu controller), so that
    /// a --ramp finds the server's capacity before the generator's core runs
    /// out; capacities are also shown divided by it (per core).
    #[arg(long)]
    cpu_quota: Option<f64>,
    /// Do not pin the server and the generator to cores.
    #[arg(long)]
    no_pin: bool,
    /// Where to write the JSON report. [default: target/bench/<scenario>.json]
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Where to write the plot (media scenarios). [default: target/bench/<scenario>.svg]
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// echo, fanout: also measure the floor — a plain UDP echo/fan-out with
    /// SRTP unprotect + protect per packet on the server core — and print
    /// each server's CPU per egress packet as a multiple of it.
    #[arg(long)]
    floor: bool,
    /// SRTP profile of the floor.
    #[arg(long, value_enum, default_value = "aes256-gcm")]
    floor_profile: floor::FloorProfile,
    /// data: messages per second each session sends.
    #[arg(long, default_value_t = 50.0)]
    msg_rate: f64,
    /// data: bytes per message (at least 41: marker, send time, sequence number).
    #[arg(long, default_value_t = 1024)]
    msg_size: usize,
    /// data: send binary messages (default: text).
    #[arg(long)]
    msg_binary: bool,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == floor::SUBCOMMAND)
    {
        return floor::server_main();
    }
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
            Scenario::VideoRoom | Scenario::Simulcast => "videoroom.js",
            _ => "echotest.js",
        })
    });
    let plugin = args.plugin.clone().unwrap_or_else(|| {
        String::from(match args.scenario {
            Scenario::Fanout => "janus.plugin.fanoutjs",
            Scenario::VideoRoom | Scenario::Simulcast => videoroom::PLUGIN,
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
    if args.floor && !matches!(args.scenario, Scenario::Echo | Scenario::Fanout) {
        bail!("--floor applies to the echo and fanout scenarios");
    }
    if args.cpu_quota.is_some() && (args.url.is_some() || args.floor) {
        bail!("--cpu-quota applies to launched servers, without --url or --floor");
    }
    if let Some(p) = args.meeting {
        if args.scenario != Scenario::VideoRoom {
            bail!("--meeting applies to the videoroom scenario only");
        }
        if p < 2 {
            bail!("--meeting needs at least 2 participants");
        }
        if args.ramp {
            bail!("--ramp does not apply to --meeting");
        }
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
            "meeting": args.meeting,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "ramp": args.ramp.then_some(json!({"step": args.ramp_step, "max": args.ramp_max})),
            "workers": args.workers,
            "clients": args.clients,
            "data": (args.scenario == Scenario::Data).then_some(json!({"msg_rate": args.msg_rate, "msg_size": args.msg_size.max(data::MIN_SIZE), "binary": args.msg_binary})),
            "floor_profile": args.floor.then_some(args.floor_profile),
            "cpu_quota": args.cpu_quota,
            "script": script.display().to_string(),
            "plugin": plugin,
            "packets_per_second_per_sender": if args.scenario == Scenario::Simulcast {
                simulcast::PACKETS_PER_SECOND
            } else {
                peer::PACKETS_PER_SECOND
            },
            "simulcast_layers": (args.scenario == Scenario::Simulcast).then(simulcast::layers_json),
        }),
        machine: Machine::detect(server_core, generator_core, args.nice),
        runs: Vec::new(),
        floor: None,
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
                let options = LaunchOptions {
                    flavor: which.flavor(),
                    jsfu_bin: jsfu_bin.clone(),
                    janus_bin: args.janus_bin.clone(),
                    script: script.clone(),
                    modules: args.modules.clone(),
                    core: server_core,
                    jsfu_args,
                    nice: args.nice,
                    cpu_quota: args.cpu_quota,
                };
                if matches!(args.scenario, Scenario::VideoRoom | Scenario::Simulcast) {
                    Server::launch_videoroom(&options)
                } else {
                    Server::launch(&options)
                }
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
            script: if matches!(args.scenario, Scenario::VideoRoom | Scenario::Simulcast)
                && which == Which::Janus
            {
                String::from("native VideoRoom plugin (libjanus_videoroom.so)")
            } else {
                script.display().to_string()
            },
            media: Vec::new(),
            signaling: Vec::new(),
            capacity: None,
        };
        let common = media::Common {
            plugin: plugin.clone(),
            transport: args.transport,
            seconds: args.seconds,
            warmup: args.warmup,
            workers: args.workers,
            generator_core,
            setup_concurrency: args.setup_concurrency,
        };
        match args.scenario {
            Scenario::Echo | Scenario::Fanout | Scenario::VideoRoom | Scenario::Simulcast => {
                let shape = match (args.scenario, args.meeting) {
                    (Scenario::Echo, _) => media::Shape::Echo {
                        sessions: args.sessions,
                    },
                    (Scenario::VideoRoom, Some(p)) => media::Shape::VideoRoom {
                        publishers: p,
                        subscribers: p - 1,
                        meeting: true,
                    },
                    (Scenario::Simulcast, _) => media::Shape::Simulcast {
                        publishers: args.publishers,
                        subscribers: args.subscribers,
                    },
                    (Scenario::VideoRoom, None) => media::Shape::VideoRoom {
                        publishers: args.publishers,
                        subscribers: args.subscribers,
                        meeting: false,
                    },
                    _ => media::Shape::Fanout {
                        publishers: args.publishers,
                        subscribers: args.subscribers,
                    },
                };
                let plan = media::Plan {
                    shape,
                    common,
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
            Scenario::Data => {
                let plan = data::Plan {
                    sessions: args.sessions,
                    msg_rate: args.msg_rate,
                    msg_size: args.msg_size,
                    binary: args.msg_binary,
                    common,
                };
                let step = data::run(&server, &plan)
                    .with_context(|| format!("data on {}", which.flavor().name()))?;
                run.media = vec![step];
            }
        }
        report.runs.push(run);
        drop(server);
    }
    if args.floor {
        let load = match args.scenario {
            Scenario::Echo => floor::Load::Echo {
                sessions: args.sessions,
            },
            Scenario::Fanout => floor::Load::Fanout {
                publishers: args.publishers,
                subscribers: args.subscribers,
            },
            _ => bail!("--floor applies to the echo and fanout scenarios"),
        };
        let plan = floor::Plan {
            load,
            profile: args.floor_profile,
            seconds: args.seconds,
            warmup: args.warmup,
            server_core,
            generator_core,
            nice: args.nice,
        };
        report.floor = Some(floor::run(&plan, &report.runs).context("measuring the floor")?);
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
