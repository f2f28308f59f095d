//! [`GraphSpec`]: a graph model's architecture as data (Keras's functional config in
//! rnnkit's words), what a model file stores and what [`Functional::from_spec`] rebuilds.

use super::Op;
use super::builder::{Graph, Tensor};
use super::functional::Functional;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{Dim, LayerSpec};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A graph model: its inputs, its layer calls in order, and its outputs, as tensor refs
/// `"name"` or `"name:k"` (output `k` of the call `name`).
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::model::GraphSpec;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut g = Graph::<f64>::new(0);
/// let x = g.input("x", &[None, Some(3)])?;
/// let enc = g.rnn(&LstmConfig::new(4).name("enc"), x).call()?;
/// let y = g.apply(&DenseConfig::new(1).name("out"), enc.states[1])?;
/// let model = g.build(&[x], &[y])?;
/// let spec = model.spec_graph()?;
/// let json = serde_json::to_string(&spec).unwrap();
/// assert!(json.contains(r#""inputs":["enc:2"]"#));
/// let again = Functional::<f64>::from_spec(&serde_json::from_str::<GraphSpec>(&json).unwrap(), 0)?;
/// assert_eq!(again.param_count(), model.param_count());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSpec {
    /// Model name.
    pub name: String,
    /// The inputs, in the model's input order.
    pub inputs: Vec<GraphInput>,
    /// The layer calls, each after the calls it reads.
    pub nodes: Vec<GraphNode>,
    /// The outputs, as tensor refs.
    pub outputs: Vec<String>,
}

/// One input of a [`GraphSpec`].
///
/// ```
/// let i: rnnkit::model::GraphInput = serde_json::from_str(r#"{"name": "ids", "shape": [null]}"#).unwrap();
/// assert_eq!((i.name.as_str(), i.shape), ("ids", vec![None]));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphInput {
    /// The input's name.
    pub name: String,
    /// Its shape without the batch axis (`null`: any size).
    pub shape: Vec<Dim>,
}

/// One layer call of a [`GraphSpec`].
///
/// ```
/// use rnnkit::{model::GraphNode, model::NodeLayer};
/// let n: GraphNode = serde_json::from_str(
///     r#"{"name": "dec", "layer": "LSTM", "config": {"units": 8}, "inputs": ["emb"],
///         "initial_state": ["enc:1", "enc:2"], "return_state": true}"#,
/// ).unwrap();
/// assert!(matches!(n.layer, NodeLayer::New(_)) && n.initial_state.len() == 2);
/// let shared: GraphNode =
///     serde_json::from_str(r#"{"name": "dec_2", "shares": "dec", "inputs": ["x"]}"#).unwrap();
/// assert_eq!(shared.layer, NodeLayer::Shares("dec".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawNode", into = "RawNode")]
pub struct GraphNode {
    /// The call's name (the layer's, for its first call); tensor refs use it.
    pub name: String,
    /// A new layer, or another call of the layer first called by the named node.
    pub layer: NodeLayer,
    /// The tensors it is called on (one, or a list for merges and attention).
    pub inputs: Vec<String>,
    /// Tensors holding its initial states (recurrent layers).
    pub initial_state: Vec<String>,
    /// The tensor whose mask it is given explicitly.
    pub mask: Option<String>,
    /// Whether the call passes states (outputs `[out, states...]`).
    pub return_state: bool,
}

/// The layer of a [`GraphNode`] (see its example).
#[derive(Clone, Debug, PartialEq)]
pub enum NodeLayer {
    /// A new layer, called here first.
    New(LayerSpec),
    /// The layer first called by the node of this name (shared weights).
    Shares(String),
}

/// The JSON form of a node: `{"name", "layer", "config", ...}` or `{"name", "shares", ...}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layer: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shares: Option<String>,
    inputs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    initial_state: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mask: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    return_state: bool,
}

impl TryFrom<RawNode> for GraphNode {
    type Error = String;
    fn try_from(r: RawNode) -> std::result::Result<Self, String> {
        let layer = match (r.layer, r.config, r.shares) {
            (Some(l), c, None) => NodeLayer::New(
                serde_json::from_value(serde_json::json!({
                    "layer": l,
                    "config": c.unwrap_or_else(|| serde_json::json!({})),
                }))
                .map_err(|e| format!("node {}: {e}", r.name))?,
            ),
            (None, None, Some(owner)) => NodeLayer::Shares(owner),
            _ => {
                return Err(format!(
                    "node {}: needs either `layer` (with `config`) or `shares`",
                    r.name
                ));
            }
        };
        Ok(GraphNode {
            name: r.name,
            layer,
            inputs: r.inputs,
            initial_state: r.initial_state,
            mask: r.mask,
            return_state: r.return_state,
        })
    }
}

impl From<GraphNode> for RawNode {
    fn from(n: GraphNode) -> Self {
        let (layer, config, shares) = match n.layer {
            NodeLayer::New(spec) => {
                let v = serde_json::to_value(&spec).expect("layer specs serialise");
                (v.get("layer").cloned(), v.get("config").cloned(), None)
            }
            NodeLayer::Shares(owner) => (None, None, Some(owner)),
        };
        RawNode {
            name: n.name,
            layer,
            config,
            shares,
            inputs: n.inputs,
            initial_state: n.initial_state,
            mask: n.mask,
            return_state: n.return_state,
        }
    }
}

impl<F: Float> Functional<F> {
    /// The architecture as data (see [`GraphSpec`]).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a layer without a saved form.
    pub fn spec_graph(&self) -> Result<GraphSpec> {
        let (nodes, layers, needed) = (&self.nodes, &self.layers, &self.needed);
        let (inputs, outputs) = (&self.inputs, &self.outputs);
        let r = |t: &Tensor| -> String {
            let name = &nodes[t.node].name;
            if t.out == 0 {
                name.clone()
            } else {
                format!("{name}:{}", t.out)
            }
        };
        let r_at = |(n, o): (usize, usize)| -> String {
            if o == 0 {
                nodes[n].name.clone()
            } else {
                format!("{}:{o}", nodes[n].name)
            }
        };
        let mut owner_node: HashMap<usize, &str> = HashMap::new();
        let mut out = Vec::new();
        for (_, node) in nodes.iter().enumerate().filter(|(k, _)| needed[*k]) {
            let Op::Call {
                layer,
                first,
                states,
                initial,
                mask_of,
            } = &node.op
            else {
                continue;
            };
            let l = &layers[*layer];
            let nl = if *first {
                owner_node.insert(*layer, &node.name);
                NodeLayer::New(l.spec().ok_or_else(|| Error::Unsupported {
                    layer: l.name().to_string(),
                    reason: "this layer has no saved form".into(),
                })?)
            } else {
                NodeLayer::Shares(owner_node[layer].to_string())
            };
            out.push(GraphNode {
                name: node.name.clone(),
                layer: nl,
                inputs: node.inputs.iter().map(r).collect(),
                initial_state: initial.iter().map(r).collect(),
                mask: mask_of.as_ref().map(r),
                return_state: *states,
            });
        }
        Ok(GraphSpec {
            name: self.name.clone(),
            inputs: inputs
                .iter()
                .map(|&n| GraphInput {
                    name: nodes[n].name.clone(),
                    shape: nodes[n].shapes[0].clone(),
                })
                .collect(),
            nodes: out,
            outputs: outputs.iter().map(|&p| r_at(p)).collect(),
        })
    }

    /// Builds the model `spec` describes, with fresh weights drawn from `seed`.
    ///
    /// # Errors
    /// [`Error::Config`] for a tensor ref to nothing, a `shares` of an unknown node, or
    /// any wiring error [`Graph`] reports.
    pub fn from_spec(spec: &GraphSpec, seed: u64) -> Result<Self> {
        Self::from_spec_within(spec, seed, usize::MAX)
    }

    /// [`Functional::from_spec`] refusing, before building it, a layer whose weights
    /// cannot fit in `budget` scalars (the number a file holds).
    pub(crate) fn from_spec_within(spec: &GraphSpec, seed: u64, budget: usize) -> Result<Self> {
        let mut g = Graph::<F>::new(seed);
        let mut tensors: HashMap<&str, Vec<Tensor>> = HashMap::new();
        let unknown = |what: &str, r: &str| Error::Config {
            layer: spec.name.clone(),
            field: "architecture",
            reason: format!("{what} `{r}` names no earlier input or call"),
        };
        let lookup = |tensors: &HashMap<&str, Vec<Tensor>>, r: &str| -> Result<Tensor> {
            let (name, k) = match r.rsplit_once(':') {
                Some((n, k)) => (n, k.parse::<usize>().map_err(|_| unknown("tensor", r))?),
                None => (r, 0),
            };
            tensors
                .get(name)
                .and_then(|ts| ts.get(k).copied())
                .ok_or_else(|| unknown("tensor", r))
        };
        let mut inputs = Vec::new();
        for i in &spec.inputs {
            let t = g.input(&i.name, &i.shape)?;
            inputs.push(t);
            tensors.insert(&i.name, vec![t]);
        }
        let mut left = budget;
        for node in &spec.nodes {
            let xs: Vec<Tensor> = node
                .inputs
                .iter()
                .map(|r| lookup(&tensors, r))
                .collect::<Result<_>>()?;
            let initial: Vec<Tensor> = node
                .initial_state
                .iter()
                .map(|r| lookup(&tensors, r))
                .collect::<Result<_>>()?;
            let mask = node
                .mask
                .as_deref()
                .map(|r| lookup(&tensors, r))
                .transpose()?;
            let x = *xs.first().ok_or_else(|| Error::Config {
                layer: node.name.clone(),
                field: "inputs",
                reason: "a call needs at least one tensor".into(),
            })?;
            let outs = match &node.layer {
                NodeLayer::New(l) => {
                    let named = with_name(l, &node.name);
                    if let Some(need) = g
                        .shape(x)?
                        .last()
                        .copied()
                        .flatten()
                        .and_then(|f| named.min_weights(f))
                    {
                        left = left.checked_sub(need).ok_or_else(|| Error::Config {
                            layer: node.name.clone(),
                            field: "architecture",
                            reason: format!(
                                "its weights need more scalars than the {budget} the file holds"
                            ),
                        })?;
                    }
                    if node.return_state || !initial.is_empty() || mask.is_some() {
                        let mut call = g.rnn(&named, x).initial_state(&initial);
                        if let Some(m) = mask {
                            call = call.mask_of(m);
                        }
                        let o = call.call()?;
                        std::iter::once(o.out).chain(o.states).collect()
                    } else if xs.len() > 1 || is_list_layer(&named) {
                        vec![g.apply_list(&named, &xs)?]
                    } else {
                        vec![g.apply(&named, x)?]
                    }
                }
                NodeLayer::Shares(owner) => {
                    let first = lookup(&tensors, owner).map_err(|_| unknown("shares", owner))?;
                    let layer = g.layer_of(first)?;
                    if node.return_state || !initial.is_empty() || mask.is_some() {
                        let mut call = g.reuse_rnn(layer, x).initial_state(&initial);
                        if let Some(m) = mask {
                            call = call.mask_of(m);
                        }
                        let o = call.call()?;
                        std::iter::once(o.out).chain(o.states).collect()
                    } else {
                        vec![g.reuse_list(layer, &xs)?]
                    }
                }
            };
            tensors.insert(&node.name, outs);
        }
        let outputs: Vec<Tensor> = spec
            .outputs
            .iter()
            .map(|r| lookup(&tensors, r))
            .collect::<Result<_>>()?;
        Ok(g.build(&inputs, &outputs)?.named(&spec.name))
    }
}

/// Layers called on a list even with one tensor (their single-input path refuses).
fn is_list_layer(spec: &LayerSpec) -> bool {
    matches!(
        spec,
        LayerSpec::Attention(_)
            | LayerSpec::AdditiveAttention(_)
            | LayerSpec::Concatenate(_)
            | LayerSpec::Add(_)
            | LayerSpec::Multiply(_)
            | LayerSpec::Average(_)
    )
}

/// The spec with the layer named `name` (the node's name is the layer's).
fn with_name(spec: &LayerSpec, name: &str) -> LayerSpec {
    let mut v = serde_json::to_value(spec).expect("layer specs serialise");
    if let Some(c) = v.get_mut("config").and_then(|c| c.as_object_mut()) {
        c.insert("name".into(), serde_json::json!(name));
    }
    serde_json::from_value(v).unwrap_or_else(|_| spec.clone())
}
