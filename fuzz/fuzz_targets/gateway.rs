//! Fuzzes the server's inputs without HTTP: the bodies of `POST /v1/route` and
//! `POST /v1/report` against the example policy's gateway, and `PUT /admin/bundle`'s
//! bundle loader. None may panic; every refusal must be an error value.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rulec::bundle::Bundle;
use rulec::runtime::gateway::{Gateway, Limits, Shared};

fn gateway() -> &'static Gateway {
    static GATEWAY: OnceLock<Gateway> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../rules/examples/gateway");
        let bundle = rulec::server::source::load(std::path::Path::new(root))
            .unwrap_or_else(|e| panic!("the example policy must compile: {e}"));
        let limits = Limits {
            lease_capacity: 1_000,
            affinity_capacity: 1_000,
            session_capacity: 1_000,
            window_capacity: 1_000,
            ..Limits::default()
        };
        Gateway::new(bundle, None, Shared::new(limits))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let g = gateway();
    let now = u64::from(selector) * 1_000;
    match selector % 3 {
        0 => {
            if let Ok(json) = serde_json::from_slice(body) {
                if let Ok(decision) = g.route(&json, now, now) {
                    assert!(serde_json::to_vec(&decision).is_ok());
                    assert!(g.model(decision.model).is_some());
                }
            }
        }
        1 => {
            if let Ok(json) = serde_json::from_slice(body) {
                let _ = g.report(json, now, now);
            }
            g.tick(now);
            g.close_window(now);
        }
        _ => {
            if let Ok(bundle) = Bundle::load(body) {
                let fresh = Gateway::new(bundle, Some(g), std::sync::Arc::clone(&g.shared));
                let _ = fresh.route(&serde_json::json!({}), now, now);
            }
        }
    }
});
