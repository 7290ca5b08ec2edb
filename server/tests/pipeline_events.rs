//! Pipeline events: every pipeline, stage and action state change stored
//! in order and listed; notification rules send the states they pick as
//! signed webhooks (an approval's with its review URL and CustomData),
//! with a delivery history.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use common::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// The deliveries received so far, as (headers, parsed body).
fn received(got: &Received) -> Vec<(HeaderMap, Value)> {
    got.lock()
        .unwrap()
        .iter()
        .map(|(h, b)| (h.clone(), serde_json::from_str(b).unwrap()))
        .collect()
}

async fn wait_for_delivery(
    got: &Received,
    what: &str,
    f: impl Fn(&Value) -> bool,
) -> (HeaderMap, Value) {
    for _ in 0..300 {
        if let Some(found) = received(got).into_iter().find(|(_, b)| f(b)) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no delivery {what}: {:#?}",
        received(got).iter().map(|d| &d.1).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn state_changes_are_listed_in_order_and_rules_send_the_ones_they_pick() {
    let server = Server::start(&[
        ("NUBO_WEBHOOK_RETRY_BASE_MS", "100"),
        ("NUBO_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ]);
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
    let (url, got) = receiver().await;
    let secret = "a-shared-secret-for-pipelines";

    for bad in [
        json!({"url": url, "events": ["pipeline.EXPLODED"]}),
        json!({"url": url, "events": ["all"], "branches": ["main"]}),
        json!({"url": "ftp://nowhere"}),
    ] {
        let (s, b) = api(
            &server,
            &alice,
            Method::POST,
            "/pipelines/web/notifications",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 422, "{bad} {b}");
    }
    let rule =
        json!({"url": url, "secret": secret, "events": ["approval.STARTED", "pipeline.SUCCEEDED"]});
    let (s, _) = api(
        &server,
        &bob,
        Method::POST,
        "/pipelines/web/notifications",
        Some(rule.clone()),
    )
    .await;
    assert_eq!(s, 404, "only the pipeline's owner adds rules");
    let (s, made) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines/web/notifications",
        Some(rule),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let rule_id = made["id"].as_str().unwrap().to_string();
    // A rule is not one of the repository's own webhooks.
    let (_, hooks) = api(&server, &alice, Method::GET, "/repos/web/webhooks", None).await;
    assert_eq!(hooks, json!([]), "{hooks}");

    let (_, started) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines/web/executions",
        None,
    )
    .await;
    let id = started["id"].as_str().unwrap().to_string();
    let (headers, body) = wait_for_delivery(&got, "for the approval", |b| {
        b["detail"]["action"] == "Gate"
    })
    .await;
    assert_eq!(
        body["detail-type"],
        "CodePipeline Action Execution State Change"
    );
    assert_eq!(body["detail"]["state"], "STARTED");
    assert_eq!(body["detail"]["execution-id"], id.as_str());
    let review = body["detail"]["approval"]["review-url"].as_str().unwrap();
    assert!(
        review.ends_with(&format!("/pipelines/web/executions/{id}")),
        "{review}"
    );
    assert_eq!(body["detail"]["approval"]["custom-data"], "Ship 1.1?");
    // Signed with the rule's secret over the exact body.
    let raw = got
        .lock()
        .unwrap()
        .iter()
        .find(|(h, _)| h == &headers)
        .unwrap()
        .1
        .clone();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(raw.as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-nubo-signature-256"], expected.as_str());
    assert_eq!(received(&got).len(), 1, "nothing it did not pick");

    let answer =
        json!({"stage": "Approve", "action": "Gate", "result": "Approved", "comment": "go"});
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{id}/approval"),
        Some(answer),
    )
    .await;
    assert_eq!(s, 200);
    let (_, body) = wait_for_delivery(&got, "for the success", |b| {
        b["detail-type"] == "CodePipeline Pipeline Execution State Change"
    })
    .await;
    assert_eq!(body["detail"]["state"], "SUCCEEDED");

    // Every change, in order.
    let (s, list) = api(
        &server,
        &alice,
        Method::GET,
        &format!("/pipelines/web/events?execution={id}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let mut seen: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let what = e["action"].as_str().or(e["stage"].as_str()).unwrap_or("-");
            format!(
                "{} {what} {}",
                e["scope"].as_str().unwrap(),
                e["state"].as_str().unwrap()
            )
        })
        .collect();
    seen.reverse();
    let expected = [
        "pipeline - STARTED",
        "stage Source STARTED",
        "action Code STARTED",
        "action Code SUCCEEDED",
        "stage Source SUCCEEDED",
        "stage Build STARTED",
        "action Compile STARTED",
        "action Compile SUCCEEDED",
        "stage Build SUCCEEDED",
        "stage Approve STARTED",
        "action Gate STARTED",
        "action Gate SUCCEEDED",
        "stage Approve SUCCEEDED",
        "pipeline - SUCCEEDED",
    ];
    assert_eq!(seen, expected);
    let (s, _) = api(&server, &bob, Method::GET, "/pipelines/web/events", None).await;
    assert_eq!(s, 404);

    // The history shows both deliveries; deleting the rule stops them.
    let path = format!("/pipelines/web/notifications/{rule_id}/deliveries");
    let mut states = Vec::new();
    for _ in 0..100 {
        let (_, deliveries) = api(&server, &alice, Method::GET, &path, None).await;
        states = deliveries
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["state"].as_str().unwrap().to_string())
            .collect();
        if states.iter().all(|s| s == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(states, ["delivered", "delivered"]);
    let (s, _) = api(
        &server,
        &alice,
        Method::DELETE,
        &format!("/pipelines/web/notifications/{rule_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, rules) = api(
        &server,
        &alice,
        Method::GET,
        "/pipelines/web/notifications",
        None,
    )
    .await;
    assert_eq!(rules, json!([]));
}
