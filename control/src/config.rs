//! Configuration: a TOML file plus command-line flags that override it.
//!
//! Every key of the file is documented in the README; `jsfu --help` documents
//! every flag.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

/// Command-line flags. Each one overrides the same setting of the config file.
#[derive(Debug, Parser, Default)]
#[command(
    name = "jsfu",
    version,
    about = "A WebRTC SFU that speaks the Janus API and runs Janus Duktape scripts on QuickJS."
)]
pub struct Cli {
    /// TOML configuration file (every key is in the README).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Load a script as a plugin, with default settings (repeatable).
    /// Without any script (here or in the file) jsfu serves scripts/echotest.js.
    #[arg(long = "script", value_name = "FILE")]
    pub scripts: Vec<PathBuf>,
    /// Janus API over HTTP (path /janus). "off" disables it. [default: 127.0.0.1:8088]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Janus API over WebSocket (subprotocol janus-protocol). "off" disables it. [default: 127.0.0.1:8188]
    #[arg(long, value_name = "ADDR")]
    pub ws: Option<String>,
    /// Admin API over HTTP (path /admin) and WebSocket (subprotocol janus-admin-protocol). "off" disables it. [default: 127.0.0.1:7088]
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// Folder of demo pages served on the --http port at every path but /janus. "off" disables it. [default: the source tree's demos/ if present]
    #[arg(long, value_name = "DIR")]
    pub demos: Option<String>,
    /// Secret that every Admin API request but info/ping must carry as admin_secret.
    #[arg(long, value_name = "S")]
    pub admin_secret: Option<String>,
    /// Secret that every Janus API request but info/ping must carry as apisecret.
    #[arg(long, value_name = "S")]
    pub api_secret: Option<String>,
    /// Require a token (managed with the Admin API add_token/remove_token) on every request.
    #[arg(long)]
    pub token_auth: bool,
    /// Seconds without activity after which a session is destroyed (0 = never). [default: 60]
    #[arg(long, value_name = "SECS")]
    pub session_timeout: Option<u64>,
    /// Seconds a session whose WebSocket closed waits for a claim (0 = destroy at once). [default: 0]
    #[arg(long, value_name = "SECS")]
    pub reclaim_session_timeout: Option<u64>,
    /// Log level: error, warn, info, debug, trace (or a tracing filter). [default: info]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format: human or json. [default: human]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Default folder for recordings whose script names no folder, and the
    /// folder that relative recording folders are resolved against. [default: .]
    #[arg(long, value_name = "DIR")]
    pub recordings_dir: Option<PathBuf>,
    /// A folder scripts may also record into with an absolute path; repeatable.
    /// The recordings folder is always allowed. [default: the system temporary folder]
    #[arg(long = "recordings-allowed", value_name = "DIR")]
    pub recordings_allowed: Vec<PathBuf>,
    /// Milliseconds one script callback may run before it is interrupted. [default: 1000]
    #[arg(long, value_name = "MS")]
    pub script_timeout_ms: Option<u64>,
    /// Memory limit of each script's engine, in MiB. [default: 256]
    #[arg(long, value_name = "MIB")]
    pub script_memory_mib: Option<u64>,
    /// Server name reported in info and event-handler notifications. [default: MyJanusInstance]
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// Address the media shards' UDP sockets bind to. [default: 127.0.0.1]
    #[arg(long, value_name = "IP")]
    pub media_ip: Option<std::net::IpAddr>,
    /// Address announced in SDP and ICE candidates (e.g. a public IP). [default: the media IP]
    #[arg(long, value_name = "IP")]
    pub advertised_ip: Option<std::net::IpAddr>,
    /// First UDP port: shard i listens on BASE+i (0: the kernel picks a free port per shard, as Janus does without an rtp_port_range). [default: 0]
    #[arg(long, value_name = "PORT")]
    pub rtp_port_base: Option<u16>,
    /// Number of dataplane shards (0: one per core but the first, at least one). [default: 0]
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Pin shard i to CPU core i+1 (core 0 stays with the control plane).
    #[arg(long)]
    pub pin_shards: bool,
    /// Packets lost in one second (per m-line and direction) that trigger a
    /// slowlink event and the script's slowLink (0: off). [default: 0]
    #[arg(long, value_name = "N")]
    pub slowlink_threshold: Option<u32>,
    /// DTLS certificate (PEM); with --dtls-key. [default: a self-signed ECDSA P-256 one made at start]
    #[arg(long, value_name = "FILE", requires = "dtls_key")]
    pub dtls_cert: Option<PathBuf>,
    /// DTLS private key (PEM) of --dtls-cert.
    #[arg(long, value_name = "FILE", requires = "dtls_cert")]
    pub dtls_key: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// The TOML file. Every field is optional; see the README for an example with every key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[general]`
    #[serde(default)]
    pub general: FileGeneral,
    /// `[[scripts]]`
    #[serde(default)]
    pub scripts: Vec<FileScript>,
    /// `[events]`
    #[serde(default)]
    pub events: FileEvents,
    /// `[media]`
    #[serde(default)]
    pub media: FileMedia,
}

/// `[media]` of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMedia {
    /// See `--media-ip`.
    pub media_ip: Option<std::net::IpAddr>,
    /// See `--advertised-ip`.
    pub advertised_ip: Option<std::net::IpAddr>,
    /// See `--rtp-port-base`.
    pub rtp_port_base: Option<u16>,
    /// See `--shards`.
    pub shards: Option<usize>,
    /// See `--pin-shards`.
    pub pin_shards: Option<bool>,
    /// See `--slowlink-threshold`.
    pub slowlink_threshold: Option<u32>,
    /// See `--dtls-cert`.
    pub dtls_cert: Option<PathBuf>,
    /// See `--dtls-key`.
    pub dtls_key: Option<PathBuf>,
}

/// `[general]` of the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGeneral {
    /// See `--http`.
    pub http: Option<String>,
    /// See `--ws`.
    pub ws: Option<String>,
    /// See `--admin`.
    pub admin: Option<String>,
    /// See `--demos`.
    pub demos: Option<String>,
    /// See `--admin-secret`.
    pub admin_secret: Option<String>,
    /// See `--api-secret`.
    pub api_secret: Option<String>,
    /// See `--token-auth`.
    pub token_auth: Option<bool>,
    /// See `--session-timeout`.
    pub session_timeout: Option<u64>,
    /// See `--reclaim-session-timeout`.
    pub reclaim_session_timeout: Option<u64>,
    /// See `--log-level`.
    pub log_level: Option<String>,
    /// See `--log-format`.
    pub log_format: Option<LogFormat>,
    /// See `--server-name`.
    pub server_name: Option<String>,
    /// See `--recordings-dir`.
    pub recordings_dir: Option<PathBuf>,
    /// See `--recordings-allowed`.
    pub recordings_allowed: Option<Vec<PathBuf>>,
    /// Write recordings as `<name>.mjr.<ext>` and rename to `.mjr` when closed.
    pub recordings_tmp_ext: Option<String>,
    /// See `--script-timeout-ms`.
    pub script_timeout_ms: Option<u64>,
    /// See `--script-memory-mib`.
    pub script_memory_mib: Option<u64>,
    /// CORS: the allowed origin (default: any, `*`).
    pub allow_origin: Option<String>,
    /// CORS: refuse requests whose Origin does not start with `allow_origin`.
    pub enforce_cors: Option<bool>,
    /// Largest accepted request body in bytes (default 1 MiB).
    pub max_body_bytes: Option<usize>,
}

/// `[[scripts]]` of the TOML file: one plugin each, as Janus's
/// `janus.plugin.duktape.jcfg` configures one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileScript {
    /// The script file.
    pub file: PathBuf,
    /// The folder `getModulesFolder()` returns (default: the script's folder).
    pub modules: Option<PathBuf>,
    /// The string passed to `init(config)` (default: none, `null`).
    pub config: Option<String>,
}

/// `[events]` of the TOML file: event handlers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEvents {
    /// Turn event handlers on (`eventsIsEnabled()` then returns 1). Default off.
    pub enabled: Option<bool>,
    /// HTTP(S) URLs that receive every notification as a JSON POST.
    #[serde(default)]
    pub webhooks: Vec<String>,
    /// Write notifications as JSON lines to this file.
    pub log_file: Option<PathBuf>,
}

/// One loaded script's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptConfig {
    /// The script file.
    pub file: PathBuf,
    /// The folder `getModulesFolder()` returns and `require` searches.
    pub modules: PathBuf,
    /// The string passed to `init`, or `None` (`null`).
    pub config: Option<String>,
}

impl ScriptConfig {
    /// A script with the default settings (modules: its own folder, no config).
    pub fn with_defaults(file: PathBuf) -> Self {
        let modules = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            file,
            modules,
            config: None,
        }
    }
}

/// Limits applied to every script engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// How long one callback may run before it is interrupted.
    pub callback_timeout: Duration,
    /// Engine memory limit in bytes.
    pub memory_limit: usize,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            callback_timeout: Duration::from_millis(1000),
            memory_limit: 256 * 1024 * 1024,
        }
    }
}

/// Where recordings go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingConfig {
    /// Default folder, and the base of relative folders.
    pub dir: PathBuf,
    /// Temporary extension while a file is being written (`None`: write `.mjr` directly).
    pub tmp_ext: Option<String>,
    /// Other folders absolute recording paths may lie in (besides `dir`).
    pub allowed: Vec<PathBuf>,
}

/// Event handler settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventsConfig {
    /// `eventsIsEnabled()`.
    pub enabled: bool,
    /// Webhook URLs.
    pub webhooks: Vec<String>,
    /// JSON-lines file.
    pub log_file: Option<PathBuf>,
}

/// The effective configuration, after the file and the flags were merged.
#[derive(Debug, Clone)]
pub struct Config {
    /// Janus API over HTTP.
    pub http: Option<SocketAddr>,
    /// Janus API over WebSocket.
    pub ws: Option<SocketAddr>,
    /// Admin API (HTTP and WebSocket on the same port).
    pub admin: Option<SocketAddr>,
    /// Folder of demo pages served next to `/janus` (`None`: off).
    pub demos: Option<PathBuf>,
    /// Admin secret.
    pub admin_secret: Option<String>,
    /// API secret.
    pub api_secret: Option<String>,
    /// Token authentication.
    pub token_auth: bool,
    /// Session timeout (zero: never).
    pub session_timeout: Duration,
    /// Reclaim timeout after a WebSocket closes (zero: destroy at once).
    pub reclaim_session_timeout: Duration,
    /// Log filter.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Server name.
    pub server_name: String,
    /// The loaded scripts.
    pub scripts: Vec<ScriptConfig>,
    /// Script engine limits.
    pub script_limits: ScriptLimits,
    /// Recordings.
    pub recording: RecordingConfig,
    /// Event handlers.
    pub events: EventsConfig,
    /// CORS allowed origin (`None`: `*`).
    pub allow_origin: Option<String>,
    /// Refuse mismatching origins.
    pub enforce_cors: bool,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// The media plane.
    pub media: crate::media::MediaConfig,
}

/// A configuration error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// An address did not parse.
    #[error("invalid address for {what}: {value:?} (expected IP:PORT or \"off\")")]
    Address {
        /// Which setting.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A value is out of range.
    #[error("invalid value for {what}: {why}")]
    Value {
        /// Which setting.
        what: &'static str,
        /// Why.
        why: String,
    },
}

fn parse_addr(what: &'static str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| ConfigError::Address {
        what,
        value: value.to_owned(),
    })
}

/// The default script: `scripts/echotest.js` next to the binary's source
/// tree, or in the current folder, or under /usr/share/jsfu.
fn default_script() -> PathBuf {
    let candidates = [
        PathBuf::from("scripts/echotest.js"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/echotest.js"),
        PathBuf::from("/usr/share/jsfu/scripts/echotest.js"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| candidates[0].clone())
}

/// The default demos folder: `demos/` in the current folder, else in the
/// source tree the binary was built from, else /usr/share/jsfu/demos; `None`
/// when none has an `index.html`.
fn default_demos() -> Option<PathBuf> {
    [
        PathBuf::from("demos"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../demos"),
        PathBuf::from("/usr/share/jsfu/demos"),
    ]
    .into_iter()
    .find(|p| p.join("index.html").is_file())
}

impl Config {
    /// Merges the config file named by `cli.config` (if any) with the flags.
    pub fn load(cli: &Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?
            }
            None => FileConfig::default(),
        };
        Self::merge(cli, file)
    }

    /// Merges an already parsed file with the flags (flags win).
    pub fn merge(cli: &Cli, file: FileConfig) -> Result<Self, ConfigError> {
        let g = file.general;
        let pick = |flag: &Option<String>, file: &Option<String>, default: &str| {
            flag.clone()
                .or_else(|| file.clone())
                .unwrap_or_else(|| default.to_owned())
        };
        let http = parse_addr("http", &pick(&cli.http, &g.http, "127.0.0.1:8088"))?;
        let ws = parse_addr("ws", &pick(&cli.ws, &g.ws, "127.0.0.1:8188"))?;
        let admin = parse_addr("admin", &pick(&cli.admin, &g.admin, "127.0.0.1:7088"))?;
        let demos = match cli.demos.as_ref().or(g.demos.as_ref()) {
            Some(d) if d.eq_ignore_ascii_case("off") => None,
            Some(d) if d.is_empty() => {
                return Err(ConfigError::Value {
                    what: "demos",
                    why: "must be a folder or \"off\"".into(),
                });
            }
            Some(d) => Some(PathBuf::from(d)),
            None => default_demos(),
        };

        let mut scripts: Vec<ScriptConfig> = file
            .scripts
            .into_iter()
            .map(|s| {
                let mut c = ScriptConfig::with_defaults(s.file);
                if let Some(m) = s.modules {
                    c.modules = m;
                }
                c.config = s.config;
                c
            })
            .collect();
        scripts.extend(cli.scripts.iter().cloned().map(ScriptConfig::with_defaults));
        if scripts.is_empty() {
            scripts.push(ScriptConfig::with_defaults(default_script()));
        }

        let timeout_ms = cli
            .script_timeout_ms
            .or(g.script_timeout_ms)
            .unwrap_or(1000);
        if timeout_ms == 0 {
            return Err(ConfigError::Value {
                what: "script_timeout_ms",
                why: "must be at least 1".into(),
            });
        }
        let memory_mib = cli.script_memory_mib.or(g.script_memory_mib).unwrap_or(256);
        if memory_mib < 8 {
            return Err(ConfigError::Value {
                what: "script_memory_mib",
                why: "must be at least 8".into(),
            });
        }
        let tmp_ext = g
            .recordings_tmp_ext
            .map(|e| e.trim_start_matches('.').to_owned())
            .filter(|e| !e.is_empty());
        if let Some(e) = &tmp_ext {
            if e.contains('/') {
                return Err(ConfigError::Value {
                    what: "recordings_tmp_ext",
                    why: "must not contain '/'".into(),
                });
            }
        }

        Ok(Self {
            http,
            ws,
            admin,
            demos,
            admin_secret: cli.admin_secret.clone().or(g.admin_secret),
            api_secret: cli.api_secret.clone().or(g.api_secret),
            token_auth: cli.token_auth || g.token_auth.unwrap_or(false),
            session_timeout: Duration::from_secs(
                cli.session_timeout.or(g.session_timeout).unwrap_or(60),
            ),
            reclaim_session_timeout: Duration::from_secs(
                cli.reclaim_session_timeout
                    .or(g.reclaim_session_timeout)
                    .unwrap_or(0),
            ),
            log_level: pick(&cli.log_level, &g.log_level, "info"),
            log_format: cli.log_format.or(g.log_format).unwrap_or_default(),
            server_name: pick(&cli.server_name, &g.server_name, "MyJanusInstance"),
            scripts,
            script_limits: ScriptLimits {
                callback_timeout: Duration::from_millis(timeout_ms),
                memory_limit: usize::try_from(memory_mib.saturating_mul(1024 * 1024))
                    .unwrap_or(usize::MAX),
            },
            recording: RecordingConfig {
                dir: cli
                    .recordings_dir
                    .clone()
                    .or(g.recordings_dir)
                    .unwrap_or_else(|| PathBuf::from(".")),
                tmp_ext,
                allowed: if cli.recordings_allowed.is_empty() {
                    g.recordings_allowed
                        .unwrap_or_else(|| vec![std::env::temp_dir()])
                } else {
                    cli.recordings_allowed.clone()
                },
            },
            events: EventsConfig {
                enabled: file.events.enabled.unwrap_or(false),
                webhooks: file.events.webhooks,
                log_file: file.events.log_file,
            },
            allow_origin: g.allow_origin,
            enforce_cors: g.enforce_cors.unwrap_or(false),
            max_body_bytes: g.max_body_bytes.unwrap_or(1024 * 1024),
            media: crate::media::MediaConfig {
                media_ip: cli
                    .media_ip
                    .or(file.media.media_ip)
                    .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1])),
                advertised_ip: cli.advertised_ip.or(file.media.advertised_ip),
                rtp_port_base: cli.rtp_port_base.or(file.media.rtp_port_base).unwrap_or(0),
                shards: cli.shards.or(file.media.shards).unwrap_or(0),
                pin_shards: cli.pin_shards || file.media.pin_shards.unwrap_or(false),
                slowlink_threshold: cli
                    .slowlink_threshold
                    .or(file.media.slowlink_threshold)
                    .unwrap_or(0),
                dtls_cert: match (
                    cli.dtls_cert.clone().or(file.media.dtls_cert),
                    cli.dtls_key.clone().or(file.media.dtls_key),
                ) {
                    (Some(c), Some(k)) => Some((c, k)),
                    (None, None) => None,
                    _ => {
                        return Err(ConfigError::Value {
                            what: "dtls_cert",
                            why: "dtls_cert and dtls_key go together".into(),
                        });
                    }
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file() {
        let file: FileConfig = toml::from_str(
            r#"
            [general]
            http = "127.0.0.1:9000"
            session_timeout = 10
            [[scripts]]
            file = "/x/a.js"
            config = "cfg"
            "#,
        )
        .unwrap();
        let cli = Cli::parse_from(["jsfu", "--http", "off", "--script", "b.js"]);
        let c = Config::merge(&cli, file).unwrap();
        assert_eq!(c.http, None);
        assert_eq!(c.session_timeout, Duration::from_secs(10));
        assert_eq!(c.scripts.len(), 2);
        assert_eq!(c.scripts[0].modules, PathBuf::from("/x"));
        assert_eq!(c.scripts[0].config.as_deref(), Some("cfg"));
        assert_eq!(c.scripts[1].modules, PathBuf::from("."));
        assert!(!c.events.enabled);
    }

    #[test]
    fn demos_flag_and_key() {
        let file: FileConfig = toml::from_str("[general]\ndemos = \"/srv/demos\"").unwrap();
        let c = Config::merge(&Cli::parse_from(["jsfu"]), file).unwrap();
        assert_eq!(c.demos, Some(PathBuf::from("/srv/demos")));
        let file: FileConfig = toml::from_str("[general]\ndemos = \"/srv/demos\"").unwrap();
        let cli = Cli::parse_from(["jsfu", "--demos", "off"]);
        assert_eq!(Config::merge(&cli, file).unwrap().demos, None);
        let cli = Cli::parse_from(["jsfu", "--demos", ""]);
        assert!(Config::merge(&cli, FileConfig::default()).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_addresses_are_refused() {
        assert!(toml::from_str::<FileConfig>("[general]\nhttpp = \"x\"").is_err());
        let cli = Cli::parse_from(["jsfu", "--ws", "nonsense"]);
        assert!(Config::merge(&cli, FileConfig::default()).is_err());
    }
}
