//! Stage 3: the typed policy model, decoded from the spanned YAML documents and merged
//! across files.

pub mod decode;
pub mod merge;
pub mod model;
pub mod reader;
pub mod sections;
pub mod service;
pub mod symbols;

pub use model::*;
pub use service::Service;
pub use symbols::Symbols;

use crate::diag::Diagnostic;
use crate::load::Node;

/// Decodes and merges all documents, in order.
pub fn build(docs: &[Node]) -> (Policy, Vec<Diagnostic>) {
    let mut ctx = reader::Ctx::default();
    let mut policy = Policy::default();
    for doc in docs {
        let part = decode::document(&mut ctx, doc);
        merge::merge(&mut policy, part, &mut ctx.diags);
    }
    (policy, ctx.diags)
}
