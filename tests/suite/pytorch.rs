//! PyTorch export and import (issue #27 item 2). Every layer fixture's model is exported
//! (or refused naming its layer); the export reads back into rnnkit with the same
//! predictions; with `$RNNKIT_TORCH_PYTHON` (a python with torch) `tools/pytorch_check.py`
//! loads each export through its own `model.py`, compares the module with rnnkit's float32
//! predictions (1e-5 relative), then redraws the weights in PyTorch and writes its
//! `state_dict()` back, which rnnkit must read and reproduce PyTorch's output from. Without
//! torch the test says it skipped the Python half.

use crate::common::*;
use ndarray::{Array3, ArrayD};
use rnnkit::io::{AnyModel, Format};
use rnnkit::prelude::*;
use serde_json::{Value, json};

fn tensor_json(a: &ArrayD<f32>) -> Value {
    json!({"shape": a.shape(), "data": a.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()})
}

#[test]
fn a_pytorch_export_reads_back_with_the_same_predictions_and_refusals_name_the_layer() {
    let model = Sequential::<f32>::new(&[6, 3])
        .seed(3)
        .push(
            BidirectionalConfig::new(GruConfig::new(4).return_sequences(true))
                .merge_mode(MergeMode::Ave),
        )
        .unwrap()
        .push(LstmConfig::new(5).go_backwards(true))
        .unwrap()
        .push(DenseConfig::new(2).activation(Activation::Softmax))
        .unwrap();
    let dir = std::env::temp_dir().join(format!("rnnkit_pt_{}", std::process::id()));
    model.export(&dir, Format::PyTorch).unwrap();
    assert!(dir.join("model.py").exists());
    let info = FileInfo::read(dir.join("model.safetensors")).unwrap();
    let names: Vec<&str> = info.tensors.iter().map(|(n, _)| n.as_str()).collect();
    for n in [
        "layers.bidirectional.weight_ih_l0",
        "layers.bidirectional.bias_hh_l0_reverse",
        "layers.lstm.weight_hh_l0",
        "layers.dense.weight",
    ] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    // PyTorch's layouts: weight_ih [G·u, F], Linear weight [out, in].
    let shape = |n: &str| &info.tensors.iter().find(|(m, _)| m == n).unwrap().1;
    assert_eq!(shape("layers.bidirectional.weight_ih_l0"), &[12, 3]);
    assert_eq!(shape("layers.dense.weight"), &[2, 5]);
    let back = AnyModel::<f32>::load(&dir).unwrap();
    let x = Array3::from_shape_fn((2, 6, 3), |(i, t, f)| {
        ((i + 2 * t + 3 * f) as f32 * 0.3).sin()
    })
    .into_dyn();
    assert_eq!(
        back.predict(Inputs::new(&x), 8).unwrap(),
        model.predict(Inputs::new(&x), 8).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
    for (cfg, what) in [
        (
            Box::new(GruConfig::new(2).reset_after(false)) as Box<dyn rnnkit::LayerConfig<f32>>,
            "reset_after=false",
        ),
        (
            Box::new(SimpleRnnConfig::new(2).activation(Activation::Sigmoid)),
            "activation sigmoid",
        ),
        (Box::new(LeakyRnnConfig::new(2).leak(0.5)), "LeakyRNN"),
    ] {
        let mut m = Sequential::<f32>::new(&[4, 1]);
        m.add(cfg.as_ref()).unwrap();
        let e = m.to_format(Format::PyTorch).unwrap_err();
        let rnnkit::Error::Unsupported { layer, reason } = e else {
            panic!("{e}")
        };
        assert_eq!(layer, m.layers()[0].name());
        assert!(
            reason.contains("no exact PyTorch form") && reason.contains(what),
            "{reason}"
        );
    }
}

#[test]
fn every_layer_fixture_exports_to_pytorch_and_the_module_agrees() {
    let dir = std::env::temp_dir().join(format!("rnnkit_pt_fixtures_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut exported, mut refused) = (Vec::new(), 0);
    for (name, case) in fixtures("layer") {
        let x: ArrayD<f32> = tensor(&case["input"]);
        let model = build_model::<f32>(&case["model"], x.shape());
        match model.export(dir.join(&name), Format::PyTorch) {
            Ok(()) => {
                let y = model.predict(Inputs::new(&x), 64).unwrap().remove(0);
                let back = AnyModel::<f32>::load(dir.join(&name)).unwrap();
                assert_eq!(
                    back.predict(Inputs::new(&x), 64).unwrap().remove(0),
                    y,
                    "{name}"
                );
                let mut input = tensor_json(&x);
                input["ids"] = json!(case["model"][0]["class_name"] == "Embedding");
                let record = json!({"input": input, "output": tensor_json(&y)});
                std::fs::write(dir.join(format!("{name}.json")), record.to_string()).unwrap();
                exported.push((name, x));
            }
            Err(rnnkit::Error::Unsupported { layer, reason }) => {
                assert!(
                    model.layers().iter().any(|l| l.name() == layer),
                    "{name}: {layer}"
                );
                assert!(reason.contains("no exact PyTorch form"), "{name}: {reason}");
                refused += 1;
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    report(&format!(
        "pytorch export: {} exported, {refused} refused",
        exported.len()
    ));
    if default_fixtures() {
        assert!(exported.len() >= 30, "{} exported", exported.len());
    }
    if !python_check("RNNKIT_TORCH_PYTHON", "pytorch_check.py", &dir, "pytorch") {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    // The import direction: PyTorch's own weights and outputs.
    let mut imported = 0;
    for (name, x) in &exported {
        let record: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.torch.json"))).unwrap(),
        )
        .unwrap();
        let model = AnyModel::<f32>::load(dir.join(name)).unwrap();
        let y = model.predict(Inputs::new(x), 64).unwrap().remove(0);
        close(&y, &tensor::<f32>(&record["output"]), 1e-5, 1e-6)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        imported += 1;
    }
    report(&format!("pytorch import: {imported} passed, 0 failed"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Graph models to PyTorch: every graph fixture exports (several inputs and outputs,
/// initial and returned states, merges, attention, shared layers, masks from Masking and
/// mask_zero) or is refused by name (explicit masks, masked merges), reads back
/// with the same predictions, and (with torch) `model.py`'s `Graph` module agrees and its
/// redrawn weights read back.
#[test]
fn every_graph_fixture_exports_to_pytorch_or_is_refused_by_name_and_the_module_agrees() {
    use rnnkit::model::NodeLayer;
    let dir = std::env::temp_dir().join(format!("rnnkit_pt_graphs_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut exported, mut refused) = (Vec::new(), 0);
    for (name, case) in fixtures("graph") {
        let Ok(model) = crate::graph::build::<f32>(&case) else {
            panic!("{name}: the graph runner builds every case");
        };
        let names: Vec<String> = model.inputs().iter().map(|(n, _)| n.to_string()).collect();
        let xs: Vec<ArrayD<f32>> = names.iter().map(|n| tensor(&case["input"][n])).collect();
        let Ok(rnnkit::model::Architecture::Graph(spec)) = model.architecture() else {
            panic!("{name}: a graph");
        };
        match model.export(dir.join(&name), Format::PyTorch) {
            Ok(()) => {
                let ys = model.predict(Inputs::from(&xs), 64).unwrap();
                let back = AnyModel::<f32>::load(dir.join(&name)).unwrap();
                assert_eq!(back.predict(Inputs::from(&xs), 64).unwrap(), ys, "{name}");
                let inputs: Vec<Value> = xs
                    .iter()
                    .zip(&names)
                    .map(|(x, n)| {
                        let ids = spec.nodes.iter().any(|node| {
                            node.inputs.first() == Some(n)
                                && matches!(
                                    &node.layer,
                                    NodeLayer::New(rnnkit::layers::LayerSpec::Embedding(_))
                                )
                        });
                        let mut t = tensor_json(x);
                        t["ids"] = json!(ids);
                        t
                    })
                    .collect();
                let record = json!({"inputs": inputs, "outputs": ys.iter().map(tensor_json).collect::<Vec<_>>()});
                std::fs::write(dir.join(format!("{name}.json")), record.to_string()).unwrap();
                exported.push((name, xs));
            }
            Err(rnnkit::Error::Unsupported { reason, .. }) => {
                assert!(reason.contains("no exact PyTorch form"), "{name}: {reason}");
                refused += 1;
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    report(&format!(
        "pytorch graph export: {} exported, {refused} refused",
        exported.len()
    ));
    if default_fixtures() {
        assert!(exported.len() >= 10, "{} exported", exported.len());
    }
    if !python_check(
        "RNNKIT_TORCH_PYTHON",
        "pytorch_check.py",
        &dir,
        "pytorch on graphs",
    ) {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    for (name, xs) in &exported {
        let record: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.torch.json"))).unwrap(),
        )
        .unwrap();
        let model = AnyModel::<f32>::load(dir.join(name)).unwrap();
        let ys = model.predict(Inputs::from(xs), 64).unwrap();
        for (y, w) in ys.iter().zip(record["outputs"].as_array().unwrap()) {
            close(y, &tensor::<f32>(w), 1e-5, 1e-6).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    report(&format!(
        "pytorch graph import: {} passed, 0 failed",
        exported.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `io::load_state_dict`: a PyTorch module's own `state_dict` (nn.LSTM, a bidirectional
/// nn.GRU, nn.Linear under the module's attribute names) loads into the rnnkit layers that
/// compute the same, which then reproduce PyTorch's forward (with torch); without torch, a
/// state_dict written here from an export's tensors under other prefixes, and typed errors
/// that leave the model unchanged.
#[test]
fn a_pytorch_state_dict_loads_into_rnnkit_layers() {
    let build = || {
        Sequential::<f32>::new(&[5, 3])
            .seed(8)
            .push(BidirectionalConfig::new(
                GruConfig::new(4).return_sequences(true),
            ))
            .unwrap()
            .push(LstmConfig::new(3))
            .unwrap()
            .push(DenseConfig::new(2))
            .unwrap()
    };
    let dir = std::env::temp_dir().join(format!("rnnkit_sd_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Without torch: the export's tensors renamed as a user's module would hold them.
    let source = build();
    source.export(dir.join("exp"), Format::PyTorch).unwrap();
    let info = FileInfo::read(dir.join("exp/model.safetensors")).unwrap();
    let bytes = std::fs::read(dir.join("exp/model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let renamed: Vec<(String, safetensors::tensor::TensorView<'_>)> = info
        .tensors
        .iter()
        .map(|(n, _)| {
            let new = n
                .replace("layers.bidirectional.", "enc.")
                .replace("layers.lstm.", "dec.")
                .replace("layers.dense.", "head.");
            (new, st.tensor(n).unwrap())
        })
        .collect();
    let sd = dir.join("sd.safetensors");
    safetensors::serialize_to_file(renamed, None, &sd).unwrap();
    let mut target = Sequential::<f32>::new(&[5, 3])
        .seed(99)
        .push(BidirectionalConfig::new(
            GruConfig::new(4).return_sequences(true),
        ))
        .unwrap()
        .push(LstmConfig::new(3))
        .unwrap()
        .push(DenseConfig::new(2))
        .unwrap();
    let modules = [
        ("bidirectional", "enc."),
        ("lstm", "dec."),
        ("dense", "head."),
    ];
    let before = target.get_weights();
    // Typed errors, model untouched: an unknown layer, a wrong prefix.
    for bad in [&[("nope", "enc.")][..], &[("lstm", "missing.")][..]] {
        let e = rnnkit::io::load_state_dict(&mut target, &sd, bad).unwrap_err();
        assert!(matches!(e, rnnkit::Error::File { .. }), "{e}");
        assert_eq!(target.get_weights(), before);
    }
    rnnkit::io::load_state_dict(&mut target, &sd, &modules).unwrap();
    assert_eq!(target.get_weights(), source.get_weights());

    let Ok(python) = std::env::var("RNNKIT_TORCH_PYTHON") else {
        report("pytorch state_dict: skipped PyTorch's own modules (set RNNKIT_TORCH_PYTHON)");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    // PyTorch's own modules and forward.
    let script = r#"
import json, struct, sys, torch
from torch import nn
torch.manual_seed(0)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.GRU(3, 4, batch_first=True, bidirectional=True)
        self.dec = nn.LSTM(8, 3, batch_first=True)
        self.head = nn.Linear(3, 2)
    def forward(self, x):
        y, _ = self.enc(x)
        _, (h, _) = self.dec(y)
        return self.head(h[-1])
net = Net().eval()
for p in net.parameters():
    torch.nn.init.uniform_(p, -0.5, 0.5)
x = torch.linspace(-1, 1, 2 * 5 * 3).reshape(2, 5, 3)
with torch.no_grad():
    y = net(x)
header, blobs, off = {}, [], 0
for k, v in net.state_dict().items():
    b = v.contiguous().numpy().astype("<f4").tobytes()
    header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(header).encode(); h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
json.dump({"x": x.flatten().tolist(), "y": y.flatten().tolist()}, open(sys.argv[2], "w"))
"#;
    let (sd, out) = (dir.join("torch.safetensors"), dir.join("torch.json"));
    let run = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&sd)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let floats = |k: &str| -> Vec<f32> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_f64().unwrap() as f32)
            .collect()
    };
    let x = ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 5, 3]), floats("x")).unwrap();
    rnnkit::io::load_state_dict(&mut target, &sd, &modules).unwrap();
    let y = target.predict(Inputs::new(&x), 8).unwrap().remove(0);
    let want = ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 2]), floats("y")).unwrap();
    close(&y, &want, 1e-5, 1e-6).unwrap();
    report("pytorch state_dict: nn.GRU(bidirectional) + nn.LSTM + nn.Linear reproduced");
    let _ = std::fs::remove_dir_all(&dir);
}
