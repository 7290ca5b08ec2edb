//! Talking to a workspace's `nubo-agent` over its unix socket: plain
//! requests, and a reverse proxy that passes a browser's request through
//! unchanged, upgrades (WebSocket, tunnels) included, so terminal frames
//! flow end to end without the server buffering them.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
/// The request method of an agent call (re-exported so callers need not
/// name the HTTP stack).
pub use axum::http::Method;
use axum::http::{header, HeaderMap, HeaderName, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct AgentClient {
    socket: PathBuf,
    /// How long a whole call (answer read in full) may take.
    timeout: Duration,
}

/// The largest answer [`AgentClient::call`] reads (passed-through requests
/// stream instead).
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Conflict(format!(
        "the workspace is not reachable (is it running?): {e}"
    ))
}

/// Headers a browser's request may carry through to the agent. Cookies and
/// authorization never do: they are the user's secrets, not the workspace's.
const PASSED: &[&str] = &[
    "content-type",
    "content-length",
    "if-match",
    "accept",
    "accept-encoding",
    "range",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "user-agent",
    "cache-control",
    "if-none-match",
    "if-modified-since",
];

/// Headers an agent's (or preview app's) response may not set: cookies
/// (cookies are per host, not per port: they would reach Nubo's origin),
/// HSTS, a service worker's scope beyond its own path, or wiping the
/// origin's storage.
const BLOCKED_BACK: &[&str] = &[
    "set-cookie",
    "strict-transport-security",
    "service-worker-allowed",
    "clear-site-data",
];

impl AgentClient {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        AgentClient {
            socket: socket.into(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The same client with another time limit for whole calls.
    #[cfg(test)]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn connect(&self) -> Result<hyper::client::conn::http1::SendRequest<Body>> {
        let stream = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::UnixStream::connect(&self.socket),
        )
        .await
        .map_err(|_| unavailable("timed out"))?
        .map_err(unavailable)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(unavailable)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(sender)
    }

    /// Sends one request; the response body streams.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<hyper::body::Incoming>> {
        let mut sender = self.connect().await?;
        sender.send_request(request).await.map_err(unavailable)
    }

    /// Whether the agent answers at all.
    pub async fn healthy(&self) -> bool {
        let request = Request::get("/healthz")
            .header(header::HOST, "agent")
            .body(Body::empty())
            .expect("a valid request");
        matches!(
            tokio::time::timeout(Duration::from_secs(3), self.send(request)).await,
            Ok(Ok(r)) if r.status().is_success()
        )
    }

    /// A JSON request; an agent error comes back as the same error.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("the workspace agent answered oddly: {e}")))
    }

    /// A request whose answer body is read whole (small answers only).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Vec<u8>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "agent");
        let body = match body {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let request = builder
            .body(body)
            .map_err(|e| Error::Internal(e.to_string()))?;
        // The agent runs as the workspace's user, who can make it answer
        // slowly or without end: the whole call is bounded in time and size.
        let call = async {
            let response = self.send(request).await?;
            let status = response.status();
            let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| unavailable(format!("its answer could not be read: {e}")))?
                .to_bytes()
                .to_vec();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| unavailable("it did not answer in time"))??;
        if !status.is_success() {
            return Err(agent_error(status, &bytes));
        }
        Ok(bytes)
    }

    /// Passes `request` to the agent at `path` (path and query) and the
    /// agent's response back. Upgrades are spliced: both upgraded
    /// connections are copied into each other until either side closes;
    /// `on_close` runs then.
    pub async fn proxy(
        &self,
        path: &str,
        request: axum::extract::Request,
        on_upgrade: impl FnOnce() -> Box<dyn FnOnce() + Send> + Send + 'static,
    ) -> Result<axum::response::Response> {
        forward(self.connect().await?, path, request, on_upgrade).await
    }
}

/// Maps an agent's error answer (same JSON shape as ours) to our error.
pub fn agent_error(status: StatusCode, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
    match status {
        StatusCode::BAD_REQUEST => Error::BadRequest(message),
        StatusCode::FORBIDDEN => Error::Forbidden(message),
        StatusCode::NOT_FOUND => Error::NotFound(message),
        StatusCode::CONFLICT => Error::Conflict(message),
        StatusCode::UNPROCESSABLE_ENTITY => Error::Unprocessable(message),
        StatusCode::BAD_GATEWAY => Error::BadGateway(message),
        _ => Error::Internal(format!("the workspace agent failed: {message}")),
    }
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, allow: impl Fn(&HeaderName) -> bool) {
    for (name, value) in from {
        if allow(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// Forwards a request over an HTTP/1 connection (to an agent, or through a
/// tunnel to a preview app).
pub async fn forward(
    mut sender: hyper::client::conn::http1::SendRequest<Body>,
    path: &str,
    mut request: axum::extract::Request,
    on_upgrade: impl FnOnce() -> Box<dyn FnOnce() + Send> + Send + 'static,
) -> Result<axum::response::Response> {
    let wants_upgrade = request.headers().contains_key(header::UPGRADE);
    let client_upgrade = if wants_upgrade {
        Some(hyper::upgrade::on(&mut request))
    } else {
        None
    };
    let (parts, body) = request.into_parts();
    let mut outgoing = Request::builder()
        .method(parts.method.clone())
        .uri(path)
        .body(body)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    copy_headers(&parts.headers, outgoing.headers_mut(), |n| {
        PASSED.contains(&n.as_str())
    });
    if let Some(host) = parts.headers.get(header::HOST) {
        outgoing.headers_mut().insert(header::HOST, host.clone());
    }
    let mut response = sender.send_request(outgoing).await.map_err(unavailable)?;
    let status = response.status();
    let mut back = axum::response::Response::builder().status(status);
    if let Some(h) = back.headers_mut() {
        copy_headers(response.headers(), h, |n| {
            !BLOCKED_BACK.contains(&n.as_str())
        });
    }
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(Error::Internal("the agent upgraded unasked".into()));
        };
        let agent_upgrade = hyper::upgrade::on(&mut response);
        let done = on_upgrade();
        tokio::spawn(async move {
            if let (Ok(a), Ok(b)) = (client_upgrade.await, agent_upgrade.await) {
                let mut a = TokioIo::new(a);
                let mut b = TokioIo::new(b);
                let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
            }
            done();
        });
        return back
            .body(Body::empty())
            .map_err(|e| Error::Internal(e.to_string()));
    }
    back.body(Body::new(response.into_body()))
        .map_err(|e| Error::Internal(e.to_string()))
}

/// Opens a byte pipe to `port` inside the workspace and an HTTP/1
/// connection over it.
pub async fn tunnel(
    agent: &AgentClient,
    port: u16,
) -> Result<hyper::client::conn::http1::SendRequest<Body>> {
    let request = Request::get(format!("/tunnel/{port}"))
        .header(header::HOST, "agent")
        .header(header::UPGRADE, "nubo-tunnel")
        .header(header::CONNECTION, "upgrade")
        .body(Body::empty())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut response = tokio::time::timeout(Duration::from_secs(10), agent.send(request))
        .await
        .map_err(|_| unavailable("it did not answer in time"))??;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = tokio::time::timeout(
            Duration::from_secs(10),
            http_body_util::Limited::new(response.into_body(), 64 * 1024).collect(),
        )
        .await
        .ok()
        .and_then(|r| r.ok())
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
        return Err(agent_error(status, &body));
    }
    let upgraded = hyper::upgrade::on(&mut response)
        .await
        .map_err(unavailable)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(upgraded)
        .await
        .map_err(unavailable)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// GET `path` on `port` through the agent at `socket`'s tunnel: the
/// status, or why there is none (2 s at most).
pub async fn probe(
    socket: impl Into<PathBuf>,
    port: u16,
    path: &str,
) -> std::result::Result<u16, String> {
    let agent = AgentClient::new(socket);
    let ask = async {
        let mut sender = tunnel(&agent, port).await.map_err(|e| e.public_message())?;
        let request = Request::get(path)
            .header(header::HOST, "localhost")
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let r = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no answer on port {port} ({e})"))?;
        Ok(r.status().as_u16())
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .unwrap_or_else(|_| Err("no answer within 2 s".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fake agent that answers every request with `answer`, then keeps
    /// the connection open.
    fn fake_agent(dir: &std::path::Path, answer: Vec<u8>) -> PathBuf {
        let path = dir.join("agent.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(&answer).await;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                });
            }
        });
        path
    }

    #[tokio::test]
    async fn an_agent_that_never_finishes_or_answers_too_much_is_cut_off() {
        let tmp = tempfile::tempdir().unwrap();
        // Headers, then a body that never ends.
        let endless = fake_agent(
            &made(tmp.path().join("a")),
            b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{".to_vec(),
        );
        let client = AgentClient::new(endless).with_timeout(Duration::from_millis(500));
        let started = std::time::Instant::now();
        let r = client.call(Method::GET, "/ports", None).await;
        assert!(r.is_err());
        assert!(started.elapsed() < Duration::from_secs(10));
        // An answer larger than the cap.
        let mut big = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_ANSWER_BYTES + 10
        )
        .into_bytes();
        big.extend(std::iter::repeat_n(b'x', MAX_ANSWER_BYTES + 10));
        let huge = fake_agent(&made(tmp.path().join("b")), big);
        let client = AgentClient::new(huge).with_timeout(Duration::from_secs(20));
        let e = client.call(Method::GET, "/ports", None).await.unwrap_err();
        assert!(e.to_string().contains("could not be read"), "{e}");
    }

    fn made(dir: PathBuf) -> PathBuf {
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
