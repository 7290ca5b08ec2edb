//! The buildspec conformance suite through the CLI (`nubo buildspec check`,
//! `nubo build --local`): each test pins one CodeBuild rule, asserting on
//! the log lines, the exit code and the files a user would see.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::BIN;

/// Writes `buildspec` into a fresh source dir and runs `nubo build` there.
fn build(dir: &Path, buildspec: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("buildspec.yml"), buildspec).unwrap();
    let mut child = Command::new(BIN)
        .arg("build")
        .arg("--source")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(text: &str) -> (i32, String) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("buildspec.yml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(BIN)
        .args(["buildspec", "check"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&file.display().to_string(), "FILE");
    (out.status.code().unwrap_or(-1), stderr)
}

/// The log without timestamps: `[Container] Entering phase BUILD`.
fn plain(log: &str) -> String {
    log.lines()
        .map(|l| match l.strip_prefix("[Container] ") {
            Some(rest) => format!("[Container] {}", rest.splitn(3, ' ').nth(2).unwrap_or("")),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn post_build_runs_after_a_failed_build_and_finally_after_a_failing_command() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, _) = build(
        tmp.path(),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo first\n      - ls /no/such/dir\n      - echo never\n    finally:\n      - echo finally ran\n  post_build:\n    commands:\n      - echo succeeding=$CODEBUILD_BUILD_SUCCEEDING\n",
        &[],
        None,
    );
    let log = plain(&out);
    assert_eq!(code, 1, "{log}");
    for expected in [
        "[Container] Entering phase BUILD\n[Container] Running command echo first\nfirst",
        "[Container] Command did not exit successfully ls /no/such/dir exit status 2",
        "[Container] Running command echo finally ran\nfinally ran\n[Container] Phase complete: BUILD State: FAILED",
        "[Container] Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: ls /no/such/dir. Reason: exit status 2",
        "[Container] Entering phase POST_BUILD",
        "succeeding=0\n[Container] Phase complete: POST_BUILD State: SUCCEEDED",
        "[Container] Build FAILED",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in\n{log}");
    }
    assert!(!log.contains("\nnever"), "{log}");
}

#[test]
fn a_failed_install_or_pre_build_skips_the_rest_unless_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, _) = build(
        &tmp.path().join("a"),
        "version: 0.2\nphases:\n  install:\n    commands: [\"false\"]\n  build:\n    commands: [echo building]\n  post_build:\n    commands: [echo post]\n",
        &[],
        None,
    );
    let log = plain(&out);
    assert_eq!(code, 1);
    assert!(
        log.contains("Phase complete: INSTALL State: FAILED"),
        "{log}"
    );
    assert!(
        !log.contains("Entering phase BUILD") && !log.contains("Entering phase POST_BUILD"),
        "{log}"
    );
    let (code, out, _) = build(
        &tmp.path().join("b"),
        "version: 0.2\nphases:\n  pre_build:\n    on-failure: CONTINUE\n    commands: [\"false\"]\n  build:\n    commands: [echo building, echo succeeding=$CODEBUILD_BUILD_SUCCEEDING]\n",
        &[],
        None,
    );
    let log = plain(&out);
    assert_eq!(code, 1, "a phase failed, so the build did: {log}");
    assert!(log.contains("Phase complete: PRE_BUILD State: FAILED"));
    assert!(
        log.contains("building\n") && log.contains("succeeding=0"),
        "{log}"
    );
}

#[test]
fn version_0_2_keeps_one_shell_and_0_1_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = |v: &str| {
        format!("version: {v}\nphases:\n  install:\n    commands:\n      - mkdir -p sub && cd sub\n      - export KEPT=yes\n  build:\n    commands:\n      - echo \"cwd=$(basename $(pwd)) kept=$KEPT\"\n")
    };
    let (code, out, _) = build(&tmp.path().join("v2"), &spec("0.2"), &[], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\ncwd=sub kept=yes\n"), "{out}");
    let (code, out, _) = build(&tmp.path().join("v1"), &spec("0.1"), &[], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\ncwd=v1 kept=\n"), "{out}");
}

#[test]
fn variables_follow_precedence_and_builtins_are_set() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, _) = build(
        &tmp.path().join("proj"),
        "version: 0.2\nenv:\n  variables:\n    A: from-buildspec\n    B: from-buildspec\n    P: \"$PATH:/x\"\nphases:\n  build:\n    commands:\n      - echo A=$A B=$B P=$P\n      - echo id=${CODEBUILD_BUILD_ID%%:*} src=$(basename $CODEBUILD_SRC_DIR) start=${#CODEBUILD_START_TIME}\n",
        &["--env", "B=from-override"],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\nA=from-buildspec B=from-override P=$PATH:/x\n"),
        "{out}"
    );
    assert!(out.contains("\nid=proj src=proj start=13\n"), "{out}");
}

#[test]
fn secrets_are_masked_in_each_encoding() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = "hunter2 \"quoted\"/x";
    let (code, out, _) = build(
        tmp.path(),
        "version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    commands:\n      - echo \"raw:$TOKEN\"\n      - echo \"b64:$(printf %s \"$TOKEN\" | base64 -w0)\"\n      - echo \"url:$(python3 -c 'import os,urllib.parse;print(urllib.parse.quote(os.environ[\"TOKEN\"], safe=\"\"))')\"\n      - echo \"json:$(python3 -c 'import os,json;print(json.dumps(os.environ[\"TOKEN\"]))')\"\n",
        &["--secret-stdin", "TOKEN"],
        Some(secret),
    );
    assert_eq!(code, 0, "{out}");
    for form in ["raw:***", "b64:***", "url:***", "json:\"***\""] {
        assert!(out.contains(&format!("\n{form}\n")), "{form} in\n{out}");
    }
    assert!(
        !out.contains("hunter2") && !out.contains("aHVudGVyMi"),
        "{out}"
    );
}

#[test]
fn multi_line_secrets_hex_and_exported_copies_are_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\nAAAAMwAAAAtzc2gtZWQyNTUxOQAAACBZ5t9dRk3ZJv0nh1IbLWD9\n-----END OPENSSH PRIVATE KEY-----";
    let (code, out, _) = build(
        &tmp.path().join("m"),
        "version: 0.2\nenv:\n  shell: bash\n  exported-variables: [COPY]\nphases:\n  build:\n    commands:\n      - echo \"$KEY\"\n      - printf %s \"$KEY\" | od -An -tx1 | tr -d ' \\n'; echo\n      - printf %s \"$KEY\" | xxd -p -c 1000 | tr a-f A-F || true\n      - printf %s \"$KEY\" | base64\n      - export COPY=\"$KEY\"\n",
        &["--secret-stdin", "KEY", "--json"],
        Some(key),
    );
    assert_eq!(code, 0, "{out}");
    for secret_line in key.lines().skip(1).take(2) {
        assert!(!out.contains(secret_line), "{secret_line} in\n{out}");
    }
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!out.contains(&hex[..40]), "hex in\n{out}");
    assert!(!out.to_lowercase().contains(&hex[40..80]), "hex in\n{out}");
    assert!(!out.contains("b3BlbnNzaC1rZXkt"), "{out}");
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(key)
    };
    assert!(!out.contains(&b64[..60]), "base64 in\n{out}");
    let json: serde_json::Value = serde_json::from_str(&out[out.find("\n{").unwrap()..]).unwrap();
    let copy = json["exported_variables"][0][1].as_str().unwrap();
    assert!(!copy.contains("b3BlbnNzaC1rZXkt"), "exported: {copy}");
}

#[test]
fn artifacts_follow_each_option() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let art = tmp.path().join("art");
    let (code, out, _) = build(
        &src,
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p dist/js dist/css docs\n      - echo a > dist/js/app.js && echo b > dist/css/app.css && echo m > dist/js/app.js.map && echo d > docs/guide.md\nartifacts:\n  files: ['**/*']\n  base-directory: dist\n  exclude-paths: ['**/*.map']\n  secondary-artifacts:\n    docs:\n      files: ['docs/*.md']\n      discard-paths: yes\n",
        &["--artifacts", art.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{out}");
    let mut files = Vec::new();
    fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), base, out);
            } else {
                out.push(e.path().strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    walk(&art, &art, &mut files);
    files.sort();
    assert_eq!(files, vec!["css/app.css", "docs/guide.md", "js/app.js"]);
    // Nothing matching is a failed upload, and a failed build.
    let (code, out, _) = build(
        &tmp.path().join("none"),
        "version: 0.2\nphases:\n  build:\n    commands: [echo nothing]\nartifacts:\n  files: ['out/**/*']\n",
        &["--artifacts", tmp.path().join("art2").to_str().unwrap()],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("no matching artifact paths found")
            && out.contains("Phase complete: UPLOAD_ARTIFACTS State: FAILED"),
        "{out}"
    );
}

#[test]
fn exported_variables_and_timeouts() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = build(
        &tmp.path().join("e"),
        "version: 0.2\nenv:\n  exported-variables: [VERSION, EMPTY]\nphases:\n  build:\n    commands:\n      - export VERSION=\"1.2.$((1+2))\"\n",
        &["--json"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let json: serde_json::Value = serde_json::from_str(&out[out.find("\n{").unwrap()..]).unwrap();
    assert_eq!(
        json["exported_variables"],
        serde_json::json!([["VERSION", "1.2.3"], ["EMPTY", ""]])
    );
    let t = std::time::Instant::now();
    let (code, out, _) = build(
        &tmp.path().join("t"),
        "version: 0.2\nphases:\n  build:\n    commands: [sleep 30, echo never]\n  post_build:\n    commands: [echo never-post]\n",
        &["--timeout", "2s"],
        None,
    );
    assert_eq!(code, 1);
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    let log = plain(&out);
    assert!(
        log.contains("Phase complete: BUILD State: TIMED_OUT"),
        "{log}"
    );
    assert!(
        log.contains("Build TIMED_OUT") && !log.contains("never"),
        "{log}"
    );
}

#[test]
fn check_reports_positions_and_refuses_bombs() {
    let (code, err) = check("version: 0.2\nphases:\n  build:\n    commands:\n      - echo a: b\n");
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "FILE:5:9: error: a command must be a string, but YAML read a mapping here (\"echo a: ...\"): quote the whole command"
    );
    let (code, err) =
        check("version: 0.2\nphases:\n  build:\n    commands: [ls]\n    colour: red\n");
    assert_eq!(code, 0, "warnings alone pass");
    assert!(
        err.contains("FILE:5:5: warning: unknown key \"colour\""),
        "{err}"
    );
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, cur) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        bomb.push_str(&format!(
            "{cur}: &{cur} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    let t = std::time::Instant::now();
    let (code, err) = check(&bomb);
    assert_eq!(code, 1);
    assert!(err.contains("YAML bomb"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    let (code, err) = check(&format!("version: 0.2\n# {}\n", "x".repeat(2 << 20)));
    assert_eq!(code, 1);
    assert!(err.contains("at most 1048576"), "{err}");
    let (code, err) = check("version: 0.2\nphases: [\n");
    assert_eq!(code, 1);
    assert!(err.starts_with("FILE:3:1: error: not valid YAML"), "{err}");
}

#[test]
fn caches_round_trip_by_key_with_fallbacks() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let spec = |key: &str| {
        format!("version: 0.2\nphases:\n  install:\n    commands:\n      - test -f deps/marker && echo \"restored $(cat deps/marker)\" || echo fresh\n  build:\n    commands:\n      - mkdir -p deps && echo \"made-for-{key}\" > deps/marker\ncache:\n  key: {key}-$STAGE\n  fallback-keys: [deps-]\n  paths: ['deps/**/*']\n")
    };
    let (code, out, _) = build(
        &tmp.path().join("one"),
        &spec("deps"),
        &["--cache-dir", cache_arg, "--env", "STAGE=a"],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Cache deps-a not found") && out.contains("\nfresh\n"),
        "{out}"
    );
    assert!(out.contains("Saved cache deps-a ("), "{out}");
    // Same key, another checkout: restored.
    let (code, out, _) = build(
        &tmp.path().join("two"),
        &spec("deps"),
        &["--cache-dir", cache_arg, "--env", "STAGE=a"],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Restored cache deps-a") && out.contains("\nrestored made-for-deps\n"),
        "{out}"
    );
    // A new key falls back to the newest cache starting with "deps-".
    let (code, out, _) = build(
        &tmp.path().join("three"),
        &spec("deps"),
        &["--cache-dir", cache_arg, "--env", "STAGE=b"],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Restored cache deps-a") && out.contains("Saved cache deps-b"),
        "{out}"
    );
    // Without --cache-dir nothing is cached.
    let (code, out, _) = build(&tmp.path().join("four"), &spec("deps"), &[], None);
    assert_eq!(code, 0);
    assert!(out.contains("\nfresh\n") && !out.contains("cache"), "{out}");
}

const JUNIT_SPEC: &str = "version: 0.2
phases:
  build:
    commands:
      - mkdir -p reports
      - printf '<testsuite name=\"unit\"><testcase classname=\"calc\" name=\"adds\"/><testcase classname=\"calc\" name=\"divides\"><failure message=\"division by zero\"/></testcase><testcase name=\"later\"><skipped/></testcase></testsuite>' > reports/junit.xml
      - echo '<not xml' > reports/broken.xml
      - 'false'
reports:
  unit-tests:
    files: ['**/*.xml']
    base-directory: reports
";

#[test]
fn junit_reports_are_read_even_when_the_build_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, _) = build(tmp.path(), JUNIT_SPEC, &["--json"], None);
    assert_eq!(code, 1);
    assert!(
        out.contains("Report group unit-tests: 2 files, 3 tests, 1 passed, 1 failed, 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains("Report group unit-tests: broken.xml: not valid XML"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&out[out.find("\n{").unwrap()..]).unwrap();
    assert_eq!(json["reports"][0]["failures"][0]["name"], "divides");
    assert_eq!(
        json["reports"][0]["failures"][0]["message"],
        "division by zero"
    );
}

#[test]
fn run_as_switches_users_for_the_build_and_for_a_phase() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tmp.path().join("src");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, out, _) = build(
        &dir,
        "version: 0.2\nrun-as: nobody\nphases:\n  install:\n    commands:\n      - echo \"install as $(id -un) home=$HOME\"\n  build:\n    run-as: root\n    commands:\n      - echo \"build as $(id -un)\"\n",
        &[],
        None,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\ninstall as nobody home=/nonexistent\n"),
        "{out}"
    );
    assert!(
        out.contains("Running as root in a new shell session") && out.contains("\nbuild as root\n"),
        "{out}"
    );
    let (code, out, _) = build(
        &tmp.path().join("other"),
        "version: 0.2\nrun-as: no-such-user-xyz\nphases:\n  build:\n    commands: [echo never]\n",
        &[],
        None,
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("run-as no-such-user-xyz: no such user") && !out.contains("\nnever"),
        "{out}"
    );
}

#[test]
fn cache_keys_can_hash_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("package-lock.json"), "{}\n").unwrap();
    let (code, out, _) = build(
        &dir,
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p deps && touch deps/x\n      - echo \"key=$(codebuild-hash-files package-lock.json)\"\ncache:\n  key: npm-$(codebuild-hash-files package-lock.json)\n  paths: ['deps/**/*']\n",
        &["--cache-dir", tmp.path().join("cache").to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{out}");
    // sha256 of "{}\n"
    let hash = "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356";
    assert!(out.contains(&format!("\nkey={hash}\n")), "{out}");
    assert!(out.contains(&format!("Saved cache npm-{hash} (")), "{out}");
}

/// Buildspecs CodeBuild runs, written after AWS's documented examples of
/// each kind (`tests/fixtures/buildspecs/`): every one passes `check`, with
/// a warning, at its position, for what Nubo accepts and does not act on.
#[test]
fn buildspecs_codebuild_runs_pass_the_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buildspecs");
    let expected: &[(&str, &[&str])] = &[
        (
            "install-runtime-versions-only.yml",
            &["FILE:6:5: warning: runtime-versions is accepted and ignored"],
        ),
        (
            "reports-any-case.yml",
            &[
                "FILE:13:18: warning: VISUALSTUDIOTRX reports are not read yet",
                "FILE:16:18: warning: CUCUMBERJSON reports are not read yet",
                "FILE:19:18: warning: JACOCOXML reports are not read yet",
                "FILE:22:18: warning: SIMPLECOV reports are not read yet",
            ],
        ),
        (
            "batch-only-build-list.yml",
            &["FILE:16:7: warning: debug-session is accepted and ignored"],
        ),
        ("batch-matrix.yml", &[]),
        ("batch-graph.yml", &[]),
        (
            "codebuild-prefixed-variable.yml",
            &["FILE:5:5: warning: CODEBUILD_CONFIG_AUTO_DISCOVER: the CODEBUILD_ prefix is reserved"],
        ),
        ("proxy-and-credential-helper.yml", &[]),
    ];
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (_, warnings) = expected
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name}: add it to the expectations"));
        let (code, stderr) = check(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(code, 0, "{name}:\n{stderr}");
        assert!(!stderr.contains("error:"), "{name}:\n{stderr}");
        for w in *warnings {
            assert!(stderr.contains(w), "{name}: no {w:?} in\n{stderr}");
        }
        assert_eq!(
            stderr.matches("warning:").count(),
            warnings.len(),
            "{name}: other warnings in\n{stderr}"
        );
        seen += 1;
    }
    assert_eq!(seen, expected.len());
}

/// What CodeBuild refuses stays an error, with its position.
#[test]
fn what_codebuild_refuses_stays_an_error() {
    let cases = [
        (
            "version: 0.2\nphases:\n  build:\n    on-failure: CONTINUE\n",
            "FILE:3:3: error: phases.build.commands is required",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    commands: [make]\nreports:\n  r:\n    files: [a.xml]\n    file-format: XUNIT\n",
            "FILE:8:18: error: unknown file-format \"XUNIT\"",
        ),
        (
            "version: 0.2\nenv:\n  variables:\n    1BAD: x\nphases:\n  build:\n    commands: [make]\n",
            "FILE:4:5: error: \"1BAD\" is not a valid variable name",
        ),
        (
            "version: 0.2\n",
            "FILE:1:1: error: phases is required",
        ),
        (
            "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\n",
            "FILE:4:7: error: a depends on \"b\", which is not in the batch",
        ),
    ];
    for (text, expected) in cases {
        let (code, stderr) = check(text);
        assert_eq!(code, 1, "{text}\n{stderr}");
        assert!(stderr.contains(expected), "{expected:?} not in\n{stderr}");
    }
}
