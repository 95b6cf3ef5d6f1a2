//! Streamed answers translated event by event, each direction an explicit state
//! machine fed one parsed server-sent event at a time. A translator also keeps the
//! usage it saw, for the proxy to settle budgets on, and says how a stream ended: at
//! its proper end, on an upstream error, or cut short. The error events written here
//! are what a client reads when a stream breaks after its first byte.
//!
//! Split from `sse.rs`, which knows nothing of either format, so that the parser
//! stays a plain event-stream parser the fuzz target and the tests can drive alone.

use std::fmt;

use serde_json::{Map, Value};

use super::anthropic::{self, Block, BlockDelta, StreamEvent};
use super::openai::{self, ChatChunk, ChunkChoice, Delta};
use super::sse::{self, Event};
use super::translate::{finish_reason_for, stop_reason_for, usage_to_anthropic, usage_to_openai};
use super::TokenUsage;

/// Why a stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// The upstream reported an error in the stream (its type and message).
    Upstream { kind: String, message: String },
    /// The upstream sent something that is not its format, or out of order.
    Malformed(String),
    /// The stream ended before its end.
    Truncated,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Upstream { message, .. } => write!(f, "upstream error: {message}"),
            StreamError::Malformed(why) => write!(f, "the upstream stream is malformed: {why}"),
            StreamError::Truncated => f.write_str("the upstream stream ended early"),
        }
    }
}

impl std::error::Error for StreamError {}

impl StreamError {
    /// The error as an OpenAI client reads it in a stream.
    pub fn to_openai(&self) -> openai::ErrorBody {
        match self {
            StreamError::Upstream { kind, message } if kind == "rate_limit_error" => {
                openai::ErrorBody::new(429, message.clone())
            }
            StreamError::Upstream { message, .. } => openai::ErrorBody::new(500, message.clone()),
            other => openai::ErrorBody::new(502, other.to_string()),
        }
    }

    /// The error as an Anthropic client reads it in a stream.
    pub fn to_anthropic(&self) -> anthropic::ErrorBody {
        match self {
            StreamError::Upstream { kind, message } => {
                let kind = match kind.as_str() {
                    "rate_limit_exceeded" | "requests" | "tokens" => "rate_limit_error",
                    k if ANTHROPIC_KINDS.contains(&k) => k,
                    _ => "api_error",
                };
                anthropic::ErrorBody::typed(kind, message.clone())
            }
            other => anthropic::ErrorBody::new(502, other.to_string()),
        }
    }
}

/// Anthropic's error types, kept as they are when an Anthropic stream fails.
const ANTHROPIC_KINDS: [&str; 10] = [
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
];

/// An error in an OpenAI stream: a `data:` object with an `error` member, which the
/// OpenAI SDKs raise as an API error. No `[DONE]` follows: the stream did not end well.
pub fn write_openai_error(out: &mut Vec<u8>, e: &openai::ErrorBody) {
    sse::write_event(out, None, &to_json(e));
}

/// An error in an Anthropic stream: an `error` event, which the Anthropic SDKs raise.
pub fn write_anthropic_error(out: &mut Vec<u8>, e: &anthropic::ErrorBody) {
    sse::write_event(out, Some("error"), &to_json(e));
}

/// What an OpenAI stream carries: chunks, then `[DONE]`.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenAiOut {
    Chunk(Box<ChatChunk>),
    Done,
}

/// Writes translated OpenAI output as server-sent events.
pub fn write_openai(out: &mut Vec<u8>, items: &[OpenAiOut]) {
    for item in items {
        match item {
            OpenAiOut::Chunk(c) => sse::write_event(out, None, &to_json(c)),
            OpenAiOut::Done => sse::write_done(out),
        }
    }
}

/// Writes Anthropic events as server-sent events, each named after its type.
pub fn write_anthropic(out: &mut Vec<u8>, items: &[StreamEvent]) {
    for e in items {
        sse::write_event(out, Some(e.name()), &to_json(e));
    }
}

fn to_json(v: &impl serde::Serialize) -> String {
    // the wire types hold only strings, numbers and JSON values: they always serialize
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// nothing read yet
    Start,
    /// the message has begun
    Open,
    /// the end was announced (`message_delta` or a `finish_reason`), not yet reached
    Closing,
    /// the end was reached and written
    Done,
    /// an error stopped the stream; what follows is ignored
    Failed,
}

impl Phase {
    /// The upstream's stream ended here: whether the end still has to be written (it
    /// was announced but not reached), or an error if the stream was cut short.
    fn at_upstream_end(&mut self) -> Result<bool, StreamError> {
        match self {
            Phase::Done | Phase::Failed => Ok(false),
            Phase::Closing => Ok(true),
            Phase::Start | Phase::Open => {
                *self = Phase::Failed;
                Err(StreamError::Truncated)
            }
        }
    }
}

// ---------------------------------------------------------------- anthropic → openai

/// An Anthropic event stream for an OpenAI client: a role chunk first, text and tool
/// call deltas, a chunk with the `finish_reason`, the usage chunk if the client asked
/// for it (`stream_options.include_usage`), then `[DONE]`.
#[derive(Debug, Clone)]
pub struct AnthropicToOpenAi {
    phase: Phase,
    created: u64,
    include_usage: bool,
    id: String,
    model: String,
    usage: Option<anthropic::Usage>,
    finish_reason: Option<&'static str>,
    /// (content block index, tool call index) of each tool_use block
    tools: Vec<(u32, u32)>,
}

impl AnthropicToOpenAi {
    /// `created` is the chunks' time in Unix seconds, which Anthropic does not send.
    pub fn new(created: u64, include_usage: bool) -> AnthropicToOpenAi {
        AnthropicToOpenAi {
            phase: Phase::Start,
            created,
            include_usage,
            id: String::new(),
            model: String::new(),
            usage: None,
            finish_reason: None,
            tools: Vec::new(),
        }
    }

    /// The usage seen so far: input from `message_start`, output as last counted.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage.as_ref().map(TokenUsage::from)
    }

    /// Whether the stream reached its proper end.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Reads one upstream event, appending what the client is to get to `out`.
    pub fn feed(&mut self, ev: &Event, out: &mut Vec<OpenAiOut>) -> Result<(), StreamError> {
        if matches!(self.phase, Phase::Done | Phase::Failed) {
            return Ok(());
        }
        let parsed = serde_json::from_str::<StreamEvent>(&ev.data).map_err(|e| {
            StreamError::Malformed(format!("an event is not one of anthropic's: {e}"))
        });
        let result = parsed.and_then(|event| self.step(event, out));
        if result.is_err() {
            self.phase = Phase::Failed;
        }
        result
    }

    fn step(&mut self, event: StreamEvent, out: &mut Vec<OpenAiOut>) -> Result<(), StreamError> {
        match (self.phase, event) {
            (_, StreamEvent::Ping | StreamEvent::Unknown) => {}
            (_, StreamEvent::Error { error }) => {
                return Err(StreamError::Upstream {
                    kind: error.kind,
                    message: error.message,
                })
            }
            (Phase::Start, StreamEvent::MessageStart { message }) => {
                self.id = message.id;
                self.model = message.model;
                self.usage = Some(message.usage);
                self.phase = Phase::Open;
                out.push(self.chunk(
                    Delta {
                        role: Some("assistant".into()),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                ));
            }
            (Phase::Start, other) => {
                return Err(StreamError::Malformed(format!(
                    "`{}` before `message_start`",
                    other.name()
                )))
            }
            (_, StreamEvent::MessageStart { .. }) => {
                return Err(StreamError::Malformed("a second `message_start`".into()))
            }
            (
                Phase::Open,
                StreamEvent::ContentBlockStart {
                    index,
                    content_block,
                },
            ) => self.block_start(index, content_block, out),
            (Phase::Open, StreamEvent::ContentBlockDelta { index, delta }) => {
                self.block_delta(index, delta, out)?
            }
            (Phase::Open, StreamEvent::ContentBlockStop { .. }) => {}
            (Phase::Open, StreamEvent::MessageDelta { delta, usage }) => {
                let reason = finish_reason_for(delta.stop_reason.as_deref().unwrap_or("end_turn"));
                self.finish_reason = Some(reason);
                if let Some(u) = self.usage.as_mut() {
                    u.output_tokens = usage.output_tokens;
                    if let Some(n) = usage.input_tokens {
                        u.input_tokens = n;
                    }
                    if usage.cache_read_input_tokens.is_some() {
                        u.cache_read_input_tokens = usage.cache_read_input_tokens;
                    }
                    if usage.cache_creation_input_tokens.is_some() {
                        u.cache_creation_input_tokens = usage.cache_creation_input_tokens;
                    }
                }
                self.phase = Phase::Closing;
                out.push(self.chunk(Delta::default(), Some(reason)));
            }
            (Phase::Open | Phase::Closing, StreamEvent::MessageStop) => self.end(out),
            (_, other) => {
                return Err(StreamError::Malformed(format!(
                    "`{}` after `message_delta`",
                    other.name()
                )))
            }
        }
        Ok(())
    }

    fn block_start(&mut self, index: u32, block: Block, out: &mut Vec<OpenAiOut>) {
        match block.kind.as_str() {
            "text" => {
                if let Some(text) = block.text.filter(|t| !t.is_empty()) {
                    out.push(self.chunk(text_delta(text), None));
                }
            }
            "tool_use" => {
                let call = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                self.tools.push((index, call));
                let delta = openai::ToolCallDelta {
                    index: call,
                    id: block.id,
                    kind: Some("function".into()),
                    function: Some(openai::FunctionDelta {
                        name: block.name,
                        arguments: Some(String::new()),
                    }),
                };
                out.push(self.chunk(tool_delta(delta), None));
            }
            // thinking and other blocks have no OpenAI form
            _ => {}
        }
    }

    fn block_delta(
        &mut self,
        index: u32,
        delta: BlockDelta,
        out: &mut Vec<OpenAiOut>,
    ) -> Result<(), StreamError> {
        match delta.kind.as_str() {
            "text_delta" => {
                if let Some(text) = delta.text.filter(|t| !t.is_empty()) {
                    out.push(self.chunk(text_delta(text), None));
                }
            }
            "input_json_delta" => {
                let Some(&(_, call)) = self.tools.iter().find(|(b, _)| *b == index) else {
                    return Err(StreamError::Malformed(format!(
                        "`input_json_delta` for block {index}, which is not a tool call"
                    )));
                };
                let delta = openai::ToolCallDelta {
                    index: call,
                    id: None,
                    kind: None,
                    function: Some(openai::FunctionDelta {
                        name: None,
                        arguments: delta.partial_json,
                    }),
                };
                out.push(self.chunk(tool_delta(delta), None));
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<OpenAiOut>) {
        if self.finish_reason.is_none() {
            self.finish_reason = Some("stop");
            out.push(self.chunk(Delta::default(), Some("stop")));
        }
        if self.include_usage {
            let usage = self.usage.as_ref().map(usage_to_openai).unwrap_or_default();
            let mut c = self.chunk_with(Vec::new());
            c.usage = Some(usage);
            out.push(OpenAiOut::Chunk(Box::new(c)));
        }
        out.push(OpenAiOut::Done);
        self.phase = Phase::Done;
    }

    /// The upstream's end of stream. A stream that announced its end (`message_delta`)
    /// but lost `message_stop` is ended as if it had come; any other is cut short.
    pub fn finish(&mut self, out: &mut Vec<OpenAiOut>) -> Result<(), StreamError> {
        if self.phase.at_upstream_end()? {
            self.end(out);
        }
        Ok(())
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<&str>) -> OpenAiOut {
        OpenAiOut::Chunk(Box::new(self.chunk_with(vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish_reason.map(str::to_string),
            extra: Map::new(),
        }])))
    }

    fn chunk_with(&self, choices: Vec<ChunkChoice>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: openai::CHUNK_OBJECT.into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: None,
            extra: Map::new(),
        }
    }
}

fn text_delta(text: String) -> Delta {
    Delta {
        content: Some(text),
        ..Delta::default()
    }
}

fn tool_delta(call: openai::ToolCallDelta) -> Delta {
    Delta {
        tool_calls: Some(vec![call]),
        ..Delta::default()
    }
}

// ---------------------------------------------------------------- openai → anthropic

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text(u32),
    Tool(u32),
}

/// An OpenAI chunk stream for an Anthropic client: `message_start`, for each text run
/// or tool call a `content_block_start`, its deltas and `content_block_stop`, then
/// `message_delta` with the stop reason and usage, and `message_stop`. The stop is
/// written at `[DONE]` rather than at the `finish_reason`, because the usage chunk
/// comes between the two.
#[derive(Debug, Clone)]
pub struct OpenAiToAnthropic {
    phase: Phase,
    input_hint: u64,
    open: Open,
    next_block: u32,
    /// (tool call index, content block index) of each tool call
    tools: Vec<(u32, u32)>,
    finish_reason: Option<String>,
    usage: Option<openai::Usage>,
}

impl OpenAiToAnthropic {
    /// `input_hint` is the input tokens `message_start` reports: OpenAI counts them
    /// only at the end, where `message_delta` reports the real number.
    pub fn new(input_hint: u64) -> OpenAiToAnthropic {
        OpenAiToAnthropic {
            phase: Phase::Start,
            input_hint,
            open: Open::None,
            next_block: 0,
            tools: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// The usage the upstream reported, if its usage chunk came.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage.as_ref().map(TokenUsage::from)
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Reads one upstream event, appending what the client is to get to `out`.
    pub fn feed(&mut self, ev: &Event, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if matches!(self.phase, Phase::Done | Phase::Failed) {
            return Ok(());
        }
        let result = self.step(ev, out);
        if result.is_err() {
            self.phase = Phase::Failed;
        }
        result
    }

    fn step(&mut self, ev: &Event, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if ev.data.trim() == "[DONE]" {
            self.start(None, out);
            self.end(out);
            return Ok(());
        }
        let value: Value = serde_json::from_str(&ev.data)
            .map_err(|e| StreamError::Malformed(format!("a chunk is not JSON: {e}")))?;
        if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
            let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or_default();
            return Err(StreamError::Upstream {
                kind: field("type").into(),
                message: field("message").into(),
            });
        }
        let chunk: ChatChunk = serde_json::from_value(value)
            .map_err(|e| StreamError::Malformed(format!("a chunk is not openai's: {e}")))?;
        self.start(Some(&chunk), out);
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                let index = match self.open {
                    Open::Text(i) => i,
                    _ => self.open_block(Block::text(""), Open::Text, out),
                };
                out.push(StreamEvent::ContentBlockDelta {
                    index,
                    delta: BlockDelta::text(text),
                });
            }
            for call in choice.delta.tool_calls.unwrap_or_default() {
                self.tool_delta(call, out);
            }
            if let Some(reason) = choice.finish_reason {
                self.close_block(out);
                self.finish_reason = Some(reason);
                self.phase = Phase::Closing;
            }
        }
        Ok(())
    }

    fn start(&mut self, chunk: Option<&ChatChunk>, out: &mut Vec<StreamEvent>) {
        if self.phase != Phase::Start {
            return;
        }
        self.phase = Phase::Open;
        out.push(StreamEvent::MessageStart {
            message: anthropic::MessageResponse {
                id: chunk.map(|c| c.id.clone()).unwrap_or_default(),
                kind: "message".into(),
                role: "assistant".into(),
                content: Vec::new(),
                model: chunk.map(|c| c.model.clone()).unwrap_or_default(),
                stop_reason: None,
                stop_sequence: None,
                usage: anthropic::Usage::new(self.input_hint, 0),
                extra: Map::new(),
            },
        });
    }

    fn open_block(
        &mut self,
        block: Block,
        open: fn(u32) -> Open,
        out: &mut Vec<StreamEvent>,
    ) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block = self.next_block.saturating_add(1);
        self.open = open(index);
        out.push(StreamEvent::ContentBlockStart {
            index,
            content_block: block,
        });
        index
    }

    fn close_block(&mut self, out: &mut Vec<StreamEvent>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Text(index) | Open::Tool(index) => {
                out.push(StreamEvent::ContentBlockStop { index })
            }
        }
    }

    fn tool_delta(&mut self, call: openai::ToolCallDelta, out: &mut Vec<StreamEvent>) {
        let function = call.function.unwrap_or_default();
        let known = self
            .tools
            .iter()
            .find(|(c, _)| *c == call.index)
            .map(|&(_, b)| b);
        let index = match (known, call.id) {
            (Some(b), _) => b,
            (None, id) => {
                let block = Block::tool_use(
                    id.unwrap_or_default(),
                    function.name.unwrap_or_default(),
                    Value::Object(Map::new()),
                );
                let b = self.open_block(block, Open::Tool, out);
                self.tools.push((call.index, b));
                b
            }
        };
        if let Some(args) = function.arguments.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::input_json(args),
            });
        }
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        self.close_block(out);
        let usage = self
            .usage
            .as_ref()
            .map(usage_to_anthropic)
            .unwrap_or_default();
        out.push(StreamEvent::MessageDelta {
            delta: anthropic::MessageDelta {
                stop_reason: Some(
                    stop_reason_for(self.finish_reason.as_deref().unwrap_or("stop")).into(),
                ),
                stop_sequence: None,
            },
            usage: anthropic::DeltaUsage {
                output_tokens: usage.output_tokens,
                input_tokens: self.usage.is_some().then_some(usage.input_tokens),
                cache_creation_input_tokens: None,
                cache_read_input_tokens: usage.cache_read_input_tokens,
            },
        });
        out.push(StreamEvent::MessageStop);
        self.phase = Phase::Done;
    }

    /// The upstream's end of stream. A stream that gave its `finish_reason` but lost
    /// `[DONE]` is ended as if it had come; any other is cut short.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        if self.phase.at_upstream_end()? {
            self.end(out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> Event {
        Event::named(
            v["type"].as_str().unwrap_or("message").to_string(),
            v.to_string(),
        )
    }

    fn anthropic_stream() -> Vec<Event> {
        vec![
            ev(
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                "role": "assistant", "content": [], "model": "claude", "stop_reason": null,
                "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
            ),
            ev(json!({"type": "ping"})),
            ev(
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            ev(
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
            ),
            ev(
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
            ),
            ev(json!({"type": "content_block_stop", "index": 0})),
            ev(
                json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": null},
                "usage": {"output_tokens": 7}}),
            ),
            ev(json!({"type": "message_stop"})),
        ]
    }

    fn run_a2o(events: &[Event], include_usage: bool) -> (Vec<OpenAiOut>, AnthropicToOpenAi) {
        let mut t = AnthropicToOpenAi::new(1_700_000_000, include_usage);
        let mut out = Vec::new();
        for e in events {
            t.feed(e, &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        (out, t)
    }

    #[test]
    fn anthropic_to_openai_role_text_finish_usage_done() {
        let (out, t) = run_a2o(&anthropic_stream(), true);
        assert!(t.is_done());
        assert_eq!(
            t.usage(),
            Some(TokenUsage {
                input_tokens: 12,
                output_tokens: 7
            })
        );
        let chunks: Vec<_> = out
            .iter()
            .map(|o| match o {
                OpenAiOut::Chunk(c) => serde_json::to_value(c).unwrap(),
                OpenAiOut::Done => json!("[DONE]"),
            })
            .collect();
        assert_eq!(chunks.len(), 6);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hel");
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(chunks[4]["usage"]["total_tokens"], 19);
        assert_eq!(chunks[5], "[DONE]");
        assert_eq!(chunks[0]["object"], "chat.completion.chunk");
        assert_eq!(chunks[0]["id"], "msg_1");

        let (out, _) = run_a2o(&anthropic_stream(), false);
        assert_eq!(out.len(), 5, "no usage chunk unless asked");
    }

    #[test]
    fn a_stream_cut_before_its_end_is_truncated() {
        let events = anthropic_stream();
        let mut t = AnthropicToOpenAi::new(0, false);
        let mut out = Vec::new();
        for e in &events[..4] {
            t.feed(e, &mut out).unwrap();
        }
        assert_eq!(t.finish(&mut out), Err(StreamError::Truncated));
        assert_eq!(t.usage().map(|u| u.input_tokens), Some(12));
        let mut bytes = Vec::new();
        write_openai_error(&mut bytes, &StreamError::Truncated.to_openai());
        let parsed = sse::parse_all(&bytes).unwrap();
        let v: Value = serde_json::from_str(&parsed[0].data).unwrap();
        assert_eq!(v["error"]["message"], "the upstream stream ended early");
    }

    #[test]
    fn an_upstream_error_event_stops_the_stream() {
        let mut t = AnthropicToOpenAi::new(0, false);
        let mut out = Vec::new();
        let e = ev(
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        let err = t.feed(&e, &mut out).unwrap_err();
        assert_eq!(
            err,
            StreamError::Upstream {
                kind: "overloaded_error".into(),
                message: "Overloaded".into()
            }
        );
        assert_eq!(err.to_anthropic().error.kind, "overloaded_error");
        assert!(
            t.feed(&anthropic_stream()[0], &mut out).is_ok(),
            "ignored after failing"
        );
        assert!(out.is_empty());
    }

    fn chunk(v: Value) -> Event {
        Event::data(v.to_string())
    }

    fn openai_stream() -> Vec<Event> {
        let base = |choices: Value, usage: Value| {
            chunk(
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-4o", "choices": choices, "usage": usage}),
            )
        };
        vec![
            base(
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
                Value::Null,
            ),
            base(
                json!([{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]),
                Value::Null,
            ),
            base(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "w", "arguments": ""}}]}, "finish_reason": null}]),
                Value::Null,
            ),
            base(
                json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]},
                "finish_reason": null}]),
                Value::Null,
            ),
            base(
                json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
                Value::Null,
            ),
            base(
                json!([]),
                json!({"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}),
            ),
            Event::data("[DONE]"),
        ]
    }

    #[test]
    fn openai_to_anthropic_blocks_stop_and_usage() {
        let mut t = OpenAiToAnthropic::new(20);
        let mut out = Vec::new();
        for e in openai_stream() {
            t.feed(&e, &mut out).unwrap();
        }
        t.finish(&mut out).unwrap();
        let names: Vec<_> = out.iter().map(StreamEvent::name).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            t.usage(),
            Some(TokenUsage {
                input_tokens: 9,
                output_tokens: 4
            })
        );
        let delta = serde_json::to_value(&out[7]).unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            delta["usage"],
            json!({"output_tokens": 4, "input_tokens": 9})
        );
        let start = serde_json::to_value(&out[4]).unwrap();
        assert_eq!(
            start["content_block"],
            json!({"type": "tool_use", "id": "call_1", "name": "w", "input": {}})
        );
    }

    #[test]
    fn an_openai_error_chunk_stops_the_stream() {
        let mut t = OpenAiToAnthropic::new(0);
        let mut out = Vec::new();
        let e = chunk(
            json!({"error": {"message": "boom", "type": "server_error", "param": null, "code": null}}),
        );
        let err = t.feed(&e, &mut out).unwrap_err();
        assert_eq!(err.to_anthropic().error.kind, "api_error");
        assert_eq!(err.to_anthropic().error.message, "boom");
        assert_eq!(t.finish(&mut out), Ok(()));
    }
}
