//! Keras's functional models (`kind: "graph"` fixtures, schema in
//! tests/fixtures/graph/README.md) rebuilt with [`Graph`]: every case's outputs, dL/d(float
//! input) and every weight gradient (shared layers: the sum over calls), in f64 (1e-9
//! relative) and f32 (1e-4); each model also saved and loaded, computing the same.
//!
//! Reads `$RNNKIT_FIXTURES` when set, else `tests/fixtures` (every `kind: "graph"` file
//! below it, subfolders included), and closes with `graph: N passed, M failed` (f64) and
//! `graph [f32]: N passed, M failed`. A directory without graph cases says so and passes.

use crate::common;

use common::*;
use ndarray::ArrayD;
use rnnkit::prelude::*;
use rnnkit::{Tensor, layers::LayerSpec};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The error that stopped a case.
pub(crate) enum Outcome {
    Failed(String),
}

/// `"name"` or `"name:k"`.
fn tensor_ref(tensors: &HashMap<String, Vec<Tensor>>, r: &Value) -> Result<Tensor, Outcome> {
    let r = r.as_str().unwrap();
    let (name, k) = match r.split_once(':') {
        Some((n, k)) => (n, k.parse::<usize>().unwrap()),
        None => (r, 0),
    };
    tensors
        .get(name)
        .and_then(|ts| ts.get(k).copied())
        .ok_or_else(|| Outcome::Failed(format!("unknown tensor {r}")))
}

/// The graph of the case, with the fixture's weights.
pub(crate) fn build<F: Float>(case: &Value) -> Result<Functional<F>, Outcome> {
    let model = &case["model"];
    let fail = |what: &str, e: Error| Outcome::Failed(format!("{what}: {e}"));
    let mut g = Graph::<F>::new(0);
    let mut tensors: HashMap<String, Vec<Tensor>> = HashMap::new();
    let mut inputs = Vec::new();
    for i in model["inputs"].as_array().unwrap() {
        let name = i["name"].as_str().unwrap();
        let shape: Vec<Option<usize>> = i["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().map(|v| v as usize))
            .collect();
        let t = g.input(name, &shape).map_err(|e| fail(name, e))?;
        inputs.push(t);
        tensors.insert(name.to_string(), vec![t]);
    }
    let mut weights: Vec<(String, Vec<ArrayD<F>>)> = Vec::new();
    for entry in model["layers"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap().to_string();
        let ins: Vec<Tensor> = entry["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| tensor_ref(&tensors, r))
            .collect::<Result<_, _>>()?;
        if let Some(owner) = entry.get("shares") {
            let owner = &tensors[owner.as_str().unwrap()][0];
            let layer = g.layer_of(*owner).map_err(|e| fail(&name, e))?;
            let out = g.reuse(layer, ins[0]).map_err(|e| fail(&name, e))?;
            tensors.insert(name, vec![out]);
            continue;
        }
        let kind = entry["layer"].as_str().unwrap();
        let mut config = entry["config"].clone();
        let return_state = config
            .as_object_mut()
            .and_then(|c| c.remove("return_state"))
            .is_some_and(|v| v == json!(true));
        let nested_state = config
            .get_mut("layer")
            .and_then(|l| l.get_mut("config"))
            .and_then(|c| c.as_object_mut())
            .and_then(|c| c.remove("return_state"))
            .is_some_and(|v| v == json!(true));
        let return_state = return_state || nested_state;
        if kind == "Dropout" {
            // The cases run at inference, where Dropout is the identity; a training pass
            // with nothing dropped has the same numbers and gradients.
            config["rate"] = json!(0.0);
        }
        config["name"] = json!(name);
        let spec: LayerSpec = serde_json::from_value(json!({"layer": kind, "config": config}))
            .map_err(|e| Outcome::Failed(format!("{name}: {e}")))?;
        let initial: Vec<Tensor> = match entry.get("initial_state") {
            Some(refs) => refs
                .as_array()
                .unwrap()
                .iter()
                .map(|r| tensor_ref(&tensors, r))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let mask_of = entry
            .get("mask")
            .map(|r| tensor_ref(&tensors, r))
            .transpose()?;
        let outs = if ins.len() > 1 || kind.contains("Attention") {
            // Merges and attention: layers called on a list.
            vec![g.apply_list(&spec, &ins).map_err(|e| fail(&name, e))?]
        } else if return_state || !initial.is_empty() || mask_of.is_some() {
            let mut call = g.rnn(&spec, ins[0]).initial_state(&initial);
            if let Some(m) = mask_of {
                call = call.mask_of(m);
            }
            let o = call.call().map_err(|e| fail(&name, e))?;
            let mut outs = vec![o.out];
            if return_state {
                outs.extend(o.states);
            }
            outs
        } else {
            vec![g.apply(&spec, ins[0]).map_err(|e| fail(&name, e))?]
        };
        tensors.insert(name.clone(), outs);
        if let Some(w) = entry.get("weights") {
            weights.push((name, weight_list::<F>(w)));
        }
    }
    let outputs: Vec<Tensor> = model["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| tensor_ref(&tensors, r))
        .collect::<Result<_, _>>()?;
    let mut m = g.build(&inputs, &outputs).map_err(|e| fail("build", e))?;
    for (name, w) in weights {
        m.layer_mut(&name)
            .ok_or_else(|| Outcome::Failed(format!("no layer {name}")))?
            .set_weights(&w)
            .map_err(|e| fail(&name, e))?;
    }
    Ok(m)
}

fn run<F: Float>(case: &Value) -> Result<(), Outcome> {
    let mut m = build::<F>(case)?;
    let failed = |s: String| Outcome::Failed(s);
    let names: Vec<String> = m.inputs().iter().map(|(n, _)| n.to_string()).collect();
    let xs: Vec<ArrayD<F>> = names.iter().map(|n| tensor(&case["input"][n])).collect();
    let (rtol, atol) = tolerance::<F>();
    let out = m
        .forward(Inputs::from(&xs).mode(Mode::Train))
        .map_err(|e| failed(format!("forward: {e}")))?;
    let want = case["output"].as_array().unwrap();
    for (k, (o, w)) in out.iter().zip(want).enumerate() {
        close(&o.output, &tensor(w), rtol, atol).map_err(|e| failed(format!("output {k}: {e}")))?;
    }
    // Inference through `&self` computes the same.
    let inferred = m
        .infer(Inputs::from(&xs))
        .map_err(|e| failed(format!("infer: {e}")))?;
    for (k, (o, w)) in inferred.iter().zip(want).enumerate() {
        close(&o.output, &tensor(w), rtol, atol).map_err(|e| failed(format!("infer {k}: {e}")))?;
    }
    // Saved and loaded (architecture and weights), the model computes the same.
    let bytes = m.to_bytes().map_err(|e| failed(format!("save: {e}")))?;
    let loaded = Functional::<F>::from_bytes(&bytes).map_err(|e| failed(format!("load: {e}")))?;
    let again = loaded
        .infer(Inputs::from(&xs))
        .map_err(|e| failed(format!("loaded: {e}")))?;
    for (k, (a, o)) in again.iter().zip(&inferred).enumerate() {
        close(&a.output, &o.output, 0.0, 0.0).map_err(|e| failed(format!("loaded {k}: {e}")))?;
    }
    let upstream: Vec<ArrayD<F>> = case["upstream"]
        .as_array()
        .unwrap()
        .iter()
        .map(tensor)
        .collect();
    Module::zero_grad(&mut m);
    let dxs = m
        .backward(&upstream.iter().map(OutputGrads::new).collect::<Vec<_>>())
        .map_err(|e| failed(format!("backward: {e}")))?;
    for (n, dx) in names.iter().zip(&dxs) {
        if let Some(w) = case["grads"]["inputs"].get(n) {
            close(dx, &tensor(w), rtol, atol).map_err(|e| failed(format!("dL/d {n}: {e}")))?;
        }
    }
    let grads = case["grads"]["layers"].as_object().unwrap();
    for (name, w) in grads {
        let want = weight_list::<F>(w);
        let layer = m
            .layer(name)
            .ok_or_else(|| failed(format!("no layer {name}")))?;
        let mut got = Vec::new();
        layer.visit_params(&mut |_, p| got.push(p.grad().clone()));
        if got.len() != want.len() {
            return Err(failed(format!(
                "{name}: {} gradients, expected {}",
                got.len(),
                want.len()
            )));
        }
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            close(g, w, rtol, atol).map_err(|e| failed(format!("{name} gradient {i}: {e}")))?;
        }
    }
    Ok(())
}

#[test]
fn keras_functional_models() {
    let check = |case: &Value| match run::<f64>(case) {
        Ok(()) => Ok(()),
        Err(Outcome::Failed(e)) => Err(e),
    };
    run_fixtures("graph", "graph", check);
    run_fixtures("graph", "graph [f32]", |case| match run::<f32>(case) {
        Ok(()) => Ok(()),
        Err(Outcome::Failed(e)) => Err(e),
    });
}
