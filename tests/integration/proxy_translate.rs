//! The proxy's translation layer through its public interface, on recorded-shape
//! fixtures (`tests/fixtures/proxy/`): requests, answers, errors and streams from one
//! wire format to the other, and the event-stream parser's independence from where
//! the network splits its bytes.

use proptest::prelude::*;
use serde_json::{json, Value};

use rulec::proxy::anthropic::{self, StreamEvent};
use rulec::proxy::openai;
use rulec::proxy::sse::{self, Event, Parser};
use rulec::proxy::stream::{self, AnthropicToOpenAi, OpenAiOut, OpenAiToAnthropic, StreamError};
use rulec::proxy::translate::{self, MaxTokensField};
use rulec::proxy::{estimate, TokenUsage};

use crate::common::root;

fn fixture(name: &str) -> Vec<u8> {
    let path = root().join("tests/fixtures/proxy").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn crlf(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .replace('\n', "\r\n")
        .into_bytes()
}

/// Parses `bytes` delivered in the chunks that `cuts` (sorted offsets) make.
fn parse_split(bytes: &[u8], cuts: &[usize]) -> Vec<Event> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &at in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let at = at.clamp(from, bytes.len());
        p.push(&bytes[from..at], &mut out)
            .expect("within the limit");
        from = at;
    }
    p.finish(&mut out).expect("within the limit");
    out
}

/// What an OpenAI client reads from a stream: the chunks as JSON, `[DONE]` as a string.
fn openai_client_view(bytes: &[u8]) -> Vec<Value> {
    sse::parse_all(bytes)
        .expect("within the limit")
        .into_iter()
        .map(|e| {
            assert_eq!(e.event, None, "openai streams have unnamed events");
            if e.data == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(&e.data).expect("each chunk is JSON")
            }
        })
        .collect()
}

fn a2o(
    bytes: &[u8],
    include_usage: bool,
) -> (Vec<u8>, Result<(), StreamError>, Option<TokenUsage>) {
    let mut t = AnthropicToOpenAi::new(1_741_569_952, include_usage);
    let mut items = Vec::new();
    let mut result = Ok(());
    for ev in sse::parse_all(bytes).expect("within the limit") {
        result = t.feed(&ev, &mut items);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = t.finish(&mut items);
    }
    let mut out = Vec::new();
    stream::write_openai(&mut out, &items);
    (out, result, t.usage())
}

fn o2a(bytes: &[u8]) -> (Vec<u8>, Result<(), StreamError>, Option<TokenUsage>) {
    let mut t = OpenAiToAnthropic::new(30);
    let mut items = Vec::new();
    let mut result = Ok(());
    for ev in sse::parse_all(bytes).expect("within the limit") {
        result = t.feed(&ev, &mut items);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = t.finish(&mut items);
    }
    let mut out = Vec::new();
    stream::write_anthropic(&mut out, &items);
    (out, result, t.usage())
}

/// What an Anthropic client reads: (event name, parsed event).
fn anthropic_client_view(bytes: &[u8]) -> Vec<(String, StreamEvent)> {
    sse::parse_all(bytes)
        .expect("within the limit")
        .into_iter()
        .map(|e| {
            let parsed: StreamEvent = serde_json::from_str(&e.data).expect("each event is JSON");
            let name = e.event.expect("anthropic events are named");
            assert_eq!(name, parsed.name(), "the event name repeats its type");
            (name, parsed)
        })
        .collect()
}

// ---------------------------------------------------------------- requests and answers

#[test]
fn an_openai_request_for_an_anthropic_model() {
    let req: openai::ChatRequest = json_fixture("openai_request.json");
    // 86 bytes of text → 22 tokens, 5 messages → 20, the reply → 3
    assert_eq!(
        estimate::openai_request(&req),
        estimate::Estimate {
            likely: 45,
            at_most: 109
        }
    );
    let out = translate::openai_to_anthropic_request(req, 1024).expect("translatable");
    assert_eq!(
        serde_json::to_value(&out).expect("serializes"),
        json!({
            "model": "auto",
            "messages": [
                {"role": "user", "content": "What colour is the sky?"},
                {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "And at night?"}
            ],
            "max_tokens": 1024,
            "system": "You are a terse assistant.\n\nAnswer in one word.",
            "stop_sequences": ["\n\n", "END"],
            "temperature": 0.2,
            "top_p": 0.9,
            "stream": true,
            "metadata": {"user_id": "agent-7"}
        })
    );
}

#[test]
fn an_anthropic_request_for_an_openai_model() {
    let req: anthropic::MessagesRequest = json_fixture("anthropic_request.json");
    let out = translate::anthropic_to_openai_request(req, MaxTokensField::MaxCompletionTokens)
        .expect("translatable");
    assert_eq!(
        serde_json::to_value(&out).expect("serializes"),
        json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "You are a terse assistant.Answer in one word."},
                {"role": "user", "content": "What colour is the sky?"},
                {"role": "assistant", "content": "Blue."},
                {"role": "user", "content": "And at night?"}
            ],
            "max_completion_tokens": 512,
            "temperature": 0.2,
            "stop": ["END"],
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "agent-7"
        })
    );
}

#[test]
fn a_request_to_the_same_kind_of_provider_keeps_every_field() {
    let raw: Value = json_fixture("openai_request.json");
    let req: openai::ChatRequest = json_fixture("openai_request.json");
    assert_eq!(serde_json::to_value(&req).expect("serializes"), raw);
    let raw: Value = json_fixture("anthropic_request.json");
    let req: anthropic::MessagesRequest = json_fixture("anthropic_request.json");
    assert_eq!(serde_json::to_value(&req).expect("serializes"), raw);
    let raw: Value = json_fixture("openai_response.json");
    let resp: openai::ChatResponse = json_fixture("openai_response.json");
    assert_eq!(serde_json::to_value(&resp).expect("serializes"), raw);
    let raw: Value = json_fixture("anthropic_response.json");
    let resp: anthropic::MessageResponse = json_fixture("anthropic_response.json");
    assert_eq!(serde_json::to_value(&resp).expect("serializes"), raw);
}

#[test]
fn an_anthropic_answer_for_an_openai_client() {
    let resp: anthropic::MessageResponse = json_fixture("anthropic_response.json");
    assert_eq!(
        TokenUsage::from(&resp.usage),
        TokenUsage {
            input_tokens: 43,
            output_tokens: 3
        }
    );
    let out = translate::anthropic_to_openai_response(resp, 1_741_570_283);
    assert_eq!(
        serde_json::to_value(&out).expect("serializes"),
        json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "object": "chat.completion",
            "created": 1_741_570_283,
            "model": "claude-sonnet-4-5-20250929",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Black."},
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": 43, "completion_tokens": 3, "total_tokens": 46,
                "prompt_tokens_details": {"cached_tokens": 12}
            }
        })
    );
}

#[test]
fn an_openai_answer_for_an_anthropic_client() {
    let resp: openai::ChatResponse = json_fixture("openai_response.json");
    let out = translate::openai_to_anthropic_response(resp).expect("translatable");
    assert_eq!(
        serde_json::to_value(&out).expect("serializes"),
        json!({
            "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Black."}],
            "model": "gpt-4o-2024-08-06",
            "stop_reason": "max_tokens",
            "stop_sequence": null,
            "usage": {"input_tokens": 31, "output_tokens": 3, "cache_read_input_tokens": 12}
        })
    );
}

#[test]
fn an_answer_without_usage_reads_as_zero_tokens() {
    let mut resp: openai::ChatResponse = json_fixture("openai_response.json");
    resp.usage = None;
    let out = translate::openai_to_anthropic_response(resp).expect("translatable");
    assert_eq!(out.usage, anthropic::Usage::new(0, 0));
}

#[test]
fn every_stop_reason_maps_to_one_each_sdk_knows() {
    let openai_reasons = [
        "stop",
        "length",
        "tool_calls",
        "content_filter",
        "function_call",
    ];
    let anthropic_reasons = [
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
    ];
    for r in anthropic_reasons {
        assert!(
            openai_reasons.contains(&translate::finish_reason_for(r)),
            "{r}"
        );
    }
    for r in openai_reasons {
        assert!(
            anthropic_reasons.contains(&translate::stop_reason_for(r)),
            "{r}"
        );
    }
    assert_eq!(translate::finish_reason_for("stop_sequence"), "stop");
    assert_eq!(translate::stop_reason_for("length"), "max_tokens");
}

// ---------------------------------------------------------------- errors

#[test]
fn errors_keep_their_status_and_take_each_formats_type() {
    // (status, OpenAI type, Anthropic type): the SDKs raise BadRequestError,
    // AuthenticationError, PermissionDeniedError, NotFoundError, RateLimitError and
    // InternalServerError from the status; the types keep the bodies recognisable
    let table = [
        (400, "invalid_request_error", "invalid_request_error"),
        (401, "invalid_request_error", "authentication_error"),
        (403, "permission_error", "permission_error"),
        (404, "invalid_request_error", "not_found_error"),
        (429, "rate_limit_exceeded", "rate_limit_error"),
        (500, "server_error", "api_error"),
        (529, "server_error", "overloaded_error"),
    ];
    for (status, openai_kind, anthropic_kind) in table {
        let upstream = format!(
            r#"{{"type":"error","error":{{"type":"{anthropic_kind}","message":"m{status}"}}}}"#
        );
        let a = anthropic::ErrorBody::from_upstream(status, upstream.as_bytes());
        let o = translate::error_to_openai(status, &a);
        assert_eq!(o.error.kind, openai_kind, "{status}");
        assert_eq!(o.error.message, format!("m{status}"));
        let wire = serde_json::to_value(&o).expect("serializes");
        assert_eq!(
            wire.as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["error".to_string()])
        );
        let back = translate::error_to_anthropic(status, &o);
        assert_eq!(back.error.kind, anthropic_kind, "{status}");
        assert_eq!(back.kind, "error");
    }
}

#[test]
fn an_upstream_error_that_is_not_json_still_reads_as_an_error() {
    let a = anthropic::ErrorBody::from_upstream(503, b"upstream connect error");
    assert_eq!(
        a.error.message,
        "upstream answered 503: upstream connect error"
    );
    assert_eq!(a.error.kind, "overloaded_error");
    let o = openai::ErrorBody::from_upstream(502, b"<html><body>Bad Gateway</body></html>");
    assert_eq!(o.error.message, "upstream answered 502");
}

#[test]
fn a_budget_refusal_reads_the_same_in_both_formats() {
    let o = openai::ErrorBody::typed("budget_exceeded", "the daily budget of $5 is spent");
    let a = translate::error_to_anthropic(402, &o);
    assert_eq!(a.error.kind, "budget_exceeded");
    assert_eq!(translate::error_to_openai(402, &a), o);
}

// ---------------------------------------------------------------- streams

#[test]
fn an_anthropic_stream_for_an_openai_client() {
    let (bytes, result, usage) = a2o(&fixture("anthropic_stream.sse"), true);
    assert_eq!(result, Ok(()));
    assert_eq!(
        usage,
        Some(TokenUsage {
            input_tokens: 25,
            output_tokens: 15
        })
    );
    let chunks = openai_client_view(&bytes);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Dark blue — or black. ✨");
    let n = chunks.len();
    assert_eq!(chunks[n - 3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[n - 2]["choices"], json!([]));
    assert_eq!(
        chunks[n - 2]["usage"],
        json!({"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40})
    );
    assert_eq!(chunks[n - 1], "[DONE]");
    for c in &chunks[..n - 1] {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], "msg_01XFDUDYJgAACzvnptvVoYEL");
        assert_eq!(c["created"], 1_741_569_952);
    }

    let (bytes, _, usage) = a2o(&fixture("anthropic_stream.sse"), false);
    let chunks = openai_client_view(&bytes);
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "not asked for"
    );
    assert_eq!(chunks.last(), Some(&json!("[DONE]")));
    assert!(usage.is_some(), "the proxy sees the usage all the same");
}

#[test]
fn an_openai_stream_for_an_anthropic_client() {
    let (bytes, result, usage) = o2a(&fixture("openai_stream.sse"));
    assert_eq!(result, Ok(()));
    assert_eq!(
        usage,
        Some(TokenUsage {
            input_tokens: 19,
            output_tokens: 10
        })
    );
    let events = anthropic_client_view(&bytes);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let text: String = events
        .iter()
        .filter_map(|(_, e)| match e {
            StreamEvent::ContentBlockDelta { delta, .. } => delta.text.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Dark blue — or black. ✨");
    match &events[0].1 {
        StreamEvent::MessageStart { message } => {
            assert_eq!(message.id, "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
            assert_eq!(message.model, "gpt-4o-2024-08-06");
            assert_eq!(
                message.usage.input_tokens, 30,
                "the hint until the real count"
            );
        }
        other => panic!("{other:?}"),
    }
    match &events[5].1 {
        StreamEvent::MessageDelta { delta, usage } => {
            assert_eq!(delta.stop_reason.as_deref(), Some("end_turn"));
            assert_eq!((usage.input_tokens, usage.output_tokens), (Some(19), 10));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_translated_stream_translates_back() {
    let (openai_bytes, _, _) = a2o(&fixture("anthropic_stream.sse"), true);
    let (anthropic_bytes, result, usage) = o2a(&openai_bytes);
    assert_eq!(result, Ok(()));
    assert_eq!(
        usage,
        Some(TokenUsage {
            input_tokens: 25,
            output_tokens: 15
        })
    );
    let text: String = anthropic_client_view(&anthropic_bytes)
        .into_iter()
        .filter_map(|(_, e)| match e {
            StreamEvent::ContentBlockDelta { delta, .. } => delta.text,
            _ => None,
        })
        .collect();
    assert_eq!(text, "Dark blue — or black. ✨");
}

#[test]
fn a_stream_cut_anywhere_is_truncated_or_complete_and_never_panics() {
    for (name, a2o_direction) in [("anthropic_stream.sse", true), ("openai_stream.sse", false)] {
        let bytes = fixture(name);
        let whole = if a2o_direction {
            a2o(&bytes, true).0
        } else {
            o2a(&bytes).0
        };
        for cut in 0..bytes.len() {
            let (out, result, _) = if a2o_direction {
                a2o(&bytes[..cut], true)
            } else {
                o2a(&bytes[..cut])
            };
            match result {
                // cut after the end was announced: ended as complete, with every
                // event, though the usage may be missing (the proxy then settles on
                // its estimate)
                Ok(()) => {
                    let (got, want) = (sse::parse_all(&out), sse::parse_all(&whole));
                    let (got, want) = (got.expect("parses"), want.expect("parses"));
                    assert_eq!(got.len(), want.len(), "{name} cut at {cut}");
                    assert_eq!(got.last(), want.last(), "{name} cut at {cut}");
                }
                // cut between events: truncated; inside one: its half is malformed
                Err(StreamError::Truncated | StreamError::Malformed(_)) => {
                    assert!(
                        whole.starts_with(&out),
                        "{name} cut at {cut}: not a prefix:\n{}",
                        String::from_utf8_lossy(&out)
                    )
                }
                Err(other) => panic!("{name} cut at {cut}: {other}"),
            }
        }
    }
}

#[test]
fn a_stream_cut_after_the_first_byte_ends_with_each_front_ends_error_event() {
    let mut out = Vec::new();
    stream::write_anthropic_error(&mut out, &StreamError::Truncated.to_anthropic());
    let events = anthropic_client_view(&out);
    match &events[..] {
        [(name, StreamEvent::Error { error })] => {
            assert_eq!(name, "error");
            assert_eq!(error.kind, "api_error");
            assert_eq!(error.message, "the upstream stream ended early");
        }
        other => panic!("{other:?}"),
    }
    let mut out = Vec::new();
    stream::write_openai_error(&mut out, &StreamError::Truncated.to_openai());
    let chunks = openai_client_view(&out);
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["error"]["type"], "server_error");
}

#[test]
fn malformed_upstream_events_are_errors_not_panics() {
    for data in ["{", "[1,2]", "{\"type\":\"content_block_delta\"}", "null"] {
        let mut t = AnthropicToOpenAi::new(0, false);
        let mut out = Vec::new();
        let e = t.feed(&Event::data(data), &mut out);
        assert!(matches!(e, Err(StreamError::Malformed(_))), "{data}: {e:?}");
        let mut t = OpenAiToAnthropic::new(0);
        let mut out = Vec::new();
        let e = t.feed(&Event::data(data), &mut out);
        assert!(matches!(e, Err(StreamError::Malformed(_))), "{data}: {e:?}");
    }
}

// ---------------------------------------------------------------- chunk boundaries

#[test]
fn splitting_a_stream_at_any_byte_parses_the_same() {
    for name in ["anthropic_stream.sse", "openai_stream.sse"] {
        for bytes in [fixture(name), crlf(&fixture(name))] {
            let whole = parse_split(&bytes, &[]);
            assert!(whole.len() >= 6, "{name}");
            for cut in 0..=bytes.len() {
                assert_eq!(parse_split(&bytes, &[cut]), whole, "{name} split at {cut}");
            }
            let every: Vec<usize> = (1..bytes.len()).collect();
            assert_eq!(
                parse_split(&bytes, &every),
                whole,
                "{name} one byte at a time"
            );
        }
    }
}

fn event_strategy() -> impl Strategy<Value = Event> {
    (
        proptest::option::of("[a-z_]{1,12}"),
        // data with newlines, CRs, colons, spaces and non-ASCII
        "[a-z :{}\"\\n\\r✨é]{0,40}",
    )
        .prop_map(|(event, data)| Event {
            event,
            data: data.replace("\r\n", "\n").replace('\r', "\n"),
            ..Event::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn splitting_never_changes_the_parsed_events(
        events in prop::collection::vec(event_strategy(), 0..8),
        cuts in prop::collection::vec(0usize..2000, 0..12),
        line_end in prop::sample::select(vec!["\n", "\r\n", "\r"]),
    ) {
        let mut bytes = Vec::new();
        for e in &events {
            sse::write_event(&mut bytes, e.event.as_deref(), &e.data);
        }
        let bytes = String::from_utf8_lossy(&bytes).replace('\n', line_end).into_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let whole = parse_split(&bytes, &[]);
        prop_assert_eq!(&whole, &events);
        prop_assert_eq!(parse_split(&bytes, &cuts), whole);
    }

    #[test]
    fn fixture_streams_split_anywhere_parse_the_same(
        cuts in prop::collection::vec(0usize..2000, 1..20),
        anthropic in any::<bool>(),
    ) {
        let bytes = fixture(if anthropic { "anthropic_stream.sse" } else { "openai_stream.sse" });
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        prop_assert_eq!(parse_split(&bytes, &cuts), parse_split(&bytes, &[]));
    }
}

#[test]
fn unknown_anthropic_events_are_skipped_as_the_sdks_skip_them() {
    let mut bytes = fixture("anthropic_stream.sse");
    let at = bytes.len() - "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".len();
    let extra = b"event: something_new\ndata: {\"type\":\"something_new\",\"x\":1}\n\n";
    bytes.splice(at..at, extra.iter().copied());
    let (out, result, _) = a2o(&bytes, false);
    assert_eq!(result, Ok(()));
    assert_eq!(out, a2o(&fixture("anthropic_stream.sse"), false).0);
}

#[test]
fn openai_stream_output_is_the_chunk_type_the_sdk_reads() {
    let (bytes, _, _) = a2o(&fixture("anthropic_stream.sse"), true);
    for e in sse::parse_all(&bytes).expect("within the limit") {
        if e.data != "[DONE]" {
            let c: openai::ChatChunk = serde_json::from_str(&e.data).expect("a chunk");
            assert_eq!(c.object, openai::CHUNK_OBJECT);
            assert!(c.choices.len() <= 1);
        }
    }
    // the items themselves, before writing
    let mut t = AnthropicToOpenAi::new(0, false);
    let mut items = Vec::new();
    for ev in sse::parse_all(&fixture("anthropic_stream.sse")).expect("within the limit") {
        t.feed(&ev, &mut items).expect("a good stream");
    }
    assert_eq!(items.last(), Some(&OpenAiOut::Done));
    assert!(t.is_done());
}
