//! Glue between the repository browser (gix, in `nubo_git::browse`) and the
//! HTTP layer: access, an up-to-date working copy, refs in URLs, Markdown.

use std::path::PathBuf;

use pulldown_cmark::{html, Event, Options, Parser};

use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::repos::{self, Repo};

/// The repository and its current working copy, if `user` may read it.
pub async fn working_copy(
    ctx: &Ctx,
    locks: &repos::Locks,
    name: &str,
    user: &User,
) -> Result<(Repo, PathBuf)> {
    let repo = repos::authorize(&ctx.pool, name, user, "codecommit:GitPull").await?;
    let (dir, _) = repos::working_copy(ctx, locks, &repo, false).await?;
    Ok((repo, dir))
}

/// Runs a gix read off the async workers, mapping its errors.
pub async fn read<T: Send + 'static>(
    f: impl FnOnce() -> nubo_git::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(nubo_git::Error::NotFound(m))) => Err(Error::NotFound(m)),
        Ok(Err(e)) => Err(Error::Internal(e.to_string())),
        Err(e) => Err(Error::Internal(e.to_string())),
    }
}

/// Splits `main/src/lib.rs` (or `feature/x/src/lib.rs`) into the revision
/// and the path: the shortest leading part that names a branch, tag or
/// commit wins.
pub async fn split_rev(dir: PathBuf, rest: String) -> Result<(String, String)> {
    read(move || {
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        for i in 1..=parts.len() {
            let rev = parts[..i].join("/");
            if nubo_git::browse::resolves(&dir, &rev) {
                return Ok((rev, parts[i..].join("/")));
            }
        }
        Err(nubo_git::Error::NotFound(format!(
            "no branch, tag or commit at the start of {rest:?}"
        )))
    })
    .await
}

/// Renders Markdown to HTML. Raw HTML in the source is shown as text, so a
/// README cannot inject markup or scripts.
pub fn markdown(text: &str) -> String {
    let parser = Parser::new_ext(
        text,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS,
    )
    .map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, parser);
    out
}

/// RFC 3339 of a commit time in seconds.
pub fn time(seconds: i64) -> String {
    crate::db::rfc3339(seconds * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_raw_html() {
        let html = markdown(
            "# Title\n\n<script>alert(1)</script>\n\nSee <b>this</b> [link](https://example.org).",
        );
        assert!(html.contains("<h1>Title</h1>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<b>"));
        assert!(html.contains("<a href=\"https://example.org\">link</a>"));
    }
}
