//! A plain HTTP client for the Janus API and Admin API REST endpoints.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// How long any single HTTP exchange may take (a long poll parks up to 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);

/// One HTTP answer, kept raw so tests can check status, headers and body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "HTTP {} body is not JSON: {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header's value as text (`None` when absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// HTTP client bound to one base URL (`http://ADDR/janus` or `http://ADDR/admin`).
/// It never follows redirects (tests check the `302` itself).
#[derive(Debug, Clone)]
pub struct HttpClient {
    base: String,
    client: reqwest::Client,
}

impl HttpClient {
    /// A client for `base` (no trailing slash).
    pub fn new(base: impl Into<String>) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            base: base.into(),
            client,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (empty, or starting with `/`) under the base.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST a JSON object to `base + path` and parse the JSON answer (which
    /// Janus sends with status 200 even for errors; another status fails).
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        let text = serde_json::to_string(body).context("serializing a request")?;
        let response = self
            .send(
                Method::POST,
                path,
                &[("content-type", "application/json")],
                Some(text.clone().into_bytes()),
            )
            .await?;
        if response.status != 200 {
            bail!(
                "POST {path} {text}: HTTP {} {:?}",
                response.status,
                response.text()
            );
        }
        response.json()
    }

    /// POST arbitrary bytes (malformed JSON, huge bodies, other content types).
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<Vec<u8>>,
        content_type: &str,
    ) -> Result<RawResponse> {
        self.send(
            Method::POST,
            path,
            &[("content-type", content_type)],
            Some(body.into()),
        )
        .await
    }

    /// GET `base + path_and_query`.
    pub async fn get(&self, path_and_query: &str) -> Result<RawResponse> {
        self.send(Method::GET, path_and_query, &[], None).await
    }

    /// Long-poll `GET /{session}?maxev=N` (no `maxev` parameter when `None`).
    pub async fn long_poll(&self, session: u64, maxev: Option<u32>) -> Result<RawResponse> {
        let rid = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let query = match maxev {
            Some(n) => format!("/{session}?rid={rid}&maxev={n}"),
            None => format!("/{session}?rid={rid}"),
        };
        self.get(&query).await
    }

    /// Any method, with extra headers and an optional body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<RawResponse> {
        let mut request = self.client.request(method.clone(), self.url(path));
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).context("header name")?;
            let value = HeaderValue::from_str(value).context("header value")?;
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {}", self.url(path)))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("reading the body of {method} {}", self.url(path)))?
            .to_vec();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}
