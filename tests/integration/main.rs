//! The one integration-test binary; each module is one topic.

mod authoring;
mod authoring_names;
mod cli;
mod common;
mod compile_props;
mod compiler;
mod docs;
mod fixtures;
mod graphs;
mod http;
mod machines;
mod metrics;
mod props;
mod proxy_translate;
mod robustness;
mod runtime_attempts;
mod runtime_budget;
mod runtime_common;
mod runtime_fit;
mod runtime_health;
mod runtime_pools;
mod runtime_reload;
mod runtime_windows;
mod seed;
mod serve_api;
mod serve_live;
