//! Hostile input: corrupt files, bad shapes and values, wiring mistakes, random mutations
//! and property tests, one module per file. CI runs this binary twice: optimised (with the
//! other tests) and in the test profile, with overflow checks and debug assertions.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod corruption;
mod esn_io;
mod graph_errors;
mod keras_files;
mod properties;
mod unchanged;
