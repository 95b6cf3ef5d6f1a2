//! The LLM proxy stage: OpenAI- and Anthropic-compatible front ends that route each
//! call by the policy, send it to a provider, fail over, stream the answer back and
//! hold budgets (issue 9). The proxy carries out what `runtime` decides; it makes no
//! decision itself.
//!
//! Today it owns the ground the proxy will stand on, all pure and free of I/O:
//!
//! - [`openai`], [`anthropic`]: the two wire formats (requests, responses, streamed
//!   chunks and events, errors) as serde types that keep fields they do not read.
//! - [`translate`]: requests, responses, stop reasons, usage and errors from one
//!   format to the other.
//! - [`sse`]: an incremental server-sent-events parser and writer.
//! - [`stream`]: the streamed answers translated event by event, as state machines
//!   that also report the usage they saw.
//! - [`estimate`]: a request's size in tokens, estimated from its body.
//! - [`client`]: the outbound HTTP client (rustls, the system's trust store, pooled
//!   keep-alive connections, `HTTPS_PROXY` / `NO_PROXY`) and its errors, which tell a
//!   call that never left from one that broke after it was sent.

pub mod adapter;
pub mod anthropic;
pub mod body;
pub mod call;
pub mod client;
pub mod estimate;
pub mod front;
pub mod openai;
pub mod relay;
pub mod sse;
pub mod stream;
pub mod translate;

/// The tokens a call used, in one currency for both formats: every prompt token
/// (cached or not) as input, the generated ones as output. What budgets settle on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl From<&openai::Usage> for TokenUsage {
    fn from(u: &openai::Usage) -> TokenUsage {
        TokenUsage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
        }
    }
}

impl From<&anthropic::Usage> for TokenUsage {
    fn from(u: &anthropic::Usage) -> TokenUsage {
        TokenUsage {
            input_tokens: u.prompt_tokens(),
            output_tokens: u.output_tokens,
        }
    }
}
