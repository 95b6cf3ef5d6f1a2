//! What a call through the proxy asks of a decision beyond the request's
//! attributes: the model the client named (or `auto`), and the call's worst-case
//! cost, reserved with the decision (`Gateway::route_call` in `route`).

use super::ids::ModelIx;
use super::reserve::WorstCase;

/// A proxied call, as the router sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// the model the client named; `None` for `auto` (the policy decides)
    pub model: Option<ModelIx>,
    /// what bounds the call's cost
    pub worst: WorstCase,
}
