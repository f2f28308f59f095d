//! ONNX export (opset 17, float32) of Sequential and graph models, for serving with ONNX
//! Runtime (or any ONNX runtime): SimpleRNN, LSTM and GRU as ONNX's own `RNN`, `LSTM` and
//! `GRU` operators (gate orders converted: Keras `i, f, c, o` → ONNX `i, o, f, c`; GRU
//! `z, r, h` unchanged with `linear_before_reset` = `reset_after`), `go_backwards` as the
//! `reverse` direction, Bidirectional as `bidirectional` with the layer's merge, Dense (2-D,
//! and per step on 3-D), Embedding as `Gather` (the input is then int64 token ids), Dropout
//! as the identity, RepeatVector and GlobalAveragePooling1D; in graph models also initial
//! states in and returned states out, Concatenate, Add, Multiply, Average, Attention and
//! AdditiveAttention.
//!
//! A stateful layer exports as the function of one call from zero states (Keras's
//! `predict` after `reset_states`); [`Format::OnnxStream`](super::Format::OnnxStream)
//! carries the states explicitly.
//!
//! Masks from `Masking` and `Embedding(mask_zero=True)` become ONNX's `sequence_lens` (the
//! number of valid steps per sample), with Keras's rule that a masked step carries the
//! state and Keras's outputs at masked steps (zeros with `zero_output_for_mask` and in a
//! Bidirectional, else the last valid output repeated; a masked mean in
//! GlobalAveragePooling1D). This is exact for **post-padded** sequences (valid steps
//! first), the layout `sequence_lens` describes; pre-padded inputs need the rnnkit model.
//!
//! What has no exact ONNX form here is refused with [`Error::Unsupported`] naming the
//! layer and the option, never exported as a different model: LeakyRNN, explicit masks
//! and masked inputs to merges or attention, Bidirectional with
//! `merge_mode` None or an inner `go_backwards`.

mod graph;
mod mask;
mod stream;
pub(crate) use graph::functional;
pub(crate) use stream::sequential_stream;
mod proto;

use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{BidirectionalSpec, LayerSpec, MergeMode};
use crate::model::Sequential;
use ndarray::{Array2, ArrayD, Ix2};
use proto::{Attr, DimP, Msg};
use std::collections::HashMap;

/// The ONNX operator set the export targets.
pub const OPSET: i64 = 17;

/// A graph under construction.
#[derive(Default)]
struct Builder {
    nodes: Vec<Msg>,
    inits: Vec<Msg>,
    count: usize,
}

impl Builder {
    fn fresh(&mut self, base: &str) -> String {
        self.count += 1;
        format!("{base}_{}", self.count)
    }
    /// Adds a node with `n_out` fresh outputs named after `base`.
    fn op(
        &mut self,
        op: &str,
        base: &str,
        inputs: &[&str],
        n_out: usize,
        attrs: &[(&str, Attr)],
    ) -> Vec<String> {
        let outs: Vec<String> = (0..n_out)
            .map(|i| self.fresh(&format!("{base}/{op}{i}")))
            .collect();
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let name = self.fresh(&format!("{base}/{op}"));
        self.nodes
            .push(proto::node(op, &name, inputs, &refs, attrs));
        outs
    }
    /// `a == b` (elementwise).
    fn op1_eq(&mut self, base: &str, a: &str, b: &str) -> String {
        self.op1("Equal", base, &[a, b], &[])
    }
    fn op1(&mut self, op: &str, base: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        self.op(op, base, inputs, 1, attrs).remove(0)
    }
    /// The finished graph (nodes, initializers, inputs, outputs) as `ModelProto` bytes.
    fn model_bytes(&self, name: &str, inputs: &[Msg], outputs: &[Msg], doc: &str) -> Vec<u8> {
        let mut g = Msg::default();
        for n in &self.nodes {
            g.msg(1, n);
        }
        g.str(2, name);
        for i in &self.inits {
            g.msg(5, i);
        }
        for i in inputs {
            g.msg(11, i);
        }
        for o in outputs {
            g.msg(12, o);
        }
        proto::model(&g, OPSET, doc)
    }
    fn f32s(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.inits.push(proto::tensor_f32(name, dims, data));
        name.to_string()
    }
    fn i64s(&mut self, base: &str, data: &[i64]) -> String {
        let name = self.fresh(base);
        self.inits
            .push(proto::tensor_i64(&name, &[data.len()], data));
        name
    }
}

fn unsupported(layer: &str, reason: impl Into<String>) -> Error {
    Error::Unsupported {
        layer: layer.to_string(),
        reason: format!("no exact ONNX form: {}", reason.into()),
    }
}

fn f32_vec<F: Float>(a: &ArrayD<F>) -> Vec<f32> {
    a.iter().map(|v| v.to_f32().unwrap_or(f32::NAN)).collect()
}

/// The ONNX name of an elementwise activation, for the recurrent operators' lists.
fn rnn_act(layer: &str, a: Activation) -> Result<String> {
    Ok(match a {
        Activation::Tanh => "Tanh",
        Activation::Sigmoid => "Sigmoid",
        Activation::Relu => "Relu",
        Activation::Linear => "Affine",
        Activation::Softmax => return Err(unsupported(layer, "a softmax recurrent activation")),
    }
    .to_string())
}

/// What an ONNX recurrent operator needs of one of rnnkit's recurrent layers.
struct Rec<'a> {
    op: &'static str,
    units: usize,
    /// Keras's gate block for each ONNX gate.
    order: &'static [usize],
    /// Activations per direction, in ONNX's order.
    acts: Vec<String>,
    linear_before_reset: Option<i64>,
    return_sequences: bool,
    go_backwards: bool,
    zero_output_for_mask: bool,
    name: &'a str,
}

fn rec_of<'a>(spec: &'a LayerSpec, name: &'a str) -> Result<Rec<'a>> {
    let (op, order, acts, units, seq, lbr): (_, &'static [usize], _, _, _, _) = match spec {
        LayerSpec::SimpleRnn(c) => (
            "RNN",
            &[0],
            vec![rnn_act(name, c.activation)?],
            c.units,
            &c.return_sequences,
            None,
        ),
        LayerSpec::Lstm(c) => (
            "LSTM",
            &[0, 3, 1, 2],
            vec![
                rnn_act(name, c.recurrent_activation)?,
                rnn_act(name, c.activation)?,
                rnn_act(name, c.activation)?,
            ],
            c.units,
            &c.return_sequences,
            None,
        ),
        LayerSpec::Gru(c) => (
            "GRU",
            &[0, 1, 2],
            vec![
                rnn_act(name, c.recurrent_activation)?,
                rnn_act(name, c.activation)?,
            ],
            c.units,
            &c.return_sequences,
            Some(i64::from(c.reset_after)),
        ),
        LayerSpec::LeakyRnn(_) => {
            return Err(unsupported(name, "LeakyRNN has no ONNX operator"));
        }
        _ => unreachable!("only recurrent specs reach here"),
    };
    let (go_backwards, zero_output_for_mask) = match spec {
        LayerSpec::SimpleRnn(c) => (c.go_backwards, c.zero_output_for_mask),
        LayerSpec::Lstm(c) => (c.go_backwards, c.zero_output_for_mask),
        LayerSpec::Gru(c) => (c.go_backwards, c.zero_output_for_mask),
        _ => (false, false),
    };
    Ok(Rec {
        op,
        units,
        order,
        acts,
        linear_before_reset: lbr,
        return_sequences: *seq,
        go_backwards,
        zero_output_for_mask,
        name,
    })
}

/// W `[G·u, F]`, R `[G·u, u]` and B `[2·G·u]` of one direction from Keras's kernel
/// `[F, G·u]`, recurrent kernel `[u, G·u]` and bias (`[G·u]`, or `[2, 3u]` for GRU with
/// `reset_after`), gates in ONNX's order.
fn onnx_weights<F: Float>(
    rec: &Rec<'_>,
    w: &HashMap<String, ArrayD<F>>,
    prefix: &str,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let get = |n: &str| {
        w.get(&format!("{prefix}{n}"))
            .ok_or_else(|| unsupported(rec.name, format!("weight {prefix}{n} missing")))
    };
    let two = |a: &ArrayD<F>| {
        a.view()
            .into_dimensionality::<Ix2>()
            .map(|v| v.to_owned())
            .map_err(|_| unsupported(rec.name, "a kernel is not 2-D"))
    };
    let (k, r): (Array2<F>, Array2<F>) = (two(get("kernel")?)?, two(get("recurrent_kernel")?)?);
    let u = rec.units;
    let g = rec.order.len();
    let reorder_t = |m: &Array2<F>| {
        let mut out = Vec::with_capacity(g * u * m.nrows());
        for &kb in rec.order {
            for j in 0..u {
                for f in 0..m.nrows() {
                    out.push(m[[f, kb * u + j]].to_f32().unwrap_or(f32::NAN));
                }
            }
        }
        out
    };
    let (wt, rt) = (reorder_t(&k), reorder_t(&r));
    let mut b = vec![0.0f32; 2 * g * u];
    if let Some(bias) = w.get(&format!("{prefix}bias")) {
        let flat = f32_vec(bias);
        let rows = if bias.ndim() == 2 { 2 } else { 1 };
        for half in 0..rows {
            for (gi, &kb) in rec.order.iter().enumerate() {
                for j in 0..u {
                    b[half * g * u + gi * u + j] = flat[half * g * u + kb * u + j];
                }
            }
        }
    }
    Ok((wt, rt, b))
}

/// A tensor flowing through the graph: its name and rank (2: `[b, f]`, 3: `[b, t, f]`).
#[derive(Clone)]
struct Flow {
    name: String,
    rank: usize,
    /// Its Keras mask as valid-step counts `[b]` (int32), for post-padded sequences.
    len: Option<String>,
}

/// The output and, in Keras's order (`h`, `c` per direction, forward first), the final
/// states of a recurrent layer, started from `initial` (same order) or zeros.
fn recurrent<F: Float>(
    b: &mut Builder,
    x: &Flow,
    rec: &Rec<'_>,
    dirs: &[(&str, HashMap<String, ArrayD<F>>)],
    merge: MergeMode,
    initial: &[String],
    want_states: bool,
) -> Result<(Flow, Vec<String>)> {
    let (u, g, nd) = (rec.units, rec.order.len(), dirs.len());
    let (mut w, mut r, mut bias) = (Vec::new(), Vec::new(), Vec::new());
    for (prefix, weights) in dirs {
        let (a, c, d) = onnx_weights(rec, weights, prefix)?;
        w.extend(a);
        r.extend(c);
        bias.extend(d);
    }
    let f = w.len() / (nd * g * u);
    let base = rec.name;
    let wn = b.f32s(&format!("{base}/W"), &[nd, g * u, f], &w);
    let rn = b.f32s(&format!("{base}/R"), &[nd, g * u, u], &r);
    let bn = b.f32s(&format!("{base}/B"), &[nd, 2 * g * u], &bias);
    let xt = b.op1(
        "Transpose",
        base,
        &[&x.name],
        &[("perm", Attr::Ints(vec![1, 0, 2]))],
    );
    let direction = match (nd, rec.go_backwards) {
        (2, _) => "bidirectional",
        (_, true) => "reverse",
        _ => "forward",
    };
    let mut attrs = vec![
        ("hidden_size", Attr::Int(u as i64)),
        ("direction", Attr::Str(direction.into())),
        (
            "activations",
            Attr::Strs((0..nd).flat_map(|_| rec.acts.clone()).collect()),
        ),
    ];
    if rec.acts.iter().any(|a| a == "Affine") {
        // Keras's `linear`: Affine with α = 1, β = 0, one pair per activation.
        let n = rec.acts.len() * nd;
        attrs.push(("activation_alpha", Attr::Floats(vec![1.0; n])));
        attrs.push(("activation_beta", Attr::Floats(vec![0.0; n])));
    }
    if let Some(l) = rec.linear_before_reset {
        attrs.push(("linear_before_reset", Attr::Int(l)));
    }
    let lstm = rec.op == "LSTM";
    let per_dir = if lstm { 2 } else { 1 };
    let mut inputs: Vec<String> = vec![xt, wn, rn, bn];
    // Keras: a layer called with initial states gets no mask (its output still carries
    // the input's); otherwise the mask is the valid-step count.
    let used_len = x.len.clone().filter(|_| initial.is_empty());
    if let Some(l) = &used_len {
        inputs.push(l.clone());
    }
    if !initial.is_empty() {
        if initial.len() != per_dir * nd {
            return Err(unsupported(
                rec.name,
                format!(
                    "{} initial states, expected {}",
                    initial.len(),
                    per_dir * nd
                ),
            ));
        }
        // [h | c] per direction → initial_h, initial_c `[dirs, b, u]`.
        if used_len.is_none() {
            inputs.push(String::new()); // sequence_lens
        }
        for k in 0..per_dir {
            let parts: Vec<String> = (0..nd)
                .map(|d| {
                    let axes = b.i64s("axes", &[0]);
                    b.op1("Unsqueeze", base, &[&initial[d * per_dir + k], &axes], &[])
                })
                .collect();
            let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
            let joined = if nd == 1 {
                parts[0].clone()
            } else {
                b.op1("Concat", base, &refs, &[("axis", Attr::Int(0))])
            };
            inputs.push(joined);
        }
    }
    let n_out = if lstm { 3 } else { 2 };
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let outs = b.op(rec.op, base, &refs, n_out, &attrs);
    let (y, yh) = (&outs[0], &outs[1]);
    // Final states, Keras's order: per direction h (and c).
    let finals: Vec<&String> = outs[1..].iter().collect();
    let mut states = vec![String::new(); per_dir * nd];
    for (k, f) in finals.iter().enumerate().filter(|_| want_states) {
        let parts = if nd == 1 {
            vec![f.to_string()]
        } else {
            b.op("Split", base, &[f], 2, &[("axis", Attr::Int(0))])
        };
        for (d, part) in parts.iter().enumerate() {
            let axes = b.i64s("axes", &[0]);
            states[d * per_dir + k] = b.op1("Squeeze", base, &[part, &axes], &[]);
        }
    }
    if rec.return_sequences {
        if nd == 1 {
            let axes = b.i64s("axes", &[1]);
            let mut s = b.op1("Squeeze", base, &[y, &axes], &[]); // [t, b, u]
            if rec.go_backwards {
                // Keras outputs a backwards layer's steps in processing order.
                let (st, en, ax, sp) = (
                    b.i64s("starts", &[-1]),
                    b.i64s("ends", &[i64::MIN]),
                    b.i64s("axes", &[0]),
                    b.i64s("steps", &[-1]),
                );
                s = b.op1("Slice", base, &[&s, &st, &en, &ax, &sp], &[]);
            }
            let mut out = b.op1(
                "Transpose",
                base,
                &[&s],
                &[("perm", Attr::Ints(vec![1, 0, 2]))],
            );
            // Padded steps: ONNX gives zeros; Keras repeats the last output unless
            // zero_output_for_mask (a backwards layer meets the padding first: zeros).
            if let Some(l) = &used_len
                && !rec.zero_output_for_mask
                && !rec.go_backwards
            {
                out = mask::carry(b, base, &out, l);
            }
            let len = x.len.clone();
            return Ok((
                Flow {
                    name: out,
                    rank: 3,
                    len,
                },
                states,
            ));
        }
        // [t, 2, b, u] → [b, t, 2, u], then the merge over axis 2.
        let yt = b.op1(
            "Transpose",
            base,
            &[y],
            &[("perm", Attr::Ints(vec![2, 0, 1, 3]))],
        );
        // Keras's Bidirectional outputs zeros at masked steps in both directions, as ONNX.
        let out = merge_dirs(b, base, &yt, 2, merge, &[0, 0, -1])?;
        let len = x.len.clone();
        return Ok((
            Flow {
                name: out,
                rank: 3,
                len,
            },
            states,
        ));
    }
    if nd == 1 {
        let axes = b.i64s("axes", &[0]);
        let out = b.op1("Squeeze", base, &[yh, &axes], &[]);
        return Ok((
            Flow {
                name: out,
                rank: 2,
                len: None,
            },
            states,
        ));
    }
    // [2, b, u] → [b, 2, u], then the merge over axis 1.
    let yt = b.op1(
        "Transpose",
        base,
        &[yh],
        &[("perm", Attr::Ints(vec![1, 0, 2]))],
    );
    let out = merge_dirs(b, base, &yt, 1, merge, &[0, -1])?;
    Ok((
        Flow {
            name: out,
            rank: 2,
            len: None,
        },
        states,
    ))
}

/// Merges the two directions held along `axis` (forward first) as Bidirectional does.
fn merge_dirs(
    b: &mut Builder,
    base: &str,
    y: &str,
    axis: i64,
    merge: MergeMode,
    concat_shape: &[i64],
) -> Result<String> {
    if merge == MergeMode::Concat {
        let shape = b.i64s("shape", concat_shape);
        return Ok(b.op1("Reshape", base, &[y, &shape], &[]));
    }
    let parts = b.op("Split", base, &[y], 2, &[("axis", Attr::Int(axis))]);
    let axes = b.i64s("axes", &[axis]);
    let fw = b.op1("Squeeze", base, &[&parts[0], &axes], &[]);
    let bw = b.op1("Squeeze", base, &[&parts[1], &axes], &[]);
    Ok(match merge {
        MergeMode::Sum => b.op1("Add", base, &[&fw, &bw], &[]),
        MergeMode::Mul => b.op1("Mul", base, &[&fw, &bw], &[]),
        MergeMode::Ave => {
            let s = b.op1("Add", base, &[&fw, &bw], &[]);
            let half = b.fresh("half");
            let half = b.f32s(&half, &[], &[0.5]);
            b.op1("Mul", base, &[&s, &half], &[])
        }
        _ => {
            return Err(unsupported(
                base,
                "Bidirectional merge_mode None (two outputs)",
            ));
        }
    })
}

/// The layer a Bidirectional wraps, as a spec of its own, and the merge.
fn bidirectional_parts(bs: &BidirectionalSpec) -> (LayerSpec, MergeMode) {
    match bs {
        BidirectionalSpec::SimpleRnn(c) => (LayerSpec::SimpleRnn(c.layer.clone()), c.merge_mode),
        BidirectionalSpec::Lstm(c) => (LayerSpec::Lstm(c.layer.clone()), c.merge_mode),
        BidirectionalSpec::Gru(c) => (LayerSpec::Gru(c.layer.clone()), c.merge_mode),
        BidirectionalSpec::LeakyRnn(c) => (LayerSpec::LeakyRnn(c.layer.clone()), c.merge_mode),
    }
}

fn activation(b: &mut Builder, base: &str, x: String, a: Activation) -> String {
    match a {
        Activation::Linear => x,
        Activation::Tanh => b.op1("Tanh", base, &[&x], &[]),
        Activation::Sigmoid => b.op1("Sigmoid", base, &[&x], &[]),
        Activation::Relu => b.op1("Relu", base, &[&x], &[]),
        Activation::Softmax => b.op1("Softmax", base, &[&x], &[("axis", Attr::Int(-1))]),
    }
}

/// A layer's weights by name.
fn weights_of<F: Float>(layer: &dyn crate::layers::Layer<F>) -> HashMap<String, ArrayD<F>> {
    let mut weights = HashMap::new();
    layer.visit_params(&mut |n, p| {
        weights.insert(n.to_string(), p.value().clone());
    });
    weights
}

/// One layer call: its output and (with `want_states`) its final states.
fn emit_layer<F: Float>(
    b: &mut Builder,
    name: &str,
    ls: &LayerSpec,
    weights: HashMap<String, ArrayD<F>>,
    xs: &[Flow],
    initial: &[String],
    want_states: bool,
) -> Result<(Flow, Vec<String>)> {
    let name = name.to_string();
    if let Some(out) = graph::emit_list(b, &name, ls, &weights, xs)? {
        return Ok((out, Vec::new()));
    }
    let Some(x) = xs.first() else {
        return Err(unsupported(&name, "a call without inputs"));
    };
    if xs.len() > 1 {
        return Err(unsupported(
            &name,
            format!("{} inputs to a {}", xs.len(), ls.type_name()),
        ));
    }
    let x = x.clone();
    let out = match ls {
        LayerSpec::SimpleRnn(_)
        | LayerSpec::Lstm(_)
        | LayerSpec::Gru(_)
        | LayerSpec::LeakyRnn(_) => {
            let rec = rec_of(ls, &name)?;
            return recurrent(
                b,
                &x,
                &rec,
                &[("", weights)],
                MergeMode::Concat,
                initial,
                want_states,
            );
        }
        LayerSpec::Bidirectional(bs) => {
            let (inner, merge) = bidirectional_parts(bs);
            let rec = rec_of(&inner, &name)?;
            if rec.go_backwards {
                return Err(unsupported(&name, "an inner layer with go_backwards"));
            }
            let prefix = |dir: &str| {
                weights
                    .keys()
                    .find(|k| k.starts_with(dir))
                    .and_then(|k| k.split_once('/'))
                    .map(|(p, _)| format!("{p}/"))
                    .unwrap_or_default()
            };
            let (fw, bw) = (prefix("forward"), prefix("backward"));
            let dirs = [
                (fw.as_str(), weights.clone()),
                (bw.as_str(), weights.clone()),
            ];
            return recurrent(b, &x, &rec, &dirs, merge, initial, want_states);
        }
        LayerSpec::Dense(c) => {
            let k = &weights["kernel"];
            let kn = b.f32s(&format!("{name}/kernel"), k.shape(), &f32_vec(k));
            let mut y = b.op1("MatMul", &name, &[&x.name, &kn], &[]);
            if let Some(bias) = weights.get("bias") {
                let bn = b.f32s(&format!("{name}/bias"), bias.shape(), &f32_vec(bias));
                y = b.op1("Add", &name, &[&y, &bn], &[]);
            }
            Flow {
                name: activation(b, &name, y, c.activation),
                rank: x.rank,
                len: x.len.clone(),
            }
        }
        LayerSpec::Embedding(c) => {
            let e = &weights["embeddings"];
            let en = b.f32s(&format!("{name}/embeddings"), e.shape(), &f32_vec(e));
            let len = c.mask_zero.then(|| {
                // Keras's mask: ids other than 0.
                let zero = b.i64s("zero", &[0]);
                let eq = b.op1_eq(&name, &x.name, &zero);
                let ne = b.op1("Not", &name, &[&eq], &[]);
                let keep = b.op1("Cast", &name, &[&ne], &[("to", Attr::Int(1))]);
                mask::lengths(b, &name, &keep)
            });
            Flow {
                name: b.op1("Gather", &name, &[&en, &x.name], &[("axis", Attr::Int(0))]),
                rank: x.rank + 1,
                len,
            }
        }
        LayerSpec::Dropout(_) => x,
        LayerSpec::RepeatVector(c) => {
            let axes = b.i64s("axes", &[1]);
            let y = b.op1("Unsqueeze", &name, &[&x.name, &axes], &[]);
            let reps = b.i64s("repeats", &[1, c.n as i64, 1]);
            Flow {
                name: b.op1("Tile", &name, &[&y, &reps], &[]),
                rank: 3,
                len: None,
            }
        }
        LayerSpec::GlobalAveragePooling1D(_) => {
            let name_out = match &x.len {
                None => b.op1(
                    "ReduceMean",
                    &name,
                    &[&x.name],
                    &[("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))],
                ),
                Some(l) => {
                    // Keras's masked mean: Σ x·m / Σ m over the steps.
                    let keep = mask::keep_of(b, &name, l, &x.name);
                    let ax = b.i64s("axes", &[2]);
                    let k3 = b.op1("Unsqueeze", &name, &[&keep, &ax], &[]);
                    let xm = b.op1("Mul", &name, &[&x.name, &k3], &[]);
                    let ax1 = b.i64s("axes", &[1]);
                    let num = b.op1(
                        "ReduceSum",
                        &name,
                        &[&xm, &ax1],
                        &[("keepdims", Attr::Int(0))],
                    );
                    let den = b.op1(
                        "ReduceSum",
                        &name,
                        &[&k3, &ax1],
                        &[("keepdims", Attr::Int(0))],
                    );
                    b.op1("Div", &name, &[&num, &den], &[])
                }
            };
            Flow {
                name: name_out,
                rank: 2,
                len: None,
            }
        }
        LayerSpec::Masking(c) => {
            // Keras: a step is kept when any feature differs from mask_value; the output is
            // the input times that mask.
            let v = b.fresh("mask_value");
            let v = b.f32s(&v, &[], &[c.mask_value as f32]);
            let eq = b.op1_eq(&name, &x.name, &v);
            let ne = b.op1("Not", &name, &[&eq], &[]);
            let nef = b.op1("Cast", &name, &[&ne], &[("to", Attr::Int(1))]);
            let keep = b.op1(
                "ReduceMax",
                &name,
                &[&nef],
                &[("axes", Attr::Ints(vec![-1])), ("keepdims", Attr::Int(0))],
            );
            let ax = b.i64s("axes", &[2]);
            let k3 = b.op1("Unsqueeze", &name, &[&keep, &ax], &[]);
            let out = b.op1("Mul", &name, &[&x.name, &k3], &[]);
            let len = mask::lengths(b, &name, &keep);
            Flow {
                name: out,
                rank: x.rank,
                len: Some(len),
            }
        }
        other => {
            return Err(unsupported(&name, format!("{} here", other.type_name())));
        }
    };
    Ok((out, Vec::new()))
}

/// The model as ONNX bytes (see the [module](self)).
pub(crate) fn sequential<F: Float>(model: &Sequential<F>) -> Result<Vec<u8>> {
    let spec = model.spec()?;
    let mut b = Builder::default();
    let input_dims: Vec<DimP> = std::iter::once(DimP::Named("batch".into()))
        .chain(spec.input_shape.iter().enumerate().map(|(i, d)| match d {
            Some(v) => DimP::Fixed(*v),
            None => DimP::Named(if i == 0 {
                "steps".into()
            } else {
                format!("dim{i}")
            }),
        }))
        .collect();
    let ids = matches!(spec.layers.first(), Some(LayerSpec::Embedding(_)));
    let elem = if ids { proto::INT64 } else { proto::FLOAT };
    let input = proto::value_info("input", elem, &input_dims);
    let mut x = Flow {
        name: "input".into(),
        rank: spec.input_shape.len() + 1,
        len: None,
    };
    for (layer, ls) in model.layers().iter().zip(&spec.layers) {
        let name = layer.name().to_string();
        x = emit_layer(
            &mut b,
            &name,
            ls,
            weights_of(layer.as_ref()),
            &[x],
            &[],
            false,
        )?
        .0;
    }
    b.nodes.push(proto::node(
        "Identity",
        "output",
        &[&x.name],
        &["output"],
        &[],
    ));
    let out_dims: Vec<DimP> = std::iter::once(DimP::Named("batch".into()))
        .chain(
            model
                .output_shape()
                .iter()
                .enumerate()
                .map(|(i, d)| match d {
                    Some(v) => DimP::Fixed(*v),
                    None => DimP::Named(if i == 0 {
                        "steps".into()
                    } else {
                        format!("out{i}")
                    }),
                }),
        )
        .collect();
    let output = proto::value_info("output", proto::FLOAT, &out_dims);
    Ok(b.model_bytes(&spec.name, &[input], &[output], "exported by rnnkit"))
}
