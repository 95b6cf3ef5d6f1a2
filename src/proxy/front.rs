//! The client's side of a call: which format it speaks, its body read and checked,
//! its key checked, its routing attributes read from `x-rulec-*` headers, and every
//! error answered in its format's own shape (OpenAI `{"error": {...}}`, Anthropic
//! `{"type": "error", ...}`), so that the official SDKs raise their usual exceptions.

use bytes::Bytes;
use hyper::HeaderMap;
use serde_json::{Map, Value as Json};

use super::anthropic::{self, MessagesRequest};
use super::estimate::{self, Estimate};
use super::openai::{self, ChatRequest};
use super::translate;
use crate::compile::request::{AttrType, RequestSchema};
use crate::runtime::route::RouteError;

/// A wire format: the client's (its endpoint) or a provider's (its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// `POST /v1/chat/completions`
    OpenAi,
    /// `POST /v1/messages`
    Anthropic,
}

/// The `model` a client asks for to let the policy decide.
pub const AUTO: &str = "auto";

/// The prefix of routing-attribute headers: `x-rulec-task-type` is `task_type`.
pub const ATTRIBUTE_PREFIX: &str = "x-rulec-";

/// A client's request body, in its format.
#[derive(Debug, Clone)]
pub enum ClientBody {
    OpenAi(ChatRequest),
    Anthropic(MessagesRequest),
}

impl ClientBody {
    /// Reads a body in `front`'s format; a 400 in that format's words when it is not.
    pub fn parse(front: Front, bytes: &[u8]) -> Result<ClientBody, ProxyError> {
        let bad = |e: serde_json::Error| {
            ProxyError::own(
                400,
                "invalid_request",
                format!("the body is not a valid {} request: {e}", front.name()),
            )
        };
        Ok(match front {
            Front::OpenAi => ClientBody::OpenAi(serde_json::from_slice(bytes).map_err(bad)?),
            Front::Anthropic => ClientBody::Anthropic(serde_json::from_slice(bytes).map_err(bad)?),
        })
    }

    pub fn front(&self) -> Front {
        match self {
            ClientBody::OpenAi(_) => Front::OpenAi,
            ClientBody::Anthropic(_) => Front::Anthropic,
        }
    }

    pub fn model(&self) -> &str {
        match self {
            ClientBody::OpenAi(r) => &r.model,
            ClientBody::Anthropic(r) => &r.model,
        }
    }

    pub fn streaming(&self) -> bool {
        match self {
            ClientBody::OpenAi(r) => r.streaming(),
            ClientBody::Anthropic(r) => r.streaming(),
        }
    }

    /// Whether a streaming client asked for the usage in its stream (Anthropic
    /// streams always carry it).
    pub fn wants_usage(&self) -> bool {
        match self {
            ClientBody::OpenAi(r) => r.wants_usage(),
            ClientBody::Anthropic(_) => true,
        }
    }

    /// The output bound the client set.
    pub fn max_output(&self) -> Option<u64> {
        match self {
            ClientBody::OpenAi(r) => r.output_limit(),
            ClientBody::Anthropic(r) => Some(r.max_tokens),
        }
    }

    /// The prompt's size in tokens: likely, and at most.
    pub fn estimate(&self) -> Estimate {
        match self {
            ClientBody::OpenAi(r) => estimate::openai_request(r),
            ClientBody::Anthropic(r) => estimate::anthropic_request(r),
        }
    }
}

impl Front {
    /// The endpoint's label in metrics.
    pub fn endpoint(self) -> &'static str {
        match self {
            Front::OpenAi => "chat_completions",
            Front::Anthropic => "messages",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Front::OpenAi => "openai chat completions",
            Front::Anthropic => "anthropic messages",
        }
    }
}

/// Why a call failed, before it is written in the client's format.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyError {
    /// the proxy's own: a bad request, a policy refusal, no provider answering
    Own {
        status: u16,
        code: &'static str,
        message: String,
        retry_after_s: Option<u64>,
    },
    /// a provider's error answer, relayed (translated when the formats differ)
    Upstream {
        status: u16,
        format: Front,
        body: Bytes,
        retry_after_s: Option<u64>,
    },
}

impl ProxyError {
    pub fn own(status: u16, code: &'static str, message: impl Into<String>) -> ProxyError {
        ProxyError::Own {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ProxyError::Own { status, .. } | ProxyError::Upstream { status, .. } => *status,
        }
    }

    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ProxyError::Own { retry_after_s, .. } | ProxyError::Upstream { retry_after_s, .. } => {
                *retry_after_s
            }
        }
    }

    /// The proxy's error code (`budget_exceeded`, `no_route`, …), or `upstream_error`.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::Own { code, .. } => code,
            ProxyError::Upstream { .. } => "upstream_error",
        }
    }

    /// The body in `client`'s format.
    pub fn body(&self, client: Front) -> Json {
        let value = match (self, client) {
            (
                ProxyError::Own {
                    status,
                    code,
                    message,
                    ..
                },
                Front::OpenAi,
            ) => {
                let mut e = openai::ErrorBody::new(*status, message.clone());
                if *code == "budget_exceeded" {
                    e = openai::ErrorBody::typed(code, message.clone());
                } else {
                    e.error.code = Some(Json::String((*code).into()));
                }
                serde_json::to_value(e)
            }
            (
                ProxyError::Own {
                    status,
                    code,
                    message,
                    ..
                },
                Front::Anthropic,
            ) => {
                let e = if *code == "budget_exceeded" {
                    anthropic::ErrorBody::typed(code, message.clone())
                } else {
                    anthropic::ErrorBody::new(*status, message.clone())
                };
                serde_json::to_value(e)
            }
            (
                ProxyError::Upstream {
                    status,
                    format,
                    body,
                    ..
                },
                client,
            ) => match (format, client) {
                (Front::OpenAi, Front::OpenAi) => {
                    serde_json::to_value(openai::ErrorBody::from_upstream(*status, body))
                }
                (Front::Anthropic, Front::Anthropic) => {
                    serde_json::to_value(anthropic::ErrorBody::from_upstream(*status, body))
                }
                (Front::Anthropic, Front::OpenAi) => {
                    serde_json::to_value(translate::error_to_openai(
                        *status,
                        &anthropic::ErrorBody::from_upstream(*status, body),
                    ))
                }
                (Front::OpenAi, Front::Anthropic) => {
                    serde_json::to_value(translate::error_to_anthropic(
                        *status,
                        &openai::ErrorBody::from_upstream(*status, body),
                    ))
                }
            },
        };
        value.unwrap_or(Json::Null)
    }
}

impl From<RouteError> for ProxyError {
    fn from(e: RouteError) -> ProxyError {
        let mut message = e.message;
        if let Some(h) = e.help {
            message = format!("{message} (help: {h})");
        }
        ProxyError::Own {
            status: e.status,
            code: e.code,
            message,
            retry_after_s: e.retry_after.map(u64::from),
        }
    }
}

/// The key a client sent: `Authorization: Bearer KEY` (OpenAI's SDKs) or
/// `x-api-key: KEY` (Anthropic's).
pub fn client_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    let v = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether `given` is one of `keys`, comparing every byte of each so that the time
/// taken does not tell how much of a key matched.
pub fn key_matches(keys: &[String], given: &str) -> bool {
    keys.iter().fold(false, |found, k| {
        let same = k.len() == given.len()
            && k.bytes()
                .zip(given.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        found | same
    })
}

/// The routing attributes of a call, as the JSON object `/v1/route` takes: one per
/// `x-rulec-<attribute>` header (`-` for `_`), numbers and booleans read as the
/// schema types them (so that a bad value gets `/v1/route`'s message), and
/// `estimated_tokens`, when the schema has it and no header gave it, from the body.
pub fn attributes(
    headers: &HeaderMap,
    schema: &RequestSchema,
    estimate: &Estimate,
) -> Result<Json, ProxyError> {
    let mut map = Map::new();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix(ATTRIBUTE_PREFIX) else {
            continue;
        };
        let attr = attr.replace('-', "_");
        let text = value.to_str().map_err(|_| {
            ProxyError::own(
                400,
                "invalid_request",
                format!("header `{name}` is not text"),
            )
        })?;
        let value = match schema.attributes.iter().find(|a| a.name == attr) {
            Some(spec) => typed(spec.ty, text),
            // unknown: `/v1/route`'s message names it and suggests the closest
            None => Json::String(text.to_string()),
        };
        map.insert(attr, value);
    }
    if let Some(spec) = schema
        .attributes
        .iter()
        .find(|a| a.name == "estimated_tokens")
    {
        map.entry(spec.name.clone())
            .or_insert_with(|| Json::from(estimate.likely));
    }
    Ok(Json::Object(map))
}

/// A header's text as the attribute's type reads it; left as text when it does not
/// parse, so that the schema's check words the error.
fn typed(ty: AttrType, text: &str) -> Json {
    let text = text.trim();
    match ty {
        AttrType::Bool => match text {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => Json::String(text.into()),
        },
        AttrType::Int | AttrType::Number => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Json::String(text.into()), Json::Number),
        // strings, enums, and the units the schema reads from text (`30s`, `$2`, `5%`)
        _ => Json::String(text.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::request::AttrSpec;

    fn schema() -> RequestSchema {
        let attr = |name: &str, ty| AttrSpec {
            name: name.into(),
            ty,
            values: Vec::new(),
            min: None,
            max: None,
            requires: Vec::new(),
        };
        RequestSchema {
            attributes: vec![
                attr("task_type", AttrType::Enum),
                attr("estimated_tokens", AttrType::Int),
                attr("urgent", AttrType::Bool),
            ],
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn headers_become_typed_attributes_and_tokens_are_estimated() {
        let estimate = Estimate {
            likely: 42,
            at_most: 160,
        };
        let h = headers(&[
            ("x-rulec-task-type", "code_generation"),
            ("x-rulec-urgent", "true"),
            ("authorization", "Bearer sk"),
        ]);
        let json = attributes(&h, &schema(), &estimate).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"task_type": "code_generation", "urgent": true, "estimated_tokens": 42})
        );
        let h = headers(&[("x-rulec-estimated-tokens", "9000")]);
        let json = attributes(&h, &schema(), &estimate).unwrap();
        assert_eq!(json["estimated_tokens"].as_f64(), Some(9000.0));
        // a value the type cannot read stays text, for the schema's own message
        let h = headers(&[("x-rulec-estimated-tokens", "many")]);
        let json = attributes(&h, &schema(), &estimate).unwrap();
        assert_eq!(json["estimated_tokens"], "many");
    }

    #[test]
    fn keys_come_from_either_header_and_must_match_whole() {
        let keys = vec!["sk-one".to_string(), "sk-two".to_string()];
        let h = headers(&[("authorization", "bearer sk-two")]);
        assert_eq!(client_key(&h), Some("sk-two"));
        assert!(key_matches(&keys, "sk-two"));
        assert!(!key_matches(&keys, "sk-tw"));
        assert!(!key_matches(&keys, "sk-twoo"));
        let h = headers(&[("x-api-key", "sk-one")]);
        assert_eq!(client_key(&h), Some("sk-one"));
        assert_eq!(client_key(&HeaderMap::new()), None);
    }

    #[test]
    fn errors_take_each_front_ends_shape() {
        let e = ProxyError::own(402, "budget_exceeded", "the daily budget is spent");
        assert_eq!(e.body(Front::OpenAi)["error"]["type"], "budget_exceeded");
        assert_eq!(e.body(Front::Anthropic)["type"], "error");
        assert_eq!(e.body(Front::Anthropic)["error"]["type"], "budget_exceeded");
        let e = ProxyError::Upstream {
            status: 429,
            format: Front::Anthropic,
            body: Bytes::from_static(
                br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
            ),
            retry_after_s: Some(2),
        };
        assert_eq!(e.body(Front::OpenAi)["error"]["message"], "slow down");
        assert_eq!(
            e.body(Front::Anthropic)["error"]["type"],
            "rate_limit_error"
        );
    }
}
