//! Test reports: JUnit XML files found by a report group's globs, counted
//! as CodeBuild's report groups show them (passed, failed, skipped), with
//! the failing tests named.

use std::path::Path;

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub name: String,
    pub suite: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub group: String,
    pub files: usize,
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// The first 100 failing tests.
    pub failures: Vec<Failure>,
    /// Files that could not be read as JUnit XML, with the reason.
    pub errors: Vec<String>,
}

fn attr(e: &quick_xml::events::BytesStart, key: &str) -> String {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == key)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::default())
                .ok()
                .map(|v| v.into_owned())
        })
        .unwrap_or_default()
}

/// Adds one JUnit XML document's test cases to `report`.
pub fn add_junit(report: &mut Report, xml: &str) -> Result<(), String> {
    let mut reader = Reader::from_str(xml);
    let mut suite = String::new();
    // The open test case: (name, suite, outcome, message).
    let mut case: Option<(String, String, &'static str, String)> = None;
    let mut saw_case = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("not valid XML: {e}"))?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "testsuite" => {
                suite = attr(&e, "name");
            }
            Event::Start(e) if e.local_name().as_ref() == "testcase" => {
                let class = attr(&e, "classname");
                case = Some((
                    attr(&e, "name"),
                    if class.is_empty() {
                        suite.clone()
                    } else {
                        class
                    },
                    "passed",
                    String::new(),
                ));
            }
            Event::Empty(e) if e.local_name().as_ref() == "testcase" => {
                saw_case = true;
                report.total += 1;
                report.passed += 1;
            }
            Event::Start(e) | Event::Empty(e)
                if matches!(e.local_name().as_ref(), "failure" | "error" | "skipped") =>
            {
                if let Some(c) = case.as_mut() {
                    if e.local_name().as_ref() == "skipped" {
                        c.2 = "skipped";
                    } else {
                        c.2 = "failed";
                        c.3 = attr(&e, "message");
                    }
                }
            }
            Event::End(e) if e.local_name().as_ref() == "testcase" => {
                if let Some((name, suite, outcome, message)) = case.take() {
                    saw_case = true;
                    report.total += 1;
                    match outcome {
                        "failed" => {
                            report.failed += 1;
                            if report.failures.len() < 100 {
                                report.failures.push(Failure {
                                    name,
                                    suite,
                                    message,
                                });
                            }
                        }
                        "skipped" => report.skipped += 1,
                        _ => report.passed += 1,
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_case && !xml.contains("testsuite") {
        return Err("no JUnit test suites in it".into());
    }
    Ok(())
}

/// Reads a group's files (already found by its globs).
pub fn collect(group: &str, files: &[(std::path::PathBuf, std::path::PathBuf)]) -> Report {
    let mut report = Report {
        group: group.to_string(),
        ..Default::default()
    };
    for (path, shown) in files {
        report.files += 1;
        let text = match std::fs::read(path) {
            Ok(b) if b.len() <= 64 << 20 => String::from_utf8_lossy(&b).into_owned(),
            Ok(_) => {
                report
                    .errors
                    .push(format!("{}: larger than 64 MiB", shown.display()));
                continue;
            }
            Err(e) => {
                report.errors.push(format!("{}: {e}", shown.display()));
                continue;
            }
        };
        if let Err(e) = add_junit(&mut report, &text) {
            report
                .errors
                .push(format!("{}: {e}", Path::new(shown).display()));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    #[test]
    fn junit_is_counted() {
        let xml = r#"<?xml version="1.0"?>
<testsuites><testsuite name="math" tests="4">
  <testcase classname="math.Add" name="adds"/>
  <testcase classname="math.Add" name="overflows"><failure message="expected 0 &lt; 1">trace</failure></testcase>
  <testcase name="later"><skipped/></testcase>
  <testcase name="errs"><error message="boom"/></testcase>
</testsuite></testsuites>"#;
        let mut r = super::Report::default();
        super::add_junit(&mut r, xml).unwrap();
        assert_eq!((r.total, r.passed, r.failed, r.skipped), (4, 1, 2, 1));
        assert_eq!(r.failures[0].name, "overflows");
        assert_eq!(r.failures[0].suite, "math.Add");
        assert_eq!(r.failures[0].message, "expected 0 < 1");
        assert_eq!(r.failures[1].suite, "math");
        assert!(super::add_junit(&mut super::Report::default(), "<a><b></a>").is_err());
        assert!(super::add_junit(&mut super::Report::default(), "<html/>").is_err());
    }
}
