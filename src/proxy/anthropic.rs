//! The Anthropic Messages wire format, as far as the proxy reads or writes it: the
//! request, the response, the streamed events and the error envelope. Fields the proxy
//! does not interpret are kept in `extra` so that a request or response relayed to the
//! same kind of provider loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

type Extra = Map<String, Value>;

/// `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<Message>,
    /// Required by the API: a request without it is refused as Anthropic refuses it.
    pub max_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl MessagesRequest {
    pub fn streaming(&self) -> bool {
        self.stream == Some(true)
    }
}

/// `system`: a string or a list of text blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<Block>),
}

impl System {
    pub fn joined_text(&self) -> String {
        match self {
            System::Text(s) => s.clone(),
            System::Blocks(blocks) => join_text(blocks),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Content,
}

/// A message's content: a plain string or a list of blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

impl Content {
    pub fn into_blocks(self) -> Vec<Block> {
        match self {
            Content::Text(s) => vec![Block::text(s)],
            Content::Blocks(b) => b,
        }
    }
}

/// One content block. `type` says which fields are set: `text` (text), `tool_use`
/// (id, name, input), `tool_result` (tool_use_id, content), `image`, `thinking`, ….
/// One struct rather than an enum so that block types added later pass through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Block {
    fn empty(kind: &str) -> Block {
        Block {
            kind: kind.into(),
            text: None,
            id: None,
            name: None,
            input: None,
            tool_use_id: None,
            content: None,
            extra: Extra::new(),
        }
    }

    pub fn text(text: impl Into<String>) -> Block {
        Block {
            text: Some(text.into()),
            ..Block::empty("text")
        }
    }

    pub fn tool_use(id: impl Into<String>, name: impl Into<String>, input: Value) -> Block {
        Block {
            id: Some(id.into()),
            name: Some(name.into()),
            input: Some(input),
            ..Block::empty("tool_use")
        }
    }

    /// `source` is `{"type": "base64", "media_type", "data"}` or `{"type": "url", "url"}`.
    pub fn image(source: Value) -> Block {
        let mut b = Block::empty("image");
        b.extra.insert("source".into(), source);
        b
    }

    pub fn tool_result(tool_use_id: impl Into<String>, content: Value) -> Block {
        Block {
            tool_use_id: Some(tool_use_id.into()),
            content: Some(content),
            ..Block::empty("tool_result")
        }
    }
}

/// The text of the `text` blocks, one after the other.
pub fn join_text(blocks: &[Block]) -> String {
    blocks
        .iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text.as_deref())
        .collect()
}

/// The answer to a request without `stream`; also the `message` of `message_start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageResponse {
    pub id: String,
    #[serde(rename = "type", default = "message_kind")]
    pub kind: String,
    #[serde(default = "assistant_role")]
    pub role: String,
    #[serde(default)]
    pub content: Vec<Block>,
    #[serde(default)]
    pub model: String,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: Usage,
    #[serde(flatten)]
    pub extra: Extra,
}

fn message_kind() -> String {
    "message".into()
}

fn assistant_role() -> String {
    "assistant".into()
}

/// Token counts; `input_tokens` leaves out the tokens read from or written to the
/// prompt cache, which the two `cache_*` fields count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Usage {
    pub fn new(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens,
            output_tokens,
            ..Usage::default()
        }
    }

    /// Every prompt token, cached or not: what OpenAI calls `prompt_tokens`.
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0))
            .saturating_add(self.cache_read_input_tokens.unwrap_or(0))
    }
}

/// One event of a streamed answer (the SSE `event:` name repeats `type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: MessageResponse,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: DeltaUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorDetail,
    },
    /// An event type added after this was written: skipped, as the SDKs skip it.
    #[serde(other)]
    Unknown,
}

impl StreamEvent {
    /// The SSE event name, which Anthropic sets to the `type`.
    pub fn name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Ping => "ping",
            StreamEvent::Error { .. } => "error",
            StreamEvent::Unknown => "unknown",
        }
    }
}

/// `text_delta` (text), `input_json_delta` (partial_json), `thinking_delta`, ….
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDelta {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_json: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl BlockDelta {
    pub fn text(text: impl Into<String>) -> BlockDelta {
        BlockDelta {
            kind: "text_delta".into(),
            text: Some(text.into()),
            partial_json: None,
            extra: Extra::new(),
        }
    }

    pub fn input_json(partial: impl Into<String>) -> BlockDelta {
        BlockDelta {
            kind: "input_json_delta".into(),
            text: None,
            partial_json: Some(partial.into()),
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageDelta {
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// The usage of `message_delta`: `output_tokens` is cumulative; the input counts are
/// present only when the API sends them there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeltaUsage {
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

/// `{"type": "error", "error": {"type", "message"}}`. The SDK picks its exception
/// class from the HTTP status; the body gives the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "type", default = "error_kind_tag")]
    pub kind: String,
    pub error: ErrorDetail,
}

fn error_kind_tag() -> String {
    "error".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub message: String,
}

impl ErrorBody {
    /// An error of the proxy's own, typed after its status as Anthropic types it.
    pub fn new(status: u16, message: impl Into<String>) -> ErrorBody {
        ErrorBody::typed(error_kind(status), message)
    }

    /// An error with a type of the proxy's own (e.g. `budget_exceeded`).
    pub fn typed(kind: &str, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            kind: error_kind_tag(),
            error: ErrorDetail {
                kind: kind.into(),
                message: message.into(),
            },
        }
    }

    /// An upstream error body as it came; a body that is not Anthropic's shape becomes
    /// a message naming the status.
    pub fn from_upstream(status: u16, body: &[u8]) -> ErrorBody {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) => e,
            Err(_) => ErrorBody::new(status, super::openai::fallback_message(status, body)),
        }
    }
}

/// Anthropic's error `type` for an HTTP status (its documented table).
pub fn error_kind(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_keeps_fields_it_does_not_read() {
        let body = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}],
            "top_k": 5, "metadata": {"user_id": "u1"},
            "thinking": {"type": "enabled", "budget_tokens": 2000}
        });
        let req: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(
            req.system.as_ref().map(System::joined_text).as_deref(),
            Some("be brief")
        );
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
    }

    #[test]
    fn max_tokens_is_required() {
        let body = json!({"model": "m", "messages": []});
        let e = serde_json::from_value::<MessagesRequest>(body).unwrap_err();
        assert!(e.to_string().contains("max_tokens"), "{e}");
    }

    #[test]
    fn events_parse_and_unknown_ones_are_kept_apart() {
        let e: StreamEvent = serde_json::from_str(
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            StreamEvent::ContentBlockDelta {
                index: 0,
                delta: BlockDelta::text("Hi")
            }
        );
        let e: StreamEvent = serde_json::from_str(r#"{"type":"future_thing","x":1}"#).unwrap();
        assert_eq!(e, StreamEvent::Unknown);
        let stop = serde_json::to_value(StreamEvent::MessageStop).unwrap();
        assert_eq!(stop, json!({"type": "message_stop"}));
    }

    #[test]
    fn prompt_tokens_count_the_cache() {
        let u = Usage {
            cache_read_input_tokens: Some(100),
            cache_creation_input_tokens: Some(10),
            ..Usage::new(5, 7)
        };
        assert_eq!(u.prompt_tokens(), 115);
    }

    #[test]
    fn errors_are_typed_after_their_status() {
        assert_eq!(ErrorBody::new(429, "x").error.kind, "rate_limit_error");
        assert_eq!(ErrorBody::new(529, "x").error.kind, "overloaded_error");
        assert_eq!(ErrorBody::new(400, "x").error.kind, "invalid_request_error");
        let e = ErrorBody::from_upstream(500, b"");
        assert_eq!(e.error.message, "upstream answered 500");
        assert_eq!(e.kind, "error");
    }
}
