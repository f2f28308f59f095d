//! Model files written by rnnkit 0.1 (format version 1, before configs moved into the
//! layers) still load and predict the same numbers. `tests/data/format_v1_*` were written by
//! `regenerate_format_v1_files` at commit 0f3f4fd; they are never rewritten.

use crate::common;

use common::close;
use ndarray::{Array3, ArrayD};
use rnnkit::prelude::*;
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Every layer type and option the format had: masking, a Bidirectional LSTM without
/// unit_forget_bias, a GRU with reset_after false and relu, a SimpleRNN without bias,
/// a softmax Dense, explicit and default names.
fn model() -> Sequential<f64> {
    Sequential::<f64>::new(&[5, 3])
        .seed(7)
        .push(MaskingConfig::new(0.0))
        .unwrap()
        .push(
            BidirectionalConfig::new(
                LstmConfig::new(4)
                    .unit_forget_bias(false)
                    .return_sequences(true),
            )
            .merge_mode(MergeMode::Sum)
            .name("encoder"),
        )
        .unwrap()
        .push(
            GruConfig::new(3)
                .reset_after(false)
                .activation(Activation::Relu)
                .return_sequences(true)
                .go_backwards(true),
        )
        .unwrap()
        .push(
            SimpleRnnConfig::new(3)
                .use_bias(false)
                .zero_output_for_mask(true),
        )
        .unwrap()
        .push(DenseConfig::new(2).activation(Activation::Softmax))
        .unwrap()
}

fn input() -> ArrayD<f64> {
    let mut x = Array3::from_shape_fn((3, 5, 3), |(b, t, f)| {
        ((b * 15 + t * 3 + f) as f64 * 0.37).sin()
    });
    x.slice_mut(ndarray::s![1, 3.., ..]).fill(0.0);
    x.into_dyn()
}

#[test]
#[ignore = "writes the frozen files; run only to recreate them on purpose"]
fn regenerate_format_v1_files() {
    let m = model();
    m.save(data("format_v1_model.safetensors")).unwrap();
    let y = m
        .predict(Inputs::new(&input()), 8)
        .map(|mut p| p.remove(0))
        .unwrap();
    let json = serde_json::json!({"shape": y.shape(), "data": y.iter().collect::<Vec<_>>()});
    std::fs::write(data("format_v1_predictions.json"), json.to_string()).unwrap();
}

#[test]
fn a_format_v1_file_still_loads_and_predicts_the_same() {
    let m = Sequential::<f64>::load(data("format_v1_model.safetensors")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("format_v1_predictions.json")).unwrap())
            .unwrap();
    let y = m
        .predict(Inputs::new(&input()), 8)
        .map(|mut p| p.remove(0))
        .unwrap();
    // The same numbers to a few ulp: the files are unchanged, but since the f64 gate
    // activations became vectorised (accurate to 1e-15 relative, `src/fast64.rs`) the
    // predictions are no longer bit-identical to those of libm's tanh and exp.
    close(&y, &common::tensor(&expected), 1e-14, 1e-16).unwrap();
    // Bit for bit what the same model built by today's code predicts: the file gives back
    // exactly its weights and architecture.
    assert_eq!(
        y,
        model()
            .predict(Inputs::new(&input()), 8)
            .map(|mut p| p.remove(0))
            .unwrap()
    );
    assert_eq!(m.summary().to_string(), model().summary().to_string());
    // Saving again writes the same architecture.
    let again = rnnkit::io::FileInfo::from_bytes(&m.to_bytes().unwrap()).unwrap();
    let frozen = rnnkit::io::FileInfo::read(data("format_v1_model.safetensors")).unwrap();
    assert_eq!(again.architecture, frozen.architecture);
    assert_eq!(again.tensors, frozen.tensors);
}
