//! Reservations: before a call, its worst-case cost is held against the policy's
//! `max_daily_budget` and `max_cost_per_session` in one step, so that concurrent
//! calls cannot together spend more than a limit leaves; after it, the reservation
//! settles to the real cost and gives back the rest. A reservation dropped without
//! settling (a call abandoned, a task cancelled) gives back all it held.
//!
//! The worst case is the prompt's tokens, bounded by its bytes plus a few per message
//! (no tokenizer makes more tokens than bytes), at the input price, plus the output's
//! `max_tokens` at the output price: a model's `input_cost_per_token` and
//! `output_cost_per_token`, each `cost_per_token` when the policy does not set it
//! ([`Price::of`]).

use std::sync::Arc;

use super::budget::{Caps, Refusal};
use super::decision::RouteError;
use super::gateway::Gateway;
use super::ids::ModelIx;
use super::shared::Shared;
use crate::bundle::spec::ModelSpec;

/// Tokens a chat format adds per message (role, separators) and to prime the reply,
/// rounded up: an upper bound, not an estimate.
pub const TOKENS_PER_MESSAGE: u64 = 8;

/// A model's prices in dollars per token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

impl Price {
    /// The model's input and output prices; either one the policy leaves out is its
    /// `cost_per_token`.
    pub fn of(model: &ModelSpec) -> Price {
        Price {
            input: model.input_cost_per_token.unwrap_or(model.cost_per_token),
            output: model.output_cost_per_token.unwrap_or(model.cost_per_token),
        }
    }
}

/// What bounds a call's cost: the prompt's size and the most output it may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorstCase {
    /// bytes of text in the prompt (every message's content, the system prompt)
    pub prompt_bytes: u64,
    pub messages: u64,
    /// the request's `max_tokens`, or what the proxy caps it to
    pub max_output_tokens: u64,
}

impl WorstCase {
    /// An upper bound on the prompt's tokens.
    pub fn prompt_tokens(&self) -> u64 {
        self.prompt_bytes
            .saturating_add(self.messages.saturating_mul(TOKENS_PER_MESSAGE))
    }

    /// The most the call can cost at `price`, in dollars.
    pub fn cost(&self, price: Price) -> f64 {
        self.prompt_tokens() as f64 * price.input + self.max_output_tokens as f64 * price.output
    }
}

/// Money held for one call. Settle it with the call's real cost, or drop it to give
/// all of it back.
#[derive(Debug)]
pub struct Reservation {
    shared: Arc<Shared>,
    session: Option<String>,
    amount: f64,
    model: ModelIx,
    /// the decision the call belongs to, for the spend log
    decision: Option<String>,
    live: bool,
}

impl Reservation {
    /// The dollars held.
    pub fn amount(&self) -> f64 {
        self.amount
    }

    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// Names the decision the call belongs to, so that its settled cost is logged
    /// against it.
    pub fn for_decision(mut self, id: &str) -> Reservation {
        self.decision = Some(id.to_string());
        self
    }

    pub fn decision(&self) -> Option<&str> {
        self.decision.as_deref()
    }

    /// The model it was made for.
    pub fn model(&self) -> ModelIx {
        self.model
    }

    /// Spends `dollars` (the call's real cost; more than was held is still spent:
    /// the provider billed it) and gives back the hold, in one step.
    pub fn settle(mut self, dollars: f64, wall_ms: u64) {
        self.live = false;
        self.shared
            .budgets
            .settle(self.session.as_deref(), self.amount, dollars, wall_ms);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.live {
            self.shared
                .budgets
                .release(self.session.as_deref(), self.amount);
        }
    }
}

impl Refusal {
    /// The proxy's answer when no model of the price ladder fits: 402
    /// `budget_exceeded`, naming the limit.
    pub fn to_error(&self) -> RouteError {
        let what = match self.limit {
            super::budget::Limit::Daily => "the daily budget".to_string(),
            super::budget::Limit::Session => "the session's budget".to_string(),
        };
        RouteError::new(
            402,
            "budget_exceeded",
            format!(
                "{what} (`{}`: ${}) has ${:.6} left, and this call may cost up to ${:.6}",
                self.limit.field(),
                self.max,
                self.left(),
                self.needed
            ),
        )
        .help("lower `max_tokens`, shorten the prompt, or raise the limit in the policy")
    }
}

impl Gateway {
    /// The limits the policy sets for reservations.
    pub fn caps(&self) -> Caps {
        self.bundle
            .content
            .budgets
            .as_ref()
            .map_or(Caps::default(), |b| Caps {
                daily: b.max_daily_budget,
                session: b.max_cost_per_session,
            })
    }

    /// Holds the worst-case cost of a call to `model` for `session`, at `wall_ms`
    /// (for the budget's day); or says which limit it does not fit and what is left.
    pub fn reserve(
        &self,
        model: ModelIx,
        session: Option<&str>,
        worst: &WorstCase,
        wall_ms: u64,
    ) -> Result<Reservation, Refusal> {
        let amount = worst.cost(Price::of(self.model_spec(model)));
        let amount = self
            .shared
            .budgets
            .hold(session, amount, self.caps(), wall_ms)?;
        Ok(Reservation {
            shared: Arc::clone(&self.shared),
            session: session.map(str::to_string),
            amount,
            model,
            decision: None,
            live: true,
        })
    }
}
