//! The time-to-first-streamed-byte client of the proxy's benchmark
//! (`benches/proxy.sh`): it sends streamed OpenAI chat completions one at a time over
//! one keep-alive HTTP/1.1 connection and times each from the moment its request is
//! written to the moment the first `data:` bytes of the answer's body arrive. It then
//! reads the rest of the answer (chunked or with a length) so that the connection can
//! carry the next request. `oha` times whole answers only, hence this client.
//!
//! Plain `std::net::TcpStream` with `TCP_NODELAY`, blocking reads, no runtime: the
//! client's own overhead is a `write` and a few `read`s per request, the same for the
//! upstream called directly and for the proxy in front of it.
//!
//! ```text
//! cargo run --release --example first_byte -- --addr 127.0.0.1:PORT [-n 5000] [--warmup 200]
//! ```
//!
//! Prints one line, `requests=N p50_us=N p99_us=N mean_us=N max_us=N`; exits 1 on
//! anything but a streamed 200, 2 on bad arguments.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const PATH: &str = "/v1/chat/completions";
const BODY: &str = r#"{"model":"auto","messages":[{"role":"user","content":"Say hello."}],"max_tokens":50,"stream":true}"#;
/// What marks the first event of the answer's body.
const FIRST_EVENT: &[u8] = b"data:";
/// A request that takes longer than this is an error, not a measurement.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest answer head read before giving up on the server.
const MAX_HEAD: usize = 64 << 10;

struct Args {
    addr: SocketAddr,
    requests: usize,
    warmup: usize,
}

fn usage() -> ExitCode {
    eprintln!("usage: first_byte --addr HOST:PORT [-n REQUESTS] [--warmup REQUESTS]");
    ExitCode::from(2)
}

fn parse_args() -> Option<Args> {
    let mut addr = None;
    let mut requests = 5000;
    let mut warmup = 200;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next()?;
        match arg.as_str() {
            "--addr" => addr = Some(value.parse().ok()?),
            "-n" => requests = value.parse().ok()?,
            "--warmup" => warmup = value.parse().ok()?,
            _ => return None,
        }
    }
    let requests = (requests > 0).then_some(requests)?;
    Some(Args {
        addr: addr?,
        requests,
        warmup,
    })
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        return usage();
    };
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("first_byte: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    let mut conn = Conn::open(args.addr)?;
    let request = format!(
        "POST {PATH} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {}\r\n\r\n{BODY}",
        args.addr,
        BODY.len()
    );
    for _ in 0..args.warmup {
        conn.first_byte(request.as_bytes())?;
    }
    let mut times = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        times.push(conn.first_byte(request.as_bytes())?);
    }
    times.sort_unstable();
    let us = |d: Duration| d.as_micros();
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    Ok(format!(
        "requests={} p50_us={} p99_us={} mean_us={} max_us={}",
        times.len(),
        us(percentile(&times, 50)),
        us(percentile(&times, 99)),
        us(mean),
        us(times[times.len() - 1]),
    ))
}

/// The nearest-rank percentile of sorted, non-empty `times`.
fn percentile(times: &[Duration], p: usize) -> Duration {
    let rank = (times.len() * p).div_ceil(100).max(1);
    times[rank - 1]
}

/// One keep-alive connection and the bytes read past the last answer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// How the answer's body is delimited.
enum Framing {
    Chunked,
    Length(usize),
}

impl Conn {
    fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect to `{addr}`: {e}"))?;
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(READ_TIMEOUT)))
            .map_err(|e| format!("socket options: {e}"))?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 << 10),
        })
    }

    /// Sends one request; the time until its first event, after reading it whole.
    fn first_byte(&mut self, request: &[u8]) -> Result<Duration, String> {
        let sent = Instant::now();
        self.stream
            .write_all(request)
            .map_err(|e| format!("write: {e}"))?;
        let head_end = loop {
            self.fill()?;
            if let Some(at) = find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err("an answer head larger than 64 KiB".into());
            }
        };
        let framing = read_head(&self.buf[..head_end])?;
        let mut elapsed = None;
        while elapsed.is_none() {
            if find(&self.buf[head_end..], FIRST_EVENT).is_some() {
                elapsed = Some(sent.elapsed());
            } else {
                self.fill()?;
            }
        }
        let end = self.drain(head_end, framing)?;
        self.buf.drain(..end);
        elapsed.ok_or_else(|| "no first event".to_string())
    }

    /// Reads what the socket has into the buffer; the end of the stream is an error.
    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16 << 10];
        let n = self
            .stream
            .read(&mut chunk)
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection mid-answer".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads the rest of the body, so that the next request finds the connection
    /// clean; where the answer ends in the buffer.
    fn drain(&mut self, body_start: usize, framing: Framing) -> Result<usize, String> {
        match framing {
            Framing::Length(n) => {
                while self.buf.len() < body_start + n {
                    self.fill()?;
                }
                Ok(body_start + n)
            }
            Framing::Chunked => {
                let mut at = body_start;
                loop {
                    let line_end = loop {
                        if let Some(i) = find(&self.buf[at..], b"\r\n") {
                            break at + i;
                        }
                        self.fill()?;
                    };
                    let size = chunk_size(&self.buf[at..line_end])?;
                    // the chunk, its CRLF; the last (empty) chunk has only the CRLF
                    let next = line_end + 2 + size + 2;
                    while self.buf.len() < next {
                        self.fill()?;
                    }
                    if size == 0 {
                        return Ok(next);
                    }
                    at = next;
                }
            }
        }
    }
}

/// The status must be 200 and the body an event stream; returns its framing.
fn read_head(head: &[u8]) -> Result<Framing, String> {
    let text = std::str::from_utf8(head).map_err(|_| "an answer head that is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("200") {
        return Err(format!("the server answered `{status}`"));
    }
    let mut framing = None;
    let mut event_stream = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            framing = Some(Framing::Chunked);
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| format!("a content-length of `{value}`"))?;
            framing = framing.or(Some(Framing::Length(n)));
        } else if name.eq_ignore_ascii_case("content-type") {
            event_stream = value.starts_with("text/event-stream");
        }
    }
    if !event_stream {
        return Err("the answer is not an event stream".into());
    }
    framing.ok_or_else(|| "an answer without a length that is not chunked".into())
}

fn chunk_size(line: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(line).map_err(|_| "a chunk size that is not UTF-8")?;
    let hex = text.split(';').next().unwrap_or_default().trim();
    usize::from_str_radix(hex, 16).map_err(|_| format!("a chunk size of `{hex}`"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
