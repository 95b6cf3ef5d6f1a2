//! Maps the bytes of a decoded scalar back to its source text, across quotes, `''`,
//! backslash escapes and line folding, so that an error inside an `if:` condition
//! points at the right column even when the condition is quoted.

use std::sync::Arc;

use super::node::{OffsetMap, Style};

/// How far ahead to look for a character that folding or escaping moved.
const RESYNC_WINDOW: usize = 256;

/// Builds the offset map of a scalar whose source text is `raw` and decoded text `value`.
pub fn offset_map(raw: &str, value: &str, style: Style) -> OffsetMap {
    let open = match style {
        Style::SingleQuoted | Style::DoubleQuoted if !raw.is_empty() => 1,
        _ => 0,
    };
    if raw.get(open..open + value.len()) == Some(value) {
        let escaped = match style {
            Style::SingleQuoted => value.contains('\''),
            Style::DoubleQuoted => value.contains('\\'),
            _ => false,
        };
        if !escaped {
            return OffsetMap::Shifted(open as u32);
        }
    }
    OffsetMap::Table(align(raw, value, style, open))
}

fn align(raw: &str, value: &str, style: Style, open: usize) -> Arc<[u32]> {
    let bytes = raw.as_bytes();
    let mut table: Vec<u32> = Vec::with_capacity(value.len() + 1);
    let mut pos = open;
    for ch in value.chars() {
        let len = ch.len_utf8();
        // a backslash-newline continuation in a double-quoted scalar yields no character
        while style == Style::DoubleQuoted
            && bytes.get(pos) == Some(&b'\\')
            && matches!(bytes.get(pos + 1), Some(b'\n' | b'\r'))
        {
            pos += 2;
            while matches!(bytes.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                pos += 1;
            }
        }
        if style == Style::DoubleQuoted && bytes.get(pos) == Some(&b'\\') {
            table.extend(std::iter::repeat_n(pos as u32, len));
            pos += escape_len(&bytes[pos..]);
            continue;
        }
        if style == Style::SingleQuoted && ch == '\'' && raw[pos.min(raw.len())..].starts_with("''")
        {
            table.extend(std::iter::repeat_n(pos as u32, len));
            pos += 2;
            continue;
        }
        let rest = raw.get(pos..).unwrap_or("");
        let window_end = floor_boundary(rest, RESYNC_WINDOW);
        match rest[..window_end].find(ch) {
            Some(k) => {
                table.extend((0..len).map(|i| (pos + k + i) as u32));
                pos += k + len;
            }
            None => table.extend(std::iter::repeat_n(pos as u32, len)),
        }
    }
    table.push(pos as u32);
    table.into()
}

fn floor_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Length in bytes of the escape sequence at the start of `s` (which begins with `\`).
fn escape_len(s: &[u8]) -> usize {
    match s.get(1) {
        Some(b'x') => 4,
        Some(b'u') => 6,
        Some(b'U') => 10,
        Some(_) => 2,
        None => 1,
    }
    .min(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(raw: &str, value: &str, style: Style) -> Vec<usize> {
        let m = offset_map(raw, value, style);
        (0..=value.len())
            .map(|i| match &m {
                OffsetMap::Shifted(s) => *s as usize + i,
                OffsetMap::Table(t) => t[i] as usize,
            })
            .collect()
    }

    #[test]
    fn plain_and_simple_quotes_are_shifted() {
        assert_eq!(
            offset_map("a == b", "a == b", Style::Plain),
            OffsetMap::Shifted(0)
        );
        assert_eq!(
            offset_map("\"a == b\"", "a == b", Style::DoubleQuoted),
            OffsetMap::Shifted(1)
        );
    }

    #[test]
    fn escapes_keep_later_columns_exact() {
        // value: x == "y"  written as "x == \"y\""
        let raw = r#""x == \"y\"""#;
        let m = map(raw, "x == \"y\"", Style::DoubleQuoted);
        assert_eq!(m[5], 6); // the escaped quote starts at the backslash
        assert_eq!(m[6], 8); // `y`
        let raw = "'it''s x'";
        let m = map(raw, "it's x", Style::SingleQuoted);
        assert_eq!(m[5], 7); // `x`
    }
}
