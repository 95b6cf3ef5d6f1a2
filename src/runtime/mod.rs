//! The run time: decisions and live state, with no I/O and no clock of its own
//! (callers pass the time), so that the server, the tests and a simulator drive the
//! same code.
//!
//! A [`gateway::Gateway`] is one verified bundle plus the live state around it:
//! - [`ids`]: typed indices (`ModelIx`, `ProviderIx`, `PoolIx`, `RuleIx`, …) and the
//!   vector they index;
//! - [`index`]: the pure index of a bundle (names, a model's provider, the price
//!   ladder, pool members, stand-ins), built once per bundle;
//! - [`live`] and [`carry`]: the live state per provider, pool, cost window and
//!   failover, fresh or carried over from the gateway a reload replaces;
//! - [`events`]: the one place machines change — provider events, closing cost
//!   windows, failover events, `tick`, restoring a [`snapshot`];
//! - [`route`]: a decision, step by step (table → pool → budget → windows →
//!   failover → chain → health → admission), into a [`decision::Decision`];
//! - [`report`]: reported outcomes (leases, passive health, windows, budgets), and
//!   one attempt's outcome through the same path;
//! - [`attempts`]: the failover planner — given a decision and how each attempt
//!   ended, what to try next and why the request ended (for the proxy and a
//!   simulator);
//! - [`call`]: what a proxied call adds to a decision (a model the client named, the
//!   worst case reserved with it; `Gateway::route_call`);
//! - [`reserve`]: a call's worst-case cost held against the budgets before it, settled
//!   to the real cost after;
//! - [`spend`]: the record of settled spending handed to the durable ledger;
//! - the building blocks: [`balancer`] (smooth weighted round-robin), [`affinity`],
//!   [`limits`] (`max_concurrent` slots), [`leases`], [`budget`], [`window`],
//!   [`stats`] (counters), [`shared`] (what outlives every bundle).

pub mod affinity;
pub mod attempts;
pub mod balancer;
pub mod budget;
pub mod call;
pub mod carry;
pub mod decision;
pub mod events;
pub mod gateway;
pub mod ids;
pub mod index;
pub mod leases;
pub mod limits;
pub mod live;
pub mod report;
pub mod reserve;
pub mod route;
pub mod shared;
pub mod snapshot;
pub mod spend;
pub mod stats;
pub mod window;
