//! A fake LLM provider for the proxy's tests: a real hyper 1 server on 127.0.0.1 that
//! speaks the OpenAI Chat Completions or the Anthropic Messages API (plain and
//! streamed answers, the models list, key checks), answers deterministically (the text
//! names the fake and the model; usage follows [`usage_for`]), records every request,
//! counts the answers it served in full, and misbehaves on demand: a queue of
//! [`Fault`]s, one per completion request, then a default.
//!
//! Each fake owns a small tokio runtime, so sync tests and `#[tokio::test]`s both use
//! it the same way; dropping the fake stops it.

#![allow(
    dead_code,
    reason = "shared helpers: the proxy's tests use what its self-tests do not"
)]

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use rulec::proxy::{anthropic, openai, TokenUsage};

/// The `created` of every OpenAI answer, so that answers are byte-for-byte stable.
const CREATED: u64 = 1_700_000_000;

/// The largest request body read; a larger one is recorded as `null`.
const MAX_BODY: usize = 16 << 20;

/// How long a stop of the listener may take to be confirmed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Which API a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeKind {
    /// `POST /v1/chat/completions`, `GET /v1/models`, `Authorization: Bearer`.
    OpenAi,
    /// `POST /v1/messages`, `GET /v1/models`, `x-api-key` (or a bearer token, as the
    /// official SDK sends it) and `anthropic-version`.
    Anthropic,
}

impl FakeKind {
    /// The path of a completion request.
    pub fn completion_path(self) -> &'static str {
        match self {
            FakeKind::OpenAi => "/v1/chat/completions",
            FakeKind::Anthropic => "/v1/messages",
        }
    }

    /// The policy's `kind:` for a provider of this API.
    pub fn policy_kind(self) -> &'static str {
        match self {
            FakeKind::OpenAi => "openai",
            FakeKind::Anthropic => "anthropic",
        }
    }

    /// The model ids `GET /v1/models` lists (a completion may name any model).
    pub fn models(self) -> &'static [&'static str] {
        match self {
            FakeKind::OpenAi => &["gpt-fake-large", "gpt-fake-small"],
            FakeKind::Anthropic => &["claude-fake-large", "claude-fake-small"],
        }
    }

    fn default_name(self) -> &'static str {
        match self {
            FakeKind::OpenAi => "fake-openai",
            FakeKind::Anthropic => "fake-anthropic",
        }
    }
}

/// How the fake answers one request. Scripted faults apply to completion requests, in
/// order; the default applies to the others, and to completions once the script is
/// used up. A fault comes before the key check: a broken provider fails everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// No fault: the normal answer.
    None,
    /// This status at once, with `Retry-After` if given; `body: None` is the kind's
    /// own error shape.
    Status {
        code: u16,
        retry_after: Option<String>,
        body: Option<String>,
    },
    /// Nothing at all, not even the headers, until this long after the request.
    SlowFirstByte(Duration),
    /// The headers at once, the body this long after them.
    SlowBody(Duration),
    /// A 200 head, then the connection closes without a byte of body.
    CutBeforeFirstByte,
    /// A 200 head and the first events (or half the body), then the connection drops.
    CutAfterFirstByte,
    /// A 200 whose JSON (or first event's JSON) is broken.
    MalformedJson,
    /// A successful answer without any `usage`.
    MissingUsage,
    /// The connection closes without an answer.
    Close,
    /// The request's connection closes unanswered and the fake stops listening (every
    /// open connection closes too): the port refuses until [`FakeLlm::resume`].
    Refuse,
}

impl Fault {
    /// `code` with the kind's error body and no `Retry-After`.
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            retry_after: None,
            body: None,
        }
    }

    /// `429 Too Many Requests` with `Retry-After: <retry_after>`.
    pub fn rate_limited(retry_after: &str) -> Fault {
        Fault::Status {
            code: 429,
            retry_after: Some(retry_after.to_string()),
            body: None,
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// Names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `null` when empty or not JSON.
    pub body: Value,
}

impl Call {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The deterministic answer of the fake `name` for `model`.
pub fn answer_text(name: &str, model: &str) -> String {
    format!("hello from {name} ({model})")
}

/// The usage the fake reports: a prompt token per 4 bytes of prompt text (plus one),
/// an output token per word of the answer.
pub fn usage_for(prompt_bytes: u64, answer: &str) -> TokenUsage {
    TokenUsage {
        input_tokens: prompt_bytes / 4 + 1,
        output_tokens: answer.split_whitespace().count() as u64,
    }
}

/// The bytes of a request's prompt text: every text of the system prompt and the
/// messages, without separators (so a prompt translated between the formats keeps
/// its size, unless several system messages are joined). `None` if `body` is not a
/// request of `kind`.
pub fn prompt_bytes(kind: FakeKind, body: &Value) -> Option<u64> {
    let total: usize = match kind {
        FakeKind::OpenAi => {
            let req: openai::ChatRequest = serde_json::from_value(body.clone()).ok()?;
            req.messages
                .iter()
                .filter_map(|m| m.content.as_ref())
                .map(|c| c.joined_text().len())
                .sum()
        }
        FakeKind::Anthropic => {
            let req: anthropic::MessagesRequest = serde_json::from_value(body.clone()).ok()?;
            let system = req.system.as_ref().map_or(0, |s| s.joined_text().len());
            let messages: usize = req
                .messages
                .iter()
                .map(|m| match &m.content {
                    anthropic::Content::Text(s) => s.len(),
                    anthropic::Content::Blocks(b) => anthropic::join_text(b).len(),
                })
                .sum();
            system + messages
        }
    };
    Some(total as u64)
}

/// The usage the fake `name` of `kind` reports for the request `body`.
pub fn expected_usage(kind: FakeKind, name: &str, body: &Value) -> Option<TokenUsage> {
    let model = body.get("model")?.as_str()?;
    Some(usage_for(
        prompt_bytes(kind, body)?,
        &answer_text(name, model),
    ))
}

/// A fake provider listening on `127.0.0.1`; stops when dropped.
pub struct FakeLlm {
    port: u16,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct State {
    kind: FakeKind,
    name: String,
    key: String,
    script: Mutex<VecDeque<Fault>>,
    default: Mutex<Fault>,
    calls: Mutex<Vec<Call>>,
    served: AtomicU64,
    next_id: AtomicU64,
    /// The accept loop now running, if listening.
    listening: Mutex<Option<Listening>>,
}

/// The handles of one accept loop.
struct Listening {
    stop: watch::Sender<bool>,
    stopped: mpsc::Receiver<()>,
}

impl FakeLlm {
    /// A fake of `kind` named `fake-openai` or `fake-anthropic`.
    pub fn start(kind: FakeKind) -> FakeLlm {
        FakeLlm::start_named(kind, kind.default_name())
    }

    /// A fake called `name` (it appears in answers and in its key, `sk-<name>`).
    pub fn start_named(kind: FakeKind, name: &str) -> FakeLlm {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("fake-{name}"))
            .enable_all()
            .build()
            .expect("a tokio runtime for the fake");
        let state = Arc::new(State {
            kind,
            name: name.to_string(),
            key: format!("sk-{name}"),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Fault::None),
            calls: Mutex::new(Vec::new()),
            served: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            listening: Mutex::new(None),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("a local address").port();
        listen(&runtime, &state, listener);
        FakeLlm {
            port,
            state,
            runtime: Some(runtime),
        }
    }

    pub fn kind(&self) -> FakeKind {
        self.state.kind
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The key the fake expects: `Authorization: Bearer <key>` (OpenAI), `x-api-key:
    /// <key>` or the bearer token (Anthropic; check [`Call::header`] to tell which).
    pub fn key(&self) -> &str {
        &self.state.key
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What a policy's `base_url` says: `http://127.0.0.1:PORT/v1` for OpenAI (the
    /// proxy appends `/chat/completions`), `http://127.0.0.1:PORT` for Anthropic (it
    /// appends `/v1/messages`).
    pub fn base_url(&self) -> String {
        match self.state.kind {
            FakeKind::OpenAi => format!("http://127.0.0.1:{}/v1", self.port),
            FakeKind::Anthropic => format!("http://127.0.0.1:{}", self.port),
        }
    }

    /// A `providers:` entry (indented two spaces) for this fake, its key read from
    /// the variable `key_env`.
    pub fn provider_yaml(&self, provider: &str, key_env: &str) -> String {
        format!(
            "  {provider}:\n    kind: {}\n    base_url: \"{}\"\n    api_key_env: {key_env}\n",
            self.state.kind.policy_kind(),
            self.base_url()
        )
    }

    /// Faults for the next completion requests, in order (replacing any left).
    pub fn script(&self, faults: Vec<Fault>) {
        *lock(&self.state.script) = faults.into();
    }

    /// The answer once the script is used up. [`Fault::Refuse`] stops listening now.
    pub fn set_default(&self, fault: Fault) {
        let refuse = fault == Fault::Refuse;
        *lock(&self.state.default) = fault;
        if refuse {
            self.stop_listening();
        }
    }

    /// Listens again on the same port after a [`Fault::Refuse`].
    pub fn resume(&self) {
        if lock(&self.state.listening).is_some() {
            return;
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("rebinding 127.0.0.1:{}: {e}", self.port));
        if let Some(runtime) = &self.runtime {
            listen(runtime, &self.state, listener);
        }
    }

    /// Every request received so far, faulted ones included.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state.calls).clone()
    }

    /// The completion requests received so far.
    pub fn completion_calls(&self) -> Vec<Call> {
        let path = self.state.kind.completion_path();
        self.calls()
            .into_iter()
            .filter(|c| c.path == path)
            .collect()
    }

    /// How many completions were answered in full (the whole body handed to the
    /// connection): normal answers, and slow or usage-less ones.
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::SeqCst)
    }

    /// The usage this fake reports for the request `body`.
    pub fn usage_of(&self, body: &Value) -> Option<TokenUsage> {
        expected_usage(self.state.kind, &self.state.name, body)
    }

    /// Stops the accept loop and every open connection, and waits until the port is
    /// closed.
    fn stop_listening(&self) {
        let Some(listening) = lock(&self.state.listening).take() else {
            return;
        };
        let _ = listening.stop.send(true);
        let _ = listening.stopped.recv_timeout(STOP_TIMEOUT);
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop_listening();
        if let Some(runtime) = self.runtime.take() {
            // a blocking shutdown would panic inside an async test
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(STOP_TIMEOUT);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- listening ----

/// Starts an accept loop on `listener` and records its handles in `state`.
fn listen(runtime: &tokio::runtime::Runtime, state: &Arc<State>, listener: std::net::TcpListener) {
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let (stop, stop_rx) = watch::channel(false);
    let (stopped_tx, stopped) = mpsc::channel();
    let _guard = runtime.enter();
    let listener = TcpListener::from_std(listener).expect("a tokio listener");
    runtime.spawn(accept_loop(listener, state.clone(), stop_rx, stopped_tx));
    *lock(&state.listening) = Some(Listening { stop, stopped });
}

/// Accepts until told to stop; then closes the port first and the open connections
/// after, so that a client whose connection was closed finds the port refusing.
async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
    stopped: mpsc::Sender<()>,
) {
    let (down, _) = watch::channel(false);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(stream, state.clone(), down.subscribe()));
                }
                // e.g. too many open files: keep the connections already open
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(listener);
    let _ = down.send(true);
    let _ = stopped.send(());
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    state: Arc<State>,
    mut down: watch::Receiver<bool>,
) {
    let service = service_fn(move |request| handle(state.clone(), request));
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = down.changed() => {}
    }
}

/// Asks the running accept loop to stop, without waiting (a handler cannot block).
fn refuse_from_handler(state: &State) {
    if let Some(listening) = lock(&state.listening).take() {
        let _ = listening.stop.send(true);
    }
}

// ---- one request ----

async fn handle(state: Arc<State>, request: Request<Incoming>) -> io::Result<Response<Reply>> {
    let call = read_call(request).await;
    let completion = call.method == "POST" && call.path == state.kind.completion_path();
    lock(&state.calls).push(call.clone());
    let fault = next_fault(&state, completion);
    match fault {
        Fault::Close => Err(io::Error::other("the fake closes without an answer")),
        Fault::Refuse => {
            refuse_from_handler(&state);
            // the accept loop closes this connection once the port is closed
            std::future::pending().await
        }
        Fault::Status {
            code,
            retry_after,
            body,
        } => Ok(status_reply(&state, code, retry_after, body)),
        Fault::SlowFirstByte(delay) => {
            tokio::time::sleep(delay).await;
            Ok(route(&state, &call, Fault::None))
        }
        other => Ok(route(&state, &call, other)),
    }
}

fn next_fault(state: &State, completion: bool) -> Fault {
    if completion {
        if let Some(fault) = lock(&state.script).pop_front() {
            return fault;
        }
    }
    lock(&state.default).clone()
}

async fn read_call(request: Request<Incoming>) -> Call {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => serde_json::from_slice(&collected.to_bytes()).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    Call {
        method,
        path,
        headers,
        body,
    }
}

/// The answer to a request the fault lets through to the API: the models list, a
/// completion, or an error.
fn route(state: &Arc<State>, call: &Call, fault: Fault) -> Response<Reply> {
    if let Some(refusal) = check_headers(state, call) {
        return refusal;
    }
    match (call.method.as_str(), call.path.as_str()) {
        ("GET", "/v1/models") => deliver(models_list(state.kind), fault, None),
        ("POST", path) if path == state.kind.completion_path() => {
            match completion(state, &call.body, fault != Fault::MissingUsage) {
                Ok(success) => deliver(success, fault, Some(state.clone())),
                Err(message) => error_reply(state.kind, 400, &message),
            }
        }
        (method, path) => error_reply(state.kind, 404, &format!("no route `{method} {path}`")),
    }
}

/// A 401 for a wrong key, a 400 for Anthropic's missing version, as the APIs answer.
fn check_headers(state: &State, call: &Call) -> Option<Response<Reply>> {
    match state.kind {
        FakeKind::OpenAi => {
            let expected = format!("Bearer {}", state.key);
            (call.header("authorization") != Some(expected.as_str()))
                .then(|| error_reply(state.kind, 401, "incorrect api key provided"))
        }
        FakeKind::Anthropic => {
            // the official SDK sends its key as a bearer token; other clients, the
            // proxy among them, as `x-api-key`
            let bearer = format!("Bearer {}", state.key);
            let keyed = call.header("x-api-key") == Some(state.key.as_str())
                || call.header("authorization") == Some(bearer.as_str());
            if !keyed {
                Some(error_reply(state.kind, 401, "invalid x-api-key"))
            } else if call.header("anthropic-version").is_none() {
                Some(error_reply(
                    state.kind,
                    400,
                    "anthropic-version: header is required",
                ))
            } else {
                None
            }
        }
    }
}

// ---- answers ----

/// A successful answer before faults shape its delivery.
struct Success {
    content_type: &'static str,
    /// The body in the pieces it is written in: one JSON document, or one piece per
    /// event of a stream.
    pieces: Vec<Bytes>,
    streamed: bool,
}

impl Success {
    fn json(value: &Value) -> Success {
        Success {
            content_type: "application/json",
            pieces: vec![Bytes::from(value.to_string())],
            streamed: false,
        }
    }

    fn events(pieces: Vec<Bytes>) -> Success {
        Success {
            content_type: "text/event-stream",
            pieces,
            streamed: true,
        }
    }
}

fn models_list(kind: FakeKind) -> Success {
    let data: Vec<Value> = match kind {
        FakeKind::OpenAi => kind
            .models()
            .iter()
            .map(|id| json!({"id": id, "object": "model", "created": CREATED, "owned_by": "fake"}))
            .collect(),
        FakeKind::Anthropic => kind
            .models()
            .iter()
            .map(|id| {
                json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"})
            })
            .collect(),
    };
    Success::json(&match kind {
        FakeKind::OpenAi => json!({"object": "list", "data": data}),
        FakeKind::Anthropic => json!({
            "data": data, "has_more": false,
            "first_id": kind.models().first(), "last_id": kind.models().last(),
        }),
    })
}

/// What the request asks, read through the wire types (a request the real API would
/// refuse is a 400 here too).
struct Asked {
    model: String,
    stream: bool,
    include_usage: bool,
}

fn completion(state: &State, body: &Value, with_usage: bool) -> Result<Success, String> {
    let asked = match state.kind {
        FakeKind::OpenAi => {
            let req: openai::ChatRequest = serde_json::from_value(body.clone())
                .map_err(|e| format!("invalid chat completion request: {e}"))?;
            Asked {
                stream: req.streaming(),
                include_usage: req.wants_usage(),
                model: req.model,
            }
        }
        FakeKind::Anthropic => {
            let req: anthropic::MessagesRequest = serde_json::from_value(body.clone())
                .map_err(|e| format!("invalid messages request: {e}"))?;
            Asked {
                stream: req.streaming(),
                include_usage: true,
                model: req.model,
            }
        }
    };
    let text = answer_text(&state.name, &asked.model);
    let usage = with_usage.then(|| usage_for(prompt_bytes(state.kind, body).unwrap_or(0), &text));
    let n = state.next_id.fetch_add(1, Ordering::SeqCst);
    Ok(match (state.kind, asked.stream) {
        (FakeKind::OpenAi, false) => Success::json(&openai_plain(n, &asked, &text, usage)),
        (FakeKind::OpenAi, true) => Success::events(openai_stream(n, &asked, &text, usage)),
        (FakeKind::Anthropic, false) => Success::json(&anthropic_plain(n, &asked, &text, usage)),
        (FakeKind::Anthropic, true) => Success::events(anthropic_stream(n, &asked, &text, usage)),
    })
}

fn openai_usage(u: TokenUsage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    })
}

fn openai_plain(n: u64, asked: &Asked, text: &str, usage: Option<TokenUsage>) -> Value {
    let mut v = json!({
        "id": format!("chatcmpl-fake-{n}"),
        "object": "chat.completion",
        "created": CREATED,
        "model": asked.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "system_fingerprint": "fp_fake",
    });
    if let Some(u) = usage {
        v["usage"] = openai_usage(u);
    }
    v
}

/// The answer's text in the pieces a stream sends: a word each, spaces leading.
fn words(text: &str) -> Vec<String> {
    text.split(' ')
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                w.to_string()
            } else {
                format!(" {w}")
            }
        })
        .collect()
}

fn openai_stream(n: u64, asked: &Asked, text: &str, usage: Option<TokenUsage>) -> Vec<Bytes> {
    let chunk = |choices: Value| {
        let mut v = json!({
            "id": format!("chatcmpl-fake-{n}"),
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": asked.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
        });
        // OpenAI sends `usage: null` on every chunk once usage was asked for
        if asked.include_usage {
            v["usage"] = Value::Null;
        }
        v
    };
    let choice = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut chunks = vec![chunk(choice(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    ))];
    for word in words(text) {
        chunks.push(chunk(choice(json!({"content": word}), Value::Null)));
    }
    chunks.push(chunk(choice(json!({}), json!("stop"))));
    if let (true, Some(u)) = (asked.include_usage, usage) {
        let mut last = chunk(json!([]));
        last["usage"] = openai_usage(u);
        chunks.push(last);
    }
    let mut pieces: Vec<Bytes> = chunks.iter().map(|c| sse_event(None, c)).collect();
    pieces.push(Bytes::from_static(b"data: [DONE]\n\n"));
    pieces
}

fn anthropic_plain(n: u64, asked: &Asked, text: &str, usage: Option<TokenUsage>) -> Value {
    let mut v = json!({
        "id": format!("msg_fake_{n}"),
        "type": "message",
        "role": "assistant",
        "model": asked.model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
    });
    if let Some(u) = usage {
        v["usage"] = json!({"input_tokens": u.input_tokens, "output_tokens": u.output_tokens});
    }
    v
}

fn anthropic_stream(n: u64, asked: &Asked, text: &str, usage: Option<TokenUsage>) -> Vec<Bytes> {
    let mut message = json!({
        "id": format!("msg_fake_{n}"),
        "type": "message",
        "role": "assistant",
        "model": asked.model,
        "content": [],
        "stop_reason": null,
        "stop_sequence": null,
    });
    let mut delta = json!({
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
    });
    if let Some(u) = usage {
        message["usage"] = json!({"input_tokens": u.input_tokens, "output_tokens": 1});
        delta["usage"] = json!({"output_tokens": u.output_tokens});
    }
    let mut events = vec![
        json!({"type": "message_start", "message": message}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
    ];
    for word in words(text) {
        events.push(json!({
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": word},
        }));
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    events.push(delta);
    events.push(json!({"type": "message_stop"}));
    events
        .iter()
        .map(|e| sse_event(e["type"].as_str(), e))
        .collect()
}

fn sse_event(name: Option<&str>, data: &Value) -> Bytes {
    let mut out = Vec::new();
    rulec::proxy::sse::write_event(&mut out, name, &data.to_string());
    Bytes::from(out)
}

/// The kind's error body for `code`.
fn error_json(kind: FakeKind, code: u16, message: &str) -> String {
    let encoded = match kind {
        FakeKind::OpenAi => serde_json::to_string(&openai::ErrorBody::new(code, message)),
        FakeKind::Anthropic => serde_json::to_string(&anthropic::ErrorBody::new(code, message)),
    };
    encoded.unwrap_or_default()
}

fn error_reply(kind: FakeKind, code: u16, message: &str) -> Response<Reply> {
    let body = error_json(kind, code, message);
    reply(
        code,
        "application/json",
        Some(body.len()),
        Reply::once(body),
    )
}

fn status_reply(
    state: &State,
    code: u16,
    retry_after: Option<String>,
    body: Option<String>,
) -> Response<Reply> {
    let body = body.unwrap_or_else(|| {
        let message = format!("the fake `{}` answers {code}", state.name);
        error_json(state.kind, code, &message)
    });
    let mut response = reply(
        code,
        "application/json",
        Some(body.len()),
        Reply::once(body),
    );
    if let Some(value) = retry_after.and_then(|v| v.parse().ok()) {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

fn reply(code: u16, content_type: &str, length: Option<usize>, body: Reply) -> Response<Reply> {
    let mut builder = Response::builder()
        .status(code)
        .header("content-type", content_type);
    if let Some(length) = length {
        builder = builder.header("content-length", length);
    }
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(Reply::steps(Vec::new(), None)))
}

/// A success as the fault delivers it; `served` counts it once delivered in full.
fn deliver(success: Success, fault: Fault, served: Option<Arc<State>>) -> Response<Reply> {
    let whole: usize = success.pieces.iter().map(Bytes::len).sum();
    // a stream's length is unknown to its sender: chunked, as the APIs send it
    let length = (!success.streamed).then_some(whole);
    let data = |pieces: Vec<Bytes>| pieces.into_iter().map(Step::Data).collect::<Vec<_>>();
    let steps = match fault {
        Fault::SlowBody(delay) => {
            let mut steps = vec![Step::Sleep(delay)];
            steps.extend(data(success.pieces));
            steps
        }
        // a yield lets the head go out before the connection is cut
        Fault::CutBeforeFirstByte => vec![Step::Yield, Step::Fail],
        Fault::CutAfterFirstByte => {
            let mut steps = data(first_part(&success));
            steps.extend([Step::Yield, Step::Fail]);
            steps
        }
        Fault::MalformedJson => {
            let broken = broken(&success);
            let length = (!success.streamed).then_some(broken.len());
            return reply(200, success.content_type, length, Reply::once(broken));
        }
        _ => data(success.pieces),
    };
    let full = matches!(
        fault,
        Fault::None | Fault::SlowBody(_) | Fault::MissingUsage
    );
    let served = served.filter(|_| full);
    reply(
        200,
        success.content_type,
        length,
        Reply::steps(steps, served),
    )
}

/// The first two events of a stream, or the first half of a JSON body.
fn first_part(success: &Success) -> Vec<Bytes> {
    if success.streamed {
        success.pieces.iter().take(2).cloned().collect()
    } else {
        let whole = &success.pieces[0];
        vec![whole.slice(..whole.len() / 2)]
    }
}

/// The first half of the JSON body, or a stream whose first event's JSON stops half
/// way (and which then ends).
fn broken(success: &Success) -> Bytes {
    let first = success.pieces.first().cloned().unwrap_or_default();
    if !success.streamed {
        return first.slice(..first.len() / 2);
    }
    let text = String::from_utf8_lossy(&first);
    let data_at = text.find("data: ").map_or(0, |at| at + "data: ".len());
    let cut = data_at + (text.len() - data_at) / 2;
    Bytes::from(format!("{}\n\n", &text[..cut]))
}

// ---- the body ----

/// One step of a body's delivery.
enum Step {
    Data(Bytes),
    Sleep(Duration),
    /// Returns pending once, so that hyper flushes what it has written.
    Yield,
    /// An error: hyper drops the connection, unfinished.
    Fail,
}

/// A response body played step by step; counts a served completion when its last
/// piece is handed out.
pub struct Reply {
    steps: VecDeque<Step>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    served: Option<Arc<State>>,
}

impl Reply {
    fn once(body: impl Into<Bytes>) -> Reply {
        Reply::steps(vec![Step::Data(body.into())], None)
    }

    fn steps(steps: Vec<Step>, served: Option<Arc<State>>) -> Reply {
        Reply {
            steps: steps.into(),
            sleep: None,
            served,
        }
    }

    fn count_served(&mut self) {
        if let Some(state) = self.served.take() {
            state.served.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Body for Reply {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            match this.steps.pop_front() {
                None => {
                    this.count_served();
                    return Poll::Ready(None);
                }
                Some(Step::Data(bytes)) => {
                    if this.steps.is_empty() {
                        this.count_served();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Some(Step::Sleep(delay)) => this.sleep = Some(Box::pin(tokio::time::sleep(delay))),
                Some(Step::Yield) => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Some(Step::Fail) => {
                    return Poll::Ready(Some(Err(io::Error::other("the fake cuts the answer"))))
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.steps.is_empty() && self.sleep.is_none()
    }
}

// ---- self-tests: each fault as a client sees it on the socket ----

/// Raw HTTP on a `TcpStream`, for what a client library would hide.
mod wire {
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use crate::http::IO_TIMEOUT;

    /// A request with `Connection: close`, its body JSON.
    pub fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head.push_str(body);
        head.into_bytes()
    }

    /// Connects and sends `request`.
    pub fn send(port: u16, request: &[u8]) -> TcpStream {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the fake listens");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("a timeout");
        stream.write_all(request).expect("the request is written");
        stream
    }

    /// Everything received until the peer closes (a reset ends it too).
    pub fn read_all(stream: &mut TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return out,
                Err(e) => panic!("reading from the fake: {e} (after {out:?})"),
            }
        }
    }

    /// Whether no byte arrives within `window`.
    pub fn silent_for(stream: &mut TcpStream, window: Duration) -> bool {
        stream.set_read_timeout(Some(window)).expect("a timeout");
        let mut byte = [0u8; 1];
        let silent = match stream.read(&mut byte) {
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            Ok(_) => false,
        };
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("a timeout");
        silent
    }

    /// Reads up to the end of the head (`\r\n\r\n`) and returns it.
    pub fn read_head(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                other => panic!("the head ended early ({other:?}): {head:?}"),
            }
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    /// Splits a whole response into its head and the bytes after it.
    pub fn split(response: &[u8]) -> (String, Vec<u8>) {
        let at = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| {
                panic!(
                    "no complete head in {:?}",
                    String::from_utf8_lossy(response)
                )
            });
        (
            String::from_utf8_lossy(&response[..at + 4]).into_owned(),
            response[at + 4..].to_vec(),
        )
    }

    /// The data of a chunked body, as far as it goes; whether it ended properly.
    pub fn dechunk(mut body: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        loop {
            let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
                return (out, false);
            };
            let size = std::str::from_utf8(&body[..eol])
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
            let Some(size) = size else {
                return (out, false);
            };
            if size == 0 {
                return (out, true);
            }
            let data = &body[eol + 2..];
            let take = size.min(data.len());
            out.extend_from_slice(&data[..take]);
            if take < size || data.len() < size + 2 {
                return (out, false);
            }
            body = &data[size + 2..];
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::TcpStream;
    use std::time::Duration;

    use serde_json::{json, Value};

    use rulec::proxy::anthropic::{self, StreamEvent};
    use rulec::proxy::openai::{self, ChatChunk};
    use rulec::proxy::sse;
    use rulec::proxy::TokenUsage;

    use super::wire;
    use super::{answer_text, usage_for, FakeKind, FakeLlm, Fault};
    use crate::http::{request, Conn, Response};

    fn openai_body(stream: bool, include_usage: bool) -> Value {
        let mut body = json!({
            "model": "gpt-fake-large",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "say hello to the test"},
            ],
        });
        if stream {
            body["stream"] = json!(true);
        }
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    fn anthropic_body(stream: bool) -> Value {
        let mut body = json!({
            "model": "claude-fake-large",
            "max_tokens": 64,
            "system": "be brief",
            "messages": [{"role": "user", "content": "say hello to the test"}],
        });
        if stream {
            body["stream"] = json!(true);
        }
        body
    }

    fn auth(fake: &FakeLlm) -> Vec<(String, String)> {
        match fake.kind() {
            FakeKind::OpenAi => vec![("Authorization".into(), format!("Bearer {}", fake.key()))],
            FakeKind::Anthropic => vec![
                ("x-api-key".into(), fake.key().to_string()),
                ("anthropic-version".into(), "2023-06-01".into()),
            ],
        }
    }

    fn body_for(fake: &FakeLlm, stream: bool) -> Value {
        match fake.kind() {
            FakeKind::OpenAi => openai_body(stream, stream),
            FakeKind::Anthropic => anthropic_body(stream),
        }
    }

    /// A completion request through the suite's HTTP client.
    fn complete(fake: &FakeLlm, body: &Value) -> Response {
        let headers = auth(fake);
        let mut headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        headers.push(("Content-Type", "application/json"));
        let bytes = serde_json::to_vec(body).expect("JSON");
        request(
            fake.port(),
            "POST",
            fake.kind().completion_path(),
            &headers,
            &bytes,
        )
        .expect("the fake answers")
    }

    /// The same request as raw bytes, for the socket-level checks.
    fn raw_completion(fake: &FakeLlm, stream: bool) -> Vec<u8> {
        let headers = auth(fake);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        wire::post(
            fake.port(),
            fake.kind().completion_path(),
            &headers,
            &body_for(fake, stream).to_string(),
        )
    }

    /// The usage expected for `body`: prompt text bytes / 4 + 1, answer words.
    fn usage(fake: &FakeLlm, body: &Value) -> TokenUsage {
        fake.usage_of(body).expect("a valid request")
    }

    fn sse_events(response: &Response) -> Vec<sse::Event> {
        sse::parse_all(&response.body).expect("within the parser's limit")
    }

    #[test]
    fn openai_plain_answers_deterministically_and_records_the_call() {
        let fake = FakeLlm::start(FakeKind::OpenAi);
        assert_eq!(
            fake.base_url(),
            format!("http://127.0.0.1:{}/v1", fake.port())
        );
        let body = openai_body(false, false);
        let r = complete(&fake, &body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let answer: openai::ChatResponse = serde_json::from_slice(&r.body).expect("a response");
        assert_eq!(answer.object, "chat.completion");
        assert_eq!(answer.model, "gpt-fake-large");
        let text = answer_text("fake-openai", "gpt-fake-large");
        assert_eq!(text, "hello from fake-openai (gpt-fake-large)");
        assert_eq!(
            answer.choices[0].message.content.as_deref(),
            Some(text.as_str())
        );
        assert_eq!(answer.choices[0].finish_reason.as_deref(), Some("stop"));
        // "be brief" + "say hello to the test" = 29 bytes: 29 / 4 + 1 = 8; 4 words
        let expected = TokenUsage {
            input_tokens: 8,
            output_tokens: 4,
        };
        assert_eq!(usage(&fake, &body), expected);
        let got = answer.usage.as_ref().map(TokenUsage::from);
        assert_eq!(got, Some(expected));
        assert_eq!(answer.usage.map(|u| u.total_tokens), Some(12));
        assert_eq!(fake.served(), 1);
        let calls = fake.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].method, "POST");
        assert_eq!(calls[0].path, "/v1/chat/completions");
        assert_eq!(
            calls[0].header("AUTHORIZATION"),
            Some("Bearer sk-fake-openai")
        );
        assert_eq!(calls[0].body, body);
    }

    #[test]
    fn openai_streams_parse_with_the_sse_parser() {
        let fake = FakeLlm::start(FakeKind::OpenAi);
        let body = openai_body(true, true);
        let r = complete(&fake, &body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        let events = sse_events(&r);
        assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
        let chunks: Vec<ChatChunk> = events[..events.len() - 1]
            .iter()
            .map(|e| {
                assert_eq!(e.event, None);
                serde_json::from_str(&e.data).expect("each event is a chunk")
            })
            .collect();
        assert!(chunks.iter().all(|c| c.object == openai::CHUNK_OBJECT));
        assert_eq!(
            chunks[0].choices[0].delta.role.as_deref(),
            Some("assistant")
        );
        let text: String = chunks
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter_map(|c| c.delta.content.as_deref())
            .collect();
        assert_eq!(text, answer_text("fake-openai", "gpt-fake-large"));
        let (usage_chunk, rest) = chunks.split_last().expect("chunks");
        assert!(usage_chunk.choices.is_empty());
        assert_eq!(
            usage_chunk.usage.as_ref().map(TokenUsage::from),
            Some(usage(&fake, &body))
        );
        let finish = rest.last().expect("a finish chunk");
        assert_eq!(finish.choices[0].finish_reason.as_deref(), Some("stop"));
        assert!(rest.iter().all(|c| c.usage.is_none()));
        assert_eq!(fake.served(), 1);

        // without include_usage: no usage chunk, the finish chunk is the last
        let r = complete(&fake, &openai_body(true, false));
        let events = sse_events(&r);
        let last: ChatChunk =
            serde_json::from_str(&events[events.len() - 2].data).expect("a chunk");
        assert_eq!(last.choices[0].finish_reason.as_deref(), Some("stop"));
        assert!(!r.text().contains("\"usage\""));
        assert_eq!(fake.served(), 2);
    }

    #[test]
    fn anthropic_plain_and_streamed_answers_agree() {
        let fake = FakeLlm::start_named(FakeKind::Anthropic, "claude-box");
        assert_eq!(fake.base_url(), format!("http://127.0.0.1:{}", fake.port()));
        let text = answer_text("claude-box", "claude-fake-large");

        let plain = complete(&fake, &anthropic_body(false));
        assert_eq!(plain.status, 200, "{}", plain.text());
        let message: anthropic::MessageResponse =
            serde_json::from_slice(&plain.body).expect("a message");
        assert_eq!(anthropic::join_text(&message.content), text);
        assert_eq!(message.stop_reason.as_deref(), Some("end_turn"));
        let expected = usage(&fake, &anthropic_body(false));
        assert_eq!(TokenUsage::from(&message.usage), expected);

        let streamed = complete(&fake, &anthropic_body(true));
        assert_eq!(streamed.header("content-type"), Some("text/event-stream"));
        let parsed: Vec<StreamEvent> = sse_events(&streamed)
            .iter()
            .map(|e| {
                let event: StreamEvent = serde_json::from_str(&e.data).expect("an event");
                assert_eq!(
                    e.event.as_deref(),
                    Some(event.name()),
                    "event names repeat the type"
                );
                event
            })
            .collect();
        let names: Vec<&str> = parsed.iter().map(StreamEvent::name).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        let mut streamed_text = String::new();
        for event in &parsed {
            match event {
                StreamEvent::MessageStart { message } => {
                    assert_eq!(message.usage.input_tokens, expected.input_tokens)
                }
                StreamEvent::ContentBlockDelta { delta, .. } => {
                    streamed_text.push_str(delta.text.as_deref().unwrap_or_default())
                }
                StreamEvent::MessageDelta { delta, usage } => {
                    assert_eq!(delta.stop_reason.as_deref(), Some("end_turn"));
                    assert_eq!(usage.output_tokens, expected.output_tokens);
                }
                _ => {}
            }
        }
        assert_eq!(streamed_text, text);
        assert_eq!(fake.served(), 2);
    }

    #[test]
    fn keys_and_versions_are_checked_in_each_apis_error_shape() {
        let oa = FakeLlm::start(FakeKind::OpenAi);
        let bytes = openai_body(false, false).to_string();
        for headers in [vec![], vec![("Authorization", "Bearer sk-wrong")]] {
            let r = request(
                oa.port(),
                "POST",
                "/v1/chat/completions",
                &headers,
                bytes.as_bytes(),
            )
            .expect("an answer");
            assert_eq!(r.status, 401);
            let e: openai::ErrorBody = serde_json::from_slice(&r.body).expect("openai's shape");
            assert_eq!(e.error.code, Some(json!("invalid_api_key")));
        }
        assert_eq!(oa.served(), 0);

        let an = FakeLlm::start(FakeKind::Anthropic);
        let bytes = anthropic_body(false).to_string();
        let wrong = [
            ("x-api-key", "sk-wrong"),
            ("anthropic-version", "2023-06-01"),
        ];
        let r = request(an.port(), "POST", "/v1/messages", &wrong, bytes.as_bytes())
            .expect("an answer");
        assert_eq!(r.status, 401);
        let e: anthropic::ErrorBody = serde_json::from_slice(&r.body).expect("anthropic's shape");
        assert_eq!(
            (e.kind.as_str(), e.error.kind.as_str()),
            ("error", "authentication_error")
        );
        let no_version = [("x-api-key", an.key())];
        let r = request(
            an.port(),
            "POST",
            "/v1/messages",
            &no_version,
            bytes.as_bytes(),
        )
        .expect("an answer");
        assert_eq!(r.status, 400);
        assert!(r.text().contains("anthropic-version"), "{}", r.text());
        // a request the real API refuses (no max_tokens) is a 400 here too
        let r = complete(&an, &json!({"model": "m", "messages": []}));
        assert_eq!(r.status, 400);
        assert!(r.text().contains("max_tokens"), "{}", r.text());
        assert_eq!(an.served(), 0);
        // the official SDK's bearer token is accepted as well
        let bearer = format!("Bearer {}", an.key());
        let sdk = [
            ("Authorization", bearer.as_str()),
            ("anthropic-version", "2023-06-01"),
        ];
        let r =
            request(an.port(), "POST", "/v1/messages", &sdk, bytes.as_bytes()).expect("an answer");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(an.served(), 1);
    }

    #[test]
    fn models_are_listed_in_each_apis_shape() {
        let oa = FakeLlm::start(FakeKind::OpenAi);
        let header = format!("Bearer {}", oa.key());
        let r = request(
            oa.port(),
            "GET",
            "/v1/models",
            &[("Authorization", &header)],
            b"",
        )
        .expect("an answer");
        let list = r.json();
        let ids: Vec<&str> = list["data"]
            .as_array()
            .expect("data")
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        assert_eq!(ids, ["gpt-fake-large", "gpt-fake-small"]);
        assert_eq!(r.json()["object"], "list");

        let an = FakeLlm::start(FakeKind::Anthropic);
        let headers = [("x-api-key", an.key()), ("anthropic-version", "2023-06-01")];
        let r = request(an.port(), "GET", "/v1/models", &headers, b"").expect("an answer");
        assert_eq!(r.json()["data"][0]["id"], "claude-fake-large");
        assert_eq!(r.json()["has_more"], false);
        assert_eq!(an.served(), 0, "a models list is not a served completion");
    }

    #[test]
    fn a_script_runs_in_order_then_the_default_answers() {
        let fake = FakeLlm::start(FakeKind::OpenAi);
        fake.script(vec![
            Fault::rate_limited("2"),
            Fault::Status {
                code: 502,
                retry_after: None,
                body: Some("<html>bad gateway</html>".into()),
            },
            Fault::None,
        ]);
        fake.set_default(Fault::status(503));
        let body = openai_body(false, false);
        let r = complete(&fake, &body);
        assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));
        let e: openai::ErrorBody = serde_json::from_slice(&r.body).expect("openai's shape");
        assert!(
            e.error.message.contains("fake-openai"),
            "{}",
            e.error.message
        );
        let r = complete(&fake, &body);
        assert_eq!(
            (r.status, r.text().as_str()),
            (502, "<html>bad gateway</html>")
        );
        assert_eq!(complete(&fake, &body).status, 200);
        let r = complete(&fake, &body);
        assert_eq!((r.status, r.header("retry-after")), (503, None));
        assert_eq!(complete(&fake, &body).status, 503);
        assert_eq!(fake.served(), 1);
        assert_eq!(fake.completion_calls().len(), 5);

        // an anthropic fake's errors are in anthropic's shape
        let an = FakeLlm::start(FakeKind::Anthropic);
        an.script(vec![Fault::status(529)]);
        let r = complete(&an, &anthropic_body(false));
        let e: anthropic::ErrorBody = serde_json::from_slice(&r.body).expect("anthropic's shape");
        assert_eq!((r.status, e.error.kind.as_str()), (529, "overloaded_error"));
    }

    #[test]
    fn a_slow_first_byte_sends_nothing_not_even_headers_until_then() {
        let fake = FakeLlm::start(FakeKind::OpenAi);
        fake.script(vec![Fault::SlowFirstByte(Duration::from_millis(1500))]);
        let mut stream = wire::send(fake.port(), &raw_completion(&fake, false));
        assert!(wire::silent_for(&mut stream, Duration::from_millis(300)));
        let (head, body) = wire::split(&wire::read_all(&mut stream));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let answer: Value = serde_json::from_slice(&body).expect("the whole answer");
        assert_eq!(answer["usage"]["completion_tokens"], 4);
        assert_eq!(fake.served(), 1);
    }

    #[test]
    fn a_slow_body_sends_the_headers_first() {
        for kind in [FakeKind::OpenAi, FakeKind::Anthropic] {
            let fake = FakeLlm::start(kind);
            fake.script(vec![Fault::SlowBody(Duration::from_millis(1500))]);
            let mut stream = wire::send(fake.port(), &raw_completion(&fake, true));
            let head = wire::read_head(&mut stream);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(wire::silent_for(&mut stream, Duration::from_millis(300)));
            let (body, complete) = wire::dechunk(&wire::read_all(&mut stream));
            assert!(complete, "{kind:?}");
            let events = sse::parse_all(&body).expect("events");
            assert!(events.len() > 5, "{kind:?}: {events:?}");
            assert_eq!(fake.served(), 1);
        }
    }

    #[test]
    fn a_cut_before_the_first_byte_sends_a_200_head_and_nothing_else() {
        for stream_it in [true, false] {
            let fake = FakeLlm::start(FakeKind::Anthropic);
            fake.script(vec![Fault::CutBeforeFirstByte]);
            let mut stream = wire::send(fake.port(), &raw_completion(&fake, stream_it));
            let (head, rest) = wire::split(&wire::read_all(&mut stream));
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert_eq!(rest, b"", "{head}");
            assert_eq!(fake.served(), 0);
            // the next request is answered normally
            assert_eq!(complete(&fake, &anthropic_body(false)).status, 200);
        }
    }

    #[test]
    fn a_cut_after_the_first_byte_drops_the_stream_midway() {
        let fake = FakeLlm::start(FakeKind::OpenAi);
        fake.script(vec![Fault::CutAfterFirstByte, Fault::CutAfterFirstByte]);
        let mut stream = wire::send(fake.port(), &raw_completion(&fake, true));
        let (head, rest) = wire::split(&wire::read_all(&mut stream));
        assert!(head.contains("text/event-stream"), "{head}");
        let (body, complete) = wire::dechunk(&rest);
        assert!(!complete, "the chunked body must not end properly");
        let events = sse::parse_all(&body).expect("events");
        assert_eq!(events.len(), 2, "{events:?}");
        let first: ChatChunk = serde_json::from_str(&events[0].data).expect("a chunk");
        assert_eq!(first.choices[0].delta.role.as_deref(), Some("assistant"));

        // a plain answer is cut half way: a client library fails to read it
        let headers = [("Authorization", format!("Bearer {}", fake.key()))];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let bytes = openai_body(false, false).to_string();
        let e = request(
            fake.port(),
            "POST",
            "/v1/chat/completions",
            &headers,
            bytes.as_bytes(),
        )
        .expect_err("an incomplete body");
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
        assert_eq!(fake.served(), 0);
    }

    #[test]
    fn malformed_json_is_a_200_that_does_not_parse() {
        let fake = FakeLlm::start(FakeKind::OpenAi);
        fake.script(vec![Fault::MalformedJson, Fault::MalformedJson]);
        let r = complete(&fake, &openai_body(false, false));
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with("{\"id\":"), "{}", r.text());
        assert!(
            serde_json::from_slice::<Value>(&r.body).is_err(),
            "{}",
            r.text()
        );

        let r = complete(&fake, &openai_body(true, true));
        assert_eq!(r.status, 200);
        let events = sse_events(&r);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(serde_json::from_str::<Value>(&events[0].data).is_err());
        assert_eq!(fake.served(), 0);
    }

    #[test]
    fn missing_usage_is_a_success_without_usage() {
        let oa = FakeLlm::start(FakeKind::OpenAi);
        oa.script(vec![Fault::MissingUsage, Fault::MissingUsage]);
        let r = complete(&oa, &openai_body(false, false));
        assert_eq!(r.status, 200);
        assert!(r.json().get("usage").is_none(), "{}", r.text());
        let r = complete(&oa, &openai_body(true, true));
        assert!(!r.text().contains("prompt_tokens"), "{}", r.text());
        assert!(r.text().ends_with("data: [DONE]\n\n"));
        assert_eq!(oa.served(), 2, "the answers were whole");

        let an = FakeLlm::start(FakeKind::Anthropic);
        an.script(vec![Fault::MissingUsage, Fault::MissingUsage]);
        let r = complete(&an, &anthropic_body(false));
        assert!(r.json().get("usage").is_none(), "{}", r.text());
        let r = complete(&an, &anthropic_body(true));
        assert!(!r.text().contains("tokens"), "{}", r.text());
        assert!(r.text().contains("message_stop"));
        assert_eq!(an.served(), 2);
    }

    #[test]
    fn close_answers_nothing_and_keeps_listening() {
        let fake = FakeLlm::start(FakeKind::Anthropic);
        fake.script(vec![Fault::Close]);
        let mut stream = wire::send(fake.port(), &raw_completion(&fake, false));
        assert_eq!(wire::read_all(&mut stream), b"");
        assert_eq!(fake.completion_calls().len(), 1, "the request was received");
        assert_eq!(complete(&fake, &anthropic_body(false)).status, 200);
    }

    #[test]
    fn refuse_closes_the_port_until_resumed() {
        let fake = FakeLlm::start(FakeKind::OpenAi);
        // a kept-alive connection, open before the fake goes down
        let header = format!("Bearer {}", fake.key());
        let mut kept = Conn::open(fake.port()).expect("connect");
        let auth = [("Authorization", header.as_str())];
        assert_eq!(
            kept.send("GET", "/v1/models", &auth, b"")
                .expect("ok")
                .status,
            200
        );

        fake.script(vec![Fault::Refuse]);
        let mut stream = wire::send(fake.port(), &raw_completion(&fake, false));
        assert_eq!(wire::read_all(&mut stream), b"");
        let refused = TcpStream::connect(("127.0.0.1", fake.port())).expect_err("refused");
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        // the kept-alive connection was closed too: reconnecting is refused
        assert!(kept.send("GET", "/v1/models", &auth, b"").is_err());

        fake.resume();
        assert_eq!(complete(&fake, &openai_body(false, false)).status, 200);

        // as a default, the port closes at once
        fake.set_default(Fault::Refuse);
        let refused = TcpStream::connect(("127.0.0.1", fake.port())).expect_err("refused");
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        fake.set_default(Fault::None);
        fake.resume();
        assert_eq!(complete(&fake, &openai_body(false, false)).status, 200);
        assert_eq!(fake.served(), 2);
    }

    #[test]
    fn a_fake_stops_when_dropped() {
        let fake = FakeLlm::start(FakeKind::OpenAi);
        let port = fake.port();
        drop(fake);
        let refused = TcpStream::connect(("127.0.0.1", port)).expect_err("refused");
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn a_fake_lives_and_dies_inside_an_async_test() {
        let fake = FakeLlm::start(FakeKind::OpenAi);
        fake.set_default(Fault::Refuse);
        fake.set_default(Fault::None);
        fake.resume();
        let port = fake.port();
        let body = openai_body(false, false);
        let header = format!("Bearer {}", fake.key());
        let answer = tokio::task::spawn_blocking(move || {
            let bytes = body.to_string();
            request(
                port,
                "POST",
                "/v1/chat/completions",
                &[("Authorization", header.as_str())],
                bytes.as_bytes(),
            )
        })
        .await
        .expect("the client thread")
        .expect("an answer");
        assert_eq!(answer.status, 200);
        assert_eq!(fake.served(), 1);
        drop(fake); // must not block or panic inside the runtime
        let refused = TcpStream::connect(("127.0.0.1", port));
        assert!(refused.is_err());
    }

    #[test]
    fn usage_is_a_function_of_the_prompt_and_answer() {
        assert_eq!(
            usage_for(0, "hello from x (y)"),
            TokenUsage {
                input_tokens: 1,
                output_tokens: 4
            }
        );
        assert_eq!(usage_for(400, "").input_tokens, 101);
        // the same prompt counts the same in either format
        let fake_oa = super::prompt_bytes(FakeKind::OpenAi, &openai_body(false, false));
        let fake_an = super::prompt_bytes(FakeKind::Anthropic, &anthropic_body(false));
        assert_eq!((fake_oa, fake_an), (Some(29), Some(29)));
        assert_eq!(
            super::prompt_bytes(FakeKind::OpenAi, &json!({"x": 1})),
            None
        );
    }

    #[test]
    fn a_provider_entry_names_the_fake() {
        let fake = FakeLlm::start(FakeKind::Anthropic);
        let yaml = fake.provider_yaml("claude_side", "CLAUDE_KEY");
        assert_eq!(
            yaml,
            format!(
                "  claude_side:\n    kind: anthropic\n    base_url: \"http://127.0.0.1:{}\"\n    api_key_env: CLAUDE_KEY\n",
                fake.port()
            )
        );
    }
}
