//! Fuzzes the rule language: conditions must parse without panicking, and every
//! condition that parses must survive `print` → `parse_condition` unchanged
//! (AST equality ignores positions). The typed value parsers must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rulec::syntax::{self, print};

/// Keeps panic messages readable when the input is large.
fn clip(s: impl std::fmt::Debug) -> String {
    let s = format!("{s:?}");
    if s.chars().count() <= 400 {
        return s;
    }
    let head: String = s.chars().take(400).collect();
    format!("{head}... ({} chars)", s.chars().count())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(expr) = syntax::parse_condition(text) {
        let printed = print::print(&expr);
        match syntax::parse_condition(&printed) {
            Ok(again) => assert!(
                again == expr,
                "round trip changed the AST\n input:   {}\n printed: {}\n first:   {}\n second:  {}",
                clip(text),
                clip(&printed),
                clip(&expr),
                clip(&again),
            ),
            Err(e) => panic!(
                "printed condition does not parse\n input:   {}\n printed: {}\n error:   {}",
                clip(text),
                clip(&printed),
                clip(&e),
            ),
        }
    }

    let _ = syntax::parse_duration(text);
    let _ = syntax::parse_rate(text);
    let _ = syntax::parse_interval(text);
    let _ = syntax::parse_cron(text);
    let _ = syntax::parse_threshold(text);
    let _ = syntax::parse_money(text);
});
