//! File operations, every one confined to the workspace root. A path from a
//! request is relative to the root; `..`, absolute paths and NUL bytes are
//! refused before anything touches the disk, and symlinks are resolved so
//! that neither a link nor a directory on the way can lead outside.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::{ApiError, ApiResult, Shared};

/// Splits a request path into plain components; refuses anything that could
/// name a place outside the root.
pub fn components(rel: &str) -> ApiResult<Vec<String>> {
    if rel.contains('\0') || rel.contains('\\') {
        return Err(ApiError::bad_request(format!("invalid path {rel:?}")));
    }
    let mut out = Vec::new();
    for part in Path::new(rel).components() {
        match part {
            Component::Normal(p) => out.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::RootDir if out.is_empty() => {}
            _ => {
                return Err(ApiError::forbidden(format!(
                    "the path {rel:?} leads outside the workspace"
                )))
            }
        }
    }
    Ok(out)
}

fn outside(rel: &str) -> ApiError {
    ApiError::forbidden(format!("the path {rel:?} leads outside the workspace"))
}

/// A path inside the root. `lexical` is the path as named (a symlink stays a
/// symlink); `real` is where it leads when it exists.
#[derive(Debug)]
pub struct Confined {
    pub lexical: PathBuf,
    pub real: Option<PathBuf>,
    pub is_root: bool,
}

/// Resolves `rel` under `root` (which must be canonical). The parent
/// directory must resolve inside the root; an existing target must too,
/// unless only the link itself is operated on (`follow == false`).
pub fn confine(root: &Path, rel: &str, follow: bool) -> ApiResult<Confined> {
    let parts = components(rel)?;
    let mut lexical = root.to_path_buf();
    for p in &parts {
        lexical.push(p);
    }
    if parts.is_empty() {
        return Ok(Confined {
            lexical: root.to_path_buf(),
            real: Some(root.to_path_buf()),
            is_root: true,
        });
    }
    // The nearest existing ancestor of the parent must be inside the root.
    let parent = lexical.parent().expect("a non-root path has a parent");
    let mut probe = parent.to_path_buf();
    loop {
        match std::fs::canonicalize(&probe) {
            Ok(real) => {
                if !real.starts_with(root) {
                    return Err(outside(rel));
                }
                break;
            }
            Err(_) => {
                if !probe.pop() || !probe.starts_with(root) {
                    return Err(outside(rel));
                }
            }
        }
    }
    let real = match std::fs::symlink_metadata(&lexical) {
        Ok(_) => match std::fs::canonicalize(&lexical) {
            Ok(real) => {
                if !real.starts_with(root) && follow {
                    return Err(outside(rel));
                }
                Some(real)
            }
            // A dangling link: it exists as a link only.
            Err(_) if !follow => None,
            Err(_) => return Err(ApiError::not_found(format!("{rel} is a dangling link"))),
        },
        Err(_) => None,
    };
    Ok(Confined {
        lexical,
        real,
        is_root: false,
    })
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub name: String,
    pub kind: &'static str,
    pub size: u64,
    pub mtime_ms: i64,
}

fn mtime_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A cheap version tag of a file: its modification time and size.
pub fn etag(meta: &std::fs::Metadata) -> String {
    let nanos = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("\"{nanos:x}-{:x}\"", meta.len())
}

fn io_error(rel: &str, e: std::io::Error) -> ApiError {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => ApiError::not_found(format!("{rel}: no such file or directory")),
        PermissionDenied => ApiError::forbidden(format!("{rel}: permission denied")),
        AlreadyExists => ApiError::conflict(format!("{rel} already exists")),
        _ => ApiError::internal(format!("{rel}: {e}")),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct GetQuery {
    #[serde(default)]
    pub download: Option<String>,
}

pub async fn get_root(State(agent): State<Shared>, q: Query<GetQuery>) -> ApiResult<Response> {
    read(&agent, "", q.0).await
}

pub async fn get(
    State(agent): State<Shared>,
    UrlPath(path): UrlPath<String>,
    q: Query<GetQuery>,
) -> ApiResult<Response> {
    read(&agent, &path, q.0).await
}

/// Lists a directory (sorted: directories first, then by name).
pub fn list_dir(dir: &Path, rel: &str) -> ApiResult<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(rel, e))? {
        let entry = entry.map_err(|e| io_error(rel, e))?;
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let kind = if meta.file_type().is_symlink() {
            "symlink"
        } else if meta.is_dir() {
            "dir"
        } else {
            "file"
        };
        entries.push(Entry {
            name: entry.file_name().to_string_lossy().into_owned(),
            kind,
            size: meta.len(),
            mtime_ms: mtime_ms(&meta),
        });
    }
    entries.sort_by(|a, b| {
        (a.kind != "dir")
            .cmp(&(b.kind != "dir"))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(entries)
}

async fn read(agent: &Shared, rel: &str, q: GetQuery) -> ApiResult<Response> {
    let target = confine(&agent.root, rel, true)?;
    let real = target
        .real
        .ok_or_else(|| ApiError::not_found(format!("{rel}: no such file or directory")))?;
    let meta = std::fs::metadata(&real).map_err(|e| io_error(rel, e))?;
    let shown = components(rel)?.join("/");
    if meta.is_dir() {
        let entries = list_dir(&real, rel)?;
        let mut response =
            Json(serde_json::json!({"path": shown, "entries": entries})).into_response();
        response
            .headers_mut()
            .insert("x-nubo-kind", HeaderValue::from_static("dir"));
        return Ok(response);
    }
    if !meta.is_file() {
        return Err(ApiError::bad_request(format!(
            "{rel} is neither a file nor a directory"
        )));
    }
    let file = tokio::fs::File::open(&real)
        .await
        .map_err(|e| io_error(rel, e))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert("x-nubo-kind", HeaderValue::from_static("file"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
    if let Ok(v) = HeaderValue::from_str(&etag(&meta)) {
        headers.insert(header::ETAG, v);
    }
    headers.insert("x-nubo-mtime-ms", HeaderValue::from(mtime_ms(&meta)));
    if q.download.is_some() {
        let name: String = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(response)
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// Writes a file from the request body: to a temporary file next to it,
/// synced, then renamed over it, so a reader never sees half a file and a
/// crash leaves the old content.
pub async fn put(
    State(agent): State<Shared>,
    UrlPath(rel): UrlPath<String>,
    request: Request,
) -> ApiResult<Response> {
    let target = confine(&agent.root, &rel, true)?;
    if target.is_root {
        return Err(ApiError::bad_request("cannot write to the workspace root"));
    }
    let path = target.real.clone().unwrap_or(target.lexical.clone());
    let existing = std::fs::metadata(&path).ok();
    if existing.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(ApiError::conflict(format!("{rel} is a directory")));
    }
    let precondition = if_match(request.headers());
    let check = |existing: &Option<std::fs::Metadata>| -> ApiResult<()> {
        if let Some(expected) = &precondition {
            let current = existing.as_ref().map(etag);
            if current.as_deref() != Some(expected.as_str()) && expected != "*" {
                return Err(ApiError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "changed_on_disk",
                    format!("{rel} changed on disk since it was opened"),
                ));
            }
        }
        Ok(())
    };
    check(&existing)?;
    let dir = path.parent().expect("a file has a parent").to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| io_error(&rel, e))?;
    // Re-check after creating parents: a race must not lead outside.
    let real_dir = std::fs::canonicalize(&dir).map_err(|e| io_error(&rel, e))?;
    if !real_dir.starts_with(&agent.root) {
        return Err(outside(&rel));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = real_dir.join(format!(
        ".{name}.nubo-{}-{:x}",
        std::process::id(),
        rand_u64()
    ));
    let mut file = std::fs::File::create(&tmp).map_err(|e| io_error(&rel, e))?;
    let mut stream = request.into_body().into_data_stream();
    let result: ApiResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload failed: {e}")))?;
            file.write_all(&chunk).map_err(|e| io_error(&rel, e))?;
        }
        if let Some(meta) = &existing {
            use std::os::unix::fs::PermissionsExt;
            let _ =
                file.set_permissions(std::fs::Permissions::from_mode(meta.permissions().mode()));
        }
        file.sync_all().map_err(|e| io_error(&rel, e))?;
        check(&std::fs::metadata(&path).ok())?;
        std::fs::rename(&tmp, real_dir.join(&name)).map_err(|e| io_error(&rel, e))?;
        if let Ok(d) = std::fs::File::open(&real_dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let meta = std::fs::metadata(real_dir.join(&name)).map_err(|e| io_error(&rel, e))?;
    Ok(Json(serde_json::json!({
        "etag": etag(&meta),
        "size": meta.len(),
        "mtime_ms": mtime_ms(&meta),
    }))
    .into_response())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// Deletes a file, a link (never what it points to) or a directory tree.
pub async fn delete(
    State(agent): State<Shared>,
    UrlPath(rel): UrlPath<String>,
) -> ApiResult<StatusCode> {
    let target = confine(&agent.root, &rel, false)?;
    if target.is_root {
        return Err(ApiError::bad_request("cannot delete the workspace root"));
    }
    let meta = std::fs::symlink_metadata(&target.lexical).map_err(|e| io_error(&rel, e))?;
    if meta.is_dir() {
        std::fs::remove_dir_all(&target.lexical).map_err(|e| io_error(&rel, e))?;
    } else {
        std::fs::remove_file(&target.lexical).map_err(|e| io_error(&rel, e))?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
pub struct MkdirBody {
    pub path: String,
}

pub async fn mkdir(
    State(agent): State<Shared>,
    Json(body): Json<MkdirBody>,
) -> ApiResult<StatusCode> {
    let target = confine(&agent.root, &body.path, true)?;
    if target.real.is_some() {
        return Err(ApiError::conflict(format!("{} already exists", body.path)));
    }
    std::fs::create_dir_all(&target.lexical).map_err(|e| io_error(&body.path, e))?;
    let real = std::fs::canonicalize(&target.lexical).map_err(|e| io_error(&body.path, e))?;
    if !real.starts_with(&agent.root) {
        let _ = std::fs::remove_dir(&target.lexical);
        return Err(outside(&body.path));
    }
    Ok(StatusCode::CREATED)
}

#[derive(Debug, Deserialize)]
pub struct MoveBody {
    pub from: String,
    pub to: String,
}

/// Renames or moves a file, link or directory; never over an existing one.
pub async fn rename(
    State(agent): State<Shared>,
    Json(body): Json<MoveBody>,
) -> ApiResult<StatusCode> {
    let from = confine(&agent.root, &body.from, false)?;
    let to = confine(&agent.root, &body.to, false)?;
    if from.is_root || to.is_root {
        return Err(ApiError::bad_request("cannot move the workspace root"));
    }
    std::fs::symlink_metadata(&from.lexical).map_err(|e| io_error(&body.from, e))?;
    if std::fs::symlink_metadata(&to.lexical).is_ok() {
        return Err(ApiError::conflict(format!("{} already exists", body.to)));
    }
    if to.lexical.starts_with(&from.lexical) {
        return Err(ApiError::bad_request("cannot move a directory into itself"));
    }
    if let Some(parent) = to.lexical.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error(&body.to, e))?;
    }
    std::fs::rename(&from.lexical, &to.lexical).map_err(|e| io_error(&body.from, e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.txt"), "a").unwrap();
        let outside_dir = tempfile::tempdir().unwrap();
        std::fs::write(outside_dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside_dir.path(), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(outside_dir.path().join("secret"), root.join("leak")).unwrap();
        std::os::unix::fs::symlink("src/a.txt", root.join("inner")).unwrap();

        for bad in ["../x", "src/../../x", "a\0b", "..", "src/..\\..\\x"] {
            assert!(confine(&root, bad, true).is_err(), "{bad:?}");
        }
        // Through a link to a directory outside, for reads and for creation.
        assert!(confine(&root, "escape/secret", true).is_err());
        assert!(confine(&root, "escape/new-file", true).is_err());
        assert!(confine(&root, "escape/new-dir/deeper", true).is_err());
        // A link to a file outside cannot be followed...
        assert!(confine(&root, "leak", true).is_err());
        // ...but the link itself may be deleted or renamed.
        assert!(confine(&root, "leak", false).is_ok());
        // Links that stay inside work; "/x" means the root's x.
        let inner = confine(&root, "inner", true).unwrap();
        assert_eq!(inner.real.unwrap(), root.join("src/a.txt"));
        assert_eq!(
            confine(&root, "/src/a.txt", true).unwrap().lexical,
            root.join("src/a.txt")
        );
        assert!(confine(&root, "", true).unwrap().is_root);
        assert!(confine(&root, "new/dir/file", true).unwrap().real.is_none());
    }

    #[test]
    fn listing_puts_directories_first() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), "a").unwrap();
        std::fs::create_dir(tmp.path().join("z")).unwrap();
        let entries = list_dir(tmp.path(), "").unwrap();
        let names: Vec<_> = entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
        assert_eq!(names, vec![("z", "dir"), ("a.txt", "file")]);
    }
}
