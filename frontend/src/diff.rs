//! A file's diff as a code review tool shows it: read from a unified patch
//! into hunks with both sides' line numbers, drawn unified (one column of
//! code) or split (old on the left, new on the right), added and removed
//! lines marked (`tr.add`, `tr.del`), with the file's counts.

use leptos::prelude::*;

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    /// `@@ -a,b +c,d @@ …`, as written.
    Hunk(String),
    Context {
        old: u32,
        new: u32,
        text: String,
    },
    Added {
        new: u32,
        text: String,
    },
    Removed {
        old: u32,
        text: String,
    },
}

/// The lines of a unified patch (file headers skipped), with numbers.
pub(crate) fn parse(patch: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let (mut old, mut new) = (0u32, 0u32);
    let mut in_hunk = false;
    for raw in patch.lines() {
        if let Some(rest) = raw.strip_prefix("@@") {
            let (o, n) = hunk_starts(rest);
            old = o;
            new = n;
            in_hunk = true;
            out.push(Line::Hunk(raw.to_string()));
            continue;
        }
        if !in_hunk {
            continue; // diff --git, index, ---, +++
        }
        if let Some(text) = raw.strip_prefix('+') {
            out.push(Line::Added {
                new,
                text: text.to_string(),
            });
            new += 1;
        } else if let Some(text) = raw.strip_prefix('-') {
            out.push(Line::Removed {
                old,
                text: text.to_string(),
            });
            old += 1;
        } else if raw.starts_with('\\') {
            // "\ No newline at end of file": not a line of either side.
        } else {
            let text = raw.strip_prefix(' ').unwrap_or(raw).to_string();
            out.push(Line::Context { old, new, text });
            old += 1;
            new += 1;
        }
    }
    out
}

/// The first line numbers of both sides, from ` -a,b +c,d @@`.
fn hunk_starts(rest: &str) -> (u32, u32) {
    let mut old = 1;
    let mut new = 1;
    for part in rest.split_whitespace() {
        let number = |s: &str| s.split(',').next().and_then(|n| n.parse().ok());
        if let Some(o) = part.strip_prefix('-').and_then(number) {
            old = o;
        } else if let Some(n) = part.strip_prefix('+').and_then(number) {
            new = n;
        } else if part == "@@" {
            break;
        }
    }
    (old, new)
}

/// Lines added and removed.
pub(crate) fn counts(lines: &[Line]) -> (usize, usize) {
    let added = lines
        .iter()
        .filter(|l| matches!(l, Line::Added { .. }))
        .count();
    let removed = lines
        .iter()
        .filter(|l| matches!(l, Line::Removed { .. }))
        .count();
    (added, removed)
}

fn number(n: u32) -> String {
    n.to_string()
}

/// The diff in one column: both numbers, then the line.
pub(crate) fn unified(lines: &[Line]) -> impl IntoView {
    let rows = lines
        .iter()
        .map(|line| match line {
            Line::Hunk(h) => view! { <tr class="hunk"><td class="num"></td><td class="num"></td><td class="text">{h.clone()}</td></tr> }.into_any(),
            Line::Context { old, new, text } => view! {
                <tr class="ctx"><td class="num">{number(*old)}</td><td class="num">{number(*new)}</td><td class="text">{format!(" {text}")}</td></tr>
            }.into_any(),
            Line::Added { new, text } => view! {
                <tr class="add"><td class="num"></td><td class="num">{number(*new)}</td><td class="text">{format!("+{text}")}</td></tr>
            }.into_any(),
            Line::Removed { old, text } => view! {
                <tr class="del"><td class="num">{number(*old)}</td><td class="num"></td><td class="text">{format!("-{text}")}</td></tr>
            }.into_any(),
        })
        .collect_view();
    view! { <table class="diff" data-view="unified"><tbody>{rows}</tbody></table> }
}

/// The diff in two columns: removed lines on the left beside the lines
/// added in their place on the right.
pub(crate) fn split(lines: &[Line]) -> impl IntoView {
    type Numbered = (u32, String);
    type Side = Option<Numbered>;
    type Row = (Side, Side, &'static str);
    let mut rows: Vec<Row> = Vec::new();
    let mut hunks: Vec<(usize, String)> = Vec::new();
    let mut removed: Vec<Numbered> = Vec::new();
    let mut added: Vec<Numbered> = Vec::new();
    let flush = |rows: &mut Vec<Row>, removed: &mut Vec<Numbered>, added: &mut Vec<Numbered>| {
        let n = removed.len().max(added.len());
        let (mut r, mut a) = (removed.drain(..), added.drain(..));
        for _ in 0..n {
            rows.push((r.next(), a.next(), "change"));
        }
    };
    for line in lines {
        match line {
            Line::Removed { old, text } => removed.push((*old, text.clone())),
            Line::Added { new, text } => added.push((*new, text.clone())),
            Line::Context { old, new, text } => {
                flush(&mut rows, &mut removed, &mut added);
                rows.push((
                    Some((*old, text.clone())),
                    Some((*new, text.clone())),
                    "ctx",
                ));
            }
            Line::Hunk(h) => {
                flush(&mut rows, &mut removed, &mut added);
                hunks.push((rows.len(), h.clone()));
            }
        }
    }
    flush(&mut rows, &mut removed, &mut added);
    let mut out = Vec::new();
    let mut next_hunk = hunks.into_iter().peekable();
    for (i, (left, right, kind)) in rows.into_iter().enumerate() {
        while let Some((_, h)) = next_hunk.next_if(|(at, _)| *at == i) {
            out.push(view! { <tr class="hunk"><td class="num"></td><td class="text" colspan="3">{h}</td></tr> }.into_any());
        }
        let side = |s: Side, class: &'static str| match s {
            Some((n, text)) => {
                view! { <td class="num">{number(n)}</td><td class=class>{text}</td> }.into_any()
            }
            None => view! { <td class="num"></td><td class="text empty"></td> }.into_any(),
        };
        let (l, r) = if kind == "ctx" {
            ("text", "text")
        } else {
            ("text del", "text add")
        };
        out.push(view! { <tr class=kind>{side(left, l)}{side(right, r)}</tr> }.into_any());
    }
    for (_, h) in next_hunk {
        out.push(view! { <tr class="hunk"><td class="num"></td><td class="text" colspan="3">{h}</td></tr> }.into_any());
    }
    view! { <table class="diff" data-view="split"><tbody>{out}</tbody></table> }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/f b/f\nindex 1..2 100644\n--- a/f\n+++ b/f\n@@ -3,3 +3,4 @@ fn main\n keep\n-old\n+new\n+more\n same\n\\ No newline at end of file\n";

    #[test]
    fn lines_carry_both_sides_numbers() {
        let lines = parse(PATCH);
        assert_eq!(
            lines,
            [
                Line::Hunk("@@ -3,3 +3,4 @@ fn main".into()),
                Line::Context {
                    old: 3,
                    new: 3,
                    text: "keep".into()
                },
                Line::Removed {
                    old: 4,
                    text: "old".into()
                },
                Line::Added {
                    new: 4,
                    text: "new".into()
                },
                Line::Added {
                    new: 5,
                    text: "more".into()
                },
                Line::Context {
                    old: 5,
                    new: 6,
                    text: "same".into()
                },
            ]
        );
        assert_eq!(counts(&lines), (2, 1));
    }

    #[test]
    fn split_puts_a_removed_line_beside_its_replacement() {
        let html = split(&parse(PATCH)).to_html();
        assert!(html.contains(r#"<td class="num">4</td><td class="text del">old</td><td class="num">4</td><td class="text add">new</td>"#), "{html}");
        assert!(html.contains(r#"<td class="num"></td><td class="text empty"></td><td class="num">5</td><td class="text add">more</td>"#), "{html}");
        let html = unified(&parse("@@ -1 +1 @@\n-<b>\n+&x\n")).to_html();
        assert!(
            html.contains("-&lt;b&gt;") && html.contains("+&amp;x"),
            "{html}"
        );
    }
}
