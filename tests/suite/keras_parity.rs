//! Every `kind: "layer"` Keras fixture: forward output, dL/dx and every weight gradient.
//!
//! Reads `$RNNKIT_FIXTURES` when set (any directory of fixtures in the same schema, searched
//! with its subfolders), else `tests/fixtures`. Closes with `layer: N passed, M failed` (f64)
//! and `layer [f32]: N passed, M failed`.

use crate::common;

use common::*;
use ndarray::ArrayD;
use rnnkit::Float;
use rnnkit::prelude::*;
use serde_json::Value;

/// Runs one layer case; returns what did not match.
fn run_case<F: Float>(case: &Value) -> Result<(), String> {
    let x: ArrayD<F> = tensor(&case["input"]);
    let mut model = build_model::<F>(&case["model"], x.shape());
    let (rtol, atol) = tolerance::<F>();

    let y = model
        .forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .map_err(|e| format!("forward: {e}"))?;
    close(&y, &tensor(&case["output"]), rtol, atol).map_err(|e| format!("output: {e}"))?;

    model.zero_grad();
    let dx = model
        .backward(&[OutputGrads::new(&tensor(&case["upstream"]))])
        .map(|mut d| d.remove(0))
        .map_err(|e| format!("backward: {e}"))?;
    close(&dx, &tensor(&case["grads"]["input"]), rtol, atol).map_err(|e| format!("dL/dx: {e}"))?;

    let expected: Vec<ArrayD<F>> = case["grads"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| weight_list::<F>(g))
        .collect();
    let mut got = Vec::new();
    model.visit_params(&mut |name, p| got.push((name.to_string(), p.grad().clone())));
    if got.len() != expected.len() {
        return Err(format!(
            "{} weight gradients, expected {}",
            got.len(),
            expected.len()
        ));
    }
    for ((name, g), e) in got.iter().zip(&expected) {
        close(g, e, rtol, atol).map_err(|err| format!("d{name}: {err}"))?;
    }
    Ok(())
}

#[test]
fn every_layer_fixture_matches_keras_f64() {
    run_fixtures("layer", "layer", run_case::<f64>);
}

#[test]
fn every_layer_fixture_matches_keras_f32() {
    run_fixtures("layer", "layer [f32]", run_case::<f32>);
}

#[test]
fn seed_worked_example_reproduces_the_lecture() {
    let case = load("seed_worked_example");
    let x: ArrayD<f64> = tensor(&case["input"]);
    let mut model = build_model::<f64>(&case["model"], x.shape());
    // h_t: run the SimpleRNN alone.
    let h = model.layers_mut()[0]
        .forward(Inputs::new(&x).mode(Mode::Infer))
        .map(|o| o.output)
        .unwrap();
    let a1: [f64; 3] = [0.1, 0.0, 0.1]; // a_1 = U x_1 + b, with h_0 = 0
    let h1 = [0.0997, 0.0, 0.0997];
    for j in 0..3 {
        assert!((h[[0, 0, j]] - a1[j].tanh()).abs() < 1e-15);
        assert!(
            (h[[0, 0, j]] - h1[j]).abs() < 5e-5,
            "h_1[{j}] = {}",
            h[[0, 0, j]]
        );
    }
    let y = model
        .forward(Inputs::new(&x).mode(Mode::Infer))
        .map(|mut o| o.remove(0).output)
        .unwrap();
    let textbook = [
        [0.5299, 0.4701],
        [0.5260, 0.4740],
        [0.5246, 0.4754],
        [0.5274, 0.4726],
    ];
    for (t, row) in textbook.iter().enumerate() {
        for (k, &v) in row.iter().enumerate() {
            assert!(
                (y[[0, t, k]] - v).abs() < 5e-5,
                "y'_{}[{k}] = {} vs textbook {v}",
                t + 1,
                y[[0, t, k]]
            );
        }
    }
    close(&h, &tensor(&case["hidden_states"]), 1e-12, 1e-15).unwrap();
    close(&y, &tensor(&case["output"]), 1e-12, 1e-15).unwrap();
}
