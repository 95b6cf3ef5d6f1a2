//! The spanned YAML tree: every key and value knows its file and byte span, and a scalar
//! can map a byte range of its *value* back to the characters in the source.

use std::sync::Arc;

use crate::source::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// How value bytes map to source bytes (relative to the scalar's span start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetMap {
    /// value byte `i` is source byte `shift + i`
    Shifted(u32),
    /// one entry per value byte, plus one for the end
    Table(Arc<[u32]>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub value: String,
    pub style: Style,
    pub offsets: OffsetMap,
}

impl Scalar {
    pub fn is_quoted(&self) -> bool {
        !matches!(self.style, Style::Plain)
    }

    /// YAML null: an empty plain scalar, `~` or `null`.
    pub fn is_null(&self) -> bool {
        self.style == Style::Plain
            && matches!(self.value.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }

    fn source_offset(&self, value_offset: usize) -> usize {
        match &self.offsets {
            OffsetMap::Shifted(shift) => *shift as usize + value_offset,
            OffsetMap::Table(table) => {
                let last = table.len().saturating_sub(1);
                table.get(value_offset.min(last)).copied().unwrap_or(0) as usize
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

impl Node {
    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a scalar (any style), or `None` for collections.
    pub fn text(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.value.as_str())
    }

    pub fn is_null(&self) -> bool {
        self.as_scalar().is_some_and(Scalar::is_null)
    }

    /// A name for the node's shape, for messages: "a string", "a list", ...
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Map(_) => "a mapping",
            Kind::Seq(_) => "a list",
            Kind::Scalar(s) if s.is_null() => "nothing (null)",
            Kind::Scalar(s) if s.is_quoted() => "a string",
            Kind::Scalar(s) => match s.value.as_str() {
                "true" | "false" | "True" | "False" | "TRUE" | "FALSE" => "a boolean",
                v if v.parse::<f64>().is_ok() => "a number",
                _ => "a string",
            },
        }
    }

    /// The source span of a byte range of this scalar's value: how diagnostics point
    /// at characters inside a quoted `if:` condition.
    pub fn value_span(&self, range: std::ops::Range<usize>) -> Span {
        match &self.kind {
            Kind::Scalar(s) => {
                let start = s.source_offset(range.start);
                // the end is where the next character's source begins: an escape such
                // as `\"` ending the range is covered whole
                let end = if range.end > range.start {
                    s.source_offset(range.end)
                } else {
                    start
                };
                let end = end.max(start);
                Span::new(
                    self.span.file,
                    self.span.start as usize + start..self.span.start as usize + end,
                )
                .clamp_to(self.span)
            }
            _ => self.span,
        }
    }
}
