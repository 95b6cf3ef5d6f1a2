//! The baseline of `benches/serve.sh`: a bare tokio + hyper 1.x HTTP/1.1 server that
//! does the I/O of a routing request and nothing else. It reads each request's body
//! fully, then answers a fixed JSON body shaped like a routing decision (about 300
//! bytes). `rulec serve` measured against it shows what the routing itself costs on top
//! of the HTTP stack.
//!
//! Like a typical hyper server: the multi-threaded runtime with its default worker
//! count, keep-alive on (hyper's default), `TCP_NODELAY` set on accepted connections,
//! one task per connection.
//!
//! ```text
//! cargo run --release --example bare_server -- --listen 127.0.0.1:0
//! ```
//!
//! Prints `listening on http://127.0.0.1:PORT` on stdout once ready, the line
//! `rulec serve` prints.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The answer to every request: a routing decision's shape and size.
const DECISION: &str = concat!(
    r#"{"decision_id":"d-1","model":"claude_sonnet","provider":"anthropic","#,
    r#""rule":"simple_summaries","reason":"task_type == summarization && task_complexity == simple","#,
    r#""fallbacks":[{"model":"gpt_4o_mini","provider":"openai"},{"model":"gemini_flash","provider":"google"}],"#,
    r#""policy":"sha256:6f1c2a9e0b7d","affinity":false,"downgraded":false}"#
);

fn usage() -> ExitCode {
    eprintln!("usage: bare_server [--listen ADDR]   (default 127.0.0.1:0)");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(serve(listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare_server: {e}");
            ExitCode::from(2)
        }
    }
}

async fn serve(listen: SocketAddr) -> std::io::Result<()> {
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
                eprintln!("bare_server: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

/// The fixed answer to `/v1/report`, shaped like rulec's.
const ACCEPTED: &str =
    r#"{"model":"claude_sonnet","provider":"anthropic","released":true,"health":"healthy"}"#;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = if request.uri().path() == "/v1/report" {
        ACCEPTED
    } else {
        DECISION
    };
    // Read the whole body, as a real POST handler must before it can decide.
    let status = match request.into_body().collect().await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
