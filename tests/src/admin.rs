//! [`AdminClient`]: the Admin API over HTTP (`POST /admin[/{s}[/{h}]]`) or
//! WebSocket (subprotocol `janus-admin-protocol`).

use anyhow::{Result, bail};
use serde_json::Value;

use crate::api::{REPLY_TIMEOUT, Transport, http_route};
use crate::http::HttpClient;
use crate::server::Server;
use crate::ws::{ADMIN_PROTOCOL, WsClient};

#[derive(Debug)]
enum Conn {
    Http(HttpClient),
    Ws(WsClient),
}

/// An Admin API client. It adds the server's `admin_secret` (if the server
/// has one) and a `transaction` to requests that lack them.
#[derive(Debug)]
pub struct AdminClient {
    conn: Conn,
    secret: Option<String>,
    next_transaction: u64,
}

impl AdminClient {
    /// Connect to `server`'s Admin API over `transport`.
    pub async fn connect(server: &Server, transport: Transport) -> Result<Self> {
        let conn = match transport {
            Transport::Http => Conn::Http(HttpClient::new(server.admin_url())?),
            Transport::Ws => {
                Conn::Ws(WsClient::connect(&server.admin_ws_url(), Some(ADMIN_PROTOCOL)).await?)
            }
        };
        Ok(Self {
            conn,
            secret: server.options().admin_secret.clone(),
            next_transaction: 0,
        })
    }

    /// Stop adding the admin secret (to test the 403 answers).
    pub fn without_secret(mut self) -> Self {
        self.secret = None;
        self
    }

    /// Send a request (ids in the body; over HTTP moved into the path like
    /// [`crate::Api`] does) and return the reply.
    pub async fn request(&mut self, mut request: Value) -> Result<Value> {
        let Some(obj) = request.as_object_mut() else {
            bail!("an Admin API request must be an object: {request}");
        };
        if !obj.contains_key("transaction") {
            self.next_transaction += 1;
            obj.insert(
                "transaction".to_owned(),
                Value::String(format!("admin{}", self.next_transaction)),
            );
        }
        if let Some(secret) = &self.secret {
            if !obj.contains_key("admin_secret") {
                obj.insert("admin_secret".to_owned(), Value::String(secret.clone()));
            }
        }
        match &mut self.conn {
            Conn::Http(client) => {
                let (path, body) = http_route(&request);
                client.post_json(&path, &body).await
            }
            Conn::Ws(ws) => ws.request(&request, REPLY_TIMEOUT).await,
        }
    }
}
