//! A streamed answer on its way from a provider to a client, in each of the four
//! directions: the same format passed through event by event (reading the usage,
//! hiding the usage chunk the proxy asked for on a client's behalf, noticing the
//! end), or translated by the state machines of [`super::stream`]. Every direction
//! answers the same questions: what to write to the client, the usage so far, and
//! whether the stream reached its proper end.

use std::borrow::Cow;

use serde::Deserialize;

use super::anthropic::{self, StreamEvent};
use super::front::Front;
use super::openai;
use super::sse::{self, Event};
use super::stream::{
    write_anthropic, write_anthropic_error, write_openai, write_openai_error, AnthropicToOpenAi,
    OpenAiToAnthropic, StreamError,
};
use super::TokenUsage;

/// One stream's relay, chosen by the client's and the provider's formats.
#[derive(Debug)]
pub enum Relay {
    OpenAi(OpenAiPass),
    Anthropic(AnthropicPass),
    AnthropicToOpenAi(Box<AnthropicToOpenAi>),
    OpenAiToAnthropic(Box<OpenAiToAnthropic>),
}

impl Relay {
    /// `wants_usage`: an OpenAI client asked for the usage chunk; the proxy asks an
    /// OpenAI-kind provider for it anyway and hides it from a client that did not.
    /// `input_hint`: the prompt's estimated tokens, which an Anthropic client reads in
    /// `message_start` before OpenAI reports the real count.
    pub fn new(client: Front, provider: Front, wants_usage: bool, input_hint: u64) -> Relay {
        match (client, provider) {
            (Front::OpenAi, Front::OpenAi) => Relay::OpenAi(OpenAiPass {
                hide_usage: !wants_usage,
                ..OpenAiPass::default()
            }),
            (Front::Anthropic, Front::Anthropic) => Relay::Anthropic(AnthropicPass::default()),
            (Front::OpenAi, Front::Anthropic) => Relay::AnthropicToOpenAi(Box::new(
                AnthropicToOpenAi::new(unix_seconds(), wants_usage),
            )),
            (Front::Anthropic, Front::OpenAi) => {
                Relay::OpenAiToAnthropic(Box::new(OpenAiToAnthropic::new(input_hint)))
            }
        }
    }

    /// Reads one upstream event and writes what the client is to get.
    pub fn feed(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), StreamError> {
        match self {
            Relay::OpenAi(p) => p.feed(ev, out),
            Relay::Anthropic(p) => p.feed(ev, out),
            Relay::AnthropicToOpenAi(t) => {
                let mut items = Vec::new();
                let r = t.feed(ev, &mut items);
                write_openai(out, &items);
                r
            }
            Relay::OpenAiToAnthropic(t) => {
                let mut items = Vec::new();
                let r = t.feed(ev, &mut items);
                write_anthropic(out, &items);
                r
            }
        }
    }

    /// The upstream's stream ended: writes what is still owed, or says it was cut.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamError> {
        match self {
            Relay::OpenAi(p) => p.finish(out),
            Relay::Anthropic(p) => p.finish(),
            Relay::AnthropicToOpenAi(t) => {
                let mut items = Vec::new();
                let r = t.finish(&mut items);
                write_openai(out, &items);
                r
            }
            Relay::OpenAiToAnthropic(t) => {
                let mut items = Vec::new();
                let r = t.finish(&mut items);
                write_anthropic(out, &items);
                r
            }
        }
    }

    pub fn usage(&self) -> Option<TokenUsage> {
        match self {
            Relay::OpenAi(p) => p.usage,
            Relay::Anthropic(p) => p.usage(),
            Relay::AnthropicToOpenAi(t) => t.usage(),
            Relay::OpenAiToAnthropic(t) => t.usage(),
        }
    }

    pub fn is_done(&self) -> bool {
        match self {
            Relay::OpenAi(p) => p.done,
            Relay::Anthropic(p) => p.done,
            Relay::AnthropicToOpenAi(t) => t.is_done(),
            Relay::OpenAiToAnthropic(t) => t.is_done(),
        }
    }
}

/// Writes a stream's failure as the client's format reports errors in a stream.
pub fn write_error(client: Front, e: &StreamError, out: &mut Vec<u8>) {
    match client {
        Front::OpenAi => write_openai_error(out, &e.to_openai()),
        Front::Anthropic => write_anthropic_error(out, &e.to_anthropic()),
    }
}

/// OpenAI to OpenAI: chunks pass as they came.
#[derive(Debug, Default)]
pub struct OpenAiPass {
    hide_usage: bool,
    usage: Option<TokenUsage>,
    /// a choice announced its `finish_reason`
    finishing: bool,
    done: bool,
}

impl OpenAiPass {
    fn feed(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), StreamError> {
        if self.done {
            return Ok(());
        }
        if ev.data.trim() == "[DONE]" {
            self.done = true;
            sse::write_done(out);
            return Ok(());
        }
        let chunk: PassedChunk<'_> = serde_json::from_str(&ev.data).map_err(|e| {
            StreamError::Malformed(if e.is_data() {
                format!("a chunk is not a completion chunk: {e}")
            } else {
                format!("a chunk is not JSON: {e}")
            })
        })?;
        if let Some(err) = chunk.error {
            let e: openai::ErrorDetail = serde_json::from_value(err)
                .map_err(|_| StreamError::Malformed("an error chunk without a message".into()))?;
            return Err(StreamError::Upstream {
                kind: e.kind,
                message: e.message,
            });
        }
        if chunk.id.is_none() {
            return Err(StreamError::Malformed(
                "a chunk is not a completion chunk: missing field `id`".into(),
            ));
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u.into());
        }
        if chunk.choices.iter().any(|c| c.finish_reason.is_some()) {
            self.finishing = true;
        }
        let usage_only = chunk.choices.is_empty() && chunk.usage.is_some();
        if !(usage_only && self.hide_usage) {
            sse::write_event(out, ev.event.as_deref(), &ev.data);
        }
        Ok(())
    }

    /// A stream that announced its finish but lost `[DONE]` is ended here; any other
    /// is cut short.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamError> {
        if self.done {
            return Ok(());
        }
        if self.finishing {
            self.done = true;
            sse::write_done(out);
            return Ok(());
        }
        Err(StreamError::Truncated)
    }
}

/// What passing an OpenAI chunk through reads of it: an error in its place, that it
/// is a chunk (its `id`), whether a choice finishes, and the usage. The chunk goes to
/// the client as it came, so the rest is skipped, not built: building all of it
/// (`openai::ChatChunk`, after a `serde_json::Value`) was two fifths of a streamed
/// call's instructions in the proxy's benchmark.
#[derive(Deserialize)]
struct PassedChunk<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Vec<PassedChoice<'a>>,
    #[serde(default)]
    usage: Option<UsageCounts>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PassedChoice<'a> {
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

/// The counts of an OpenAI `usage` that budgets settle on, read without the rest of
/// it; also what a whole answer passed through is read for (`call::answer_for`).
#[derive(Debug, Clone, Copy, Deserialize)]
pub(super) struct UsageCounts {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<UsageCounts> for TokenUsage {
    fn from(u: UsageCounts) -> TokenUsage {
        TokenUsage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

/// Anthropic to Anthropic: events pass as they came.
#[derive(Debug, Default)]
pub struct AnthropicPass {
    input: Option<anthropic::Usage>,
    output_tokens: u64,
    done: bool,
}

impl AnthropicPass {
    fn feed(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), StreamError> {
        if self.done {
            return Ok(());
        }
        let parsed: StreamEvent = serde_json::from_str(&ev.data)
            .map_err(|e| StreamError::Malformed(format!("an event is not JSON: {e}")))?;
        match &parsed {
            StreamEvent::Error { error } => {
                return Err(StreamError::Upstream {
                    kind: error.kind.clone(),
                    message: error.message.clone(),
                })
            }
            StreamEvent::MessageStart { message } => {
                self.output_tokens = message.usage.output_tokens;
                self.input = Some(message.usage.clone());
            }
            StreamEvent::MessageDelta { usage, .. } => {
                self.output_tokens = usage.output_tokens;
                if let (Some(i), Some(input)) = (usage.input_tokens, self.input.as_mut()) {
                    input.input_tokens = i;
                }
            }
            StreamEvent::MessageStop => self.done = true,
            _ => {}
        }
        sse::write_event(out, ev.event.as_deref(), &ev.data);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), StreamError> {
        if self.done {
            Ok(())
        } else {
            Err(StreamError::Truncated)
        }
    }

    fn usage(&self) -> Option<TokenUsage> {
        self.input.as_ref().map(|u| TokenUsage {
            input_tokens: u.prompt_tokens(),
            output_tokens: self.output_tokens,
        })
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(relay: &mut Relay, events: &[Event]) -> (String, Result<(), StreamError>) {
        let mut out = Vec::new();
        for e in events {
            if let Err(err) = relay.feed(e, &mut out) {
                return (String::from_utf8_lossy(&out).into(), Err(err));
            }
        }
        let r = relay.finish(&mut out);
        (String::from_utf8_lossy(&out).into(), r)
    }

    fn openai_events(usage: bool) -> Vec<Event> {
        let mut v = vec![
            Event::data(r#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi"}}]}"#),
            Event::data(r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
        ];
        if usage {
            v.push(Event::data(
                r#"{"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}"#,
            ));
        }
        v.push(Event::data("[DONE]"));
        v
    }

    #[test]
    fn the_usage_chunk_the_proxy_asked_for_is_hidden() {
        let mut hidden = Relay::new(Front::OpenAi, Front::OpenAi, false, 0);
        let (text, r) = run(&mut hidden, &openai_events(true));
        assert!(r.is_ok() && hidden.is_done());
        assert!(!text.contains("usage"), "{text}");
        assert_eq!(
            hidden.usage(),
            Some(TokenUsage {
                input_tokens: 7,
                output_tokens: 2
            })
        );
        let mut shown = Relay::new(Front::OpenAi, Front::OpenAi, true, 0);
        let (text, _) = run(&mut shown, &openai_events(true));
        assert!(text.contains("\"usage\""), "{text}");
    }

    #[test]
    fn a_stream_without_its_end_is_cut() {
        let mut relay = Relay::new(Front::OpenAi, Front::OpenAi, false, 0);
        let (_, r) = run(&mut relay, &openai_events(false)[..1]);
        assert_eq!(r, Err(StreamError::Truncated));
        // announced its finish, lost `[DONE]`: ended for the client
        let mut relay = Relay::new(Front::OpenAi, Front::OpenAi, false, 0);
        let (text, r) = run(&mut relay, &openai_events(false)[..2]);
        assert!(r.is_ok() && text.ends_with("data: [DONE]\n\n"), "{text}");
    }

    #[test]
    fn openai_chunks_that_are_not_chunks_are_told_apart_from_errors() {
        let feed = |data: &str| {
            let mut relay = Relay::new(Front::OpenAi, Front::OpenAi, true, 0);
            let mut out = Vec::new();
            (relay.feed(&Event::data(data), &mut out), out)
        };
        // an error in place of a chunk needs no `id`
        let (r, out) = feed(r#"{"error":{"message":"busy","type":"server_error"}}"#);
        assert!(
            matches!(r, Err(StreamError::Upstream { ref kind, ref message }) if kind == "server_error" && message == "busy"),
            "{r:?}"
        );
        assert!(out.is_empty());
        let malformed = |data: &str, why: &str| match feed(data) {
            (Err(StreamError::Malformed(m)), out) => {
                assert!(m.starts_with(why), "{data}: {m}");
                assert!(out.is_empty(), "{data}: nothing reaches the client");
            }
            (r, _) => panic!("{data}: {r:?}"),
        };
        malformed(r#"{"id":"c","choices":["#, "a chunk is not JSON");
        malformed(
            r#"{"choices":[{"index":0,"delta":{"content":"hi"}}]}"#,
            "a chunk is not a completion chunk",
        );
        malformed(
            r#"{"id":"c","choices":[{"finish_reason":7}]}"#,
            "a chunk is not a completion chunk",
        );
        malformed(
            r#"{"error":{"type":"server_error"}}"#,
            "an error chunk without a message",
        );
        // what is not read passes as it came
        let chunk = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"hi","x":[1,{"y":null}]},"logprobs":null}],"system_fingerprint":"fp"}"#;
        let (r, out) = feed(chunk);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(String::from_utf8_lossy(&out), format!("data: {chunk}\n\n"));
    }

    #[test]
    fn anthropic_events_pass_with_their_usage_and_errors_stop_them() {
        let events = [
            Event::named(
                "message_start",
                r#"{"type":"message_start","message":{"id":"m","content":[],"usage":{"input_tokens":11,"output_tokens":1}}}"#,
            ),
            Event::named(
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#,
            ),
            Event::named("message_stop", r#"{"type":"message_stop"}"#),
        ];
        let mut relay = Relay::new(Front::Anthropic, Front::Anthropic, true, 0);
        let (text, r) = run(&mut relay, &events);
        assert!(r.is_ok() && relay.is_done());
        assert!(text.starts_with("event: message_start\n"), "{text}");
        assert_eq!(
            relay.usage(),
            Some(TokenUsage {
                input_tokens: 11,
                output_tokens: 5
            })
        );
        let mut relay = Relay::new(Front::Anthropic, Front::Anthropic, true, 0);
        let err = Event::named(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        );
        let (_, r) = run(&mut relay, &[events[0].clone(), err]);
        assert!(
            matches!(r, Err(StreamError::Upstream { ref kind, .. }) if kind == "overloaded_error")
        );
    }
}
