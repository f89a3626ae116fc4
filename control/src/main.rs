//! The `jsfu` binary: loads the configuration and the scripts, starts the
//! Janus API transports, and runs until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use jsfu::config::{Cli, Config, LogFormat};
use jsfu::gateway::Gateway;
use jsfu::media::MediaPlane;
use jsfu::plugin::{CoreRef, Plugin};
use jsfu::script::ScriptPlugin;
use tracing_subscriber::EnvFilter;

fn init_logging(cfg: &Config) {
    let filter = EnvFilter::try_new(&cfg.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jsfu: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("jsfu-control")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the control runtime");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    let gw = Gateway::new(cfg.clone());
    let (events_tx, events_rx) = flume::bounded(16_384);
    let media =
        Arc::new(MediaPlane::start(&cfg.media, events_tx).context("cannot start the media plane")?);
    gw.connect_media(media.clone(), events_rx);
    let core: CoreRef = gw.clone();
    let mut plugins: Vec<Arc<ScriptPlugin>> = Vec::new();
    for script in &cfg.scripts {
        let (s, limits, rec, core) = (
            script.clone(),
            cfg.script_limits,
            cfg.recording.clone(),
            core.clone(),
        );
        let plugin = tokio::task::spawn_blocking(move || ScriptPlugin::load(&s, limits, rec, core))
            .await
            .context("script loader thread failed")?
            .with_context(|| format!("cannot load script {}", script.file.display()))?;
        let info = plugin.info().clone();
        tracing::info!(
            script = %script.file.display(),
            package = %info.package,
            name = %info.name,
            version = %info.version_string,
            "script loaded"
        );
        gw.add_plugin(plugin.clone()).map_err(anyhow::Error::msg)?;
        plugins.push(plugin);
    }
    gw.start_watchdog();
    let bound = jsfu::transport::start(gw.clone())
        .await
        .context("cannot start the transports")?;
    tracing::info!(
        http = ?bound.http.map(|a| format!("http://{a}/janus")),
        ws = ?bound.ws.map(|a| format!("ws://{a}")),
        admin = ?bound.admin.map(|a| format!("http://{a}/admin")),
        media = ?media.shard_addrs(),
        "jsfu is serving"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    for p in plugins {
        let _ = p.shutdown().await;
    }
    tokio::task::spawn_blocking(move || media.shutdown())
        .await
        .ok();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
