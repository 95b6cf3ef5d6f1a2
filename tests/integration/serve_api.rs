//! `rulec serve` seen from outside, through its HTTP API and its process: refusing to
//! start on a bad policy or bundle, decisions that agree with `rulec explain`, bad and
//! abusive requests that are answered (or cut off) without hurting the server, the
//! admin API, health / readiness / status / metrics, SIGTERM with `--state-dir`, and
//! hot reload by file watching and SIGHUP.
//!
//! Every server is a real child process on 127.0.0.1 with a port picked by the OS
//! (see [`crate::http::Served`]); nothing here depends on how long anything takes:
//! conditions that settle asynchronously are awaited with [`eventually`] and generous
//! deadlines.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{rulec, scratch};
use crate::http::{eventually, get, post_json, request, Conn, Response, Served, IO_TIMEOUT};

/// The example policy every test serves (or a copy of it).
const EXAMPLE: &str = "rules/examples/gateway";

/// The file of the example holding the models and routing rules.
const ROUTING_FILE: &str = "gateway-multi-model-routing.yaml";

/// The example's fallback rule, and the same rule pointing to another model: a
/// different policy, hence a different bundle hash.
const FALLBACK_SONNET: &str = "- fallback: \"claude_sonnet\"";
const FALLBACK_OPUS: &str = "- fallback: \"claude_opus\"";

/// How long anything asynchronous (a reload, an exit, a log line) may take to show.
const SETTLE: Duration = Duration::from_secs(30);

/// The admin token of the servers that have the admin API on.
const TOKEN: &str = "serve-api-test-token";

// ---- helpers: policies and bundles ----

/// A path as the `&str` the command line wants.
fn arg(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// The first `sha256:<64 hex digits>` in `text`.
fn hash_in(text: &str) -> Option<String> {
    let at = text.find("sha256:")?;
    let hex: String = text[at + "sha256:".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    (hex.len() == 64).then(|| format!("sha256:{hex}"))
}

/// Compiles `policy` to `out` with `rulec compile` and returns the hash it printed.
fn compile(policy: &str, out: &Path) -> String {
    let run = rulec(&["compile", policy, "-o", arg(out)]);
    assert_eq!(
        run.code, 0,
        "`rulec compile {policy}` failed\n{}{}",
        run.stdout, run.stderr
    );
    hash_in(&format!("{}{}", run.stdout, run.stderr)).unwrap_or_else(|| {
        panic!(
            "`rulec compile {policy}` printed no hash\n{}{}",
            run.stdout, run.stderr
        )
    })
}

/// The compiled bundle of `policy` as JSON (written under `dir`), with its hash.
fn bundle_json(policy: &str, dir: &Path) -> (Value, String) {
    let out = dir.join("bundle.json");
    let hash = compile(policy, &out);
    let bytes = fs::read(&out).expect("the compiled bundle is readable");
    let json = serde_json::from_slice(&bytes).expect("a bundle is JSON");
    (json, hash)
}

/// Copies the example policy (its files) into `dir/policy` and returns that folder.
fn copy_example(dir: &Path) -> PathBuf {
    let to = dir.join("policy");
    fs::create_dir_all(&to).expect("create the policy copy");
    for entry in fs::read_dir(crate::common::root().join(EXAMPLE)).expect("read the example") {
        let entry = entry.expect("a directory entry");
        if entry.path().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a policy file");
        }
    }
    to
}

/// Replaces `file` in one step (written next to its folder, then renamed over it), so
/// that a watcher never sees it half written.
fn replace_file(file: &Path, contents: &str) {
    let folder = file.parent().expect("the file is in a folder");
    let staging = folder
        .parent()
        .expect("the policy folder is in a scratch folder")
        .join(format!(
            "staging-{}",
            file.file_name().expect("a file name").to_string_lossy()
        ));
    fs::write(&staging, contents).expect("write the staging file");
    fs::rename(&staging, file).expect("rename the staging file over the policy file");
}

/// Replaces the first `from` with `to` in `file` (atomically); panics if `from` is not
/// there, so that a changed example cannot silently turn a test into a no-op.
fn edit(file: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(file).expect("read the policy file");
    assert!(
        text.contains(from),
        "`{}` no longer contains {from:?}",
        file.display()
    );
    replace_file(file, &text.replacen(from, to, 1));
}

/// A copy of the example under `dir` whose fallback is `claude_opus`: a valid policy
/// different from the example.
fn changed_policy(dir: &Path) -> PathBuf {
    let policy = copy_example(dir);
    edit(&policy.join(ROUTING_FILE), FALLBACK_SONNET, FALLBACK_OPUS);
    policy
}

/// A compiled bundle with one character of its content changed, so that its hash no
/// longer matches.
fn tampered_bundle(dir: &Path) -> Vec<u8> {
    let out = dir.join("tampered.json");
    compile(EXAMPLE, &out);
    let text = fs::read_to_string(&out).expect("read the bundle");
    assert!(
        text.contains("claude-opus-4"),
        "the example names claude-opus-4"
    );
    let tampered = text.replacen("claude-opus-4", "claude-opus-5", 1);
    fs::write(&out, &tampered).expect("write the tampered bundle");
    tampered.into_bytes()
}

/// `rulec explain EXAMPLE --request ... --format json`: its `decision` object.
fn explain(request: &Value) -> Value {
    let req = request.to_string();
    let run = rulec(&["explain", EXAMPLE, "--request", &req, "--format", "json"]);
    assert_eq!(
        run.code, 0,
        "`rulec explain` on {req} failed\n{}",
        run.stderr
    );
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("`rulec explain` printed no JSON ({e}):\n{}", run.stdout));
    v["decision"].clone()
}

// ---- helpers: talking to the server ----

fn route(port: u16, body: &Value) -> Response {
    post_json(port, "/v1/route", body)
}

fn report(port: u16, body: &Value) -> Response {
    post_json(port, "/v1/report", body)
}

fn status(port: u16) -> Value {
    let r = get(port, "/v1/status");
    assert_eq!(r.status, 200, "/v1/status: {}", r.text());
    r.json()
}

fn metrics(port: u16) -> String {
    let r = get(port, "/metrics");
    assert_eq!(r.status, 200, "/metrics: {}", r.text());
    r.text()
}

fn served_hash(port: u16) -> String {
    status(port)["bundle"]["hash"]
        .as_str()
        .expect("status has bundle.hash")
        .to_string()
}

/// A request to the admin API, with `Authorization: Bearer <token>` when given.
fn admin(port: u16, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    request(port, method, path, &headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on 127.0.0.1:{port}: {e}"))
}

/// Asserts that `r` is the JSON error `code` with HTTP `status`; returns the error.
fn assert_error(r: &Response, status: u16, code: &str) -> Value {
    let body = r.json();
    assert_eq!(
        (r.status, body["error"]["code"].as_str()),
        (status, Some(code)),
        "expected {status} `{code}`, got {}: {body}",
        r.status
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "an error has a message: {body}"
    );
    body["error"].clone()
}

/// The `help` of a JSON error, or "" when it has none.
fn help_of(error: &Value) -> String {
    error["help"].as_str().unwrap_or_default().to_string()
}

/// The server still works: `/healthz` and a normal decision both answer 200.
fn assert_still_serving(port: u16) {
    let health = get(port, "/healthz");
    assert_eq!(health.status, 200, "/healthz: {}", health.text());
    let r = route(port, &json!({"task_type": "summarization"}));
    assert_eq!(r.status, 200, "a normal route after abuse: {}", r.text());
    assert!(r.json()["decision_id"].is_string(), "{}", r.text());
}

/// The value of the first metrics sample whose line starts with `prefix`.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

// ---- helpers: raw sockets, for clients that misbehave ----

/// What a misbehaving client saw from the server.
#[derive(Debug)]
enum Outcome {
    /// a response: its status and body
    Answered(u16, String),
    /// the connection was closed or reset before any response
    Closed,
    /// nothing within the socket's read timeout: the server left the client hanging
    Hung,
}

fn open(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("set the read timeout");
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("set the write timeout");
    stream
}

/// Reads until one whole response (framed by `Content-Length`) has arrived, the
/// connection ends, or the read timeout passes.
fn outcome(stream: &mut TcpStream) -> Outcome {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some((status, body, complete)) = parse_response(&buf) {
                    if complete {
                        return Outcome::Answered(status, body);
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Outcome::Hung;
            }
            Err(_) => break, // reset: the server cut the connection
        }
    }
    match parse_response(&buf) {
        Some((status, body, _)) => Outcome::Answered(status, body),
        None => Outcome::Closed,
    }
}

/// (status, body so far, whether the body is complete) once the head has arrived.
fn parse_response(buf: &[u8]) -> Option<(u16, String, bool)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    let body = &buf[end + 4..];
    let complete = length.is_some_and(|n| body.len() >= n);
    Some((status, String::from_utf8_lossy(body).into_owned(), complete))
}

/// Sends `head` and then `body` from another thread (ignoring write errors: the
/// server may answer and close before reading it all) while reading the outcome.
fn send_big(port: u16, head: String, body: Vec<u8>) -> Outcome {
    let mut stream = open(port);
    let mut writer = stream.try_clone().expect("clone the socket");
    let sending = thread::spawn(move || {
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        for piece in body.chunks(64 * 1024) {
            if writer.write_all(piece).is_err() {
                return;
            }
        }
        let _ = writer.flush();
    });
    let seen = outcome(&mut stream);
    drop(stream);
    let _ = sending.join();
    seen
}

/// A refusal of an oversized body: a 413 `body_too_large`, or the connection cut.
fn assert_refused_as_too_large(seen: &Outcome, what: &str) {
    match seen {
        Outcome::Answered(413, body) => {
            let v: Value = serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("{what}: the 413 is not JSON ({e}): {body}"));
            assert_eq!(v["error"]["code"], "body_too_large", "{what}: {body}");
        }
        Outcome::Closed => {}
        other => panic!("{what}: expected 413 `body_too_large` or a cut connection, got {other:?}"),
    }
}

// ---- helpers: the Prometheus text format ----

/// Splits one sample line into (metric name, labels, value); `Err` says what is wrong.
fn parse_sample(line: &str) -> Result<(String, BTreeMap<String, String>, f64), String> {
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("a label without `=`")?;
            let label = &rest[..eq];
            if label.is_empty()
                || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || label.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(format!("bad label name {label:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("a label value is not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let close = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => value.push(c),
                    None => return Err("an unterminated label value".into()),
                }
            };
            labels.insert(label.to_string(), value);
            rest = &rest[close + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .map_err(|e| format!("value {v:?} is not a number: {e}"))?,
    };
    Ok((name.to_string(), labels, value))
}

/// Checks the whole exposition: every sample line parses, belongs to a family with
/// one `# TYPE` (and a `# HELP`) line, and no family is declared twice. Returns the
/// samples.
fn check_exposition(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').expect("`# TYPE name kind`");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "line {}: unknown type {kind:?}",
                n + 1
            );
            let before = types.insert(family.to_string(), kind.to_string());
            assert!(
                before.is_none(),
                "line {}: `{family}` is typed twice",
                n + 1
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let family = rest.split(' ').next().unwrap_or_default();
            assert!(
                helps.insert(family.to_string()),
                "line {}: `{family}` has two HELP lines",
                n + 1
            );
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let parsed = parse_sample(line)
            .unwrap_or_else(|e| panic!("line {} is not Prometheus text ({e}): {line:?}", n + 1));
        let name = &parsed.0;
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|base| types.get(*base).is_some_and(|k| k == "histogram"))
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "line {}: `{name}` comes before (or without) a `# TYPE {family}` line",
            n + 1
        );
        samples.push(parsed);
    }
    for family in types.keys() {
        assert!(helps.contains(family), "`{family}` has a TYPE but no HELP");
    }
    samples
}

// ---- 1. refusing to start ----

#[test]
fn serve_refuses_a_policy_with_errors_and_prints_its_diagnostics() {
    let (code, _, stderr) = Served::start_expect_failure(&["rules/seed"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("error[E0"),
        "diagnostics are rendered:\n{stderr}"
    );
    assert!(stderr.contains("not serving"), "{stderr}");
}

#[test]
fn serve_refuses_a_tampered_bundle_and_says_the_hash_does_not_match() {
    let dir = scratch("serve_api_tampered_start");
    tampered_bundle(&dir);
    let file = dir.join("tampered.json");
    let (code, _, stderr) = Served::start_expect_failure(&[arg(&file)], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("hash"),
        "the refusal mentions the hash:\n{stderr}"
    );
    assert!(stderr.contains("not serving"), "{stderr}");
}

#[test]
fn serve_refuses_a_missing_path_and_names_it() {
    let (code, _, stderr) = Served::start_expect_failure(&["no/such/gateway"], &[]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("no/such/gateway"),
        "the path is named:\n{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(stderr.contains("not serving"), "{stderr}");
}

// ---- 2. decisions ----

/// Requests reaching every rule of the example, with and without sessions (each
/// session used once, so that no affinity pin changes a later answer).
fn varied_requests() -> Vec<Value> {
    vec![
        json!({"task_type": "summarization", "estimated_tokens": 150000}),
        json!({"estimated_tokens": 100001, "session_id": "serve-api-long"}),
        json!({"task_type": "critical_analysis", "task_complexity": "complex", "session_id": "serve-api-critical"}),
        json!({"task_type": "code_generation", "task_complexity": "complex", "estimated_tokens": 4000, "session_id": "serve-api-code"}),
        json!({"task_type": "code_generation"}),
        json!({"task_type": "code_generation", "task_complexity": "moderate"}),
        json!({"task_type": "code_generation", "task_complexity": "simple"}),
        json!({"task_type": "content_creation", "task_complexity": "moderate", "session_id": "serve-api-content"}),
        json!({"task_type": "summarization", "estimated_tokens": 9000}),
        json!({"task_type": "extraction", "estimated_tokens": 40000}),
        json!({"task_type": "summarization", "session_id": "serve-api-summary"}),
        json!({"task_type": "simple_qa", "task_complexity": "simple"}),
        json!({"task_type": "simple_qa", "task_complexity": "complex", "session_id": "serve-api-qa"}),
        json!({"task_type": "classification", "task_complexity": "moderate"}),
        json!({"task_type": "extraction", "task_complexity": "simple", "session_id": "serve-api-extract"}),
        json!({"task_type": "extraction"}),
        json!({"task_type": "general"}),
        json!({"estimated_tokens": 100000}),
        json!({}),
    ]
}

#[test]
fn decisions_match_rulec_explain_for_every_rule() {
    let dir = scratch("serve_api_decisions");
    let (bundle, _) = bundle_json(EXAMPLE, &dir);
    let pools: BTreeMap<String, Vec<String>> = bundle["content"]["pools"]
        .as_array()
        .expect("the bundle lists its pools")
        .iter()
        .map(|p| {
            let members = p["models"].as_array().expect("a pool has models");
            let members = members
                .iter()
                .map(|m| m.as_str().expect("a name").to_string());
            (
                p["name"].as_str().expect("a pool name").to_string(),
                members.collect(),
            )
        })
        .collect();
    let all_rules: BTreeSet<String> = bundle["content"]["table"]["rules"]
        .as_array()
        .expect("the bundle lists its rules")
        .iter()
        .map(|r| r["id"].as_str().expect("a rule id").to_string())
        .collect();

    // the truth first, so that the server is young (all providers healthy) when asked
    let requests = varied_requests();
    let truths: Vec<Value> = requests.iter().map(explain).collect();
    let reached: BTreeSet<String> = truths
        .iter()
        .map(|d| {
            d["rule"]
                .as_str()
                .expect("explain names the rule")
                .to_string()
        })
        .collect();
    assert_eq!(
        reached, all_rules,
        "the requests reach every rule of the example"
    );

    let served = Served::start(&[EXAMPLE], &[]);
    for (req, truth) in requests.iter().zip(&truths) {
        let r = route(served.port, req);
        assert_eq!(r.status, 200, "{req}: {}", r.text());
        let got = r.json();
        let context = format!("request {req}\nexplain: {truth}\nserver: {got}");
        assert_eq!(got["rule"]["id"], truth["rule"], "{context}");
        assert_eq!(got["rule"]["index"], truth["rule_index"], "{context}");
        assert_eq!(got["rule"]["file"], truth["source"]["file"], "{context}");
        assert_eq!(got["rule"]["line"], truth["source"]["line"], "{context}");
        assert_eq!(
            got["adjustments"],
            json!([]),
            "healthy providers, fresh sessions: nothing to adjust\n{context}"
        );
        assert!(
            got["decision_id"]
                .as_str()
                .is_some_and(|d| d.starts_with("d-")),
            "{context}"
        );
        assert!(got["fallbacks"].is_array(), "{context}");
        assert!(
            got["bundle"]
                .as_str()
                .is_some_and(|b| b.starts_with("sha256:")),
            "{context}"
        );
        let target = truth["target"].as_str().expect("explain names the target");
        match truth["kind"].as_str() {
            Some("model") => {
                assert_eq!(got["model"], target, "{context}");
                assert!(
                    got.get("pool").is_none(),
                    "a model rule has no pool\n{context}"
                );
            }
            Some("pool") => {
                assert_eq!(got["pool"]["name"], target, "{context}");
                let members = &pools[target];
                let model = got["model"].as_str().expect("a model");
                assert!(
                    members.iter().any(|m| m == model),
                    "{model} is not in {members:?}\n{context}"
                );
                let at = got["pool"]["member"]
                    .as_u64()
                    .expect("the member's position");
                assert_eq!(
                    members.get(at as usize).map(String::as_str),
                    Some(model),
                    "{context}"
                );
            }
            other => panic!("explain gave an unknown decision kind {other:?}\n{context}"),
        }
    }
}

#[test]
fn the_served_bundle_hash_is_the_one_rulec_compile_prints() {
    let dir = scratch("serve_api_hash");
    let compiled = compile(EXAMPLE, &dir.join("bundle.json"));
    assert!(compiled.starts_with("sha256:"), "{compiled}");
    let served = Served::start(&[EXAMPLE], &[]);
    let decided = route(served.port, &json!({"task_type": "general"})).json();
    assert_eq!(decided["bundle"], compiled.as_str(), "{decided}");
    assert_eq!(served_hash(served.port), compiled);

    // and serving the compiled file itself gives the same hash
    let from_file = Served::start(&[arg(&dir.join("bundle.json"))], &[]);
    assert_eq!(served_hash(from_file.port), compiled);
}

// ---- 3. bad requests ----

#[test]
fn invalid_route_requests_get_json_errors_and_the_server_carries_on() {
    let served = Served::start(&[EXAMPLE], &[]);
    let port = served.port;
    let post = |body: &[u8]| {
        request(
            port,
            "POST",
            "/v1/route",
            &[("Content-Type", "application/json")],
            body,
        )
        .expect("POST /v1/route")
    };

    assert_error(&post(b"{\"task_type\": "), 400, "malformed_json");
    assert_error(&post(b"not json at all"), 400, "malformed_json");
    assert_error(&post(b""), 400, "malformed_json");
    assert_error(&post(b"[1, 2, 3]"), 400, "invalid_request");
    assert_error(&post(b"\"summarization\""), 400, "invalid_request");

    let wrong_type = assert_error(
        &route(port, &json!({"estimated_tokens": "many"})),
        400,
        "invalid_request",
    );
    assert_eq!(wrong_type["attribute"], "estimated_tokens", "{wrong_type}");

    let unknown = assert_error(
        &route(port, &json!({"task_tpye": "x"})),
        400,
        "invalid_request",
    );
    assert!(help_of(&unknown).contains("did you mean"), "{unknown}");
    assert!(help_of(&unknown).contains("task_type"), "{unknown}");

    let outside = assert_error(
        &route(port, &json!({"task_type": "sumarization"})),
        400,
        "invalid_request",
    );
    assert_eq!(outside["attribute"], "task_type", "{outside}");
    assert!(help_of(&outside).contains("did you mean"), "{outside}");
    assert!(help_of(&outside).contains("summarization"), "{outside}");

    let negative = assert_error(
        &route(port, &json!({"estimated_tokens": -1})),
        400,
        "invalid_request",
    );
    assert_eq!(negative["attribute"], "estimated_tokens", "{negative}");

    assert_still_serving(port);
    let m = metrics(port);
    assert!(
        m.lines()
            .any(|l| l.starts_with("rulec_route_rejections_total{code=\"malformed_json\"} 3")),
        "rejections are counted by code:\n{m}"
    );
}

#[test]
fn wrong_methods_get_405_and_unknown_paths_404_with_help() {
    let served = Served::start(&[EXAMPLE], &[]);
    let port = served.port;
    assert_error(&get(port, "/v1/route"), 405, "method_not_allowed");
    assert_error(&get(port, "/v1/report"), 405, "method_not_allowed");
    let put = request(port, "PUT", "/v1/status", &[], b"{}").expect("PUT /v1/status");
    assert_error(&put, 405, "method_not_allowed");
    let delete = request(port, "DELETE", "/healthz", &[], b"").expect("DELETE /healthz");
    assert_error(&delete, 405, "method_not_allowed");

    let missing = get(port, "/v2/route");
    assert_eq!(missing.header("content-type"), Some("application/json"));
    let e = assert_error(&missing, 404, "not_found");
    assert!(
        help_of(&e).contains("/v1/route"),
        "the help lists the endpoints: {e}"
    );
    assert_still_serving(port);
}

#[test]
fn oversized_bodies_are_refused_or_cut_off_and_the_server_carries_on() {
    let served = Served::start(&[EXAMPLE], &[]);
    let port = served.port;
    let ten_mb = 10 * 1024 * 1024;

    let head = format!(
        "POST /v1/route HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {ten_mb}\r\n\r\n"
    );
    let seen = send_big(port, head, vec![b' '; ten_mb]);
    assert_refused_as_too_large(&seen, "10 MB with Content-Length");
    assert_still_serving(port);

    let mut chunked = Vec::with_capacity(ten_mb + 4096);
    for piece in vec![b' '; ten_mb].chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "POST /v1/route HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let seen = send_big(port, head, chunked);
    assert_refused_as_too_large(&seen, "10 MB chunked");
    assert_still_serving(port);

    // the limit is --max-body: just over it is refused from the header alone
    let served_small = Served::start(&[EXAMPLE, "--max-body", "100"], &[]);
    let big = format!(
        "{{\"task_type\": \"general\", \"x\": \"{}\"}}",
        "y".repeat(200)
    );
    let r = request(served_small.port, "POST", "/v1/route", &[], big.as_bytes());
    match r {
        Ok(r) => {
            assert_error(&r, 413, "body_too_large");
        }
        Err(e) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{e}"
        ),
    }
    assert_still_serving(served_small.port);
}

#[test]
fn slow_and_stalled_clients_are_timed_out_and_the_server_carries_on() {
    let served = Served::start(&[EXAMPLE, "--request-timeout", "500ms"], &[]);
    let port = served.port;

    // a body that stops arriving: 10 of 100 promised bytes
    let mut slow = open(port);
    let head = format!(
        "POST /v1/route HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"task_ty"
    );
    slow.write_all(head.as_bytes())
        .expect("send the start of the request");
    match outcome(&mut slow) {
        Outcome::Answered(status, body) => {
            assert_eq!(status, 408, "{body}");
            let v: Value = serde_json::from_str(&body).expect("the 408 is JSON");
            assert_eq!(v["error"]["code"], "body_timeout", "{body}");
        }
        Outcome::Closed => {}
        Outcome::Hung => panic!(
            "a body that stopped arriving left the client hanging for {IO_TIMEOUT:?} \
             (--request-timeout is 500ms)"
        ),
    }

    // half a request line, then nothing
    let mut stalled = open(port);
    stalled
        .write_all(b"POST /v1/ro")
        .expect("send half a request line");
    match outcome(&mut stalled) {
        Outcome::Closed => {}
        Outcome::Answered(status, body) => assert!(
            (400..500).contains(&status),
            "a stalled request line got {status}: {body}"
        ),
        Outcome::Hung => panic!(
            "half a request line left the connection open for {IO_TIMEOUT:?} \
             (--request-timeout is 500ms)"
        ),
    }

    // headers that never end
    let mut endless = open(port);
    endless
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-A: b\r\n").as_bytes(),
        )
        .expect("send unfinished headers");
    assert!(
        !matches!(outcome(&mut endless), Outcome::Hung),
        "unfinished headers left the connection open for {IO_TIMEOUT:?}"
    );

    assert_still_serving(port);
}

#[test]
fn an_oversized_body_on_a_kept_alive_connection_is_never_read_as_a_request() {
    let served = Served::start(&[EXAMPLE, "--max-body", "100"], &[]);
    // the refused body is itself a request: were it parsed as the next one, the
    // second answer would be its 404
    let smuggled = format!(
        "GET /nope HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(150)
    );
    let mut conn = Conn::open(served.port).expect("connect");
    let refused = conn
        .send("POST", "/v1/route", &[], smuggled.as_bytes())
        .expect("an answer to the oversized body");
    assert_error(&refused, 413, "body_too_large");
    let next = conn
        .send("GET", "/healthz", &[], b"")
        .expect("an answer on the same (or a new) connection");
    assert_eq!(
        next.status,
        200,
        "the refused body was read as a request: {}",
        next.text()
    );
    assert_eq!(next.json()["status"], "ok");
}

#[test]
fn reports_are_validated_and_release_a_decision_exactly_once() {
    let served = Served::start(&[EXAMPLE], &[]);
    let port = served.port;

    let kind = assert_error(
        &report(
            port,
            &json!({"model": "claude_opus", "outcome": "error", "error": "timout"}),
        ),
        400,
        "invalid_report",
    );
    assert_eq!(kind["attribute"], "error", "{kind}");
    assert!(help_of(&kind).contains("did you mean"), "{kind}");
    assert!(help_of(&kind).contains("`timeout`"), "{kind}");

    let unknown = assert_error(
        &report(
            port,
            &json!({"decision_id": "d-00000000-987654", "outcome": "success"}),
        ),
        404,
        "unknown_decision",
    );
    assert!(help_of(&unknown).contains("model"), "{unknown}");
    assert_error(
        &report(
            port,
            &json!({"decision_id": "decision-1", "outcome": "success"}),
        ),
        400,
        "invalid_report",
    );
    assert_error(
        &report(port, &json!({"outcome": "meh", "model": "claude_opus"})),
        400,
        "invalid_report",
    );
    assert_error(
        &report(
            port,
            &json!({"model": "claude_opus", "outcome": "success", "surprise": 1}),
        ),
        400,
        "invalid_report",
    );
    assert_error(
        &report(
            port,
            &json!({"model": "claude_opus", "outcome": "success", "cost": -1}),
        ),
        400,
        "invalid_report",
    );
    let malformed = request(port, "POST", "/v1/report", &[], b"{oops").expect("POST /v1/report");
    assert_error(&malformed, 400, "malformed_json");

    let decided = route(
        port,
        &json!({"task_type": "code_generation", "session_id": "serve-api-report"}),
    );
    assert_eq!(decided.status, 200, "{}", decided.text());
    let decision = decided.json();
    let id = decision["decision_id"].as_str().expect("a decision id");
    assert_eq!(status(port)["leases"], 1, "the decision holds a lease");

    let done = json!({"decision_id": id, "outcome": "success", "latency_ms": 850, "tokens": 1200, "cost": 0.004});
    let first = report(port, &done);
    assert_eq!(first.status, 200, "{}", first.text());
    let accepted = first.json();
    assert_eq!(accepted["released"], true, "{accepted}");
    assert_eq!(accepted["model"], decision["model"], "{accepted}");
    assert_eq!(accepted["provider"], decision["provider"], "{accepted}");
    assert_eq!(status(port)["leases"], 0, "the report ended the lease");

    assert_error(&report(port, &done), 404, "unknown_decision");

    // with `model`, a late report still counts, without releasing anything
    let mut late = done.clone();
    late["model"] = decision["model"].clone();
    let r = report(port, &late);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["released"], false);
    assert_still_serving(port);
}

/// Exposes a bug: `diag::suggest::did_you_mean` already returns the whole sentence
/// "did you mean `x`?", and `src/runtime/report.rs` (the error kind, and the unknown
/// model) wraps it in a second one: "did you mean `did you mean `timeout`?`?".
#[test]
fn a_mistyped_report_error_kind_suggests_the_right_one_in_plain_words() {
    let served = Served::start(&[EXAMPLE], &[]);
    let kind = assert_error(
        &report(
            served.port,
            &json!({"model": "claude_opus", "outcome": "error", "error": "timout"}),
        ),
        400,
        "invalid_report",
    );
    assert_eq!(help_of(&kind), "did you mean `timeout`?", "{kind}");
    let model = assert_error(
        &report(
            served.port,
            &json!({"model": "claude_opsu", "outcome": "success"}),
        ),
        400,
        "invalid_report",
    );
    assert_eq!(model["attribute"], "model", "{model}");
    assert_eq!(help_of(&model), "did you mean `claude_opus`?", "{model}");
}

// ---- 4. the admin API ----

#[test]
fn the_admin_api_is_off_without_a_token() {
    let dir = scratch("serve_api_admin_off");
    compile(EXAMPLE, &dir.join("b.json"));
    let bundle = fs::read(dir.join("b.json")).expect("read the bundle");
    let served = Served::start(
        &[EXAMPLE, "--watch-interval", "0s"],
        &[("RULEC_ADMIN_TOKEN", "")],
    );
    let off = admin(served.port, "PUT", "/admin/bundle", Some(TOKEN), &bundle);
    let e = assert_error(&off, 404, "admin_off");
    assert!(help_of(&e).contains("RULEC_ADMIN_TOKEN"), "{e}");
    let reset = admin(
        served.port,
        "POST",
        "/admin/providers/openai/reset",
        None,
        b"",
    );
    assert_error(&reset, 404, "admin_off");
}

#[test]
fn the_admin_api_checks_the_token_and_swaps_in_a_new_bundle() {
    let dir = scratch("serve_api_admin_swap");
    let original = compile(EXAMPLE, &dir.join("original.json"));
    let policy = changed_policy(&dir);
    let changed_file = dir.join("changed.json");
    let changed = compile(arg(&policy), &changed_file);
    assert_ne!(changed, original, "the changed policy has another hash");
    let bytes = fs::read(&changed_file).expect("read the changed bundle");

    let served = Served::start(
        &[EXAMPLE, "--watch-interval", "0s"],
        &[("RULEC_ADMIN_TOKEN", TOKEN)],
    );
    let port = served.port;
    assert_eq!(served_hash(port), original);

    let none = admin(port, "PUT", "/admin/bundle", None, &bytes);
    assert_error(&none, 401, "unauthorized");
    let wrong = admin(port, "PUT", "/admin/bundle", Some("not-the-token"), &bytes);
    assert_error(&wrong, 401, "unauthorized");
    let prefix = admin(
        port,
        "PUT",
        "/admin/bundle",
        Some(&TOKEN[..TOKEN.len() - 1]),
        &bytes,
    );
    assert_error(&prefix, 401, "unauthorized");
    assert_eq!(
        served_hash(port),
        original,
        "refused requests change nothing"
    );

    let swapped = admin(port, "PUT", "/admin/bundle", Some(TOKEN), &bytes);
    assert_eq!(swapped.status, 200, "{}", swapped.text());
    let body = swapped.json();
    assert_eq!(body["changed"], true, "{body}");
    assert_eq!(body["bundle"], changed.as_str(), "{body}");
    assert_eq!(body["previous"], original.as_str(), "{body}");

    let decided = route(port, &json!({"task_type": "general"})).json();
    assert_eq!(decided["bundle"], changed.as_str(), "{decided}");
    assert_eq!(
        decided["model"], "claude_opus",
        "the new fallback is in force: {decided}"
    );
    assert_eq!(served_hash(port), changed);
    assert!(
        metrics(port).contains(&format!("rulec_bundle_info{{hash=\"{changed}\"}} 1")),
        "metrics show the new bundle"
    );

    let again = admin(port, "PUT", "/admin/bundle", Some(TOKEN), &bytes);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        again.json()["changed"],
        false,
        "the same bundle twice is no change"
    );
    assert!(metrics(port)
        .lines()
        .any(|l| l.starts_with("rulec_reloads_total{result=\"ok\",source=\"admin\"} 1")));
}

#[test]
fn a_tampered_bundle_over_the_admin_api_is_refused_and_the_old_one_keeps_serving() {
    let dir = scratch("serve_api_admin_tampered");
    let original = compile(EXAMPLE, &dir.join("original.json"));
    let tampered = tampered_bundle(&dir);

    let served = Served::start(
        &[EXAMPLE, "--watch-interval", "0s"],
        &[("RULEC_ADMIN_TOKEN", TOKEN)],
    );
    let port = served.port;
    let refused = admin(port, "PUT", "/admin/bundle", Some(TOKEN), &tampered);
    let e = assert_error(&refused, 422, "bundle_refused");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("hash")),
        "{e}"
    );
    assert!(
        help_of(&e).contains(&original),
        "the help names the bundle kept: {e}"
    );

    let not_json = admin(port, "PUT", "/admin/bundle", Some(TOKEN), b"gateway: {}");
    assert_error(&not_json, 422, "bundle_refused");

    assert_eq!(served_hash(port), original, "the old bundle keeps serving");
    let decided = route(port, &json!({"task_type": "general"})).json();
    assert_eq!(decided["bundle"], original.as_str(), "{decided}");
    let s = status(port);
    assert_eq!(
        s["last_refused_reload"]["source"], "admin",
        "{}",
        s["last_refused_reload"]
    );
    assert!(s["last_refused_reload"]["error"].is_string(), "{s}");
    let m = metrics(port);
    assert!(
        m.lines()
            .any(|l| l.starts_with("rulec_reloads_total{result=\"refused\",source=\"admin\"}")),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "rulec_reloads_total{result=\"refused\",source=\"admin\"}"
        ),
        Some(2.0),
        "{m}"
    );
    assert!(s["last_refused_reload"]["superseded_by"].is_null(), "{s}");

    // a later reload that succeeds supersedes the refusal
    let good = std::fs::read(dir.join("original.json")).expect("the compiled bundle");
    let ok = admin(port, "PUT", "/admin/bundle", Some(TOKEN), &good);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let s = status(port);
    assert_eq!(
        s["last_refused_reload"]["superseded_by"],
        original.as_str(),
        "{}",
        s["last_refused_reload"]
    );
}

#[test]
fn an_operator_can_reset_a_provider_with_the_token() {
    let served = Served::start(
        &[EXAMPLE, "--watch-interval", "0s"],
        &[("RULEC_ADMIN_TOKEN", TOKEN)],
    );
    let port = served.port;
    let without = admin(port, "POST", "/admin/providers/openai/reset", None, b"");
    assert_error(&without, 401, "unauthorized");
    let reset = admin(
        port,
        "POST",
        "/admin/providers/openai/reset",
        Some(TOKEN),
        b"",
    );
    assert_eq!(reset.status, 200, "{}", reset.text());
    let body = reset.json();
    assert_eq!(body["provider"], "openai", "{body}");
    assert_eq!(body["healthy"], true, "{body}");
    let unknown = admin(
        port,
        "POST",
        "/admin/providers/opneai/reset",
        Some(TOKEN),
        b"",
    );
    assert_error(&unknown, 404, "unknown_provider");
}

/// Exposes a bug: `POST /admin/providers/reset` both starts with `/admin/providers/`
/// and ends with `/reset`, which overlap, so `src/server/http.rs` slices the provider
/// name out of `p[17..16]` and panics, before the token is checked: anyone can make
/// the server drop the connection (and print a panic) with one request.
#[test]
fn a_reset_path_without_a_provider_name_gets_a_json_answer() {
    let served = Served::start(
        &[EXAMPLE, "--watch-interval", "0s"],
        &[("RULEC_ADMIN_TOKEN", TOKEN)],
    );
    for token in [None, Some(TOKEN)] {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let answer = request(served.port, "POST", "/admin/providers/reset", &headers, b"");
        let r = answer.unwrap_or_else(|e| {
            panic!(
                "POST /admin/providers/reset (token: {}) got no answer ({e}); server log:\n{}",
                token.is_some(),
                served.stderr()
            )
        });
        assert!([401, 404].contains(&r.status), "{} {}", r.status, r.text());
        assert!(r.json()["error"]["code"].is_string(), "{}", r.text());
    }
    assert!(!served.stderr().contains("panicked"), "{}", served.stderr());
    assert_still_serving(served.port);
}

// ---- 5. observability ----

#[test]
fn health_and_readiness_answer_and_readiness_names_the_bundle() {
    let served = Served::start(&[EXAMPLE], &[]);
    let health = get(served.port, "/healthz");
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "ok");
    let ready = get(served.port, "/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    let body = ready.json();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["bundle"], served_hash(served.port).as_str(), "{body}");
}

#[test]
fn status_lists_every_provider_model_and_pool_of_the_bundle() {
    let dir = scratch("serve_api_status");
    let (bundle, hash) = bundle_json(EXAMPLE, &dir);
    let names = |key: &str| -> BTreeSet<String> {
        bundle["content"][key]
            .as_array()
            .unwrap_or_else(|| panic!("the bundle lists its {key}"))
            .iter()
            .map(|x| x["name"].as_str().expect("a name").to_string())
            .collect()
    };

    let served = Served::start(&[EXAMPLE], &[]);
    let s = status(served.port);
    assert_eq!(s["bundle"]["hash"], hash.as_str(), "{}", s["bundle"]);
    assert_eq!(s["bundle"]["format"], "rulec-bundle/1", "{}", s["bundle"]);
    assert_eq!(s["bundle"]["source"], EXAMPLE, "{}", s["bundle"]);
    assert_eq!(s["ready"], true);
    assert!(s["uptime_ms"].is_u64(), "{s}");
    assert!(s["last_refused_reload"].is_null(), "{s}");

    let listed = |key: &str| -> BTreeSet<String> {
        s[key]
            .as_array()
            .unwrap_or_else(|| panic!("status lists {key}: {s}"))
            .iter()
            .map(|x| x["name"].as_str().expect("a name").to_string())
            .collect()
    };
    for key in ["providers", "models", "pools"] {
        assert_eq!(listed(key), names(key), "status `{key}` are the bundle's");
    }
    for p in s["providers"].as_array().expect("providers") {
        assert!(p["state"].is_string(), "{p}");
        assert!(p["healthy"].is_boolean(), "{p}");
        assert!(p["consecutive_failures"].is_u64(), "{p}");
    }
    for m in s["models"].as_array().expect("models") {
        assert!(m["provider"].is_string(), "{m}");
        assert!(m["available"].is_boolean(), "{m}");
    }
    for (p, spec) in s["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .zip(bundle["content"]["pools"].as_array().expect("pools"))
    {
        assert_eq!(p["name"], spec["name"], "pools in the bundle's order");
        assert_eq!(p["in_flight"], 0, "{p}");
        assert_eq!(p["max_concurrent"], spec["max_concurrent"], "{p}");
        let members: Vec<&Value> = p["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| &m["model"])
            .collect();
        let expected: Vec<&Value> = spec["models"].as_array().expect("models").iter().collect();
        assert_eq!(members, expected, "{p}");
    }

    // a decision without report holds its pool slot, and status shows it
    let held = route(served.port, &json!({"task_type": "code_generation"}));
    assert_eq!(held.status, 200, "{}", held.text());
    let s = status(served.port);
    let hp = s["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|p| p["name"] == "high_performance")
        .expect("the high_performance pool");
    assert_eq!(hp["in_flight"], 1, "{hp}");
    assert_eq!(s["leases"], 1, "{s}");
}

#[test]
fn metrics_count_routes_and_decisions_in_prometheus_text_format() {
    let served = Served::start(&[EXAMPLE], &[]);
    let port = served.port;
    let good = varied_requests();
    let bad = [
        json!({"task_tpye": "x"}),
        json!({"estimated_tokens": "many"}),
        json!([1]),
    ];
    for req in &good {
        let r = route(port, req);
        assert_eq!(r.status, 200, "{req}: {}", r.text());
    }
    for req in &bad {
        let r = route(port, req);
        assert_eq!(r.status, 400, "{req}: {}", r.text());
    }
    let malformed = request(port, "POST", "/v1/route", &[], b"{").expect("POST /v1/route");
    assert_eq!(malformed.status, 400);
    let calls = good.len() + bad.len() + 1;

    let r = get(port, "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        r.header("content-type")
    );
    let text = r.text();
    let samples = check_exposition(&text);

    let decisions: Vec<_> = samples
        .iter()
        .filter(|(name, _, _)| name == "rulec_decisions_total")
        .collect();
    for (_, labels, _) in &decisions {
        assert!(
            labels.contains_key("rule") && labels.contains_key("model"),
            "{labels:?}"
        );
    }
    let decided: f64 = decisions.iter().map(|(_, _, v)| v).sum();
    assert_eq!(
        decided,
        good.len() as f64,
        "decisions add up to the routes made:\n{text}"
    );
    assert_eq!(
        sample(&text, "rulec_route_duration_seconds_count "),
        Some(calls as f64),
        "every route call is timed:\n{text}"
    );
    let rejected: f64 = samples
        .iter()
        .filter(|(name, _, _)| name == "rulec_route_rejections_total")
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(rejected, (bad.len() + 1) as f64, "{text}");
    let inf_bucket = samples
        .iter()
        .find(|(name, labels, _)| {
            name == "rulec_route_duration_seconds_bucket"
                && labels.get("le").map(String::as_str) == Some("+Inf")
        })
        .map(|(_, _, v)| *v);
    assert_eq!(inf_bucket, Some(calls as f64), "{text}");

    let hash = served_hash(port);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("rulec_bundle_info{{hash=\"{hash}\"}}"))),
        "{text}"
    );
    for family in [
        "rulec_bundle_info",
        "rulec_decisions_total",
        "rulec_route_rejections_total",
        "rulec_route_duration_seconds",
        "rulec_reloads_total",
        "rulec_pool_in_flight",
        "rulec_provider_healthy",
        "rulec_leases",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP for {family}"
        );
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no TYPE for {family}"
        );
    }
}

#[test]
fn the_prometheus_line_checker_accepts_good_lines_and_rejects_bad_ones() {
    let (name, labels, value) =
        parse_sample(r#"a_b:c{x="1",y="q\"uo\\te"} 2.5"#).expect("a good line");
    assert_eq!((name.as_str(), value), ("a_b:c", 2.5));
    assert_eq!(labels["y"], "q\"uo\\te");
    assert_eq!(parse_sample("plain 3").expect("no labels").2, 3.0);
    assert!(parse_sample(r#"h_bucket{le="+Inf"} +Inf"#).is_ok());
    for bad in [
        "9lives 1",
        "x{a=1} 2",
        "x{a=\"1\" 2",
        "x 1 2 3",
        "x",
        "x{a=\"1\"}2",
        "x abc",
    ] {
        assert!(parse_sample(bad).is_err(), "{bad:?} should be refused");
    }
}

// ---- 6. SIGTERM and saved state ----

#[test]
fn sigterm_drains_and_exits_with_status_0() {
    let served = Served::start(&[EXAMPLE], &[]);
    let r = route(served.port, &json!({"task_type": "general"}));
    assert_eq!(r.status, 200, "{}", r.text());
    served.signal("TERM");
    let exit = served
        .wait_exit(SETTLE)
        .expect("the server exits after SIGTERM");
    assert!(exit.success(), "exit status {exit:?}\n{}", served.stderr());
    assert!(
        served.wait_for_log("drain", SETTLE),
        "stderr mentions the drain:\n{}",
        served.stderr()
    );
}

#[test]
fn sigterm_does_not_wait_past_the_drain_timeout_for_a_stalled_request() {
    // the stalled body would hold the request for two minutes; the drain gives up first
    let served = Served::start(
        &[
            EXAMPLE,
            "--request-timeout",
            "2m",
            "--drain-timeout",
            "300ms",
        ],
        &[],
    );
    let mut stalled = open(served.port);
    let head = format!(
        "POST /v1/route HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 100\r\n\r\n{{",
        served.port
    );
    stalled
        .write_all(head.as_bytes())
        .expect("send the start of a request");
    // connections are accepted in order: once a later one is answered, the stalled
    // request is in the server's hands
    assert_eq!(get(served.port, "/healthz").status, 200);
    served.signal("TERM");
    let exit = served
        .wait_exit(SETTLE)
        .unwrap_or_else(|| panic!("still running after SIGTERM\n{}", served.stderr()));
    assert!(exit.success(), "{exit:?}\n{}", served.stderr());
    assert!(
        served.wait_for_log("drain timeout", SETTLE),
        "the log says the drain timed out:\n{}",
        served.stderr()
    );
    drop(stalled);
}

#[test]
fn state_dir_saves_on_sigterm_and_restores_provider_health_on_start() {
    let dir = scratch("serve_api_state_dir");
    let state_dir = dir.join("state");
    let first = Served::start(&[EXAMPLE, "--state-dir", arg(&state_dir)], &[]);
    assert_eq!(
        route(first.port, &json!({"task_type": "general"})).status,
        200
    );
    first.signal("TERM");
    let exit = first
        .wait_exit(SETTLE)
        .expect("the server exits after SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", first.stderr());
    drop(first);

    let file = state_dir.join("state.json");
    let text = fs::read_to_string(&file).expect("state.json is written at shutdown");
    let mut saved: Value = serde_json::from_str(&text).expect("state.json is JSON");
    assert_eq!(saved["format"], "rulec-state/1", "{saved}");
    assert!(saved["providers"].is_object(), "{saved}");
    assert_eq!(saved["providers"]["openai"]["state"], "healthy", "{saved}");

    saved["providers"]["openai"]["state"] = json!("given_up");
    fs::write(&file, serde_json::to_vec_pretty(&saved).expect("serialise"))
        .expect("edit state.json");

    let second = Served::start(&[EXAMPLE, "--state-dir", arg(&state_dir)], &[]);
    let s = status(second.port);
    let openai = s["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .find(|p| p["name"] == "openai")
        .expect("openai in status");
    assert_eq!(openai["healthy"], false, "{openai}");
    assert_eq!(openai["state"], "given_up", "{openai}");
    let gpt = s["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["name"] == "gpt_55")
        .expect("gpt_55 in status");
    assert_eq!(gpt["available"], false, "{gpt}");

    // the high-performance pool (claude_opus 60, gpt_55 40) no longer picks gpt_55
    for _ in 0..5 {
        let d = route(second.port, &json!({"task_type": "code_generation"})).json();
        assert_eq!(d["model"], "claude_opus", "{d}");
        assert!(
            d["fallbacks"]
                .as_array()
                .is_some_and(|f| f.iter().all(|e| e["model"] != "gpt_55")),
            "an unhealthy model is no fallback: {d}"
        );
    }
    assert!(
        second.wait_for_log("restored live state", SETTLE),
        "{}",
        second.stderr()
    );
}

#[test]
fn a_corrupt_state_file_is_ignored_with_a_warning() {
    let dir = scratch("serve_api_corrupt_state");
    fs::write(dir.join("state.json"), "this is { not json").expect("write a corrupt state");
    let served = Served::start(&[EXAMPLE, "--state-dir", arg(&dir)], &[]);
    assert!(
        served.wait_for_log("state", SETTLE) && served.wait_for_log("fresh state", SETTLE),
        "a warning mentions the state:\n{}",
        served.stderr()
    );
    assert!(served.stderr().contains("WARN"), "{}", served.stderr());
    let s = status(served.port);
    assert!(
        s["providers"]
            .as_array()
            .expect("providers")
            .iter()
            .filter(|p| p["name"] != "local")
            .all(|p| p["state"] == "healthy"),
        "fresh state: {s}"
    );
    assert_still_serving(served.port);
}

// ---- 7. hot reload ----

#[test]
fn a_watched_policy_folder_is_reloaded_when_changed_and_kept_when_broken() {
    let dir = scratch("serve_api_watch");
    let policy = copy_example(&dir);
    let file = policy.join(ROUTING_FILE);
    let original_text = fs::read_to_string(&file).expect("read the routing file");
    let original = compile(arg(&policy), &dir.join("original.json"));

    let served = Served::start(&[arg(&policy), "--watch-interval", "200ms"], &[]);
    let port = served.port;
    assert_eq!(served_hash(port), original);

    // a valid change
    edit(&file, FALLBACK_SONNET, FALLBACK_OPUS);
    let changed = compile(arg(&policy), &dir.join("changed.json"));
    assert_ne!(changed, original);
    assert!(
        eventually(SETTLE, || served_hash(port) == changed),
        "the changed folder was not reloaded; serving {}\n{}",
        served_hash(port),
        served.stderr()
    );
    let decided = route(port, &json!({"task_type": "general"})).json();
    assert_eq!(decided["model"], "claude_opus", "{decided}");
    assert!(
        metrics(port)
            .lines()
            .any(|l| l.starts_with("rulec_reloads_total{result=\"ok\",source=\"file\"}")),
        "{}",
        metrics(port)
    );

    // a broken change: a model on a provider nobody declared
    edit(
        &file,
        "provider: \"openai\"",
        "provider: \"openai_nowhere\"",
    );
    assert!(
        eventually(SETTLE, || !status(port)["last_refused_reload"].is_null()),
        "the broken folder was not looked at\n{}",
        served.stderr()
    );
    let s = status(port);
    assert_eq!(
        s["last_refused_reload"]["source"], "file",
        "{}",
        s["last_refused_reload"]
    );
    assert_eq!(
        s["bundle"]["hash"],
        changed.as_str(),
        "the last good bundle keeps serving"
    );
    assert!(
        served.wait_for_log("reload refused", SETTLE),
        "{}",
        served.stderr()
    );
    assert_eq!(route(port, &json!({"task_type": "general"})).status, 200);

    // fixed back (to the original), with a SIGHUP on top: whichever comes first
    replace_file(&file, &original_text);
    served.signal("HUP");
    assert!(
        eventually(SETTLE, || served_hash(port) == original),
        "the fixed folder was not reloaded; serving {}\n{}",
        served_hash(port),
        served.stderr()
    );
    let m = metrics(port);
    let ok_reloads = |source: &str| {
        sample(
            &m,
            &format!("rulec_reloads_total{{result=\"ok\",source=\"{source}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(ok_reloads("file") + ok_reloads("signal") >= 2.0, "{m}");
}

#[test]
fn sighup_reloads_an_unwatched_policy() {
    let dir = scratch("serve_api_sighup");
    let policy = copy_example(&dir);
    let original = compile(arg(&policy), &dir.join("original.json"));
    let served = Served::start(&[arg(&policy), "--watch-interval", "0s"], &[]);
    let port = served.port;
    assert_eq!(served_hash(port), original);

    edit(&policy.join(ROUTING_FILE), FALLBACK_SONNET, FALLBACK_OPUS);
    let changed = compile(arg(&policy), &dir.join("changed.json"));
    served.signal("HUP");
    assert!(
        eventually(SETTLE, || served_hash(port) == changed),
        "SIGHUP did not reload; serving {}\n{}",
        served_hash(port),
        served.stderr()
    );
    assert_eq!(
        sample(
            &metrics(port),
            "rulec_reloads_total{result=\"ok\",source=\"signal\"}"
        ),
        Some(1.0)
    );
    assert!(served.wait_for_log("SIGHUP", SETTLE), "{}", served.stderr());

    // a HUP with nothing changed swaps nothing
    served.signal("HUP");
    assert!(
        eventually(SETTLE, || sample(
            &metrics(port),
            "rulec_reloads_total{result=\"unchanged\",source=\"signal\"}"
        ) == Some(1.0)),
        "{}",
        metrics(port)
    );
    assert_eq!(served_hash(port), changed);
}
