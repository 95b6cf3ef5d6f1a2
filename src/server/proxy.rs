//! The proxy's endpoints on the server: `POST /v1/chat/completions`, `POST
//! /v1/messages` and `GET /v1/models`. Checks the client's key, reads the body within
//! the limits, and hands the call to `proxy::call` on the gateway in use.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use super::app::App;
use super::http::read_body;
use crate::proxy::body::AnyBody;
use crate::proxy::call;
use crate::proxy::front::{self, Front, ProxyError};

/// One proxied call.
pub async fn call(app: Arc<App>, front: Front, req: Request<Incoming>) -> Response<AnyBody> {
    if let Err(e) = authorised(&app, &req) {
        return call::reject(front, &e);
    }
    let headers = req.headers().clone();
    let body = match read_body(&app, req, app.config.max_proxy_body).await {
        Ok(b) => b,
        Err(e) => return call::reject(front, &ProxyError::from(e)),
    };
    let gateway = app.gateway();
    let upstream = app.upstream.clone();
    let settings = app.config.proxy.clone();
    call::serve(app, gateway, upstream, settings, front, headers, body).await
}

/// `GET /v1/models`: the policy's models in OpenAI's list shape, `auto` first.
pub fn models(app: &App, req: &Request<Incoming>) -> Response<AnyBody> {
    if let Err(e) = authorised(app, req) {
        return call::reject(Front::OpenAi, &e);
    }
    let gateway = app.gateway();
    let created = app.wall_ms() / 1000;
    let mut data = vec![
        json!({"id": front::AUTO, "object": "model", "created": created, "owned_by": "rulec"}),
    ];
    data.extend(gateway.models().iter().map(
        |m| json!({"id": m.name, "object": "model", "created": created, "owned_by": m.provider}),
    ));
    let body = serde_json::to_vec(&json!({"object": "list", "data": data})).unwrap_or_default();
    let mut r = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// With client keys configured, a call needs one of them; without, any caller may
/// call (the server then listens on loopback only, see `rulec serve`).
fn authorised(app: &App, req: &Request<Incoming>) -> Result<(), ProxyError> {
    let keys = &app.config.api_keys;
    if keys.is_empty() {
        return Ok(());
    }
    match front::client_key(req.headers()) {
        Some(k) if front::key_matches(keys, k) => Ok(()),
        Some(_) => Err(ProxyError::own(
            401,
            "invalid_api_key",
            "the key is not one of this gateway's keys",
        )),
        None => Err(ProxyError::own(
            401,
            "missing_api_key",
            "this gateway needs a key: send `Authorization: Bearer KEY` or `x-api-key: KEY`",
        )),
    }
}
