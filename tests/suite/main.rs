//! The integration tests, one module per file, in one binary: the crate's generic code is
//! instantiated and linked once rather than once per file (separate binaries made the
//! release build of the tests most of CI's time). Kept apart: `tests/alloc.rs` and
//! `tests/stream_alloc.rs` (each installs a counting global allocator), `tests/reference.rs`
//! (it changes the process-wide thread count), and `tests/hostile/` (run again in the
//! debug profile by CI).

#[path = "../common/mod.rs"]
mod common;

mod callbacks;
mod checkpoint;
mod decode;
mod dropout;
mod embedding;
mod errors;
mod esn;
mod examples;
mod files;
mod format_v1;
mod gradcheck;
mod gradient_flow;
mod graph;
mod graph_grads;
mod graph_summary;
mod graph_training;
mod io;
mod keras_files;
mod keras_parity;
mod layer_chains;
mod leaky;
mod masking;
mod onnx;
mod pytorch;
mod regressions;
mod shapes;
mod sharing;
mod state_grads;
mod stateful;
mod time_scales;
mod training;
mod utils;
mod weights_and_schedules;
