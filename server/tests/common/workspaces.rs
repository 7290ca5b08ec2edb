//! Workspaces in the tests: made through the API, commands run in them,
//! terminals attached over WebSocket, previews opened.

use super::*;

pub async fn exec(server: &Server, token: &str, id: &str, cmd: &[&str]) -> Value {
    let (status, out) = api(
        server,
        token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/exec"),
        Some(json!({"command": cmd})),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    out
}

pub async fn create_ws(server: &Server, token: &str, body: Value) -> Value {
    let (status, ws) = api(
        server,
        token,
        reqwest::Method::POST,
        "/workspaces",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{ws}");
    ws
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn attach(server: &Server, token: &str, id: &str, tid: &str) -> Ws {
    let url = server
        .url(&format!("/api/v1/workspaces/{id}/terminals/{tid}/attach"))
        .replace("http://", "ws://");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket connects");
    ws
}

/// Reads output (acknowledging it) until `needle` shows up; returns it all.
pub async fn read_until(ws: &mut Ws, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(needle) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in {seen:?}"))
            .expect("socket open")
            .unwrap();
        if let Message::Binary(b) = msg {
            seen.push_str(&String::from_utf8_lossy(&b));
            let ack = json!({"type": "ack", "bytes": b.len()}).to_string();
            ws.send(Message::Text(ack.into())).await.unwrap();
        }
    }
    seen
}

pub async fn type_line(ws: &mut Ws, line: &str) {
    ws.send(Message::Binary(format!("{line}\n").into_bytes().into()))
        .await
        .unwrap();
}

/// Opens a preview as a browser does: Nubo's entry (with `token`, if any)
/// redirects to the preview origin, which trades the one-time token for its
/// own cookie and redirects to the page. Answers the final response and
/// the preview cookie (`name=value`) it set, if any.
pub async fn open_preview(
    server: &Server,
    token: Option<&str>,
    id: &str,
    port: u16,
    path: &str,
) -> (reqwest::Response, Option<String>) {
    let http = client();
    let mut req = http.get(server.url(&format!("/w/{id}/preview/{port}{path}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let mut r = req.send().await.unwrap();
    let mut cookie: Option<String> = None;
    for _ in 0..3 {
        if !r.status().is_redirection() {
            break;
        }
        let location = r.headers()["location"].to_str().unwrap().to_string();
        if let Some(c) = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("nubo_preview="))
        {
            cookie = Some(c.split(';').next().unwrap().to_string());
        }
        let url = if location.starts_with("http") {
            location
        } else {
            let origin = r.url().origin().ascii_serialization();
            format!("{origin}{location}")
        };
        let mut next = http.get(&url);
        if let Some(c) = &cookie {
            next = next.header("cookie", c);
        }
        r = next.send().await.unwrap();
    }
    (r, cookie)
}
