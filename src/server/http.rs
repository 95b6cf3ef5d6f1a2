//! The HTTP API: one function from request to response. Bodies are read with a size
//! limit (checked against `Content-Length` before reading) and a deadline, so a huge
//! or slow body costs a bounded amount of memory and time; every error is JSON.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value as Json};

use super::app::{App, Reloaded};
use super::{metrics, proxy, status, tasks};
use crate::proxy::body::AnyBody;
use crate::proxy::front::Front;
use crate::runtime::route::RouteError;
use http_body_util::Either;

pub type Reply = Response<Full<Bytes>>;

pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<AnyBody>, std::convert::Infallible> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::POST, "/v1/chat/completions") => {
            return Ok(proxy::call(app, Front::OpenAi, req).await)
        }
        (&Method::POST, "/v1/messages") => return Ok(proxy::call(app, Front::Anthropic, req).await),
        (&Method::GET, "/v1/models") => return Ok(proxy::models(&app, &req)),
        _ => {}
    }
    let path = path.to_string();
    let reply = match (req.method(), path.as_str()) {
        (&Method::POST, "/v1/route") => route(&app, req).await,
        (&Method::POST, "/v1/report") => report(&app, req).await,
        (&Method::GET, "/v1/status") => json_reply(StatusCode::OK, &status::status(&app)),
        (&Method::GET, "/metrics") => text_reply(StatusCode::OK, metrics::render(&app), "text/plain; version=0.0.4; charset=utf-8"),
        (&Method::GET, "/healthz") => json_reply(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/readyz") => {
            if app.ready() {
                json_reply(StatusCode::OK, &json!({"status": "ready", "bundle": app.gateway().hash()}))
            } else {
                json_reply(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "draining"}))
            }
        }
        (&Method::PUT, "/admin/bundle") => admin_bundle(&app, req).await,
        (&Method::POST, "/admin/budgets/reset") => admin_budgets(&app, req),
        (&Method::POST, p) if reset_target(p).is_some() => {
            let name = reset_target(p).unwrap_or_default().to_string();
            admin_reset(&app, req, &name)
        }
        (method, p) if allowed(p).is_some() => {
            let allow = allowed(p).unwrap_or("GET");
            let mut reply = error(&RouteError::new(
                405,
                "method_not_allowed",
                format!("{method} is not allowed on `{p}`; use {allow}"),
            ));
            reply
                .headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
            reply
        }
        _ => error(
            &RouteError::new(404, "not_found", format!("no endpoint `{path}`"))
                .help("the endpoints are POST /v1/chat/completions, POST /v1/messages, GET /v1/models, POST /v1/route, POST /v1/report, GET /v1/status, GET /metrics, GET /healthz, GET /readyz, PUT /admin/bundle, POST /admin/providers/NAME/reset, POST /admin/budgets/reset"),
        ),
    };
    Ok(reply.map(Either::Left))
}

/// The method each endpoint takes.
fn allowed(path: &str) -> Option<&'static str> {
    Some(match path {
        "/v1/route" | "/v1/report" | "/v1/chat/completions" | "/v1/messages" => "POST",
        "/v1/models" => "GET",
        "/v1/status" | "/metrics" | "/healthz" | "/readyz" => "GET",
        "/admin/bundle" => "PUT",
        "/admin/budgets/reset" => "POST",
        p if reset_target(p).is_some() => "POST",
        _ => return None,
    })
}

/// `/admin/providers/NAME/reset` → `NAME` (not empty, no `/`).
fn reset_target(path: &str) -> Option<&str> {
    let name = path
        .strip_prefix("/admin/providers/")?
        .strip_suffix("/reset")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

async fn route(app: &Arc<App>, req: Request<Incoming>) -> Reply {
    let started = Instant::now();
    let body = read_json(app, req, app.config.max_body).await;
    // the request starts on the gateway in use once its body is in
    let gateway = app.current();
    let stats = &gateway.shared.stats;
    let reply = match body {
        Ok(json) => match gateway.route(&json, app.now_ms(), app.wall_ms()) {
            Ok(decision) => json_reply(StatusCode::OK, &decision),
            Err(e) => {
                stats.rejections.inc(&[e.code]);
                error(&e)
            }
        },
        Err(e) => {
            stats.rejections.inc(&[e.code]);
            error(&e)
        }
    };
    stats.route_seconds.observe(started.elapsed().as_secs_f64());
    reply
}

async fn report(app: &Arc<App>, req: Request<Incoming>) -> Reply {
    let json = match read_json(app, req, app.config.max_body).await {
        Ok(j) => j,
        Err(e) => return error(&e),
    };
    let gateway = app.gateway();
    match gateway.report(json, app.now_ms(), app.wall_ms()) {
        Ok((accepted, effects)) => {
            tasks::carry_out(app, &gateway, effects);
            json_reply(StatusCode::OK, &accepted)
        }
        Err(e) => error(&e),
    }
}

fn authorised(app: &App, req: &Request<Incoming>) -> Result<(), RouteError> {
    let Some(token) = &app.config.admin_token else {
        return Err(RouteError::new(404, "admin_off", "the admin API is off")
            .help("start the server with RULEC_ADMIN_TOKEN set to turn it on"));
    };
    let given = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // the scheme's name is case-insensitive (RFC 9110)
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("");
    // compare every byte, so the time taken does not tell how much matched
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(
            RouteError::new(401, "unauthorized", "missing or wrong admin token")
                .help("send `Authorization: Bearer <the value of RULEC_ADMIN_TOKEN>`"),
        )
    }
}

async fn admin_bundle(app: &Arc<App>, req: Request<Incoming>) -> Reply {
    if let Err(e) = authorised(app, &req) {
        return error(&e);
    }
    let bytes = match read_body(app, req, app.config.max_bundle).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    match app.reload_bytes(bytes).await {
        Ok(Reloaded::Swapped { from, to }) => json_reply(
            StatusCode::OK,
            &json!({"bundle": to, "previous": from, "changed": true}),
        ),
        Ok(Reloaded::Unchanged(hash)) => json_reply(
            StatusCode::OK,
            &json!({"bundle": hash, "previous": hash, "changed": false}),
        ),
        Err(refusal) => error(
            &RouteError::new(422, "bundle_refused", refusal.message).help(format!(
                "the server keeps serving {}; compile the policy again with `rulec compile`",
                app.gateway().hash()
            )),
        ),
    }
}

fn admin_reset(app: &Arc<App>, req: Request<Incoming>, name: &str) -> Reply {
    if let Err(e) = authorised(app, &req) {
        return error(&e);
    }
    let gateway = app.gateway();
    let Some(p) = gateway.provider_ix(name) else {
        return error(&RouteError::new(
            404,
            "unknown_provider",
            format!("provider `{name}` is not in the bundle"),
        ));
    };
    let effects = gateway.provider_event(
        p,
        crate::machines::EventKind::Reset,
        app.now_ms(),
        "operator reset",
    );
    tasks::carry_out(app, &gateway, effects);
    json_reply(
        StatusCode::OK,
        &json!({"provider": name, "healthy": gateway.provider_healthy(p)}),
    )
}

fn admin_budgets(app: &Arc<App>, req: Request<Incoming>) -> Reply {
    if let Err(e) = authorised(app, &req) {
        return error(&e);
    }
    let gateway = app.gateway();
    let spent = gateway.shared.reset_budgets(app.wall_ms());
    tracing::warn!(daily_spent = spent, "operator reset of the budgets");
    json_reply(
        StatusCode::OK,
        &json!({"reset": true, "daily_spent_before": spent}),
    )
}

/// Reads a body of at most `max` bytes within the request timeout.
pub async fn read_body(app: &App, req: Request<Incoming>, max: usize) -> Result<Bytes, RouteError> {
    let too_large = || {
        RouteError::new(
            413,
            "body_too_large",
            format!("the body is larger than {max} bytes"),
        )
    };
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|l| l.parse::<u64>().ok()) {
            Some(n) if n > max as u64 => return Err(too_large()),
            Some(_) => {}
            None => {
                return Err(RouteError::new(
                    400,
                    "bad_content_length",
                    "`Content-Length` is not a number",
                ))
            }
        }
    }
    let mut collect = std::pin::pin!(Limited::new(req.into_body(), max).collect());
    // A small body has usually arrived with the headers: one poll finishes it. Only a
    // body still on its way gets a deadline, because arming a timer for every request
    // costs more than the rest of the decision.
    let first = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match first {
        Poll::Ready(r) => Ok(r),
        Poll::Pending => tokio::time::timeout(app.config.request_timeout, collect).await,
    };
    match collected {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(e)) => Err(RouteError::new(
            400,
            "bad_body",
            format!("the body could not be read: {e}"),
        )),
        Err(_) => Err(RouteError::new(
            408,
            "body_timeout",
            format!(
                "the body did not arrive within {} ms",
                app.config.request_timeout.as_millis()
            ),
        )),
    }
}

async fn read_json(app: &App, req: Request<Incoming>, max: usize) -> Result<Json, RouteError> {
    let bytes = read_body(app, req, max).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        RouteError::new(
            400,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
        .help("send a JSON object, e.g. {\"task_type\": \"summarization\"}")
    })
}

pub fn error(e: &RouteError) -> Reply {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut reply = json_reply(status, &json!({ "error": e }));
    if let Some(s) = e.retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            reply.headers_mut().insert(RETRY_AFTER, v);
        }
    }
    reply
}

pub fn json_reply(status: StatusCode, body: &impl serde::Serialize) -> Reply {
    let mut bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    text_reply_bytes(status, bytes, "application/json")
}

fn text_reply(status: StatusCode, body: String, content_type: &'static str) -> Reply {
    text_reply_bytes(status, body.into_bytes(), content_type)
}

fn text_reply_bytes(status: StatusCode, body: Vec<u8>, content_type: &'static str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
