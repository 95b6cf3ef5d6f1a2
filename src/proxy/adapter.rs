//! Provider adapters: the HTTP request a provider of each kind takes for a client's
//! call. `openai`, `openai_compatible` and `google` (its OpenAI-compatible endpoint)
//! take `POST {base_url}/chat/completions` with `Authorization: Bearer`; `anthropic`
//! takes `POST {base_url}/v1/messages` with `x-api-key` and `anthropic-version`. The
//! body is the client's, translated when the formats differ, naming the provider's
//! model id. The provider's key is read from the variable the policy names, at call
//! time; the client's key is never forwarded.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use hyper::{HeaderMap, Request};

use super::front::{ClientBody, Front};
use super::openai::StreamOptions;
use super::translate::{self, MaxTokensField, TranslateError};
use crate::bundle::spec::{keyword, ProviderSpec};

/// The output bound sent to a provider when the client set none and one is needed:
/// Anthropic requires `max_tokens`, and a budget must bound a call's cost.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// What to send, and how to read the answer.
#[derive(Debug)]
pub struct Outbound {
    pub request: Request<Full<Bytes>>,
    /// the provider's wire format
    pub format: Front,
}

/// The wire format of a provider kind.
pub fn format_of(spec: &ProviderSpec) -> Front {
    if spec.is_anthropic() {
        Front::Anthropic
    } else {
        Front::OpenAi
    }
}

/// Why no request could be built: the client's request cannot be said in the
/// provider's format (a 400), or the provider's settings make no request (a 500).
#[derive(Debug)]
pub enum BuildError {
    Translate(TranslateError),
    Settings(String),
}

/// The request for `model_id` at `spec` carrying the client's `body`. `max_tokens`,
/// when given, is the output bound to send when the client set none.
pub fn build(
    spec: &ProviderSpec,
    model_id: &str,
    body: &ClientBody,
    max_tokens: Option<u64>,
    client_headers: &HeaderMap,
) -> Result<Outbound, BuildError> {
    let format = format_of(spec);
    let streaming = body.streaming();
    let json = match (body, format) {
        (ClientBody::Anthropic(req), Front::Anthropic) => {
            let mut req = req.clone();
            req.model = model_id.to_string();
            serde_json::to_vec(&req)
        }
        (ClientBody::OpenAi(req), Front::Anthropic) => {
            let mut req = translate::openai_to_anthropic_request(
                req.clone(),
                max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            )
            .map_err(BuildError::Translate)?;
            req.model = model_id.to_string();
            serde_json::to_vec(&req)
        }
        (ClientBody::OpenAi(req), Front::OpenAi) => {
            let mut req = req.clone();
            req.model = model_id.to_string();
            if req.output_limit().is_none() {
                if let Some(n) = max_tokens {
                    match max_tokens_field(spec) {
                        MaxTokensField::MaxTokens => req.max_tokens = Some(n),
                        MaxTokensField::MaxCompletionTokens => req.max_completion_tokens = Some(n),
                    }
                }
            }
            if streaming && !req.wants_usage() {
                // the usage settles the budget; the relay hides it from the client
                let options = req.stream_options.get_or_insert(StreamOptions {
                    include_usage: None,
                    extra: Default::default(),
                });
                options.include_usage = Some(true);
            }
            serde_json::to_vec(&req)
        }
        (ClientBody::Anthropic(req), Front::OpenAi) => {
            let mut req =
                translate::anthropic_to_openai_request(req.clone(), max_tokens_field(spec))
                    .map_err(BuildError::Translate)?;
            req.model = model_id.to_string();
            serde_json::to_vec(&req)
        }
    }
    .map_err(|e| BuildError::Settings(format!("cannot write the request: {e}")))?;

    let base = spec.base_url.trim_end_matches('/');
    let url = match format {
        Front::Anthropic => format!("{base}/v1/messages"),
        Front::OpenAi => format!("{base}/chat/completions"),
    };
    let mut req = Request::post(&url)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("rulec/", env!("CARGO_PKG_VERSION")))
        .header(
            ACCEPT,
            if streaming {
                "text/event-stream"
            } else {
                "application/json"
            },
        );
    let key = spec
        .api_key_env
        .as_ref()
        .and_then(|v| std::env::var(v).ok());
    match format {
        Front::Anthropic => {
            req = req.header("anthropic-version", keyword::ANTHROPIC_VERSION);
            if let Some(key) = key {
                req = req.header("x-api-key", key);
            }
            // beta features an Anthropic client turned on still reach Anthropic
            if body.front() == Front::Anthropic {
                if let Some(beta) = client_headers.get("anthropic-beta") {
                    req = req.header("anthropic-beta", beta.clone());
                }
            }
        }
        Front::OpenAi => {
            if let Some(key) = key {
                let value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    BuildError::Settings(format!(
                        "the key in `{}` is not a valid header value",
                        spec.api_key_env.as_deref().unwrap_or_default()
                    ))
                })?;
                req = req.header(AUTHORIZATION, value);
            }
        }
    }
    let request = req
        .body(Full::new(Bytes::from(json)))
        .map_err(|e| BuildError::Settings(format!("cannot build a request for `{url}`: {e}")))?;
    Ok(Outbound { request, format })
}

/// OpenAI's own API wants `max_completion_tokens` (its reasoning models refuse
/// `max_tokens`); compatible servers and Google's endpoint know `max_tokens`.
fn max_tokens_field(spec: &ProviderSpec) -> MaxTokensField {
    if spec.kind == keyword::OPENAI {
        MaxTokensField::MaxCompletionTokens
    } else {
        MaxTokensField::MaxTokens
    }
}
