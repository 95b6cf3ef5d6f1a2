//! Stage 6: analyses on the compiled table (and, in `graphs`, on the policy's graphs).
//! They run after a successful check, inside `rulec check` and `rulec compile`.

pub mod cover;
pub mod rules;
pub mod windows;
