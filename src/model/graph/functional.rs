//! [`Functional`]: a built graph model, run forwards and backwards over its nodes.

use super::builder::{LayerId, LayerKey};
use super::{Layers, Node, Op};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::state::zero_states_of;
use crate::layers::{Dim, Inputs, Layer, Mask, Mode, OutputGrads, Outputs};
use crate::model::{Model, ModelState};
use crate::param::{Module, Param};
use ndarray::{Array2, ArrayD, Ix2};

/// A graph model (Keras's `keras.Model(inputs, outputs)`, class `Functional`), built by
/// [`Graph::build`](crate::Graph::build): several inputs and outputs, recurrent states
/// passed between layers, shared layers, merges and Keras's masks.
///
/// A [`Model`]: [`Model::forward`], [`Model::infer`] and [`Model::backward`] take one
/// array per input (in the order given to [`Graph::build`](crate::Graph::build)) and
/// output, and the [`Trainer`](crate::Trainer) trains it through them; with one input and
/// one output it trains like a `Sequential`. A forward pass that fails (an input
/// that does not fit its declared shape, a batch that differs between inputs, any layer's
/// error, naming it) leaves the model unchanged but for its training cache, cleared.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::{Array3, ArrayD};
/// # fn main() -> Result<(), rnnkit::Error> {
/// // A residual RNN: two LSTMs with a skip connection.
/// let mut g = Graph::<f64>::new(1);
/// let x = g.input("x", &[None, Some(4)])?;
/// let a = g.apply(&LstmConfig::new(4).return_sequences(true), x)?;
/// let b = g.apply(&LstmConfig::new(4).return_sequences(true), a)?;
/// let skip = g.apply_list(&AddConfig::new(), &[a, b])?;
/// let y = g.apply(&DenseConfig::new(1), skip)?;
/// let mut model = g.build(&[x], &[y])?;
/// let xs = Array3::from_elem((2, 5, 4), 0.1).into_dyn();
/// let out = model.forward(Inputs::new(&xs).mode(Mode::Train))?;
/// assert_eq!(out[0].output.shape(), &[2, 5, 1]);
/// let dy = ArrayD::ones(out[0].output.raw_dim());
/// let dx = model.backward(&[OutputGrads::new(&dy)])?;
/// assert_eq!(dx[0].shape(), xs.shape());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Functional<F: Float> {
    pub(super) name: String,
    pub(super) nodes: Vec<Node>,
    pub(super) layers: Layers<F>,
    pub(super) needed: Vec<bool>,
    pub(super) inputs: Vec<usize>,
    pub(super) outputs: Vec<(usize, usize)>,
    /// Per node: the copy of a shared layer its call trained with (later calls only).
    instances: Vec<Option<Box<dyn Layer<F>>>>,
    /// Per layer: the handle its graph gave it (none for a model read from a file).
    pub(super) origins: Vec<Option<LayerId>>,
    cache: Option<Cache>,
    /// One inference at a time through `&self` when a layer is stateful.
    serial: crate::model::Serial,
}

/// What a training pass keeps for backward besides the layers' own caches.
#[derive(Debug, Clone)]
struct Cache {
    /// Per node and output, the actual shape.
    shapes: Vec<Vec<Vec<usize>>>,
}

impl<F: Float> Clone for Functional<F> {
    fn clone(&self) -> Self {
        Functional {
            name: self.name.clone(),
            nodes: self.nodes.clone(),
            layers: self.layers.iter().map(|l| l.box_clone()).collect(),
            needed: self.needed.clone(),
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
            instances: (0..self.nodes.len()).map(|_| None).collect(),
            origins: self.origins.clone(),
            cache: None,
            serial: crate::model::Serial::default(),
        }
    }
}

/// How the pass reaches the layers: training through `&mut`, inference through `&`.
enum Access<'a, F: Float> {
    Train {
        layers: &'a mut Layers<F>,
        instances: &'a mut Vec<Option<Box<dyn Layer<F>>>>,
        /// `Mode::Infer` through `&mut self` (a user's `forward` in inference mode): no
        /// dropout, no cache.
        mode: Mode,
    },
    Infer(&'a Layers<F>),
}

impl<F: Float> Access<'_, F> {
    fn layer(&self, l: usize) -> &dyn Layer<F> {
        match self {
            Access::Train { layers, .. } => layers[l].as_ref(),
            Access::Infer(layers) => layers[l].as_ref(),
        }
    }

    /// The layer a training call runs: the layer itself at its first call, a fresh copy
    /// (gradients zeroed, kept for backward) at later calls of a shared layer.
    fn trained<'b>(
        layers: &'b mut Layers<F>,
        instances: &'b mut [Option<Box<dyn Layer<F>>>],
        node: usize,
        l: usize,
        first: bool,
    ) -> &'b mut dyn Layer<F> {
        if first {
            layers[l].as_mut()
        } else {
            let mut copy = layers[l].box_clone();
            copy.zero_grad();
            instances[node].insert(copy).as_mut()
        }
    }

    /// A call of layer `l` at node `node`: the layer itself (or, at a later call of a shared
    /// layer in training, its copy).
    fn call(
        &mut self,
        (node, l, first): (usize, usize, bool),
        inputs: Inputs<'_, F>,
    ) -> Result<Outputs<F>> {
        match self {
            Access::Infer(layers) => layers[l].infer(inputs),
            Access::Train {
                layers,
                instances,
                mode,
            } => Self::trained(layers, instances, node, l, first).forward(inputs.mode(*mode)),
        }
    }
}

/// Values and masks of every node output in one pass, and the logits of its calls.
struct Pass<F> {
    values: Vec<Vec<Option<ArrayD<F>>>>,
    masks: Vec<Vec<Option<Mask>>>,
    logits: Vec<Option<ArrayD<F>>>,
}

impl<F: Float> Functional<F> {
    pub(crate) fn new(
        nodes: Vec<Node>,
        layers: Layers<F>,
        needed: Vec<bool>,
        inputs: Vec<usize>,
        outputs: Vec<(usize, usize)>,
    ) -> Self {
        let n = nodes.len();
        Functional {
            name: "functional".into(),
            nodes,
            layers,
            needed,
            inputs,
            outputs,
            instances: (0..n).map(|_| None).collect(),
            origins: Vec::new(),
            cache: None,
            serial: crate::model::Serial::default(),
        }
    }

    /// Sets the model's name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The model's input names and shapes (without batch), in input order.
    pub fn inputs(&self) -> Vec<(&str, &[Dim])> {
        self.inputs
            .iter()
            .map(|&n| (self.nodes[n].name.as_str(), &self.nodes[n].shapes[0][..]))
            .collect()
    }

    /// The layers, in the order they were added (each once, however often it is called).
    pub fn layers(&self) -> impl Iterator<Item = &dyn Layer<F>> {
        self.layers.iter().map(|l| l.as_ref())
    }

    /// A layer of the model, by its name or by the handle its graph gave it while the
    /// model was being wired ([`RnnOutputs::layer`](crate::model::RnnOutputs),
    /// [`Graph::layer_of`](crate::Graph::layer_of)): no layer needs a name of its own to be
    /// found again.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let mut g = Graph::<f64>::new(0);
    /// let x = g.input("x", &[None, Some(2)])?;
    /// let enc = g.rnn(&GruConfig::new(3), x).call()?; // no name given
    /// let model = g.build(&[x], &[enc.out])?;
    /// assert_eq!(model.layer(enc.layer).map(|l| l.name()), Some("gru"));
    /// assert!(model.layer("gru").is_some());
    /// # Ok(()) }
    /// ```
    pub fn layer<'k>(&self, key: impl Into<LayerKey<'k>>) -> Option<&dyn Layer<F>> {
        let i = self.layer_index(key.into())?;
        Some(self.layers[i].as_ref())
    }

    /// The layer [`Functional::layer`] finds, mutably (to set its weights).
    pub fn layer_mut<'k>(
        &mut self,
        key: impl Into<LayerKey<'k>>,
    ) -> Option<&mut (dyn Layer<F> + 'static)> {
        let i = self.layer_index(key.into())?;
        Some(self.layers[i].as_mut())
    }

    fn layer_index(&self, key: LayerKey<'_>) -> Option<usize> {
        match key {
            LayerKey::Name(name) => self.layers.iter().position(|l| l.name() == name),
            LayerKey::Id(id) => self.origins.iter().position(|o| *o == Some(id)),
        }
    }

    /// Inference with masks attached to the inputs (`masks[k]` `[batch, steps]` on input
    /// `k`; missing entries: none), as if each input came from a masking layer: how a
    /// step-by-step decoder's attention sees the encoder's padding.
    pub(crate) fn infer_with_masks(
        &self,
        xs: &[&ArrayD<F>],
        masks: &[Option<&Mask>],
    ) -> Result<Vec<Outputs<F>>> {
        self.check_masks(xs, masks)?;
        let pass = self.execute(&mut Access::Infer(&self.layers), xs, masks)?;
        Ok(self.collect(pass))
    }

    /// [`Error::Mask`] for a mask that does not fit its input.
    fn check_masks(&self, xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Result<()> {
        for (k, (x, m)) in xs.iter().zip(masks).enumerate() {
            if let Some(m) = m
                && (x.ndim() < 2 || m.dim() != (x.shape()[0], x.shape()[1]))
            {
                return Err(Error::Mask {
                    layer: self.nodes[self.inputs[k.min(self.inputs.len() - 1)]]
                        .name
                        .clone(),
                    reason: format!(
                        "mask of shape {:?} for an input of shape {:?}: expected [batch, steps]",
                        m.shape(),
                        x.shape()
                    ),
                });
            }
        }
        Ok(())
    }

    /// One forward pass over a batch: one array per input (in the order given to
    /// [`Graph::build`](crate::Graph::build)), one [`Outputs`] per output with the mask it
    /// carries. Errors: [`Error::Shape`] for the wrong number of inputs, or an input
    /// whose shape does not fit its declared one or whose batch differs from the first
    /// input's; any layer's error, naming it. The model is unchanged then, but for a
    /// training cache cleared.
    fn forward_with_masks(
        &mut self,
        xs: &[&ArrayD<F>],
        masks: &[Option<&Mask>],
        mode: Mode,
    ) -> Result<Vec<Outputs<F>>> {
        self.cache = None;
        self.check_masks(xs, masks)?;
        let (mut layers, mut instances) = (
            std::mem::take(&mut self.layers),
            std::mem::take(&mut self.instances),
        );
        let pass = self.execute(
            &mut Access::Train {
                layers: &mut layers,
                instances: &mut instances,
                mode,
            },
            xs,
            masks,
        );
        self.layers = layers;
        self.instances = instances;
        let pass = pass?;
        if mode == Mode::Infer {
            return Ok(self.collect(pass));
        }
        let shapes = pass
            .values
            .iter()
            .map(|outs| {
                outs.iter()
                    .map(|v| v.as_ref().map_or(Vec::new(), |a| a.shape().to_vec()))
                    .collect()
            })
            .collect();
        self.cache = Some(Cache { shapes });
        Ok(self.collect(pass))
    }

    /// The outputs of a pass, with the logits of softmax/sigmoid output layers.
    fn collect(&self, pass: Pass<F>) -> Vec<Outputs<F>> {
        self.outputs
            .iter()
            .map(|&(n, o)| {
                let logits = match (&self.nodes[n].op, o) {
                    (Op::Call { layer, .. }, 0) => matches!(
                        self.layers[*layer].output_activation(),
                        Activation::Softmax | Activation::Sigmoid
                    )
                    .then(|| pass.logits[n].clone())
                    .flatten(),
                    _ => None,
                };
                let output = pass.values[n][o].clone().expect("outputs are computed");
                Outputs {
                    states: Vec::new(),
                    output,
                    mask: pass.masks[n][o].clone(),
                    logits,
                }
            })
            .collect()
    }

    /// Checks the inputs against the declared shapes.
    fn check_inputs(&self, xs: &[&ArrayD<F>]) -> Result<()> {
        if xs.len() != self.inputs.len() {
            return Err(Error::Shape {
                layer: self.name.clone(),
                what: "list of inputs",
                expected: format!("{} arrays", self.inputs.len()),
                got: vec![xs.len()],
            });
        }
        let batch = xs[0].shape().first().copied();
        for (x, &n) in xs.iter().zip(&self.inputs) {
            let (name, want) = (&self.nodes[n].name, &self.nodes[n].shapes[0]);
            let fits =
                x.shape().first().copied() == batch && crate::layers::fits_batched(x.shape(), want);
            if !fits {
                return Err(Error::Shape {
                    layer: name.clone(),
                    what: "input",
                    expected: crate::layers::format_batched(
                        &format!("batch {}", batch.unwrap_or(0)),
                        want,
                    ),
                    got: x.shape().to_vec(),
                });
            }
        }
        Ok(())
    }

    fn execute(
        &self,
        access: &mut Access<'_, F>,
        xs: &[&ArrayD<F>],
        in_masks: &[Option<&Mask>],
    ) -> Result<Pass<F>> {
        self.check_inputs(xs)?;
        // Stateful layers move their carried states on: through `&self`, one call at a time.
        let _serial = (matches!(access, Access::Infer(_))
            && self
                .layers
                .iter()
                .any(|l| l.spec().is_some_and(|s| s.is_stateful())))
        .then(|| self.serial.lock());
        let n = self.nodes.len();
        let mut pass = Pass {
            values: self
                .nodes
                .iter()
                .map(|nd| vec![None; nd.shapes.len()])
                .collect(),
            masks: self
                .nodes
                .iter()
                .map(|nd| vec![None; nd.shapes.len()])
                .collect(),
            logits: vec![None; n],
        };
        for (i, &node) in self.inputs.iter().enumerate() {
            pass.values[node][0] = Some(xs[i].clone());
            pass.masks[node][0] = in_masks.get(i).copied().flatten().cloned();
        }
        for k in 0..n {
            if !self.needed[k] {
                continue;
            }
            let node = &self.nodes[k];
            let value = |pass: &Pass<F>, t: &super::Tensor| {
                pass.values[t.node][t.out]
                    .clone()
                    .expect("nodes run in order")
            };
            match &node.op {
                Op::Input => {}
                // Calls without states: one tensor or a list, each with its own mask.
                Op::Call {
                    layer,
                    first,
                    states: false,
                    ..
                } => {
                    let vals: Vec<&ArrayD<F>> = node
                        .inputs
                        .iter()
                        .map(|t| {
                            pass.values[t.node][t.out]
                                .as_ref()
                                .expect("nodes run in order")
                        })
                        .collect();
                    let masks: Vec<Option<&Mask>> = node
                        .inputs
                        .iter()
                        .map(|t| pass.masks[t.node][t.out].as_ref())
                        .collect();
                    let out =
                        access.call((k, *layer, *first), Inputs::list(&vals).masks(&masks))?;
                    pass.values[k][0] = Some(out.output);
                    pass.masks[k][0] = out.mask;
                    pass.logits[k] = out.logits;
                }
                // Recurrent calls passing states (initial states in, final states out).
                Op::Call {
                    layer,
                    first,
                    initial,
                    mask_of,
                    ..
                } => {
                    let xt = &node.inputs[0];
                    let x = pass.values[xt.node][xt.out]
                        .as_ref()
                        .expect("nodes run in order");
                    let in_mask = pass.masks[xt.node][xt.out].clone();
                    let explicit =
                        match mask_of {
                            Some(t) => {
                                Some(pass.masks[t.node][t.out].clone().ok_or_else(|| {
                                    Error::Mask {
                                        layer: node.name.clone(),
                                        reason: format!(
                                            "the tensor from {} given as its mask carries no mask",
                                            self.nodes[t.node].name
                                        ),
                                    }
                                })?)
                            }
                            None => None,
                        };
                    // Keras: a call with initial states takes no input mask of its own.
                    let layer_mask = match (&explicit, initial.is_empty()) {
                        (Some(m), _) => Some(m.clone()),
                        (None, true) => in_mask.clone(),
                        (None, false) => None,
                    };
                    let st = if initial.is_empty() {
                        zero_states_of(access.layer(*layer), x.shape()[0])?
                    } else {
                        initial
                            .iter()
                            .map(|t| {
                                value(&pass, t).into_dimensionality::<Ix2>().map_err(|_| {
                                    Error::Shape {
                                        layer: node.name.clone(),
                                        what: "initial state",
                                        expected: "[batch, units]".into(),
                                        got: vec![],
                                    }
                                })
                            })
                            .collect::<Result<_>>()?
                    };
                    let call = Inputs::new(x).mask(layer_mask.as_ref()).states(&st);
                    let out = access.call((k, *layer, *first), call)?;
                    // A sequence output carries the mask the steps ran under (Keras:
                    // the given mask, else the input's), a last-step output none.
                    let out_mask = if out.output.ndim() == 3 {
                        explicit.or(in_mask)
                    } else {
                        None
                    };
                    pass.values[k][0] = Some(out.output);
                    for (i, s) in out.states.into_iter().enumerate() {
                        pass.values[k][i + 1] = Some(s.into_dyn());
                    }
                    pass.masks[k][0] = out_mask;
                    pass.logits[k] = out.logits;
                }
            }
        }
        Ok(pass)
    }

    /// The backward of the last training pass: one dL/d(output) per output (with respect
    /// to the logits where `from_logits` says so); returns dL/d(input) per input (zeros
    /// for token ids) and **adds** every weight gradient into its [`Param`] (a shared
    /// layer's from all its calls). Errors: [`Error::NoCache`] without a training pass
    /// before; [`Error::Shape`] for the wrong number of gradients or one of the wrong
    /// shape. Without `input_grads` the input gradients are not formed: the layers that
    /// read only the model's inputs may skip theirs, and empty arrays are returned.
    fn backward_inner(
        &mut self,
        d_outputs: &[&ArrayD<F>],
        from_logits: &[bool],
        input_grads: bool,
    ) -> Result<Vec<ArrayD<F>>> {
        let Some(cache) = self.cache.take() else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        let result = self.backward_cached(&cache, d_outputs, from_logits, input_grads);
        self.cache = Some(cache);
        result
    }

    fn backward_cached(
        &mut self,
        cache: &Cache,
        d_outputs: &[&ArrayD<F>],
        from_logits: &[bool],
        input_grads: bool,
    ) -> Result<Vec<ArrayD<F>>> {
        if d_outputs.len() != self.outputs.len() {
            return Err(Error::Shape {
                layer: self.name.clone(),
                what: "list of output gradients",
                expected: format!("{} arrays", self.outputs.len()),
                got: vec![d_outputs.len()],
            });
        }
        let mut grads: Vec<Vec<Option<ArrayD<F>>>> = self
            .nodes
            .iter()
            .map(|nd| vec![None; nd.shapes.len()])
            .collect();
        let add =
            |grads: &mut Vec<Vec<Option<ArrayD<F>>>>, (n, o): (usize, usize), g: ArrayD<F>| {
                let slot = &mut grads[n][o];
                match slot {
                    Some(acc) => *acc += &g,
                    None => *slot = Some(g),
                }
            };
        for (&(n, o), d) in self.outputs.iter().zip(d_outputs) {
            let want = &cache.shapes[n][o];
            if d.shape() != &want[..] {
                return Err(Error::Shape {
                    layer: self.nodes[n].name.clone(),
                    what: "dL/d(output)",
                    expected: format!("{want:?}"),
                    got: d.shape().to_vec(),
                });
            }
        }
        // Outputs whose gradient is with respect to their layer's logits.
        let logits_nodes: Vec<usize> = self
            .outputs
            .iter()
            .zip(from_logits.iter().chain(std::iter::repeat(&false)))
            .filter(|&((_, o), &l)| l && *o == 0)
            .map(|((n, _), _)| *n)
            .collect();
        for (&(n, o), d) in self.outputs.iter().zip(d_outputs) {
            add(&mut grads, (n, o), (*d).clone());
        }
        let zeros = |n: usize, o: usize| ArrayD::<F>::zeros(cache.shapes[n][o].clone());
        for k in (0..self.nodes.len()).rev() {
            if !self.needed[k] {
                continue;
            }
            let node = self.nodes[k].clone();
            let mut g_out: Vec<ArrayD<F>> = grads[k]
                .iter_mut()
                .enumerate()
                .map(|(o, g)| g.take().unwrap_or_else(|| zeros(k, o)))
                .collect();
            match &node.op {
                Op::Input => grads[k][0] = Some(g_out.swap_remove(0)),
                Op::Call {
                    layer,
                    first,
                    states,
                    initial,
                    ..
                } => {
                    let dy = g_out.remove(0);
                    let inst: &mut dyn Layer<F> = if *first {
                        self.layers[*layer].as_mut()
                    } else {
                        self.instances[k]
                            .as_deref_mut()
                            .ok_or_else(|| Error::NoCache {
                                layer: node.name.clone(),
                            })?
                    };
                    // One gradient per input tensor, then the initial states'.
                    let d_states: Vec<Array2<F>> = g_out
                        .into_iter()
                        .map(|g| g.into_dimensionality::<Ix2>().expect("states are 2-D"))
                        .collect();
                    // A call reading only the model's inputs forms no input gradient
                    // nobody wants.
                    let is_input = |n: usize| matches!(self.nodes[n].op, Op::Input);
                    let wanted = input_grads || node.inputs.iter().any(|t| !is_input(t.node));
                    let g = inst.backward(
                        OutputGrads::new(&dy)
                            .states(&d_states)
                            .from_logits(!*states && logits_nodes.contains(&k))
                            .input_grads(wanted),
                    )?;
                    let (dxs, d_init) = if *states {
                        (g.dxs, g.states)
                    } else {
                        (g.dxs, Vec::new())
                    };
                    if !*first {
                        self.add_shared_grads(*layer, k)?;
                    }
                    if wanted {
                        for (t, dx) in node.inputs.iter().zip(dxs) {
                            add(&mut grads, (t.node, t.out), dx);
                        }
                    }
                    for (t, d) in initial.iter().zip(d_init) {
                        add(&mut grads, (t.node, t.out), d.into_dyn());
                    }
                }
            }
        }
        if !input_grads {
            return Ok(vec![ArrayD::zeros(ndarray::IxDyn(&[0])); self.inputs.len()]);
        }
        Ok(self
            .inputs
            .iter()
            .map(|&n| grads[n][0].take().unwrap_or_else(|| zeros(n, 0)))
            .collect())
    }
}

impl<F: Float> Functional<F> {
    /// Adds the gradients of node `k`'s copy of a shared layer into the layer's own.
    fn add_shared_grads(&mut self, layer: usize, k: usize) -> Result<()> {
        let mut g = Vec::new();
        if let Some(inst) = &self.instances[k] {
            inst.visit_params(&mut |_, p| g.push(p.grad().clone()));
        }
        let mut it = g.into_iter();
        let mut res = Ok(());
        self.layers[layer].visit_params_mut(&mut |_, p| {
            if let (Some(gi), true) = (it.next(), res.is_ok()) {
                res = p.add_grad(&gi);
            }
        });
        res
    }
}

impl<F: Float> Model<F> for Functional<F> {
    fn input_shapes(&self) -> Vec<Vec<Dim>> {
        self.inputs
            .iter()
            .map(|&n| self.nodes[n].shapes[0].clone())
            .collect()
    }
    fn output_shapes(&self) -> Vec<Vec<Dim>> {
        self.outputs
            .iter()
            .map(|&(n, o)| self.nodes[n].shapes[o].clone())
            .collect()
    }
    fn output_activations(&self) -> Vec<Activation> {
        self.outputs
            .iter()
            .map(|&(n, o)| match (&self.nodes[n].op, o) {
                (Op::Call { layer, .. }, 0) => self.layers[*layer].output_activation(),
                _ => Activation::Linear,
            })
            .collect()
    }
    fn forward(&mut self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>> {
        self.no_states(&inputs)?;
        let masks: Vec<_> = (0..inputs.xs.len()).map(|k| inputs.mask_at(k)).collect();
        self.forward_with_masks(&crate::layers::call::refs(&inputs.xs), &masks, inputs.mode)
    }
    fn infer(&self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>> {
        self.no_states(&inputs)?;
        let masks: Vec<_> = (0..inputs.xs.len()).map(|k| inputs.mask_at(k)).collect();
        self.infer_with_masks(&crate::layers::call::refs(&inputs.xs), &masks)
    }
    fn backward(&mut self, grads: &[OutputGrads<'_, F>]) -> Result<Vec<ArrayD<F>>> {
        let dys: Vec<&ArrayD<F>> = grads.iter().map(|g| g.dy).collect();
        let from_logits: Vec<bool> = grads.iter().map(|g| g.from_logits).collect();
        let input_grads = grads.is_empty() || grads.iter().any(|g| g.input_grads);
        self.backward_inner(&dys, &from_logits, input_grads)
    }
    fn architecture(&self) -> Result<crate::model::Architecture> {
        self.spec_graph().map(crate::model::Architecture::Graph)
    }
    fn summary(&self) -> crate::model::Summary {
        Functional::summary(self)
    }
    fn state(&self) -> Option<&dyn ModelState<F>> {
        Some(self)
    }
    fn state_mut(&mut self) -> Option<&mut dyn ModelState<F>> {
        Some(self)
    }
}

impl<F: Float> ModelState<F> for Functional<F> {
    fn reset_states(&mut self) {
        for layer in &mut self.layers {
            crate::layers::state::reset_of(layer.as_mut());
        }
    }
    fn states(&self) -> Vec<Vec<ndarray::Array2<F>>> {
        self.layers
            .iter()
            .map(|l| crate::layers::state::states_of(l.as_ref()))
            .collect()
    }
    fn rng_state(&self) -> Vec<Vec<u64>> {
        crate::layers::rng_state_of(&self.layers)
    }
    fn set_rng_state(&mut self, state: &[Vec<u64>]) -> Result<()> {
        crate::layers::set_rng_state_of(&self.name, &mut self.layers, state)
    }
}

impl<F: Float> Module<F> for Functional<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        for l in &self.layers {
            let name = l.name().to_string();
            l.visit_params(&mut |p, param| f(&format!("{name}/{p}"), param));
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        for l in &mut self.layers {
            let name = l.name().to_string();
            l.visit_params_mut(&mut |p, param| f(&format!("{name}/{p}"), param));
        }
    }
}
impl<F: Float> Functional<F> {
    /// A graph model's states are its tensors: explicit layer states are refused.
    fn no_states(&self, inputs: &Inputs<'_, F>) -> Result<()> {
        match inputs.states {
            None => Ok(()),
            Some(_) => Err(Error::Unsupported {
                layer: self.name.clone(),
                reason: "a graph model takes initial states as inputs of its graph".into(),
            }),
        }
    }
}
