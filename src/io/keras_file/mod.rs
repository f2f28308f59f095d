//! Keras 3 `.keras` files read in Rust: the archive's `config.json` becomes rnnkit's
//! architecture (a [`ModelSpec`](crate::model::ModelSpec) for a Sequential, a
//! [`GraphSpec`](crate::model::GraphSpec) for a functional model) and its
//! `model.weights.h5` the tensors, in the layout of an rnnkit model file, which the usual
//! loader then checks and builds. HDF5 is read by `hdf5-reader`, a pure-Rust decoder
//! (no libhdf5). Every layer rnnkit has is read with its options, `stateful` and dropout
//! included; an option rnnkit lacks is refused naming the layer and the option.

mod layers;
mod zip;

use layers::{layer, refuse};

pub(crate) use zip::is_zip;

use super::write::Writer;
use crate::error::FileError;
use hdf5_reader::Hdf5File;
use hdf5_reader::group::Group;
use ndarray::ArrayD;
use serde_json::{Value, json};
use std::collections::HashMap;

pub(super) fn arch(e: impl Into<String>) -> FileError {
    FileError::Architecture(e.into())
}

/// A `.keras` archive as the bytes of the equivalent rnnkit model file.
pub(crate) fn to_rnnkit_file(bytes: &[u8]) -> Result<Vec<u8>, FileError> {
    let config: Value = serde_json::from_slice(zip::member(bytes, "config.json")?)
        .map_err(|e| arch(format!("config.json: {e}")))?;
    let h5 = Hdf5File::from_bytes(zip::member(bytes, "model.weights.h5")?)
        .map_err(|e| arch(format!("model.weights.h5: {e}")))?;
    let root = h5
        .root_group()
        .map_err(|e| arch(format!("model.weights.h5: {e}")))?;
    let class = config["class_name"].as_str().unwrap_or_default();
    let body = &config["config"];
    let mut tensors: Vec<(String, ArrayD<f64>, bool)> = Vec::new();
    let (architecture, functional) = match class {
        "Sequential" => (sequential(body, &root, &mut tensors)?, false),
        "Functional" | "Model" => (functional(body, &root, &mut tensors)?, true),
        other => {
            return Err(arch(format!(
                "a Keras {other:?} model; rnnkit reads Sequential and functional models"
            )));
        }
    };
    // Keras's float32 weights stay float32 (an f32 file, exact in either model type).
    if tensors.iter().any(|(_, _, f64_data)| *f64_data) {
        write::<f64>(&architecture, functional, &tensors)
    } else {
        write::<f32>(&architecture, functional, &tensors)
    }
}

/// The rnnkit file of `tensors` in `F`.
fn write<F: crate::float::Float>(
    architecture: &Value,
    functional: bool,
    tensors: &[(String, ArrayD<f64>, bool)],
) -> Result<Vec<u8>, FileError> {
    let mut w = Writer::<F>::new();
    if functional {
        w.meta("model_type", "Functional".into());
    }
    w.meta("architecture", architecture.to_string());
    w.meta("rnnkit_version", "read from a .keras file".into());
    for (name, t, _) in tensors {
        w.tensor(name.clone(), &t.mapv(F::c))
            .map_err(|e| arch(e.to_string()))?;
    }
    w.finish().map_err(|e| arch(e.to_string()))
}

/// The datasets below `g`, in Keras's variable order (`vars/0`, `vars/1`, ...; numbered
/// names compared as numbers).
fn datasets(g: &Group, out: &mut Vec<(ArrayD<f64>, bool)>) -> Result<(), FileError> {
    let (groups, sets) = g.members().map_err(|e| arch(e.to_string()))?;
    let key = |n: &str| (n.parse::<u64>().unwrap_or(u64::MAX), n.to_string());
    let mut sets: Vec<_> = sets.into_iter().collect();
    sets.sort_by_key(|d| key(d.name()));
    for d in sets {
        let (a, wide) = match d.read_array::<f32>() {
            Ok(a) => (a.mapv(f64::from), false),
            Err(_) => (
                d.read_array::<f64>()
                    .map_err(|e| arch(format!("weight {}: {e}", d.name())))?,
                true,
            ),
        };
        out.push((a, wide));
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|g| key(g.name()));
    for g in groups {
        datasets(&g, out)?;
    }
    Ok(())
}

/// The weights Keras saved for layer `name`, in order (Bidirectional: forward, backward).
fn layer_weights(
    root: &Group,
    name: &str,
    bidirectional: bool,
) -> Result<Vec<(ArrayD<f64>, bool)>, FileError> {
    let mut out = Vec::new();
    let Ok(layers) = root.group("layers") else {
        return Ok(out);
    };
    let Ok(g) = layers.group(name) else {
        return Ok(out);
    };
    if bidirectional {
        for side in ["forward_layer", "backward_layer"] {
            let sub = g
                .group(side)
                .map_err(|_| arch(format!("layer {name}: no {side} weights")))?;
            datasets(&sub, &mut out)?;
        }
    } else {
        datasets(&g, &mut out)?;
    }
    Ok(out)
}

/// Keras's `naming.to_snake_case` of a class name (`SimpleRNN` → `simple_rnn`,
/// `GlobalAveragePooling1D` → `global_average_pooling1d`).
fn snake(class: &str) -> String {
    let c: Vec<char> = class
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // `(.)([A-Z][a-z]+)` → `\1_\2`, then `([a-z])([A-Z])` → `\1_\2`.
    let mut a = String::new();
    for i in 0..c.len() {
        if i > 0
            && c[i].is_ascii_uppercase()
            && c.get(i + 1).is_some_and(|n| n.is_ascii_lowercase())
        {
            a.push('_');
        }
        a.push(c[i]);
    }
    let a: Vec<char> = a.chars().collect();
    let mut b = String::new();
    for i in 0..a.len() {
        if i > 0 && a[i].is_ascii_uppercase() && a[i - 1].is_ascii_lowercase() {
            b.push('_');
        }
        b.push(a[i]);
    }
    b.to_lowercase()
}

/// Where Keras saved each layer's weights: `layers/<snake_case class>[_k]`, numbered per
/// class in the order of the model's layers (Keras's `_save_container_state`).
fn h5_names(layers: &[Value]) -> HashMap<String, String> {
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut out = HashMap::new();
    for l in layers {
        let class = l["class_name"].as_str().unwrap_or_default();
        let base = snake(class);
        let n = used
            .entry(base.clone())
            .and_modify(|n| *n += 1)
            .or_insert(0);
        let path = if *n == 0 { base } else { format!("{base}_{n}") };
        if let Some(name) = l["config"]["name"].as_str() {
            out.insert(name.to_string(), path);
        }
    }
    out
}

/// Pairs a layer's tensor names with the weights Keras saved for it.
fn attach(
    root: &Group,
    (name, h5): (&str, &str),
    spec: &Value,
    wanted: Vec<String>,
    tensors: &mut Vec<(String, ArrayD<f64>, bool)>,
) -> Result<(), FileError> {
    let saved = layer_weights(root, h5, spec["layer"] == "Bidirectional")?;
    if saved.len() != wanted.len() {
        return Err(arch(format!(
            "layer {name:?}: {} weights saved, expected {} ({})",
            saved.len(),
            wanted.len(),
            wanted.join(", ")
        )));
    }
    for (n, (a, wide)) in wanted.into_iter().zip(saved) {
        tensors.push((n, a, wide));
    }
    Ok(())
}

fn shape_of(v: &Value) -> Option<Vec<Option<usize>>> {
    let dims = v.as_array()?;
    Some(
        dims.iter()
            .skip(1)
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect(),
    )
}

fn sequential(
    body: &Value,
    root: &Group,
    tensors: &mut Vec<(String, ArrayD<f64>, bool)>,
) -> Result<Value, FileError> {
    let layers = body["layers"]
        .as_array()
        .ok_or_else(|| arch("config.json: no layers"))?;
    let mut input_shape = body.get("build_input_shape").and_then(shape_of);
    let paths = h5_names(layers);
    let mut specs = Vec::new();
    for l in layers {
        if l["class_name"] == "InputLayer" {
            input_shape = l["config"]
                .get("batch_shape")
                .or_else(|| l["config"].get("batch_input_shape"))
                .and_then(shape_of);
        }
        let Some((spec, wanted, state)) = layer(l)? else {
            continue;
        };
        let name = spec["config"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if state {
            return Err(refuse(
                &name,
                spec["layer"].as_str().unwrap_or_default(),
                "return_state=True needs a functional model",
            ));
        }
        let h5 = paths.get(&name).cloned().unwrap_or_default();
        attach(root, (&name, &h5), &spec, wanted, tensors)?;
        specs.push(spec);
    }
    let input_shape = input_shape.ok_or_else(|| {
        arch("a Sequential model without an input shape (build it before saving)")
    })?;
    Ok(
        json!({"name": body.get("name").cloned().unwrap_or(json!("sequential")), "input_shape": input_shape, "layers": specs}),
    )
}

/// `input_layers` / `output_layers`: a list of `[layer, node, tensor]`, or one such triple.
fn refs_list(v: &Value) -> Vec<&Value> {
    match v.as_array() {
        Some(a) if a.first().is_some_and(Value::is_string) => vec![v],
        Some(a) => a.iter().collect(),
        None => Vec::new(),
    }
}

/// A `__keras_tensor__`'s `(layer, node, tensor)`.
fn history(t: &Value) -> Option<(String, u64, u64)> {
    let h = t["config"]["keras_history"].as_array()?;
    Some((
        h.first()?.as_str()?.to_string(),
        h.get(1)?.as_u64()?,
        h.get(2)?.as_u64()?,
    ))
}

/// Keras tensors in `v` (one, or a list), in order.
fn tensors_in(v: &Value) -> Vec<(String, u64, u64)> {
    match v {
        Value::Array(a) => a.iter().flat_map(tensors_in).collect(),
        Value::Object(_) if v["class_name"] == "__keras_tensor__" => {
            history(v).into_iter().collect()
        }
        _ => Vec::new(),
    }
}

fn functional(
    body: &Value,
    root: &Group,
    tensors: &mut Vec<(String, ArrayD<f64>, bool)>,
) -> Result<Value, FileError> {
    let layers = body["layers"]
        .as_array()
        .ok_or_else(|| arch("config.json: no layers"))?;
    let by_name: HashMap<&str, &Value> = layers
        .iter()
        .filter_map(|l| {
            Some((
                l["name"]
                    .as_str()
                    .or_else(|| l["config"]["name"].as_str())?,
                l,
            ))
        })
        .collect();
    let paths = h5_names(layers);
    let mut inputs = Vec::new();
    for i in refs_list(&body["input_layers"]) {
        let name = i.get(0).and_then(Value::as_str).unwrap_or_default();
        let l = by_name
            .get(name)
            .ok_or_else(|| arch(format!("no input layer {name:?}")))?;
        let shape = l["config"]
            .get("batch_shape")
            .or_else(|| l["config"].get("batch_input_shape"))
            .and_then(shape_of)
            .ok_or_else(|| arch(format!("input {name:?} without a shape")))?;
        inputs.push(json!({"name": name, "shape": shape}));
    }
    // Keras records the mask an Embedding(mask_zero) makes as a `NotEqual(ids, 0)`
    // operation: each, by (name, node), with the ids it reads.
    let mut not_equal: HashMap<(String, u64), (String, u64, u64)> = HashMap::new();
    for l in layers.iter().filter(|l| l["class_name"] == "NotEqual") {
        let lname = l["name"].as_str().unwrap_or_default();
        for (k, node) in l["inbound_nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let args = node["args"].as_array().cloned().unwrap_or_default();
            match (
                args.first().and_then(history),
                args.get(1).and_then(Value::as_f64),
            ) {
                (Some(ids), Some(0.0)) => {
                    not_equal.insert((lname.to_string(), k as u64), ids);
                }
                _ => {
                    return Err(refuse(
                        lname,
                        "NotEqual",
                        "an operation rnnkit does not read",
                    ));
                }
            }
        }
    }
    // The Embedding(mask_zero) call reading each ids tensor: its mask is that NotEqual.
    let mut mask_owner: HashMap<(String, u64, u64), (String, u64, u64)> = HashMap::new();
    for l in layers
        .iter()
        .filter(|l| l["class_name"] == "Embedding" && l["config"]["mask_zero"] == true)
    {
        let lname = l["name"].as_str().unwrap_or_default();
        for (k, node) in l["inbound_nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(ids) = tensors_in(&node["args"]).first() {
                mask_owner.insert(ids.clone(), (lname.to_string(), k as u64, 0));
            }
        }
    }
    // A call's mask argument as the tensor whose mask it is.
    let mask_of = |m: &Value| -> Option<(String, u64, u64)> {
        let (l, n, _) = tensors_in(m).into_iter().next()?;
        mask_owner.get(not_equal.get(&(l, n))?).cloned()
    };
    // Every call: (layer, node index, its inbound node).
    let mut calls: Vec<(&Value, usize, &Value)> = Vec::new();
    for l in layers {
        if l["class_name"] == "InputLayer" || l["class_name"] == "NotEqual" {
            continue;
        }
        for (k, node) in l["inbound_nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            calls.push((l, k, node));
        }
    }
    let input_names: Vec<String> = inputs
        .iter()
        .filter_map(|i| i["name"].as_str().map(str::to_string))
        .collect();
    let mut node_name: HashMap<(String, u64), String> = input_names
        .iter()
        .map(|n| ((n.clone(), 0), n.clone()))
        .collect();
    let reference = |names: &HashMap<(String, u64), String>, (l, n, t): &(String, u64, u64)| {
        names.get(&(l.clone(), *n)).map(|base| {
            if *t == 0 {
                base.clone()
            } else {
                format!("{base}:{t}")
            }
        })
    };
    let mut nodes = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut pending = calls;
    while !pending.is_empty() {
        let before = pending.len();
        let mut later = Vec::new();
        for (l, k, node) in pending {
            let args = tensors_in(&node["args"]);
            let kwargs = node["kwargs"].as_object().cloned().unwrap_or_default();
            let initial = kwargs
                .get("initial_state")
                .map(tensors_in)
                .unwrap_or_default();
            let explicit = kwargs.get("mask").filter(|m| !m.is_null());
            let mask = explicit.map(&mask_of);
            let ready = args
                .iter()
                .chain(&initial)
                .chain(mask.iter().flatten())
                .all(|h| reference(&node_name, h).is_some());
            if !ready {
                later.push((l, k, node));
                continue;
            }
            let lname = l["name"]
                .as_str()
                .or_else(|| l["config"]["name"].as_str())
                .unwrap_or_default()
                .to_string();
            let class = l["class_name"].as_str().unwrap_or_default();
            for key in kwargs.keys() {
                if !["initial_state", "mask", "training"].contains(&key.as_str()) {
                    return Err(refuse(
                        &lname,
                        class,
                        format!("call argument {key:?} is not supported"),
                    ));
                }
            }
            if let Some(None) = mask {
                return Err(refuse(
                    &lname,
                    class,
                    "a mask argument that is not an Embedding's (mask_zero)",
                ));
            }
            let first = !seen.contains_key(&lname);
            let name = if first {
                lname.clone()
            } else {
                format!("{lname}_call{k}")
            };
            let mut entry = json!({
                "name": name,
                "inputs": args.iter().map(|h| reference(&node_name, h)).collect::<Option<Vec<_>>>(),
            });
            if !initial.is_empty() {
                entry["initial_state"] = json!(
                    initial
                        .iter()
                        .map(|h| reference(&node_name, h))
                        .collect::<Option<Vec<_>>>()
                );
            }
            // The mask Keras passed: the one the input carries, which rnnkit propagates
            // itself, except for a recurrent layer called with initial states (Keras
            // passes it only when asked): there it becomes rnnkit's explicit mask, the
            // Embedding output it belongs to.
            let recurrent = ["SimpleRNN", "LSTM", "GRU", "Bidirectional"].contains(&class);
            if let Some(Some(m)) = &mask
                && recurrent
                && !initial.is_empty()
            {
                entry["mask"] = json!(reference(&node_name, m));
            }
            let (spec, wanted, state) =
                layer(l)?.ok_or_else(|| arch(format!("layer {lname:?} is an input")))?;
            if state || !initial.is_empty() {
                entry["return_state"] = json!(true);
            }
            if first {
                let h5 = paths.get(&lname).cloned().unwrap_or_default();
                attach(root, (&lname, &h5), &spec, wanted, tensors)?;
                entry["layer"] = spec["layer"].clone();
                entry["config"] = spec["config"].clone();
                seen.insert(lname.clone(), name.clone());
            } else {
                entry["shares"] = json!(seen[&lname]);
            }
            node_name.insert((lname, k as u64), name);
            nodes.push(entry);
        }
        if later.len() == before {
            return Err(arch("the functional graph reads a tensor no layer makes"));
        }
        pending = later;
    }
    let outputs = refs_list(&body["output_layers"])
        .into_iter()
        .map(|o| {
            let h = (
                o.get(0)?.as_str()?.to_string(),
                o.get(1)?.as_u64()?,
                o.get(2)?.as_u64()?,
            );
            reference(&node_name, &h)
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| arch("an output no layer makes"))?;
    Ok(
        json!({"name": body.get("name").cloned().unwrap_or(json!("functional")), "inputs": inputs, "nodes": nodes, "outputs": outputs}),
    )
}
