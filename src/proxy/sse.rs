//! Server-sent events: an incremental parser that takes bytes as the network delivers
//! them, in chunks split anywhere, and a writer. The parser follows the WHATWG event
//! stream rules (lines end in `\r\n`, `\n` or `\r`; `:` starts a comment; one leading
//! space is stripped from a value; `data` lines join with `\n`; a leading BOM is
//! dropped), with one leniency for upstreams: [`Parser::finish`] delivers a last
//! event that lacks its closing blank line.

use std::fmt;

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `None` is the default type, `message`.
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

impl Event {
    pub fn data(data: impl Into<String>) -> Event {
        Event {
            data: data.into(),
            ..Event::default()
        }
    }

    pub fn named(event: impl Into<String>, data: impl Into<String>) -> Event {
        Event {
            event: Some(event.into()),
            data: data.into(),
            ..Event::default()
        }
    }
}

/// A line longer than the parser's limit: an upstream that never ends a line would
/// otherwise grow the buffer without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    pub limit: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an event stream line or event is longer than {} bytes",
            self.limit
        )
    }
}

impl std::error::Error for TooLong {}

/// 16 MiB: far above any real chunk, well below what would hurt the process.
pub const DEFAULT_LIMIT: usize = 16 << 20;

#[derive(Debug, Clone)]
pub struct Parser {
    /// the bytes of the line being read, without its end
    line: Vec<u8>,
    /// the last byte seen was `\r`: a `\n` right after it ends nothing more
    after_cr: bool,
    /// no line has ended yet (a BOM is stripped from the first only)
    first_line: bool,
    event: Option<String>,
    data: String,
    /// whether a `data` field was seen, so that `data:` alone dispatches an empty event
    has_data: bool,
    id: Option<String>,
    retry: Option<u64>,
    limit: usize,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser::new()
    }
}

impl Parser {
    pub fn new() -> Parser {
        Parser::with_limit(DEFAULT_LIMIT)
    }

    /// `limit` bounds a line and an event's data, in bytes.
    pub fn with_limit(limit: usize) -> Parser {
        Parser {
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            retry: None,
            limit,
        }
    }

    /// Reads `bytes`, appending each event completed by them to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), TooLong> {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(at) => {
                    self.extend_line(&rest[..at])?;
                    self.after_cr = rest[at] == b'\r';
                    rest = &rest[at + 1..];
                    self.end_line(out)?;
                }
                None => {
                    self.extend_line(rest)?;
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    /// The end of the stream: a line and an event left unterminated are delivered.
    pub fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), TooLong> {
        if !self.line.is_empty() {
            self.end_line(out)?;
        }
        self.dispatch(out);
        self.after_cr = false;
        Ok(())
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), TooLong> {
        if self.line.len() + bytes.len() > self.limit {
            return Err(TooLong { limit: self.limit });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<Event>) -> Result<(), TooLong> {
        let mut line = std::mem::take(&mut self.line);
        if std::mem::replace(&mut self.first_line, false) && line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        let result = self.field(&line, out);
        // keep the allocation for the next line
        line.clear();
        self.line = line;
        result
    }

    fn field(&mut self, line: &[u8], out: &mut Vec<Event>) -> Result<(), TooLong> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(at) => {
                let v = &line[at + 1..];
                (&line[..at], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match name {
            b"event" => self.event = Some(value.into_owned()),
            b"data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(TooLong { limit: self.limit });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            _ => {}
        }
        Ok(())
    }

    /// A blank line: the event read so far, if it has data (the standard drops an
    /// event without any, and resets its type).
    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let event = self.event.take();
        let retry = self.retry.take();
        if !std::mem::replace(&mut self.has_data, false) {
            return;
        }
        out.push(Event {
            event,
            data: std::mem::take(&mut self.data),
            // the last event id persists across events, as the standard says
            id: self.id.clone(),
            retry,
        });
    }
}

/// Parses a whole stream at once.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Event>, TooLong> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    p.push(bytes, &mut out)?;
    p.finish(&mut out)?;
    Ok(out)
}

/// Appends one event: its name if any, its data one `data:` line per line (so that a
/// newline in the data cannot end the event early), and the blank line.
pub fn write_event(out: &mut Vec<u8>, event: Option<&str>, data: &str) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(one_line(name).as_bytes());
        out.push(b'\n');
    }
    for line in split_lines(data) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// OpenAI's end of stream.
pub fn write_done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

/// A comment line, which clients ignore: keeps an idle connection open.
pub fn write_comment(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b": ");
    out.extend_from_slice(one_line(text).as_bytes());
    out.extend_from_slice(b"\n\n");
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// Lines as the parser will split them: `\r\n`, `\n` and `\r` all end one.
fn split_lines(data: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\r', '\n']) {
            Some(at) => {
                let skip = if s[at..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[at + skip..]);
                Some(&s[..at])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_comments_and_line_ends() {
        let events = parse_all(
            b"\xEF\xBB\xBF: hello\r\nevent: a\r\ndata: one\r\ndata:two\r\n\r\nid: 7\rdata\r\rretry: 10\nevent:b\ndata:  x\n\n",
        )
        .unwrap();
        assert_eq!(
            events,
            vec![
                Event::named("a", "one\ntwo"),
                Event {
                    id: Some("7".into()),
                    ..Event::data("")
                },
                Event {
                    id: Some("7".into()),
                    retry: Some(10),
                    ..Event::named("b", " x")
                },
            ]
        );
    }

    #[test]
    fn an_event_without_data_is_dropped_and_its_type_reset() {
        assert_eq!(
            parse_all(b"event: x\n\ndata: y\n\n").unwrap(),
            vec![Event::data("y")]
        );
    }

    #[test]
    fn the_last_event_needs_no_blank_line() {
        assert_eq!(
            parse_all(b"data: a\n\ndata: b").unwrap(),
            vec![Event::data("a"), Event::data("b")]
        );
        assert_eq!(parse_all(b"data: b\r").unwrap(), vec![Event::data("b")]);
    }

    #[test]
    fn a_crlf_split_between_chunks_ends_one_line() {
        let mut p = Parser::new();
        let mut out = Vec::new();
        p.push(b"data: a\r", &mut out).unwrap();
        p.push(b"\ndata: b\r", &mut out).unwrap();
        p.push(b"\n\r", &mut out).unwrap();
        p.push(b"\n", &mut out).unwrap();
        assert_eq!(out, vec![Event::data("a\nb")]);
    }

    #[test]
    fn a_line_past_the_limit_is_an_error() {
        let mut p = Parser::with_limit(8);
        let mut out = Vec::new();
        assert!(p.push(b"data: 12", &mut out).is_ok());
        assert_eq!(p.push(b"3", &mut out), Err(TooLong { limit: 8 }));
    }

    #[test]
    fn the_writer_round_trips() {
        let mut out = Vec::new();
        write_event(&mut out, Some("message_start"), "{\"a\":1}");
        write_event(&mut out, None, "two\nlines\r\nand\rmore");
        write_comment(&mut out, "keep\nalive");
        write_done(&mut out);
        assert_eq!(
            parse_all(&out).unwrap(),
            vec![
                Event::named("message_start", "{\"a\":1}"),
                Event::data("two\nlines\nand\nmore"),
                Event::data("[DONE]"),
            ]
        );
    }
}
