//! Bundles the TypeScript islands in `web/` with esbuild so that `rust-embed`
//! can embed them into the binary: `web/dist/app.js` (every page) and
//! `web/dist/ide.js` with `web/dist/ide.css` (the workspace IDE only, so the
//! other pages stay light).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web/src");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-changed=static");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let web = Path::new(&manifest).join("web");
    let esbuild = web.join("node_modules/.bin/esbuild");
    if !esbuild.exists() {
        panic!(
            "frontend/web/node_modules is missing: run `npm ci` in frontend/web \
             (scripts/setup.sh does this) before building Nubo"
        );
    }
    let status = Command::new(&esbuild)
        .current_dir(&web)
        .args([
            // `name=entry`: the bundle's file name in dist/. CSS imported by
            // an entry (xterm's, the IDE's own) lands beside it as name.css.
            "app=src/main.ts",
            "ide=src/ide.ts",
            "--bundle",
            "--minify",
            "--target=es2020",
            "--format=iife",
            "--log-level=warning",
            "--outdir=dist",
        ])
        .status()
        .expect("could not run esbuild from frontend/web/node_modules");
    if !status.success() {
        panic!("esbuild failed to bundle frontend/web/src/main.ts and src/ide.ts ({status})");
    }
    // Precompressed copies (`NAME.gz`), served to browsers that take gzip.
    // (The stylesheet's copy goes to dist/ too: static/ is the source.)
    for name in ["app.js", "ide.js", "ide.css"] {
        let path = web.join("dist").join(name);
        gzip(&path, &path);
    }
    gzip(
        &Path::new(&manifest).join("static/nubo.css"),
        &web.join("dist/nubo.css"),
    );
    // rust-embed's derive does not tell cargo which files it read: a digest
    // of them, read by the crate with `env!`, rebuilds it whenever a bundle
    // or a static file changes (else a build could keep serving old ones).
    let mut digest = std::collections::hash_map::DefaultHasher::new();
    for dir in [web.join("dist"), Path::new(&manifest).join("static")] {
        hash_dir(&dir, &mut digest);
    }
    use std::hash::Hasher;
    println!(
        "cargo:rustc-env=NUBO_ASSETS_DIGEST={:016x}",
        digest.finish()
    );
}

fn hash_dir(dir: &Path, digest: &mut impl std::hash::Hasher) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            hash_dir(&path, digest);
        } else if let Ok(bytes) = std::fs::read(&path) {
            digest.write(path.to_string_lossy().as_bytes());
            digest.write(&bytes);
        }
    }
}

/// Writes `path` compressed to `like` with `.gz` added, at the best
/// compression.
fn gzip(path: &Path, like: &Path) {
    use std::io::Write;
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&bytes).expect("compressing in memory");
    let compressed = encoder.finish().expect("compressing in memory");
    let out = like.with_file_name(format!(
        "{}.gz",
        like.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&out, compressed)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
