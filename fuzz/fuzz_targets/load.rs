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
        // A model that loads must also save, print and predict (errors allowed, panics not).
        let _ = model.to_bytes();
        let _ = model.summary().to_string();
        let shape: Vec<usize> = std::iter::once(1)
            .chain(model.input_shape().iter().map(|d| d.unwrap_or(2).min(64)))
            .collect();
        if shape.iter().product::<usize>() <= 1 << 16 {
            let _ = model.predict(&ndarray::ArrayD::<f32>::zeros(shape), 1);
        }
    }
    let _ = Sequential::<f64>::from_bytes(data);
});
