//! The model-file loader on arbitrary bytes: it must return `Ok` or `Err`, never panic,
//! abort or allocate without bound.
//!
//! ```text
//! cargo install cargo-fuzz
//! cargo +nightly fuzz run load -- -max_total_time=600
//! ```
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnnkit::io::AnyModel;
use rnnkit::prelude::*;

fuzz_target!(|data: &[u8]| {
    let _ = FileInfo::from_bytes(data);
    if let Ok(model) = AnyModel::<f32>::from_bytes(data) {
        // A model that loads must also save, print and predict (errors allowed, panics not).
        let _ = model.to_bytes();
        let _ = model.summary().to_string();
        let inputs: Vec<rnnkit::ndarray::ArrayD<f32>> = model
            .input_shapes()
            .iter()
            .map(|s| {
                let shape: Vec<usize> = std::iter::once(1)
                    .chain(s.iter().map(|d| d.unwrap_or(2).min(64)))
                    .collect();
                rnnkit::ndarray::ArrayD::zeros(shape)
            })
            .collect();
        if inputs.iter().map(|x| x.len()).sum::<usize>() <= 1 << 16 {
            let _ = model.predict(Inputs::from(&inputs), 1);
        }
    }
    let _ = Sequential::<f64>::from_bytes(data);
});
