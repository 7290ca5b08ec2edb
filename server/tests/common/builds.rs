//! Builds in the tests: files pushed, a build waited for, its log read.

use super::*;

pub async fn wait_build(server: &Server, token: &str, id: &str) -> serde_json::Value {
    for _ in 0..600 {
        let (_, b) = api(
            server,
            token,
            reqwest::Method::GET,
            &format!("/builds/{id}"),
            None,
        )
        .await;
        if b["status"] != "QUEUED" && b["status"] != "IN_PROGRESS" {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("build {id} did not finish");
}

pub async fn build_log(server: &Server, token: &str, id: &str) -> String {
    client()
        .get(server.url(&format!("/api/v1/builds/{id}/log")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Pushes `files` and symbolic `links` (path, target) as one commit to
/// `main` of `repo`, with `alice` as the git user; answers the commit.
pub fn push_files(
    server: &Server,
    token: &str,
    repo: &str,
    files: &[(&str, &str)],
    links: &[(&str, &str)],
) -> String {
    push_files_as(server, "alice", token, repo, files, links)
}

/// [`push_files`] as another user.
pub fn push_files_as(
    server: &Server,
    user: &str,
    token: &str,
    repo: &str,
    files: &[(&str, &str)],
    links: &[(&str, &str)],
) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let url = server.url(&format!("/v1/repos/{repo}"));
    ok(git(w, user, token, &["init", "-q", "src"]));
    let src = w.join("src");
    for (path, text) in files {
        let p = src.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    for (path, target) in links {
        std::os::unix::fs::symlink(target, src.join(path)).unwrap();
    }
    ok(git(&src, "x", "x", &["add", "."]));
    ok(git(&src, "x", "x", &["commit", "-qm", "build me"]));
    ok(git(&src, user, token, &["push", "-q", "-f", &url, "main"]));
    ok(git(&src, "x", "x", &["rev-parse", "HEAD"]))
        .trim()
        .to_string()
}

/// Pushes `files` as one commit to `repo` on `main`.
pub async fn push(server: &Server, token: &str, repo: &str, files: &[(&str, &str)]) -> String {
    push_files(server, token, repo, files, &[])
}
