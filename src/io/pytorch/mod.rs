//! PyTorch export and import of Sequential and graph models.
//!
//! An export is a directory with `model.safetensors`, the weights under PyTorch's own
//! names and layouts (`layers.<name>.weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`,
//! `bias_hh_l0`, `_reverse` for a Bidirectional's backward direction, gate orders
//! `i, f, g, o` (LSTM) and `r, z, n` (GRU); `layers.<name>.weight` / `bias` for `nn.Linear`
//! and `nn.Embedding`; `layers.<name>.scale` for attention) with rnnkit's architecture in
//! its metadata, and `model.py`, whose `load(dir)` returns an `nn.Module` in eval mode
//! giving rnnkit's predictions (a graph model takes one tensor per input, in order, and
//! returns several outputs as a tuple).
//!
//! Only what PyTorch's layers compute exactly is exported: SimpleRNN with tanh or relu,
//! LSTM and GRU with tanh and sigmoid, GRU with `reset_after=True` (PyTorch's form), Dense
//! with linear, tanh, sigmoid, relu or softmax, Embedding, Bidirectional (concat, sum, mul,
//! ave), `go_backwards`, Dropout, RepeatVector, GlobalAveragePooling1D, and in graph models
//! initial and returned states, the merges, Attention and AdditiveAttention. The rest
//! (LeakyRNN, explicit masks, masked inputs to merges or attention, a backwards layer
//! meeting a mask) is refused naming the layer and the option. Masks from `Masking` and
//! `mask_zero` travel as valid-step counts into `pack_padded_sequence` (exact for
//! post-padded sequences). A stateful layer exports
//! as the function of one call from zero states (PyTorch's default `h0`).
//!
//! Import reads such a directory back (`AnyModel::load(dir)`), Keras's single recurrent
//! bias being PyTorch's two summed (exact for the function).

use super::write::Writer;
use crate::error::{Error, FileError, Result};
use crate::float::Float;
use crate::layers::{BidirectionalSpec, LayerSpec, MergeMode};
use crate::model::{Architecture, Functional, GraphSpec, Model, ModelSpec, NodeLayer, Sequential};
use ndarray::{Array2, ArrayD, Axis, Ix2, IxDyn};
use std::collections::HashMap;

/// The `model.py` written beside `model.safetensors`.
pub(crate) const MODEL_PY: &str = include_str!("model.py");

fn refuse(layer: &str, reason: impl Into<String>) -> Error {
    Error::Unsupported {
        layer: layer.to_string(),
        reason: format!("no exact PyTorch form: {}", reason.into()),
    }
}

/// A recurrent layer's PyTorch facts: its kind and Keras's gate block per PyTorch gate.
struct Rnn {
    units: usize,
    perm: &'static [usize],
    use_bias: bool,
}

/// Checks that PyTorch's layer computes exactly what `spec` does.
fn rnn_of(name: &str, spec: &LayerSpec) -> Result<Rnn> {
    use crate::activation::Activation::{Relu, Sigmoid, Tanh};
    let (units, use_bias, perm): (usize, bool, &'static [usize]) = match spec {
        LayerSpec::SimpleRnn(c) => {
            if !matches!(c.activation, Tanh | Relu) {
                return Err(refuse(
                    name,
                    format!(
                        "SimpleRNN activation {} (nn.RNN takes tanh or relu)",
                        c.activation
                    ),
                ));
            }
            (c.units, c.use_bias, &[0])
        }
        LayerSpec::Lstm(c) => {
            if c.activation != Tanh || c.recurrent_activation != Sigmoid {
                return Err(refuse(name, "LSTM activations other than tanh and sigmoid"));
            }
            (c.units, c.use_bias, &[0, 1, 2, 3])
        }
        LayerSpec::Gru(c) => {
            if !c.reset_after {
                return Err(refuse(
                    name,
                    "GRU with reset_after=false (nn.GRU applies the reset after the product)",
                ));
            }
            if c.activation != Tanh || c.recurrent_activation != Sigmoid {
                return Err(refuse(name, "GRU activations other than tanh and sigmoid"));
            }
            (c.units, c.use_bias, &[1, 0, 2])
        }
        LayerSpec::LeakyRnn(_) => return Err(refuse(name, "LeakyRNN has no PyTorch layer")),
        _ => unreachable!("recurrent specs only"),
    };
    Ok(Rnn {
        units,
        perm,
        use_bias,
    })
}

fn two<F: Float>(a: &ArrayD<F>) -> Array2<f32> {
    a.view()
        .into_dimensionality::<Ix2>()
        .map(|v| v.mapv(|x| x.to_f32().unwrap_or(f32::NAN)))
        .unwrap_or_else(|_| Array2::zeros((0, 0)))
}

/// Keras `[F, G·u]` → PyTorch `[G·u, F]` with PyTorch's gate order.
fn to_torch(m: &Array2<f32>, perm: &[usize], u: usize) -> ArrayD<f32> {
    let blocks: Vec<_> = perm
        .iter()
        .map(|&k| m.slice(ndarray::s![.., k * u..(k + 1) * u]).t().to_owned())
        .collect();
    let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
    ndarray::concatenate(Axis(0), &views)
        .expect("same widths")
        .into_dyn()
}

/// PyTorch `[G·u, F]` → Keras `[F, G·u]`.
fn from_torch(m: &Array2<f32>, perm: &[usize], u: usize) -> Array2<f32> {
    let mut out = Array2::zeros((m.ncols(), m.nrows()));
    for (t, &k) in perm.iter().enumerate() {
        out.slice_mut(ndarray::s![.., k * u..(k + 1) * u])
            .assign(&m.slice(ndarray::s![t * u..(t + 1) * u, ..]).t());
    }
    out
}

fn reorder(v: &[f32], perm: &[usize], u: usize) -> Vec<f32> {
    perm.iter()
        .flat_map(|&k| v[k * u..(k + 1) * u].iter().copied())
        .collect()
}

fn unorder(v: &[f32], perm: &[usize], u: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for (t, &k) in perm.iter().enumerate() {
        out[k * u..(k + 1) * u].copy_from_slice(&v[t * u..(t + 1) * u]);
    }
    out
}

fn vec1(v: Vec<f32>) -> ArrayD<f32> {
    let n = v.len();
    ArrayD::from_shape_vec(IxDyn(&[n]), v).expect("1-D")
}

/// One direction's tensors under PyTorch's names.
fn rnn_tensors<F: Float>(
    rnn: &Rnn,
    w: &HashMap<String, ArrayD<F>>,
    prefix: &str,
    torch: &str,
    out: &mut Vec<(String, ArrayD<f32>)>,
) {
    let g = rnn.perm.len();
    let u = rnn.units;
    let get = |n: &str| w.get(&format!("{prefix}{n}"));
    if let (Some(k), Some(r)) = (get("kernel"), get("recurrent_kernel")) {
        out.push((
            format!("{torch}weight_ih_l0"),
            to_torch(&two(k), rnn.perm, u),
        ));
        out.push((
            format!("{torch}weight_hh_l0"),
            to_torch(&two(r), rnn.perm, u),
        ));
    }
    if let Some(b) = get("bias") {
        let flat: Vec<f32> = b.iter().map(|v| v.to_f32().unwrap_or(f32::NAN)).collect();
        let (bi, bh) = if b.ndim() == 2 {
            (flat[..g * u].to_vec(), flat[g * u..].to_vec())
        } else {
            (flat, vec![0.0; g * u])
        };
        out.push((
            format!("{torch}bias_ih_l0"),
            vec1(reorder(&bi, rnn.perm, u)),
        ));
        out.push((
            format!("{torch}bias_hh_l0"),
            vec1(reorder(&bh, rnn.perm, u)),
        ));
    }
}

/// One layer's tensors under PyTorch's names (`layers.<name>.`), or a refusal.
fn export_layer<F: Float>(
    name: &str,
    ls: &LayerSpec,
    w: &HashMap<String, ArrayD<F>>,
    tensors: &mut Vec<(String, ArrayD<f32>)>,
) -> Result<()> {
    let name = name.to_string();
    let torch = format!("layers.{name}.");
    let scalar = |k: &str| w.get(k).map(|a| a.mapv(|v| v.to_f32().unwrap_or(f32::NAN)));
    match ls {
        LayerSpec::SimpleRnn(_)
        | LayerSpec::Lstm(_)
        | LayerSpec::Gru(_)
        | LayerSpec::LeakyRnn(_) => {
            let rnn = rnn_of(&name, ls)?;
            rnn_tensors(&rnn, w, "", &torch, tensors);
        }
        LayerSpec::Bidirectional(b) => {
            let (inner, merge) = inner_of(b);
            if merge == MergeMode::None {
                return Err(refuse(&name, "Bidirectional merge_mode None (two outputs)"));
            }
            if inner_go_backwards(&inner) {
                return Err(refuse(&name, "an inner layer with go_backwards"));
            }
            let rnn = rnn_of(&name, &inner)?;
            let prefix = |side: &str| {
                w.keys()
                    .find(|k| k.starts_with(side))
                    .and_then(|k| k.split_once('/'))
                    .map(|(p, _)| format!("{p}/"))
                    .unwrap_or_default()
            };
            let mut fw = Vec::new();
            rnn_tensors(&rnn, w, &prefix("forward"), &torch, &mut fw);
            let mut bw = Vec::new();
            rnn_tensors(&rnn, w, &prefix("backward"), &torch, &mut bw);
            tensors.extend(fw);
            tensors.extend(bw.into_iter().map(|(n, t)| (format!("{n}_reverse"), t)));
        }
        LayerSpec::Dense(_) => {
            let k = two(&w["kernel"]);
            tensors.push((format!("{torch}weight"), k.t().to_owned().into_dyn()));
            if let Some(b) = w.get("bias") {
                tensors.push((
                    format!("{torch}bias"),
                    b.mapv(|v| v.to_f32().unwrap_or(f32::NAN)),
                ));
            }
        }
        LayerSpec::Embedding(_) => {
            tensors.push((
                format!("{torch}weight"),
                w["embeddings"].mapv(|v| v.to_f32().unwrap_or(f32::NAN)),
            ));
        }
        LayerSpec::Attention(_) | LayerSpec::AdditiveAttention(_) => {
            for k in ["scale", "concat_score_weight"] {
                if let Some(a) = scalar(k) {
                    tensors.push((format!("{torch}{k}"), a));
                }
            }
        }
        LayerSpec::Concatenate(_)
        | LayerSpec::Add(_)
        | LayerSpec::Multiply(_)
        | LayerSpec::Average(_)
        | LayerSpec::Dropout(_)
        | LayerSpec::RepeatVector(_)
        | LayerSpec::Masking(_)
        | LayerSpec::GlobalAveragePooling1D(_) => {}
    }
    Ok(())
}

/// The export's `model.safetensors` bytes: a Sequential model.
pub(crate) fn export<F: Float>(model: &Sequential<F>) -> Result<Vec<u8>> {
    let spec = model.spec()?;
    let mut tensors: Vec<(String, ArrayD<f32>)> = Vec::new();
    let mut masked = false;
    for (layer, ls) in model.layers().iter().zip(&spec.layers) {
        if matches!(
            ls,
            LayerSpec::Attention(_) | LayerSpec::AdditiveAttention(_)
        ) {
            return Err(refuse(layer.name(), "attention in a Sequential"));
        }
        masked = mask_flow(layer.name(), ls, masked, false)?;
        export_layer(layer.name(), ls, &weights(layer.as_ref()), &mut tensors)?;
    }
    let arch = serde_json::to_string(&spec).map_err(|e| Error::Data(e.to_string()))?;
    finish(arch, None, tensors)
}

/// The export's `model.safetensors` bytes: a graph model (no masks).
pub(crate) fn export_graph<F: Float>(model: &Functional<F>) -> Result<Vec<u8>> {
    let Architecture::Graph(spec) = model.architecture()? else {
        return Err(refuse("model", "not a graph model"));
    };
    let mut tensors: Vec<(String, ArrayD<f32>)> = Vec::new();
    let mut masked: HashMap<String, bool> = HashMap::new();
    let mut specs: HashMap<String, LayerSpec> = HashMap::new();
    for node in &spec.nodes {
        if node.mask.is_some() {
            return Err(refuse(
                &node.name,
                "an explicit mask (the export reads masks from Masking and mask_zero)",
            ));
        }
        let ls = match &node.layer {
            NodeLayer::New(ls) => ls.clone(),
            NodeLayer::Shares(o) => specs
                .get(o)
                .cloned()
                .ok_or_else(|| refuse(&node.name, "shares an unknown layer"))?,
        };
        let ins: Vec<bool> = node
            .inputs
            .iter()
            .map(|r| masked.get(r).copied().unwrap_or(false))
            .collect();
        let list = ls.takes_list();
        if list && ins.iter().any(|&m| m) {
            return Err(refuse(
                &node.name,
                format!("a masked input to {}", ls.type_name()),
            ));
        }
        let into = ins.first().copied().unwrap_or(false);
        let out = mask_flow(&node.name, &ls, into, !node.initial_state.is_empty())?;
        masked.insert(node.name.clone(), out);
        specs.insert(node.name.clone(), ls);
        if let NodeLayer::New(ls) = &node.layer {
            let layer = model
                .layer(node.name.as_str())
                .ok_or_else(|| refuse(&node.name, "no such layer"))?;
            export_layer(&node.name, ls, &weights(layer), &mut tensors)?;
        }
    }
    let arch = serde_json::to_string(&spec).map_err(|e| Error::Data(e.to_string()))?;
    finish(arch, Some("Functional"), tensors)
}

/// Whether a layer's output carries a mask (model.py's rule, Keras's), refusing what the
/// module does not compute with one: a backwards layer meeting a mask.
fn mask_flow(name: &str, ls: &LayerSpec, masked: bool, initial: bool) -> Result<bool> {
    let rec = |go_backwards: bool, seq: bool| -> Result<bool> {
        if masked && go_backwards && !initial {
            return Err(refuse(name, "go_backwards with a mask"));
        }
        Ok(masked && seq)
    };
    match ls {
        LayerSpec::Masking(_) => Ok(true),
        LayerSpec::Embedding(c) => Ok(c.mask_zero),
        LayerSpec::Dense(_) | LayerSpec::Dropout(_) => Ok(masked),
        LayerSpec::SimpleRnn(c) => rec(c.go_backwards, c.return_sequences),
        LayerSpec::Lstm(c) => rec(c.go_backwards, c.return_sequences),
        LayerSpec::Gru(c) => rec(c.go_backwards, c.return_sequences),
        LayerSpec::LeakyRnn(c) => rec(c.go_backwards, c.return_sequences),
        LayerSpec::Bidirectional(b) => {
            let (inner, _) = inner_of(b);
            let seq = match &inner {
                LayerSpec::SimpleRnn(c) => c.return_sequences,
                LayerSpec::Lstm(c) => c.return_sequences,
                LayerSpec::Gru(c) => c.return_sequences,
                LayerSpec::LeakyRnn(c) => c.return_sequences,
                _ => false,
            };
            Ok(masked && seq)
        }
        _ => Ok(false),
    }
}

fn weights<F: Float>(layer: &dyn crate::layers::Layer<F>) -> HashMap<String, ArrayD<F>> {
    let mut w = HashMap::new();
    layer.visit_params(&mut |n, p| {
        w.insert(n.to_string(), p.value().clone());
    });
    w
}

fn finish(
    arch: String,
    model_type: Option<&str>,
    tensors: Vec<(String, ArrayD<f32>)>,
) -> Result<Vec<u8>> {
    let mut w = Writer::<f32>::new();
    w.meta("layout", "pytorch".into());
    if let Some(t) = model_type {
        w.meta("model_type", t.into());
    }
    w.meta("architecture", arch);
    for (n, t) in tensors {
        w.tensor(n, &t)?;
    }
    w.finish()
}

fn inner_of(b: &BidirectionalSpec) -> (LayerSpec, MergeMode) {
    match b {
        BidirectionalSpec::SimpleRnn(c) => (LayerSpec::SimpleRnn(c.layer.clone()), c.merge_mode),
        BidirectionalSpec::Lstm(c) => (LayerSpec::Lstm(c.layer.clone()), c.merge_mode),
        BidirectionalSpec::Gru(c) => (LayerSpec::Gru(c.layer.clone()), c.merge_mode),
        BidirectionalSpec::LeakyRnn(c) => (LayerSpec::LeakyRnn(c.layer.clone()), c.merge_mode),
    }
}

fn inner_go_backwards(s: &LayerSpec) -> bool {
    match s {
        LayerSpec::SimpleRnn(c) => c.go_backwards,
        LayerSpec::Lstm(c) => c.go_backwards,
        LayerSpec::Gru(c) => c.go_backwards,
        LayerSpec::LeakyRnn(c) => c.go_backwards,
        _ => false,
    }
}

fn inner_name(s: &LayerSpec) -> String {
    let (n, d) = match s {
        LayerSpec::SimpleRnn(c) => (c.name.clone(), "simple_rnn"),
        LayerSpec::Lstm(c) => (c.name.clone(), "lstm"),
        LayerSpec::Gru(c) => (c.name.clone(), "gru"),
        LayerSpec::LeakyRnn(c) => (c.name.clone(), "leaky_rnn"),
        _ => (None, ""),
    };
    n.unwrap_or_else(|| d.to_string())
}

/// A PyTorch-layout file (an export's `model.safetensors`) as an rnnkit file: tensors back
/// in Keras's names and layouts.
pub(crate) fn to_rnnkit_file(
    meta: &HashMap<String, String>,
    get: &dyn Fn(&str) -> Option<ArrayD<f32>>,
) -> std::result::Result<Vec<u8>, FileError> {
    let arch = meta.get("architecture").ok_or(FileError::Metadata {
        key: "architecture",
        reason: "missing".into(),
    })?;
    let mut out = Writer::<f32>::new();
    out.meta("architecture", arch.clone());
    // (layer name, its spec) of every layer with weights.
    let layers: Vec<(String, LayerSpec)> =
        if meta.get("model_type").map(String::as_str) == Some("Functional") {
            out.meta("model_type", "Functional".into());
            graph_layers(super::spec::parse_graph_spec(arch)?)
        } else {
            let spec: ModelSpec = super::spec::parse_model_spec(arch)?;
            spec.layers
                .into_iter()
                .map(|ls| {
                    // An export's architecture names every layer.
                    let name = ls.name().map(str::to_string).ok_or_else(|| {
                        FileError::Architecture(format!("an unnamed {} layer", ls.type_name()))
                    })?;
                    Ok((name, ls))
                })
                .collect::<std::result::Result<_, FileError>>()?
        };
    let err = |e: Error| FileError::Architecture(e.to_string());
    for (n, t) in keras_tensors(&layers, get)? {
        out.tensor(n, &t).map_err(err)?;
    }
    out.finish().map_err(err)
}

/// The layers of a graph that own weights, by node name.
fn graph_layers(spec: GraphSpec) -> Vec<(String, LayerSpec)> {
    spec.nodes
        .into_iter()
        .filter_map(|n| match n.layer {
            NodeLayer::New(ls) => Some((n.name, ls)),
            NodeLayer::Shares(_) => None,
        })
        .collect()
}

/// Collects tensors in Keras's names (the import's output).
#[derive(Default)]
struct Collect(Vec<(String, ArrayD<f32>)>);

impl Collect {
    fn tensor(&mut self, name: String, t: &ArrayD<f32>) -> Result<()> {
        self.0.push((name, t.clone()));
        Ok(())
    }
}

/// The weights of `layers` in Keras's names and layouts, from PyTorch's (`get` answers
/// `layers.<name>.<tensor>`).
fn keras_tensors(
    layers: &[(String, LayerSpec)],
    get: &dyn Fn(&str) -> Option<ArrayD<f32>>,
) -> std::result::Result<Vec<(String, ArrayD<f32>)>, FileError> {
    let mut w = Collect::default();
    let need = |n: &str| get(n).ok_or_else(|| FileError::MissingTensor(n.to_string()));
    let err = |e: Error| FileError::Architecture(e.to_string());
    for (name, ls) in layers {
        let name = name.clone();
        let torch = format!("layers.{name}.");
        let mut rnn_back =
            |inner: &LayerSpec, keras: &str, suffix: &str| -> std::result::Result<(), FileError> {
                let rnn = rnn_of(&name, inner).map_err(err)?;
                let u = rnn.units;
                let g = rnn.perm.len();
                let ih = two(&need(&format!("{torch}weight_ih_l0{suffix}"))?);
                let hh = two(&need(&format!("{torch}weight_hh_l0{suffix}"))?);
                w.tensor(
                    format!("{keras}kernel"),
                    &from_torch(&ih, rnn.perm, u).into_dyn(),
                )
                .map_err(err)?;
                w.tensor(
                    format!("{keras}recurrent_kernel"),
                    &from_torch(&hh, rnn.perm, u).into_dyn(),
                )
                .map_err(err)?;
                if rnn.use_bias {
                    let bi: Vec<f32> = need(&format!("{torch}bias_ih_l0{suffix}"))?
                        .iter()
                        .copied()
                        .collect();
                    let bh: Vec<f32> = need(&format!("{torch}bias_hh_l0{suffix}"))?
                        .iter()
                        .copied()
                        .collect();
                    if bi.len() != g * u || bh.len() != g * u {
                        return Err(FileError::Tensor {
                            tensor: format!("{torch}bias_ih_l0{suffix}"),
                            expected: format!("{} values", g * u),
                            found: format!("{} and {}", bi.len(), bh.len()),
                        });
                    }
                    let (bi, bh) = (unorder(&bi, rnn.perm, u), unorder(&bh, rnn.perm, u));
                    let bias = if matches!(inner, LayerSpec::Gru(_)) {
                        ArrayD::from_shape_vec(IxDyn(&[2, g * u]), [bi, bh].concat())
                            .expect("2 rows")
                    } else {
                        vec1(bi.iter().zip(&bh).map(|(a, b)| a + b).collect())
                    };
                    w.tensor(format!("{keras}bias"), &bias).map_err(err)?;
                }
                Ok(())
            };
        match ls {
            LayerSpec::SimpleRnn(_)
            | LayerSpec::Lstm(_)
            | LayerSpec::Gru(_)
            | LayerSpec::LeakyRnn(_) => {
                rnn_back(ls, &format!("{name}/"), "")?;
            }
            LayerSpec::Bidirectional(b) => {
                let (inner, _) = inner_of(b);
                let iname = inner_name(&inner);
                rnn_back(&inner, &format!("{name}/forward_{iname}/"), "")?;
                rnn_back(&inner, &format!("{name}/backward_{iname}/"), "_reverse")?;
            }
            LayerSpec::Dense(c) => {
                let k = two(&need(&format!("{torch}weight"))?);
                w.tensor(format!("{name}/kernel"), &k.t().to_owned().into_dyn())
                    .map_err(err)?;
                if c.use_bias {
                    w.tensor(format!("{name}/bias"), &need(&format!("{torch}bias"))?)
                        .map_err(err)?;
                }
            }
            LayerSpec::Embedding(_) => {
                w.tensor(
                    format!("{name}/embeddings"),
                    &need(&format!("{torch}weight"))?,
                )
                .map_err(err)?;
            }
            LayerSpec::Attention(_) | LayerSpec::AdditiveAttention(_) => {
                for k in ["scale", "concat_score_weight"] {
                    if let Some(a) = get(&format!("{torch}{k}")) {
                        w.tensor(format!("{name}/{k}"), &a).map_err(err)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(w.0)
}

/// See [`load_state_dict`](crate::io::load_state_dict).
pub(crate) fn load_state_dict<F: Float, M: Model<F> + ?Sized>(
    model: &mut M,
    bytes: &[u8],
    modules: &[(&str, &str)],
) -> std::result::Result<(), FileError> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| FileError::Architecture(format!("not a safetensors state_dict: {e}")))?;
    let read = |name: &str| -> Option<std::result::Result<ArrayD<f32>, FileError>> {
        let t = st.tensor(name).ok()?;
        let data = t.data();
        let values: Vec<f32> = match t.dtype() {
            safetensors::Dtype::F32 => data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            safetensors::Dtype::F64 => data
                .chunks_exact(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
            other => {
                return Some(Err(FileError::Tensor {
                    tensor: name.into(),
                    expected: "dtype F32 or F64".into(),
                    found: format!("{other:?}"),
                }));
            }
        };
        Some(
            ArrayD::from_shape_vec(IxDyn(t.shape()), values)
                .map_err(|e| FileError::Architecture(e.to_string())),
        )
    };
    let arch = model
        .architecture()
        .map_err(|e| FileError::Architecture(e.to_string()))?;
    let all: Vec<(String, LayerSpec)> = match arch {
        Architecture::Sequential(spec) => spec
            .layers
            .into_iter()
            .filter_map(|ls| Some((ls.name()?.to_string(), ls)))
            .collect(),
        Architecture::Graph(spec) => graph_layers(spec),
        Architecture::EchoStateNetwork { .. } => {
            return Err(FileError::Architecture(
                "an echo state network has no PyTorch counterpart".into(),
            ));
        }
    };
    let mut layers = Vec::new();
    for (layer, _) in modules {
        let found = all.iter().find(|(n, _)| n == layer).ok_or_else(|| {
            FileError::Architecture(format!(
                "no layer {layer:?} in the model (layers: {})",
                all.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        layers.push(found.clone());
    }
    // `layers.<name>.<tensor>` → `<prefix><tensor>`; a bad tensor is kept as the error.
    let bad = std::cell::RefCell::new(None);
    let get = |n: &str| -> Option<ArrayD<f32>> {
        let rest = n.strip_prefix("layers.")?;
        let (layer, prefix) = modules
            .iter()
            .find(|(l, _)| rest.strip_prefix(*l).is_some_and(|r| r.starts_with('.')))?;
        let key = format!("{prefix}{}", &rest[layer.len() + 1..]);
        match read(&key)? {
            Ok(a) => Some(a),
            Err(e) => {
                bad.borrow_mut().get_or_insert(e);
                None
            }
        }
    };
    let tensors = keras_tensors(&layers, &get).map_err(|e| bad.take().unwrap_or(e))?;
    // All checked before any is set: a failed call leaves the model as it was.
    let mut shapes = HashMap::new();
    model.visit_params(&mut |n, p| {
        shapes.insert(n.to_string(), p.value().shape().to_vec());
    });
    for (n, t) in &tensors {
        match shapes.get(n) {
            Some(s) if s.as_slice() == t.shape() => {}
            Some(s) => {
                return Err(FileError::Tensor {
                    tensor: n.clone(),
                    expected: format!("shape {s:?}"),
                    found: format!("shape {:?}", t.shape()),
                });
            }
            None => return Err(FileError::MissingTensor(n.clone())),
        }
        if let Some(i) = t.iter().position(|v| !v.is_finite()) {
            return Err(FileError::NonFinite {
                tensor: n.clone(),
                index: i,
                value: t.iter().nth(i).map(|v| v.to_string()).unwrap_or_default(),
            });
        }
    }
    let by_name: HashMap<&str, &ArrayD<f32>> =
        tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    model.visit_params_mut(&mut |n, p| {
        if let Some(t) = by_name.get(n) {
            p.value = t.mapv(|v| F::c(f64::from(v)));
        }
    });
    Ok(())
}
