//! Fuzzes the proxy's stream handling: arbitrary bytes, split where the first byte
//! says, through the event-stream parser, both stream translators and the relays of
//! all four directions (the proxy's passthroughs included), and the four body
//! translations and the front ends' body parsing. None may panic; a parse split
//! anywhere must equal the parse in one piece.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rulec::proxy::sse::{self, Parser};
use rulec::proxy::stream::{self, AnthropicToOpenAi, OpenAiToAnthropic};
use rulec::proxy::front::{ClientBody, Front};
use rulec::proxy::relay::{self, Relay};
use rulec::proxy::{anthropic, openai, translate};

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let Ok(whole) = sse::parse_all(bytes) else {
        return;
    };

    // the same bytes in chunks of `split` bytes parse the same
    let mut parser = Parser::new();
    let mut events = Vec::new();
    for chunk in bytes.chunks(usize::from(split).max(1)) {
        if parser.push(chunk, &mut events).is_err() {
            return;
        }
    }
    if parser.finish(&mut events).is_err() {
        return;
    }
    assert_eq!(events, whole);

    let mut a2o = AnthropicToOpenAi::new(0, split % 2 == 0);
    let mut o2a = OpenAiToAnthropic::new(u64::from(split));
    let (mut chunks, mut anthropic_events) = (Vec::new(), Vec::new());
    for e in &events {
        let _ = a2o.feed(e, &mut chunks);
        let _ = o2a.feed(e, &mut anthropic_events);
    }
    let _ = a2o.finish(&mut chunks);
    let _ = o2a.finish(&mut anthropic_events);
    let _ = (a2o.usage(), o2a.usage());
    let mut out = Vec::new();
    stream::write_openai(&mut out, &chunks);
    stream::write_anthropic(&mut out, &anthropic_events);
    // what the translators write is a well-formed event stream
    assert!(sse::parse_all(&out).is_ok());

    // every direction of the proxy's relay, as a stream it passes or translates
    for (client, provider) in [
        (Front::OpenAi, Front::OpenAi),
        (Front::OpenAi, Front::Anthropic),
        (Front::Anthropic, Front::OpenAi),
        (Front::Anthropic, Front::Anthropic),
    ] {
        let mut relay = Relay::new(client, provider, split % 3 == 0, u64::from(split));
        let mut out = Vec::new();
        let mut failed = None;
        for e in &events {
            if let Err(err) = relay.feed(e, &mut out) {
                failed = Some(err);
                break;
            }
        }
        if failed.is_none() {
            failed = relay.finish(&mut out).err();
        }
        if let Some(err) = failed {
            relay::write_error(client, &err, &mut out);
        }
        let _ = (relay.usage(), relay.is_done());
        assert!(sse::parse_all(&out).is_ok());
    }

    // each event's data as a body of either format
    for e in &events {
        let body = e.data.as_bytes();
        for front in [Front::OpenAi, Front::Anthropic] {
            if let Ok(b) = ClientBody::parse(front, body) {
                let _ = (b.estimate(), b.max_output(), b.streaming(), b.model());
            }
        }
        if let Ok(req) = serde_json::from_slice::<openai::ChatRequest>(body) {
            let _ = translate::openai_to_anthropic_request(req, 1024);
        }
        if let Ok(req) = serde_json::from_slice::<anthropic::MessagesRequest>(body) {
            let _ =
                translate::anthropic_to_openai_request(req, translate::MaxTokensField::MaxTokens);
        }
        if let Ok(resp) = serde_json::from_slice::<openai::ChatResponse>(body) {
            let _ = translate::openai_to_anthropic_response(resp);
        }
        if let Ok(resp) = serde_json::from_slice::<anthropic::MessageResponse>(body) {
            let _ = translate::anthropic_to_openai_response(resp, 0);
        }
    }
});
