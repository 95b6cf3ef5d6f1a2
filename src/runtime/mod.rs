//! Stage 8 (in progress): the run-time pieces the server drives, each pure or
//! lock-light and tested on its own: weighted balancing, session affinity, and
//! concurrency limits per pool.

pub mod affinity;
pub mod balancer;
pub mod limits;
