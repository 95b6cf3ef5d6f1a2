//! Requests, responses, stop reasons, usage and errors from one wire format to the
//! other, so that an OpenAI client can be served by an Anthropic model and the reverse.
//! Pure functions: what they cannot carry across (an audio part, a provider's own tool)
//! is a [`TranslateError`] for the proxy to answer with a 400, never a silent loss.

use std::fmt;

use serde_json::{json, Map, Value};

use super::anthropic::{self, Block};
use super::openai::{self, Role as OpenAiRole};

/// A request the other format cannot express; the message is for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError {
    pub message: String,
}

impl TranslateError {
    fn new(message: impl Into<String>) -> TranslateError {
        TranslateError {
            message: message.into(),
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TranslateError {}

/// Which field carries the output bound to an OpenAI-kind provider: OpenAI's own
/// reasoning models accept only `max_completion_tokens`, while many compatible
/// servers know only `max_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    MaxTokens,
    MaxCompletionTokens,
}

// ---------------------------------------------------------------- stop reasons

/// Anthropic `stop_reason` → OpenAI `finish_reason`.
pub fn finish_reason_for(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and reasons added later
        _ => "stop",
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`. OpenAI does not say whether a
/// `stop` was a stop sequence, so it reads as the end of the turn.
pub fn stop_reason_for(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

// ---------------------------------------------------------------- usage

/// Anthropic counts cached prompt tokens apart from `input_tokens`; OpenAI counts them
/// inside `prompt_tokens`.
pub fn usage_to_openai(u: &anthropic::Usage) -> openai::Usage {
    openai::Usage::new(
        u.prompt_tokens(),
        u.output_tokens,
        u.cache_read_input_tokens.unwrap_or(0),
    )
}

pub fn usage_to_anthropic(u: &openai::Usage) -> anthropic::Usage {
    let cached = u.cached_tokens().min(u.prompt_tokens);
    anthropic::Usage {
        cache_read_input_tokens: (cached > 0).then_some(cached),
        ..anthropic::Usage::new(u.prompt_tokens - cached, u.completion_tokens)
    }
}

// ---------------------------------------------------------------- errors

/// An Anthropic error for an OpenAI client; the caller keeps the HTTP status, which is
/// what the OpenAI SDK chooses its exception class from.
pub fn error_to_openai(status: u16, e: &anthropic::ErrorBody) -> openai::ErrorBody {
    let mut out = openai::ErrorBody::new(status, e.error.message.clone());
    if is_own_kind(&e.error.kind) {
        out = openai::ErrorBody::typed(&e.error.kind, e.error.message.clone());
    }
    out
}

/// An OpenAI error for an Anthropic client, typed after the status as Anthropic types it.
pub fn error_to_anthropic(status: u16, e: &openai::ErrorBody) -> anthropic::ErrorBody {
    if is_own_kind(&e.error.kind) {
        return anthropic::ErrorBody::typed(&e.error.kind, e.error.message.clone());
    }
    anthropic::ErrorBody::new(status, e.error.message.clone())
}

/// The proxy's own error types, which read the same in both formats.
fn is_own_kind(kind: &str) -> bool {
    kind == "budget_exceeded"
}

// ---------------------------------------------------------------- requests

/// An OpenAI request for an Anthropic model. System and developer messages, wherever
/// they stand, are gathered into `system` (Anthropic has no other place for them);
/// `max_tokens`, which Anthropic requires, is `default_max_tokens` when the client set
/// none; consecutive messages of one role are merged, as Anthropic expects the tool
/// results answering one assistant turn in one user message.
pub fn openai_to_anthropic_request(
    req: openai::ChatRequest,
    default_max_tokens: u64,
) -> Result<anthropic::MessagesRequest, TranslateError> {
    let mut extra = Map::new();
    if let Some(n) = req.extra.get("n").and_then(Value::as_u64) {
        if n > 1 {
            return Err(TranslateError::new(format!(
                "`n` = {n} asks for several choices, which an anthropic model cannot give"
            )));
        }
    }
    if let Some(user) = req.extra.get("user").and_then(Value::as_str) {
        extra.insert("metadata".into(), json!({ "user_id": user }));
    }
    let mut system = Vec::new();
    let mut messages: Vec<anthropic::Message> = Vec::new();
    for m in req.messages {
        let (role, blocks) = match m.role {
            OpenAiRole::System | OpenAiRole::Developer => {
                if let Some(c) = &m.content {
                    system.push(c.joined_text());
                }
                continue;
            }
            OpenAiRole::User => (anthropic::Role::User, user_blocks(m.content)?),
            OpenAiRole::Assistant => (anthropic::Role::Assistant, assistant_blocks(m)?),
            OpenAiRole::Tool => {
                let Some(id) = m.tool_call_id else {
                    return Err(TranslateError::new("a `tool` message needs `tool_call_id`"));
                };
                let text = m.content.map(|c| c.joined_text()).unwrap_or_default();
                (
                    anthropic::Role::User,
                    vec![Block::tool_result(id, Value::String(text))],
                )
            }
        };
        match messages.last_mut() {
            Some(last) if last.role == role => {
                let prev = std::mem::replace(&mut last.content, anthropic::Content::Blocks(vec![]));
                let mut all = prev.into_blocks();
                all.extend(blocks);
                last.content = anthropic::Content::Blocks(all);
            }
            _ => messages.push(anthropic::Message {
                role,
                content: compact(blocks),
            }),
        }
    }
    let tool_choice = match req.tool_choice {
        None => None,
        Some(c) => Some(tool_choice_to_anthropic(&c)?),
    };
    let tool_choice = match (tool_choice, req.extra.get("parallel_tool_calls")) {
        (choice, Some(Value::Bool(false))) => {
            let mut c = choice.unwrap_or_else(|| json!({"type": "auto"}));
            if let Some(o) = c.as_object_mut() {
                o.insert("disable_parallel_tool_use".into(), Value::Bool(true));
            }
            Some(c)
        }
        (choice, _) => choice,
    };
    Ok(anthropic::MessagesRequest {
        model: req.model,
        messages,
        max_tokens: req
            .max_completion_tokens
            .or(req.max_tokens)
            .unwrap_or(default_max_tokens),
        system: (!system.is_empty()).then(|| anthropic::System::Text(system.join("\n\n"))),
        stop_sequences: req.stop.map(openai::Stop::into_vec),
        temperature: req.temperature,
        top_p: req.top_p,
        stream: req.stream,
        tools: req.tools.as_ref().map(tools_to_anthropic).transpose()?,
        tool_choice,
        extra,
    })
}

/// One text block reads as a plain string, as clients usually write it.
fn compact(blocks: Vec<Block>) -> anthropic::Content {
    match blocks.as_slice() {
        [b] if b.kind == "text" && b.extra.is_empty() => {
            anthropic::Content::Text(b.text.clone().unwrap_or_default())
        }
        _ => anthropic::Content::Blocks(blocks),
    }
}

fn user_blocks(content: Option<openai::Content>) -> Result<Vec<Block>, TranslateError> {
    match content {
        None => Ok(vec![]),
        Some(openai::Content::Text(s)) => Ok(vec![Block::text(s)]),
        Some(openai::Content::Parts(parts)) => parts.into_iter().map(part_to_block).collect(),
    }
}

fn part_to_block(p: openai::Part) -> Result<Block, TranslateError> {
    match p.kind.as_str() {
        "text" => Ok(Block::text(p.text.unwrap_or_default())),
        "image_url" => {
            let url = p
                .extra
                .get("image_url")
                .and_then(|i| i.get("url"))
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::new("an `image_url` part needs `image_url.url`"))?;
            let source = match url
                .strip_prefix("data:")
                .and_then(|rest| rest.split_once(";base64,"))
            {
                Some((media_type, data)) => {
                    json!({"type": "base64", "media_type": media_type, "data": data})
                }
                None => json!({"type": "url", "url": url}),
            };
            Ok(Block::image(source))
        }
        other => Err(TranslateError::new(format!(
            "content of type `{other}` cannot be sent to an anthropic model"
        ))),
    }
}

fn assistant_blocks(m: openai::Message) -> Result<Vec<Block>, TranslateError> {
    let mut blocks = Vec::new();
    if let Some(c) = m.content {
        let text = c.joined_text();
        if !text.is_empty() {
            blocks.push(Block::text(text));
        }
    }
    for call in m.tool_calls.unwrap_or_default() {
        blocks.push(Block::tool_use(
            call.id,
            call.function.name,
            arguments_to_input(&call.function.arguments)?,
        ));
    }
    Ok(blocks)
}

/// A tool call's `arguments` string as the JSON object Anthropic's `input` is.
fn arguments_to_input(arguments: &str) -> Result<Value, TranslateError> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(TranslateError::new(format!(
            "tool call arguments `{}` are not a JSON object",
            truncate(arguments, 80)
        ))),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn tools_to_anthropic(tools: &Value) -> Result<Value, TranslateError> {
    let Some(list) = tools.as_array() else {
        return Err(TranslateError::new("`tools` must be a list"));
    };
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
        let f = t
            .get("function")
            .filter(|_| kind == "function")
            .ok_or_else(|| {
                TranslateError::new(format!(
                    "a tool of type `{kind}` cannot be sent to an anthropic model"
                ))
            })?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::new("a function tool needs a `name`"))?;
        let mut tool = Map::new();
        tool.insert("name".into(), name.into());
        if let Some(d) = f.get("description") {
            tool.insert("description".into(), d.clone());
        }
        tool.insert(
            "input_schema".into(),
            f.get("parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        );
        out.push(Value::Object(tool));
    }
    Ok(Value::Array(out))
}

fn tool_choice_to_anthropic(c: &Value) -> Result<Value, TranslateError> {
    match c {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"type": "auto"})),
            "none" => Ok(json!({"type": "none"})),
            "required" => Ok(json!({"type": "any"})),
            other => Err(TranslateError::new(format!(
                "`tool_choice` `{other}` is not one of `auto`, `none`, `required`"
            ))),
        },
        _ => match c.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Ok(json!({"type": "tool", "name": name})),
            None => Err(TranslateError::new(
                "`tool_choice` must name a function as `{\"type\": \"function\", \"function\": {\"name\": …}}`",
            )),
        },
    }
}

/// An Anthropic request for an OpenAI-kind model. `system` becomes the first message;
/// tool results become `tool` messages placed before the rest of their user turn; a
/// streamed request asks for the usage chunk, which the answer's translation needs.
pub fn anthropic_to_openai_request(
    req: anthropic::MessagesRequest,
    field: MaxTokensField,
) -> Result<openai::ChatRequest, TranslateError> {
    let streaming = req.streaming();
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        messages.push(openai::Message::text(
            OpenAiRole::System,
            system.joined_text(),
        ));
    }
    for m in req.messages {
        match m.role {
            anthropic::Role::User => user_messages(m.content, &mut messages)?,
            anthropic::Role::Assistant => messages.push(assistant_message(m.content)?),
        }
    }
    let mut extra = Map::new();
    if let Some(user) = req
        .extra
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        extra.insert("user".into(), user.into());
    }
    let mut tool_choice = None;
    if let Some(c) = &req.tool_choice {
        if c.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            extra.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
        tool_choice = Some(tool_choice_to_openai(c)?);
    }
    let (max_tokens, max_completion_tokens) = match field {
        MaxTokensField::MaxTokens => (Some(req.max_tokens), None),
        MaxTokensField::MaxCompletionTokens => (None, Some(req.max_tokens)),
    };
    Ok(openai::ChatRequest {
        model: req.model,
        messages,
        max_tokens,
        max_completion_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop_sequences.map(openai::Stop::Many),
        stream: req.stream,
        stream_options: streaming.then(|| openai::StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        }),
        tools: req.tools.as_ref().map(tools_to_openai).transpose()?,
        tool_choice,
        extra,
    })
}

fn user_messages(
    content: anthropic::Content,
    out: &mut Vec<openai::Message>,
) -> Result<(), TranslateError> {
    let blocks = match content {
        anthropic::Content::Text(s) => {
            out.push(openai::Message::text(OpenAiRole::User, s));
            return Ok(());
        }
        anthropic::Content::Blocks(b) => b,
    };
    let mut parts = Vec::new();
    for b in blocks {
        match b.kind.as_str() {
            "text" => parts.push(openai::Part::text(b.text.unwrap_or_default())),
            "image" => parts.push(image_part(&b)?),
            "tool_result" => {
                let Some(id) = b.tool_use_id else {
                    return Err(TranslateError::new(
                        "a `tool_result` block needs `tool_use_id`",
                    ));
                };
                let text = match b.content {
                    None => String::new(),
                    Some(Value::String(s)) => s,
                    Some(v) => {
                        let blocks: Vec<Block> = serde_json::from_value(v).map_err(|_| {
                            TranslateError::new("a `tool_result`'s content must be text or blocks")
                        })?;
                        anthropic::join_text(&blocks)
                    }
                };
                let mut m = openai::Message::text(OpenAiRole::Tool, text);
                m.tool_call_id = Some(id);
                out.push(m);
            }
            other => {
                return Err(TranslateError::new(format!(
                    "content of type `{other}` cannot be sent to an openai model"
                )))
            }
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let content = if parts.iter().all(|p| p.kind == "text") {
        openai::Content::Text(parts.into_iter().filter_map(|p| p.text).collect())
    } else {
        openai::Content::Parts(parts)
    };
    let mut m = openai::Message::text(OpenAiRole::User, "");
    m.content = Some(content);
    out.push(m);
    Ok(())
}

fn image_part(b: &Block) -> Result<openai::Part, TranslateError> {
    let source = b.extra.get("source");
    let field = |k: &str| source.and_then(|s| s.get(k)).and_then(Value::as_str);
    let url =
        match field("type") {
            Some("base64") => match (field("media_type"), field("data")) {
                (Some(mt), Some(data)) => format!("data:{mt};base64,{data}"),
                _ => {
                    return Err(TranslateError::new(
                        "a base64 image needs `media_type` and `data`",
                    ))
                }
            },
            Some("url") => match field("url") {
                Some(u) => u.to_string(),
                None => return Err(TranslateError::new("a url image needs `url`")),
            },
            _ => return Err(TranslateError::new(
                "an image cannot be sent to an openai model unless its source is `base64` or `url`",
            )),
        };
    let mut extra = Map::new();
    extra.insert("image_url".into(), json!({ "url": url }));
    Ok(openai::Part {
        kind: "image_url".into(),
        text: None,
        extra,
    })
}

fn assistant_message(content: anthropic::Content) -> Result<openai::Message, TranslateError> {
    let blocks = content.into_blocks();
    let text = anthropic::join_text(&blocks);
    let calls = tool_calls(&blocks);
    let mut m = openai::Message::text(OpenAiRole::Assistant, text);
    if !calls.is_empty() {
        if m.content
            .as_ref()
            .is_some_and(|c| c.joined_text().is_empty())
        {
            m.content = None;
        }
        m.tool_calls = Some(calls);
    }
    Ok(m)
}

/// The `tool_use` blocks as OpenAI tool calls; other non-text blocks (thinking) have
/// no OpenAI form and are left out.
fn tool_calls(blocks: &[Block]) -> Vec<openai::ToolCall> {
    blocks
        .iter()
        .filter(|b| b.kind == "tool_use")
        .map(|b| openai::ToolCall {
            id: b.id.clone().unwrap_or_default(),
            kind: "function".into(),
            function: openai::FunctionCall {
                name: b.name.clone().unwrap_or_default(),
                arguments: b
                    .input
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_else(|| "{}".into()),
            },
        })
        .collect()
}

fn tools_to_openai(tools: &Value) -> Result<Value, TranslateError> {
    let Some(list) = tools.as_array() else {
        return Err(TranslateError::new("`tools` must be a list"));
    };
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        let name = t.get("name").and_then(Value::as_str);
        let schema = t.get("input_schema");
        let (Some(name), Some(schema)) = (name, schema) else {
            let kind = t.get("type").and_then(Value::as_str).unwrap_or("unknown");
            return Err(TranslateError::new(format!(
                "a tool of type `{kind}` cannot be sent to an openai model"
            )));
        };
        let mut f = Map::new();
        f.insert("name".into(), name.into());
        if let Some(d) = t.get("description") {
            f.insert("description".into(), d.clone());
        }
        f.insert("parameters".into(), schema.clone());
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(Value::Array(out))
}

fn tool_choice_to_openai(c: &Value) -> Result<Value, TranslateError> {
    match c.get("type").and_then(Value::as_str) {
        Some("auto") => Ok("auto".into()),
        Some("none") => Ok("none".into()),
        Some("any") => Ok("required".into()),
        Some("tool") => match c.get("name").and_then(Value::as_str) {
            Some(name) => Ok(json!({"type": "function", "function": {"name": name}})),
            None => Err(TranslateError::new("a `tool` tool_choice needs a `name`")),
        },
        _ => Err(TranslateError::new(
            "`tool_choice` must be of type `auto`, `any`, `tool` or `none`",
        )),
    }
}

// ---------------------------------------------------------------- responses

/// An Anthropic answer for an OpenAI client. `created` is the answer's time in Unix
/// seconds, which Anthropic does not send.
pub fn anthropic_to_openai_response(
    resp: anthropic::MessageResponse,
    created: u64,
) -> openai::ChatResponse {
    let calls = tool_calls(&resp.content);
    let text = anthropic::join_text(&resp.content);
    // a turn of tool calls alone has `content: null`, as OpenAI sends it
    let content = (!text.is_empty() || calls.is_empty()).then_some(text);
    openai::ChatResponse {
        id: resp.id,
        object: "chat.completion".into(),
        created,
        model: resp.model,
        choices: vec![openai::Choice {
            index: 0,
            message: openai::ResponseMessage {
                role: "assistant".into(),
                content,
                tool_calls: (!calls.is_empty()).then_some(calls),
                extra: Map::new(),
            },
            finish_reason: Some(
                finish_reason_for(resp.stop_reason.as_deref().unwrap_or("end_turn")).into(),
            ),
            extra: Map::new(),
        }],
        usage: Some(usage_to_openai(&resp.usage)),
        extra: Map::new(),
    }
}

/// An OpenAI answer for an Anthropic client, from its first choice. An answer without
/// usage reads as zero tokens; the proxy settles such a call on its estimate.
pub fn openai_to_anthropic_response(
    resp: openai::ChatResponse,
) -> Result<anthropic::MessageResponse, TranslateError> {
    let choice = resp.choices.into_iter().next();
    let mut content = Vec::new();
    let mut finish = None;
    if let Some(c) = choice {
        finish = c.finish_reason;
        if let Some(text) = c.message.content.filter(|t| !t.is_empty()) {
            content.push(Block::text(text));
        }
        for call in c.message.tool_calls.unwrap_or_default() {
            content.push(Block::tool_use(
                call.id,
                call.function.name,
                arguments_to_input(&call.function.arguments)?,
            ));
        }
    }
    Ok(anthropic::MessageResponse {
        id: resp.id,
        kind: "message".into(),
        role: "assistant".into(),
        content,
        model: resp.model,
        stop_reason: Some(stop_reason_for(finish.as_deref().unwrap_or("stop")).into()),
        stop_sequence: None,
        usage: resp
            .usage
            .as_ref()
            .map(usage_to_anthropic)
            .unwrap_or_default(),
        extra: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openai_req(v: Value) -> openai::ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    fn anthropic_req(v: Value) -> anthropic::MessagesRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn stop_reasons_map_both_ways() {
        for (a, o) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason_for(a), o);
            assert_eq!(stop_reason_for(o), a);
        }
        assert_eq!(finish_reason_for("stop_sequence"), "stop");
    }

    #[test]
    fn system_messages_are_gathered_and_max_tokens_defaulted() {
        let req = openai_req(json!({
            "model": "auto",
            "messages": [
                {"role": "system", "content": "one"},
                {"role": "user", "content": "hi"},
                {"role": "developer", "content": [{"type": "text", "text": "two"}]}
            ],
            "stop": ["x", "y"], "temperature": 0.5, "user": "u-1", "seed": 3
        }));
        let out = openai_to_anthropic_request(req, 4096).unwrap();
        let v = serde_json::to_value(&out).unwrap();
        assert_eq!(
            v,
            json!({
                "model": "auto",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 4096,
                "system": "one\n\ntwo",
                "stop_sequences": ["x", "y"],
                "temperature": 0.5,
                "metadata": {"user_id": "u-1"}
            })
        );
    }

    #[test]
    fn tool_turns_cross_and_come_back() {
        let req = openai_req(json!({
            "model": "m",
            "max_completion_tokens": 100,
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "c2", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Rome\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "cold"},
                {"role": "tool", "tool_call_id": "c2", "content": "warm"}
            ],
            "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "parallel_tool_calls": false
        }));
        let a = openai_to_anthropic_request(req, 1).unwrap();
        assert_eq!(a.max_tokens, 100);
        assert_eq!(a.messages.len(), 3, "tool results merge into one user turn");
        let results = a.messages[2].content.clone().into_blocks();
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].tool_use_id.as_deref(), Some("c2"));
        assert_eq!(
            a.tool_choice,
            Some(json!({"type": "any", "disable_parallel_tool_use": true}))
        );
        assert_eq!(
            a.tools,
            Some(json!([{"name": "w", "input_schema": {"type": "object"}}]))
        );

        let back = anthropic_to_openai_request(a, MaxTokensField::MaxTokens).unwrap();
        assert_eq!(back.max_tokens, Some(100));
        assert_eq!(back.messages.len(), 4);
        assert_eq!(back.messages[2].role, OpenAiRole::Tool);
        assert_eq!(back.messages[3].tool_call_id.as_deref(), Some("c2"));
        let calls = back.messages[1].tool_calls.clone().unwrap();
        assert_eq!(calls[0].function.arguments, r#"{"city":"Oslo"}"#);
        assert_eq!(back.tool_choice, Some(json!("required")));
        assert_eq!(back.extra.get("parallel_tool_calls"), Some(&json!(false)));
    }

    #[test]
    fn what_cannot_cross_is_an_error() {
        let req = openai_req(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]}),
        );
        let e = openai_to_anthropic_request(req, 1).unwrap_err();
        assert_eq!(
            e.message,
            "content of type `input_audio` cannot be sent to an anthropic model"
        );
        let req = openai_req(json!({"model": "m", "n": 2, "messages": []}));
        assert!(openai_to_anthropic_request(req, 1).is_err());
        let req = anthropic_req(json!({"model": "m", "max_tokens": 1, "messages": [],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}));
        let e = anthropic_to_openai_request(req, MaxTokensField::MaxTokens).unwrap_err();
        assert!(e.message.contains("`web_search_20250305`"), "{e}");
    }

    #[test]
    fn images_cross_both_ways() {
        let req = openai_req(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is it"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}),
        );
        let a = openai_to_anthropic_request(req.clone(), 1).unwrap();
        let blocks = a.messages[0].content.clone().into_blocks();
        assert_eq!(
            blocks[1].extra["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "AAAA"})
        );
        let back = anthropic_to_openai_request(a, MaxTokensField::MaxTokens).unwrap();
        assert_eq!(back.messages[0].content, req.messages[0].content);
    }

    #[test]
    fn usage_moves_the_cache_across() {
        let a = anthropic::Usage {
            cache_read_input_tokens: Some(30),
            ..anthropic::Usage::new(10, 5)
        };
        let o = usage_to_openai(&a);
        assert_eq!(
            (o.prompt_tokens, o.completion_tokens, o.total_tokens),
            (40, 5, 45)
        );
        assert_eq!(o.cached_tokens(), 30);
        assert_eq!(usage_to_anthropic(&o), a);
    }

    #[test]
    fn errors_keep_the_message_and_type_after_the_status() {
        let a = anthropic::ErrorBody::new(429, "slow down");
        let o = error_to_openai(429, &a);
        assert_eq!(o.error.message, "slow down");
        assert_eq!(o.error.kind, "rate_limit_exceeded");
        let back = error_to_anthropic(429, &o);
        assert_eq!(back, a);
        let own = openai::ErrorBody::typed("budget_exceeded", "daily budget spent");
        assert_eq!(error_to_anthropic(402, &own).error.kind, "budget_exceeded");
    }
}
