//! Janus API conformance: the WebSocket transport (janus-api.md §7.2, §7.3, §9).

use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use jsfu_tests::{
    Case, ECHOTEST_PACKAGE, JANUS_PROTOCOL, REPLY_TIMEOUT, Reply, ServerOptions, Servers, WsClient,
};
use serde_json::{Value, json};

static SERVERS: Servers = Servers::new(ServerOptions::echotest);

const WAIT: Duration = Duration::from_secs(5);

/// Keepalive on `s` from `ws` until it answers 458 (or `limit` passes).
async fn wait_session_gone(ws: &mut WsClient, s: u64, limit: Duration) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let reply = ws
            .request(
                &json!({"janus": "keepalive", "session_id": s, "transaction": "probe"}),
                REPLY_TIMEOUT,
            )
            .await?;
        if reply.kind() == "error" || tokio::time::Instant::now() >= deadline {
            return Ok(reply);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn subprotocol_is_required() -> Result<()> {
    Case::new("subprotocol_is_required")
        .ws_only()
        .run(&SERVERS, async |t| {
            let url = t.server().ws_url();
            let ok = WsClient::connect(&url, Some(JANUS_PROTOCOL)).await?;
            ensure!(
                ok.protocol() == Some(JANUS_PROTOCOL),
                "accepted protocol {:?}",
                ok.protocol()
            );
            for protocol in [None, Some("chat")] {
                match WsClient::connect(&url, protocol).await {
                    Err(_) => {}
                    Ok(mut ws) => {
                        // Accepted the upgrade: it must at least not serve the API.
                        let served = ws
                            .request(
                                &json!({"janus": "ping", "transaction": "p"}),
                                Duration::from_secs(2),
                            )
                            .await
                            .is_ok();
                        ensure!(
                            !served,
                            "the Janus API was served without subprotocol ({protocol:?})"
                        );
                    }
                }
            }
            Ok(())
        })
        .await
}

#[tokio::test]
async fn several_objects_in_one_message() -> Result<()> {
    Case::new("several_objects_in_one_message")
        .ws_only()
        .run(&SERVERS, async |t| {
            let ws = t.ws()?;
            ws.send_text("{\"janus\":\"ping\",\"transaction\":\"a\"}{\"janus\":\"ping\",\"transaction\":\"b\"}\n  {\"janus\":\"ping\",\"transaction\":\"c\"}")
                .await?;
            let mut got = Vec::new();
            for _ in 0..3 {
                let v = ws.recv(WAIT).await?.ok_or_else(|| anyhow!("missing reply, got {got:?}"))?;
                got.push(v);
            }
            for (v, tx) in got.iter().zip(["a", "b", "c"]) {
                v.expect_kind("pong")?.expect_at("/transaction", &json!(tx))?;
            }
            for v in &got {
                t.record("batched reply", v);
            }
            Ok(())
        })
        .await
}

#[tokio::test]
async fn events_go_to_the_session_connection() -> Result<()> {
    Case::new("events_go_to_the_session_connection")
        .ws_only()
        .run(&SERVERS, async |t| {
            let (s, h) = t.echo_handle().await?;
            // A second connection sends the detach: the reply comes back on it,
            // the event goes to the connection that created the session.
            let mut other = WsClient::connect(&t.server().ws_url(), Some(JANUS_PROTOCOL)).await?;
            let reply = other
                .request(&json!({"janus": "detach", "session_id": s, "handle_id": h, "transaction": "d"}), REPLY_TIMEOUT)
                .await?;
            reply.expect_kind("success")?;
            t.record("detach from another socket", &reply);
            let event = t.expect_event(s, "detached", WAIT).await?;
            event.expect_at("/sender", &json!(h))?;
            ensure!(other.recv(Duration::from_millis(500)).await?.is_none(), "event leaked to the other socket");
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn claim_moves_the_session() -> Result<()> {
    Case::new("claim_moves_the_session")
        .ws_only()
        .run(&SERVERS, async |t| {
            let (s, h) = t.echo_handle().await?;
            let mut other = WsClient::connect(&t.server().ws_url(), Some(JANUS_PROTOCOL)).await?;
            let reply = other
                .request(&json!({"janus": "claim", "session_id": s, "transaction": "c"}), REPLY_TIMEOUT)
                .await?;
            reply.expect_kind("success")?.expect_at("/session_id", &json!(s))?;
            t.record("claim", &reply);
            // Events now go to the claiming connection.
            let reply = other
                .request(&json!({"janus": "detach", "session_id": s, "handle_id": h, "transaction": "d"}), REPLY_TIMEOUT)
                .await?;
            reply.expect_kind("success")?;
            let event = other
                .wait_for(WAIT, |v| v.kind() == "detached")
                .await?
                .ok_or_else(|| anyhow!("no detached event on the claiming socket"))?;
            event.expect_at("/sender", &json!(h))?;
            t.record("event after claim", &event);
            // Closing the first connection no longer destroys the session.
            let ws = t.ws()?;
            ws.close().await?;
            ws.wait_closed(WAIT).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let reply = other
                .request(&json!({"janus": "keepalive", "session_id": s, "transaction": "k"}), REPLY_TIMEOUT)
                .await?;
            reply.expect_kind("ack")?;
            let reply = other
                .request(&json!({"janus": "destroy", "session_id": s, "transaction": "x"}), REPLY_TIMEOUT)
                .await?;
            reply.expect_kind("success")?;
            Ok(())
        })
        .await
}

#[tokio::test]
async fn closing_the_socket_destroys_its_sessions() -> Result<()> {
    Case::new("closing_the_socket_destroys_its_sessions")
        .ws_only()
        .run(&SERVERS, async |t| {
            let s = t.create_session().await?;
            let s2 = t.create_session().await?;
            t.attach(s, ECHOTEST_PACKAGE).await?;
            let ws = t.ws()?;
            ws.close().await?;
            ensure!(
                ws.wait_closed(WAIT).await,
                "server did not close after our close frame"
            );
            let mut other = WsClient::connect(&t.server().ws_url(), Some(JANUS_PROTOCOL)).await?;
            for session in [s, s2] {
                let reply = wait_session_gone(&mut other, session, WAIT).await?;
                reply.expect_error_reason(458, &format!("No such session {session}"))?;
                t.record("after close", &reply);
            }
            Ok(())
        })
        .await
}
