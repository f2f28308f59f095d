//! Keras numbers for the layers a straight stack can hold (Embedding, Dropout, RepeatVector,
//! GlobalAveragePooling1D, with masks from Embedding and Masking): every `kind: "graph"`
//! fixture whose model is a chain (one input, each layer reading the one before, no
//! states, shared layers or explicit masks) is rebuilt as a `Sequential` and checked:
//! output, dL/d input, every weight gradient (1e-9 relative in f64).
//!
//! This is not the graph runner (the functional API has not landed); it closes with
//! `sequential chains of graph fixtures: N passed, M failed`.

use crate::common;

use common::*;
use ndarray::ArrayD;
use rnnkit::layers::LayerSpec;
use rnnkit::prelude::*;
use serde_json::{Value, json};

/// The chain's layers in order, if the model is a chain.
fn chain(model: &Value) -> Option<Vec<&Value>> {
    let inputs = model["inputs"].as_array()?;
    if inputs.len() != 1 || model["outputs"].as_array()?.len() != 1 {
        return None;
    }
    let mut prev = inputs[0]["name"].as_str()?;
    let mut layers = Vec::new();
    for l in model["layers"].as_array()? {
        let simple = ["initial_state", "mask", "shares"]
            .iter()
            .all(|k| l.get(*k).is_none());
        let ins = l["inputs"].as_array()?;
        if !simple || ins.len() != 1 || ins[0].as_str()? != prev {
            return None;
        }
        prev = l["name"].as_str()?;
        layers.push(l);
    }
    (model["outputs"][0].as_str()? == prev).then_some(layers)
}

fn run_chain(case: &Value, layers: &[&Value]) -> Result<(), String> {
    let input = &case["model"]["inputs"][0];
    let shape: Vec<Option<usize>> = input["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().map(|v| v as usize))
        .collect();
    let mut m = Sequential::<f64>::with_input_shape(shape);
    let mut weights = Vec::new();
    for l in layers {
        let mut config = l["config"].clone();
        if l["layer"] == "Dropout" {
            // The cases run at inference, where Dropout is the identity; the gradients of a
            // training pass equal them with nothing dropped.
            config["rate"] = json!(0.0);
        }
        let spec: LayerSpec =
            serde_json::from_value(json!({"layer": l["layer"], "config": config}))
                .map_err(|e| format!("{}: {e}", l["name"]))?;
        m.add(&spec).map_err(|e| format!("{}: {e}", l["name"]))?;
        if let Some(w) = l.get("weights") {
            weights.extend(weight_list::<f64>(w));
        }
    }
    m.set_weights(&weights).map_err(|e| e.to_string())?;
    let name = input["name"].as_str().unwrap();
    let x: ArrayD<f64> = tensor(&case["input"][name]);
    let (rtol, atol) = (1e-9, 1e-12);
    let y = m
        .forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)
        .map_err(|e| format!("forward: {e}"))?;
    close(&y, &tensor(&case["output"][0]), rtol, atol).map_err(|e| format!("output: {e}"))?;
    m.zero_grad();
    let dx = m
        .backward(&[OutputGrads::new(&tensor(&case["upstream"][0]))])
        .map(|mut d| d.remove(0))
        .map_err(|e| format!("backward: {e}"))?;
    if let Some(want) = case["grads"]["inputs"].get(name) {
        close(&dx, &tensor(want), rtol, atol).map_err(|e| format!("dL/dx: {e}"))?;
    }
    let want: Vec<ArrayD<f64>> = layers
        .iter()
        .filter_map(|l| case["grads"]["layers"].get(l["name"].as_str().unwrap()))
        .flat_map(weight_list::<f64>)
        .collect();
    let mut got = Vec::new();
    m.visit_params(&mut |_, p| got.push(p.grad().clone()));
    if got.len() != want.len() {
        return Err(format!("{} gradients, expected {}", got.len(), want.len()));
    }
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        close(g, w, rtol, atol).map_err(|e| format!("gradient {i}: {e}"))?;
    }
    // Saved and loaded, the chain computes the same.
    let loaded = Sequential::<f64>::from_bytes(&m.to_bytes().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    close(
        &loaded
            .infer(Inputs::new(&x).mask(None))
            .map(|mut o| o.remove(0))
            .map_err(|e| e.to_string())?
            .output,
        &y,
        0.0,
        0.0,
    )
    .map_err(|e| format!("after save/load: {e}"))
}

#[test]
fn chains_of_keras_graph_fixtures_through_sequential() {
    let cases: Vec<(String, Value)> = fixtures("graph");
    let mut passed = 0;
    let mut failed = Vec::new();
    for (name, case) in &cases {
        let Some(layers) = chain(&case["model"]) else {
            continue;
        };
        match run_chain(case, &layers) {
            Ok(()) => passed += 1,
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    for f in &failed {
        eprintln!("FAILED [chains] {f}");
    }
    report(&format!(
        "sequential chains of graph fixtures: {passed} passed, {} failed",
        failed.len()
    ));
    if std::env::var_os("RNNKIT_FIXTURES").is_none() {
        assert!(
            passed + failed.len() >= 6,
            "the six chain cases of tests/fixtures/graph"
        );
    }
    assert!(failed.is_empty());
}
