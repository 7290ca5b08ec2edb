//! Bundles the TypeScript islands in `web/` with esbuild so that `rust-embed`
//! can embed them into the binary: `web/dist/app.js` (every page) and
//! `web/dist/ide.js` with `web/dist/ide.css` (the workspace IDE only, so the
//! other pages stay light).

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=web/src");
    println!("cargo:rerun-if-changed=web/package-lock.json");
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
}
