//! The spend ledger through the real binary: `rulec serve --state-dir DIR` killed
//! outright (SIGKILL), stopped with SIGTERM, or reset by an operator, then started
//! again on the same directory, keeps the day's spending and the sessions'; a ledger
//! another server holds, or a damaged one, stops a server from starting.
//!
//! Costs go in through `POST /v1/report`, the path every settled cost takes; what
//! was kept is read back from `/v1/status` (`budgets.daily.spent`,
//! `budgets.sessions_tracked`).

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::scratch;
use crate::http::{get, post_json, request, Served};

/// The policy served: two priced models, a daily and a session budget.
const POLICY: &str = "tests/fixtures/serve/ledger.yaml";

/// How long a server may take to exit or to log.
const SETTLE: Duration = Duration::from_secs(30);

/// The ledger's promise: nothing settled this long before a kill is lost (200 ms),
/// with room to spare.
const PAST_THE_PROMISE: Duration = Duration::from_millis(300);

const TOKEN: &str = "ledger-test-token";

fn arg(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn serve(dir: &Path) -> Served {
    Served::start(
        &[POLICY, "--state-dir", arg(dir)],
        &[("RULEC_ADMIN_TOKEN", TOKEN)],
    )
}

fn utc_day() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        / 86_400_000
}

/// `budgets` of `/v1/status`.
fn budgets(port: u16) -> Value {
    let r = get(port, "/v1/status");
    assert_eq!(r.status, 200, "/v1/status: {}", r.text());
    r.json()["budgets"].clone()
}

fn spent(port: u16) -> f64 {
    let b = budgets(port);
    b["daily"]["spent"]
        .as_f64()
        .unwrap_or_else(|| panic!("budgets.daily.spent is a number: {b}"))
}

fn sessions(port: u16) -> u64 {
    let b = budgets(port);
    b["sessions_tracked"]
        .as_u64()
        .unwrap_or_else(|| panic!("budgets.sessions_tracked is a number: {b}"))
}

/// Reports a successful call of `model` costing `cost` dollars.
fn report(port: u16, model: &str, cost: f64) {
    let r = post_json(
        port,
        "/v1/report",
        &json!({"model": model, "outcome": "success", "cost": cost}),
    );
    assert_eq!(r.status, 200, "report: {}", r.text());
}

/// Routes a request of `session`, then reports its decision costing `cost`: the
/// cost counts against the session too.
fn session_call(port: u16, session: &str, cost: f64) {
    let d = post_json(
        port,
        "/v1/route",
        &json!({"tier": "pro", "session_id": session}),
    );
    assert_eq!(d.status, 200, "route: {}", d.text());
    let id = d.json()["decision_id"]
        .as_str()
        .expect("a decision id")
        .to_string();
    let r = post_json(
        port,
        "/v1/report",
        &json!({"decision_id": id, "outcome": "success", "cost": cost}),
    );
    assert_eq!(r.status, 200, "report: {}", r.text());
}

/// Some spending over both models and one session: $2.75 in all (sums exact in
/// binary, so that the restored total must equal it to the bit).
fn spend_some(port: u16) -> f64 {
    session_call(port, "s-1", 0.5);
    for _ in 0..3 {
        report(port, "small", 0.25);
    }
    report(port, "big", 1.5);
    2.75
}

fn kill_9(served: &Served) {
    served.signal("KILL");
    let exit = served
        .wait_exit(SETTLE)
        .expect("the server dies on SIGKILL");
    assert_eq!(exit.signal(), Some(9), "{exit:?}");
}

/// What the day's total must be after a restart: a UTC midnight in between starts a
/// new day from nothing.
fn expected(before: f64, day: u64) -> f64 {
    if utc_day() == day {
        before
    } else {
        0.0
    }
}

#[test]
fn spending_settled_before_a_kill_9_is_there_after_the_restart() {
    let dir = scratch("ledger_kill_9");
    let day = utc_day();
    let first = serve(&dir);
    let total = spend_some(first.port);
    assert_eq!(spent(first.port), total);
    assert_eq!(sessions(first.port), 1);
    thread::sleep(PAST_THE_PROMISE);
    kill_9(&first);
    drop(first);
    assert!(
        !dir.join("state.json").exists(),
        "a killed server saves no state.json: the ledger alone must restore"
    );

    let second = serve(&dir);
    assert!(
        second.wait_for_log("restored spend from the ledger", SETTLE),
        "{}",
        second.stderr()
    );
    assert_eq!(
        spent(second.port),
        expected(total, day),
        "{}",
        second.stderr()
    );
    if utc_day() == day {
        assert_eq!(sessions(second.port), 1);
    }
    // and spending goes on from there
    report(second.port, "small", 0.25);
    assert_eq!(spent(second.port), expected(total, day) + 0.25);
}

#[test]
fn spending_survives_a_sigterm_restart_and_the_ledger_overrides_state_json() {
    let dir = scratch("ledger_sigterm");
    let day = utc_day();
    let first = serve(&dir);
    let total = spend_some(first.port);
    first.signal("TERM");
    let exit = first
        .wait_exit(SETTLE)
        .expect("the server exits on SIGTERM");
    assert!(exit.success(), "{exit:?}\n{}", first.stderr());
    assert!(
        first.stderr().contains("flushed the ledger"),
        "{}",
        first.stderr()
    );
    drop(first);

    // state.json keeps the day's total too; the ledger is the authority for money
    let file = dir.join("state.json");
    let mut saved: Value =
        serde_json::from_slice(&fs::read(&file).expect("state.json is written at shutdown"))
            .expect("state.json is JSON");
    assert_eq!(saved["budget_spent"], json!(total), "{saved}");
    saved["budget_spent"] = json!(99.0);
    fs::write(&file, serde_json::to_vec(&saved).expect("serialise")).expect("edit state.json");

    let second = serve(&dir);
    assert_eq!(
        spent(second.port),
        expected(total, day),
        "{}",
        second.stderr()
    );
}

#[test]
fn an_operators_reset_survives_a_restart() {
    let dir = scratch("ledger_reset");
    let day = utc_day();
    let first = serve(&dir);
    spend_some(first.port);
    let reset = request(
        first.port,
        "POST",
        "/admin/budgets/reset",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        b"",
    )
    .expect("POST /admin/budgets/reset");
    assert_eq!(reset.status, 200, "{}", reset.text());
    assert_eq!((spent(first.port), sessions(first.port)), (0.0, 0));
    report(first.port, "big", 0.125);
    thread::sleep(PAST_THE_PROMISE);
    kill_9(&first);
    drop(first);

    let second = serve(&dir);
    assert_eq!(
        spent(second.port),
        expected(0.125, day),
        "{}",
        second.stderr()
    );
    assert_eq!(sessions(second.port), 0, "the reset forgot the session");
}

#[test]
fn a_ledger_another_server_holds_stops_a_second_one_from_starting() {
    let dir = scratch("ledger_locked");
    let first = serve(&dir);
    let (code, _, stderr) = Served::start_expect_failure(&[POLICY, "--state-dir", arg(&dir)], &[]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");
    // the first server never noticed
    report(first.port, "small", 0.25);
    assert_eq!(spent(first.port), 0.25);
}

#[test]
fn a_damaged_ledger_stops_the_server_from_starting_with_the_file_named() {
    let dir = scratch("ledger_damaged");
    fs::write(dir.join("ledger.redb"), vec![0x5a_u8; 16 * 1024]).expect("write a damaged ledger");
    let (code, _, stderr) = Served::start_expect_failure(&[POLICY, "--state-dir", arg(&dir)], &[]);
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains("ledger.redb") && stderr.contains("cannot be read"),
        "{stderr}"
    );
}
