//! The repository browser: refs, trees, files, history and diffs through
//! the API and the pages, after pushes with the real git client.

mod common;

use common::{client, create_repo, git, ok, sign_in, Server};
use serde_json::Value;

#[tokio::test]
async fn browse_what_was_pushed() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let stranger = server.user_with_token("eve", false);
    create_repo(&server, &token, "site").await;
    let url = server.url("/v1/repos/site");
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "x", "x", &["init", "-q", "work"]));
    let work = w.join("work");
    std::fs::create_dir_all(work.join("src")).unwrap();
    std::fs::write(
        work.join("README.md"),
        "# Site\n\nHello <script>alert(1)</script> world.\n",
    )
    .unwrap();
    std::fs::write(work.join("src/lib.rs"), "pub fn one() -> u32 {\n    1\n}\n").unwrap();
    ok(git(&work, "x", "x", &["add", "."]));
    ok(git(&work, "x", "x", &["commit", "-qm", "First version"]));
    std::fs::write(
        work.join("src/lib.rs"),
        "pub fn one() -> u32 {\n    1\n}\n\npub fn two() -> u32 {\n    2\n}\n",
    )
    .unwrap();
    ok(git(&work, "x", "x", &["commit", "-qam", "Add two"]));
    ok(git(&work, "x", "x", &["tag", "v1"]));
    ok(git(
        &work,
        "alice",
        &token,
        &[
            "push",
            "-q",
            &url,
            "HEAD:refs/heads/main",
            "HEAD:refs/heads/feature/x",
            "v1",
        ],
    ));
    let head = ok(git(&work, "x", "x", &["rev-parse", "HEAD"]))
        .trim()
        .to_string();

    let http = client();
    let get = |path: &str, tok: &str| {
        let (http, url, tok) = (http.clone(), server.url(path), tok.to_string());
        async move { http.get(url).bearer_auth(tok).send().await.unwrap() }
    };
    let refs: Value = get("/api/v1/repos/site/refs", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refs["head"], "main");
    let branches: Vec<&str> = refs["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(branches, ["feature/x", "main"]);
    assert_eq!(refs["tags"][0]["name"], "v1");
    assert_eq!(refs["tags"][0]["commit"], head.as_str());

    let tree: Value = get("/api/v1/repos/site/tree/main", &token)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<(&str, &str)> = tree["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("src", "tree"), ("README.md", "blob")]);
    let tree: Value = get("/api/v1/repos/site/tree/feature/x/src", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tree["ref"], "feature/x");
    assert_eq!(tree["path"], "src");
    assert_eq!(tree["entries"][0]["name"], "lib.rs");
    let blob = get("/api/v1/repos/site/blob/v1/src/lib.rs", &token)
        .await
        .text()
        .await
        .unwrap();
    assert!(blob.contains("pub fn two()"));

    let commits: Value = get("/api/v1/repos/site/commits?ref=main", &token)
        .await
        .json()
        .await
        .unwrap();
    let summaries: Vec<&str> = commits
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["summary"].as_str().unwrap())
        .collect();
    assert_eq!(summaries, ["Add two", "First version"]);
    let commit: Value = get(&format!("/api/v1/repos/site/commits/{head}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(commit["commit"]["summary"], "Add two");
    assert_eq!(commit["changes"][0]["path"], "src/lib.rs");
    assert_eq!(commit["changes"][0]["change"], "modified");
    assert!(commit["changes"][0]["patch"]
        .as_str()
        .unwrap()
        .contains("+pub fn two() -> u32 {"));

    for bad in [
        "/api/v1/repos/site/tree/main/../../etc",
        "/api/v1/repos/site/tree/HEAD^",
        "/api/v1/repos/site/blob/main/src",
        "/api/v1/repos/site/blob/main/missing.txt",
        "/api/v1/repos/site/commits/zzzz",
    ] {
        assert_eq!(get(bad, &token).await.status(), 404, "{bad}");
    }
    assert_eq!(
        get("/api/v1/repos/site/tree/main", &stranger)
            .await
            .status(),
        403
    );

    // The pages.
    let (cookie, _) = sign_in(&server, "alice", "password-of-the-test").await;
    let page = |path: &str| {
        let (http, url, cookie) = (http.clone(), server.url(path), cookie.clone());
        async move {
            http.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let html = page("/repos/site").await;
    assert!(html.contains("<h1>Site</h1>"), "README rendered");
    assert!(
        !html.contains("<script>alert(1)</script>") && html.contains("&lt;script&gt;"),
        "raw HTML escaped"
    );
    assert!(html.contains("href=\"/repos/site/tree/feature/x\""));
    let html = page("/repos/site/tree/main/src").await;
    assert!(html.contains("href=\"/repos/site/blob/main/src/lib.rs\""));
    let html = page("/repos/site/blob/main/src/lib.rs").await;
    assert!(
        html.contains("class=\"language-rust\"") && html.contains("pub fn two() -&gt; u32"),
        "{html}"
    );
    let html = page(&format!("/repos/site/commit/{head}")).await;
    assert!(html.contains("Add two") && html.contains("+pub fn two()"));
    // A review tool's diff: counts, both sides' line numbers, added rows
    // marked; the message once; a switch to two columns.
    assert!(html.contains("4 additions, 0 deletions"), "{html}");
    assert!(
        html.contains(r#"<tr class="add"><td class="num"></td><td class="num">5</td><td class="text">+pub fn two() -&gt; u32 {</td></tr>"#),
        "{html}"
    );
    assert_eq!(
        html.matches("Add two").count(),
        1,
        "the summary once, not the message again: {html}"
    );
    assert!(html.contains(" · parents: "));
    let split = page(&format!("/repos/site/commit/{head}?view=split")).await;
    assert!(
        split.contains(r#"data-view="split""#)
            && split.contains(r#"<td class="text add">pub fn two() -&gt; u32 {</td>"#),
        "{split}"
    );
    let root = ok(git(&work, "x", "x", &["rev-parse", "HEAD~1"]))
        .trim()
        .to_string();
    let html = page(&format!("/repos/site/commit/{root}")).await;
    assert!(
        html.contains("First version") && !html.contains("parents:"),
        "a root commit has no parents: {html}"
    );
    let html = page("/repos/site/commits/main").await;
    assert!(html.contains("First version"));
    // Each page says where you are: its tab is the current one, and a
    // file's breadcrumbs lead back up, ending at the file itself.
    for (path, tab) in [
        ("/repos/site", "Overview"),
        ("/repos/site/tree/main/src", "Code"),
        ("/repos/site/blob/main/src/lib.rs", "Code"),
        ("/repos/site/commits/main", "Commits"),
    ] {
        let html = page(path).await;
        let current: Vec<&str> = html
            .match_indices("aria-current=\"page\" class=\"tab\">")
            .map(|(i, m)| {
                let rest = &html[i + m.len()..];
                &rest[..rest.find('<').unwrap()]
            })
            .collect();
        assert_eq!(current, [tab], "{path}");
    }
    let html = page("/repos/site/blob/main/src/lib.rs").await;
    let crumbs = &html[html.find("data-testid=\"crumbs\"").unwrap()..];
    let crumbs = &crumbs[..crumbs.find("</nav>").unwrap()];
    assert!(
        crumbs.contains("<a href=\"/repos/site/tree/main\">site</a> / ")
            && crumbs.contains("<a href=\"/repos/site/tree/main/src\">src</a> / ")
            && crumbs.contains("<span aria-current=\"page\">lib.rs</span>")
            && !crumbs.contains("lib.rs</a>"),
        "{crumbs}"
    );
    let raw = http
        .get(server.url("/repos/site/raw/main/README.md"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "text/plain; charset=utf-8");
}
