//! Attacks from inside a workspace that must fail: making the server read a
//! FIFO or `/dev/zero` where it expects `.git/HEAD`, reading the server's
//! data or a neighbour's workspace, swapping the agent's socket, outgrowing
//! its limits, oversized uploads.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_hostile_git_head_cannot_hang_the_server() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    repo_with_readme(&server, &token, "app").await;
    let ws = create_ws(&server, &token, json!({"name": "dev", "repo": "app"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    assert_eq!(ws["branch"], "main");
    for plant in [
        "rm -f .git/HEAD && mkfifo .git/HEAD",
        "rm -f .git/HEAD && ln -s /dev/zero .git/HEAD",
        "rm -f .git/HEAD && head -c 10000000 /dev/zero | tr '\\0' x > .git/HEAD",
    ] {
        let out = exec(&server, &token, &id, &["sh", "-c", plant]).await;
        assert_eq!(out["exit_code"], 0, "{out}");
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            client()
                .get(server.url(&format!("/api/v1/workspaces/{id}")))
                .bearer_auth(&token)
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("the server hung reading .git/HEAD after {plant:?}"))
        .unwrap();
        assert_eq!(r.status(), 200);
        let w: serde_json::Value = r.json().await.unwrap();
        assert!(w["branch"].is_null(), "{w}");
    }
}

#[tokio::test]
async fn uploads_and_exec_bodies_are_capped() {
    let server = Server::start(&[("NUBO_MAX_BODY_BYTES", "65536")]);
    let token = server.user_with_token("alice", false);
    let ws = create_ws(&server, &token, json!({"name": "dev"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    let http = client();
    let url = server.url(&format!("/api/v1/workspaces/{id}/files/big.bin"));
    // Declared too large.
    let r = http
        .put(&url)
        .bearer_auth(&token)
        .body(vec![b'x'; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Streamed without a length: cut off, and nothing is kept.
    let status = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = server.base.trim_start_matches("http://").to_string();
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "PUT /api/v1/workspaces/{id}/files/big.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..20 {
            let chunk = vec![b'y'; 8192];
            if tcp
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await
                .is_err()
                || tcp.write_all(&chunk).await.is_err()
                || tcp.write_all(b"\r\n").await.is_err()
            {
                break;
            }
        }
        let _ = tcp.write_all(b"0\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        status.contains(" 4") || status.contains(" 5") || status.is_empty(),
        "{status}"
    );
    let out = exec(
        &server,
        &token,
        &id,
        &["sh", "-c", "ls -a; test ! -e big.bin"],
    )
    .await;
    assert_eq!(out["exit_code"], 0, "{out}");
    assert!(
        !out["stdout"].as_str().unwrap().contains("big.bin"),
        "{out}"
    );
    // An exec body is capped the same way.
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/exec"),
        Some(json!({"command": ["cat"], "stdin": "z".repeat(70_000)})),
    )
    .await;
    assert_eq!(s, 413);
    // Within the cap all is well.
    let r = http
        .put(&url)
        .bearer_auth(&token)
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The host uid of the processes whose command line holds `needle`.
fn host_uids(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        if !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if let Some(uid) = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|u| u.parse().ok())
            {
                out.push(uid);
            }
        }
    }
    out
}

#[tokio::test]
async fn a_local_workspace_is_sandboxed_away_from_the_server_and_its_neighbours() {
    let server = Server::start(&[]);
    let alice = server.user_with_token("alice", false);
    let bob = server.user_with_token("bob", false);
    let theirs = create_ws(&server, &bob, json!({"name": "neighbour"})).await;
    let bob_id = theirs["id"].as_str().unwrap().to_string();
    let r = client()
        .put(server.url(&format!("/api/v1/workspaces/{bob_id}/files/secret.txt")))
        .bearer_auth(&bob)
        .body("BOB-SECRET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ws = create_ws(&server, &alice, json!({"name": "dev"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    let data = server
        .data_dir
        .canonicalize()
        .unwrap()
        .display()
        .to_string();
    let probe = format!("nubo-tmp-probe-{id}");
    let script = format!(
        "echo uid=$(id -u); base64 {data}/master.key || echo no-key; \
         cat {data}/workspaces/{bob_id}/files/secret.txt || echo no-neighbour; \
         ls {data} >/dev/null 2>&1 || echo no-data-dir; \
         echo procs=$(ps -e --no-headers | wc -l); touch /tmp/{probe}; \
         ln -sf /dev/null \"$NUBO_AGENT_SOCKET\" 2>/dev/null && echo swapped-socket; \
         touch /run/nubo/planted 2>/dev/null && echo planted; true"
    );
    let out = exec(&server, &alice, &id, &["sh", "-c", &script]).await;
    let stdout = out["stdout"].as_str().unwrap().to_string();
    let key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(server.data_dir.join("master.key")).unwrap())
    };
    assert!(!stdout.contains(&key), "the workspace read the master key");
    for expected in ["uid=1000", "no-key", "no-neighbour", "no-data-dir"] {
        assert!(stdout.contains(expected), "{expected} in {out}");
    }
    assert!(!stdout.contains("BOB-SECRET"), "{out}");
    assert!(
        !stdout.contains("swapped-socket") && !stdout.contains("planted"),
        "{out}"
    );
    let procs: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(
        procs < 20,
        "the workspace sees {procs} processes (the host's?)"
    );
    assert!(
        !std::path::Path::new("/tmp").join(&probe).exists(),
        "/tmp is the host's"
    );
    // On the host, its processes are not the server's user.
    let uids = host_uids(&id);
    assert!(!uids.is_empty());
    assert!(
        uids.iter()
            .all(|&u| u != 0 && u != unsafe { libc::geteuid() }),
        "{uids:?}"
    );
    // The server still reaches the agent through the socket it checked.
    let out = exec(&server, &alice, &id, &["true"]).await;
    assert_eq!(out["exit_code"], 0);
    assert_eq!(ws["isolation"], "sandbox", "{ws}");
}

#[tokio::test]
async fn a_sandboxed_workspace_stays_within_its_limits() {
    let server = Server::start(&[
        ("NUBO_WORKSPACE_PIDS", "64"),
        ("NUBO_WORKSPACE_MEMORY_MB", "128"),
    ]);
    let token = server.user_with_token("alice", false);
    let ws = create_ws(&server, &token, json!({"name": "greedy"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    let out = exec(
        &server,
        &token,
        &id,
        &[
            "python3",
            "-c",
            "import subprocess\nn = 0\nfor i in range(120):\n    try:\n        subprocess.Popen(['sleep', '3'])\n        n += 1\n    except OSError:\n        break\nprint('n=%d' % n)",
        ],
    )
    .await;
    let n: usize = out["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("n="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        n > 0 && n < 64,
        "{n} processes started with a limit of 64: {out}"
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let out = exec(
        &server,
        &token,
        &id,
        &[
            "python3",
            "-c",
            "x = b'x' * (400 * 1024 * 1024); print(len(x))",
        ],
    )
    .await;
    assert_ne!(out["exit_code"], 0, "400 MiB in a 128 MiB workspace: {out}");
    let r = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn without_a_sandbox_only_administrators_get_local_workspaces() {
    let server = Server::start(&[("NUBO_LOCAL_SANDBOX", "none")]);
    let alice = server.user_with_token("alice", false);
    let (s, body) = api(
        &server,
        &alice,
        reqwest::Method::POST,
        "/workspaces",
        Some(json!({"name": "dev"})),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("bubblewrap") && message.contains("container"),
        "{message}"
    );
    let (_, list) = api(&server, &alice, reqwest::Method::GET, "/workspaces", None).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing was made");
    let root = server.user_with_token("root", true);
    let ws = create_ws(&server, &root, json!({"name": "admin-dev"})).await;
    assert_eq!(ws["isolation"], "none");
    assert_eq!(ws["state"], "running");
}

#[tokio::test]
async fn a_container_workspace_cannot_swap_its_agent_socket() {
    let podman = Podman::start();
    let server = Server::start(&[podman.env_ref()]);
    let token = server.user_with_token("alice", false);
    let ws = create_ws(
        &server,
        &token,
        json!({"name": "boxed", "backend": "container"}),
    )
    .await;
    let id = ws["id"].as_str().unwrap().to_string();
    let out = exec(
        &server,
        &token,
        &id,
        &["sh", "-c", "ln -sf /dev/null /run/nubo/agent.sock 2>/dev/null && echo swapped; touch /run/nubo/planted 2>/dev/null && echo planted; ls -ld /run/nubo"],
    )
    .await;
    let stdout = out["stdout"].as_str().unwrap();
    assert!(
        !stdout.contains("swapped") && !stdout.contains("planted"),
        "{out}"
    );
    // Git through the server's socket still works from inside.
    let out = exec(&server, &token, &id, &["true"]).await;
    assert_eq!(out["exit_code"], 0);
}

/// Starts `script` (Python, an app) in the workspace and waits until the
/// workspace lists `port`.
async fn serve_app(server: &Server, token: &str, id: &str, port: u16, script: &str) {
    let r = client()
        .put(server.url(&format!("/api/v1/workspaces/{id}/files/app.py")))
        .bearer_auth(token)
        .body(script.replace("PORT", &port.to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Run by exec (its answer comes when the app ends; not awaited): the
    // app stays a process of the workspace's agent.
    let url = server.url(&format!("/api/v1/workspaces/{id}/exec"));
    let token2 = token.to_string();
    tokio::spawn(async move {
        let _ = client()
            .post(url)
            .bearer_auth(token2)
            .json(&json!({"command": ["python3", "app.py"], "timeout_s": 120}))
            .send()
            .await;
    });
    for _ in 0..100 {
        let (_, ports) = api(
            server,
            token,
            reqwest::Method::GET,
            &format!("/workspaces/{id}/ports"),
            None,
        )
        .await;
        if ports
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["port"] == port))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the app did not start listening");
}

#[tokio::test]
async fn a_preview_never_shares_an_origin_or_a_session_with_nubo() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let ws = create_ws(&server, &token, json!({"name": "web"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    let port = 19000 + (std::process::id() % 1000) as u16;
    serve_app(
        &server,
        &token,
        &id,
        port,
        "import http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200)\n        self.send_header('Service-Worker-Allowed', '/')\n        self.send_header('Clear-Site-Data', '\"*\"')\n        self.send_header('Set-Cookie', 'nubo_session=tossed; Path=/')\n        self.end_headers()\n        self.wfile.write(b'from the workspace: ' + self.headers.get('Cookie', '').encode())\nhttp.server.HTTPServer(('127.0.0.1', PORT), H).serve_forever()\n",
    )
    .await;
    let http = client();
    // Nubo's origin serves nothing of the workspace: it redirects.
    let entry = server.url(&format!("/w/{id}/preview/{port}/"));
    let r = http.get(&entry).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 303, "the entry must redirect, not serve");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let preview = reqwest::Url::parse(&location).unwrap();
    assert_ne!(
        preview.origin(),
        reqwest::Url::parse(&server.base).unwrap().origin()
    );
    let r = http.post(&entry).bearer_auth(&token).send().await.unwrap();
    assert!(matches!(r.status().as_u16(), 403 | 404), "{}", r.status());
    let origin = preview.origin().ascii_serialization();

    // The preview origin serves no page of Nubo's, with or without the
    // session cookie (a page there could otherwise read /account).
    let (cookie, _) = sign_in(&server, "alice", "password-of-the-test").await;
    for path in ["/account", "/api/v1/me", "/", "/login"] {
        let r = http
            .get(format!("{origin}{path}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("csrf_token") && !text.contains("\"name\""),
            "{path}: {text}"
        );
    }
    // Nubo's session does not open a private preview there.
    let page = format!("{origin}/w/{id}/{port}/");
    let r = http
        .get(&page)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The one-time token opens it; the app gets none of our cookies and
    // cannot set cookies, widen a service worker's scope or wipe storage.
    let (r, preview_cookie) = open_preview(&server, Some(&token), &id, port, "/").await;
    assert_eq!(r.status(), 200);
    for h in [
        "set-cookie",
        "service-worker-allowed",
        "clear-site-data",
        "x-frame-options",
    ] {
        assert!(!r.headers().contains_key(h), "{h} reached the browser");
    }
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors http://127.0.0.1:"), "{csp}");
    let body = r.text().await.unwrap();
    assert_eq!(body, "from the workspace: ", "cookies reached the app");
    // The cookie is scoped to this preview: not another port's.
    let other = format!("{origin}/w/{id}/{}/", port + 1);
    let r = http
        .get(&other)
        .header("cookie", preview_cookie.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A token taken from a link does not work twice as long: it is not a
    // cookie, and it is for its own workspace and port only.
    let token_url = location.replace(&format!("/{port}/"), &format!("/{}/", port + 1));
    let r = http.get(&token_url).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_sandboxed_workspace_goes_out_but_never_to_the_hosts_loopback() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let ws = create_ws(&server, &token, json!({"name": "net"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    // A service of the host's, on every address.
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"hello-from-the-host\n").await;
        }
    });
    let host_ip = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|u| u.connect("192.0.2.1:9").map(|_| u))
        .and_then(|u| u.local_addr())
        .map(|a| a.ip().to_string())
        .unwrap();
    let probe = |addr: String| {
        format!(
            "import socket\ntry:\n    s = socket.create_connection(({addr}, {port}), 5)\n    print('got', s.recv(100))\nexcept OSError as e:\n    print('refused', e)\n"
        )
    };
    // Out through the sandbox's network: the host's own address answers.
    let out = exec(
        &server,
        &token,
        &id,
        &["python3", "-c", &probe(format!("'{host_ip}'"))],
    )
    .await;
    assert!(
        out["stdout"]
            .as_str()
            .unwrap()
            .contains("hello-from-the-host"),
        "{out}"
    );
    // The host's loopback (its own, and through the gateway) does not.
    for addr in ["'127.0.0.1'", "'10.0.2.2'"] {
        let out = exec(
            &server,
            &token,
            &id,
            &["python3", "-c", &probe(addr.to_string())],
        )
        .await;
        let text = out["stdout"].as_str().unwrap();
        assert!(
            text.contains("refused") && !text.contains("hello"),
            "{addr}: {out}"
        );
    }
}
