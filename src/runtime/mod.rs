//! Stage 8: the run time. A [`gateway::Gateway`] is one verified bundle plus the live
//! state the server keeps around it: provider health and the compiled machines driven
//! by [`crate::machines::step`], pools (smooth weighted round-robin, session affinity,
//! `max_concurrent`), cost windows, budgets and leases. Everything here is
//! synchronous and clock-free (callers pass the time), so it is tested without HTTP;
//! the server owns sockets, timers and reloads.

pub mod affinity;
pub mod balancer;
pub mod budget;
pub mod gateway;
pub mod leases;
pub mod limits;
pub mod report;
pub mod route;
pub mod stats;
pub mod window;
