//! Fuzzes the whole front end on one file: load (UTF-8, YAML), decode, check, and the
//! three renderers. Any input, valid or not, must produce diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rulec::diag::render;
use rulec::driver;

fuzz_target!(|data: &[u8]| {
    let checked = driver::check_text("fuzz.yaml", data);
    let _ = render::human(&checked.sources, &checked.diagnostics, false);
    let _ = render::json(&checked.sources, &checked.diagnostics);
    let _ = render::sarif(&checked.sources, &checked.diagnostics);
});
