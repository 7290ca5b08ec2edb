//! `GET /tunnel/{port}` with `Upgrade: nubo-tunnel`: after the `101` the
//! connection is a byte pipe to `127.0.0.1:PORT` inside the workspace. The
//! server speaks HTTP (or WebSocket) through it for previews. Only ports the
//! workspace's own processes listen on can be reached.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;

use crate::{ApiError, ApiResult, Shared};

pub const PROTOCOL: &str = "nubo-tunnel";

pub async fn open(
    State(agent): State<Shared>,
    Path(port): Path<u16>,
    mut request: Request,
) -> ApiResult<Response> {
    let all = agent.all_ports;
    let ports = tokio::task::spawn_blocking(move || crate::ports::listening(all))
        .await
        .unwrap_or_default();
    if !ports.contains(&port) {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "port_closed",
            format!("nothing in the workspace listens on port {port}"),
        ));
    }
    let target = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .or(tokio::net::TcpStream::connect(("::1", port)).await)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "port_closed",
                format!("cannot connect to port {port} in the workspace: {e}"),
            )
        })?;
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut client = TokioIo::new(upgraded);
            let mut target = target;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut target).await;
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response
        .headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(PROTOCOL));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    Ok(response)
}
