//! Tools for policy authors, on top of the compiler: `explain`, `test`, `diff`, `bench`,
//! and the documentation of the diagnostic codes (`--explain CODE`, `docs/codes/`).

pub mod bench;
pub mod code_docs;
pub mod diff;
pub mod explain;
pub mod settings;
pub mod testing;
