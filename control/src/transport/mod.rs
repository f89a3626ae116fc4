//! Janus API transports on the control core: HTTP REST with long poll,
//! WebSocket, and the Admin API over both (axum on tokio).

mod demos;
mod http;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use http::Api;
use ws::WsState;

/// The addresses the transports ended up listening on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bound {
    /// Janus API over HTTP.
    pub http: Option<SocketAddr>,
    /// Janus API over WebSocket.
    pub ws: Option<SocketAddr>,
    /// Admin API (HTTP and WebSocket).
    pub admin: Option<SocketAddr>,
}

/// Binds every configured transport and serves it in the background.
pub async fn start(gw: Arc<Gateway>) -> std::io::Result<Bound> {
    let cfg = gw.config().clone();
    let mut bound = Bound::default();
    if let Some(addr) = cfg.http {
        let app = http::router(gw.clone(), Api::Janus);
        bound.http = Some(spawn(addr, app, "http").await?);
    }
    if let Some(addr) = cfg.ws {
        let app = Router::new().fallback(ws::upgrade).with_state(WsState {
            gw: gw.clone(),
            admin: false,
        });
        bound.ws = Some(spawn(addr, app, "websocket").await?);
    }
    if let Some(addr) = cfg.admin {
        // The Admin port answers HTTP under /admin and WebSocket upgrades
        // (subprotocol janus-admin-protocol) at any path.
        let ws_admin = Router::new().fallback(ws::upgrade).with_state(WsState {
            gw: gw.clone(),
            admin: true,
        });
        let http_admin = http::router(gw.clone(), Api::Admin);
        let app = Router::new().fallback_service(tower::service_fn(
            move |req: axum::extract::Request| {
                let is_upgrade = req
                    .headers()
                    .get(axum::http::header::UPGRADE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
                let svc = if is_upgrade {
                    ws_admin.clone()
                } else {
                    http_admin.clone()
                };
                async move { tower::ServiceExt::oneshot(svc, req).await }
            },
        ));
        bound.admin = Some(spawn(addr, app, "admin").await?);
    }
    Ok(bound)
}

async fn spawn(addr: SocketAddr, app: Router, what: &'static str) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "{what} transport listening");
    // Replies are small JSON objects: send them at once (no Nagle delay).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "{what} transport stopped");
        }
    });
    Ok(local)
}
