//! Keras models as JSON (configuration + weights): the form of the Keras fixtures and of
//! `tools/keras_export.py --json`.

use super::header::build_checked;
use super::spec::parse_layer_spec;
use super::write::bytes_error;
use crate::error::{FileError, Result};
use crate::float::Float;
use crate::layers::LayerSpec;
use crate::model::ModelSpec;
use crate::model::Sequential;
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

impl<F: Float> Sequential<F> {
    /// Builds a model from Keras-style JSON: a list of layers, each
    /// `{"layer": "LSTM", "config": {...}, "weights": {"kernel": T, "recurrent_kernel": T,
    /// "bias": T}}` (Bidirectional: `{"forward": {...}, "backward": {...}}`), with
    /// `T = {"shape": [..], "data": [..]}` row-major. The document is either
    /// `{"input_shape": [null, 3], "layers": [...]}` (what `tools/keras_export.py --json`
    /// writes) or a Keras fixture `{"model": [...], "input": T, ...}`, whose input gives the
    /// shape.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let json = r#"{"input_shape": [null, 1], "layers": [
    ///   {"layer": "SimpleRNN", "config": {"units": 1},
    ///    "weights": {"kernel": {"shape": [1, 1], "data": [0.5]},
    ///                "recurrent_kernel": {"shape": [1, 1], "data": [0.25]},
    ///                "bias": {"shape": [1], "data": [0.0]}}}]}"#;
    /// let model = Sequential::<f64>::from_keras_json(json)?;
    /// let x = rnnkit::ndarray::Array3::ones((1, 2, 1)).into_dyn();
    /// let y = model.predict(Inputs::new(&x), 32)?.remove(0);
    /// let h1 = 0.5f64.tanh();
    /// assert!((y[[0, 0]] - (0.5 + 0.25 * h1).tanh()).abs() < 1e-15);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) naming the problem: invalid JSON, an unknown
    /// layer type or option, a missing or misshapen weight, a non-finite value.
    pub fn from_keras_json(json: &str) -> Result<Self> {
        keras_json(json).map_err(bytes_error)
    }
}

fn arch(e: impl std::fmt::Display) -> FileError {
    FileError::Architecture(e.to_string())
}

fn keras_json<F: Float>(json: &str) -> std::result::Result<Sequential<F>, FileError> {
    let doc: Value = serde_json::from_str(json).map_err(arch)?;
    let layers = doc
        .get("layers")
        .or_else(|| doc.get("model"))
        .and_then(Value::as_array)
        .ok_or_else(|| arch("expected a `layers` (or fixture `model`) list"))?;
    let input_shape = match (doc.get("input_shape"), doc.get("input")) {
        (Some(s), _) => serde_json::from_value(s.clone()).map_err(arch)?,
        (None, Some(input)) => {
            let shape: Vec<usize> =
                serde_json::from_value(input.get("shape").cloned().unwrap_or_default())
                    .map_err(arch)?;
            shape.iter().skip(1).map(|&d| Some(d)).collect()
        }
        (None, None) => return Err(arch("expected `input_shape` (or a fixture `input`)")),
    };
    let specs = layers
        .iter()
        .map(|l| parse_layer_spec(l.get("layer"), l.get("config")))
        .collect::<std::result::Result<Vec<LayerSpec>, _>>()?;
    let spec = ModelSpec {
        name: doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("sequential")
            .to_string(),
        input_shape,
        layers: specs,
    };
    // The budget: numbers the JSON holds, so a bogus `units` cannot allocate more.
    let budget = layers
        .iter()
        .map(|l| count_numbers(l.get("weights").unwrap_or(&Value::Null)))
        .sum();
    let mut model = build_checked::<F>(&spec, budget)?;
    for (layer, json) in model.layers_mut().iter_mut().zip(layers) {
        let weights = json.get("weights").unwrap_or(&Value::Null);
        let mut err = None;
        let lname = layer.name().to_string();
        layer.visit_params_mut(&mut |name, p| {
            if err.is_some() {
                return;
            }
            // "kernel", or "forward_lstm/kernel" → weights.forward.kernel
            let mut t = weights;
            let mut parts = name.split('/').peekable();
            while let Some(part) = parts.next() {
                let key = if parts.peek().is_some() {
                    part.split('_').next().unwrap_or(part)
                } else {
                    part
                };
                t = t.get(key).unwrap_or(&Value::Null);
            }
            let full = format!("{lname}/{name}");
            match tensor::<F>(t, &full, p.value.shape()) {
                Ok(v) => p.value = v,
                Err(e) => err = Some(e),
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
    }
    Ok(model)
}

/// Numbers in the `data` arrays under `v`.
fn count_numbers(v: &Value) -> usize {
    match v {
        Value::Object(m) => match m.get("data") {
            Some(Value::Array(a)) => a.len(),
            _ => m.values().map(count_numbers).sum(),
        },
        _ => 0,
    }
}

/// A `{"shape", "data"}` tensor, checked against the shape the layer expects.
fn tensor<F: Float>(
    t: &Value,
    name: &str,
    expected: &[usize],
) -> std::result::Result<ArrayD<F>, FileError> {
    if t.is_null() {
        return Err(FileError::MissingTensor(name.into()));
    }
    let bad = |found: String| FileError::Tensor {
        tensor: name.into(),
        expected: format!("shape {expected:?}"),
        found,
    };
    let shape: Vec<usize> = t
        .get("shape")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .ok_or_else(|| bad("no integer `shape` list".into()))?;
    if shape != expected {
        return Err(bad(format!("shape {shape:?}")));
    }
    let data = t
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `data` list".into()))?;
    let n: usize = expected.iter().product();
    if data.len() != n {
        return Err(bad(format!("{} values for {n} elements", data.len())));
    }
    let mut values = Vec::with_capacity(n);
    for (index, d) in data.iter().enumerate() {
        match d.as_f64() {
            Some(v) if v.is_finite() => values.push(F::c(v)),
            _ => {
                return Err(FileError::NonFinite {
                    tensor: name.into(),
                    index,
                    value: d.to_string(),
                });
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(expected), values).map_err(|e| bad(e.to_string()))
}
