use super::summary::{Summary, SummaryRow};
use super::{Model, ModelSpec, ModelState};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{StdRng, seeded_rng};
use crate::layers::state::{reset_of, states_of, zero_states_of};
use crate::layers::{
    Dim, Inputs, Layer, LayerConfig, Mask, Mode, OutputGrads, Outputs, format_shape,
};
use crate::param::{Module, Param};
use ndarray::{Array2, ArrayD};
use std::collections::HashMap;

/// A stack of layers, as `keras.Sequential`.
///
/// Built with the input shape without the batch axis (`[steps, features]`, steps may be
/// open); each pushed layer is built for the previous layer's output shape, so a layer that
/// does not fit is refused when pushed, naming both layers. A mask (from a
/// [`Masking`](crate::layers::Masking) layer, or given with the input, [`Inputs::mask`](crate::Inputs::mask)) travels
/// through the stack as in Keras.
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// // The lecture's model 1.
/// let model = Sequential::<f32>::new(&[3, 1])
///     .push(SimpleRnnConfig::new(20))?
///     .push(DenseConfig::new(1))?;
/// assert_eq!(model.param_count(), 461);
/// println!("{}", model.summary());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Sequential<F: Float> {
    name: String,
    input_shape: Vec<Dim>,
    layers: Vec<Box<dyn Layer<F>>>,
    shapes: Vec<Vec<Dim>>,
    rng: StdRng,
    name_counts: HashMap<String, usize>,
    serial: super::Serial,
    /// The last forward was a successful `Mode::Train` one: backward may run.
    trained: bool,
}

impl<F: Float> Sequential<F> {
    /// An empty model for inputs of `input_shape` (without batch), weights seeded with 0.
    pub fn new(input_shape: &[usize]) -> Self {
        Self::with_input_shape(input_shape.iter().map(|&d| Some(d)).collect())
    }

    /// An empty model whose input shape may have open dimensions (`None`), e.g.
    /// `vec![None, Some(3)]` for sequences of any length with 3 features.
    pub fn with_input_shape(input_shape: Vec<Dim>) -> Self {
        Sequential {
            name: "sequential".into(),
            input_shape,
            layers: Vec::new(),
            shapes: Vec::new(),
            rng: seeded_rng(0),
            name_counts: HashMap::new(),
            serial: super::Serial::default(),
            trained: false,
        }
    }

    /// Renames the model (Keras's `name`, default `"sequential"`).
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Builds an untrained model from an architecture (weights drawn with `seed`).
    ///
    /// # Errors
    /// As [`Sequential::add`] for each layer.
    pub fn from_spec(spec: &ModelSpec, seed: u64) -> Result<Self> {
        let mut model = Self::with_input_shape(spec.input_shape.clone())
            .named(&spec.name)
            .seed(seed);
        for layer in &spec.layers {
            model.add(layer)?;
        }
        Ok(model)
    }

    /// The architecture as data (what a model file stores next to the weights).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a layer type without a saved form.
    pub fn spec(&self) -> Result<ModelSpec> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                l.spec().ok_or_else(|| Error::Unsupported {
                    layer: l.name().to_string(),
                    reason: format!(
                        "cannot be saved: {} has no saved form (Layer::spec)",
                        l.type_name()
                    ),
                })
            })
            .collect::<Result<_>>()?;
        Ok(ModelSpec {
            name: self.name.clone(),
            input_shape: self.input_shape.clone(),
            layers,
        })
    }

    /// Reseeds the initialiser for the layers pushed after this call.
    pub fn seed(mut self, seed: u64) -> Self {
        self.rng = seeded_rng(seed);
        self
    }

    /// Builds a layer from `config` for the current output shape and appends it.
    ///
    /// # Errors
    /// [`Error::Incompatible`] (naming both layers) when the layer cannot take the previous
    /// output, [`Error::Config`] for invalid options.
    pub fn push<C: LayerConfig<F>>(mut self, config: C) -> Result<Self> {
        self.add(&config)?;
        Ok(self)
    }

    /// Builds a layer from `config` and appends it (the `&mut` form of [`Sequential::push`]).
    ///
    /// # Errors
    /// As [`Sequential::push`].
    pub fn add(&mut self, config: &dyn LayerConfig<F>) -> Result<&mut Self> {
        let input = self.output_shape().to_vec();
        let layer = config
            .build(&input, &mut self.rng)
            .map_err(|e| self.blame(e))?;
        let name = match config.name() {
            Some(n) => {
                self.check_name(n)?;
                n.to_string()
            }
            None => self.unique_name(config.default_name()),
        };
        self.append(layer, name)
    }

    /// Appends an already built layer (its name is kept unless it clashes).
    ///
    /// # Errors
    /// [`Error::Incompatible`] when the layer cannot take the previous output;
    /// [`Error::Config`] for a name a model file could not hold (empty, with `/`, or
    /// `optimizer`).
    pub fn add_layer(&mut self, layer: Box<dyn Layer<F>>) -> Result<&mut Self> {
        let name = layer.name().to_string();
        let name = if self.layers.iter().any(|l| l.name() == name) {
            self.unique_name(&name)
        } else {
            name
        };
        self.check_name(&name)?;
        self.append(layer, name)
    }

    fn append(&mut self, mut layer: Box<dyn Layer<F>>, name: String) -> Result<&mut Self> {
        layer.set_name(&name);
        let out = layer
            .output_shape(&[self.output_shape().to_vec()])
            .map_err(|e| self.blame(e))?;
        self.reserve_name(&name);
        self.layers.push(layer);
        self.shapes.push(out);
        Ok(self)
    }

    /// Rewrites an `Incompatible` error so it names the previous layer and its output.
    fn blame(&self, e: Error) -> Error {
        match e {
            Error::Incompatible { layer, reason, .. } => Error::Incompatible {
                layer,
                previous: match self.layers.last() {
                    Some(l) => format!(
                        "{} ({}) with output {}",
                        l.name(),
                        l.type_name(),
                        format_shape(self.output_shape())
                    ),
                    None => format!("the input {}", format_shape(&self.input_shape)),
                },
                reason,
            },
            other => other,
        }
    }

    /// Refuses a name a layer of this model has, an empty one, one with `/` (weights are
    /// saved as `<layer>/<weight>`) and `optimizer` (a checkpoint's optimizer state).
    fn check_name(&self, name: &str) -> Result<()> {
        let reason = if self.layers.iter().any(|l| l.name() == name) {
            "a layer of this model already has it: names must be unique"
        } else if name.is_empty() || name.contains('/') {
            "names must be non-empty and without `/`"
        } else if name == "optimizer" {
            "`optimizer` is reserved for a checkpoint's optimizer state"
        } else {
            return Ok(());
        };
        Err(Error::Config {
            layer: name.to_string(),
            field: "name",
            reason: reason.into(),
        })
    }

    /// Records an explicitly given name so later default names do not repeat it (a
    /// loaded `lstm_1` makes the next default LSTM name `lstm_2`).
    fn reserve_name(&mut self, name: &str) {
        let numbered = name
            .rsplit_once('_')
            .and_then(|(stem, k)| Some((stem, k.parse::<usize>().ok()?.checked_add(1)?)));
        let (stem, n) = numbered.unwrap_or((name, 1));
        let count = self.name_counts.entry(stem.to_string()).or_insert(0);
        *count = (*count).max(n);
    }

    /// Keras's next default name for `stem` (`lstm`, `lstm_1`, ...), skipping any a layer
    /// of this model already has.
    fn unique_name(&mut self, stem: &str) -> String {
        let name_for = |k: usize| {
            if k == 0 {
                stem.to_string()
            } else {
                format!("{stem}_{k}")
            }
        };
        let taken = |name: &str| self.layers.iter().any(|l| l.name() == name);
        let start = self.name_counts.get(stem).copied().unwrap_or(0);
        // Counting on from the counter finds a free name within `layers + 1` tries, unless
        // the counter is at the top of usize (a loaded name like `lstm_18446744073709551614`):
        // then the smallest free number, which exists among the first `layers + 1`.
        let free = (start..=start.saturating_add(self.layers.len()))
            .find(|&k| !taken(&name_for(k)))
            .or_else(|| (1..=self.layers.len() + 1).find(|&k| !taken(&name_for(k))))
            .unwrap_or(0);
        if free >= start {
            self.name_counts
                .insert(stem.to_string(), free.saturating_add(1));
        }
        name_for(free)
    }

    /// Input shape without the batch axis.
    pub fn input_shape(&self) -> &[Dim] {
        &self.input_shape
    }

    /// Output shape without the batch axis.
    pub fn output_shape(&self) -> &[Dim] {
        self.shapes
            .last()
            .map_or(&self.input_shape, |s| s.as_slice())
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[Box<dyn Layer<F>>] {
        &self.layers
    }

    /// The layers, mutably.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer<F>>] {
        &mut self.layers
    }

    /// Checks that `x` is `[batch, ..input_shape]`.
    fn check_input(&self, x: &ArrayD<F>) -> Result<()> {
        let ok = x.ndim() == self.input_shape.len() + 1
            && x.shape()[1..]
                .iter()
                .zip(&self.input_shape)
                .all(|(&d, s)| s.is_none_or(|s| s == d));
        if !ok {
            return Err(Error::Shape {
                layer: self.name.clone(),
                what: "input",
                expected: format_shape(&self.input_shape).replacen("None", "batch", 1),
                got: x.shape().to_vec(),
            });
        }
        if x.shape()[0] == 0 {
            return Err(crate::layers::empty(&self.name, "batch", x.shape()));
        }
        Ok(())
    }

    /// The one tensor a Sequential model is called on.
    fn one_input<'i>(&self, inputs: &'i Inputs<'_, F>) -> Result<&'i ArrayD<F>> {
        match (inputs.xs.as_slice(), inputs.states) {
            ([x], None) => Ok(x),
            (_, Some(_)) => Err(Error::Unsupported {
                layer: self.name.clone(),
                reason: "a model runs from explicit states through ModelState::infer_from / \
                         forward_from (one list per layer)"
                    .into(),
            }),
            (xs, None) => Err(Error::Shape {
                layer: self.name.clone(),
                what: "list of inputs",
                expected: "1 array".into(),
                got: vec![xs.len()],
            }),
        }
    }

    /// Checks an input and its mask against the model.
    fn check_batch(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<()> {
        self.check_input(x)?;
        crate::layers::check_seq_mask(&self.name, x, mask)
    }

    /// The forward pass through `&mut self`: training passes keep their caches. With
    /// `states`, every layer runs from its explicit states and leaves its final ones there.
    /// A failed pass leaves stateful layers' carried states and `states` as they were.
    fn run_with(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
        states: Option<&mut Vec<Vec<Array2<F>>>>,
    ) -> Result<Outputs<F>> {
        // A refused pass leaves nothing for backward to serve from an older one.
        self.trained = false;
        self.check_batch(x, mask)?;
        let mut explicit = match states {
            Some(s) => Some((self.checked_states(s)?, s)),
            None => None,
        };
        let carried: Vec<_> = self.layers.iter().map(|l| states_of(l.as_ref())).collect();
        let mut mask = mask.cloned();
        let mut cur: Option<ArrayD<F>> = None;
        let mut logits = None;
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let input = cur.as_ref().unwrap_or(x);
            let call = Inputs::new(input).mask(mask.as_ref()).mode(mode);
            let out = match explicit.as_ref() {
                Some((work, _)) => layer.forward(call.states(&work[i])),
                None => layer.forward(call),
            };
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    self.restore_carried(carried);
                    return Err(e);
                }
            };
            if let Some((work, _)) = explicit.as_mut() {
                work[i] = out.states;
            }
            mask = out.mask;
            logits = out.logits;
            cur = Some(out.output);
        }
        if let Some((work, s)) = explicit {
            *s = work;
        }
        self.trained = mode == Mode::Train;
        Ok(Outputs {
            states: Vec::new(),
            output: cur.unwrap_or_else(|| x.clone()),
            mask,
            logits,
        })
    }

    /// A copy of explicit states after checking there is one list per layer.
    fn checked_states(&self, states: &[Vec<Array2<F>>]) -> Result<Vec<Vec<Array2<F>>>> {
        if states.len() != self.layers.len() {
            return Err(Error::Shape {
                layer: self.name.clone(),
                what: "states (one list per layer, from Sequential::zero_states)",
                expected: format!("{} lists", self.layers.len()),
                got: vec![states.len()],
            });
        }
        Ok(states.to_vec())
    }

    /// Puts back the carried states of stateful layers after a failed pass.
    fn restore_carried(&mut self, carried: Vec<Vec<Array2<F>>>) {
        for (layer, s) in self.layers.iter_mut().zip(carried) {
            // Layers that are not stateful refuse, and have nothing to restore.
            if let Some(st) = layer.state_mut() {
                let _ = st.set_states(if s.is_empty() { None } else { Some(&s) });
            }
        }
    }

    /// The inference pass through `&self`, from explicit states (one list per layer,
    /// checked) when given, which it moves on.
    fn pass_infer(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mut states: Option<&mut [Vec<Array2<F>>]>,
    ) -> Result<Outputs<F>> {
        let mut mask = mask.cloned();
        let mut cur: Option<ArrayD<F>> = None;
        let mut logits = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let input = cur.as_ref().unwrap_or(x);
            let call = Inputs::new(input).mask(mask.as_ref());
            let out = match states.as_deref_mut() {
                Some(st) => {
                    let mut out = layer.infer(call.states(&st[i]))?;
                    st[i] = std::mem::take(&mut out.states);
                    out
                }
                None => layer.infer(call)?,
            };
            mask = out.mask;
            logits = out.logits;
            cur = Some(out.output);
        }
        Ok(Outputs {
            states: Vec::new(),
            output: cur.unwrap_or_else(|| x.clone()),
            mask,
            logits,
        })
    }

    /// Inference through `&self` (stateful layers move their carried states on, one call
    /// at a time).
    fn infer_one(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<Outputs<F>> {
        self.check_batch(x, mask)?;
        if !self
            .layers
            .iter()
            .any(|l| l.spec().is_some_and(|s| s.is_stateful()))
        {
            return self.pass_infer(x, mask, None);
        }
        // Stateful layers move their carried states on: one call at a time through the
        // whole model (each layer sees the calls in one order), and a call that would fail
        // on a carried batch size is refused before any layer moves.
        let _serial = self.serial.lock();
        let batch = x.shape().first().copied().unwrap_or(0);
        for layer in &self.layers {
            if let Some(s) = states_of(layer.as_ref()).first()
                && s.nrows() != batch
            {
                return Err(Error::Shape {
                    layer: layer.name().to_string(),
                    what: "input batch (a stateful layer keeps one state per sample; \
                               reset it with set_states(None) to change the batch size)",
                    expected: format!("[{}, ...]", s.nrows()),
                    got: vec![batch],
                });
            }
        }
        self.pass_infer(x, mask, None)
    }

    /// The backward pass, from dL/d(logits of the last layer) when `from_logits`.
    /// Without `input_grads` the first layer may skip dL/d(input) (see
    /// [`OutputGrads::input_grads`]).
    fn backward_one(
        &mut self,
        dy: &ArrayD<F>,
        from_logits: bool,
        input_grads: bool,
    ) -> Result<ArrayD<F>> {
        self.check_trained()?;
        let n = self.layers.len();
        if n == 0 {
            return Ok(dy.clone());
        }
        let mut d: Option<ArrayD<F>> = None;
        for (i, layer) in self.layers.iter_mut().enumerate().rev() {
            let g = OutputGrads::new(d.as_ref().unwrap_or(dy))
                .from_logits(from_logits && i == n - 1)
                .input_grads(input_grads || i > 0);
            d = Some(layer.backward(g)?.dx());
        }
        Ok(d.expect("at least one layer"))
    }

    /// [`Error::NoCache`] unless the last forward was a successful `Mode::Train` one.
    fn check_trained(&self) -> Result<()> {
        if self.trained {
            Ok(())
        } else {
            Err(Error::NoCache {
                layer: self.name.clone(),
            })
        }
    }

    /// The model summary in Keras's layout; `Display` prints it.
    pub fn summary(&self) -> Summary {
        Summary {
            name: self.name.clone(),
            rows: self
                .layers
                .iter()
                .zip(&self.shapes)
                .map(|(l, s)| SummaryRow {
                    name: l.name().to_string(),
                    type_name: l.type_name().to_string(),
                    output_shape: format_shape(s),
                    params: l.param_count(),
                    connected_to: None,
                })
                .collect(),
            bytes_per_param: std::mem::size_of::<F>(),
        }
    }
}

impl<F: Float> Model<F> for Sequential<F> {
    fn input_shapes(&self) -> Vec<Vec<Dim>> {
        vec![self.input_shape.clone()]
    }
    fn output_shapes(&self) -> Vec<Vec<Dim>> {
        vec![self.output_shape().to_vec()]
    }
    fn output_activations(&self) -> Vec<crate::Activation> {
        vec![
            self.layers
                .last()
                .map_or(crate::Activation::Linear, |l| l.output_activation()),
        ]
    }
    fn forward(&mut self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>> {
        let x = self.one_input(&inputs)?;
        Ok(vec![self.run_with(
            x,
            inputs.mask_at(0),
            inputs.mode,
            None,
        )?])
    }
    fn infer(&self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>> {
        let x = self.one_input(&inputs)?;
        Ok(vec![self.infer_one(x, inputs.mask_at(0))?])
    }
    fn backward(&mut self, grads: &[OutputGrads<'_, F>]) -> Result<Vec<ArrayD<F>>> {
        let [g] = grads else {
            return Err(Error::Shape {
                layer: self.name.clone(),
                what: "list of output gradients",
                expected: "1 array".into(),
                got: vec![grads.len()],
            });
        };
        Ok(vec![self.backward_one(
            g.dy,
            g.from_logits,
            g.input_grads,
        )?])
    }
    fn architecture(&self) -> Result<crate::model::Architecture> {
        self.spec().map(crate::model::Architecture::Sequential)
    }
    fn summary(&self) -> Summary {
        Sequential::summary(self)
    }
    fn state(&self) -> Option<&dyn ModelState<F>> {
        Some(self)
    }
    fn state_mut(&mut self) -> Option<&mut dyn ModelState<F>> {
        Some(self)
    }
}

impl<F: Float> ModelState<F> for Sequential<F> {
    fn reset_states(&mut self) {
        for layer in &mut self.layers {
            reset_of(layer.as_mut());
        }
    }
    fn states(&self) -> Vec<Vec<Array2<F>>> {
        self.layers.iter().map(|l| states_of(l.as_ref())).collect()
    }
    fn zero_states(&self, batch: usize) -> Result<Vec<Vec<Array2<F>>>> {
        self.layers
            .iter()
            .map(|l| zero_states_of(l.as_ref(), batch))
            .collect()
    }
    fn rng_state(&self) -> Vec<Vec<u64>> {
        crate::layers::rng_state_of(&self.layers)
    }
    fn set_rng_state(&mut self, state: &[Vec<u64>]) -> Result<()> {
        crate::layers::set_rng_state_of(&self.name, &mut self.layers, state)
    }
    fn infer_from(
        &self,
        inputs: Inputs<'_, F>,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Vec<Outputs<F>>> {
        let x = self.one_input(&inputs)?;
        let mask = inputs.mask_at(0);
        self.check_batch(x, mask)?;
        let mut work = self.checked_states(states)?;
        let out = self.pass_infer(x, mask, Some(&mut work))?;
        *states = work;
        Ok(vec![out])
    }
    fn forward_from(
        &mut self,
        inputs: Inputs<'_, F>,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Vec<Outputs<F>>> {
        let x = self.one_input(&inputs)?;
        Ok(vec![self.run_with(
            x,
            inputs.mask_at(0),
            inputs.mode,
            Some(states),
        )?])
    }
}

impl<F: Float> Module<F> for Sequential<F> {
    fn name(&self) -> &str {
        &self.name
    }
    /// Every parameter with its Keras-style path (`lstm/kernel`,
    /// `bidirectional/forward_lstm/bias`), in `get_weights()` order.
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        for l in &self.layers {
            let prefix = l.name().to_string();
            l.visit_params(&mut |n, p| f(&format!("{prefix}/{n}"), p));
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        for l in &mut self.layers {
            let prefix = l.name().to_string();
            l.visit_params_mut(&mut |n, p| f(&format!("{prefix}/{n}"), p));
        }
    }
}
