//! rulec: a compiler for declarative LLM routing policies, and the gateway that serves
//! them.
//!
//! The modules in pipeline order; data flows down, each stage owns one thing:
//!
//! - [`source`]: the files read, and byte spans into them.
//! - [`diag`]: diagnostics as data (code, severity, spans, help), the code registry and
//!   the renderers (human, JSON, SARIF); below every stage, depending only on `source`.
//! - [`load`]: stage 1, files → spanned YAML trees (saphyr-parser events).
//! - [`syntax`]: stage 2, the rule language: the pest grammar, the AST, the printer.
//! - [`policy`]: stage 3, the typed policy model, decoded from the trees and merged
//!   across files.
//! - [`check`]: stage 4, names, types, capabilities, numbers and notifications.
//! - [`compile`]: stage 5, classes, boxes and the decision table (and the reference
//!   interpreter it must agree with).
//! - [`lint`]: stage 6, analyses on the table: shadowed, empty and overlapping rules,
//!   uncovered requests, capability reach.
//! - [`graph`]: the policy's graphs (routing, failover, downgrades, notifications),
//!   their checks and drawings.
//! - [`machines`]: the state machines (health, cost windows, failover) as data, and the
//!   pure `step` that runs them.
//! - [`bundle`]: stage 7, the compiled policy as a content-hashed file: format, hash,
//!   verified load.
//! - [`driver`]: the front end (load → … → lint) as one call, for the CLI, the server,
//!   the tests, the fuzz targets and the benchmarks.
//! - [`tools`]: the policy authors' tools (`explain`, `test`, `diff`, `bench`) and the
//!   generated docs of the diagnostic codes.
//! - [`runtime`]: stage 8, a loaded bundle and its live state, clock-free and
//!   synchronous: decisions, reports, pools, budgets, leases, the machines driven by
//!   `step`.
//! - [`ledger`]: the spend ledger in `--state-dir`: every settled cost in an embedded
//!   redb database, committed in batches by one writer thread, and the totals the
//!   budgets are restored from.
//! - [`server`]: stage 9, `rulec serve`: tokio + hyper, the HTTP API, timers, reloads,
//!   drain, persistence.
//! - [`proxy`]: the LLM proxy's ground: the OpenAI and Anthropic wire formats, their
//!   translation both ways, server-sent events and token estimates (pure, no I/O).
//!
//! The command line (`src/cli/`) lives in the binary, not in this library.

pub mod bundle;
pub mod check;
pub mod compile;
pub mod diag;
pub mod driver;
pub mod graph;
pub mod ledger;
pub mod lint;
pub mod load;
pub mod machines;
pub mod policy;
pub mod proxy;
pub mod runtime;
pub mod server;
pub mod source;
pub mod syntax;
pub mod tools;
