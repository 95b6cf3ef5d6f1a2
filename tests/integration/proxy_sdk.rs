//! The official OpenAI and Anthropic Python SDKs against `rulec serve` as an LLM proxy
//! (issue 9): two fake providers (one of each kind, [`crate::fake_llm`]), a policy
//! with a model on each, the server with client keys, and `tests/python/sdk_check.py`
//! run by the Python of `RULEC_SDK_PYTHON`, else of `target/sdk-venv` (a venv with
//! `tests/python/requirements.txt`, which `bash .ci/run` makes). Without either the
//! test is skipped with a line saying so — unless `RULEC_REQUIRE_SDK=1` or `CI` is
//! set (as `.ci/run` sets it), which makes that a failure.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{root, scratch};
use crate::fake_llm::{answer_text, FakeKind, FakeLlm};
use crate::http::Served;

/// The key clients must present (`RULEC_API_KEYS`).
const CLIENT_KEY: &str = "k-test";

/// The variables the policy names for the providers' keys.
const OPENAI_KEY_ENV: &str = "RULEC_SDK_TEST_OPENAI_KEY";
const ANTHROPIC_KEY_ENV: &str = "RULEC_SDK_TEST_ANTHROPIC_KEY";

/// The provider model ids the policy's two models name.
const OPENAI_MODEL_ID: &str = "gpt-fake-large";
const ANTHROPIC_MODEL_ID: &str = "claude-fake-large";

/// A bound on the whole script (it sets 30 s per call itself): a hung run fails
/// instead of hanging the suite.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(600);

/// The Python to run the SDKs with, or `None` to skip (after saying so).
fn sdk_python() -> Option<String> {
    if let Ok(python) = std::env::var("RULEC_SDK_PYTHON") {
        if !python.trim().is_empty() {
            return Some(python);
        }
    }
    let venv = root().join("target/sdk-venv/bin/python");
    if venv.exists() {
        return Some(venv.to_string_lossy().into_owned());
    }
    let required = std::env::var("RULEC_REQUIRE_SDK").as_deref() == Ok("1")
        || std::env::var_os("CI").is_some();
    assert!(
        !required,
        "the SDK tests are required here (CI or RULEC_REQUIRE_SDK=1), but there is no \
         target/sdk-venv and RULEC_SDK_PYTHON is not set: bash .ci/run makes the venv"
    );
    eprintln!(
        "sdk tests skipped: no target/sdk-venv; make it with `python3 -m venv target/sdk-venv && \
         target/sdk-venv/bin/pip install -r tests/python/requirements.txt`, or set RULEC_SDK_PYTHON"
    );
    None
}

/// One model on each fake; `code_generation` goes to the Anthropic one, everything
/// else to the OpenAI one.
fn policy(openai: &FakeLlm, anthropic: &FakeLlm) -> String {
    format!(
        r#"providers:
{}{}
gateway:
  models:
    gpt_fake:
      provider: "openai_side"
      model: "{OPENAI_MODEL_ID}"
      max_tokens: 128000
      cost_per_token: 0.000002
      capabilities: ["simple_qa", "classification", "extraction", "summarization", "content_writing", "code_generation", "analysis"]
    claude_fake:
      provider: "anthropic_side"
      model: "{ANTHROPIC_MODEL_ID}"
      max_tokens: 200000
      cost_per_token: 0.000003
      capabilities: ["code_generation", "analysis"]
  routing_strategy:
    policy: "first_match"
    rules:
      - name: code
        if: task_type == "code_generation"
        model: "claude_fake"
      - fallback: "gpt_fake"
"#,
        openai.provider_yaml("openai_side", OPENAI_KEY_ENV),
        anthropic.provider_yaml("anthropic_side", ANTHROPIC_KEY_ENV),
    )
}

/// Reads `pipe` to its end on a thread, so that a full pipe cannot stall the child.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs `command` to its end or the deadline: (success, stdout, stderr).
fn run_bounded(mut command: Command) -> (bool, String, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + SCRIPT_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting on the script") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let (out, mut err) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    if status.is_none() {
        err.push_str(&format!("\n(killed after {SCRIPT_DEADLINE:?})"));
    }
    (status.is_some_and(|s| s.success()), out, err)
}

#[test]
fn the_official_sdks_work_through_the_proxy() {
    let Some(python) = sdk_python() else {
        return;
    };
    let openai = FakeLlm::start(FakeKind::OpenAi);
    let anthropic = FakeLlm::start(FakeKind::Anthropic);
    let dir = scratch("proxy_sdk");
    let policy_file = dir.join("policy.yaml");
    std::fs::write(&policy_file, policy(&openai, &anthropic)).expect("write the policy");
    let served = Served::start(
        &[policy_file.to_str().expect("a UTF-8 scratch path")],
        &[
            ("RULEC_API_KEYS", CLIENT_KEY),
            (OPENAI_KEY_ENV, openai.key()),
            (ANTHROPIC_KEY_ENV, anthropic.key()),
        ],
    );

    let mut command = Command::new(&python);
    command
        .current_dir(root())
        .arg(Path::new("tests/python/sdk_check.py"))
        .args(["--base-url", &served.base_url(), "--key", CLIENT_KEY])
        .args([
            "--openai-model",
            "gpt_fake",
            "--anthropic-model",
            "claude_fake",
        ])
        .args([
            "--openai-marker",
            &answer_text(openai.name(), OPENAI_MODEL_ID),
        ])
        .args([
            "--anthropic-marker",
            &answer_text(anthropic.name(), ANTHROPIC_MODEL_ID),
        ])
        .args(["--auto", "code_generation=claude_fake"])
        .args(["--auto", "general=gpt_fake"]);
    let (ok, stdout, stderr) = run_bounded(command);
    assert!(
        ok,
        "sdk_check.py failed (with {python})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n--- rulec serve stderr ---\n{}",
        served.stderr()
    );

    // both providers served, each called with its own key, never the client's
    assert!(openai.served() > 0 && anthropic.served() > 0, "{stdout}");
    let openai_auth = format!("Bearer {}", openai.key());
    for call in openai.completion_calls() {
        assert_eq!(call.header("authorization"), Some(openai_auth.as_str()));
    }
    for call in anthropic.completion_calls() {
        assert_eq!(call.header("x-api-key"), Some(anthropic.key()));
        assert!(call.header("anthropic-version").is_some(), "{call:?}");
    }
    for call in openai.calls().into_iter().chain(anthropic.calls()) {
        assert!(
            call.headers.iter().all(|(_, v)| !v.contains(CLIENT_KEY)),
            "the client's key reached a provider: {call:?}"
        );
    }
}
