//! rulec: a compiler for declarative LLM routing policies.
//!
//! The stages run one way: [`load`] (YAML with spans) → [`syntax`] (the rule language)
//! → [`policy`] (the typed policy model) → [`check`] (names, types, capabilities,
//! numbers). Every stage reports [`diag::Diagnostic`]s; only [`diag::render`] formats them.

pub mod bundle;
pub mod check;
pub mod compile;
pub mod diag;
pub mod driver;
pub mod graph;
pub mod lint;
pub mod load;
pub mod machines;
pub mod policy;
pub mod runtime;
pub mod server;
pub mod source;
pub mod syntax;
pub mod tools;
