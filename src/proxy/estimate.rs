//! A request's size in tokens, estimated from its body for routing (the request
//! schema's `estimated_tokens`) when the client gave none, and bounded from above for
//! budget reservations.
//!
//! The heuristic: English text and code run near 4 bytes per token in the BPE
//! tokenizers of both providers, so the estimate is the text's bytes / 4, rounded up,
//! plus 4 tokens per message for the role and separators the chat templates add, plus
//! 3 for the reply's priming. Text means every string a model reads: message text,
//! the system prompt, tool call arguments, tool results and tool definitions (as
//! JSON). Images and other non-text parts count nothing, which underestimates them.
//! The upper bound counts every byte as a token instead: no tokenizer makes more
//! tokens than bytes.

use serde_json::Value;

use super::{anthropic, openai};

pub const BYTES_PER_TOKEN: u64 = 4;
pub const TOKENS_PER_MESSAGE: u64 = 4;
pub const TOKENS_PER_REPLY: u64 = 3;

/// The estimated prompt size and a bound it cannot exceed, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub likely: u64,
    pub at_most: u64,
}

impl Estimate {
    fn from_counts(text_bytes: u64, messages: u64) -> Estimate {
        let overhead = messages
            .saturating_mul(TOKENS_PER_MESSAGE)
            .saturating_add(TOKENS_PER_REPLY);
        Estimate {
            likely: text_bytes
                .div_ceil(BYTES_PER_TOKEN)
                .saturating_add(overhead),
            at_most: text_bytes.saturating_add(overhead),
        }
    }
}

#[derive(Default)]
struct Count {
    bytes: u64,
    messages: u64,
}

impl Count {
    fn text(&mut self, s: &str) {
        self.bytes = self.bytes.saturating_add(s.len() as u64);
    }

    fn json(&mut self, v: &Value) {
        // the serialized size, as the provider renders tool schemas into the prompt
        self.bytes = self.bytes.saturating_add(v.to_string().len() as u64);
    }
}

pub fn openai_request(req: &openai::ChatRequest) -> Estimate {
    let mut c = Count::default();
    for m in &req.messages {
        c.messages += 1;
        match &m.content {
            Some(openai::Content::Text(s)) => c.text(s),
            Some(openai::Content::Parts(parts)) => {
                for p in parts {
                    if let Some(t) = &p.text {
                        c.text(t);
                    }
                }
            }
            None => {}
        }
        for call in m.tool_calls.iter().flatten() {
            c.text(&call.function.name);
            c.text(&call.function.arguments);
        }
    }
    if let Some(tools) = &req.tools {
        c.json(tools);
    }
    Estimate::from_counts(c.bytes, c.messages)
}

pub fn anthropic_request(req: &anthropic::MessagesRequest) -> Estimate {
    let mut c = Count::default();
    if let Some(system) = &req.system {
        c.messages += 1;
        c.text(&system.joined_text());
    }
    for m in &req.messages {
        c.messages += 1;
        match &m.content {
            anthropic::Content::Text(s) => c.text(s),
            anthropic::Content::Blocks(blocks) => {
                for b in blocks {
                    count_block(&mut c, b);
                }
            }
        }
    }
    if let Some(tools) = &req.tools {
        c.json(tools);
    }
    Estimate::from_counts(c.bytes, c.messages)
}

fn count_block(c: &mut Count, b: &anthropic::Block) {
    if let Some(t) = &b.text {
        c.text(t);
    }
    if let Some(name) = &b.name {
        c.text(name);
    }
    if let Some(input) = &b.input {
        c.json(input);
    }
    match &b.content {
        Some(Value::String(s)) => c.text(s),
        Some(other) => c.json(other),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bytes_over_four_plus_a_few_per_message() {
        let req: openai::ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "system", "content": "12345678"},
            {"role": "user", "content": [{"type": "text", "text": "123"},
                {"type": "image_url", "image_url": {"url": "https://x"}}]}
        ]}))
        .unwrap();
        // 11 bytes → 3 tokens, 2 messages → 8, reply → 3
        assert_eq!(
            openai_request(&req),
            Estimate {
                likely: 14,
                at_most: 22
            }
        );
    }

    #[test]
    fn both_formats_agree_on_the_same_conversation() {
        let o: openai::ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is the capital of France?"}
        ]}))
        .unwrap();
        let a: anthropic::MessagesRequest = serde_json::from_value(json!({"model": "m",
            "max_tokens": 10, "system": "be brief",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "what is the capital of France?"}]}]}))
        .unwrap();
        assert_eq!(openai_request(&o), anthropic_request(&a));
    }

    #[test]
    fn the_bound_is_never_below_the_estimate() {
        for n in [0usize, 1, 3, 4, 5, 1000] {
            let e = Estimate::from_counts(n as u64, 1);
            assert!(e.at_most >= e.likely, "{n}: {e:?}");
        }
    }
}
