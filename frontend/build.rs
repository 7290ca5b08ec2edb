//! Bundles the TypeScript islands in `web/` with esbuild so that `rust-embed`
//! can embed `web/dist/app.js` into the binary.

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
            "src/main.ts",
            "--bundle",
            "--minify",
            "--target=es2020",
            "--format=iife",
            "--log-level=warning",
            "--outfile=dist/app.js",
        ])
        .status()
        .expect("could not run esbuild from frontend/web/node_modules");
    if !status.success() {
        panic!("esbuild failed to bundle frontend/web/src/main.ts ({status})");
    }
}
