//! Active health checks: one `GET` to a provider's health endpoint, `http://` or
//! `https://`, through the proxy's outbound client, with the check's timeout. A 2xx
//! answer is healthy; anything else (status, refused connection, TLS, timeout) is a
//! failure with its reason. API keys are read from the environment variable the
//! policy names, at probe time, and never logged.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;

use crate::bundle::spec::{keyword, ProviderSpec};
use crate::proxy::client::Upstream;

/// The URL a provider's checks request: `health_path` under `base_url`, else the
/// models listing of its API.
pub fn url(p: &ProviderSpec) -> String {
    format!("{}{}", p.base_url.trim_end_matches('/'), p.check_path())
}

/// Sends one check. `Ok` with a description on a 2xx answer, `Err` with the reason.
pub async fn check(
    upstream: &Upstream,
    p: &ProviderSpec,
    timeout: Duration,
) -> Result<String, String> {
    let url = url(p);
    let mut req = Request::get(&url);
    if let Some(key) = p.api_key_env.as_ref().and_then(|v| std::env::var(v).ok()) {
        req = if p.is_anthropic() {
            req.header("x-api-key", key)
                .header("anthropic-version", keyword::ANTHROPIC_VERSION)
        } else {
            req.header("authorization", format!("Bearer {key}"))
        };
    }
    let req = req
        .header("user-agent", concat!("rulec/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("cannot build a request for `{url}`: {e}"))?;
    let call = async {
        let resp = upstream
            .send(req)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        // drain (bounded by the timeout) so the connection can be reused
        let _ = resp.into_body().collect().await;
        if status.is_success() {
            Ok(format!("GET {url}: {status}"))
        } else {
            Err(format!("GET {url}: {status}"))
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "GET {url}: no answer within {} ms",
            timeout.as_millis()
        )),
    }
}
