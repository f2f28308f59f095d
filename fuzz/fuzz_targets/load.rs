//! The model-file loader on arbitrary bytes: it must return `Ok` or `Err`, never panic,
//! abort or allocate without bound.
//!
//! ```text
//! cargo install cargo-fuzz
//! cargo +nightly fuzz run load -- -max_total_time=600
//! ```
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnnkit::Sequential;

fuzz_target!(|data: &[u8]| {
    let _ = rnnkit::io::FileInfo::from_bytes(data);
    if let Ok(mut model) = Sequential::<f32>::from_bytes_converted(data) {
        // A model that loads must also run and save.
        let _ = model.to_bytes();
        let _ = model.summary().to_string();
    }
    let _ = Sequential::<f64>::from_bytes(data);
});
