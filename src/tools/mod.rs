//! Tools for policy authors, on top of the compiler: `explain`, `test`, `diff`, `bench`.

pub mod bench;
pub mod diff;
pub mod explain;
pub mod settings;
pub mod testing;
