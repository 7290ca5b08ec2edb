//! A small YAML tree with positions, built from saphyr-parser's events, for
//! validation with exact `LINE:COLUMN` messages. Aliases are expanded under
//! a budget, so a "billion laughs" file fails fast instead of eating memory.

use saphyr_parser::{Event, Parser, ScalarStyle};

/// The largest buildspec read.
pub const MAX_BYTES: usize = 1 << 20;
/// The most nodes a document may have once aliases are expanded.
pub const MAX_NODES: usize = 100_000;
const MAX_DEPTH: usize = 64;

/// A position: line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A scalar, and whether it was written plain (unquoted).
    Str(String, bool),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Str(..) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s, _) => Some(s),
            _ => None,
        }
    }

    fn count(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::count).sum(),
            Value::Map(pairs) => pairs.iter().map(|(k, v)| k.count() + v.count()).sum(),
            _ => 0,
        }
    }
}

/// A parse error at a position.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

enum Frame {
    Seq(Vec<Node>, Pos, usize),
    Map(Vec<(Node, Node)>, Option<Node>, Pos, usize),
}

/// Parses the first document of `text`.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > MAX_BYTES {
        return Err(YamlError {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "the file is {} bytes; at most {MAX_BYTES} are read",
                text.len()
            ),
        });
    }
    let mut anchors: std::collections::HashMap<usize, Node> = Default::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut nodes = 0usize;
    let mut root: Option<Node> = None;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| YamlError {
            pos: Pos {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        let pos = Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        };
        let finished: Option<(Node, usize)> = match event {
            Event::Scalar(value, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain;
                let v = if plain && matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL") {
                    Value::Null
                } else {
                    Value::Str(value.into_owned(), plain)
                };
                let node = Node { value: v, pos };
                // CloudFormation's short forms (`!Ref X`, `!Sub "…"`) become
                // their long forms (`{Ref: X}`, `{Fn::Sub: "…"}`), so a
                // reader sees an intrinsic instead of a plain string.
                let node = match tag {
                    Some(t) if t.handle == "!" && !t.suffix.is_empty() => {
                        let name = if t.suffix == "Ref" || t.suffix == "Condition" {
                            t.suffix.clone()
                        } else {
                            format!("Fn::{}", t.suffix)
                        };
                        let key = Node {
                            value: Value::Str(name, false),
                            pos,
                        };
                        Node {
                            value: Value::Map(vec![(key, node)]),
                            pos,
                        }
                    }
                    _ => node,
                };
                Some((node, anchor))
            }
            Event::Alias(id) => {
                let node = anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    pos,
                    message: "an alias to an unknown anchor".into(),
                })?;
                nodes += node.count();
                if nodes > MAX_NODES {
                    return Err(YamlError {
                        pos,
                        message: format!(
                            "aliases expand this document past {MAX_NODES} nodes; refusing it (a YAML bomb?)"
                        ),
                    });
                }
                Some((Node { pos, ..node }, 0))
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: format!("nested deeper than {MAX_DEPTH} levels"),
                    });
                }
                stack.push(Frame::Seq(Vec::new(), pos, anchor));
                None
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(YamlError {
                        pos,
                        message: format!("nested deeper than {MAX_DEPTH} levels"),
                    });
                }
                stack.push(Frame::Map(Vec::new(), None, pos, anchor));
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, p, anchor)) => Some((
                    Node {
                        value: Value::Seq(items),
                        pos: p,
                    },
                    anchor,
                )),
                _ => None,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(pairs, _, p, anchor)) => Some((
                    Node {
                        value: Value::Map(pairs),
                        pos: p,
                    },
                    anchor,
                )),
                _ => None,
            },
            Event::DocumentEnd => {
                if root.is_some() {
                    break;
                }
                None
            }
            _ => None,
        };
        let Some((node, anchor)) = finished else {
            continue;
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(YamlError {
                pos,
                message: format!("the document has more than {MAX_NODES} nodes"),
            });
        }
        if anchor > 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq(items, ..)) => items.push(node),
            Some(Frame::Map(pairs, pending, ..)) => match pending.take() {
                None => {
                    if let Some(dup) = pairs.iter().find(|(k, _)| k.value == node.value) {
                        return Err(YamlError {
                            pos: node.pos,
                            message: format!(
                                "duplicate key {} (first at line {})",
                                node.as_str().unwrap_or("?"),
                                dup.0.pos.line
                            ),
                        });
                    }
                    *pending = Some(node);
                }
                Some(key) => pairs.push((key, node)),
            },
        }
    }
    Ok(root.unwrap_or(Node {
        value: Value::Null,
        pos: Pos { line: 1, col: 1 },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let doc = parse("a:\n  b: [1, two]\n").unwrap();
        let Value::Map(pairs) = &doc.value else {
            panic!()
        };
        assert_eq!(pairs[0].0.pos, Pos { line: 1, col: 1 });
        let Value::Map(inner) = &pairs[0].1.value else {
            panic!()
        };
        assert_eq!(inner[0].1.pos, Pos { line: 2, col: 6 });
    }

    #[test]
    fn bombs_and_duplicates_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        for w in names.windows(2) {
            let (prev, cur) = (w[0], w[1]);
            let refs = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!("{cur}: &{cur} [{refs}]\n"));
        }
        let t = std::time::Instant::now();
        let err = parse(&bomb).unwrap_err();
        assert!(err.message.contains("YAML bomb"), "{err:?}");
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, col: 1 });
        assert!(parse("a: [\n").is_err());
    }
}
