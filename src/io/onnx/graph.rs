//! ONNX export of graph models: every node of the [`GraphSpec`](crate::model::GraphSpec)
//! in order, recurrent layers with initial states in and final states out (`node:1`, ...),
//! and the layers called on lists: Concatenate, Add, Multiply, Average, Attention (dot or
//! concat scores, with or without scale) and AdditiveAttention.

use super::proto::{self, Attr, DimP};
use super::{Builder, Flow, emit_layer, f32_vec, unsupported, weights_of};
use crate::error::Result;
use crate::float::Float;
use crate::layers::{LayerSpec, ScoreMode};
use crate::model::{Architecture, Functional, Model, NodeLayer};
use ndarray::ArrayD;
use std::collections::HashMap;

/// The layers called on a list of tensors; `None` for any other layer.
pub(super) fn emit_list<F: Float>(
    b: &mut Builder,
    name: &str,
    ls: &LayerSpec,
    weights: &HashMap<String, ArrayD<F>>,
    xs: &[Flow],
) -> Result<Option<Flow>> {
    let names: Vec<&str> = xs.iter().map(|x| x.name.as_str()).collect();
    let rank = xs.first().map_or(0, |x| x.rank);
    let list = ls.takes_list();
    if list && xs.iter().any(|x| x.len.is_some()) {
        return Err(unsupported(
            name,
            format!("a masked input to {}", ls.type_name()),
        ));
    }
    let out = match ls {
        LayerSpec::Concatenate(c) => b.op1(
            "Concat",
            name,
            &names,
            &[("axis", Attr::Int(c.axis as i64))],
        ),
        LayerSpec::Add(_) => b.op1("Sum", name, &names, &[]),
        LayerSpec::Multiply(_) => {
            let mut acc = names[0].to_string();
            for n in &names[1..] {
                acc = b.op1("Mul", name, &[&acc, n], &[]);
            }
            acc
        }
        LayerSpec::Average(_) => {
            let s = b.op1("Sum", name, &names, &[]);
            let k = b.fresh("inverse_count");
            let k = b.f32s(&k, &[], &[1.0 / names.len() as f32]);
            b.op1("Mul", name, &[&s, &k], &[])
        }
        LayerSpec::Attention(_) | LayerSpec::AdditiveAttention(_) => {
            attention(b, name, ls, weights, &names)?
        }
        _ => return Ok(None),
    };
    Ok(Some(Flow {
        name: out,
        rank,
        len: None,
    }))
}

/// `softmax(scores(q, k))·v` as Keras's Attention and AdditiveAttention compute it
/// (no masks: those are refused before).
fn attention<F: Float>(
    b: &mut Builder,
    name: &str,
    ls: &LayerSpec,
    weights: &HashMap<String, ArrayD<F>>,
    xs: &[&str],
) -> Result<String> {
    let (q, v) = match xs {
        [q, v] | [q, v, _] => (*q, *v),
        _ => {
            return Err(unsupported(
                name,
                format!("attention on {} tensors", xs.len()),
            ));
        }
    };
    let k = xs.get(2).copied().unwrap_or(v);
    let scalar = |b: &mut Builder, key: &str| -> Option<String> {
        weights.get(key).map(|w| {
            let n = format!("{name}/{key}");
            b.f32s(&n, w.shape(), &f32_vec(w))
        })
    };
    let dot = matches!(ls, LayerSpec::Attention(c) if c.score_mode == ScoreMode::Dot);
    let scores = if dot {
        let kt = b.op1(
            "Transpose",
            name,
            &[k],
            &[("perm", Attr::Ints(vec![0, 2, 1]))],
        );
        let s = b.op1("MatMul", name, &[q, &kt], &[]);
        match scalar(b, "scale") {
            Some(c) => b.op1("Mul", name, &[&s, &c], &[]),
            None => s,
        }
    } else {
        // [b, Tq, 1, d] + [b, 1, Tv, d] → Σ_d over the last axis.
        let (a1, a2) = (b.i64s("axes", &[2]), b.i64s("axes", &[1]));
        let qe = b.op1("Unsqueeze", name, &[q, &a1], &[]);
        let ke = b.op1("Unsqueeze", name, &[k, &a2], &[]);
        let mut pre = b.op1("Add", name, &[&qe, &ke], &[]);
        let additive = matches!(ls, LayerSpec::AdditiveAttention(_));
        if !additive && let Some(c) = scalar(b, "scale") {
            pre = b.op1("Mul", name, &[&pre, &c], &[]);
        }
        let mut t = b.op1("Tanh", name, &[&pre], &[]);
        if additive && let Some(s) = scalar(b, "scale") {
            t = b.op1("Mul", name, &[&t, &s], &[]);
        }
        let last = b.i64s("axes", &[-1]);
        let mut s = b.op1(
            "ReduceSum",
            name,
            &[&t, &last],
            &[("keepdims", Attr::Int(0))],
        );
        if let Some(w) = scalar(b, "concat_score_weight") {
            s = b.op1("Mul", name, &[&s, &w], &[]);
        }
        s
    };
    let w = b.op1("Softmax", name, &[&scores], &[("axis", Attr::Int(-1))]);
    Ok(b.op1("MatMul", name, &[&w, v], &[]))
}

/// The graph model as ONNX bytes: one graph input per model input (named as in the model),
/// one output per model output (`output_0`, ...).
pub(crate) fn functional<F: Float>(model: &Functional<F>) -> Result<Vec<u8>> {
    let Architecture::Graph(spec) = model.architecture()? else {
        return Err(unsupported(
            crate::param::Module::name(model),
            "not a graph model",
        ));
    };
    let mut b = Builder::default();
    let mut tensors: HashMap<String, Flow> = HashMap::new();
    let mut specs: HashMap<String, LayerSpec> = HashMap::new();
    let mut graph_inputs = Vec::new();
    for input in &spec.inputs {
        // An input read by an Embedding holds token ids.
        let ids = spec.nodes.iter().any(|n| {
            n.inputs.first() == Some(&input.name)
                && matches!(&n.layer, NodeLayer::New(LayerSpec::Embedding(_)))
        });
        let dims: Vec<DimP> = std::iter::once(DimP::Named("batch".into()))
            .chain(input.shape.iter().enumerate().map(|(i, d)| match d {
                Some(v) => DimP::Fixed(*v),
                None => DimP::Named(format!("{}_dim{}", input.name, i + 1)),
            }))
            .collect();
        let elem = if ids { proto::INT64 } else { proto::FLOAT };
        graph_inputs.push(proto::value_info(&input.name, elem, &dims));
        tensors.insert(
            input.name.clone(),
            Flow {
                name: input.name.clone(),
                rank: input.shape.len() + 1,
                len: None,
            },
        );
    }
    let get = |tensors: &HashMap<String, Flow>, r: &str, node: &str| {
        tensors
            .get(r)
            .cloned()
            .ok_or_else(|| unsupported(node, format!("reads {r}, which no earlier node makes")))
    };
    for node in &spec.nodes {
        if node.mask.is_some() {
            return Err(unsupported(
                &node.name,
                "an explicit mask (masks are not exported yet)",
            ));
        }
        let (owner, ls) = match &node.layer {
            NodeLayer::New(ls) => (node.name.clone(), ls.clone()),
            NodeLayer::Shares(other) => (
                other.clone(),
                specs.get(other).cloned().ok_or_else(|| {
                    unsupported(&node.name, format!("shares {other}, not defined before"))
                })?,
            ),
        };
        let layer = model
            .layer(owner.as_str())
            .ok_or_else(|| unsupported(&node.name, format!("no layer {owner}")))?;
        let xs = node
            .inputs
            .iter()
            .map(|r| get(&tensors, r, &node.name))
            .collect::<Result<Vec<_>>>()?;
        let initial: Vec<String> = node
            .initial_state
            .iter()
            .map(|r| get(&tensors, r, &node.name).map(|f| f.name))
            .collect::<Result<_>>()?;
        let (out, states) = emit_layer(
            &mut b,
            &node.name,
            &ls,
            weights_of(layer),
            &xs,
            &initial,
            node.return_state,
        )?;
        for (k, st) in states.into_iter().enumerate() {
            tensors.insert(
                format!("{}:{}", node.name, k + 1),
                Flow {
                    name: st,
                    rank: 2,
                    len: None,
                },
            );
        }
        tensors.insert(node.name.clone(), out);
        specs.insert(node.name.clone(), ls);
    }
    let mut outputs = Vec::new();
    for (i, r) in spec.outputs.iter().enumerate() {
        let f = get(&tensors, r, "output")?;
        let name = format!("output_{i}");
        b.nodes
            .push(proto::node("Identity", &name, &[&f.name], &[&name], &[]));
        let dims: Vec<DimP> = (0..f.rank)
            .map(|d| DimP::Named(format!("{name}_dim{d}")))
            .collect();
        outputs.push(proto::value_info(&name, proto::FLOAT, &dims));
    }
    Ok(b.model_bytes(&spec.name, &graph_inputs, &outputs, "exported by rnnkit"))
}
