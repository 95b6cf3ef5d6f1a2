//! YAML text → spanned [`Node`] trees, one per document, built from saphyr-parser's event
//! stream with an explicit stack (no recursion), duplicate-key detection, `<<` merge
//! keys, and hard limits on nesting depth and alias expansion.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle};

use super::node::{Kind, Node, Scalar, Style};
use super::scalar_map::offset_map;
use crate::diag::{Code, Diagnostic};
use crate::source::{FileId, Span};

/// Deepest nesting of collections accepted.
pub const MAX_DEPTH: usize = 64;
/// Most nodes that aliases may expand into, per file.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Converts saphyr's character indices to byte offsets.
struct CharIndex {
    /// (char index of a multi-byte char, extra bytes up to and including it)
    wide: Vec<(usize, usize)>,
}

impl CharIndex {
    fn new(text: &str) -> CharIndex {
        let mut wide = Vec::new();
        if !text.is_ascii() {
            let mut extra = 0;
            for (ci, ch) in text.chars().enumerate() {
                if ch.len_utf8() > 1 {
                    extra += ch.len_utf8() - 1;
                    wide.push((ci, extra));
                }
            }
        }
        CharIndex { wide }
    }

    fn byte(&self, m: &Marker) -> usize {
        let ci = m.index();
        let before = self.wide.partition_point(|(c, _)| *c < ci);
        ci + if before == 0 {
            0
        } else {
            self.wide[before - 1].1
        }
    }
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    file: FileId,
    text: &'a str,
    chars: CharIndex,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    alias_nodes: usize,
    docs: Vec<Node>,
    diags: Vec<Diagnostic>,
}

/// Parses every document of a file. On a syntax error the file yields no documents.
pub fn parse(file: FileId, text: &str) -> (Vec<Node>, Vec<Diagnostic>) {
    let mut b = Builder {
        file,
        text,
        chars: CharIndex::new(text),
        stack: Vec::new(),
        anchors: HashMap::new(),
        alias_nodes: 0,
        docs: Vec::new(),
        diags: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        match next {
            Ok((event, span)) => {
                let start = b.chars.byte(&span.start);
                let end = b.chars.byte(&span.end);
                if let Err(d) = b.event(event, start, end) {
                    return (Vec::new(), vec![d]);
                }
            }
            Err(e) => {
                let at = b.chars.byte(e.marker()).min(text.len());
                return (Vec::new(), vec![syntax_error(file, text, at, e.info())]);
            }
        }
    }
    (b.docs, b.diags)
}

fn syntax_error(file: FileId, text: &str, at: usize, info: &str) -> Diagnostic {
    let end = next_boundary(text, at);
    if info.contains("recursion limit") {
        return Diagnostic::new(
            Code::TooComplex,
            Span::new(file, at..end),
            "the document nests too deeply",
        )
        .primary_label(info.to_string())
        .help("policies need only a few levels; flatten the structure");
    }
    // the parser's own position for a tab is often the end of the line before, and its
    // wording ("while scanning a plain scalar") describes its state, not the mistake:
    // the tab alone is the diagnostic
    if let Some(tab) = indentation_tab_near(text, at) {
        return Diagnostic::new(
            Code::YamlSyntax,
            Span::new(file, tab..tab + 1),
            "invalid YAML: a tab in the indentation",
        )
        .primary_label("a tab character")
        .help("YAML does not allow tabs for indentation: indent with spaces");
    }
    Diagnostic::new(Code::YamlSyntax, Span::new(file, at..end), "invalid YAML")
        .primary_label(info.to_string())
}

/// A tab in the leading whitespace of the error's line or a neighbouring one: the
/// parser often notices a tab-indented line only at the line before or after it.
fn indentation_tab_near(text: &str, at: usize) -> Option<usize> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let prev_start = text[..line_start.saturating_sub(1)]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let next_end = text[at..]
        .match_indices('\n')
        .nth(1)
        .map_or(text.len(), |(i, _)| at + i);
    let mut offset = prev_start;
    for line in text[prev_start..next_end].split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if let Some(i) = line[..indent].find('\t') {
            return Some(offset + i);
        }
        offset += line.len();
    }
    None
}

fn next_boundary(text: &str, at: usize) -> usize {
    let mut end = (at + 1).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    end
}

impl Builder<'_> {
    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start..end)
    }

    fn too_complex(&self, at: usize, message: &str, help: &str) -> Diagnostic {
        let end = next_boundary(self.text, at);
        Diagnostic::new(Code::TooComplex, self.span(at, end), message.to_string()).help(help)
    }

    fn event(&mut self, event: Event<'_>, start: usize, end: usize) -> Result<(), Diagnostic> {
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                // `!!str 5` is a string: treat it like a quoted scalar
                let style = match tag {
                    Some(tag) if tag.suffix == "str" && style == Style::Plain => {
                        Style::SingleQuoted
                    }
                    _ => style,
                };
                let end = end.min(self.text.len()).max(start);
                let raw = self.text.get(start..end).unwrap_or("");
                let offsets = offset_map(raw, &value, style);
                let node = Node {
                    kind: Kind::Scalar(Scalar {
                        value: value.into_owned(),
                        style,
                        offsets,
                    }),
                    span: self.span(start, end),
                };
                self.complete(node, anchor, 1)
            }
            Event::SequenceStart(anchor, _) => self.open(
                Frame::Seq {
                    start,
                    anchor,
                    items: Vec::new(),
                },
                start,
            ),
            Event::MappingStart(anchor, _) => self.open(
                Frame::Map {
                    start,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                },
                start,
            ),
            Event::SequenceEnd | Event::MappingEnd => self.close(end),
            Event::Alias(id) => {
                let Some((node, size)) = self.anchors.get(&id).cloned() else {
                    return Err(self.too_complex(
                        start,
                        "alias to an unknown anchor",
                        "define the anchor (`&name`) before its alias (`*name`)",
                    ));
                };
                self.alias_nodes += size;
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(self.too_complex(
                        start,
                        &format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                        "this looks like an alias bomb; write the values out or use fewer nested aliases",
                    ));
                }
                let node = Node {
                    span: self.span(start, end.max(start)),
                    ..node
                };
                self.complete(node, 0, size)
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => Ok(()),
            Event::DocumentStart(_) => Ok(()),
        }
    }

    fn open(&mut self, frame: Frame, start: usize) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.too_complex(
                start,
                &format!("the document nests deeper than {MAX_DEPTH} levels"),
                "policies need only a few levels; flatten the structure",
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self, end: usize) -> Result<(), Diagnostic> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let (node, anchor) = match frame {
            Frame::Seq {
                start,
                anchor,
                items,
            } => {
                let last = items.last().map_or(end, |n| n.span.end as usize);
                let end = if self.text.as_bytes().get(start) == Some(&b'[') {
                    end
                } else {
                    last
                };
                (
                    Node {
                        kind: Kind::Seq(items),
                        span: self.span(start, end.max(start)),
                    },
                    anchor,
                )
            }
            Frame::Map {
                start,
                anchor,
                entries,
                ..
            } => {
                let last = entries.last().map_or(end, |(_, v)| v.span.end as usize);
                let end = if self.text.as_bytes().get(start) == Some(&b'{') {
                    end
                } else {
                    last
                };
                let entries = self.merge_keys(entries);
                self.check_duplicates(&entries);
                (
                    Node {
                        kind: Kind::Map(entries),
                        span: self.span(start, end.max(start)),
                    },
                    anchor,
                )
            }
        };
        let size = count(&node);
        self.complete(node, anchor, size)
    }

    /// Expands `<<: *base` (or a list of them): entries written in the mapping win.
    fn merge_keys(&mut self, entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
        if !entries.iter().any(|(k, _)| is_merge_key(k)) {
            return entries;
        }
        let mut own = Vec::new();
        let mut merged = Vec::new();
        for (key, value) in entries {
            if !is_merge_key(&key) {
                own.push((key, value));
                continue;
            }
            let sources: Vec<Node> = match value.kind {
                Kind::Seq(items) => items,
                _ => vec![value],
            };
            for source in sources {
                match source.kind {
                    Kind::Map(inner) => merged.extend(inner),
                    _ => self.diags.push(
                        Diagnostic::new(
                            Code::WrongType,
                            source.span,
                            "a merge key `<<` needs a mapping",
                        )
                        .primary_label(format!("found {}", source.describe())),
                    ),
                }
            }
        }
        for (key, value) in merged {
            let taken = own
                .iter()
                .any(|(k, _)| k.text().is_some() && k.text() == key.text());
            if !taken {
                own.push((key, value));
            }
        }
        own
    }

    fn check_duplicates(&mut self, entries: &[(Node, Node)]) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for (key, _) in entries {
            let Some(text) = key.text() else { continue };
            if let Some(first) = seen.get(text) {
                self.diags.push(
                    Diagnostic::new(
                        Code::DuplicateKey,
                        key.span,
                        format!("duplicate key `{text}`"),
                    )
                    .primary_label("written again here")
                    .label(*first, "first written here")
                    .help("remove one of the two entries"),
                );
            } else {
                seen.insert(text, key.span);
            }
        }
    }

    fn complete(&mut self, node: Node, anchor: usize, size: usize) -> Result<(), Diagnostic> {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

fn is_merge_key(key: &Node) -> bool {
    key.as_scalar()
        .is_some_and(|s| s.value == "<<" && !s.is_quoted())
}

fn count(node: &Node) -> usize {
    match &node.kind {
        Kind::Scalar(_) => 1,
        Kind::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Kind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count(k) + count(v))
                .sum::<usize>()
        }
    }
}
