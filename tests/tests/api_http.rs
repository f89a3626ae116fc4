//! Janus API conformance: the HTTP REST transport (janus-api.md §8).

use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use jsfu_tests::{Case, ECHOTEST_PACKAGE, Flavor, RawResponse, Reply, ServerOptions, Servers};
use reqwest::Method;
use serde_json::{Value, json};

static SERVERS: Servers = Servers::new(ServerOptions::echotest);

/// Status, content type and body of a raw answer, for transcripts.
fn summary(r: &RawResponse) -> Value {
    let body = serde_json::from_slice::<Value>(&r.body).unwrap_or_else(|_| Value::String(r.text()));
    json!({"status": r.status, "body": body})
}

fn ensure_empty_status(r: &RawResponse, status: u16) -> Result<()> {
    ensure!(
        r.status == status && r.body.is_empty(),
        "expected HTTP {status} with an empty body, got {} {:?}",
        r.status,
        r.text()
    );
    Ok(())
}

#[tokio::test]
async fn ids_from_the_path() -> Result<()> {
    Case::new("ids_from_the_path")
        .http_only()
        .run(&SERVERS, async |t| {
            let (s, h) = t.echo_handle().await?;
            let http = t.http()?.clone();
            // Ids only in the path, in both, or only in the body all work.
            let reply = http.post_json(&format!("/{s}"), &json!({"janus": "keepalive", "transaction": "a"})).await?;
            reply.expect_kind("ack")?.expect_at("/session_id", &json!(s))?;
            let reply = http
                .post_json(&format!("/{s}"), &json!({"janus": "keepalive", "session_id": s, "transaction": "b"}))
                .await?;
            reply.expect_kind("ack")?;
            let reply = http
                .post_json("", &json!({"janus": "keepalive", "session_id": s, "transaction": "c"}))
                .await?;
            reply.expect_kind("ack")?;
            let reply = http
                .post_json(&format!("/{s}/{h}"), &json!({"janus": "message", "body": {"audio": true}, "transaction": "d"}))
                .await?;
            reply.expect_kind("success")?.expect_at("/sender", &json!(h))?;
            t.record("path ids", &reply);
            // Conflicting ids.
            let reply = http
                .post_json(&format!("/{s}"), &json!({"janus": "keepalive", "session_id": s + 1, "transaction": "e"}))
                .await?;
            reply
                .expect_error_reason(457, "Conflicting session ID (payload and path)")?
                .expect_absent("/transaction")?;
            t.record("conflicting session", &reply);
            let reply = http
                .post_json(
                    &format!("/{s}/{h}"),
                    &json!({"janus": "message", "handle_id": h + 1, "body": {}, "transaction": "f"}),
                )
                .await?;
            reply
                .expect_error_reason(457, "Conflicting handle ID (payload and path)")?
                .expect_absent("/transaction")?;
            t.record("conflicting handle", &reply);
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn status_codes_and_paths() -> Result<()> {
    Case::new("status_codes_and_paths")
        .http_only()
        .ignore(&["body.transaction"])
        .run(&SERVERS, async |t| {
            let s = t.create_session().await?;
            let http = t.http()?.clone();
            // GET info / ping.
            let r = http.get("/info").await?;
            ensure!(r.status == 200, "GET /info: {}", r.status);
            r.json()?.expect_kind("server_info")?;
            // The server_info members themselves are compared (reduced) in
            // api_session's info case; here only the status and kind matter.
            t.record(
                "GET /info",
                &json!({"status": r.status, "kind": "server_info"}),
            );
            // Janus 1.1.2 has no special /ping path (the spec's GET /janus/ping
            // comes from later versions): "ping" reads as session 0, so GET is
            // a long poll on no session (404) and POST is a session-less request.
            let r = http.get("/ping").await?;
            ensure_empty_status(&r, 404)?;
            t.record("GET /ping", &summary(&r));
            let r = http
                .post_raw(
                    "/ping",
                    r#"{"janus":"ping","transaction":"x"}"#,
                    "application/json",
                )
                .await?;
            r.json()?.expect_kind("pong")?;
            t.record("POST /ping", &summary(&r));
            // POST to /info: 400, empty.
            let r = http
                .post_raw(
                    "/info",
                    r#"{"janus":"info","transaction":"x"}"#,
                    "application/json",
                )
                .await?;
            ensure_empty_status(&r, 400)?;
            t.record("POST /info", &summary(&r));
            // Too many components, or outside the base path: 404, empty.
            // (Requests carry no body: Janus answers such a POST before
            // reading its body and closes the connection under it.)
            let r = http
                .send(Method::POST, &format!("/{s}/1/2"), &[], None)
                .await?;
            ensure_empty_status(&r, 404)?;
            let r = http.get(&format!("/{s}/1/2")).await?;
            ensure_empty_status(&r, 404)?;
            let outside = jsfu_tests::HttpClient::new(format!(
                "http://{}/elsewhere",
                t.server().endpoints().http
            ))?;
            let r = outside.send(Method::POST, "", &[], None).await?;
            ensure_empty_status(&r, 404)?;
            let r = outside.get("").await?;
            ensure_empty_status(&r, 404)?;
            // Long poll on an unknown session: 404, empty.
            let r = http.long_poll(s + 1, None).await?;
            ensure_empty_status(&r, 404)?;
            // JSON errors are 200 with a JSON content type.
            let r = http
                .post_raw(
                    "",
                    r#"{"janus":"fly","transaction":"x"}"#,
                    "application/json",
                )
                .await?;
            ensure!(r.status == 200, "error status {}", r.status);
            let ct = r.header("content-type").unwrap_or("");
            ensure!(ct.starts_with("application/json"), "content-type {ct:?}");
            r.json()?.expect_error(457)?;
            // navigator.sendBeacon posts text/plain: accepted.
            let r = http
                .post_raw(
                    &format!("/{s}"),
                    r#"{"janus":"destroy","transaction":"bye"}"#,
                    "text/plain;charset=UTF-8",
                )
                .await?;
            r.json()?.expect_kind("success")?;
            t.record("beacon destroy", &summary(&r));
            Ok(())
        })
        .await
}

#[tokio::test]
async fn unsupported_methods() -> Result<()> {
    Case::new("unsupported_methods")
        .http_only()
        .run(&SERVERS, async |t| {
            let http = t.http()?.clone();
            for method in [Method::PUT, Method::DELETE, Method::PATCH] {
                // (Janus 1.1.2 drops the connection without an answer when
                // such a request has a body, so none is sent.)
                let r = http.send(method.clone(), "", &[], None).await?;
                let reply = r.json()?;
                reply.expect_error_reason(450, &format!("Unsupported method {method}"))?;
                t.record(format!("{method}"), &summary(&r));
            }
            Ok(())
        })
        .await
}

#[tokio::test]
async fn get_on_a_handle_path_redirects() -> Result<()> {
    Case::new("get_on_a_handle_path_redirects")
        .http_only()
        .run(&SERVERS, async |t| {
            let (s, h) = t.echo_handle().await?;
            let r = t.http()?.get(&format!("/{s}/{h}")).await?;
            ensure!(
                r.status == 302,
                "expected 302, got {} {:?}",
                r.status,
                r.text()
            );
            let location = r.header("location").unwrap_or("");
            ensure!(location == format!("/janus/{s}"), "Location {location:?}");
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn cors_headers() -> Result<()> {
    Case::new("cors_headers")
        .http_only()
        .run(&SERVERS, async |t| {
            let http = t.http()?.clone();
            let preflight = [
                ("origin", "http://example.test"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ];
            let r = http.send(Method::OPTIONS, "", &preflight, None).await?;
            ensure_empty_status(&r, 200)?;
            ensure!(
                r.header("access-control-allow-origin") == Some("*"),
                "allow-origin: {:?}",
                r.headers
            );
            ensure!(
                r.header("access-control-max-age") == Some("86400"),
                "max-age: {:?}",
                r.headers
            );
            ensure!(
                r.header("access-control-allow-methods") == Some("POST"),
                "allow-methods: {:?}",
                r.headers
            );
            ensure!(
                r.header("access-control-allow-headers") == Some("content-type"),
                "allow-headers: {:?}",
                r.headers
            );
            let s = t.create_session().await?;
            let r = http
                .send(Method::OPTIONS, &format!("/{s}"), &preflight, None)
                .await?;
            ensure_empty_status(&r, 200)?;
            // Ordinary answers carry the CORS headers too, errors included.
            let r = http
                .send(
                    Method::POST,
                    "",
                    &[("origin", "http://example.test")],
                    Some(br#"{"janus":"ping","transaction":"c"}"#.to_vec()),
                )
                .await?;
            ensure!(
                r.header("access-control-allow-origin") == Some("*"),
                "allow-origin on POST: {:?}",
                r.headers
            );
            let r = http.long_poll(s + 1, None).await?;
            ensure!(
                r.header("access-control-allow-origin") == Some("*"),
                "allow-origin on 404: {:?}",
                r.headers
            );
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn long_poll_shapes() -> Result<()> {
    Case::new("long_poll_shapes")
        .http_only()
        .run(&SERVERS, async |t| {
            let s = t.create_session().await?;
            let mut handles = Vec::new();
            for _ in 0..3 {
                handles.push(t.attach(s, ECHOTEST_PACKAGE).await?);
            }
            // Three events. (Janus detaches on worker threads, so the order of
            // the three `detached` events is not the order of the requests:
            // only the set is checked.)
            for &h in &handles {
                t.request(json!({"janus": "detach", "session_id": s, "handle_id": h}))
                    .await?
                    .expect_kind("success")?;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let http = t.http()?.clone();
            let mut senders = Vec::new();
            // maxev=1 (and the default): one object.
            let r = http.long_poll(s, Some(1)).await?;
            let first = r.json()?;
            first.expect_kind("detached")?;
            senders.push(first["sender"].clone());
            let r = http.long_poll(s, None).await?;
            let second = r.json()?;
            second.expect_kind("detached")?;
            senders.push(second["sender"].clone());
            // maxev>1: an array, even of one element.
            let r = http.long_poll(s, Some(5)).await?;
            let rest = r.json()?;
            let list = rest
                .as_array()
                .ok_or_else(|| anyhow!("maxev=5 did not answer an array: {rest}"))?;
            ensure!(list.len() == 1, "expected one event, got {rest}");
            list[0].expect_kind("detached")?;
            senders.push(list[0]["sender"].clone());
            t.record(
                "maxev=5 shape",
                &json!({"array_len": list.len(), "kind": list[0]["janus"]}),
            );
            for h in &handles {
                ensure!(
                    senders.contains(&json!(h)),
                    "no detached event for {h}: {senders:?}"
                );
            }
            // maxev below 1 counts as 1.
            t.attach(s, ECHOTEST_PACKAGE)
                .await
                .map(|h| handles.push(h))?;
            t.request(json!({"janus": "detach", "session_id": s, "handle_id": handles[3]}))
                .await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let r = http.get(&format!("/{s}?maxev=0")).await?;
            r.json()?.expect_kind("detached")?;
            t.destroy_session(s).await?;
            let r = http.long_poll(s, Some(1)).await?;
            ensure_empty_status(&r, 404)
        })
        .await
}

#[tokio::test]
async fn long_poll_wakes_on_event() -> Result<()> {
    Case::new("long_poll_wakes_on_event")
        .http_only()
        .run(&SERVERS, async |t| {
            let (s, h) = t.echo_handle().await?;
            let http = t.http()?.clone();
            let poll = tokio::spawn(async move { http.long_poll(s, Some(10)).await });
            tokio::time::sleep(Duration::from_millis(300)).await;
            t.request(json!({"janus": "detach", "session_id": s, "handle_id": h}))
                .await?;
            let r = tokio::time::timeout(Duration::from_secs(5), poll)
                .await
                .map_err(|_| anyhow!("parked long poll not woken by an event"))???;
            let body = r.json()?;
            body.expect_at("/0/janus", &json!("detached"))?;
            t.record("woken poll", &body);
            t.destroy_session(s).await
        })
        .await
}

#[tokio::test]
async fn long_poll_keepalive_after_30_seconds() -> Result<()> {
    // Slow by nature (the server's 30 s poll timer); both shapes at once.
    Case::new("long_poll_keepalive_after_30_seconds")
        .http_only()
        .timeout(Duration::from_secs(50))
        .run(&SERVERS, async |t| {
            let a = t.create_session().await?;
            let b = t.create_session().await?;
            let http = t.http()?.clone();
            let started = std::time::Instant::now();
            let (one, many) = tokio::join!(http.long_poll(a, Some(1)), http.long_poll(b, Some(4)));
            let elapsed = started.elapsed();
            ensure!(
                (Duration::from_secs(25)..Duration::from_secs(40)).contains(&elapsed),
                "keepalive came after {elapsed:?}"
            );
            let one = one?.json()?;
            ensure!(
                one == json!({"janus": "keepalive"}),
                "maxev=1 keepalive: {one}"
            );
            let many = many?.json()?;
            ensure!(
                many == json!([{"janus": "keepalive"}]),
                "maxev=4 keepalive: {many}"
            );
            t.destroy_session(a).await?;
            t.destroy_session(b).await
        })
        .await
}

#[tokio::test]
async fn oversized_body_is_refused() -> Result<()> {
    // jsfu refuses bodies above 1 MiB; Janus accepts any size, so only jsfu is checked.
    Case::new("oversized_body_is_refused")
        .http_only()
        .no_compare()
        .run(&SERVERS, async |t| {
            if t.flavor() != Flavor::Jsfu {
                return Ok(());
            }
            let (s, h) = t.echo_handle().await?;
            let filler = "x".repeat(1024 * 1024 + 16);
            let body =
                json!({"janus": "message", "transaction": "big", "body": {"filler": filler}})
                    .to_string();
            let r = t
                .http()?
                .post_raw(&format!("/{s}/{h}"), body, "application/json")
                .await?;
            let refused = r.status == 413 || r.json().map(|v| v.kind() == "error").unwrap_or(false);
            ensure!(
                refused,
                "a {} byte body was not refused: HTTP {} {:?}",
                1024 * 1024,
                r.status,
                r.text()
            );
            // The server is still fine.
            let reply = t
                .request(json!({"janus": "keepalive", "session_id": s}))
                .await?;
            reply.expect_kind("ack")?;
            t.destroy_session(s).await
        })
        .await
}
