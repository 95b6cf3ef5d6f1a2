//! The one integration-test binary; each module is one topic.

mod authoring;
mod cli;
mod common;
mod compile_props;
mod compiler;
mod docs;
mod fixtures;
mod graphs;
mod http;
mod machines;
mod props;
mod robustness;
mod seed;
mod serve_api;
mod serve_live;
