//! Helpers of the proxy's tests: a policy over fake providers, `rulec serve` started
//! on it, and calls through the OpenAI and Anthropic front ends.

#![allow(dead_code, reason = "shared by the proxy's test modules")]

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::scratch;
use crate::fake_llm::FakeLlm;
use crate::http::{request, Response, Served};

/// The environment variables holding each fake's key, as the policies name them.
pub const PRIMARY_KEY_ENV: &str = "RULEC_TEST_PRIMARY_KEY";
pub const BACKUP_KEY_ENV: &str = "RULEC_TEST_BACKUP_KEY";

/// A policy with two providers: `primary` (model `primary`, which every `chat` call
/// is routed to) and `backup` (model `backup`, the fallback rule: the next in every
/// chain). `provider_extra` is added under the primary provider (e.g. timeouts);
/// `budgets` is a `cost_aware` section, or empty.
pub fn two_provider_policy(
    name: &str,
    primary: &FakeLlm,
    backup: &FakeLlm,
    provider_extra: &str,
    budgets: &str,
) -> PathBuf {
    let dir = scratch(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("a scratch folder");
    let mut providers = String::from("providers:\n");
    providers += &primary.provider_yaml("first", PRIMARY_KEY_ENV);
    providers += provider_extra;
    providers += &backup.provider_yaml("second", BACKUP_KEY_ENV);
    let model = |fake: &FakeLlm| fake.kind().models()[0];
    let policy = format!(
        r#"{providers}
request:
  task_type:
    type: enum
    values: [chat, code]
  session_id:
    type: string

gateway:
  models:
    primary: {{provider: first, model: {m1}, max_tokens: 100000, cost_per_token: 0.00001, quality: 0.9, capabilities: [general_purpose]}}
    backup: {{provider: second, model: {m2}, max_tokens: 100000, cost_per_token: 0.00001, quality: 0.9, capabilities: [general_purpose]}}
  routing_strategy:
    rules:
      - name: chat
        if: task_type == "chat"
        model: primary
      - fallback: backup
{budgets}"#,
        m1 = model(primary),
        m2 = model(backup),
    );
    fs::write(dir.join("policy.yaml"), policy).expect("the policy is written");
    dir
}

/// `rulec serve` on `policy` with the fakes' keys in the environment.
pub fn serve(policy: &Path, primary: &FakeLlm, backup: &FakeLlm, extra: &[&str]) -> Served {
    let path = policy.to_str().expect("a UTF-8 path");
    let mut args = vec![path];
    args.extend_from_slice(extra);
    Served::start(
        &args,
        &[
            (PRIMARY_KEY_ENV, primary.key()),
            (BACKUP_KEY_ENV, backup.key()),
        ],
    )
}

/// A chat completion through the OpenAI front end.
pub fn chat(port: u16, body: &Value, headers: &[(&str, &str)]) -> Response {
    post(port, "/v1/chat/completions", body, headers)
}

/// A message through the Anthropic front end.
pub fn message(port: u16, body: &Value, headers: &[(&str, &str)]) -> Response {
    post(port, "/v1/messages", body, headers)
}

pub fn post(port: u16, path: &str, body: &Value, headers: &[(&str, &str)]) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON serialises");
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(port, "POST", path, &all, &bytes)
        .unwrap_or_else(|e| panic!("POST {path} on 127.0.0.1:{port}: {e}"))
}

/// A small chat request for `model` (`auto` lets the policy decide).
pub fn chat_body(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 50,
        "stream": stream,
    })
}

/// The routing header that sends a call to `primary`.
pub const TO_PRIMARY: (&str, &str) = ("x-rulec-task-type", "chat");

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.trim().to_string())
        .collect()
}
