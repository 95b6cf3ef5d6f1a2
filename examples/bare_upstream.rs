//! The baseline upstream of the proxy's benchmark (`benches/proxy.sh`): a bare tokio +
//! hyper 1.x HTTP/1.1 server that answers OpenAI chat completions at once with a fixed
//! answer, so that `rulec serve` proxying to it can be compared with calling it
//! directly. It reads each request's body fully and answers:
//!
//! - `POST /v1/chat/completions`: a fixed `chat.completion`, or, when the body says
//!   `"stream": true` (or the server was started with `--stream`), a fixed stream of
//!   `chat.completion.chunk` events sent chunked (a role chunk, three content chunks,
//!   a finish chunk, the usage chunk when `"include_usage": true`, `[DONE]`);
//! - `GET /v1/models`: a one-model list;
//! - anything else: 404.
//!
//! It checks no key. Like `examples/bare_server.rs`: the multi-threaded runtime with
//! its default worker count, keep-alive on, `TCP_NODELAY`, one task per connection.
//!
//! ```text
//! cargo run --release --example bare_upstream -- --listen 127.0.0.1:0 [--stream]
//! ```
//!
//! Prints `listening on http://ADDR` on stdout once ready.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The plain answer (339 bytes, the size of a short real one).
const COMPLETION: &str = concat!(
    r#"{"id":"chatcmpl-bare","object":"chat.completion","created":1700000000,"model":"gpt-bare","#,
    r#""choices":[{"index":0,"message":{"role":"assistant","content":"hello from the bare upstream","refusal":null},"#,
    r#""logprobs":null,"finish_reason":"stop"}],"#,
    r#""usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17},"system_fingerprint":"fp_bare"}"#
);

/// The events of the streamed answer before the usage chunk.
const STREAM: &[&str] = &[
    concat!(
        r#"data: {"id":"chatcmpl-bare","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bare","#,
        r#""choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        "\n\n"
    ),
    concat!(
        r#"data: {"id":"chatcmpl-bare","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bare","#,
        r#""choices":[{"index":0,"delta":{"content":"hello from"},"finish_reason":null}]}"#,
        "\n\n"
    ),
    concat!(
        r#"data: {"id":"chatcmpl-bare","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bare","#,
        r#""choices":[{"index":0,"delta":{"content":" the bare"},"finish_reason":null}]}"#,
        "\n\n"
    ),
    concat!(
        r#"data: {"id":"chatcmpl-bare","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bare","#,
        r#""choices":[{"index":0,"delta":{"content":" upstream"},"finish_reason":null}]}"#,
        "\n\n"
    ),
    concat!(
        r#"data: {"id":"chatcmpl-bare","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bare","#,
        r#""choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        "\n\n"
    ),
];

const USAGE_CHUNK: &str = concat!(
    r#"data: {"id":"chatcmpl-bare","object":"chat.completion.chunk","created":1700000000,"model":"gpt-bare","#,
    r#""choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#,
    "\n\n"
);

const DONE: &str = "data: [DONE]\n\n";

const MODELS: &str = r#"{"object":"list","data":[{"id":"gpt-bare","object":"model","created":1700000000,"owned_by":"bare"}]}"#;

const NOT_FOUND: &str = r#"{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":"not_found"}}"#;

fn usage() -> ExitCode {
    eprintln!("usage: bare_upstream [--listen ADDR] [--stream]   (default 127.0.0.1:0)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut always_stream = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--stream" => {
                always_stream = true;
                continue;
            }
            "--listen" => args.next(),
            _ => match arg.strip_prefix("--listen=") {
                Some(v) => Some(v.to_string()),
                None => return usage(),
            },
        };
        match value.and_then(|v| v.parse().ok()) {
            Some(addr) => listen = addr,
            None => return usage(),
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bare_upstream: cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(listen, always_stream)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_upstream: {e}");
            ExitCode::from(2)
        }
    }
}

async fn serve(listen: SocketAddr, always_stream: bool) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{local}")?;
        out.flush()?;
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // e.g. too many open files: keep serving the connections already open
            Err(e) => {
                eprintln!("bare_upstream: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, always_stream));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<Incoming>,
    always_stream: bool,
) -> Result<Response<Fixed>, Infallible> {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    // Read the whole body, as a real provider must before it can answer.
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(json(StatusCode::BAD_REQUEST, NOT_FOUND)),
    };
    Ok(match (method, path.as_str()) {
        (Method::POST, "/v1/chat/completions") => {
            if always_stream || flag(&body, b"\"stream\"") {
                stream(flag(&body, b"\"include_usage\""))
            } else {
                json(StatusCode::OK, COMPLETION)
            }
        }
        (Method::GET, "/v1/models") => json(StatusCode::OK, MODELS),
        _ => json(StatusCode::NOT_FOUND, NOT_FOUND),
    })
}

/// Whether `key` is followed by `: true` somewhere in `body`: enough for the fixed
/// requests of a benchmark, without the cost of parsing them.
fn flag(body: &[u8], key: &[u8]) -> bool {
    let mut rest = body;
    while let Some(at) = rest.windows(key.len()).position(|w| w == key) {
        rest = &rest[at + key.len()..];
        let value = rest
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b':'))
            .map(|start| &rest[start..]);
        if value.is_some_and(|v| v.starts_with(b"true")) {
            return true;
        }
    }
    false
}

fn json(status: StatusCode, body: &'static str) -> Response<Fixed> {
    let mut response = Response::new(Fixed::whole(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn stream(include_usage: bool) -> Response<Fixed> {
    let mut pieces: Vec<&'static str> = STREAM.to_vec();
    if include_usage {
        pieces.push(USAGE_CHUNK);
    }
    pieces.push(DONE);
    let mut response = Response::new(Fixed::chunked(pieces));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
}

/// A fixed body: one piece with its length known (`Content-Length`), or several of
/// unknown total, which hyper sends chunked as a streaming provider does.
struct Fixed {
    pieces: std::vec::IntoIter<&'static str>,
    length: Option<u64>,
}

impl Fixed {
    fn whole(body: &'static str) -> Fixed {
        Fixed {
            pieces: vec![body].into_iter(),
            length: Some(body.len() as u64),
        }
    }

    fn chunked(pieces: Vec<&'static str>) -> Fixed {
        Fixed {
            pieces: pieces.into_iter(),
            length: None,
        }
    }
}

impl Body for Fixed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let piece = self.get_mut().pieces.next();
        Poll::Ready(piece.map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes())))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.len() == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self.length {
            Some(length) => hyper::body::SizeHint::with_exact(length),
            None => hyper::body::SizeHint::default(),
        }
    }
}
