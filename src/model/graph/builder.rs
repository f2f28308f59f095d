//! [`Graph`]: wiring a functional model from typed handles, every shape checked as it is
//! wired.

use super::functional::Functional;
use super::{Layers, Node, Op, reads};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{StdRng, seeded_rng};
use crate::layers::{Dim, LayerConfig, format_shape};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the handles of different graphs.
static NEXT_GRAPH: AtomicU64 = AtomicU64::new(1);

/// A symbolic tensor of a [`Graph`]: a model input or one output of a layer call or merge
/// (Keras's `KerasTensor`). A plain copyable handle; using it in another graph is a typed
/// error.
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut g = Graph::<f64>::new(0);
/// let x = g.input("x", &[None, Some(2)])?;
/// let y = g.apply(&LstmConfig::new(3).return_sequences(true), x)?;
/// assert_eq!(g.shape(y)?, vec![None, Some(3)]);
/// let other = Graph::<f64>::new(0);
/// assert!(other.shape(y).is_err()); // a handle of another graph
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tensor {
    graph: u64,
    pub(crate) node: usize,
    pub(crate) out: usize,
}

/// A layer of a [`Graph`], to call again with the same weights ([`Graph::reuse`]).
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut g = Graph::<f64>::new(0);
/// let a = g.input("a", &[Some(4)])?;
/// let b = g.input("b", &[Some(4)])?;
/// let ya = g.apply(&DenseConfig::new(2), a)?;
/// let dense: rnnkit::model::LayerId = g.layer_of(ya)?;
/// let yb = g.reuse(dense, b)?; // the same weights
/// let model = g.build(&[a, b], &[ya, yb])?;
/// assert_eq!(model.param_count(), 10);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LayerId {
    graph: u64,
    pub(crate) index: usize,
}

/// Which layer of a built model: its name (`"gru"`, `"encoder"`) or the [`LayerId`] its
/// graph gave it. What [`Functional::layer`] and [`Graph::import`] take, from either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKey<'a> {
    /// The layer's name.
    Name(&'a str),
    /// The handle the layer's graph gave it.
    Id(LayerId),
}

impl<'a> From<&'a str> for LayerKey<'a> {
    fn from(name: &'a str) -> Self {
        LayerKey::Name(name)
    }
}

impl<'a> From<&'a String> for LayerKey<'a> {
    fn from(name: &'a String) -> Self {
        LayerKey::Name(name)
    }
}

impl From<LayerId> for LayerKey<'_> {
    fn from(id: LayerId) -> Self {
        LayerKey::Id(id)
    }
}

/// What a recurrent call returns: the output and the final states (Keras's
/// `return_state=True` list `[out, h]` or `[out, h, c]`), and the layer called.
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut g = Graph::<f64>::new(0);
/// let x = g.input("x", &[None, Some(2)])?;
/// let lstm = g.rnn(&LstmConfig::new(5), x).call()?;
/// assert_eq!(lstm.states.len(), 2); // h, c
/// assert_eq!(g.shape(lstm.states[1])?, vec![Some(5)]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RnnOutputs {
    /// The layer's output (the sequence, or the last step).
    pub out: Tensor,
    /// The final states in Keras's order: `[h]`, or `[h, c]` for LSTM.
    pub states: Vec<Tensor>,
    /// The layer, for calling it again.
    pub layer: LayerId,
}

/// Builds a graph model, Keras's Functional API with typed handles:
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// // The lecture's encoder-decoder: the encoder's final state starts the decoder.
/// let mut g = Graph::<f64>::new(0);
/// let enc_in = g.input("enc_in", &[None, Some(3)])?;
/// let dec_in = g.input("dec_in", &[None, Some(2)])?;
/// let enc = g.rnn(&LstmConfig::new(8), enc_in).call()?;
/// let dec = g
///     .rnn(&LstmConfig::new(8).return_sequences(true), dec_in)
///     .initial_state(&enc.states)
///     .call()?;
/// let y = g.apply(&DenseConfig::new(2).activation(Activation::Softmax), dec.out)?;
/// let model = g.build(&[enc_in, dec_in], &[y])?;
/// assert_eq!(model.param_count(), (4 * 8 * (3 + 8 + 1)) + (4 * 8 * (2 + 8 + 1)) + 18);
/// # Ok(()) }
/// ```
///
/// Every call checks its wiring at once: a tensor of another graph, shapes that do not
/// fit the layer, states of the wrong count or size give a typed error naming the layer,
/// and the graph is left as it was. Handles only point backwards, so a graph cannot have
/// a cycle.
#[derive(Debug)]
pub struct Graph<F: Float> {
    id: u64,
    rng: StdRng,
    pub(crate) nodes: Vec<Node>,
    pub(crate) layers: Layers<F>,
    names: HashSet<String>,
}

/// A recurrent call being set up: [`RnnCall::initial_state`], [`RnnCall::mask_of`], then
/// [`RnnCall::call`].
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut g = Graph::<f64>::new(0);
/// let ids = g.input("ids", &[None])?;
/// let h0 = g.input("h0", &[Some(4)])?;
/// let e = g.apply(&EmbeddingConfig::new(10, 3).mask_zero(true), ids)?;
/// // With initial states Keras passes no mask: give the Embedding's explicitly.
/// let gru = g.rnn(&GruConfig::new(4), e).initial_state(&[h0]).mask_of(e).call()?;
/// assert_eq!(gru.states.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RnnCall<'g, F: Float> {
    graph: &'g mut Graph<F>,
    layer: std::result::Result<LayerId, Error>,
    x: Tensor,
    initial: Vec<Tensor>,
    mask_of: Option<Tensor>,
}

impl<F: Float> RnnCall<'_, F> {
    /// Starts from these states (Keras's `initial_state`, `[h]` or `[h, c]`) instead of
    /// zeros; gradients flow into them. As in Keras, a layer called with initial states
    /// does not take its input's mask (pass one with [`RnnCall::mask_of`]).
    pub fn initial_state(mut self, states: &[Tensor]) -> Self {
        self.initial = states.to_vec();
        self
    }

    /// Passes the mask carried by `t` to the layer explicitly (Keras's `mask=` argument);
    /// the output then carries that mask.
    pub fn mask_of(mut self, t: Tensor) -> Self {
        self.mask_of = Some(t);
        self
    }

    /// Wires the call.
    ///
    /// # Errors
    /// As [`Graph::apply`]; [`Error::Shape`] for initial states of the wrong count or
    /// size; [`Error::Mask`] when `mask_of` names a tensor without a mask of the input's
    /// steps; [`Error::Unsupported`] for a layer without states.
    pub fn call(self) -> Result<RnnOutputs> {
        let RnnCall {
            graph,
            layer,
            x,
            initial,
            mask_of,
        } = self;
        let layer = layer?;
        graph.call_node(layer, vec![x], true, initial, mask_of)
    }
}

impl<F: Float> Graph<F> {
    /// An empty graph whose layers draw their initial weights from `seed`.
    pub fn new(seed: u64) -> Self {
        Graph {
            id: NEXT_GRAPH.fetch_add(1, Ordering::Relaxed),
            rng: seeded_rng(seed),
            nodes: Vec::new(),
            layers: Vec::new(),
            names: HashSet::new(),
        }
    }

    /// A model input of this shape without the batch axis (`None` = any length), Keras's
    /// `keras.Input(shape, name)`. Token ids for an `Embedding` are given as floats.
    ///
    /// # Errors
    /// [`Error::Config`] for a name already used in the graph or an empty shape.
    pub fn input(&mut self, name: &str, shape: &[Dim]) -> Result<Tensor> {
        if shape.is_empty() {
            return Err(Error::Config {
                layer: name.to_string(),
                field: "shape",
                reason: "an input needs at least one axis besides the batch".into(),
            });
        }
        self.claim(name)?;
        Ok(self.push(Node {
            name: name.to_string(),
            op: Op::Input,
            inputs: Vec::new(),
            shapes: vec![shape.to_vec()],
        }))
    }

    /// Builds a layer from `config` for `x` and calls it (Keras's `layer(x)`); returns its
    /// output. A recurrent layer called this way uses its input's mask and starts from
    /// zero states; [`Graph::rnn`] passes states.
    ///
    /// # Errors
    /// [`Error::Config`] for a tensor of another graph or a layer name already used; the
    /// layer's own error when `x`'s shape does not fit it ([`Error::Incompatible`]).
    pub fn apply(&mut self, config: &dyn LayerConfig<F>, x: Tensor) -> Result<Tensor> {
        let layer = self.new_layer(config, x)?;
        self.call_node(layer, vec![x], false, Vec::new(), None)
            .map(|o| o.out)
    }

    /// Builds a layer that takes a list of tensors (Keras's `layer([a, b])`: `Attention`
    /// on `[query, value]` or `[query, value, key]`) and calls it; the layer is built for
    /// the first tensor's shape.
    ///
    /// # Errors
    /// As [`Graph::apply`]; [`Error::Incompatible`] naming every input's shape when they do
    /// not fit together.
    pub fn apply_list(&mut self, config: &dyn LayerConfig<F>, xs: &[Tensor]) -> Result<Tensor> {
        let first = *xs.first().ok_or_else(|| Error::Config {
            layer: config.name().unwrap_or(config.default_name()).to_string(),
            field: "inputs",
            reason: "a call needs at least one tensor".into(),
        })?;
        let layer = self.new_layer(config, first)?;
        self.call_node(layer, xs.to_vec(), false, Vec::new(), None)
            .map(|o| o.out)
    }

    /// [`Graph::reuse`] for a layer called on a list of tensors.
    ///
    /// # Errors
    /// As [`Graph::apply_list`].
    pub fn reuse_list(&mut self, layer: LayerId, xs: &[Tensor]) -> Result<Tensor> {
        self.own_layer(layer)?;
        self.call_node(layer, xs.to_vec(), false, Vec::new(), None)
            .map(|o| o.out)
    }

    /// A recurrent call with states: `g.rnn(&config, x).initial_state(&[h, c]).call()?`
    /// returns the output and the final states (Keras's `return_state=True`).
    pub fn rnn(&mut self, config: &dyn LayerConfig<F>, x: Tensor) -> RnnCall<'_, F> {
        let layer = self.new_layer(config, x);
        RnnCall {
            graph: self,
            layer,
            x,
            initial: Vec::new(),
            mask_of: None,
        }
    }

    /// Calls an existing layer again, with the same weights (gradients from every call add
    /// up): Keras's shared layers.
    ///
    /// # Errors
    /// As [`Graph::apply`].
    pub fn reuse(&mut self, layer: LayerId, x: Tensor) -> Result<Tensor> {
        self.own_layer(layer)?;
        self.call_node(layer, vec![x], false, Vec::new(), None)
            .map(|o| o.out)
    }

    /// [`Graph::rnn`] for an existing layer (shared weights).
    pub fn reuse_rnn(&mut self, layer: LayerId, x: Tensor) -> RnnCall<'_, F> {
        let layer = self.own_layer(layer).map(|_| layer);
        RnnCall {
            graph: self,
            layer,
            x,
            initial: Vec::new(),
            mask_of: None,
        }
    }

    /// Adds a copy of a trained model's layer (same weights), to call in this graph: how
    /// an inference model for step-by-step decoding is wired from a trained seq2seq model
    /// (Keras reuses the layer objects; here the graph gets its own copy). The layer is
    /// found by name or by the handle its graph gave it at training time
    /// ([`RnnOutputs::layer`], [`Graph::layer_of`]), so layers need no names of their own.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let mut g = Graph::<f64>::new(0);
    /// let x = g.input("x", &[None, Some(2)])?;
    /// let y = g.apply(&GruConfig::new(3).name("gru"), x)?;
    /// let trained = g.build(&[x], &[y])?;
    /// let mut step = Graph::<f64>::new(0);
    /// let x1 = step.input("x", &[Some(1), Some(2)])?;
    /// let gru = step.import(&trained, "gru")?; // or by handle: Graph::layer_of(y)
    /// let out = step.reuse_rnn(gru, x1).call()?;
    /// let stepper = step.build(&[x1], &[out.out, out.states[0]])?;
    /// assert_eq!(stepper.get_weights(), trained.get_weights());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when `from` has no layer of that name, or this graph already has a
    /// layer or tensor of that name.
    pub fn import<'k>(
        &mut self,
        from: &Functional<F>,
        layer: impl Into<LayerKey<'k>>,
    ) -> Result<LayerId> {
        let key = layer.into();
        let l = from.layer(key).ok_or_else(|| Error::Config {
            layer: match key {
                LayerKey::Name(n) => n.to_string(),
                LayerKey::Id(id) => format!("layer #{} of its graph", id.index),
            },
            field: "layer",
            reason: format!(
                "the model {} has no such layer (a handle finds a layer only in the model \
                 its own graph built)",
                from.name
            ),
        })?;
        self.claim(l.name())?;
        self.layers.push(l.box_clone());
        Ok(LayerId {
            graph: self.id,
            index: self.layers.len() - 1,
        })
    }

    /// The layer whose call produced `t`.
    ///
    /// # Errors
    /// [`Error::Config`] when `t` is an input or a merge, or belongs to another graph.
    pub fn layer_of(&self, t: Tensor) -> Result<LayerId> {
        self.own(t)?;
        match &self.nodes[t.node].op {
            Op::Call { layer, .. } => Ok(LayerId {
                graph: self.id,
                index: *layer,
            }),
            _ => Err(Error::Config {
                layer: self.nodes[t.node].name.clone(),
                field: "tensor",
                reason: "not the output of a layer call".into(),
            }),
        }
    }

    /// The shape of `t` without the batch axis.
    ///
    /// # Errors
    /// [`Error::Config`] for a tensor of another graph.
    pub fn shape(&self, t: Tensor) -> Result<Vec<Dim>> {
        self.own(t)?;
        Ok(self.shape_of(t))
    }

    /// The model from these inputs to these outputs (Keras's `keras.Model(inputs,
    /// outputs)`). Only what the outputs need is kept.
    ///
    /// # Errors
    /// [`Error::Config`] for no output, a tensor of another graph, an input listed twice
    /// or missing, or an input the outputs do not use (naming it).
    pub fn build(self, inputs: &[Tensor], outputs: &[Tensor]) -> Result<Functional<F>> {
        let bad = |name: &str, reason: String| Error::Config {
            layer: name.to_string(),
            field: "inputs",
            reason,
        };
        if outputs.is_empty() {
            return Err(bad("model", "a model needs at least one output".into()));
        }
        for &t in inputs.iter().chain(outputs) {
            self.own(t)?;
        }
        // What the outputs need, walking back from them.
        let mut needed = vec![false; self.nodes.len()];
        for t in outputs {
            needed[t.node] = true;
        }
        for n in (0..self.nodes.len()).rev() {
            if needed[n] {
                for t in reads(&self.nodes[n]) {
                    needed[t.node] = true;
                }
            }
        }
        let mut order = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if let Op::Input = node.op {
                let listed = inputs.iter().filter(|t| t.node == i).count();
                match (listed, needed[i]) {
                    (0, true) => {
                        return Err(bad(
                            &node.name,
                            "the outputs need this input but it is not among the model's inputs"
                                .into(),
                        ));
                    }
                    (0, false) => {}
                    (1, true) => order.push(i),
                    (1, false) => {
                        return Err(bad(
                            &node.name,
                            "an input no output depends on (unused input)".into(),
                        ));
                    }
                    _ => return Err(bad(&node.name, "listed more than once".into())),
                }
            }
        }
        // The model's inputs in the order given.
        let input_nodes: Vec<usize> = inputs.iter().map(|t| t.node).collect();
        if inputs
            .iter()
            .any(|t| !matches!(self.nodes[t.node].op, Op::Input))
        {
            return Err(bad("model", "a model input must be a graph input".into()));
        }
        // Only the layers the outputs call are the model's (as in Keras): the others, and
        // the calls the outputs do not need, are left out.
        let mut nodes = self.nodes;
        let mut keep: Vec<Option<usize>> = vec![None; self.layers.len()];
        let mut layers = Vec::new();
        let mut origins = Vec::new();
        let mut pool: Vec<Option<Box<dyn crate::layers::Layer<F>>>> =
            self.layers.into_iter().map(Some).collect();
        for (k, node) in nodes.iter_mut().enumerate() {
            if let Op::Call { layer, first, .. } = &mut node.op {
                // A layer's first needed call owns it and bears its name (an earlier call
                // may be left out).
                (*layer, *first) = match (needed[k], keep[*layer]) {
                    (false, _) => (usize::MAX, false),
                    (true, Some(i)) => (i, false),
                    (true, None) => {
                        let l = pool[*layer].take().expect("each layer moved once");
                        node.name = l.name().to_string();
                        layers.push(l);
                        origins.push(Some(LayerId {
                            graph: self.id,
                            index: *layer,
                        }));
                        keep[*layer] = Some(layers.len() - 1);
                        (layers.len() - 1, true)
                    }
                };
            }
        }
        let mut model = Functional::new(
            nodes,
            layers,
            needed,
            input_nodes,
            outputs.iter().map(|t| (t.node, t.out)).collect(),
        );
        model.origins = origins;
        Ok(model)
    }

    fn push(&mut self, node: Node) -> Tensor {
        self.nodes.push(node);
        Tensor {
            graph: self.id,
            node: self.nodes.len() - 1,
            out: 0,
        }
    }

    fn claim(&mut self, name: &str) -> Result<()> {
        if !self.names.insert(name.to_string()) {
            return Err(Error::Config {
                layer: name.to_string(),
                field: "name",
                reason: "already used in this graph (names are unique, as in Keras)".into(),
            });
        }
        Ok(())
    }

    /// `base`, or `base_1`, `base_2`, … (Keras's automatic names).
    fn auto_name(&self, base: &str) -> String {
        if !self.names.contains(base) {
            return base.to_string();
        }
        (1..)
            .map(|k| format!("{base}_{k}"))
            .find(|n| !self.names.contains(n))
            .expect("a free name")
    }

    pub(crate) fn shape_of(&self, t: Tensor) -> Vec<Dim> {
        self.nodes[t.node].shapes[t.out].clone()
    }

    fn own(&self, t: Tensor) -> Result<()> {
        if t.graph != self.id || t.node >= self.nodes.len() {
            return Err(Error::Config {
                layer: "graph".into(),
                field: "tensor",
                reason: format!(
                    "a tensor of another graph (node {} output {}) cannot be used here",
                    t.node, t.out
                ),
            });
        }
        Ok(())
    }

    fn own_layer(&self, l: LayerId) -> Result<()> {
        if l.graph != self.id || l.index >= self.layers.len() {
            return Err(Error::Config {
                layer: "graph".into(),
                field: "layer",
                reason: "a layer of another graph cannot be called here".into(),
            });
        }
        Ok(())
    }

    /// Builds a layer for `x`'s shape, named from its config (or automatically).
    fn new_layer(&mut self, config: &dyn LayerConfig<F>, x: Tensor) -> Result<LayerId> {
        self.own(x)?;
        let name = match config.name() {
            Some(n) => n.to_string(),
            None => self.auto_name(config.default_name()),
        };
        if self.names.contains(&name) {
            return Err(Error::Config {
                layer: name,
                field: "name",
                reason: "already used in this graph (names are unique, as in Keras)".into(),
            });
        }
        let mut layer = config.build(&self.shape_of(x), &mut self.rng)?;
        layer.set_name(&name);
        self.names.insert(name);
        self.layers.push(layer);
        Ok(LayerId {
            graph: self.id,
            index: self.layers.len() - 1,
        })
    }

    /// Forgets a layer built for a call that then failed (it was the last one built).
    fn drop_unused(&mut self, layer: LayerId) {
        let called = self
            .nodes
            .iter()
            .any(|n| matches!(n.op, Op::Call { layer: l, .. } if l == layer.index));
        if !called && layer.index + 1 == self.layers.len() {
            let l = self.layers.pop().expect("just built");
            self.names.remove(l.name());
        }
    }

    fn call_node(
        &mut self,
        layer: LayerId,
        xs: Vec<Tensor>,
        states: bool,
        initial: Vec<Tensor>,
        mask_of: Option<Tensor>,
    ) -> Result<RnnOutputs> {
        let result = self.wire_call(layer, xs, states, initial, mask_of);
        if result.is_err() {
            self.drop_unused(layer);
        }
        result
    }

    fn wire_call(
        &mut self,
        layer: LayerId,
        xs: Vec<Tensor>,
        states: bool,
        initial: Vec<Tensor>,
        mask_of: Option<Tensor>,
    ) -> Result<RnnOutputs> {
        for &t in xs.iter().chain(&initial).chain(&mask_of) {
            self.own(t)?;
        }
        let l = &self.layers[layer.index];
        let lname = l.name().to_string();
        let shapes_in: Vec<Vec<Dim>> = xs.iter().map(|t| self.shape_of(*t)).collect();
        let out_shape = l.output_shape(&shapes_in)?;
        let in_shape = shapes_in[0].clone();
        let mut shapes = vec![out_shape];
        if states {
            let zero = crate::layers::state::zero_states_of(l.as_ref(), 1)?;
            if zero.is_empty() {
                return Err(Error::Unsupported {
                    layer: lname,
                    reason: format!("a {} layer has no states to pass", l.type_name()),
                });
            }
            if !initial.is_empty() {
                if initial.len() != zero.len() {
                    return Err(Error::Config {
                        layer: lname,
                        field: "initial_state",
                        reason: format!(
                            "a {} layer takes {} state tensors ({}), got {}",
                            l.type_name(),
                            zero.len(),
                            if zero.len() == 2 { "h and c" } else { "h" },
                            initial.len()
                        ),
                    });
                }
                for (t, z) in initial.iter().zip(&zero) {
                    let s = self.shape_of(*t);
                    if s != [Some(z.ncols())] {
                        return Err(Error::Shape {
                            layer: lname,
                            what: "initial state",
                            expected: format!("(None, {})", z.ncols()),
                            got: s.iter().map(|d| d.unwrap_or(0)).collect(),
                        });
                    }
                }
            }
            shapes.extend(zero.iter().map(|z| vec![Some(z.ncols())]));
        }
        if let Some(m) = mask_of {
            let ms = self.shape_of(m);
            if in_shape.len() != 2
                || ms.len() < 2
                || (ms[0].is_some() && in_shape[0].is_some() && ms[0] != in_shape[0])
            {
                return Err(Error::Mask {
                    layer: lname,
                    reason: format!(
                        "the mask of a {} tensor cannot mask an input of shape {}",
                        format_shape(&ms),
                        format_shape(&in_shape)
                    ),
                });
            }
        }
        let first = !self
            .nodes
            .iter()
            .any(|n| matches!(n.op, Op::Call { layer: l, .. } if l == layer.index));
        let name = if first {
            lname
        } else {
            let n = self.auto_name(&lname);
            self.names.insert(n.clone());
            n
        };
        let node_states = shapes.len() - 1;
        let t = self.push(Node {
            name,
            op: Op::Call {
                layer: layer.index,
                first,
                states,
                initial,
                mask_of,
            },
            inputs: xs,
            shapes,
        });
        Ok(RnnOutputs {
            out: t,
            states: (1..=node_states).map(|out| Tensor { out, ..t }).collect(),
            layer,
        })
    }
}
