//! The server's live behaviour, through HTTP against a real `rulec serve` on
//! loopback: weighted round-robin shares, session affinity, `max_concurrent`, active
//! health checks with recovery backoff against fake providers, cost-window
//! downgrades, and hot reload under concurrent load.
//!
//! What these tests judge is what only a real server shows: status codes, headers
//! and bodies, and the wiring of its timers and checks to the gateway. Exact timing
//! (ttls, backoff schedules, window edges) is tested in-process with a controlled
//! clock (`runtime_*`), so nothing here waits a fixed time for a deadline to pass:
//! conditions are polled with a generous deadline instead.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{root, rulec, scratch};
use crate::http::{eventually, get, post_json, request, Conn, FakeProvider, Served};
use crate::runtime_common::kinds as adjustment_kinds;

const PATIENCE: Duration = Duration::from_secs(20);

/// Three fake providers and `tests/fixtures/serve/live.yaml` pointing at them.
struct Live {
    alpha: FakeProvider,
    beta: FakeProvider,
    gamma: FakeProvider,
    policy: PathBuf,
}

fn live(name: &str) -> Live {
    let (alpha, beta, gamma) = (
        FakeProvider::start(),
        FakeProvider::start(),
        FakeProvider::start(),
    );
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/serve/live.yaml")).expect("fixture");
    let text = text
        .replace("@ALPHA@", &alpha.port.to_string())
        .replace("@BETA@", &beta.port.to_string())
        .replace("@GAMMA@", &gamma.port.to_string())
        // pins outlast any test here, so that no assertion races the ttl on a loaded
        // machine; the lapse itself is tested in-process (`runtime_pools`)
        .replace("ttl: 1500ms", "ttl: 10m");
    let policy = scratch(name).join("live.yaml");
    std::fs::write(&policy, text).expect("write policy");
    Live {
        alpha,
        beta,
        gamma,
        policy,
    }
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn route(port: u16, body: Value) -> Value {
    let r = post_json(port, "/v1/route", &body);
    assert_eq!(r.status, 200, "route {body}: {}", r.text());
    r.json()
}

fn status(port: u16) -> Value {
    get(port, "/v1/status").json()
}

fn provider_state(port: u16, name: &str) -> String {
    status(port)["providers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .map(|p| p["state"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn shares(port: u16, n: usize) -> BTreeMap<String, usize> {
    let mut conn = Conn::open(port).expect("connect");
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let r = conn
            .send(
                "POST",
                "/v1/route",
                &[("Content-Type", "application/json")],
                br#"{"tier":"free"}"#,
            )
            .expect("route");
        assert_eq!(r.status, 200, "{}", r.text());
        let d = r.json();
        *counts
            .entry(d["model"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        // the call is over: give the pool slot back
        let done = json!({"decision_id": d["decision_id"], "outcome": "success"}).to_string();
        let r = conn
            .send("POST", "/v1/report", &[], done.as_bytes())
            .expect("report");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    counts
}

fn within(count: usize, expected: f64, tolerance: f64) -> bool {
    (count as f64 - expected).abs() <= expected * tolerance
}

#[test]
fn weighted_round_robin_matches_the_weights_and_redistributes_an_unhealthy_share() {
    let l = live("serve-wrr");
    let s = Served::start(&[path(&l.policy)], &[]);
    let counts = shares(s.port, 1000);
    // smooth WRR is exact over every cycle of 100 picks: 50/30/20
    assert_eq!(counts.get("big"), Some(&500), "{counts:?}");
    assert_eq!(counts.get("medium"), Some(&300), "{counts:?}");
    assert_eq!(counts.get("small"), Some(&200), "{counts:?}");

    l.gamma.set_status(503);
    assert!(
        eventually(PATIENCE, || provider_state(s.port, "gamma") != "healthy"),
        "gamma never turned unhealthy"
    );
    let counts = shares(s.port, 800);
    assert_eq!(
        counts.get("small"),
        None,
        "an unhealthy member got traffic: {counts:?}"
    );
    // 50:30 of 800 is 500:300
    assert!(within(counts["big"], 500.0, 0.01), "{counts:?}");
    assert!(within(counts["medium"], 300.0, 0.01), "{counts:?}");
}

#[test]
fn three_failed_checks_make_a_provider_unhealthy_and_probes_back_off_until_it_recovers() {
    let l = live("serve-health");
    let s = Served::start(&[path(&l.policy)], &[]);
    assert!(
        eventually(PATIENCE, || !l.alpha.hits().is_empty()),
        "no active check reached alpha"
    );
    assert_eq!(route(s.port, json!({"tier": "pro"}))["model"], "big");

    l.alpha.set_status(500);
    let mut seen_unhealthy = None;
    assert!(eventually(PATIENCE, || {
        let st = status(s.port);
        let alpha = st["providers"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "alpha"))
            .cloned();
        match alpha {
            Some(a) if a["state"] == "unhealthy" => {
                seen_unhealthy = Some(a);
                true
            }
            _ => false,
        }
    }));
    let alpha = seen_unhealthy.expect("seen");
    assert_eq!(alpha["consecutive_failures"], 3, "{alpha}");
    assert_eq!(alpha["healthy"], false);
    assert!(
        alpha["last_check"]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("500"),
        "{alpha}"
    );

    // alpha is the failover primary: its traffic goes to the stand-in on beta
    let d = route(s.port, json!({"tier": "pro"}));
    assert_eq!(d["model"], "medium", "{d}");
    assert_eq!(adjustment_kinds(&d), ["failover"], "{d}");

    // recovery probes: linear backoff of 300 ms, so the gaps grow 300, 600, 900 ms…
    // A probe is never early; how late it may be depends on the machine's load, so
    // only the lower bound is judged here (the exact schedule is `runtime_health`'s).
    l.alpha.clear_hits();
    assert!(
        eventually(PATIENCE, || l.alpha.hits().len() >= 3),
        "fewer than 3 recovery probes"
    );
    let hits = l.alpha.hits();
    for (n, pair) in hits.windows(2).take(2).enumerate() {
        let gap = pair[1].0.duration_since(pair[0].0);
        // probe n+1 is sent backoff(n+1) after probe n failed: 300 ms × (n + 2)
        let expected = Duration::from_millis(300 * (n as u64 + 2));
        assert!(
            gap >= expected,
            "probe gap {gap:?} shorter than the backoff {expected:?}"
        );
    }

    l.alpha.set_status(200);
    assert!(
        eventually(PATIENCE, || provider_state(s.port, "alpha") == "healthy"),
        "alpha never recovered"
    );
    let d = route(s.port, json!({"tier": "pro"}));
    assert_eq!(d["model"], "big", "{d}");
    assert!(adjustment_kinds(&d).is_empty(), "{d}");
    let metrics = get(s.port, "/metrics").text();
    for line in [
        r#"rulec_transitions_total{machine="health.alpha",from="healthy",to="unhealthy"} 1"#,
        r#"rulec_transitions_total{machine="health.alpha",from="probing",to="healthy"} 1"#,
        r#"rulec_transitions_total{machine="failover",from="primary",to="failed_over"} 1"#,
        r#"rulec_transitions_total{machine="failover",from="failed_over",to="primary"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing `{line}` in\n{metrics}");
    }
    let log = s.stderr();
    assert!(
        log.contains("transition") && log.contains("health.alpha") && log.contains("reason"),
        "{log}"
    );
}

#[test]
fn a_session_keeps_its_member_and_moves_off_an_unhealthy_one() {
    let l = live("serve-affinity");
    let s = Served::start(&[path(&l.policy)], &[]);
    let first = route(s.port, json!({"tier": "free", "session_id": "s-1"}));
    let member = first["model"].as_str().expect("model").to_string();
    assert!(!adjustment_kinds(&first).contains(&"affinity".to_string()));
    for _ in 0..20 {
        let d = route(s.port, json!({"tier": "free", "session_id": "s-1"}));
        assert_eq!(d["model"], member.as_str(), "{d}");
        assert_eq!(adjustment_kinds(&d), ["affinity"], "{d}");
    }

    // pin a session, then fail its member's provider
    let d = route(s.port, json!({"tier": "free", "session_id": "s-2"}));
    let pinned = d["model"].as_str().expect("model").to_string();
    let fake = match d["provider"].as_str() {
        Some("alpha") => &l.alpha,
        Some("beta") => &l.beta,
        _ => &l.gamma,
    };
    fake.set_status(500);
    let provider = d["provider"].as_str().expect("provider").to_string();
    assert!(eventually(PATIENCE, || provider_state(s.port, &provider) != "healthy"));
    let moved = route(s.port, json!({"tier": "free", "session_id": "s-2"}));
    assert_ne!(
        moved["model"],
        pinned.as_str(),
        "stayed on an unhealthy member: {moved}"
    );
    let again = route(s.port, json!({"tier": "free", "session_id": "s-2"}));
    assert_eq!(
        again["model"], moved["model"],
        "the new pin did not hold: {again}"
    );
    assert_eq!(adjustment_kinds(&again), ["affinity"]);
}

fn limited() -> String {
    "tests/fixtures/serve/limited.yaml".to_string()
}

#[test]
fn max_concurrent_is_never_exceeded_under_concurrent_load() {
    let s = Served::start(&[&limited()], &[]);
    let port = s.port;
    let in_pool = Arc::new(AtomicI64::new(0));
    let worst = Arc::new(AtomicI64::new(0));
    let overflowed = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (in_pool, worst, overflowed, failures) =
                (in_pool.clone(), worst.clone(), overflowed.clone(), failures.clone());
            thread::spawn(move || {
                let mut conn = Conn::open(port).expect("connect");
                for _ in 0..60 {
                    let r = conn
                        .send("POST", "/v1/route", &[], br#"{"lane":"overflowing"}"#)
                        .expect("route");
                    if r.status != 200 {
                        failures.lock().expect("lock").push(r.text());
                        continue;
                    }
                    let d = r.json();
                    let pooled = d["pool"]["name"] == "narrow";
                    if pooled {
                        let now = in_pool.fetch_add(1, Ordering::SeqCst) + 1;
                        worst.fetch_max(now, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(2));
                        in_pool.fetch_sub(1, Ordering::SeqCst);
                    } else {
                        assert_eq!(d["model"], "spare", "{d}");
                        overflowed.fetch_add(1, Ordering::SeqCst);
                    }
                    let report = json!({"decision_id": d["decision_id"], "outcome": "success", "latency_ms": 2});
                    let r = conn
                        .send("POST", "/v1/report", &[], report.to_string().as_bytes())
                        .expect("report");
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    assert!(
        failures.lock().expect("lock").is_empty(),
        "{:?}",
        failures.lock()
    );
    assert!(
        worst.load(Ordering::SeqCst) <= 2,
        "more than 2 calls in the pool at once"
    );
    let st = status(port);
    let narrow = &st["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .find(|p| p["name"] == "narrow")
        .cloned()
        .expect("narrow");
    assert!(
        narrow["peak_in_flight"].as_u64().expect("peak") <= 2,
        "{narrow}"
    );
    assert_eq!(
        narrow["in_flight"], 0,
        "every report gave its slot back: {narrow}"
    );

    // deterministic overflow: hold both slots, the third call overflows down the chain
    let a = route(port, json!({"lane": "overflowing"}));
    let b = route(port, json!({"lane": "overflowing"}));
    assert_eq!(
        (a["pool"]["name"].as_str(), b["pool"]["name"].as_str()),
        (Some("narrow"), Some("narrow"))
    );
    let c = route(port, json!({"lane": "overflowing"}));
    assert_eq!(c["model"], "spare", "{c}");
    assert_eq!(adjustment_kinds(&c), ["overflow"], "{c}");

    // a full pool with no way out: 503 with Retry-After, never a wait
    let held: Vec<Value> = (0..4)
        .map(|_| route(port, json!({"lane": "strict"})))
        .collect();
    let r = post_json(port, "/v1/route", &json!({"lane": "strict"}));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["error"]["code"], "pool_full");
    let done = json!({"decision_id": held[0]["decision_id"], "outcome": "success"});
    assert_eq!(post_json(port, "/v1/report", &done).status, 200);
    assert_eq!(
        route(port, json!({"lane": "strict"}))["pool"]["name"],
        "strict"
    );
}

#[test]
fn an_unreported_decision_gives_its_slot_back_when_its_lease_expires() {
    let s = Served::start(&[&limited(), "--lease-timeout", "300ms"], &[]);
    for _ in 0..4 {
        route(s.port, json!({"lane": "strict"}));
    }
    assert_eq!(
        post_json(s.port, "/v1/route", &json!({"lane": "strict"})).status,
        503
    );
    assert!(
        eventually(PATIENCE, || post_json(
            s.port,
            "/v1/route",
            &json!({"lane": "strict"})
        )
        .status
            == 200),
        "slots were never reclaimed"
    );
}

/// One report of a $0.50 task on `big`.
fn costly(port: u16) {
    let r = post_json(
        port,
        "/v1/report",
        &json!({"model": "big", "outcome": "success", "cost": 0.5, "latency_ms": 900}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn window_state(port: u16) -> String {
    status(port)["cost_windows"][0]["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_cost_window_breach_downgrades_and_a_recovered_window_restores() {
    let l = live("serve-cost");
    let s = Served::start(&[path(&l.policy)], &[]);
    assert_eq!(route(s.port, json!({"tier": "pro"}))["model"], "big");
    // $0.50 per task against a $0.10 threshold, reported until a window closes on
    // them (however late the server's timer runs)
    assert!(
        eventually(PATIENCE, || {
            costly(s.port);
            window_state(s.port) == "switched"
        }),
        "the window never switched"
    );
    let d = route(s.port, json!({"tier": "pro"}));
    assert_eq!(d["model"], "medium", "next cheaper than big: {d}");
    assert_eq!(adjustment_kinds(&d), ["downgrade"], "{d}");
    let metrics = get(s.port, "/metrics").text();
    assert!(
        metrics.contains(r#"rulec_cost_window_switched{machine="cost_window.0.cost_per_task"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rulec_notifications_total{event="model_switched"} 1"#),
        "{metrics}"
    );

    // cheap tasks until the expensive ones leave the 1.2 s window
    let restored = eventually(PATIENCE, || {
        let r = post_json(
            s.port,
            "/v1/report",
            &json!({"model": "medium", "outcome": "success", "cost": 0.01}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        window_state(s.port) == "normal"
    });
    assert!(restored, "the window never restored");
    let d = route(s.port, json!({"tier": "pro"}));
    assert_eq!(d["model"], "big", "{d}");
    assert!(adjustment_kinds(&d).is_empty(), "{d}");
    let log = s.stderr();
    assert!(
        log.contains("cost_window.0.cost_per_task") && log.contains("switched"),
        "{log}"
    );
}

fn compile(policy: &std::path::Path, out: &std::path::Path) -> String {
    let r = rulec(&["compile", path(policy), "-o", path(out)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bundle: Value = serde_json::from_slice(&std::fs::read(out).expect("bundle")).expect("json");
    bundle["hash"].as_str().expect("hash").to_string()
}

/// Bundle B of the live policy, which sends `pro` traffic to `small`, compiled to
/// `out`; returns its hash.
fn compile_variant_b(l: &Live, out: &std::path::Path) -> String {
    let text = std::fs::read_to_string(&l.policy)
        .expect("policy")
        .replace("        model: big\n", "        model: small\n");
    let b_policy = l.policy.parent().expect("dir").join("b").join("live.yaml");
    std::fs::create_dir_all(b_policy.parent().expect("b")).expect("mkdir");
    std::fs::write(&b_policy, text).expect("write");
    compile(&b_policy, out)
}

#[test]
fn reloads_under_concurrent_load_lose_no_request_and_switch_the_answers() {
    let l = live("serve-reload");
    let dir = l.policy.parent().expect("dir").to_path_buf();
    let (a_path, b_path) = (dir.join("a.bundle"), dir.join("b.bundle"));
    let a_hash = compile(&l.policy, &a_path);
    let b_hash = compile_variant_b(&l, &b_path);
    assert_ne!(a_hash, b_hash);
    let (a, b) = (
        std::fs::read(&a_path).expect("a"),
        std::fs::read(&b_path).expect("b"),
    );

    let token = "test-token";
    let s = Served::start(
        &[path(&a_path), "--watch-interval", "0s"],
        &[("RULEC_ADMIN_TOKEN", token)],
    );
    let port = s.port;
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<(u16, String, String)>>> = Arc::default();
    let routed = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, seen, routed) = (stop.clone(), seen.clone(), routed.clone());
            thread::spawn(move || {
                let mut conn = Conn::open(port).expect("connect");
                let mut local = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let r = conn
                        .send("POST", "/v1/route", &[], br#"{"tier":"pro"}"#)
                        .expect("route");
                    let d = if r.status == 200 { r.json() } else { json!({}) };
                    local.push((
                        r.status,
                        d["bundle"].as_str().unwrap_or("").to_string(),
                        d["model"].as_str().unwrap_or("").to_string(),
                    ));
                    routed.fetch_add(1, Ordering::SeqCst);
                }
                seen.lock().expect("lock").extend(local);
            })
        })
        .collect();
    // traffic is flowing under A before the first reload, and keeps flowing after the
    // last (counted, not timed: a loaded machine may be slow to schedule the threads)
    let at_least = |n: usize| eventually(PATIENCE, || routed.load(Ordering::SeqCst) >= n);
    assert!(at_least(20), "no load under bundle A");
    let auth = format!("Bearer {token}");
    let started = Instant::now();
    for i in 0..30 {
        let body = if i % 2 == 0 { &b } else { &a };
        let r = request(
            port,
            "PUT",
            "/admin/bundle",
            &[("Authorization", &auth)],
            body,
        )
        .expect("put");
        assert_eq!(r.status, 200, "{}", r.text());
        thread::sleep(Duration::from_millis(20));
    }
    // a tampered bundle is refused while traffic flows, and B keeps serving
    let r = request(
        port,
        "PUT",
        "/admin/bundle",
        &[("Authorization", &auth)],
        &b,
    )
    .expect("put b");
    assert_eq!(r.status, 200);
    let tampered = String::from_utf8(b.clone())
        .expect("utf-8")
        .replacen("small-1", "small-2", 1);
    let r = request(
        port,
        "PUT",
        "/admin/bundle",
        &[("Authorization", &auth)],
        tampered.as_bytes(),
    )
    .expect("put");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "bundle_refused");
    let before = routed.load(Ordering::SeqCst);
    assert!(at_least(before + 100), "no load after the last reload");
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().expect("load thread");
    }
    let seen = seen.lock().expect("lock");
    let failed: Vec<_> = seen.iter().filter(|(code, _, _)| *code != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        seen.len(),
        &failed[..failed.len().min(5)]
    );
    for (_, hash, model) in seen.iter() {
        let expected = if *hash == a_hash {
            "big"
        } else if *hash == b_hash {
            "small"
        } else {
            "?"
        };
        assert_eq!(model, expected, "bundle {hash} answered {model}");
    }
    assert!(seen.iter().any(|(_, h, _)| *h == a_hash) && seen.iter().any(|(_, h, _)| *h == b_hash));
    assert!(
        seen.len() > 100,
        "too little load: {} requests in {:?}",
        seen.len(),
        started.elapsed()
    );
    let st = status(port);
    assert_eq!(st["bundle"]["hash"], b_hash.as_str());
    assert_eq!(st["last_refused_reload"]["source"], "admin");
    let metrics = get(port, "/metrics").text();
    assert!(
        metrics.contains(r#"rulec_reloads_total{result="ok",source="admin"} 31"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"rulec_reloads_total{result="refused",source="admin"} 1"#),
        "{metrics}"
    );
    assert!(s.stderr().contains("reload refused"));
}

#[test]
fn live_state_carries_over_a_reload() {
    let l = live("serve-carry");
    let dir = l.policy.parent().expect("dir").to_path_buf();
    let b_hash = compile_variant_b(&l, &dir.join("b.bundle"));
    let token = "carry-token";
    let s = Served::start(
        &[path(&l.policy), "--watch-interval", "0s"],
        &[("RULEC_ADMIN_TOKEN", token)],
    );
    let pinned = route(s.port, json!({"tier": "free", "session_id": "kept"}));
    l.alpha.set_status(500);
    assert!(eventually(PATIENCE, || provider_state(s.port, "alpha") != "healthy"));
    assert!(eventually(PATIENCE, || {
        costly(s.port);
        window_state(s.port) == "switched"
    }));

    let bytes = std::fs::read(dir.join("b.bundle")).expect("bundle");
    let auth = format!("Bearer {token}");
    let r = request(
        s.port,
        "PUT",
        "/admin/bundle",
        &[("Authorization", &auth)],
        &bytes,
    )
    .expect("put");
    assert_eq!(r.status, 200, "{}", r.text());
    let st = status(s.port);
    assert_eq!(st["bundle"]["hash"], b_hash.as_str());
    let alpha = st["providers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "alpha"))
        .cloned()
        .expect("alpha");
    assert_eq!(
        alpha["healthy"], false,
        "health was reset by the reload: {alpha}"
    );
    assert_eq!(
        st["failover"]["routing_to"], "fallbacks",
        "{}",
        st["failover"]
    );
    assert_eq!(
        st["cost_windows"][0]["state"], "switched",
        "{}",
        st["cost_windows"]
    );
    // a decision made before the reload is still reported by its id alone
    let r = post_json(
        s.port,
        "/v1/report",
        &json!({"decision_id": pinned["decision_id"], "outcome": "success"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["released"], true);
    assert_eq!(r.json()["model"], pinned["model"]);
    let again = route(s.port, json!({"tier": "free", "session_id": "kept"}));
    // judged if alpha (now down) was not the member
    if pinned["provider"] != "alpha" {
        assert_eq!(again["model"], pinned["model"], "the pin was lost: {again}");
    }
}

fn provider(port: u16, name: &str) -> Value {
    status(port)["providers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn a_provider_without_active_checks_recovers_half_open_through_reported_outcomes() {
    let l = live("serve-half-open");
    // gamma at an endpoint that cannot be checked (only a hand-made bundle can say
    // so; every http(s) one is checked): its health comes from reports alone
    let file = l.policy.parent().expect("dir").join("passive.bundle");
    compile(&l.policy, &file);
    let bundle = rulec::bundle::Bundle::load(&std::fs::read(&file).expect("read")).expect("valid");
    let bundle = crate::runtime_common::without_active_checks(bundle, "gamma");
    std::fs::write(&file, bundle.to_bytes()).expect("write");
    let s = Served::start(&[path(&file)], &[]);
    let error = json!({"model": "small", "outcome": "error", "error": "server_error"});
    // the state a report left is in its answer: `/v1/status` a moment later could
    // already show the half-open state the 300 ms timer leads to
    let health_after = |body: &Value| {
        let r = post_json(s.port, "/v1/report", body);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["health"].as_str().unwrap_or_default().to_string()
    };
    for _ in 0..2 {
        assert_eq!(health_after(&error), "healthy");
    }
    assert_eq!(health_after(&error), "unhealthy");
    // after the 300 ms backoff it is half-open: it takes traffic again
    // (the supervisor moves the state, then the flag: wait for both)
    let half_open = |g: Value| g["state"] == "probing" && g["healthy"] == true;
    assert!(eventually(PATIENCE, || half_open(provider(
        s.port, "gamma"
    ))));
    // one reported error while half-open sends it back, counted as a failed probe
    assert_eq!(health_after(&error), "unhealthy");
    assert_eq!(provider(s.port, "gamma")["failed_probes"], 1);
    assert!(eventually(PATIENCE, || half_open(provider(
        s.port, "gamma"
    ))));
    let ok = json!({"model": "small", "outcome": "success", "latency_ms": 300});
    assert_eq!(health_after(&ok), "healthy");
    let g = provider(s.port, "gamma");
    assert_eq!(
        (g["state"].as_str(), g["healthy"].as_bool()),
        (Some("healthy"), Some(true)),
        "{g}"
    );
    assert!(
        g["active_checks"]
            .as_str()
            .is_some_and(|a| a.starts_with("off")),
        "{g}"
    );
}

#[test]
fn after_sigterm_readyz_turns_503_while_requests_are_still_served_then_it_exits_0() {
    let s = Served::start(&[&limited(), "--shutdown-delay", "3s"], &[]);
    assert_eq!(get(s.port, "/readyz").status, 200);
    s.signal("TERM");
    assert!(
        eventually(PATIENCE, || get(s.port, "/readyz").status == 503),
        "readyz never said 503"
    );
    // still served during the delay: load balancers move away without errors
    assert_eq!(
        route(s.port, json!({"lane": "strict"}))["pool"]["name"],
        "strict"
    );
    let exit = s.wait_exit(PATIENCE).expect("the server exits");
    assert!(exit.success(), "{exit:?}");
    assert!(s.stderr().contains("readyz answers 503"), "{}", s.stderr());
}

#[test]
fn implausible_reports_are_refused_and_an_operator_can_reset_the_budgets() {
    let token = "budget-token";
    let s = Served::start(&["rules/examples/gateway"], &[("RULEC_ADMIN_TOKEN", token)]);
    let r = post_json(
        s.port,
        "/v1/report",
        &json!({"model": "claude_opus", "outcome": "success", "cost": 1e308}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not plausible"),
        "{}",
        r.text()
    );
    // the day's budget ($50) spent honestly: decisions step down the price ladder
    for _ in 0..60 {
        let r = post_json(
            s.port,
            "/v1/report",
            &json!({"model": "claude_opus", "outcome": "success", "cost": 1.0}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let d = route(s.port, json!({"task_type": "critical_analysis"}));
    assert_eq!(adjustment_kinds(&d), ["budget"], "{d}");
    // the cheapest model with the capabilities critical analysis requires
    assert_eq!(d["model"], "gpt_55", "{d}");
    // the light pool's first pick, openclaw_light, steps down to the free local model
    let light = json!({"task_type": "classification", "task_complexity": "complex"});
    let d = route(s.port, light.clone());
    assert_eq!(adjustment_kinds(&d), ["budget"], "{d}");
    assert_eq!(d["model"], "local_llama", "{d}");
    let auth = format!("bearer {token}");
    let r = request(
        s.port,
        "POST",
        "/admin/budgets/reset",
        &[("Authorization", &auth)],
        b"",
    )
    .expect("reset");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["daily_spent_before"], 60.0);
    let d = route(s.port, light);
    assert!(adjustment_kinds(&d).is_empty(), "{d}");
}

#[test]
fn an_overlong_session_id_is_refused_so_pins_and_leases_stay_small() {
    let s = Served::start(&[&limited()], &[]);
    let long = "s".repeat(10_000);
    let r = post_json(
        s.port,
        "/v1/route",
        &json!({"lane": "strict", "session_id": long}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["attribute"], "session_id");
    assert_eq!(
        route(s.port, json!({"lane": "strict", "session_id": "ok"}))["pool"]["name"],
        "strict"
    );
}

#[test]
fn a_rehashed_bundle_whose_pool_weights_do_not_match_its_models_is_refused() {
    let dir = scratch("serve-bad-weights");
    let file = dir.join("bundle.json");
    compile(&root().join("rules/examples/gateway"), &file);
    let mut bundle =
        rulec::bundle::Bundle::load(&std::fs::read(&file).expect("read")).expect("valid");
    bundle.content.pools[0].weights.pop();
    bundle.hash = rulec::bundle::digest(&bundle.content);
    std::fs::write(&file, bundle.to_bytes()).expect("write");
    let (code, _, stderr) = Served::start_expect_failure(&[path(&file)], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("weights for 2 models"), "{stderr}");
}
