//! Static files served under `/assets/`: the stylesheet and the esbuild
//! bundles of the TypeScript islands (built by `build.rs`): `app.js` for
//! every page, `ide.js` and `ide.css` for the workspace IDE.

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

#[derive(RustEmbed)]
#[folder = "web/dist/"]
struct Bundle;

/// A digest of the embedded files (from `build.rs`); naming it here makes
/// cargo rebuild this crate whenever one of them changes.
pub const DIGEST: &str = env!("NUBO_ASSETS_DIGEST");

/// An embedded file with its media type.
pub struct Asset {
    pub bytes: std::borrow::Cow<'static, [u8]>,
    pub content_type: &'static str,
}

/// The gzip-compressed copy of an asset, made at build time for the
/// bundles and the stylesheet; `None` for the others (and `.gz` paths).
pub fn asset_gzip(path: &str) -> Option<Asset> {
    if path.ends_with(".gz") {
        return None;
    }
    let file = Bundle::get(&format!("{path}.gz"))?;
    let plain = asset(path)?;
    Some(Asset {
        bytes: file.data,
        content_type: plain.content_type,
    })
}

/// An asset's URL: its path below `/assets/` with the digest of this
/// build's assets, so browsers may keep it for good.
pub fn asset_url(path: &str) -> String {
    format!("/assets/{path}?v={DIGEST}")
}

/// Looks up an embedded asset by its path below `/assets/`.
pub fn asset(path: &str) -> Option<Asset> {
    if path.ends_with(".gz") {
        return None;
    }
    let file = Static::get(path).or_else(|| Bundle::get(path))?;
    let content_type = match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Some(Asset {
        bytes: file.data,
        content_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stylesheet_and_bundle_are_embedded() {
        let css = asset("nubo.css").expect("stylesheet embedded");
        assert_eq!(css.content_type, "text/css; charset=utf-8");
        let js = asset("app.js").expect("island bundle embedded");
        assert!(std::str::from_utf8(&js.bytes)
            .unwrap()
            .contains("nubo.theme"));
        assert!(
            std::str::from_utf8(&js.bytes)
                .unwrap()
                .contains("#build-log[data-stream]"),
            "the live build log is part of app.js"
        );
        let ide = asset("ide.js").expect("IDE bundle embedded");
        assert_eq!(ide.content_type, "text/javascript; charset=utf-8");
        assert!(std::str::from_utf8(&ide.bytes)
            .unwrap()
            .contains("nubo.ide.layout"));
        let ide_css = asset("ide.css").expect("IDE stylesheet (with xterm's) embedded");
        assert_eq!(ide_css.content_type, "text/css; charset=utf-8");
        assert!(std::str::from_utf8(&ide_css.bytes)
            .unwrap()
            .contains(".xterm"));
        assert!(asset("../Cargo.toml").is_none());
    }
}
