//! A pipeline's incoming webhook: a call signed with its secret starts an
//! execution (once per delivery id); unsigned, badly signed, oversized or
//! malformed calls start nothing; rotating or turning it off retires the
//! old secret.

mod common;

use common::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::Value;
use sha2::Sha256;

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Calls the trigger with `body`, signed by `secret` (unsigned: None).
async fn call(
    server: &Server,
    pipeline: &str,
    body: &[u8],
    secret: Option<&str>,
    delivery: Option<&str>,
) -> (u16, Value) {
    let mut req = client()
        .post(server.url(&format!("/api/v1/pipelines/{pipeline}/webhook/trigger")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = secret {
        req = req.header("x-nubo-signature-256", sign(s, body));
    }
    if let Some(d) = delivery {
        req = req.header("x-nubo-delivery", d);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn count(server: &Server, token: &str) -> usize {
    let (_, list) = api(
        server,
        token,
        Method::GET,
        "/pipelines/web/executions",
        None,
    )
    .await;
    list.as_array().unwrap().len()
}

#[tokio::test]
async fn a_signed_call_starts_an_execution_once_and_nothing_else_does() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let bob = server.user_with_token("bob", false);
    let (s, b) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("web")),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let body = br#"{"ref": "main"}"#;

    let (s, b) = call(&server, "web", body, Some("guess"), None).await;
    assert_eq!(s, 401, "no webhook yet: {b}");
    let (s, _) = api(&server, &bob, Method::POST, "/pipelines/web/webhook", None).await;
    assert_eq!(s, 404, "only its owner sets it up");
    let (s, made) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines/web/webhook",
        None,
    )
    .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["path"], "/api/v1/pipelines/web/webhook/trigger");
    let secret = made["secret"].as_str().unwrap().to_string();
    let (_, shown) = api(&server, &alice, Method::GET, "/pipelines/web/webhook", None).await;
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["created_by"], "alice");
    assert!(
        !shown.to_string().contains(&secret),
        "the secret is shown once"
    );

    // Refusals, all alike to the caller, start nothing.
    let (s, unsigned) = call(&server, "web", body, None, None).await;
    assert_eq!(s, 401);
    let (s, wrong) = call(&server, "web", body, Some("not-the-secret"), None).await;
    assert_eq!(s, 401);
    let (s, nowhere) = call(&server, "elsewhere", body, Some(&secret), None).await;
    assert_eq!(s, 401);
    assert_eq!(unsigned, wrong);
    assert_eq!(
        wrong, nowhere,
        "an unknown pipeline looks like a bad signature"
    );
    let (s, b) = call(
        &server,
        "web",
        br#"{"branch": "main"}"#,
        Some(&secret),
        None,
    )
    .await;
    assert_eq!(s, 422, "{b}");
    let big = vec![b' '; 70 * 1024];
    let (s, _) = call(&server, "web", &big, Some(&secret), None).await;
    assert_eq!(s, 413);
    assert_eq!(count(&server, &alice).await, 0);

    // A signed call starts one; its retry (same delivery) does not.
    let (s, first) = call(&server, "web", body, Some(&secret), Some("d-1")).await;
    assert_eq!(s, 201, "{first}");
    let id = first["id"].as_str().unwrap();
    let (s, again) = call(&server, "web", body, Some(&secret), Some("d-1")).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["id"], id);
    assert_eq!(again["duplicate"], true);
    assert_eq!(count(&server, &alice).await, 1);
    let e = execution(&server, &alice, "web", id).await;
    assert_eq!(e["trigger"]["type"], "webhook");
    assert_eq!(e["trigger"]["by"], "alice");
    wait_until(&server, &alice, "web", id, "the build", |e| {
        action(e, 1)["status"] == "Succeeded"
    })
    .await;
    // An empty body runs the source branch.
    let (s, _) = call(&server, "web", b"", Some(&secret), None).await;
    assert_eq!(s, 201);

    // A new secret retires the old one; off means off.
    let (_, rotated) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines/web/webhook",
        None,
    )
    .await;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let (s, _) = call(&server, "web", body, Some(&secret), None).await;
    assert_eq!(s, 401);
    let (s, _) = call(&server, "web", body, Some(new_secret), None).await;
    assert_eq!(s, 201);
    let (s, _) = api(
        &server,
        &alice,
        Method::DELETE,
        "/pipelines/web/webhook",
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(&server, "web", body, Some(new_secret), None).await;
    assert_eq!(s, 401);
    assert_eq!(count(&server, &alice).await, 3);
}
