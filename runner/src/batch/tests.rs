//! Batches as CodeBuild runs them: parsing with positions, the matrix's
//! cross product, the graph's checks and the scheduling rule.

use super::*;
use crate::buildspec::parse as parse_spec;

fn batch(text: &str) -> Batch {
    let (spec, diags) = parse_spec(text);
    assert!(spec.is_some(), "{diags:?}");
    spec.unwrap().batch.unwrap()
}

fn errors(text: &str) -> Vec<String> {
    parse_spec(text)
        .1
        .iter()
        .filter(|d| d.severity == crate::buildspec::Severity::Error)
        .map(|d| d.render("b.yml"))
        .collect()
}

#[test]
fn a_matrix_is_its_cross_product() {
    let b = batch("version: 0.2\nbatch:\n  build-matrix:\n    static:\n      ignore-failure: true\n    dynamic:\n      env:\n        image: [img1, img2]\n        variables:\n          V: [a, b]\n");
    assert_eq!(b.builds.len(), 4);
    let got: Vec<(String, Option<String>, String)> = b
        .builds
        .iter()
        .map(|x| {
            (
                x.identifier.clone(),
                x.image.clone(),
                x.variables[0].1.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("build1".into(), Some("img1".into()), "a".into()),
            ("build2".into(), Some("img1".into()), "b".into()),
            ("build3".into(), Some("img2".into()), "a".into()),
            ("build4".into(), Some("img2".into()), "b".into()),
        ]
    );
    assert!(b.builds.iter().all(|x| x.ignore_failure));
}

#[test]
fn graphs_are_checked_for_unknown_names_and_cycles() {
    let e = errors("version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\n    - identifier: b\n      depend-on: [a]\n    - identifier: c\n      depend-on: [nope]\n");
    assert!(
        e.iter()
            .any(|l| l.contains("4:7: error: a is part of a dependency cycle")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|l| l.contains("8:7: error: c depends on \"nope\"")),
        "{e:?}"
    );
    let e = errors("version: 0.2\nbatch:\n  build-graph:\n    - env: {}\n");
    assert!(
        e.iter().any(|l| l.contains("identifier is required")),
        "{e:?}"
    );
}

#[test]
fn a_diamond_starts_in_order_and_fast_fail_stops_the_rest() {
    let b = batch("version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n    - identifier: b\n      depend-on: [a]\n    - identifier: c\n      depend-on: [a]\n    - identifier: d\n      depend-on: [b, c]\n");
    use State::*;
    assert_eq!(
        step(&b, &[Pending, Pending, Pending, Pending]).start,
        vec![0]
    );
    assert_eq!(
        step(&b, &[Succeeded, Pending, Pending, Pending]).start,
        vec![1, 2]
    );
    assert_eq!(
        step(&b, &[Succeeded, Succeeded, Running, Pending]).start,
        Vec::<usize>::new()
    );
    assert_eq!(
        step(&b, &[Succeeded, Succeeded, Succeeded, Pending]).start,
        vec![3]
    );
    assert_eq!(step(&b, &[Succeeded; 4]).done, Some("SUCCEEDED"));
    // c fails: d never runs, the batch fails.
    let s = step(&b, &[Succeeded, Succeeded, Failed, Pending]);
    assert_eq!(s.skip.len(), 1);
    assert_eq!(s.done, Some("FAILED"));
    let mut fast = b.clone();
    fast.fast_fail = true;
    let s = step(&fast, &[Succeeded, Running, Failed, Pending]);
    assert_eq!(s.stop, vec![1]);
    assert_eq!(s.skip.len(), 1);
    assert_eq!(s.done, None, "not done while b still runs");
}
