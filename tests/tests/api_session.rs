//! Janus API conformance: session-less and session-level requests, request
//! validation and error precedence (janus-api.md §2–§4.4, §4.10).

use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use jsfu_tests::{Case, ECHOTEST_PACKAGE, Reply, ServerOptions, Servers, Transport};
use serde_json::json;

static SERVERS: Servers = Servers::new(ServerOptions::echotest);

/// A session id unlikely to exist (and different per call).
fn random_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7);
    1_000_000_000 + u64::from(nanos) * 97 + u64::from(std::process::id())
}

#[tokio::test]
async fn create_and_destroy() -> Result<()> {
    Case::new("create_and_destroy")
        .run(&SERVERS, async |t| {
            let reply = t.request(json!({"janus": "create"})).await?;
            reply.expect_kind("success")?.expect_absent("/session_id")?;
            let s = reply
                .data_id()
                .ok_or_else(|| anyhow!("no data.id in {reply}"))?;
            ensure!(
                (1..1u64 << 53).contains(&s),
                "session id {s} out of 1..2^53"
            );
            let reply = t
                .request(json!({"janus": "destroy", "session_id": s}))
                .await?;
            reply
                .expect_kind("success")?
                .expect_at("/session_id", &json!(s))?;
            let reply = t
                .request(json!({"janus": "keepalive", "session_id": s}))
                .await?;
            reply.expect_error_reason(458, &format!("No such session {s}"))?;
            reply.expect_at("/session_id", &json!(s))?;
            t.expect_no_event(s, Duration::from_millis(300)).await?;
            Ok(())
        })
        .await
}

#[tokio::test]
async fn create_with_id_and_conflict() -> Result<()> {
    Case::new("create_with_id_and_conflict")
        .run(&SERVERS, async |t| {
            let id = random_id();
            t.register_id(id, "session");
            let reply = t.request(json!({"janus": "create", "id": id})).await?;
            reply
                .expect_kind("success")?
                .expect_at("/data/id", &json!(id))?;
            let reply = t.request(json!({"janus": "create", "id": id})).await?;
            reply
                .expect_error_reason(468, "Session ID already in use")?
                .expect_at("/session_id", &json!(id))?;
            // id 0 means "choose one".
            let reply = t.request(json!({"janus": "create", "id": 0})).await?;
            reply.expect_kind("success")?;
            ensure!(
                reply.data_id().is_some_and(|n| n != 0 && n != id),
                "bad id in {reply}"
            );
            let other = reply.data_id().unwrap_or(0);
            t.destroy_session(other).await?;
            t.destroy_session(id).await?;
            Ok(())
        })
        .await
}

#[tokio::test]
async fn create_with_invalid_id() -> Result<()> {
    Case::new("create_with_invalid_id")
        .run(&SERVERS, async |t| {
            for bad in [json!(-5), json!("12"), json!(1.5)] {
                let reply = t.request(json!({"janus": "create", "id": bad})).await?;
                reply.expect_error_reason(
                    467,
                    "Invalid element type (id should be a positive integer)",
                )?;
            }
            Ok(())
        })
        .await
}

#[tokio::test]
async fn keepalive_and_claim() -> Result<()> {
    Case::new("keepalive_and_claim")
        .run(&SERVERS, async |t| {
            let s = t.create_session().await?;
            let reply = t
                .request(json!({"janus": "keepalive", "session_id": s, "transaction": "ka"}))
                .await?;
            reply
                .expect_kind("ack")?
                .expect_at("/session_id", &json!(s))?
                .expect_at("/transaction", &json!("ka"))?;
            let reply = t
                .request(json!({"janus": "claim", "session_id": s}))
                .await?;
            reply
                .expect_kind("success")?
                .expect_at("/session_id", &json!(s))?;
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn info_and_ping() -> Result<()> {
    Case::new("info_and_ping")
        .run(&SERVERS, async |t| {
            let reply = t
                .request(json!({"janus": "info", "transaction": "i1"}))
                .await?;
            reply
                .expect_kind("server_info")?
                .expect_at("/transaction", &json!("i1"))?
                .expect_at("/session-timeout", &json!(60))?
                .expect_at("/api_secret", &json!(false))?;
            let plugin = reply
                .pointer(&format!("/plugins/{}", ECHOTEST_PACKAGE.replace('/', "~1")))
                .ok_or_else(|| anyhow!("no {ECHOTEST_PACKAGE} in plugins: {reply}"))?;
            plugin.expect_at("/name", &json!("JavaScript based EchoTest"))?;
            plugin.expect_at("/version", &json!(12))?;
            plugin.expect_at("/version_string", &json!("0.0.12"))?;
            plugin.expect_at("/author", &json!("Lorenzo Miniero"))?;
            for key in [
                "name",
                "version",
                "version_string",
                "author",
                "data_channels",
                "ice-lite",
                "full-trickle",
                "transports",
            ] {
                ensure!(reply.get(key).is_some(), "server_info lacks {key}: {reply}");
            }
            let reply = t
                .request(json!({"janus": "ping", "transaction": "p1"}))
                .await?;
            reply
                .expect_kind("pong")?
                .expect_at("/transaction", &json!("p1"))?;
            ensure!(
                reply.as_object().is_some_and(|o| o.len() == 2),
                "pong has extra members: {reply}"
            );
            Ok(())
        })
        .await
}

#[tokio::test]
async fn session_less_verbs_with_a_session() -> Result<()> {
    Case::new("session_less_verbs_with_a_session")
        .run(&SERVERS, async |t| {
            let s = t.create_session().await?;
            for verb in ["info", "ping", "create"] {
                let reply = t.request(json!({"janus": verb, "session_id": s})).await?;
                reply
                    .expect_error_reason(453, &format!("Unknown request '{verb}'"))?
                    .expect_at("/session_id", &json!(s))?;
            }
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn unknown_verbs_by_level() -> Result<()> {
    Case::new("unknown_verbs_by_level")
        .run(&SERVERS, async |t| {
            let reply = t.request(json!({"janus": "fly"})).await?;
            reply.expect_error_reason(457, "Unhandled request 'fly' at this path")?;
            let (s, h) = t.echo_handle().await?;
            let reply = t.request(json!({"janus": "fly", "session_id": s})).await?;
            reply.expect_error_reason(453, "Unknown request 'fly'")?;
            let reply = t
                .request(json!({"janus": "fly", "session_id": s, "handle_id": h}))
                .await?;
            reply.expect_error_reason(453, "Unknown request 'fly'")?;
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn verbs_at_the_wrong_level() -> Result<()> {
    Case::new("verbs_at_the_wrong_level")
        .run(&SERVERS, async |t| {
            for verb in ["attach", "keepalive", "destroy", "claim", "detach", "message", "trickle", "hangup"] {
                let reply = t.request(json!({"janus": verb})).await?;
                reply.expect_error_reason(457, &format!("Unhandled request '{verb}' at this path"))?;
            }
            let (s, h) = t.echo_handle().await?;
            for verb in ["detach", "hangup", "message", "trickle"] {
                let reply = t.request(json!({"janus": verb, "session_id": s})).await?;
                reply.expect_error_reason(457, &format!("Unhandled request '{verb}' at this path"))?;
            }
            for verb in ["attach", "destroy"] {
                let reply = t
                    .request(json!({"janus": verb, "session_id": s, "handle_id": h, "plugin": ECHOTEST_PACKAGE}))
                    .await?;
                reply.expect_error_reason(457, &format!("Unhandled request '{verb}' at this path"))?;
            }
            // Janus handles keepalive and claim before it looks at the handle
            // id, so both are accepted at a handle path (the spec says 457).
            let reply = t.request(json!({"janus": "keepalive", "session_id": s, "handle_id": h})).await?;
            reply.expect_kind("ack")?.expect_at("/session_id", &json!(s))?;
            let reply = t.request(json!({"janus": "claim", "session_id": s, "handle_id": h})).await?;
            reply.expect_kind("success")?.expect_at("/session_id", &json!(s))?;
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn verbs_are_case_insensitive() -> Result<()> {
    Case::new("verbs_are_case_insensitive")
        .run(&SERVERS, async |t| {
            t.request(json!({"janus": "PING"})).await?.expect_kind("pong")?;
            t.request(json!({"janus": "Info"})).await?.expect_kind("server_info")?;
            let reply = t.request(json!({"janus": "CREATE"})).await?;
            reply.expect_kind("success")?;
            let s = reply.data_id().ok_or_else(|| anyhow!("no id: {reply}"))?;
            t.request(json!({"janus": "KeepAlive", "session_id": s})).await?.expect_kind("ack")?;
            let reply = t
                .request(json!({"janus": "ATTACH", "session_id": s, "plugin": ECHOTEST_PACKAGE}))
                .await?;
            reply.expect_kind("success")?;
            let h = reply.data_id().ok_or_else(|| anyhow!("no id: {reply}"))?;
            let reply = t
                .request(json!({"janus": "Message", "session_id": s, "handle_id": h, "body": {"audio": true}}))
                .await?;
            reply.expect_kind("success")?;
            let reply = t.request(json!({"janus": "DESTROY", "session_id": s})).await?;
            reply.expect_kind("success")?;
            Ok(())
        })
        .await
}

#[tokio::test]
async fn missing_or_bad_transaction_and_janus() -> Result<()> {
    Case::new("missing_or_bad_transaction_and_janus")
        .run(&SERVERS, async |t| {
            let reply = t.request_exact(json!({"janus": "ping"})).await?;
            reply
                .expect_error_reason(456, "Missing mandatory element (transaction)")?
                .expect_absent("/transaction")?;
            let reply = t
                .request_exact(json!({"janus": "ping", "transaction": 5}))
                .await?;
            reply
                .expect_error_reason(467, "Invalid element type (transaction should be a string)")?
                .expect_absent("/transaction")?;
            let reply = t.request_exact(json!({"transaction": "nj"})).await?;
            reply.expect_error_reason(456, "Missing mandatory element (janus)")?;
            let reply = t
                .request_exact(json!({"janus": 7, "transaction": "bj"}))
                .await?;
            reply.expect_error_reason(467, "Invalid element type (janus should be a string)")?;
            Ok(())
        })
        .await
}

#[tokio::test]
async fn malformed_payloads() -> Result<()> {
    // The parser's text differs between implementations: compare codes only.
    Case::new("malformed_payloads")
        .ignore(&["error.reason"])
        .run(&SERVERS, async |t| {
            let reply = t
                .request_text("", "{\"janus\": \"ping\", \"transaction\": ")
                .await?;
            reply.expect_error(454)?.expect_absent("/transaction")?;
            let reply = t.request_text("", "this is not json").await?;
            reply.expect_error(454)?;
            // An array: HTTP checks "is an object" (455); Janus's WebSocket
            // transport does not, and the core then misses the transaction.
            let reply = t.request_text("", "[1, 2]").await?;
            match t.transport() {
                Transport::Http => reply.expect_error_reason(455, "JSON error: not an object")?,
                Transport::Ws => {
                    reply.expect_error_reason(456, "Missing mandatory element (transaction)")?
                }
            };
            reply.expect_absent("/transaction")?;
            // Janus's JSON parser rejects a top-level scalar as unparsable:
            // 454, not the 455 of "not an object".
            for text in ["42", "\"ping\""] {
                let reply = t.request_text("", text).await?;
                reply.expect_error(454)?.expect_absent("/transaction")?;
            }
            Ok(())
        })
        .await
}

#[tokio::test]
async fn unknown_session_and_handle() -> Result<()> {
    Case::new("unknown_session_and_handle")
        .run(&SERVERS, async |t| {
            let ghost = random_id();
            t.register_id(ghost, "ghost");
            for verb in ["keepalive", "attach", "destroy", "claim"] {
                let reply = t
                    .request(json!({"janus": verb, "session_id": ghost, "plugin": ECHOTEST_PACKAGE}))
                    .await?;
                reply
                    .expect_error_reason(458, &format!("No such session {ghost}"))?
                    .expect_at("/session_id", &json!(ghost))?;
            }
            let s = t.create_session().await?;
            let ghost_handle = ghost + 1;
            t.register_id(ghost_handle, "ghost");
            for verb in ["detach", "hangup", "message", "trickle"] {
                let reply = t
                    .request(json!({"janus": verb, "session_id": s, "handle_id": ghost_handle, "body": {}}))
                    .await?;
                reply
                    .expect_error_reason(459, &format!("No such handle {ghost_handle} in session {s}"))?
                    .expect_at("/session_id", &json!(s))?;
            }
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn ids_that_are_not_integers() -> Result<()> {
    Case::new("ids_that_are_not_integers")
        .run(&SERVERS, async |t| {
            // A non-integer session id counts as absent.
            let reply = t
                .request(json!({"janus": "keepalive", "session_id": "123"}))
                .await?;
            reply.expect_error_reason(457, "Unhandled request 'keepalive' at this path")?;
            let reply = t
                .request(json!({"janus": "ping", "session_id": null}))
                .await?;
            reply.expect_kind("pong")?;
            // A handle id without a session id.
            let reply = t
                .request(json!({"janus": "detach", "handle_id": 77}))
                .await?;
            reply.expect_error_reason(458, "Session not found")?;
            Ok(())
        })
        .await
}
