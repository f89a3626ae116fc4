//! The configuration folder for the reference Janus (`janus -F FOLDER`).
//!
//! Only what the tests need is enabled: the Duktape plugin running the
//! requested script, the HTTP transport (Janus API and Admin API) and the
//! WebSockets transport (Janus API and Admin API), all on 127.0.0.1. Every
//! other plugin, transport, event handler and logger found in Janus's library
//! folder is listed in the matching `disable` setting.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::server::{Endpoints, ServerOptions};

/// Write `janus.jcfg` and the plugin/transport configurations into `dir`.
pub(crate) fn write(dir: &Path, options: &ServerOptions, endpoints: &Endpoints) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lib = library_folder()?;
    let keep = [
        "libjanus_duktape.so",
        "libjanus_http.so",
        "libjanus_websockets.so",
    ];
    let disabled = |kind: &str| -> Result<String> {
        let folder = lib.join(kind);
        let mut names = Vec::new();
        if let Ok(entries) = fs::read_dir(&folder) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".so") && !keep.contains(&name.as_str()) {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names.join(","))
    };

    let mut core = String::new();
    writeln!(core, "general: {{")?;
    for kind in ["plugins", "transports", "events", "loggers"] {
        writeln!(
            core,
            "\t{kind}_folder = {}",
            quote(&lib.join(kind).display().to_string())
        )?;
    }
    let level = match options.log_level.as_deref().unwrap_or("info") {
        "error" => 2,
        "warn" => 3,
        "info" => 4,
        "debug" => 5,
        "trace" => 7,
        _ => 4,
    };
    writeln!(core, "\tdebug_level = {level}")?;
    writeln!(core, "\tdebug_timestamps = true")?;
    writeln!(core, "\tdebug_colors = false")?;
    writeln!(core, "\tinterface = \"127.0.0.1\"")?;
    if let Some(secret) = &options.admin_secret {
        writeln!(core, "\tadmin_secret = {}", quote(secret))?;
    }
    if let Some(secret) = &options.api_secret {
        writeln!(core, "\tapi_secret = {}", quote(secret))?;
    }
    if options.token_auth {
        writeln!(core, "\ttoken_auth = true")?;
    }
    if let Some(secs) = options.session_timeout {
        writeln!(core, "\tsession_timeout = {secs}")?;
    }
    writeln!(core, "}}")?;
    writeln!(
        core,
        "media: {{\n\tipv6 = false\n\trtp_port_range = \"20000-40000\"\n}}"
    )?;
    writeln!(
        core,
        "nat: {{\n\tfull_trickle = false\n\tice_lite = false\n\tice_tcp = false\n\tignore_mdns = true\n\tice_enforce_list = \"127.0.0.1\"\n}}"
    )?;
    writeln!(
        core,
        "plugins: {{\n\tdisable = {}\n}}",
        quote(&disabled("plugins")?)
    )?;
    writeln!(
        core,
        "transports: {{\n\tdisable = {}\n}}",
        quote(&disabled("transports")?)
    )?;
    writeln!(
        core,
        "loggers: {{\n\tdisable = {}\n}}",
        quote(&disabled("loggers")?)
    )?;
    writeln!(
        core,
        "events: {{\n\tbroadcast = false\n\tdisable = {}\n}}",
        quote(&disabled("events")?)
    )?;
    put(dir, "janus.jcfg", &core)?;

    let mut duktape = String::from("general: {\n");
    writeln!(
        duktape,
        "\tpath = {}",
        quote(&options.modules_folder().display().to_string())
    )?;
    writeln!(
        duktape,
        "\tscript = {}",
        quote(&options.script.display().to_string())
    )?;
    if let Some(config) = &options.config {
        writeln!(duktape, "\tconfig = {}", quote(config))?;
    }
    duktape.push_str("}\n");
    put(dir, "janus.plugin.duktape.jcfg", &duktape)?;

    let http = format!(
        "general: {{\n\tjson = \"plain\"\n\tbase_path = \"/janus\"\n\thttp = true\n\tport = {}\n\tip = \"127.0.0.1\"\n\thttps = false\n}}\n\
         admin: {{\n\tadmin_base_path = \"/admin\"\n\tadmin_http = true\n\tadmin_port = {}\n\tadmin_ip = \"127.0.0.1\"\n\tadmin_https = false\n}}\n\
         cors: {{\n}}\n",
        endpoints.http.port(),
        endpoints.admin_http.port()
    );
    put(dir, "janus.transport.http.jcfg", &http)?;

    let ws = format!(
        "general: {{\n\tjson = \"plain\"\n\tws = true\n\tws_port = {}\n\tws_ip = \"127.0.0.1\"\n\twss = false\n}}\n\
         admin: {{\n\tadmin_ws = true\n\tadmin_ws_port = {}\n\tadmin_ws_ip = \"127.0.0.1\"\n\tadmin_wss = false\n}}\n\
         cors: {{\n}}\n",
        endpoints.ws.port(),
        endpoints.admin_ws.port()
    );
    put(dir, "janus.transport.websockets.jcfg", &ws)?;
    Ok(())
}

/// `JANUS_LIB_DIR`, else the first `/usr/lib/<triplet>/janus` or `/usr/lib/janus`
/// that has a `plugins` folder.
fn library_folder() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("JANUS_LIB_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates = Vec::new();
    if let Ok(entries) = fs::read_dir("/usr/lib") {
        for entry in entries.flatten() {
            candidates.push(entry.path().join("janus"));
        }
    }
    candidates.sort();
    candidates.push(PathBuf::from("/usr/lib/janus"));
    for dir in candidates {
        if dir.join("plugins").join("libjanus_duktape.so").is_file() {
            return Ok(dir);
        }
    }
    bail!("Janus's plugin folder (with libjanus_duktape.so) not found; set JANUS_LIB_DIR")
}

fn put(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// A libconfig string literal.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
