//! Janus API conformance: stored-token authentication (janus-api.md §2,
//! §3 step 6, §8.2, §11): `token_auth`, the Admin API's `add_token`,
//! `list_tokens`, `allow_token`, `disallow_token` and `remove_token`, the
//! 403/405/470/490 answers, the API secret and a token configured together,
//! and token management on a server without token authentication.
//!
//! The servers of a file are shared by its tests and tokens are global, so
//! every test names its tokens after itself and the transport.

use anyhow::{Result, anyhow, ensure};
use jsfu_tests::{AdminClient, Api, Case, ECHOTEST_PACKAGE, Reply, ServerOptions, Servers};
use serde_json::{Value, json};

const ADMIN_SECRET: &str = "admin-pw";
const API_SECRET: &str = "s3cret-api";
const UNAUTHORIZED: &str = "Unauthorized request (wrong or missing secret/token)";
const NO_SUCH_PLUGIN: &str = "janus.plugin.nope";

static SERVERS: Servers = Servers::new(|| {
    ServerOptions::echotest()
        .with_admin_secret(ADMIN_SECRET)
        .with_token_auth()
});

/// Both an API secret and token authentication.
static BOTH: Servers = Servers::new(|| {
    ServerOptions::echotest()
        .with_admin_secret(ADMIN_SECRET)
        .with_token_auth()
        .with_api_secret(API_SECRET)
});

async fn admin(t: &Api) -> Result<AdminClient> {
    AdminClient::connect(t.server(), t.transport()).await
}

/// A token name private to one test and transport.
fn token(t: &Api, name: &str) -> String {
    format!("{name}-{}", t.transport())
}

/// An Admin request whose reply is recorded (for the comparison) under `what`.
async fn admin_request(
    t: &mut Api,
    admin: &mut AdminClient,
    what: &str,
    request: Value,
) -> Result<Value> {
    let reply = admin.request(request).await?;
    t.record(what, &reply);
    Ok(reply)
}

/// `list_tokens`, reduced to `names` sorted by name (Janus lists them in
/// hash-table order, and other tests' tokens may be there too).
async fn listed_tokens(t: &mut Api, admin: &mut AdminClient, names: &[&str]) -> Result<Value> {
    let reply = admin
        .request(json!({"janus": "list_tokens", "transaction": "lt"}))
        .await?;
    reply.expect_kind("success")?;
    let all = reply
        .pointer("/data/tokens")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("list_tokens without data.tokens: {reply}"))?;
    let mut mine: Vec<Value> = all
        .iter()
        .filter(|entry| {
            entry["token"]
                .as_str()
                .is_some_and(|name| names.contains(&name))
        })
        .cloned()
        .collect();
    mine.sort_by(|a, b| a["token"].as_str().cmp(&b["token"].as_str()));
    let reduced = json!({"janus": reply["janus"], "transaction": reply["transaction"], "data": {"tokens": mine}});
    t.record("list_tokens (this test's tokens)", &reduced);
    Ok(reduced)
}

#[tokio::test]
async fn token_gates_every_request() -> Result<()> {
    Case::new("token_gates_every_request")
        .run(&SERVERS, async |t| {
            let t1 = token(t, "gate");
            let mut admin = admin(t).await?;
            // info and ping need no token; info tells that tokens are on.
            let reply = t.request(json!({"janus": "info"})).await?;
            reply.expect_kind("server_info")?.expect_at("/auth_token", &json!(true))?;
            t.record("info auth_token", &json!({"auth_token": reply["auth_token"]}));
            t.request(json!({"janus": "ping"})).await?.expect_kind("pong")?;
            let reply = admin.request(json!({"janus": "get_status"})).await?;
            reply.expect_kind("success")?.expect_at("/status/token_auth", &json!(true))?;
            // create needs a known token.
            let reply = t.request(json!({"janus": "create"})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?.expect_absent("/session_id")?;
            let reply = t.request(json!({"janus": "create", "token": t1})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?;
            // The Admin API adds it, limited to the echo test.
            let reply = admin_request(
                t,
                &mut admin,
                "add_token",
                json!({"janus": "add_token", "token": t1, "plugins": [ECHOTEST_PACKAGE]}),
            )
            .await?;
            reply
                .expect_kind("success")?
                .expect_at("/data/plugins", &json!([ECHOTEST_PACKAGE]))?
                .expect_absent("/session_id")?;
            let listed = listed_tokens(t, &mut admin, &[&t1]).await?;
            listed.expect_at(
                "/data/tokens",
                &json!([{"token": t1, "allowed_plugins": [ECHOTEST_PACKAGE]}]),
            )?;
            let reply = t.request(json!({"janus": "create", "token": t1})).await?;
            reply.expect_kind("success")?;
            let s = reply.data_id().ok_or_else(|| anyhow!("create: {reply}"))?;
            let reply = t
                .request(json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE, "token": t1}))
                .await?;
            reply.expect_kind("success")?;
            let h = reply.data_id().ok_or_else(|| anyhow!("attach: {reply}"))?;
            // Every session and handle request needs it.
            let session_requests = [
                json!({"janus": "keepalive", "session_id": s}),
                json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE}),
                json!({"janus": "claim", "session_id": s}),
                json!({"janus": "destroy", "session_id": s}),
                json!({"janus": "message", "session_id": s, "handle_id": h, "body": {"audio": true}}),
                json!({"janus": "trickle", "session_id": s, "handle_id": h, "candidate": {"completed": true}}),
                json!({"janus": "hangup", "session_id": s, "handle_id": h}),
                json!({"janus": "detach", "session_id": s, "handle_id": h}),
            ];
            for request in session_requests {
                for credential in [None, Some("wrong")] {
                    let mut request = request.clone();
                    if let (Some(obj), Some(value)) = (request.as_object_mut(), credential) {
                        obj.insert("token".to_owned(), json!(value));
                    }
                    let reply = t.request(request.clone()).await?;
                    reply
                        .expect_error_reason(403, UNAUTHORIZED)
                        .map_err(|e| anyhow!("{request}: {e}"))?
                        .expect_at("/session_id", &json!(s))?;
                }
            }
            let reply = t.request(json!({"janus": "keepalive", "session_id": s, "token": t1})).await?;
            reply.expect_kind("ack")?;
            // The token is checked before the session is looked up.
            t.register_id(s + 1, "ghost");
            let reply = t.request(json!({"janus": "keepalive", "session_id": s + 1})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?;
            let reply = t.request(json!({"janus": "keepalive", "session_id": s + 1, "token": t1})).await?;
            reply.expect_error_reason(458, &format!("No such session {}", s + 1))?;
            // An api secret is no credential when none is configured.
            let reply = t.request(json!({"janus": "keepalive", "session_id": s, "apisecret": "x"})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?;
            // Removed, the token opens nothing any more.
            let reply = admin_request(t, &mut admin, "remove_token", json!({"janus": "remove_token", "token": t1}))
                .await?;
            reply.expect_kind("success")?.expect_absent("/data")?;
            let reply = t.request(json!({"janus": "keepalive", "session_id": s, "token": t1})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?;
            let reply = t.request(json!({"janus": "create", "token": t1})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?;
            let listed = listed_tokens(t, &mut admin, &[&t1]).await?;
            listed.expect_at("/data/tokens", &json!([]))?;
            // Removing an unknown token fails with Janus's generic error.
            let reply = admin_request(
                t,
                &mut admin,
                "remove_token unknown",
                json!({"janus": "remove_token", "token": t1}),
            )
            .await?;
            reply.expect_error_reason(490, "Error removing token")?;
            let reply = admin_request(t, &mut admin, "remove_token without token", json!({"janus": "remove_token"}))
                .await?;
            reply.expect_error_reason(456, "Missing mandatory element (token)")?;
            // Tidy up with a token added for it.
            let cleanup = token(t, "gate-cleanup");
            admin
                .request(json!({"janus": "add_token", "token": cleanup}))
                .await?
                .expect_kind("success")?;
            t.request(json!({"janus": "destroy", "session_id": s, "token": cleanup}))
                .await?
                .expect_kind("success")?;
            admin
                .request(json!({"janus": "remove_token", "token": cleanup}))
                .await?
                .expect_kind("success")?;
            Ok(())
        })
        .await
}

#[tokio::test]
async fn plugin_access_per_token() -> Result<()> {
    Case::new("plugin_access_per_token")
        .run(&SERVERS, async |t| {
            let all = token(t, "all");
            let none = token(t, "none");
            let mut admin = admin(t).await?;
            // An empty (or absent) list gives access to every plugin.
            let reply = admin_request(
                t,
                &mut admin,
                "add_token with []",
                json!({"janus": "add_token", "token": all, "plugins": []}),
            )
            .await?;
            reply.expect_kind("success")?.expect_at("/data/plugins", &json!([ECHOTEST_PACKAGE]))?;
            // Unknown plugins and non-strings are skipped: no plugin at all here.
            let reply = admin_request(
                t,
                &mut admin,
                "add_token with unknown plugins",
                json!({"janus": "add_token", "token": none, "plugins": [NO_SUCH_PLUGIN, 7]}),
            )
            .await?;
            reply.expect_kind("success")?.expect_at("/data/plugins", &json!([]))?;
            // A token allowed no plugin is valid but not listed.
            let listed = listed_tokens(t, &mut admin, &[&all, &none]).await?;
            listed.expect_at(
                "/data/tokens",
                &json!([{"token": all, "allowed_plugins": [ECHOTEST_PACKAGE]}]),
            )?;
            // A token with no plugin still opens sessions...
            let reply = t.request(json!({"janus": "create", "token": none})).await?;
            reply.expect_kind("success")?;
            let s = reply.data_id().ok_or_else(|| anyhow!("create: {reply}"))?;
            // ...but not the echo test (an unknown plugin is reported first).
            let denied = format!("Provided token can't access plugin '{ECHOTEST_PACKAGE}'");
            let attach = json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE, "token": none});
            t.request(attach.clone()).await?.expect_error_reason(405, &denied)?.expect_at("/session_id", &json!(s))?;
            let reply = t
                .request(json!({"janus": "attach", "session_id": s, "plugin": NO_SUCH_PLUGIN, "token": none}))
                .await?;
            reply.expect_error_reason(460, &format!("No such plugin '{NO_SUCH_PLUGIN}'"))?;
            // allow_token opens it, disallow_token closes it again.
            let reply = admin_request(
                t,
                &mut admin,
                "allow_token",
                json!({"janus": "allow_token", "token": none, "plugins": [ECHOTEST_PACKAGE]}),
            )
            .await?;
            reply.expect_kind("success")?.expect_at("/data/plugins", &json!([ECHOTEST_PACKAGE]))?;
            let reply = t.request(attach.clone()).await?;
            reply.expect_kind("success")?;
            let reply = admin_request(
                t,
                &mut admin,
                "disallow_token",
                json!({"janus": "disallow_token", "token": none, "plugins": [ECHOTEST_PACKAGE]}),
            )
            .await?;
            reply.expect_kind("success")?.expect_at("/data/plugins", &json!([]))?;
            t.request(attach.clone()).await?.expect_error_reason(405, &denied)?;
            // Another token's access is its own.
            let reply = t
                .request(json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE, "token": all}))
                .await?;
            reply.expect_kind("success")?;
            // Malformed token requests.
            let unknown = token(t, "unknown");
            let invalid_plugins = "Invalid element type (some of the provided plugins are invalid)";
            let non_empty = "Invalid element type (plugins should be a non-empty array)";
            let cases = [
                (json!({"janus": "allow_token", "token": unknown, "plugins": [ECHOTEST_PACKAGE]}), 470, format!("Token {unknown} not found")),
                (json!({"janus": "disallow_token", "token": unknown, "plugins": [ECHOTEST_PACKAGE]}), 470, format!("Token {unknown} not found")),
                (json!({"janus": "allow_token", "token": none, "plugins": []}), 467, non_empty.to_owned()),
                (json!({"janus": "disallow_token", "token": none}), 467, non_empty.to_owned()),
                (json!({"janus": "allow_token", "token": unknown}), 467, non_empty.to_owned()),
                (json!({"janus": "allow_token", "token": none, "plugins": [NO_SUCH_PLUGIN]}), 467, invalid_plugins.to_owned()),
                (json!({"janus": "disallow_token", "token": none, "plugins": [ECHOTEST_PACKAGE, 1]}), 467, invalid_plugins.to_owned()),
                (json!({"janus": "add_token", "token": none, "plugins": "all"}), 467, "Invalid element type (plugins should be an array)".to_owned()),
                (json!({"janus": "add_token", "token": 5}), 467, "Invalid element type (token should be a string)".to_owned()),
                (json!({"janus": "add_token"}), 456, "Missing mandatory element (token)".to_owned()),
            ];
            for (request, code, reason) in cases {
                let reply = admin_request(t, &mut admin, "malformed token request", request.clone()).await?;
                reply.expect_error_reason(code, &reason).map_err(|e| anyhow!("{request}: {e}"))?;
            }
            // The failed allow_token calls changed nothing.
            let listed = listed_tokens(t, &mut admin, &[&none]).await?;
            listed.expect_at("/data/tokens", &json!([]))?;
            t.request(attach.clone()).await?.expect_error_reason(405, &denied)?;
            t.request(json!({"janus": "destroy", "session_id": s, "token": all}))
                .await?
                .expect_kind("success")?;
            for name in [&all, &none] {
                admin
                    .request(json!({"janus": "remove_token", "token": name}))
                    .await?
                    .expect_kind("success")?;
            }
            Ok(())
        })
        .await
}

#[tokio::test]
async fn long_poll_takes_the_token() -> Result<()> {
    Case::new("long_poll_takes_the_token")
        .http_only()
        .run(&SERVERS, async |t| {
            let tp = token(t, "poll");
            let mut admin = admin(t).await?;
            admin
                .request(json!({"janus": "add_token", "token": tp}))
                .await?
                .expect_kind("success")?;
            let reply = t.request(json!({"janus": "create", "token": tp})).await?;
            let s = reply.data_id().ok_or_else(|| anyhow!("create: {reply}"))?;
            let reply = t
                .request(json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE, "token": tp}))
                .await?;
            let h = reply.data_id().ok_or_else(|| anyhow!("attach: {reply}"))?;
            let http = t.http()?.clone();
            let r = http.get(&format!("/{s}?maxev=1")).await?;
            ensure!(r.status == 403 && r.body.is_empty(), "poll without token: {} {:?}", r.status, r.text());
            let r = http.get(&format!("/{s}?maxev=1&token=wrong")).await?;
            ensure!(r.status == 403 && r.body.is_empty(), "poll with a wrong token: {} {:?}", r.status, r.text());
            t.request(json!({"janus": "detach", "session_id": s, "handle_id": h, "token": tp}))
                .await?
                .expect_kind("success")?;
            let r = http.get(&format!("/{s}?maxev=1&token={tp}")).await?;
            ensure!(r.status == 200, "poll with the token: {} {:?}", r.status, r.text());
            let event = r.json()?;
            event.expect_kind("detached")?;
            t.record("polled event", &event);
            t.request(json!({"janus": "destroy", "session_id": s, "token": tp}))
                .await?
                .expect_kind("success")?;
            admin
                .request(json!({"janus": "remove_token", "token": tp}))
                .await?
                .expect_kind("success")?;
            Ok(())
        })
        .await
}

#[tokio::test]
async fn secret_or_token_is_enough() -> Result<()> {
    Case::new("secret_or_token_is_enough")
        .run(&BOTH, async |t| {
            let tb = token(t, "both");
            let mut admin = admin(t).await?;
            let reply = t.request(json!({"janus": "info"})).await?;
            reply
                .expect_at("/api_secret", &json!(true))?
                .expect_at("/auth_token", &json!(true))?;
            t.record("info auth_token", &json!({"auth_token": reply["auth_token"]}));
            // A token allowed no plugin.
            admin
                .request(json!({"janus": "add_token", "token": tb, "plugins": [NO_SUCH_PLUGIN]}))
                .await?
                .expect_at("/data/plugins", &json!([]))?;
            t.request(json!({"janus": "create"})).await?.expect_error_reason(403, UNAUTHORIZED)?;
            let reply = t.request(json!({"janus": "create", "apisecret": "wrong", "token": "wrong"})).await?;
            reply.expect_error_reason(403, UNAUTHORIZED)?;
            // Either credential is enough, even next to a wrong other one.
            for request in [
                json!({"janus": "create", "apisecret": API_SECRET}),
                json!({"janus": "create", "token": tb}),
                json!({"janus": "create", "apisecret": "wrong", "token": tb}),
                json!({"janus": "create", "apisecret": API_SECRET, "token": "wrong"}),
            ] {
                let reply = t.request(request.clone()).await?;
                reply.expect_kind("success").map_err(|e| anyhow!("{request}: {e}"))?;
                let s = reply.data_id().ok_or_else(|| anyhow!("create: {reply}"))?;
                t.request(json!({"janus": "destroy", "session_id": s, "apisecret": API_SECRET}))
                    .await?
                    .expect_kind("success")?;
            }
            let reply = t.request(json!({"janus": "create", "token": tb})).await?;
            let s = reply.data_id().ok_or_else(|| anyhow!("create: {reply}"))?;
            // With the secret, attach is open to any plugin, unless a token
            // comes along: then that token's plugins decide, even when the
            // token is unknown.
            let denied = format!("Provided token can't access plugin '{ECHOTEST_PACKAGE}'");
            let reply = t
                .request(json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE, "apisecret": API_SECRET}))
                .await?;
            reply.expect_kind("success")?;
            let h = reply.data_id().ok_or_else(|| anyhow!("attach: {reply}"))?;
            for extra in [tb.as_str(), "wrong"] {
                let reply = t
                    .request(json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE, "apisecret": API_SECRET, "token": extra}))
                    .await?;
                reply.expect_error_reason(405, &denied)?;
            }
            if let Ok(http) = t.http() {
                let http = http.clone();
                t.request(json!({"janus": "detach", "session_id": s, "handle_id": h, "token": tb}))
                    .await?
                    .expect_kind("success")?;
                let r = http.get(&format!("/{s}?maxev=1&token=wrong&apisecret=wrong")).await?;
                ensure!(r.status == 403 && r.body.is_empty(), "poll with wrong credentials: {} {:?}", r.status, r.text());
                let r = http.get(&format!("/{s}?maxev=1&token={tb}&apisecret=wrong")).await?;
                ensure!(r.status == 200, "poll with the token: {} {:?}", r.status, r.text());
                let event = r.json()?;
                event.expect_kind("detached")?;
                t.record("polled event", &event);
            }
            t.request(json!({"janus": "destroy", "session_id": s, "token": tb}))
                .await?
                .expect_kind("success")?;
            admin
                .request(json!({"janus": "remove_token", "token": tb}))
                .await?
                .expect_kind("success")?;
            Ok(())
        })
        .await
}

/// No token authentication.
static NO_TOKENS: Servers =
    Servers::new(|| ServerOptions::echotest().with_admin_secret(ADMIN_SECRET));

#[tokio::test]
async fn token_requests_need_token_auth() -> Result<()> {
    Case::new("token_requests_need_token_auth")
        .run(&NO_TOKENS, async |t| {
            let name = token(t, "off");
            let mut admin = admin(t).await?;
            let reply = t.request(json!({"janus": "info"})).await?;
            reply.expect_at("/auth_token", &json!(false))?;
            t.record("info auth_token", &json!({"auth_token": reply["auth_token"]}));
            for request in [
                json!({"janus": "add_token", "token": name}),
                json!({"janus": "allow_token", "token": name, "plugins": [ECHOTEST_PACKAGE]}),
                json!({"janus": "disallow_token", "token": name, "plugins": [ECHOTEST_PACKAGE]}),
                json!({"janus": "remove_token", "token": name}),
                json!({"janus": "list_tokens"}),
                json!({"janus": "add_token"}),
            ] {
                let reply = admin_request(t, &mut admin, "token request without token auth", request.clone()).await?;
                reply
                    .expect_error_reason(490, "Stored-Token based authentication disabled")
                    .map_err(|e| anyhow!("{request}: {e}"))?;
            }
            // A token in a request is ignored.
            let reply = t.request(json!({"janus": "create", "token": name})).await?;
            let s = reply.data_id().ok_or_else(|| anyhow!("create: {reply}"))?;
            let reply = t
                .request(json!({"janus": "attach", "session_id": s, "plugin": ECHOTEST_PACKAGE, "token": name}))
                .await?;
            reply.expect_kind("success")?;
            t.destroy_session(s).await
        })
        .await
}
