//! ONNX export (issue #27, first part). Every layer fixture's model is exported or refused
//! with a typed error naming its layer; the exports run in ONNX Runtime through
//! `tools/onnx_check.py` and must give rnnkit's own float32 predictions to 1e-5 relative.
//! The Python step needs `onnxruntime`: with `$RNNKIT_ONNX_PYTHON` set (CI sets it to a
//! virtual environment's interpreter) it must pass; without it the test says it skipped
//! the runtime. A protobuf reader written here checks the file's structure in any case.

use crate::common::*;
use ndarray::ArrayD;
use rnnkit::io::Format;
use rnnkit::prelude::*;
use serde_json::{Value, json};
use std::path::PathBuf;

/// A protobuf field: its number and its value (varint, or bytes for length-delimited;
/// fixed-width fields are kept as bytes too).
#[derive(Debug)]
enum Field {
    Int(u64),
    Bytes(Vec<u8>),
}

/// Decodes one message's fields (a reader independent of the exporter's writer).
fn decode(mut b: &[u8]) -> Vec<(u32, Field)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let (field, wire) = ((key >> 3) as u32, key & 7);
        let value = match wire {
            0 => Field::Int(varint(&mut b)),
            2 => {
                let n = varint(&mut b) as usize;
                let v = b[..n].to_vec();
                b = &b[n..];
                Field::Bytes(v)
            }
            5 => {
                let v = b[..4].to_vec();
                b = &b[4..];
                Field::Bytes(v)
            }
            w => panic!("wire type {w}"),
        };
        out.push((field, value));
    }
    out
}

fn bytes(fields: &[(u32, Field)], n: u32) -> Vec<&[u8]> {
    fields
        .iter()
        .filter(|(f, _)| *f == n)
        .filter_map(|(_, v)| match v {
            Field::Bytes(b) => Some(b.as_slice()),
            Field::Int(_) => None,
        })
        .collect()
}

fn ints(fields: &[(u32, Field)], n: u32) -> Vec<u64> {
    fields
        .iter()
        .filter(|(f, _)| *f == n)
        .filter_map(|(_, v)| match v {
            Field::Int(i) => Some(*i),
            Field::Bytes(_) => None,
        })
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

#[test]
fn the_written_protobuf_is_an_onnx_model_with_the_lstm_operator() {
    let model = Sequential::<f32>::new(&[5, 3])
        .seed(1)
        .push(LstmConfig::new(4).return_sequences(true))
        .unwrap()
        .push(DenseConfig::new(2).activation(Activation::Softmax))
        .unwrap();
    let file = model.to_format(Format::Onnx).unwrap();
    let m = decode(&file);
    assert_eq!(ints(&m, 1), [8], "ir_version");
    assert_eq!(text(bytes(&m, 2)[0]), "rnnkit");
    let opset = decode(bytes(&m, 8)[0]);
    assert_eq!(ints(&opset, 2), [17]);
    let graph = decode(bytes(&m, 7)[0]);
    let nodes: Vec<_> = bytes(&graph, 1).into_iter().map(decode).collect();
    let ops: Vec<String> = nodes.iter().map(|n| text(bytes(n, 4)[0])).collect();
    assert_eq!(
        ops,
        [
            "Transpose",
            "LSTM",
            "Squeeze",
            "Transpose",
            "MatMul",
            "Add",
            "Softmax",
            "Identity"
        ]
    );
    let lstm = &nodes[1];
    assert_eq!(bytes(lstm, 1).len(), 4, "X, W, R, B");
    assert_eq!(bytes(lstm, 2).len(), 3, "Y, Y_h, Y_c");
    let attrs: Vec<_> = bytes(lstm, 5).into_iter().map(decode).collect();
    let attr = |name: &str| {
        attrs
            .iter()
            .find(|a| text(bytes(a, 1)[0]) == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(ints(attr("hidden_size"), 3), [4]);
    assert_eq!(text(bytes(attr("direction"), 4)[0]), "forward");
    let acts: Vec<String> = bytes(attr("activations"), 9)
        .into_iter()
        .map(text)
        .collect();
    assert_eq!(acts, ["Sigmoid", "Tanh", "Tanh"]);
    // Initializers: W [1, 16, 3] in ONNX's gate order i, o, f, c.
    let inits: Vec<_> = bytes(&graph, 5).into_iter().map(decode).collect();
    let w = inits
        .iter()
        .find(|t| text(bytes(t, 8)[0]).ends_with("/W"))
        .unwrap();
    assert_eq!(ints(w, 1), [1, 16, 3]);
    assert_eq!(ints(w, 2), [1], "FLOAT");
    let raw = bytes(w, 9)[0];
    let at = |i: usize| f32::from_le_bytes(raw[4 * i..4 * i + 4].try_into().unwrap());
    let kernel = &model.get_weights()[0]; // Keras [3, 16]: i, f, c, o
    // ONNX row 4 (gate o, unit 0) is Keras column 12; row 8 (gate f) is column 4.
    for f in 0..3 {
        assert_eq!(at(4 * 3 + f), kernel[[f, 12]]);
        assert_eq!(at(8 * 3 + f), kernel[[f, 4]]);
        assert_eq!(at(12 * 3 + f), kernel[[f, 8]]);
    }
    let input = decode(bytes(&graph, 11)[0]);
    assert_eq!(text(bytes(&input, 1)[0]), "input");
}

fn out_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rnnkit_onnx_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tensor_json(a: &ArrayD<f32>) -> Value {
    json!({"shape": a.shape(), "data": a.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()})
}

#[test]
fn every_layer_fixture_exports_and_onnx_runtime_agrees_or_it_is_refused_by_name() {
    let dir = out_dir();
    let (mut exported, mut refused) = (0, Vec::new());
    let cases = fixtures("layer");
    assert!(!cases.is_empty() || !default_fixtures());
    for (name, case) in &cases {
        let x: ArrayD<f32> = tensor(&case["input"]);
        let model = build_model::<f32>(&case["model"], x.shape());
        match model.to_format(Format::Onnx) {
            Ok(file) => {
                let y = model.predict(Inputs::new(&x), 64).unwrap().remove(0);
                let ids = case["model"][0]["class_name"] == "Embedding";
                let mut input = tensor_json(&x);
                input["ids"] = json!(ids);
                let record = json!({"input": input, "output": tensor_json(&y)});
                std::fs::write(dir.join(format!("{name}.onnx")), file).unwrap();
                std::fs::write(dir.join(format!("{name}.json")), record.to_string()).unwrap();
                exported += 1;
            }
            Err(rnnkit::Error::Unsupported { layer, reason }) => {
                let layers: Vec<String> = model
                    .layers()
                    .iter()
                    .map(|l| l.name().to_string())
                    .collect();
                assert!(layers.contains(&layer), "{name}: refusal names {layer}");
                assert!(reason.contains("no exact ONNX form"), "{name}: {reason}");
                refused.push(format!("{name} ({layer}: {reason})"));
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    report(&format!(
        "onnx export: {exported} exported, {} refused",
        refused.len()
    ));
    for r in &refused {
        report(&format!("  refused {r}"));
    }
    if default_fixtures() {
        // Every Keras layer fixture but the masked ones and LeakyRNN's has an ONNX form.
        assert!(exported >= 40, "{exported} exported");
    }
    python_check("RNNKIT_ONNX_PYTHON", "onnx_check.py", &dir, "onnx runtime");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every graph fixture's functional model: exported (initial states, returned states,
/// merges, attention, shared layers) and run by ONNX Runtime against rnnkit's float32
/// predictions, or refused by name (masks).
#[test]
fn every_graph_fixture_exports_and_onnx_runtime_agrees_or_it_is_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("rnnkit_onnx_graph_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut exported, mut refused) = (0, Vec::new());
    for (name, case) in fixtures("graph") {
        let Ok(model) = crate::graph::build::<f32>(&case) else {
            panic!("{name}: the graph runner builds every case");
        };
        let names: Vec<String> = model.inputs().iter().map(|(n, _)| n.to_string()).collect();
        let xs: Vec<ArrayD<f32>> = names.iter().map(|n| tensor(&case["input"][n])).collect();
        match model.to_format(Format::Onnx) {
            Ok(file) => {
                let ys = model.predict(Inputs::from(&xs), 64).unwrap();
                let ids: Vec<bool> = names
                    .iter()
                    .map(|n| {
                        case["model"]["nodes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|node| {
                                node["inputs"][0] == json!(n) && node["layer"] == "Embedding"
                            })
                    })
                    .collect();
                let inputs: Vec<Value> = xs
                    .iter()
                    .zip(&ids)
                    .map(|(x, &id)| {
                        let mut t = tensor_json(x);
                        t["ids"] = json!(id);
                        t
                    })
                    .collect();
                let record = json!({"inputs": inputs, "outputs": ys.iter().map(tensor_json).collect::<Vec<_>>()});
                std::fs::write(dir.join(format!("{name}.onnx")), file).unwrap();
                std::fs::write(dir.join(format!("{name}.json")), record.to_string()).unwrap();
                exported += 1;
            }
            Err(rnnkit::Error::Unsupported { layer, reason }) => {
                assert!(reason.contains("no exact ONNX form"), "{name}: {reason}");
                refused.push(format!("{name} ({layer}: {reason})"));
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    report(&format!(
        "onnx graph export: {exported} exported, {} refused",
        refused.len()
    ));
    for r in &refused {
        report(&format!("  refused {r}"));
    }
    if default_fixtures() {
        assert!(exported >= 10, "{exported} exported");
    }
    python_check(
        "RNNKIT_ONNX_PYTHON",
        "onnx_check.py",
        &dir,
        "onnx runtime on graphs",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The one-step streaming form (`Format::OnnxStream`): inputs `input` and each layer's
/// states, outputs the step's output and the new states; one step from states carried
/// over earlier steps must give what `Sequential::step` gives (ONNX Runtime where
/// available), and layers with no one-step form are refused by name.
#[test]
fn the_streaming_form_takes_one_step_with_states_in_and_out() {
    let model = Sequential::<f32>::with_input_shape(vec![None, Some(3)])
        .seed(4)
        .push(LstmConfig::new(4).return_sequences(true).stateful(true))
        .unwrap()
        .push(GruConfig::new(3))
        .unwrap()
        .push(DenseConfig::new(2))
        .unwrap();
    let file = model.to_format(Format::OnnxStream).unwrap();
    let graph = decode(bytes(&decode(&file), 7)[0]);
    let names = |field| -> Vec<String> {
        bytes(&graph, field)
            .into_iter()
            .map(|v| text(bytes(&decode(v), 1)[0]))
            .collect()
    };
    assert_eq!(names(11), ["input", "lstm_h", "lstm_c", "gru_h"]);
    assert_eq!(
        names(12),
        ["output", "lstm_h_out", "lstm_c_out", "gru_h_out"]
    );
    // Three steps in rnnkit; the third is the case.
    let mut stream = model.stream_state(2);
    let xt = |t: usize| {
        ndarray::Array2::from_shape_fn((2, 3), |(i, f)| {
            ((1 + i + 2 * t + 3 * f) as f32 * 0.4).sin()
        })
    };
    for t in 0..2 {
        model.step(xt(t).view(), &mut stream).unwrap();
    }
    let before: Vec<ndarray::Array2<f32>> = stream.states().iter().flatten().cloned().collect();
    let y = model.step(xt(2).view(), &mut stream).unwrap().to_owned();
    let after: Vec<ndarray::Array2<f32>> = stream.states().iter().flatten().cloned().collect();
    assert_eq!(before.len(), 3);
    let j = |a: &ndarray::Array2<f32>| tensor_json(&a.clone().into_dyn());
    let mut inputs = vec![j(&xt(2))];
    inputs.extend(before.iter().map(j));
    let mut outputs = vec![j(&y)];
    outputs.extend(after.iter().map(j));
    for (cfg, what) in [
        (
            Box::new(BidirectionalConfig::new(GruConfig::new(2)))
                as Box<dyn rnnkit::LayerConfig<f32>>,
            "Bidirectional",
        ),
        (
            Box::new(LstmConfig::new(2).go_backwards(true)),
            "go_backwards",
        ),
    ] {
        let mut m = Sequential::<f32>::with_input_shape(vec![None, Some(3)]);
        m.add(cfg.as_ref()).unwrap();
        let e = m.to_format(Format::OnnxStream).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    }
    let dir = std::env::temp_dir().join(format!("rnnkit_onnx_stream_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("stream.onnx"), &file).unwrap();
    let record = json!({"inputs": inputs, "outputs": outputs});
    std::fs::write(dir.join("stream.json"), record.to_string()).unwrap();
    python_check(
        "RNNKIT_ONNX_PYTHON",
        "onnx_check.py",
        &dir,
        "onnx runtime on the streaming form",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
