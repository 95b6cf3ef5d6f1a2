//! Talking to a real `rulec serve` over TCP, with the standard library only: a
//! minimal HTTP/1.1 client ([`request`], [`get`], [`post_json`], keep-alive [`Conn`],
//! [`raw`]), the server under test as a child process ([`Served`]), a fake upstream
//! provider that logs what it receives ([`FakeProvider`]), and [`eventually`] for
//! conditions that settle asynchronously.
//!
//! Everything here talks to 127.0.0.1 only, and every socket has 10 s read and write
//! timeouts, so a hung server fails a test instead of hanging it.

#![allow(
    dead_code,
    reason = "shared helpers: not every test module uses every one of them"
)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::root;

/// The read and write timeout of every socket opened here.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Served`] waits for the server to start, or to refuse to.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The proxy every [`Served`] server is given for destinations off loopback: port 1
/// of loopback, where nothing listens, so such calls fail at once.
pub const NOWHERE_PROXY: &str = "http://127.0.0.1:1";

/// The largest request or response head (start line plus headers) accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One HTTP response, body fully read (chunked bodies already decoded).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the status and body text if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body:\n{}",
                self.status,
                self.text()
            )
        })
    }
}

/// One request on a fresh connection to `127.0.0.1:port`, closed afterwards. Sends
/// `Host`, `Content-Length` (unless `headers` has them) and `Connection: close`.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut reader = connect(port)?;
    let bytes = encode_request(port, method, path, headers, body, true);
    reader.get_mut().write_all(&bytes)?;
    reader.get_mut().flush()?;
    read_response(&mut reader, method).map(|(response, _)| response)
}

/// `GET path`; panics with context on an I/O error.
pub fn get(port: u16, path: &str) -> Response {
    request(port, "GET", path, &[], b"")
        .unwrap_or_else(|e| panic!("GET {path} on 127.0.0.1:{port}: {e}"))
}

/// `POST path` with `body` as JSON; panics with context on an I/O error.
pub fn post_json(port: u16, path: &str, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).expect("a JSON value serialises");
    request(
        port,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &bytes,
    )
    .unwrap_or_else(|e| panic!("POST {path} on 127.0.0.1:{port}: {e}"))
}

/// Writes `bytes` as they are (for malformed requests), half-closes the connection and
/// returns everything the server sent until it closed.
pub fn raw(port: u16, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut reader = connect(port)?;
    reader.get_mut().write_all(bytes)?;
    reader.get_mut().shutdown(Shutdown::Write)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    Ok(out)
}

/// A keep-alive connection for load tests: requests reuse one TCP connection, which is
/// reopened transparently when the server closed it between requests.
pub struct Conn {
    port: u16,
    stream: Option<BufReader<TcpStream>>,
    opened: usize,
}

impl Conn {
    /// Connects to `127.0.0.1:port`.
    pub fn open(port: u16) -> io::Result<Conn> {
        let stream = connect(port)?;
        Ok(Conn {
            port,
            stream: Some(stream),
            opened: 1,
        })
    }

    /// How many TCP connections this `Conn` has opened so far (1 while keep-alive holds).
    pub fn connections(&self) -> usize {
        self.opened
    }

    /// One request on the kept-alive connection. If the server had closed it (the
    /// request could not be written, or the connection ended before any byte of the
    /// response), reconnects and sends the request again, once.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let bytes = encode_request(self.port, method, path, headers, body, false);
        for attempt in 0..2 {
            let last = attempt == 1;
            if self.stream.is_none() {
                self.stream = Some(connect(self.port)?);
                self.opened += 1;
            }
            let reader = self.stream.as_mut().expect("connected above");
            let written = reader
                .get_mut()
                .write_all(&bytes)
                .and_then(|()| reader.get_mut().flush());
            if let Err(e) = written {
                self.stream = None;
                if is_closed(&e) && !last {
                    continue;
                }
                return Err(e);
            }
            match reader.fill_buf() {
                Ok([]) => {
                    self.stream = None;
                    if last {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection without answering",
                        ));
                    }
                    continue;
                }
                Err(e) => {
                    self.stream = None;
                    if is_closed(&e) && !last {
                        continue;
                    }
                    return Err(e);
                }
                Ok(_) => {}
            }
            return match read_response(reader, method) {
                Ok((response, close)) => {
                    if close {
                        self.stream = None;
                    }
                    Ok(response)
                }
                Err(e) => {
                    self.stream = None;
                    Err(e)
                }
            };
        }
        unreachable!("the second attempt always returns")
    }
}

/// `rulec serve` running as a child process, with its stderr collected.
pub struct Served {
    pub port: u16,
    pid: u32,
    child: Mutex<Child>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Served {
    /// Runs `rulec serve <args...>` (plus `--listen 127.0.0.1:0` unless `args` has
    /// `--listen`) from the repository root and waits, up to 30 s, for its
    /// `listening on http://127.0.0.1:PORT` line on stdout. Panics with the collected
    /// output if the line does not come.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Served {
        let mut child = serve_command(args, envs)
            .spawn()
            .expect("the rulec binary runs");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr_thread = collect(child.stderr.take().expect("piped"), stderr.clone(), None);
        let (lines, ready) = mpsc::channel();
        let stdout_thread = collect(
            child.stdout.take().expect("piped"),
            stdout.clone(),
            Some(lines),
        );

        let deadline = Instant::now() + START_TIMEOUT;
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let why = match ready.recv_timeout(left) {
                Ok(line) => match listening_port(&line) {
                    Some(port) => break port,
                    None => continue,
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    "did not print `listening on http://127.0.0.1:PORT` within 30 s".to_string()
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    "closed its stdout before printing `listening on http://127.0.0.1:PORT`"
                        .to_string()
                }
            };
            let _ = child.kill();
            let status = child.wait();
            let _ = stderr_thread.join();
            let _ = stdout_thread.join();
            panic!(
                "`rulec serve {}` {why} (exit: {status:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                args.join(" "),
                lock(&stdout),
                lock(&stderr),
            );
        };
        Served {
            port,
            pid: child.id(),
            child: Mutex::new(child),
            stdout,
            stderr,
        }
    }

    /// Runs `rulec serve <args...>` like [`Served::start`] for a server that must refuse
    /// to start, and waits up to 30 s for it to exit: (exit code, stdout, stderr), the
    /// code -1 if killed by a signal. Panics if the server starts listening instead.
    pub fn start_expect_failure(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
        let mut child = serve_command(args, envs)
            .spawn()
            .expect("the rulec binary runs");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let threads = [
            collect(child.stderr.take().expect("piped"), stderr.clone(), None),
            collect(child.stdout.take().expect("piped"), stdout.clone(), None),
        ];
        let deadline = Instant::now() + START_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting on rulec") {
                break Some(status);
            }
            if lock(&stdout).contains("listening on http://") || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        for t in threads {
            let _ = t.join();
        }
        let (out, err) = (lock(&stdout).clone(), lock(&stderr).clone());
        match status {
            Some(status) => (status.code().unwrap_or(-1), out, err),
            None => panic!(
                "`rulec serve {}` was expected to refuse to start but is running\n--- stdout ---\n{out}\n--- stderr ---\n{err}",
                args.join(" ")
            ),
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Everything the server wrote to stdout so far, the listening line included.
    pub fn stdout(&self) -> String {
        lock(&self.stdout).clone()
    }

    /// Whether stderr contains `needle` within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        eventually(timeout, || lock(&self.stderr).contains(needle))
    }

    /// Sends a signal with `kill`: `"HUP"`, `"-TERM"`, `"SIGINT"` and the like.
    pub fn signal(&self, sig: &str) {
        let name = sig.trim_start_matches('-');
        let name = name.strip_prefix("SIG").unwrap_or(name);
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("running `kill -{name} {}`: {e}", self.pid));
        assert!(
            status.success(),
            "`kill -{name} {}` failed: {status}",
            self.pid
        );
    }

    /// Waits up to `timeout` for the server to exit.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = lock(&self.child).try_wait().expect("waiting on rulec") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// Polls `f` every 20 ms until it holds (true) or `timeout` has passed (false).
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A fake upstream provider on `127.0.0.1:port`: answers every request (one per
/// connection, `Connection: close`) with the configured status, after the configured
/// delay, and logs each request with its arrival time. Stops when dropped.
pub struct FakeProvider {
    pub port: u16,
    shared: Arc<FakeShared>,
    accept: Option<JoinHandle<()>>,
}

struct FakeShared {
    status: AtomicU16,
    delay: Mutex<Duration>,
    body: Mutex<Option<String>>,
    hits: Mutex<Vec<(Instant, String)>>,
    stop: AtomicBool,
}

impl FakeProvider {
    /// Starts answering `200` with `{"data":[]}`.
    pub fn start() -> FakeProvider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(FakeShared {
            status: AtomicU16::new(200),
            delay: Mutex::new(Duration::ZERO),
            body: Mutex::new(None),
            hits: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept = {
            let shared = shared.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let shared = shared.clone();
                        thread::spawn(move || fake_answer(stream, &shared));
                    }
                }
            })
        };
        FakeProvider {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The status of the following answers. A 2xx answers `{"data":[]}`, any other
    /// status an error object, unless [`FakeProvider::set_body`] chose the body.
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// The body of the following answers, whatever their status.
    pub fn set_body(&self, body: &str) {
        *lock(&self.shared.body) = Some(body.to_string());
    }

    /// How long to wait, after reading a request, before answering it.
    pub fn set_delay(&self, delay: Duration) {
        *lock(&self.shared.delay) = delay;
    }

    /// Every request received so far: arrival time and `"METHOD /path"`.
    pub fn hits(&self) -> Vec<(Instant, String)> {
        lock(&self.shared.hits).clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_hits(&self) {
        lock(&self.shared.hits).clear();
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblock `accept` so the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn fake_answer(stream: TcpStream, shared: &FakeShared) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let Ok(Some((start, headers))) = read_head(&mut reader) else {
        return;
    };
    let arrived = Instant::now();
    let mut parts = start.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return;
    };
    if read_body(&mut reader, &headers, false).is_err() {
        return;
    }
    lock(&shared.hits).push((arrived, format!("{method} {path}")));
    let delay = *lock(&shared.delay);
    if !delay.is_zero() {
        thread::sleep(delay);
    }
    let status = shared.status.load(Ordering::SeqCst);
    let body = lock(&shared.body).clone().unwrap_or_else(|| {
        if (200..300).contains(&status) {
            r#"{"data":[]}"#.to_string()
        } else {
            format!(r#"{{"error":{{"type":"fake_provider","message":"status {status}"}}}}"#)
        }
    });
    let answer = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Fake",
    }
}

// ---- the wire ----

fn connect(port: u16) -> io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

fn encode_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has("content-length") && !has("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if close && !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Reads one response; also says whether the connection cannot be reused.
fn read_response<R: BufRead>(r: &mut R, method: &str) -> io::Result<(Response, bool)> {
    loop {
        let Some((start, headers)) = read_head(r)? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed before a response",
            ));
        };
        let mut parts = start.split_whitespace();
        let version = parts.next().unwrap_or_default().to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {start:?}")))?;
        if (100..200).contains(&status) && status != 101 {
            continue; // an interim response: the real one follows
        }
        let connection = header_in(&headers, "connection")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut close = connection.contains("close")
            || (version == "HTTP/1.0" && !connection.contains("keep-alive"));
        let bodiless =
            method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 || status < 200;
        let body = if bodiless {
            Vec::new()
        } else {
            let (body, to_eof) = read_body(r, &headers, true)?;
            close |= to_eof;
            body
        };
        return Ok((
            Response {
                status,
                headers,
                body,
            },
            close,
        ));
    }
}

/// Reads a body framed by `headers`: chunked, `Content-Length`, or (for a response,
/// `until_eof`) to the end of the connection; says whether it read to the end.
fn read_body<R: BufRead>(
    r: &mut R,
    headers: &[(String, String)],
    until_eof: bool,
) -> io::Result<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    let chunked = header_in(headers, "transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let line = read_line(r)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                while !read_line(r)?.is_empty() {} // trailers
                return Ok((body, false));
            }
            let at = body.len();
            body.resize(at + size, 0);
            r.read_exact(&mut body[at..])?;
            if !read_line(r)?.is_empty() {
                return Err(invalid("a chunk is not followed by CRLF".to_string()));
            }
        }
    }
    if let Some(length) = header_in(headers, "content-length") {
        let length: usize = length
            .trim()
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {length:?}")))?;
        body.resize(length, 0);
        r.read_exact(&mut body)?;
        return Ok((body, false));
    }
    if until_eof {
        r.read_to_end(&mut body)?;
        return Ok((body, true));
    }
    Ok((body, false))
}

/// A message's start line and headers.
type Head = (String, Vec<(String, String)>);

/// The start line and headers of a message; `None` if the connection ended before
/// its first byte.
fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Head>> {
    if r.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let mut total = 0;
    let mut next = |r: &mut R| -> io::Result<String> {
        let line = read_line(r)?;
        total += line.len() + 2;
        if total > MAX_HEAD {
            return Err(invalid(format!("head longer than {MAX_HEAD} bytes")));
        }
        Ok(line)
    };
    let start = next(r)?;
    let mut headers = Vec::new();
    loop {
        let line = next(r)?;
        if line.is_empty() {
            return Ok(Some((start, headers)));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// One line without its CRLF (or bare LF); an error at the end of the connection.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut line = Vec::new();
    (&mut *r)
        .take(MAX_HEAD as u64)
        .read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the connection ended inside a line",
        ));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Whether an I/O error means the peer had closed the connection.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

// ---- the child process ----

fn serve_command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rulec"));
    cmd.arg("serve").args(args);
    if !args
        .iter()
        .any(|a| *a == "--listen" || a.starts_with("--listen="))
    {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.current_dir(root())
        .env_remove("NO_COLOR")
        // every provider is health-checked, and served policies name public ones (the
        // example does): a proxy where nothing listens takes every call that is not
        // to loopback, so that no test ever reaches (or resolves) a public host
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .env_remove("no_proxy")
        .env("ALL_PROXY", NOWHERE_PROXY)
        .env("NO_PROXY", "127.0.0.0/8,localhost,::1")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `listening on http://127.0.0.1:PORT` → PORT.
fn listening_port(line: &str) -> Option<u16> {
    line.trim()
        .strip_prefix("listening on http://127.0.0.1:")?
        .parse()
        .ok()
}

/// Appends everything `pipe` yields to `into`, line by line, also sending each line
/// (without its newline) to `lines` while someone listens.
fn collect(
    pipe: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match pipe.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            lock(&into).push_str(&text);
            if let Some(lines) = &lines {
                let _ = lines.send(text.trim_end_matches(['\r', '\n']).to_string());
            }
        }
    })
}

/// Locks, ignoring poisoning by a panicked test thread.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- sanity tests of the helpers themselves ----

/// A one-thread server answering each of its first `connections` connections with
/// `answer` (raw bytes) after reading one request, then closing.
fn canned_server(answer: &'static [u8], connections: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (_, headers) = read_head(&mut reader).unwrap().unwrap();
            read_body(&mut reader, &headers, false).unwrap();
            stream.write_all(answer).unwrap();
        }
    });
    port
}

#[test]
fn fake_provider_answers_switches_status_and_logs_hits() {
    let fake = FakeProvider::start();
    assert_eq!(fake.base_url(), format!("http://127.0.0.1:{}", fake.port));
    let ok = get(fake.port, "/v1/models");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json(), serde_json::json!({"data": []}));
    assert_eq!(ok.header("content-type"), Some("application/json"));
    assert_eq!(ok.header("CONNECTION"), Some("close"));

    fake.set_status(503);
    let before = Instant::now();
    let down = post_json(
        fake.port,
        "/v1/chat/completions",
        &serde_json::json!({"x": 1}),
    );
    assert_eq!(down.status, 503);
    assert_eq!(down.json()["error"]["message"], "status 503");

    let hits = fake.hits();
    let paths: Vec<&str> = hits.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(paths, ["GET /v1/models", "POST /v1/chat/completions"]);
    assert!(hits[0].0 <= hits[1].0 && hits[1].0 >= before);

    fake.clear_hits();
    assert!(fake.hits().is_empty());
    fake.set_status(200);
    fake.set_body(r#"{"ok":true}"#);
    assert_eq!(get(fake.port, "/health").json()["ok"], true);
    assert_eq!(fake.hits().len(), 1);
}

#[test]
fn fake_provider_delays_its_answers() {
    let fake = FakeProvider::start();
    fake.set_delay(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(get(fake.port, "/slow").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn fake_provider_stops_when_dropped() {
    let fake = FakeProvider::start();
    let port = fake.port;
    drop(fake);
    assert!(request(port, "GET", "/", &[], b"").is_err());
}

#[test]
fn chunked_bodies_are_decoded() {
    let port = canned_server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: Chunks\r\n\r\n\
          5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
        1,
    );
    let r = get(port, "/");
    assert_eq!(r.text(), "hello, world");
    assert_eq!(r.header("x-kind"), Some("Chunks"));
}

#[test]
fn bodies_without_length_are_read_to_the_end() {
    let port = canned_server(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\n\r\nno such thing",
        1,
    );
    let r = request(port, "DELETE", "/x", &[("X-A", "b")], b"payload").unwrap();
    assert_eq!((r.status, r.text().as_str()), (404, "no such thing"));
}

#[test]
fn non_json_bodies_panic_with_the_body() {
    let r = Response {
        status: 500,
        headers: vec![],
        body: b"oops, plain text".to_vec(),
    };
    let err = std::panic::catch_unwind(|| r.json()).unwrap_err();
    let message = err.downcast_ref::<String>().unwrap();
    assert!(message.contains("oops, plain text"), "{message}");
}

#[test]
fn conn_keeps_alive_and_reconnects_when_the_server_closed() {
    // Each connection serves two requests, then the server closes it silently.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for (n, stream) in listener.incoming().take(3).enumerate() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            for i in 0..2 {
                let Ok(Some((start, headers))) = read_head(&mut reader) else {
                    break;
                };
                assert!(header_in(&headers, "connection").is_none(), "{start}");
                let (body, _) = read_body(&mut reader, &headers, false).unwrap();
                let answer = format!("conn {n} req {i} got {}", body.len());
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    answer.len()
                );
                stream.write_all(head.as_bytes()).unwrap();
                stream.write_all(answer.as_bytes()).unwrap();
            }
        }
    });
    let mut conn = Conn::open(port).unwrap();
    let got: Vec<String> = (0..5)
        .map(|_| conn.send("POST", "/v1/route", &[], b"abc").unwrap().text())
        .collect();
    assert_eq!(
        got,
        [
            "conn 0 req 0 got 3",
            "conn 0 req 1 got 3",
            "conn 1 req 0 got 3",
            "conn 1 req 1 got 3",
            "conn 2 req 0 got 3",
        ]
    );
    assert_eq!(conn.connections(), 3);
}

#[test]
fn conn_honours_connection_close() {
    let port = canned_server(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        2,
    );
    let mut conn = Conn::open(port).unwrap();
    assert_eq!(conn.send("GET", "/", &[], b"").unwrap().text(), "ok");
    assert_eq!(conn.send("GET", "/", &[], b"").unwrap().text(), "ok");
    assert_eq!(conn.connections(), 2);
}

#[test]
fn raw_returns_everything_until_close() {
    let port = canned_server(b"HTTP/1.1 400 Bad Request\r\n\r\nbad", 1);
    let out = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(out, b"HTTP/1.1 400 Bad Request\r\n\r\nbad");
}

#[test]
fn eventually_polls_until_true_or_timeout() {
    let mut n = 0;
    assert!(eventually(Duration::from_secs(5), || {
        n += 1;
        n == 3
    }));
    let started = Instant::now();
    assert!(!eventually(Duration::from_millis(100), || false));
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[test]
fn listening_lines_are_parsed() {
    assert_eq!(
        listening_port("listening on http://127.0.0.1:8080\n"),
        Some(8080)
    );
    assert_eq!(listening_port("listening on http://0.0.0.0:8080"), None);
    assert_eq!(listening_port("starting"), None);
}

#[test]
fn a_server_that_cannot_start_is_reported() {
    let (code, _, stderr) = Served::start_expect_failure(&["no/such/policy.yaml"], &[]);
    assert_ne!(code, 0, "{stderr}");
    assert!(!stderr.is_empty());
}
