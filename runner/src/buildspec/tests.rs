//! The buildspec validator: what CodeBuild refuses is an error at its
//! position, what it accepts with a pitfall is a warning.

use super::*;

fn errors(text: &str) -> Vec<String> {
    parse(text).1.iter().map(|d| d.render("b.yml")).collect()
}

#[test]
fn a_usual_buildspec_is_valid() {
    let (spec, diags) = parse(
        "version: 0.2\nenv:\n  shell: bash\n  variables:\n    GREETING: hi\nphases:\n  build:\n    commands:\n      - echo $GREETING\n    finally:\n      - echo done\nartifacts:\n  files:\n    - '**/*'\n  base-directory: out\n",
    );
    assert_eq!(diags, vec![]);
    let spec = spec.unwrap();
    assert_eq!(spec.version, Version::V02);
    assert_eq!(spec.shell(), "bash");
    assert_eq!(
        spec.phase(PhaseName::Build).unwrap().commands[0].text,
        "echo $GREETING"
    );
    assert_eq!(
        spec.artifacts.unwrap().base_directory.as_deref(),
        Some("out")
    );
}

#[test]
fn errors_carry_exact_positions() {
    assert_eq!(
        errors("phases:\n  build:\n    commands: [ls]\n"),
        vec!["b.yml:1:1: error: version is required (0.2)"]
    );
    assert_eq!(
        errors("version: 0.2\nphases:\n  compile:\n    commands: [ls]\n"),
        vec!["b.yml:3:3: error: unknown phase \"compile\": use install, pre_build, build or post_build"]
    );
    assert_eq!(
        errors("version: 0.2\nphases:\n  build:\n    commands:\n      - echo a: b\n"),
        vec!["b.yml:5:9: error: a command must be a string, but YAML read a mapping here (\"echo a: ...\"): quote the whole command"]
    );
    assert_eq!(
        errors("version: 0.2\nenv:\n  variables: [A]\nphases:\n  build:\n    commands: [ls]\n"),
        vec!["b.yml:3:14: error: env.variables must be a mapping, not a list"]
    );
    assert_eq!(
        errors("version: 0.3\nphases:\n  build:\n    commands: [ls]\n"),
        vec!["b.yml:1:10: error: version must be 0.2 (or 0.1)"]
    );
    assert_eq!(
        errors("version: 0.2\nphases:\n  build:\n    commands: [ls\n").len(),
        1
    );
    assert!(
        errors("version: 0.2\nphases:\n  build:\n    commands: [ls\n")[0]
            .starts_with("b.yml:5:1: error: not valid YAML")
    );
}

#[test]
fn pitfalls_are_warned_about() {
    let w = errors("version: 0.2\nenv:\n  variables:\n    PATH: \"$PATH:/opt/bin\"\nphases:\n  build:\n    commands:\n      - if [[ -f x ]]; then echo; fi\n      - |\n        false\n        echo masked\n    colour: red\n");
    assert_eq!(w.len(), 4, "{w:#?}");
    assert!(w[0].starts_with("b.yml:4:11: warning: PATH: variables are taken literally"));
    assert!(w[1].starts_with("b.yml:8:9: warning: `[[` is a bash feature"));
    assert!(
        w[2].starts_with("b.yml:10:9: warning: a multi-line command"),
        "{}",
        w[2]
    );
    assert!(w[3].starts_with("b.yml:12:5: warning: unknown key \"colour\""));
    // Warnings alone leave the buildspec usable.
    assert!(
        parse("version: 0.2\nphases:\n  build:\n    commands: [ls]\n    colour: red\n")
            .0
            .is_some()
    );
}

#[test]
fn reserved_names_are_warned_about_and_bad_names_are_errors() {
    let e = errors("version: 0.2\nenv:\n  variables:\n    CODEBUILD_X: 1\n    9LIVES: 2\nphases:\n  build:\n    commands: [ls]\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].contains("4:5: warning: CODEBUILD_X: the CODEBUILD_ prefix is reserved"));
    assert!(e[1].contains("5:5: error: \"9LIVES\" is not a valid variable name"));
}

#[test]
fn what_codebuild_accepts_is_accepted() {
    // install with runtime-versions only; formats in any case; a batch
    // buildspec without phases.
    for ok in [
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.11\n  build:\n    commands: [ls]\n",
        "version: 0.2\nphases:\n  build:\n    commands: [ls]\nreports:\n  r:\n    files: ['*.xml']\n    file-format: JunitXml\n  t:\n    files: ['*.trx']\n    file-format: VisualStudioTrx\n",
        "version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n      buildspec: a.yml\n",
    ] {
        let (spec, diags) = parse(ok);
        assert!(spec.is_some(), "{ok}\n{diags:?}");
    }
    let (spec, _) = parse("version: 0.2\nphases:\n  build:\n    commands: [ls]\nreports:\n  r:\n    files: ['*.xml']\n    file-format: junitxml\n");
    assert_eq!(spec.unwrap().reports[0].format, "JUNITXML");
    // Still refused: a phase without commands, an unknown format.
    assert!(
        parse("version: 0.2\nphases:\n  build:\n    finally: [ls]\n")
            .0
            .is_none()
    );
    assert!(parse("version: 0.2\nphases:\n  build:\n    commands: [ls]\nreports:\n  r:\n    files: [x]\n    file-format: PDF\n").0.is_none());
    assert!(
        parse("version: 0.2\n").0.is_none(),
        "no phases and no batch"
    );
}
