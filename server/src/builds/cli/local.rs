//! `nubo build`: a buildspec run on this machine by the local runner, or
//! in an ephemeral container of an image, as the server would run it.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use crate::config::Settings;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The source directory (CODEBUILD_SRC_DIR)
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// The buildspec [default: SOURCE/buildspec.yml]
    #[arg(long, value_name = "FILE")]
    pub buildspec: Option<PathBuf>,
    /// Run the commands directly on this machine (the default)
    #[arg(long, conflicts_with = "image")]
    pub local: bool,
    /// Run in an ephemeral container of this image (needs NUBO_CONTAINER_SOCKET)
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Copy artifacts into this directory (secondary artifacts into DIR/<id>/)
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// A variable, overriding the buildspec's (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read a secret variable's value from standard input; it is masked in the log
    #[arg(long, value_name = "KEY")]
    pub secret_stdin: Option<String>,
    /// Build timeout: `90s`, `30m`, `2h` (CodeBuild's default is 60 minutes)
    #[arg(long, default_value = "60m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Print the outcome as JSON on stdout at the end
    #[arg(long)]
    pub json: bool,
    /// Keep and restore `cache` keys in this directory (no caching without it)
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Command output the log keeps, in bytes; the rest is dropped with a note
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20, hide = true)]
    pub log_cap: usize,
    /// Run the buildspec's phases even if it has `batch:` (the server's batches use it)
    #[arg(long, hide = true)]
    pub ignore_batch: bool,
    /// Also write the log to this file (used by the server's container builds)
    #[arg(long, value_name = "FILE", hide = true)]
    pub log_file: Option<PathBuf>,
    /// Write the outcome as JSON to this file (used by the server's container builds)
    #[arg(long, value_name = "FILE", hide = true)]
    pub outcome: Option<PathBuf>,
    /// Read secret variables from this JSON object file, then delete it (used by the server)
    #[arg(long, value_name = "FILE", hide = true)]
    pub secrets_file: Option<PathBuf>,
}

/// `90s`, `30m`, `2h` or plain seconds.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 90s, 30m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration such as 90s, 30m or 2h")),
    };
    if secs == 0 {
        return Err("the timeout must be positive".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// `nubo build --image IMAGE`: the same build in an ephemeral container of
/// IMAGE, through the engine at `container_socket`.
pub async fn container_build(args: BuildArgs, settings: Settings) -> anyhow::Result<()> {
    let image = args.image.clone().expect("checked by the caller");
    if settings.container_socket.is_none() {
        bail!("--image needs a container engine: set NUBO_CONTAINER_SOCKET (see `scripts/podman.sh service`)");
    }
    let source = std::fs::canonicalize(&args.source).with_context(|| {
        format!(
            "the source directory {} does not exist",
            args.source.display()
        )
    })?;
    let file = args
        .buildspec
        .clone()
        .unwrap_or_else(|| source.join("buildspec.yml"));
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the buildspec {}", file.display()))?;
    let (spec, diags) = nubo_runner::buildspec::parse(&text);
    for d in &diags {
        eprintln!("{}", d.render(&file.display().to_string()));
    }
    if spec.is_none() {
        std::process::exit(1);
    }
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("buildspec.yml"), &text)?;
    let mut secrets = std::collections::BTreeMap::new();
    if let Some(key) = &args.secret_stdin {
        let mut value = String::new();
        std::io::stdin().read_to_string(&mut value)?;
        secrets.insert(
            key.clone(),
            value.trim_end_matches(['\n', '\r']).to_string(),
        );
    }
    crate::tls::write_private(
        &out.join("secrets.json"),
        serde_json::to_string(&secrets)?.as_bytes(),
    )?;
    let cache = match &args.cache_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            std::fs::canonicalize(dir)?
        }
        None => tmp.path().join("cache"),
    };
    std::fs::create_dir_all(&cache)?;
    let mut inner: Vec<String> = [
        "--source",
        "/codebuild/src",
        "--buildspec",
        "/codebuild/out/buildspec.yml",
        "--artifacts",
        "/codebuild/out/artifacts",
        "--outcome",
        "/codebuild/out/outcome.json",
        "--secrets-file",
        "/codebuild/out/secrets.json",
        "--log-file",
        "/codebuild/out/build.log",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if args.cache_dir.is_some() {
        inner.extend(["--cache-dir".into(), "/codebuild/cache".into()]);
    }
    inner.extend(["--timeout".into(), format!("{}s", args.timeout.as_secs())]);
    for kv in &args.env {
        inner.extend(["--env".into(), kv.clone()]);
    }
    let project = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "local".into());
    let build = crate::builds::container::ContainerBuild {
        name: format!("nubo-build-cli-{}", hex::encode(rand::random::<[u8; 6]>())),
        image: image.clone(),
        src: &source,
        out: &out,
        args: inner,
        env: vec![
            format!("NUBO_PROJECT={project}"),
            format!("NUBO_IMAGE={image}"),
            "HOME=/root".into(),
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ],
        cancel: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
        cache,
        memory_mb: None,
        cpus: None,
        pids: None,
    };
    let mut follower = crate::builds::external::LogFollower::new(&out, args.log_cap);
    let mut print = |line: &str| println!("{line}");
    let mut follow = |on_line: &mut (dyn FnMut(&str) + Send)| follower.poll(on_line);
    let code =
        crate::builds::container::run_build(&settings, build, &mut follow, &mut print).await?;
    follower.finish(&mut print);
    let outcome = crate::builds::external::read_outcome(&out);
    let Some(outcome) = outcome else {
        bail!(
            "the build container ended with status {} before finishing",
            code.unwrap_or(-1)
        );
    };
    // Only regular files and directories come out of the container.
    let staged = tmp.path().join("artifacts");
    let kept = crate::builds::external::take_artifacts(&out, &staged, &mut print);
    if let (Some(dest), true) = (&args.artifacts, kept > 0) {
        std::fs::create_dir_all(dest)?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(staged.join("."))
            .arg(dest)
            .status()?;
        if !status.success() {
            bail!("cannot copy the artifacts to {}", dest.display());
        }
    }
    for (k, v) in &outcome.exported_variables {
        eprintln!("exported {k}={v}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    if !outcome.succeeded {
        std::process::exit(1);
    }
    Ok(())
}

pub fn build(args: BuildArgs) -> anyhow::Result<()> {
    let source = std::fs::canonicalize(&args.source).with_context(|| {
        format!(
            "the source directory {} does not exist",
            args.source.display()
        )
    })?;
    let file = args
        .buildspec
        .clone()
        .unwrap_or_else(|| source.join("buildspec.yml"));
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the buildspec {}", file.display()))?;
    let name = file.display().to_string();
    let (spec, diags) = nubo_runner::buildspec::parse(&text);
    for d in &diags {
        eprintln!("{}", d.render(&name));
    }
    let Some(spec) = spec else {
        std::process::exit(1);
    };
    let mut overrides = Vec::new();
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--env takes KEY=VALUE, not {kv:?}"))?;
        // The two a batch gives its builds are CodeBuild's own, and so
        // are a pipeline build's secondary inputs' directories and the
        // server's build number.
        let own = matches!(
            k,
            "CODEBUILD_BATCH_BUILD_IDENTIFIER" | "CODEBUILD_BUILD_BATCH_TRIGGERED"
        ) || k.starts_with("CODEBUILD_SRC_DIR_")
            || k == "CODEBUILD_BUILD_NUMBER";
        if k.starts_with("CODEBUILD_") && !own {
            bail!("{k}: the CODEBUILD_ prefix is reserved");
        }
        overrides.push((k.to_string(), v.to_string()));
    }
    let mut secrets = Vec::new();
    if let Some(key) = &args.secret_stdin {
        let mut value = String::new();
        std::io::stdin().read_to_string(&mut value)?;
        let value = value.trim_end_matches(['\n', '\r']).to_string();
        secrets.push((key.clone(), value));
    }
    if let Some(path) = &args.secrets_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let _ = std::fs::remove_file(path);
        let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)?;
        secrets.extend(map);
    }
    let project = std::env::var("NUBO_PROJECT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "local".into())
        });
    let options = nubo_runner::local::Options {
        source,
        spec,
        overrides,
        secrets,
        artifacts_dir: args.artifacts.clone(),
        timeout: args.timeout,
        project,
        initiator: std::env::var("USER").unwrap_or_else(|_| "local".into()),
        image: std::env::var("NUBO_IMAGE").unwrap_or_else(|_| "local".into()),
        log_cap: args.log_cap,
        cancel: None,
        announce_source: args.outcome.is_none(),
        cache_dir: args.cache_dir.clone(),
    };
    let mut log_file = match &args.log_file {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => None,
    };
    let mut print = |line: &str| {
        use std::io::Write;
        match log_file.as_mut() {
            Some(f) => {
                let _ = writeln!(f, "{line}");
                let _ = f.flush();
            }
            None => {
                let out = std::io::stdout();
                let mut out = out.lock();
                let _ = writeln!(out, "{line}");
            }
        }
    };
    // A batch buildspec: its builds, one after another, here.
    if let (Some(batch), false) = (options.spec.batch.clone(), args.ignore_batch) {
        let o = nubo_runner::local_batch::BatchOptions {
            base: &options,
            own: &options.spec,
        };
        let outcome = nubo_runner::local_batch::run(&o, &batch, &mut print);
        for (id, status, note) in &outcome.builds {
            eprintln!(
                "{id}\t{status}{}",
                note.as_ref().map(|n| format!("\t{n}")).unwrap_or_default()
            );
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        }
        if outcome.status != "SUCCEEDED" {
            std::process::exit(1);
        }
        return Ok(());
    }
    let outcome = nubo_runner::local::run(&options, &mut print);
    for (k, v) in &outcome.exported_variables {
        eprintln!("exported {k}={v}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    if let Some(path) = &args.outcome {
        std::fs::write(path, serde_json::to_string(&outcome)?)?;
    }
    if !outcome.succeeded {
        std::process::exit(1);
    }
    Ok(())
}
