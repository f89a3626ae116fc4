//! Janus API conformance: the API secret (janus-api.md §2, §3 step 6, §8.2).

use anyhow::{Result, ensure};
use jsfu_tests::{Case, ECHOTEST_PACKAGE, Reply, ServerOptions, Servers};
use serde_json::json;

const SECRET: &str = "s3cret-api";
const UNAUTHORIZED: &str = "Unauthorized request (wrong or missing secret/token)";

static SERVERS: Servers = Servers::new(|| ServerOptions::echotest().with_api_secret(SECRET));

#[tokio::test]
async fn api_secret_is_enforced() -> Result<()> {
    Case::new("api_secret_is_enforced")
        .run(&SERVERS, async |t| {
            // info and ping need no secret.
            let reply = t.request(json!({"janus": "info"})).await?;
            reply.expect_kind("server_info")?.expect_at("/api_secret", &json!(true))?;
            t.request(json!({"janus": "ping"})).await?.expect_kind("pong")?;
            // create needs it.
            let reply = t.request(json!({"janus": "create"})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?;
            let reply = t.request(json!({"janus": "create", "apisecret": "wrong"})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?;
            let reply = t.request(json!({"janus": "create", "apisecret": SECRET})).await?;
            reply.expect_kind("success")?;
            let s = reply.data_id().unwrap_or(0);
            // So does every session and handle request.
            let reply = t.request(json!({"janus": "keepalive", "session_id": s})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?.expect_at("/session_id", &json!(s))?;
            let reply = t
                .request(json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE, "apisecret": SECRET}))
                .await?;
            reply.expect_kind("success")?;
            let h = reply.data_id().unwrap_or(0);
            let reply = t
                .request(json!({"janus": "message", "session_id": s, "handle_id": h, "body": {"audio": true}}))
                .await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?;
            // The secret check comes before the session lookup.
            t.register_id(s + 1, "ghost");
            let reply = t.request(json!({"janus": "keepalive", "session_id": s + 1})).await?;
            reply.expect_error(403)?;
            let reply = t.request(json!({"janus": "destroy", "session_id": s, "apisecret": SECRET})).await?;
            reply.expect_kind("success")?;
            Ok(())
        })
        .await
}

#[tokio::test]
async fn long_poll_needs_the_secret() -> Result<()> {
    Case::new("long_poll_needs_the_secret")
        .http_only()
        .run(&SERVERS, async |t| {
            let reply = t.request(json!({"janus": "create", "apisecret": SECRET})).await?;
            let s = reply.data_id().unwrap_or(0);
            let h = t
                .request(json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE, "apisecret": SECRET}))
                .await?
                .data_id()
                .unwrap_or(0);
            let http = t.http()?.clone();
            let r = http.get(&format!("/{s}?maxev=1")).await?;
            ensure!(r.status == 403 && r.body.is_empty(), "poll without secret: {} {:?}", r.status, r.text());
            let r = http.get(&format!("/{s}?maxev=1&apisecret=wrong")).await?;
            ensure!(r.status == 403 && r.body.is_empty(), "poll with a wrong secret: {} {:?}", r.status, r.text());
            t.request(json!({"janus": "detach", "session_id": s, "handle_id": h, "apisecret": SECRET}))
                .await?
                .expect_kind("success")?;
            let r = http.get(&format!("/{s}?maxev=1&apisecret={SECRET}")).await?;
            ensure!(r.status == 200, "poll with the secret: {} {:?}", r.status, r.text());
            r.json()?.expect_kind("detached")?;
            t.request(json!({"janus": "destroy", "session_id": s, "apisecret": SECRET}))
                .await?
                .expect_kind("success")?;
            Ok(())
        })
        .await
}
