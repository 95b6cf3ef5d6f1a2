//! The failover planner: given a decision and how each attempt ended, what to try
//! next — the decision's model, then its fallback chain — and why the request ended.
//! Pure (the caller passes the time, and carries out the calls), so that the proxy and
//! a simulator share it.
//!
//! The rules, in the order they apply:
//! - a request makes at most `cap` attempts ([`DEFAULT_MAX_ATTEMPTS`] unless set);
//! - a target (a model of the chain) is tried at most once per request: after a
//!   failure it is never picked again, and after any other outcome the request ends;
//! - a provider that refused a connection is skipped for the rest of the request (every
//!   model on it shares the host that just refused);
//! - a provider that answered with a `Retry-After` (429, or a 5xx carrying one) is
//!   held until then: a target that need not wait is preferred; else the one that waits
//!   least, and only when the wait is at most `max_wait_ms` and ends before the
//!   request's deadline; otherwise it is skipped;
//! - a timeout, a 5xx or a 429 without `Retry-After`, or a stream cut before its first
//!   byte reached the client excludes only the target (another model on the same
//!   provider may still answer);
//! - 400, 401, 403, 404, 413, 422 (any 4xx but 408 and 429) and a content filter are
//!   the client's: returned, never failed over;
//! - a stream cut after its first byte reached the client ends the request: the client
//!   has part of one model's answer, so switching would splice two answers together.

use serde::Serialize;

use super::decision::Decision;

/// Attempts per request unless the caller sets a cap: the decision's model and two
/// fallbacks, so that one bad provider and one bad model still end in an answer
/// while a broken chain does not multiply a client's wait.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The longest a `Retry-After` may make the next attempt wait unless the caller sets
/// it; a provider asking for longer is skipped for this request.
pub const DEFAULT_MAX_WAIT_MS: u64 = 2_000;

/// Tokens a provider billed for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// How one attempt ended, as the proxy saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// an answer; `usage` is `None` when the provider did not report it
    Success { usage: Option<Usage> },
    /// the connection was refused or reset before a request was sent
    ConnectError,
    /// no first byte within the first-byte timeout
    FirstByteTimeout,
    /// the whole call took longer than its timeout
    Timeout,
    /// an error status from the provider, with its `Retry-After` in milliseconds
    Status {
        code: u16,
        retry_after_ms: Option<u64>,
    },
    /// the provider refused the content (a moderation or safety filter)
    ContentFilter,
    /// the stream broke; `after_first_byte`: after part of it reached the client
    StreamCut { after_first_byte: bool },
}

/// What an outcome means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Served,
    /// the client's fault: returned as is
    Client,
    /// the provider's fault: try the next target
    FailOver,
    /// the client already has part of an answer: end with an in-stream error
    Cut,
}

impl Outcome {
    pub fn verdict(&self) -> Verdict {
        match *self {
            Outcome::Success { .. } => Verdict::Served,
            Outcome::ContentFilter => Verdict::Client,
            Outcome::Status { code, .. } if is_client_status(code) => Verdict::Client,
            Outcome::StreamCut {
                after_first_byte: true,
            } => Verdict::Cut,
            Outcome::ConnectError
            | Outcome::FirstByteTimeout
            | Outcome::Timeout
            | Outcome::Status { .. }
            | Outcome::StreamCut { .. } => Verdict::FailOver,
        }
    }

    /// The error kind `/v1/report` would name for this outcome (see
    /// `report::ERROR_KINDS`), `None` for a success.
    pub fn error_kind(&self) -> Option<&'static str> {
        Some(match *self {
            Outcome::Success { .. } => return None,
            Outcome::ConnectError | Outcome::StreamCut { .. } => "connection",
            Outcome::FirstByteTimeout | Outcome::Timeout => "timeout",
            Outcome::ContentFilter => "content_filter",
            Outcome::Status { code: 408, .. } => "timeout",
            Outcome::Status { code: 429, .. } => "rate_limited",
            // 529 is Anthropic's "overloaded"
            Outcome::Status {
                code: 503 | 529, ..
            } => "overloaded",
            Outcome::Status { code, .. } if is_client_status(code) => "invalid_request",
            Outcome::Status { .. } => "server_error",
        })
    }
}

/// A 4xx that is about the request, not the provider's state: 408 (the provider
/// gave up waiting) and 429 (it is busy) are the provider's.
fn is_client_status(code: u16) -> bool {
    (400..500).contains(&code) && code != 408 && code != 429
}

/// The next call to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target<'g> {
    /// the policy's model name
    pub model: &'g str,
    /// the provider's name for the model
    pub model_id: &'g str,
    pub provider: &'g str,
    /// the whole call's timeout: the chain entry's (a failover fallback's
    /// `timeout_ms`), cut to what is left before the request's deadline
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// 1 for the first attempt of the request
    pub attempt: u32,
    /// how long to wait before sending, for a `Retry-After` still running
    pub wait_ms: u64,
    #[serde(skip)]
    slot: usize,
}

/// One finished attempt: what was tried, how it ended, and how long it took from
/// sending (after any wait) to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt<'g> {
    pub target: Target<'g>,
    pub outcome: Outcome,
    pub latency_ms: u64,
}

/// Why a request made no further attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhaustion {
    /// the cap on attempts is reached
    Cap,
    /// no target is left that may be tried (each failed, its provider refused a
    /// connection, or asks to wait too long)
    Chain,
    /// the request's deadline has passed
    Deadline,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended<'g> {
    Served {
        attempt: Attempt<'g>,
    },
    /// the provider's answer is the client's error: returned as is
    ClientError {
        attempt: Attempt<'g>,
    },
    /// no attempt succeeded; `last` is the last failure, if any attempt was made
    Exhausted {
        last: Option<Attempt<'g>>,
        why: Exhaustion,
    },
    /// the stream broke after the client had part of it: report it in-stream
    CutAfterFirstByte {
        attempt: Attempt<'g>,
    },
}

#[derive(Debug, Clone)]
struct Entry<'g> {
    model: &'g str,
    model_id: &'g str,
    provider: &'g str,
    timeout_ms: Option<u64>,
    tried: bool,
}

/// The plan of one request's attempts. Call [`Attempts::next`] for a target, make
/// the call, then [`Attempts::record`] how it ended, until `next` gives `None`;
/// [`Attempts::ended`] then says why.
#[derive(Debug, Clone)]
pub struct Attempts<'g> {
    chain: Vec<Entry<'g>>,
    cap: u32,
    max_wait_ms: u64,
    deadline_ms: Option<u64>,
    /// providers that refused a connection during this request
    refused: Vec<&'g str>,
    /// providers that asked to wait, and until when
    holds: Vec<(&'g str, u64)>,
    /// the target in flight and when it was sent
    pending: Option<(Target<'g>, u64)>,
    history: Vec<Attempt<'g>>,
    ended: Option<Ended<'g>>,
}

impl<'g> Attempts<'g> {
    /// The decision's model, then its fallback chain (each model once), with the
    /// default cap and wait and no deadline.
    pub fn new(decision: &Decision<'g>) -> Attempts<'g> {
        let mut chain: Vec<Entry<'g>> = Vec::with_capacity(decision.fallbacks.len() + 1);
        let first = std::iter::once((decision.model, decision.model_id, decision.provider, None));
        let rest = decision
            .fallbacks
            .iter()
            .map(|f| (f.model, f.model_id, f.provider, f.timeout_ms));
        for (model, model_id, provider, timeout_ms) in first.chain(rest) {
            if chain.iter().all(|e| e.model != model) {
                chain.push(Entry {
                    model,
                    model_id,
                    provider,
                    timeout_ms,
                    tried: false,
                });
            }
        }
        Attempts {
            chain,
            cap: DEFAULT_MAX_ATTEMPTS,
            max_wait_ms: DEFAULT_MAX_WAIT_MS,
            deadline_ms: None,
            refused: Vec::new(),
            holds: Vec::new(),
            pending: None,
            history: Vec::new(),
            ended: None,
        }
    }

    /// At most `cap` attempts (at least one).
    pub fn with_cap(mut self, cap: u32) -> Attempts<'g> {
        self.cap = cap.max(1);
        self
    }

    /// Waits for a `Retry-After` of at most `max_wait_ms`.
    pub fn with_max_wait(mut self, max_wait_ms: u64) -> Attempts<'g> {
        self.max_wait_ms = max_wait_ms;
        self
    }

    /// No attempt starts at or after `deadline_ms`, and none runs past it.
    pub fn with_deadline(mut self, deadline_ms: u64) -> Attempts<'g> {
        self.deadline_ms = Some(deadline_ms);
        self
    }

    /// The next target to call at `now_ms`, or `None` when the request has ended (or
    /// an attempt is still in flight: one at a time).
    pub fn next(&mut self, now_ms: u64) -> Option<Target<'g>> {
        if self.ended.is_some() || self.pending.is_some() {
            return None;
        }
        let why = if self.history.len() >= self.cap as usize {
            Some(Exhaustion::Cap)
        } else if self.deadline_ms.is_some_and(|d| now_ms >= d) {
            Some(Exhaustion::Deadline)
        } else {
            None
        };
        if let Some(why) = why {
            return self.exhaust(why);
        }
        let Some((slot, wait_ms)) = self.pick(now_ms) else {
            return self.exhaust(Exhaustion::Chain);
        };
        let e = &self.chain[slot];
        let start = now_ms.saturating_add(wait_ms);
        let left = self.deadline_ms.map(|d| d.saturating_sub(start));
        let timeout_ms = match (e.timeout_ms, left) {
            (Some(t), Some(l)) => Some(t.min(l)),
            (t, l) => t.or(l),
        };
        let target = Target {
            model: e.model,
            model_id: e.model_id,
            provider: e.provider,
            timeout_ms,
            attempt: self.history.len() as u32 + 1,
            wait_ms,
            slot,
        };
        self.pending = Some((target.clone(), start));
        Some(target)
    }

    /// The untried target to call: the first in chain order that need not wait,
    /// else the one that waits least within the limits; with its wait.
    fn pick(&self, now_ms: u64) -> Option<(usize, u64)> {
        let mut best: Option<(usize, u64)> = None;
        for (slot, e) in self.chain.iter().enumerate() {
            if e.tried || self.refused.contains(&e.provider) {
                continue;
            }
            let until = self
                .holds
                .iter()
                .find(|(p, _)| *p == e.provider)
                .map_or(0, |&(_, until)| until);
            let wait = until.saturating_sub(now_ms);
            if wait == 0 {
                return Some((slot, 0));
            }
            let in_time = wait <= self.max_wait_ms
                && self
                    .deadline_ms
                    .is_none_or(|d| now_ms.saturating_add(wait) < d);
            if in_time && best.is_none_or(|(_, w)| wait < w) {
                best = Some((slot, wait));
            }
        }
        best
    }

    fn exhaust(&mut self, why: Exhaustion) -> Option<Target<'g>> {
        self.ended = Some(Ended::Exhausted {
            last: self.history.last().cloned(),
            why,
        });
        None
    }

    /// Takes how the attempt at `target` ended, at `now_ms`. Returns the finished
    /// attempt (to record with `Gateway::record_attempt`), or `None` when `target` is
    /// not the attempt in flight (nothing changes).
    pub fn record(
        &mut self,
        target: &Target<'g>,
        outcome: Outcome,
        now_ms: u64,
    ) -> Option<&Attempt<'g>> {
        match &self.pending {
            Some((t, _)) if t == target => {}
            _ => return None,
        }
        let (target, started) = self.pending.take()?;
        let slot = target.slot;
        let provider = target.provider;
        self.chain[slot].tried = true;
        let attempt = Attempt {
            target,
            outcome,
            latency_ms: now_ms.saturating_sub(started),
        };
        match outcome.verdict() {
            Verdict::Served => {
                self.ended = Some(Ended::Served {
                    attempt: attempt.clone(),
                })
            }
            Verdict::Client => {
                self.ended = Some(Ended::ClientError {
                    attempt: attempt.clone(),
                })
            }
            Verdict::Cut => {
                self.ended = Some(Ended::CutAfterFirstByte {
                    attempt: attempt.clone(),
                })
            }
            Verdict::FailOver => match outcome {
                Outcome::ConnectError if !self.refused.contains(&provider) => {
                    self.refused.push(provider)
                }
                Outcome::Status {
                    retry_after_ms: Some(ms),
                    ..
                } => {
                    let until = now_ms.saturating_add(ms);
                    match self.holds.iter_mut().find(|(p, _)| *p == provider) {
                        Some(h) => h.1 = h.1.max(until),
                        None => self.holds.push((provider, until)),
                    }
                }
                _ => {}
            },
        }
        self.history.push(attempt);
        self.history.last()
    }

    /// Why the request ended; `None` while it goes on.
    pub fn ended(&self) -> Option<&Ended<'g>> {
        self.ended.as_ref()
    }

    /// Every finished attempt, in order (`x-rulec-attempts` is their count).
    pub fn attempts(&self) -> &[Attempt<'g>] {
        &self.history
    }

    /// The cap on attempts.
    pub fn cap(&self) -> u32 {
        self.cap
    }
}
