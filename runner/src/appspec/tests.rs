use super::*;

/// The shape of AWS's own sample (aws-codedeploy-samples, SampleApp_Linux).
const SAMPLE: &str = "version: 0.0
os: linux
files:
  - source: /index.html
    destination: /var/www/html/
hooks:
  BeforeInstall:
    - location: scripts/install_dependencies
      timeout: 300
      runas: root
    - location: scripts/start_server
      timeout: 300
      runas: root
  ApplicationStop:
    - location: scripts/stop_server
      timeout: 300
      runas: root
";

#[test]
fn a_real_world_appspec_is_read() {
    let (spec, diags) = parse(SAMPLE);
    assert!(diags.is_empty(), "{diags:?}");
    let spec = spec.unwrap();
    assert_eq!(spec.files[0].source, "index.html");
    assert_eq!(spec.files[0].destination, "/var/www/html");
    let before = spec.hooks_for(Event::BeforeInstall);
    assert_eq!(before.len(), 2);
    assert_eq!(before[1].location, "scripts/start_server");
    assert_eq!(before[0].timeout, 300);
    assert_eq!(before[0].runas.as_deref(), Some("root"));
    assert_eq!(spec.hooks_for(Event::ValidateService), &[]);
}

#[test]
fn problems_come_with_positions() {
    let text = "version: 1.0
os: linux
files:
  - source: app
    destination: opt/app
hooks:
  Install:
    - location: x.sh
  AfterInstal:
    - location: y.sh
  ApplicationStart:
    - location: ../../etc/passwd
      timeout: -3
";
    let (spec, diags) = parse(text);
    assert!(spec.is_none());
    let lines: Vec<String> = diags.iter().map(|d| d.render("appspec.yml")).collect();
    let has = |prefix: &str, word: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(prefix) && l.contains(word))
    };
    assert!(has("appspec.yml:1:10: error", "0.0"), "{lines:#?}");
    assert!(has("appspec.yml:5:18: error", "absolute"), "{lines:#?}");
    assert!(has("appspec.yml:7:3: error", "agent itself"), "{lines:#?}");
    assert!(
        has("appspec.yml:9:3: error", "did you mean AfterInstall"),
        "{lines:#?}"
    );
    assert!(
        has("appspec.yml:12:7: error", "inside the bundle"),
        "{lines:#?}"
    );
    assert!(has("appspec.yml:13:16: error", "timeout"), "{lines:#?}");
}

#[test]
fn windows_warns_and_bundle_scripts_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    std::fs::write(dir.path().join("scripts/start.sh"), "#!/bin/sh\n").unwrap();
    let text = "version: 0.0
os: windows
hooks:
  ApplicationStart:
    - location: scripts/start.sh
    - location: scripts/missing.sh
";
    let (spec, diags) = parse_in_bundle(text, dir.path());
    assert!(spec.is_some());
    let lines: Vec<String> = diags.iter().map(|d| d.render("a.yml")).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("a.yml:2:5: warning") && l.contains("Linux")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("a.yml:6:7: error") && l.contains("missing.sh")),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 2, "{lines:#?}");
}

#[test]
fn permissions_and_behaviour() {
    let text = "version: 0.0
os: linux
file_exists_behavior: OVERWRITE
permissions:
  - object: /opt/app
    pattern: \"*.sh\"
    except: [keep.sh]
    owner: www-data
    mode: 0755
    type:
      - file
";
    let (spec, diags) = parse(text);
    assert!(diags.is_empty(), "{diags:?}");
    let spec = spec.unwrap();
    assert_eq!(spec.file_exists_behavior, FileExists::Overwrite);
    let p = &spec.permissions[0];
    assert_eq!(
        (p.mode, p.kinds.clone(), p.except.clone()),
        (Some(0o755), vec![Kind::File], vec!["keep.sh".to_string()])
    );
}
