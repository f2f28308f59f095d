//! One Keras layer's configuration as rnnkit's `{"layer", "config"}`, with the tensor
//! names its saved weights take.

use super::arch;
use crate::error::FileError;
use serde_json::{Map, Value, json};

pub(super) fn refuse(name: &str, class: &str, what: impl std::fmt::Display) -> FileError {
    arch(format!("layer {name:?} ({class}): {what}"))
}

/// A Keras activation rnnkit has, by name.
fn activation(
    name: &str,
    class: &str,
    c: &Map<String, Value>,
    key: &str,
    dense: bool,
) -> Result<Value, FileError> {
    let a = match c.get(key) {
        None | Some(Value::Null) => {
            return Ok(json!(if key == "activation" && !dense {
                "tanh"
            } else {
                "linear"
            }));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(refuse(
                name,
                class,
                format!("{key} {other} is not a built-in activation"),
            ));
        }
    };
    let known = ["linear", "tanh", "sigmoid", "relu"];
    if known.contains(&a.as_str()) || (dense && a == "softmax") {
        Ok(json!(a))
    } else {
        Err(refuse(
            name,
            class,
            format!(
                "{key} {a:?} is not one rnnkit has ({}{})",
                known.join(", "),
                if dense { ", softmax" } else { "" }
            ),
        ))
    }
}

/// Options whose only value rnnkit takes is "none".
fn none_of(
    name: &str,
    class: &str,
    c: &Map<String, Value>,
    keys: &[&str],
) -> Result<(), FileError> {
    for k in keys {
        if c.get(*k).is_some_and(|v| !v.is_null()) {
            return Err(refuse(name, class, format!("{k} is not supported")));
        }
    }
    Ok(())
}

const REGULARISED: [&str; 7] = [
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
];

/// rnnkit's `{"layer", "config"}` for a Keras recurrent layer; `return_state` is reported
/// apart (a graph node's flag).
fn recurrent(class: &str, c: &Map<String, Value>) -> Result<(Value, bool), FileError> {
    let name = c
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(class)
        .to_string();
    none_of(&name, class, c, &REGULARISED)?;
    let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
    let num = |k: &str| c.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let mut out = json!({
        "name": name,
        "units": c.get("units").cloned().unwrap_or(Value::Null),
        "activation": activation(&name, class, c, "activation", false)?,
        "use_bias": c.get("use_bias").and_then(Value::as_bool).unwrap_or(true),
        "return_sequences": flag("return_sequences"),
        "go_backwards": flag("go_backwards"),
        "zero_output_for_mask": flag("zero_output_for_mask"),
        "stateful": flag("stateful"),
        "dropout": num("dropout"),
        "recurrent_dropout": num("recurrent_dropout"),
    });
    if let Some(s) = c.get("seed").filter(|s| !s.is_null()) {
        out["seed"] = s.clone();
    }
    if class == "LSTM" || class == "GRU" {
        out["recurrent_activation"] = activation(&name, class, c, "recurrent_activation", false)?;
        if c.get("recurrent_activation").is_none() {
            out["recurrent_activation"] = json!("sigmoid");
        }
    }
    if class == "LSTM" {
        out["unit_forget_bias"] = json!(
            c.get("unit_forget_bias")
                .and_then(Value::as_bool)
                .unwrap_or(true)
        );
    }
    if class == "GRU" {
        out["reset_after"] = json!(
            c.get("reset_after")
                .and_then(Value::as_bool)
                .unwrap_or(true)
        );
    }
    Ok((json!({"layer": class, "config": out}), flag("return_state")))
}

/// One Keras layer: rnnkit's spec, the tensor names its weights take (in Keras's order),
/// and whether it returns its states. `None` for an InputLayer.
pub(super) fn layer(l: &Value) -> Result<Option<(Value, Vec<String>, bool)>, FileError> {
    let class = l["class_name"].as_str().unwrap_or_default();
    let empty = Map::new();
    let c = l["config"].as_object().unwrap_or(&empty);
    let name = c
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(class)
        .to_string();
    let names = |ws: &[&str]| ws.iter().map(|w| format!("{name}/{w}")).collect::<Vec<_>>();
    let use_bias = c.get("use_bias").and_then(Value::as_bool).unwrap_or(true);
    let rnn_names = |prefix: &str| {
        let mut v = vec![
            format!("{prefix}kernel"),
            format!("{prefix}recurrent_kernel"),
        ];
        if use_bias {
            v.push(format!("{prefix}bias"));
        }
        v
    };
    let spec = match class {
        "InputLayer" => return Ok(None),
        "TimeDistributed" => {
            // TimeDistributed(Dense) is a Dense applied per step, which rnnkit's Dense is
            // on a sequence; the wrapper's name is kept.
            let inner = &c["layer"];
            let iclass = inner["class_name"].as_str().unwrap_or_default();
            if !["Dense", "Dropout"].contains(&iclass) {
                return Err(refuse(
                    &name,
                    class,
                    format!(
                        "wraps {iclass}; rnnkit reads TimeDistributed(Dense) and TimeDistributed(Dropout)"
                    ),
                ));
            }
            let mut wrapped = inner.clone();
            wrapped["config"]["name"] = json!(name);
            return layer(&wrapped);
        }
        "SimpleRNN" | "LSTM" | "GRU" => {
            let (spec, state) = recurrent(class, c)?;
            return Ok(Some((spec, rnn_names(&format!("{name}/")), state)));
        }
        "Bidirectional" => {
            let inner = &c["layer"];
            let ic = inner["config"].as_object().unwrap_or(&empty);
            let iclass = inner["class_name"].as_str().unwrap_or_default();
            if !["SimpleRNN", "LSTM", "GRU"].contains(&iclass) {
                return Err(refuse(
                    &name,
                    class,
                    format!("wraps {iclass}; rnnkit's Bidirectional wraps SimpleRNN, LSTM or GRU"),
                ));
            }
            let (mut spec, state) = recurrent(iclass, ic)?;
            if let Some(b) = c.get("backward_layer").filter(|b| !b.is_null()) {
                let (bspec, _) = recurrent(
                    b["class_name"].as_str().unwrap_or_default(),
                    b["config"].as_object().unwrap_or(&empty),
                )?;
                for k in ["units", "activation", "use_bias", "return_sequences"] {
                    if bspec["config"][k] != spec["config"][k] {
                        return Err(refuse(
                            &name,
                            class,
                            format!("a backward layer that differs in {k}"),
                        ));
                    }
                }
            }
            let iname = spec["config"]["name"]
                .as_str()
                .unwrap_or(iclass)
                .to_string();
            let iname = iname.strip_prefix("forward_").unwrap_or(&iname).to_string();
            spec["config"]["name"] = json!(iname);
            let merge = c.get("merge_mode").cloned().unwrap_or(json!("concat"));
            let merge = if merge.is_null() {
                json!("none")
            } else {
                merge
            };
            let ub = spec["config"]["use_bias"].as_bool().unwrap_or(true);
            let mut w = Vec::new();
            for side in ["forward", "backward"] {
                let p = format!("{name}/{side}_{iname}/");
                w.extend([format!("{p}kernel"), format!("{p}recurrent_kernel")]);
                if ub {
                    w.push(format!("{p}bias"));
                }
            }
            let spec = json!({"layer": "Bidirectional", "config": {"name": name, "merge_mode": merge, "layer": spec}});
            return Ok(Some((spec, w, state)));
        }
        "Dense" => {
            none_of(&name, class, c, &REGULARISED)?;
            let spec = json!({"layer": "Dense", "config": {"name": name, "units": c.get("units").cloned().unwrap_or(Value::Null),
                "activation": activation(&name, class, c, "activation", true)?, "use_bias": use_bias}});
            (
                spec,
                if use_bias {
                    names(&["kernel", "bias"])
                } else {
                    names(&["kernel"])
                },
            )
        }
        "Embedding" => {
            none_of(
                &name,
                class,
                c,
                &[
                    "embeddings_regularizer",
                    "embeddings_constraint",
                    "activity_regularizer",
                ],
            )?;
            let spec = json!({"layer": "Embedding", "config": {"name": name, "input_dim": c.get("input_dim").cloned().unwrap_or(Value::Null),
                "output_dim": c.get("output_dim").cloned().unwrap_or(Value::Null),
                "mask_zero": c.get("mask_zero").and_then(Value::as_bool).unwrap_or(false)}});
            (spec, names(&["embeddings"]))
        }
        "Masking" => (
            json!({"layer": "Masking", "config": {"name": name, "mask_value": c.get("mask_value").and_then(Value::as_f64).unwrap_or(0.0)}}),
            vec![],
        ),
        "Dropout" => {
            none_of(&name, class, c, &["noise_shape"])?;
            let mut cfg =
                json!({"name": name, "rate": c.get("rate").and_then(Value::as_f64).unwrap_or(0.0)});
            if let Some(s) = c.get("seed").filter(|s| !s.is_null()) {
                cfg["seed"] = s.clone();
            }
            (json!({"layer": "Dropout", "config": cfg}), vec![])
        }
        "RepeatVector" => (
            json!({"layer": class, "config": {"name": name, "n": c.get("n").cloned().unwrap_or(Value::Null)}}),
            vec![],
        ),
        "GlobalAveragePooling1D" => {
            if c.get("data_format")
                .and_then(Value::as_str)
                .is_some_and(|f| f != "channels_last")
            {
                return Err(refuse(&name, class, "data_format other than channels_last"));
            }
            if c.get("keepdims").and_then(Value::as_bool).unwrap_or(false) {
                return Err(refuse(&name, class, "keepdims=True"));
            }
            (json!({"layer": class, "config": {"name": name}}), vec![])
        }
        "Concatenate" => (
            json!({"layer": class, "config": {"name": name, "axis": c.get("axis").cloned().unwrap_or(json!(-1))}}),
            vec![],
        ),
        "Add" | "Multiply" | "Average" => {
            (json!({"layer": class, "config": {"name": name}}), vec![])
        }
        "Attention" | "AdditiveAttention" => {
            if c.get("dropout").and_then(Value::as_f64).unwrap_or(0.0) != 0.0 {
                return Err(refuse(&name, class, "attention dropout is not supported"));
            }
            let use_scale = c
                .get("use_scale")
                .and_then(Value::as_bool)
                .unwrap_or(class == "AdditiveAttention");
            let mut cfg = json!({"name": name, "use_scale": use_scale});
            let mut w = if use_scale { names(&["scale"]) } else { vec![] };
            if class == "Attention" {
                let mode = c.get("score_mode").and_then(Value::as_str).unwrap_or("dot");
                if mode != "dot" && mode != "concat" {
                    return Err(refuse(
                        &name,
                        class,
                        format!("score_mode {mode:?} is not supported"),
                    ));
                }
                cfg["score_mode"] = json!(mode);
                if mode == "concat" {
                    w.push(format!("{name}/concat_score_weight"));
                }
            }
            (json!({"layer": class, "config": cfg}), w)
        }
        other => {
            return Err(refuse(
                &name,
                other,
                format!("rnnkit reads {}", crate::layers::LAYER_TYPES),
            ));
        }
    };
    Ok(Some((spec.0, spec.1, false)))
}
