//! One proxied call, from the client's body to its answer: read the call, decide
//! (`Gateway::route_call`, which reserves the worst case), then follow the failover
//! planner (`runtime::attempts`) — build the provider's request, send it with its
//! timeouts, read how it ended, record every attempt through the runtime
//! (`Gateway::record_attempt`: passive health, cost windows, budgets) — and answer in
//! the client's format. Decisions stay in the runtime; this module carries them out.
//!
//! A call runs in a task of its own, which hands the answer's head to the HTTP handler
//! and, for a stream, goes on relaying into the body. So a client that goes away does
//! not cut the bookkeeping short: the attempt in flight is still recorded and settled.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{HeaderMap, Response, StatusCode};
use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::adapter::{self, BuildError, DEFAULT_MAX_TOKENS};
use super::body::{AnyBody, ChannelBody};
use super::client::Upstream;
use super::front::{self, ClientBody, Front, ProxyError, AUTO};
use super::relay::{self, Relay, UsageCounts};
use super::sse;
use super::stream::StreamError;
use super::{anthropic, openai, translate, TokenUsage};
use crate::bundle::spec::ProviderSpec;
use crate::runtime::attempts::{
    Attempt, Attempts, Ended, Exhaustion, Outcome, Target, Usage, Verdict,
};
use crate::runtime::events::Effect;
use crate::runtime::gateway::Gateway;
use crate::runtime::ids::ModelIx;
use crate::runtime::report::Billing;
use crate::runtime::reserve::{Reservation, WorstCase};
use crate::runtime::route::{Call, Decision};

/// What a call needs of the server around it: its clocks, and carrying out the
/// effects (probes) that recording an attempt asks for.
pub trait Host: Send + Sync + 'static {
    /// monotonic milliseconds: the machines' clock
    fn now_ms(&self) -> u64;
    /// wall-clock milliseconds: the budgets' day
    fn wall_ms(&self) -> u64;
    /// (an associated function: carrying out may spawn tasks that keep the host)
    fn carry_out(host: &Arc<Self>, gateway: &Arc<Gateway>, effects: Vec<Effect>);
}

/// The proxy's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// attempts per call, the first included
    pub max_attempts: u32,
    /// a call's timeout when neither the provider nor the fallback sets one
    pub default_timeout: Duration,
    /// the largest answer read whole from a provider
    pub max_answer: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_attempts: crate::runtime::attempts::DEFAULT_MAX_ATTEMPTS,
            default_timeout: Duration::from_secs(600),
            max_answer: 32 << 20,
        }
    }
}

/// The longest a provider's error body is read.
const MAX_ERROR_BODY: usize = 64 << 10;
/// The longest one server-sent-event line from a provider.
const MAX_EVENT_LINE: usize = 4 << 20;
/// Chunks a streamed answer may have waiting for a slow client.
const STREAM_DEPTH: usize = 64;

/// Headers of every answer.
pub mod header {
    pub const MODEL: &str = "x-rulec-model";
    pub const PROVIDER: &str = "x-rulec-provider";
    pub const ATTEMPTS: &str = "x-rulec-attempts";
    pub const RULE: &str = "x-rulec-rule";
    pub const DECISION: &str = "x-rulec-decision";
    /// the output bound the proxy set because the client set none
    pub const MAX_TOKENS: &str = "x-rulec-max-tokens";
}

/// Serves one call; `body` is the client's request body, already read.
pub async fn serve<H: Host>(
    host: Arc<H>,
    gateway: Arc<Gateway>,
    upstream: Upstream,
    settings: Settings,
    front: Front,
    headers: HeaderMap,
    body: Bytes,
) -> Response<AnyBody> {
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let call = Run {
            host,
            gateway: &gateway,
            upstream,
            settings,
            front,
            answer: Some(tx),
        };
        call.run(&headers, &body).await;
    });
    rx.await.unwrap_or_else(|_| {
        error_reply(
            front,
            &ProxyError::own(500, "internal_error", "the call ended without an answer"),
            &Meta::default(),
        )
    })
}

/// What the answer's headers say about the call.
#[derive(Debug, Default, Clone)]
struct Meta {
    model: Option<String>,
    provider: Option<String>,
    attempts: u32,
    rule: Option<String>,
    decision: Option<String>,
    max_tokens: Option<u64>,
}

/// One call's task.
struct Run<'g, H: Host> {
    host: Arc<H>,
    gateway: &'g Arc<Gateway>,
    upstream: Upstream,
    settings: Settings,
    front: Front,
    answer: Option<oneshot::Sender<Response<AnyBody>>>,
}

/// How one attempt ended: its outcome for the planner and the runtime, what the
/// provider billed when the outcome does not say (a stream cut short), and the error
/// the client gets if the call ends on it (`None`: the client has its answer).
struct Finished {
    outcome: Outcome,
    billed: Option<Usage>,
    error: Option<ProxyError>,
}

impl Finished {
    fn failed(outcome: Outcome, error: ProxyError) -> Finished {
        Finished {
            outcome,
            billed: None,
            error: Some(error),
        }
    }

    fn answered(outcome: Outcome, billed: Option<Usage>) -> Finished {
        Finished {
            outcome,
            billed,
            error: None,
        }
    }
}

impl<'g, H: Host> Run<'g, H> {
    async fn run(mut self, headers: &HeaderMap, bytes: &Bytes) {
        let mut meta = Meta::default();
        let result = self.call(headers, bytes, &mut meta).await;
        let stats = &self.gateway.shared.stats;
        let endpoint = self.front.endpoint();
        match result {
            Ok(ended) => {
                stats.proxy_calls.inc(&[endpoint, ended]);
                if meta.attempts > 1 {
                    stats.proxy_failovers.inc(&[endpoint]);
                }
            }
            Err(e) => {
                stats.proxy_calls.inc(&[endpoint, e.code()]);
                let reply = error_reply(self.front, &e, &meta);
                self.answer(reply);
            }
        }
    }

    fn answer(&mut self, reply: Response<AnyBody>) {
        if let Some(tx) = self.answer.take() {
            // the client may have gone: the call is recorded all the same
            let _ = tx.send(reply);
        }
    }

    /// The call; `Ok` with how it ended (`ok`, `cut`) once the client has its answer.
    async fn call(
        &mut self,
        headers: &HeaderMap,
        bytes: &Bytes,
        meta: &mut Meta,
    ) -> Result<&'static str, ProxyError> {
        let g = self.gateway;
        let body = ClientBody::parse(self.front, bytes)?;
        let requested = self.requested_model(&body)?;
        let estimate = body.estimate();
        let attributes = front::attributes(headers, &g.bundle.content.schema, &estimate)?;
        // a budget must bound what a call can cost: without the client's bound, the
        // proxy sets one and says so in `x-rulec-max-tokens`
        let capped = body.max_output().is_none() && budgeted(g);
        let max_output = body.max_output().unwrap_or(DEFAULT_MAX_TOKENS);
        if capped {
            meta.max_tokens = Some(max_output);
        }
        let worst = WorstCase {
            prompt_bytes: estimate.at_most,
            messages: 0,
            max_output_tokens: max_output,
        };
        let call = Call {
            model: requested,
            worst,
        };
        let (decision, reservation) =
            g.route_call(&attributes, &call, self.host.now_ms(), self.host.wall_ms())?;
        meta.rule = Some(decision.rule.id.to_string());
        meta.decision = Some(decision.decision_id.clone());
        let call = CallParts {
            body: &body,
            headers,
            worst,
            max_tokens: capped.then_some(max_output),
        };
        let result = self.attempts(&decision, reservation, &call, meta).await;
        // the decision's pool slot is the call's, across all of its attempts
        let _ = g.end_decision(&decision.decision_id);
        result
    }

    /// `auto`, or one of the policy's models; anything else is a 400 naming it.
    fn requested_model(&self, body: &ClientBody) -> Result<Option<ModelIx>, ProxyError> {
        let name = body.model();
        if name == AUTO {
            return Ok(None);
        }
        if let Some(m) = self.gateway.model(name) {
            return Ok(Some(m));
        }
        let names = self.gateway.models().iter().map(|m| m.name.as_str());
        let hint = crate::diag::suggest::did_you_mean(name, names)
            .map_or_else(String::new, |h| format!(" ({h})"));
        Err(ProxyError::own(
            400,
            "unknown_model",
            format!("model `{name}` is not in the policy; use `{AUTO}` to let the policy decide, or one of the models `GET /v1/models` lists{hint}"),
        ))
    }

    /// The failover loop: the planner picks each target, the attempt is made and
    /// recorded, until one answers, the client's error ends it, or none is left.
    async fn attempts(
        &mut self,
        decision: &Decision<'g>,
        reservation: Reservation,
        call: &CallParts<'_>,
        meta: &mut Meta,
    ) -> Result<&'static str, ProxyError> {
        let g = self.gateway;
        let session = reservation.session().map(str::to_string);
        let mut held = Some(reservation);
        let mut plan = Attempts::new(decision).with_cap(self.settings.max_attempts);
        let mut last_error = None;
        while let Some(target) = plan.next(self.host.now_ms()) {
            if target.wait_ms > 0 {
                tokio::time::sleep(Duration::from_millis(target.wait_ms)).await;
            }
            meta.attempts = target.attempt;
            meta.model = Some(target.model.to_string());
            meta.provider = Some(target.provider.to_string());
            // the decision's reservation is for its model; a fallback reserves its own
            let reservation = match held.take() {
                Some(r) if g.model_spec(r.model()).name == target.model => r,
                _ => {
                    let m = g.model(target.model).ok_or_else(|| {
                        ProxyError::own(
                            500,
                            "bundle_inconsistent",
                            format!("model `{}` is not in the bundle", target.model),
                        )
                    })?;
                    g.reserve(m, session.as_deref(), &call.worst, self.host.wall_ms())
                        .map_err(|r| ProxyError::from(r.to_error()))?
                        .for_decision(&decision.decision_id)
                }
            };
            let finished = self.attempt(&target, call, meta).await;
            if let Some(attempt) = plan.record(&target, finished.outcome, self.host.now_ms()) {
                let attempt = attempt.clone();
                self.record(&attempt, finished.billed, reservation);
            }
            match finished.error {
                None if finished.outcome.verdict() == Verdict::Cut => return Ok("cut"),
                None => return Ok("ok"),
                Some(e) if finished.outcome.verdict() == Verdict::Client => return Err(e),
                Some(e) => last_error = Some(e),
            }
        }
        Err(exhausted(&plan, last_error))
    }

    /// Feeds a finished attempt to the runtime: counters, passive health, the cost
    /// window, and the budgets through its reservation.
    fn record(&self, attempt: &Attempt<'_>, billed: Option<Usage>, reservation: Reservation) {
        let g = self.gateway;
        let recorded = g.record_attempt(
            attempt,
            billed,
            Billing::Settle(reservation),
            self.host.now_ms(),
            self.host.wall_ms(),
        );
        match recorded {
            Ok((_, effects)) => H::carry_out(&self.host, g, effects),
            Err(e) => tracing::warn!(
                model = attempt.target.model,
                "an attempt could not be recorded: {}",
                e.message
            ),
        }
    }

    /// One attempt: build the provider's request, send it, read the answer. On
    /// success the client is answered here.
    async fn attempt(
        &mut self,
        target: &Target<'g>,
        call: &CallParts<'_>,
        meta: &Meta,
    ) -> Finished {
        let g = self.gateway;
        let Some(p) = g.provider_ix(target.provider) else {
            let e = ProxyError::own(
                500,
                "bundle_inconsistent",
                format!("provider `{}` is not in the bundle", target.provider),
            );
            return Finished::failed(status_only(500), e);
        };
        let spec = g.provider_spec(p);
        let outbound = match adapter::build(
            spec,
            target.model_id,
            call.body,
            call.max_tokens,
            call.headers,
        ) {
            Ok(o) => o,
            Err(BuildError::Translate(e)) => {
                let e = ProxyError::own(
                    400,
                    "untranslatable",
                    format!("model `{}` cannot take this request: {e}", target.model),
                );
                return Finished::failed(status_only(400), e);
            }
            Err(BuildError::Settings(m)) => {
                let e = ProxyError::own(500, "provider_settings", m);
                return Finished::failed(status_only(500), e);
            }
        };
        let timeouts = Timeouts::of(spec, target, &self.settings);
        let format = outbound.format;
        let started = Instant::now();
        let first_byte_at = started + timeouts.first_byte;
        let end_at = started + timeouts.whole;
        let sent = tokio::time::timeout_at(
            first_byte_at.min(end_at),
            self.upstream.send(outbound.request),
        )
        .await;
        let response = match sent {
            Err(_) => return timed_out(target, &timeouts, first_byte_at < end_at),
            Ok(Err(e)) => {
                let outcome = if e.is_connect() {
                    Outcome::ConnectError
                } else {
                    Outcome::StreamCut {
                        after_first_byte: false,
                    }
                };
                let err = ProxyError::own(
                    502,
                    "upstream_unreachable",
                    format!("provider `{}`: {e}", target.provider),
                );
                return Finished::failed(outcome, err);
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after_ms = retry_after_ms(response.headers());
            let body = read_limited(response.into_body(), MAX_ERROR_BODY, end_at)
                .await
                .unwrap_or_default();
            let code = status.as_u16();
            let outcome = if is_content_filter(code, &body) {
                Outcome::ContentFilter
            } else {
                Outcome::Status {
                    code,
                    retry_after_ms,
                }
            };
            let err = ProxyError::Upstream {
                status: code,
                format,
                body,
                retry_after_s: retry_after_ms.map(|ms| ms.div_ceil(1000)),
            };
            return Finished::failed(outcome, err);
        }
        let answer = Answer {
            format,
            first_byte_at,
            end_at,
        };
        if call.body.streaming() {
            return self
                .stream(response.into_body(), &answer, call, target, meta)
                .await;
        }
        let bytes = match read_limited(response.into_body(), self.settings.max_answer, end_at).await
        {
            Ok(b) => b,
            Err(ReadError::Timeout) => return timed_out(target, &timeouts, false),
            Err(ReadError::Broken(m)) => {
                let e = ProxyError::own(
                    502,
                    "upstream_broken",
                    format!("provider `{}`: the answer broke off: {m}", target.provider),
                );
                return Finished::failed(
                    Outcome::StreamCut {
                        after_first_byte: false,
                    },
                    e,
                );
            }
        };
        match answer_for(self.front, format, &bytes) {
            Ok((client_bytes, usage)) => {
                if usage.is_none() {
                    tracing::warn!(
                        model = target.model,
                        provider = target.provider,
                        "an answer without usage: its reservation settles at the worst case"
                    );
                }
                self.answer(whole_reply(
                    StatusCode::OK,
                    client_bytes,
                    "application/json",
                    meta,
                ));
                Finished::answered(
                    Outcome::Success {
                        usage: usage.map(to_usage),
                    },
                    None,
                )
            }
            Err(why) => {
                let e = ProxyError::own(
                    502,
                    "upstream_malformed",
                    format!(
                        "provider `{}` answered something that is not its format: {why}",
                        target.provider
                    ),
                );
                Finished::failed(status_only(502), e)
            }
        }
    }

    /// A streamed answer: read until the client has something to read (failing over
    /// if the stream breaks first), then commit the answer's head and relay the rest;
    /// a break after that ends the client's stream with an error event.
    async fn stream(
        &mut self,
        mut incoming: Incoming,
        answer: &Answer,
        call: &CallParts<'_>,
        target: &Target<'g>,
        meta: &Meta,
    ) -> Finished {
        let mut relay = Relay::new(
            self.front,
            answer.format,
            call.body.wants_usage(),
            call.body.estimate().likely,
        );
        let mut reader = Reader::new();
        let mut out = Vec::new();
        // before the first byte reaches the client: a break here fails over
        while out.is_empty() {
            let step = reader
                .step(
                    &mut incoming,
                    &mut relay,
                    &mut out,
                    answer.first_byte_at.min(answer.end_at),
                )
                .await;
            match step {
                Step::More => {}
                Step::Ended if !out.is_empty() => {}
                Step::Ended | Step::Failed(StreamError::Truncated) => {
                    let e = ProxyError::own(
                        502,
                        "upstream_cut",
                        format!(
                            "provider `{}` ended the stream before its first event",
                            target.provider
                        ),
                    );
                    return Finished::failed(
                        Outcome::StreamCut {
                            after_first_byte: false,
                        },
                        e,
                    );
                }
                Step::Failed(e) => {
                    let (outcome, err) = stream_failure(target, &e);
                    return Finished::failed(outcome, err);
                }
                Step::TimedOut => {
                    let first = answer.first_byte_at < answer.end_at;
                    let (outcome, what) = if first {
                        (
                            Outcome::FirstByteTimeout,
                            "no event within the first-byte timeout",
                        )
                    } else {
                        (Outcome::Timeout, "no event within the timeout")
                    };
                    return Finished::failed(outcome, timeout_error(target, what));
                }
            }
        }
        // the first byte goes to the client: from here on the call is this model's
        let (tx, channel) = ChannelBody::channel(STREAM_DEPTH);
        let mut reply = Response::new(Either::Right(channel));
        let headers = reply.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        set_meta(headers, meta);
        self.answer(reply);
        let mut forwarded = out.len() as u64;
        let mut client_gone = tx
            .send(Bytes::from(std::mem::take(&mut out)))
            .await
            .is_err();
        let mut ending: Option<Step> = None;
        while !client_gone && ending.is_none() && !relay.is_done() {
            let step = reader
                .step(&mut incoming, &mut relay, &mut out, answer.end_at)
                .await;
            match step {
                Step::More => {}
                Step::Ended => ending = Some(Step::Ended),
                Step::Failed(e) => {
                    relay::write_error(self.front, &e, &mut out);
                    ending = Some(Step::Failed(e));
                }
                Step::TimedOut => {
                    let e = StreamError::Upstream {
                        kind: "timeout_error".into(),
                        message: format!(
                            "provider `{}` did not finish the stream within its timeout",
                            target.provider
                        ),
                    };
                    relay::write_error(self.front, &e, &mut out);
                    ending = Some(Step::TimedOut);
                }
            }
            if !out.is_empty() {
                forwarded += out.len() as u64;
                client_gone = tx
                    .send(Bytes::from(std::mem::take(&mut out)))
                    .await
                    .is_err();
            }
        }
        drop(tx);
        let seen = relay.usage().map(to_usage);
        let billed = seen.or_else(|| Some(partial_usage(call.body, forwarded)));
        let outcome = match ending {
            Some(Step::TimedOut) => Outcome::Timeout,
            Some(Step::Failed(_)) => Outcome::StreamCut {
                after_first_byte: true,
            },
            // done, or the client went away (not the provider's fault)
            _ => Outcome::Success { usage: billed },
        };
        Finished::answered(outcome, billed)
    }
}

/// The parts of a call every attempt reads.
struct CallParts<'a> {
    body: &'a ClientBody,
    headers: &'a HeaderMap,
    worst: WorstCase,
    /// the output bound the proxy sets because the client set none
    max_tokens: Option<u64>,
}

/// How to read one provider's answer.
struct Answer {
    format: Front,
    first_byte_at: Instant,
    end_at: Instant,
}

/// What one read of a stream gave.
enum Step {
    /// events were read (the relay may have written some)
    More,
    /// the stream ended at its proper end
    Ended,
    Failed(StreamError),
    TimedOut,
}

/// Reads a provider's event stream into a relay, one network chunk at a time.
struct Reader {
    parser: sse::Parser,
    events: Vec<sse::Event>,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            parser: sse::Parser::with_limit(MAX_EVENT_LINE),
            events: Vec::new(),
        }
    }

    async fn step(
        &mut self,
        body: &mut Incoming,
        relay: &mut Relay,
        out: &mut Vec<u8>,
        deadline: Instant,
    ) -> Step {
        self.events.clear();
        let end = match next_chunk(body, deadline).await {
            Chunk::Data(bytes) => {
                if self.parser.push(&bytes, &mut self.events).is_err() {
                    return Step::Failed(StreamError::Malformed(
                        "an event line is too long".into(),
                    ));
                }
                false
            }
            Chunk::End => {
                let _ = self.parser.finish(&mut self.events);
                true
            }
            Chunk::Broken(why) => {
                tracing::debug!("a provider's stream broke: {why}");
                return Step::Failed(StreamError::Truncated);
            }
            Chunk::Timeout => return Step::TimedOut,
        };
        for ev in &self.events {
            if let Err(e) = relay.feed(ev, out) {
                return Step::Failed(e);
            }
        }
        if end {
            return match relay.finish(out) {
                Ok(()) => Step::Ended,
                Err(e) => Step::Failed(e),
            };
        }
        if relay.is_done() {
            Step::Ended
        } else {
            Step::More
        }
    }
}

fn timed_out(target: &Target<'_>, timeouts: &Timeouts, first_byte: bool) -> Finished {
    if first_byte {
        let what = format!(
            "no answer within the first-byte timeout of {} ms",
            timeouts.first_byte.as_millis()
        );
        Finished::failed(Outcome::FirstByteTimeout, timeout_error(target, &what))
    } else {
        let what = format!(
            "no answer within the timeout of {} ms",
            timeouts.whole.as_millis()
        );
        Finished::failed(Outcome::Timeout, timeout_error(target, &what))
    }
}

/// The error a call ends on when no attempt answered: the last provider's own error
/// when it gave one (a 429 with its `Retry-After` reads best to an SDK), else the
/// proxy's, listing every attempt.
fn exhausted(plan: &Attempts<'_>, last: Option<ProxyError>) -> ProxyError {
    let tried: Vec<String> = plan
        .attempts()
        .iter()
        .map(|a| {
            format!(
                "`{}` on `{}`: {}",
                a.target.model,
                a.target.provider,
                describe(&a.outcome)
            )
        })
        .collect();
    let why = match plan.ended() {
        Some(Ended::Exhausted {
            why: Exhaustion::Cap,
            ..
        }) => "the cap on attempts is reached",
        Some(Ended::Exhausted {
            why: Exhaustion::Deadline,
            ..
        }) => "the call's deadline passed",
        _ => "no model of the fallback chain is left to try",
    };
    match last {
        Some(e @ ProxyError::Upstream { .. }) => e,
        Some(ProxyError::Own {
            status,
            code,
            message,
            retry_after_s,
        }) => ProxyError::Own {
            status,
            code,
            message: format!("{message}; {why} (attempts: {})", tried.join("; ")),
            retry_after_s,
        },
        None => ProxyError::own(
            503,
            "no_provider",
            format!("no provider could be tried: {why}"),
        ),
    }
}

/// The timeouts of one attempt.
struct Timeouts {
    first_byte: Duration,
    whole: Duration,
}

impl Timeouts {
    /// The shortest that applies: the provider's `timeout` (else the server's
    /// default) and the fallback's `timeout_ms` for the whole call; the provider's
    /// `first_byte_timeout` (else the whole call's) for the first byte.
    fn of(spec: &ProviderSpec, target: &Target<'_>, settings: &Settings) -> Timeouts {
        let mut whole = spec
            .timeout_ms
            .map_or(settings.default_timeout, Duration::from_millis);
        if let Some(ms) = target.timeout_ms {
            whole = whole.min(Duration::from_millis(ms));
        }
        let first_byte = spec
            .first_byte_timeout_ms
            .map_or(whole, |ms| Duration::from_millis(ms).min(whole));
        Timeouts { first_byte, whole }
    }
}

fn budgeted(g: &Gateway) -> bool {
    let caps = g.caps();
    caps.daily.is_some() || caps.session.is_some()
}

fn to_usage(u: TokenUsage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
    }
}

/// What a stream that broke (or whose client left) had used, when the provider did
/// not say: the prompt as estimated, and the output as the bytes relayed / 4.
fn partial_usage(body: &ClientBody, forwarded: u64) -> Usage {
    Usage {
        input_tokens: body.estimate().likely,
        output_tokens: forwarded.div_ceil(super::estimate::BYTES_PER_TOKEN),
    }
}

/// An error status without `Retry-After`.
fn status_only(code: u16) -> Outcome {
    Outcome::Status {
        code,
        retry_after_ms: None,
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Success { .. } => "answered".into(),
        Outcome::ConnectError => "could not connect".into(),
        Outcome::FirstByteTimeout => "no first byte in time".into(),
        Outcome::Timeout => "timed out".into(),
        Outcome::Status { code, .. } => format!("answered {code}"),
        Outcome::ContentFilter => "refused the content".into(),
        Outcome::StreamCut { .. } => "the stream broke".into(),
    }
}

fn timeout_error(target: &Target<'_>, what: &str) -> ProxyError {
    ProxyError::own(
        504,
        "upstream_timeout",
        format!(
            "model `{}` on provider `{}`: {what}",
            target.model, target.provider
        ),
    )
}

fn stream_failure(target: &Target<'_>, e: &StreamError) -> (Outcome, ProxyError) {
    let err = ProxyError::own(
        502,
        "upstream_stream",
        format!("provider `{}`: {e}", target.provider),
    );
    let outcome = match e {
        StreamError::Upstream { kind, .. } if kind.contains("rate_limit") => status_only(429),
        StreamError::Upstream { kind, .. } if kind.contains("overloaded") => status_only(529),
        StreamError::Upstream { .. } => status_only(500),
        StreamError::Malformed(_) => status_only(502),
        StreamError::Truncated => Outcome::StreamCut {
            after_first_byte: false,
        },
    };
    (outcome, err)
}

/// A 400 whose body says the provider's content filter refused the prompt.
fn is_content_filter(code: u16, body: &[u8]) -> bool {
    code == 400 && {
        let text = String::from_utf8_lossy(body);
        text.contains("content_filter") || text.contains("content_policy")
    }
}

/// `retry-after-ms` (OpenAI's), else `retry-after` in seconds; an HTTP date is not
/// read (the planner then treats the provider as having said nothing).
fn retry_after_ms(headers: &HeaderMap) -> Option<u64> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(ms.ceil() as u64);
    }
    number("retry-after").map(|s| (s * 1000.0).ceil() as u64)
}

enum Chunk {
    Data(Bytes),
    End,
    Broken(String),
    Timeout,
}

async fn next_chunk(body: &mut Incoming, deadline: Instant) -> Chunk {
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Chunk::Timeout,
            Ok(None) => return Chunk::End,
            Ok(Some(Err(e))) => return Chunk::Broken(e.to_string()),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        return Chunk::Data(data);
                    }
                }
            }
        }
    }
}

enum ReadError {
    Timeout,
    Broken(String),
}

async fn read_limited(body: Incoming, max: usize, deadline: Instant) -> Result<Bytes, ReadError> {
    match tokio::time::timeout_at(deadline, Limited::new(body, max).collect()).await {
        Err(_) => Err(ReadError::Timeout),
        Ok(Err(e)) => Err(ReadError::Broken(e.to_string())),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// What an OpenAI answer passed through to an OpenAI client is read for: that it is
/// a chat completion (the fields `openai::ChatResponse` requires) and its usage. The
/// answer goes to the client as it came, so the rest is skipped, not built: building
/// all of it (`openai::ChatResponse`, whose flattened fields are buffered) was a
/// seventh of the proxy's instructions per plain call in `benches/proxy.sh`.
#[derive(Deserialize)]
struct PassedAnswer<'a> {
    #[serde(borrow, rename = "id")]
    _id: Cow<'a, str>,
    #[serde(borrow, rename = "model")]
    _model: Cow<'a, str>,
    #[serde(rename = "choices")]
    _choices: Vec<PassedChoice>,
    #[serde(default)]
    usage: Option<UsageCounts>,
}

#[derive(Deserialize)]
struct PassedChoice {
    #[serde(rename = "message")]
    _message: IgnoredAny,
}

/// A provider's whole answer for the client: passed through as it came when the
/// formats agree, else translated; with the usage it reports.
fn answer_for(
    client: Front,
    provider: Front,
    bytes: &Bytes,
) -> Result<(Bytes, Option<TokenUsage>), String> {
    match (provider, client) {
        (Front::OpenAi, Front::OpenAi) => {
            let r: PassedAnswer<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            Ok((bytes.clone(), r.usage.map(TokenUsage::from)))
        }
        (Front::OpenAi, Front::Anthropic) => {
            let r: openai::ChatResponse =
                serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            let usage = r.usage.as_ref().map(TokenUsage::from);
            let out = Bytes::from(
                serde_json::to_vec(
                    &translate::openai_to_anthropic_response(r).map_err(|e| e.to_string())?,
                )
                .map_err(|e| e.to_string())?,
            );
            Ok((out, usage))
        }
        (Front::Anthropic, _) => {
            let r: anthropic::MessageResponse =
                serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
            let usage = Some(TokenUsage::from(&r.usage));
            let out = match client {
                Front::Anthropic => bytes.clone(),
                Front::OpenAi => Bytes::from(
                    serde_json::to_vec(&translate::anthropic_to_openai_response(r, unix_seconds()))
                        .map_err(|e| e.to_string())?,
                ),
            };
            Ok((out, usage))
        }
    }
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn set_meta(headers: &mut HeaderMap, meta: &Meta) {
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    if let Some(m) = &meta.model {
        put(header::MODEL, m.clone());
    }
    if let Some(p) = &meta.provider {
        put(header::PROVIDER, p.clone());
    }
    if meta.attempts > 0 {
        put(header::ATTEMPTS, meta.attempts.to_string());
    }
    if let Some(r) = &meta.rule {
        put(header::RULE, r.clone());
    }
    if let Some(d) = &meta.decision {
        put(header::DECISION, d.clone());
    }
    if let Some(n) = meta.max_tokens {
        put(header::MAX_TOKENS, n.to_string());
    }
}

fn whole_reply(
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
    meta: &Meta,
) -> Response<AnyBody> {
    let mut r = Response::new(Either::Left(Full::new(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    set_meta(r.headers_mut(), meta);
    r
}

/// An error in the client's format, with the call's headers.
fn error_reply(front: Front, e: &ProxyError, meta: &Meta) -> Response<AnyBody> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut bytes = serde_json::to_vec(&e.body(front)).unwrap_or_default();
    bytes.push(b'\n');
    let mut r = whole_reply(status, Bytes::from(bytes), "application/json", meta);
    if let Some(s) = e.retry_after_s() {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(RETRY_AFTER, v);
        }
    }
    r
}

/// An error answered before any call is made (a wrong key, a body too large).
pub fn reject(front: Front, e: &ProxyError) -> Response<AnyBody> {
    error_reply(front, e, &Meta::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_milliseconds_then_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after_ms(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after_ms(&h), Some(2000));
        h.insert("retry-after-ms", HeaderValue::from_static("350.5"));
        assert_eq!(retry_after_ms(&h), Some(351));
        let mut h = HeaderMap::new();
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after_ms(&h), None);
    }

    #[test]
    fn a_passed_through_answer_is_checked_and_its_usage_read() {
        let answer = Bytes::from_static(
            br#"{"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":2}},"service_tier":"default"}"#,
        );
        let (out, usage) = answer_for(Front::OpenAi, Front::OpenAi, &answer).expect("an answer");
        assert_eq!(out, answer, "passed through as it came");
        assert_eq!(
            usage,
            Some(TokenUsage {
                input_tokens: 12,
                output_tokens: 5
            })
        );
        let no_usage = Bytes::from_static(br#"{"id":"c","model":"m","choices":[]}"#);
        let (_, usage) = answer_for(Front::OpenAi, Front::OpenAi, &no_usage).expect("an answer");
        assert_eq!(usage, None);
        for not_a_completion in [
            &br#"{"id":"c","model":"m","choi"#[..],
            br#"{"id":"c","model":"m"}"#,
            br#"{"id":"c","model":"m","choices":[{"index":0}]}"#,
            br#"{"id":7,"model":"m","choices":[]}"#,
            br#"{"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":"many"}}"#,
        ] {
            let bytes = Bytes::copy_from_slice(not_a_completion);
            assert!(
                answer_for(Front::OpenAi, Front::OpenAi, &bytes).is_err(),
                "{}",
                String::from_utf8_lossy(not_a_completion)
            );
        }
    }

    #[test]
    fn a_content_filter_is_read_from_a_400_body() {
        assert!(is_content_filter(
            400,
            br#"{"error":{"code":"content_filter"}}"#
        ));
        assert!(!is_content_filter(
            500,
            br#"{"error":{"code":"content_filter"}}"#
        ));
        assert!(!is_content_filter(
            400,
            br#"{"error":{"code":"context_length_exceeded"}}"#
        ));
    }
}
