use super::summary::{Summary, SummaryRow};
use super::{Forward, Model, ModelSpec};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{seeded_rng, StdRng};
use crate::layers::state::{reset_of, states_of, zero_states_of};
use crate::layers::{format_shape, Dim, Inputs, Layer, LayerConfig, Mask, Mode, OutputGrads};
use crate::param::{Module, Param};
use ndarray::{Array2, ArrayD};
use std::collections::HashMap;

/// A stack of layers, as `keras.Sequential`.
///
/// Built with the input shape without the batch axis (`[steps, features]`, steps may be
/// open); each pushed layer is built for the previous layer's output shape, so a layer that
/// does not fit is refused when pushed, naming both layers. A mask (from a
/// [`Masking`](crate::Masking) layer, or given to [`Sequential::forward_masked`]) travels
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

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
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

    /// Number of scalar weights.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(|l| l.param_count()).sum()
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

    /// Forward pass through every layer.
    ///
    /// # Errors
    /// [`Error::Shape`] for an input that does not match the model's input shape; any
    /// layer's error.
    pub fn forward(&mut self, x: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        self.forward_masked(x, None, mode)
    }

    /// Forward pass with a `[batch, steps]` mask (`true` = real step), e.g. from
    /// [`mask_from_lengths`](crate::mask_from_lengths). The mask flows through the stack;
    /// [`Model::forward`] returns the output's mask (and logits) with the output.
    ///
    /// # Errors
    /// As [`Sequential::forward`], plus [`Error::Shape`]/[`Error::Mask`] for a mask that
    /// does not fit.
    pub fn forward_masked(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
    ) -> Result<ArrayD<F>> {
        Ok(self.run(x, mask, mode)?.output)
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
    ) -> Result<Forward<F>> {
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
        Ok(Forward {
            output: cur.unwrap_or_else(|| x.clone()),
            mask,
            logits,
        })
    }

    /// The forward pass through `&mut self` without explicit states.
    fn run(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<Forward<F>> {
        self.run_with(x, mask, mode, None)
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

    /// Zeroes the carried states of every stateful layer (Keras calls `reset_state()` on
    /// each); the batch sizes they were called with stay fixed.
    pub fn reset_states(&mut self) {
        for layer in &mut self.layers {
            reset_of(layer.as_mut());
        }
    }

    /// The carried states of every layer, one list per layer (empty for layers that are not
    /// stateful or not yet called), in Keras order: `[h]` or `[h, c]`, `[batch, units]`.
    pub fn states(&self) -> Vec<Vec<Array2<F>>> {
        self.layers.iter().map(|l| states_of(l.as_ref())).collect()
    }

    /// Zero states for streaming `batch` sequences: one list per layer, for
    /// [`Sequential::infer_with_states`].
    ///
    /// # Errors
    /// [`Error::Data`] for states too large for one array.
    pub fn zero_states(&self, batch: usize) -> Result<Vec<Vec<Array2<F>>>> {
        self.layers
            .iter()
            .map(|l| zero_states_of(l.as_ref(), batch))
            .collect()
    }

    /// Streaming inference: runs the chunk `x` `[batch, steps, features]` (one step or
    /// more) from `states` and replaces them by the states after it, so a sequence fed
    /// chunk by chunk gives the outputs of one pass over all of it. The states are a value:
    /// clone them to branch (beam search), keep a copy to restore. Stateful layers' carried
    /// states are neither read nor changed.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::{Array3, Axis, Slice};
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let model = Sequential::<f64>::with_input_shape(vec![None, Some(2)])
    ///     .push(GruConfig::new(4).return_sequences(true))?
    ///     .push(DenseConfig::new(1))?;
    /// let x = Array3::from_shape_fn((2, 8, 2), |(b, t, f)| (b + t * f) as f64 * 0.1).into_dyn();
    /// let whole = model.infer(&x, None)?.output;
    /// let mut states = model.zero_states(2)?;
    /// let cut = |r| x.slice_axis(Axis(1), Slice::from(r)).to_owned();
    /// let first = model.infer_with_states(&cut(0..5), None, &mut states)?;
    /// let rest = model.infer_with_states(&cut(5..8), None, &mut states)?;
    /// let want = whole.slice_axis(Axis(1), Slice::from(5..8));
    /// assert!((&rest.output - &want).iter().all(|d| d.abs() < 1e-12));
    /// # let _ = first;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Sequential::infer`]; [`Error::Shape`] when `states` does not have one list per
    /// layer or a list does not fit its layer. `states` is unchanged then.
    pub fn infer_with_states(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Forward<F>> {
        self.check_batch(x, mask)?;
        let mut work = self.checked_states(states)?;
        let out = self.infer_from(x, mask, Some(&mut work))?;
        *states = work;
        Ok(out)
    }

    /// The inference pass through `&self`, from explicit states (one list per layer,
    /// checked) when given, which it moves on.
    fn infer_from(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mut states: Option<&mut [Vec<Array2<F>>]>,
    ) -> Result<Forward<F>> {
        let mut mask = mask.cloned();
        let mut cur: Option<ArrayD<F>> = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let input = cur.as_ref().unwrap_or(x);
            let call = Inputs::new(input).mask(mask.as_ref());
            let out = match states.as_deref_mut() {
                Some(st) => {
                    let out = layer.infer(call.states(&st[i]))?;
                    st[i] = out.states;
                    Forward {
                        output: out.output,
                        mask: out.mask,
                        logits: None,
                    }
                }
                None => {
                    let out = layer.infer(call)?;
                    Forward {
                        output: out.output,
                        mask: out.mask,
                        logits: None,
                    }
                }
            };
            mask = out.mask;
            cur = Some(out.output);
        }
        Ok(Forward {
            output: cur.unwrap_or_else(|| x.clone()),
            mask,
            logits: None,
        })
    }

    /// [`Sequential::forward_masked`] from explicit states, replaced by the states after
    /// `x` (truncated backpropagation through time: no gradient flows into the states).
    ///
    /// # Errors
    /// As [`Sequential::infer_with_states`].
    pub fn forward_with_states(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Forward<F>> {
        self.run_with(x, mask, mode, Some(states))
    }

    /// Inference through a shared reference: the output and the mask it carries, with
    /// nothing in the model changed, so one trained model can serve several threads at once
    /// (`Sequential` is `Send + Sync`).
    ///
    /// # Errors
    /// As [`Sequential::forward_masked`].
    ///
    /// # Example
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::Array3;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let model = Sequential::<f32>::new(&[5, 2])
    ///     .push(LstmConfig::new(8))?
    ///     .push(DenseConfig::new(1))?;
    /// let x = Array3::<f32>::ones((4, 5, 2)).into_dyn();
    /// let y = std::thread::scope(|s| {
    ///     let a = s.spawn(|| model.infer(&x, None));
    ///     let b = s.spawn(|| model.infer(&x, None));
    ///     (a.join().unwrap(), b.join().unwrap())
    /// });
    /// assert_eq!(y.0?.output, y.1?.output);
    /// # Ok(()) }
    /// ```
    pub fn infer(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<Forward<F>> {
        self.check_batch(x, mask)?;
        if !self
            .layers
            .iter()
            .any(|l| l.spec().is_some_and(|s| s.is_stateful()))
        {
            return self.infer_from(x, mask, None);
        }
        // Stateful layers move their carried states on: one call at a time through the
        // whole model (each layer sees the calls in one order), and a call that would fail
        // on a carried batch size is refused before any layer moves.
        let _serial = self.serial.lock();
        let batch = x.shape().first().copied().unwrap_or(0);
        for layer in &self.layers {
            if let Some(s) = states_of(layer.as_ref()).first() {
                if s.nrows() != batch {
                    return Err(Error::Shape {
                        layer: layer.name().to_string(),
                        what: "input batch (a stateful layer keeps one state per sample; \
                               reset it with set_states(None) to change the batch size)",
                        expected: format!("[{}, ...]", s.nrows()),
                        got: vec![batch],
                    });
                }
            }
        }
        self.infer_from(x, mask, None)
    }

    /// Backward pass through every layer: takes dL/d output, returns dL/d input and adds
    /// every weight gradient into its `Param::grad`.
    ///
    /// # Errors
    /// [`Error::NoCache`] without a preceding `Mode::Train` forward; [`Error::Shape`] for a
    /// gradient of the wrong shape.
    pub fn backward(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        self.check_trained()?;
        let mut d = dy.clone();
        for layer in self.layers.iter_mut().rev() {
            d = layer.backward(OutputGrads::new(&d))?.dx();
        }
        Ok(d)
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

    /// The activation the last layer applies (linear for an empty model).
    pub fn output_activation(&self) -> crate::Activation {
        self.layers
            .last()
            .map_or(crate::Activation::Linear, |l| l.output_activation())
    }

    /// Backward pass from dL/d(logits of the last layer), as fused cross-entropy needs.
    ///
    /// # Errors
    /// As [`Sequential::backward`].
    pub fn backward_from_logits(&mut self, dz: &ArrayD<F>) -> Result<ArrayD<F>> {
        self.check_trained()?;
        let Some((last, rest)) = self.layers.split_last_mut() else {
            return Ok(dz.clone());
        };
        let mut d = last.backward(OutputGrads::new(dz).from_logits(true))?.dx();
        for layer in rest.iter_mut().rev() {
            d = layer.backward(OutputGrads::new(&d))?.dx();
        }
        Ok(d)
    }

    /// Inference in batches of `batch_size` (no training caches are kept).
    ///
    /// # Errors
    /// [`Error::Config`] for `batch_size == 0`; as [`Sequential::forward`].
    pub fn predict(&self, x: &ArrayD<F>, batch_size: usize) -> Result<ArrayD<F>> {
        self.predict_masked(x, None, batch_size)
    }

    /// [`Sequential::predict`] with a `[batch, steps]` mask.
    ///
    /// # Errors
    /// As [`Sequential::predict`] and [`Sequential::forward_masked`].
    pub fn predict_masked(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        batch_size: usize,
    ) -> Result<ArrayD<F>> {
        self.check_input(x)?;
        self.predict_batched(x, mask, batch_size)
    }

    /// Visits every parameter with its Keras-style path (`lstm/kernel`,
    /// `bidirectional/forward_lstm/bias`), in `get_weights()` order.
    pub fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        for l in &self.layers {
            let prefix = l.name().to_string();
            l.visit_params(&mut |n, p| f(&format!("{prefix}/{n}"), p));
        }
    }

    /// Visits every parameter mutably, in `get_weights()` order.
    pub fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        for l in &mut self.layers {
            let prefix = l.name().to_string();
            l.visit_params_mut(&mut |n, p| f(&format!("{prefix}/{n}"), p));
        }
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self) {
        for l in &mut self.layers {
            l.zero_grad();
        }
    }

    /// All weights in Keras `model.get_weights()` order.
    pub fn get_weights(&self) -> Vec<ArrayD<F>> {
        self.layers.iter().flat_map(|l| l.get_weights()).collect()
    }

    /// Sets all weights from arrays in Keras `model.get_weights()` order.
    ///
    /// # Errors
    /// [`Error::WeightCount`] or [`Error::WeightShape`]; nothing is changed then.
    pub fn set_weights(&mut self, weights: &[ArrayD<F>]) -> Result<()> {
        let counts: Vec<usize> = self.layers.iter().map(|l| l.get_weights().len()).collect();
        let total: usize = counts.iter().sum();
        if total != weights.len() {
            return Err(Error::WeightCount {
                layer: self.name.clone(),
                expected: total,
                got: weights.len(),
            });
        }
        // Check everything first so a bad array changes nothing.
        let mut at = 0;
        let mut backup = Vec::new();
        for (l, &c) in self.layers.iter_mut().zip(&counts) {
            backup.push(l.get_weights());
            if let Err(e) = l.set_weights(&weights[at..at + c]) {
                for (l, w) in self.layers.iter_mut().zip(&backup) {
                    l.set_weights(w).expect("restoring the weights it had");
                }
                return Err(e);
            }
            at += c;
        }
        Ok(())
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
    fn input_shape(&self) -> &[Dim] {
        Sequential::input_shape(self)
    }
    fn output_shape(&self) -> &[Dim] {
        Sequential::output_shape(self)
    }
    fn output_activation(&self) -> crate::Activation {
        Sequential::output_activation(self)
    }
    fn forward(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<Forward<F>> {
        self.run(x, mask, mode)
    }
    fn infer(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<Forward<F>> {
        Sequential::infer(self, x, mask)
    }
    fn reset_states(&mut self) {
        Sequential::reset_states(self)
    }
    fn rng_state(&self) -> Vec<Vec<u64>> {
        crate::layers::rng_state_of(&self.layers)
    }
    fn set_rng_state(&mut self, state: &[Vec<u64>]) -> Result<()> {
        crate::layers::set_rng_state_of(&self.name, &mut self.layers, state)
    }
    fn zero_states(&self, batch: usize) -> Result<Vec<Vec<Array2<F>>>> {
        Sequential::zero_states(self, batch)
    }
    fn infer_with_states(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Forward<F>> {
        Sequential::infer_with_states(self, x, mask, states)
    }
    fn forward_with_states(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Forward<F>> {
        Sequential::forward_with_states(self, x, mask, mode, states)
    }
    fn backward(&mut self, dy: &ArrayD<F>, from_logits: bool) -> Result<ArrayD<F>> {
        if from_logits {
            self.backward_from_logits(dy)
        } else {
            Sequential::backward(self, dy)
        }
    }
    fn spec(&self) -> Result<ModelSpec> {
        Sequential::spec(self)
    }
}

impl<F: Float> Module<F> for Sequential<F> {
    fn name(&self) -> &str {
        Sequential::name(self)
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        Sequential::visit_params(self, f)
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        Sequential::visit_params_mut(self, f)
    }
    fn zero_grad(&mut self) {
        Sequential::zero_grad(self)
    }
    fn get_weights(&self) -> Vec<ArrayD<F>> {
        Sequential::get_weights(self)
    }
    fn set_weights(&mut self, weights: &[ArrayD<F>]) -> Result<()> {
        Sequential::set_weights(self, weights)
    }
}
