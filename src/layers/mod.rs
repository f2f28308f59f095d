//! Layers: the [`Layer`] trait, the recurrent time loop and every layer type.

pub mod attention;
pub mod bidirectional;
pub mod dense;
pub mod dropout;
pub mod embedding;
pub mod gru;
pub mod lstm;
pub mod masking;
pub mod merge;
pub mod pooling;
pub mod recurrent;
pub mod simple_rnn;
pub mod spec;

pub use spec::{LayerSpec, LAYER_TYPES};

use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::param::Module;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayView3, Ix3};
use std::fmt::Debug;

/// Whether a forward pass keeps what `backward` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Keep inputs, states and gate values for [`Layer::backward`].
    Train,
    /// Inference only; any cache from an earlier `Train` pass is invalidated.
    Infer,
}

/// A `[batch, steps]` mask: `true` marks a real step, `false` padding (Keras semantics).
pub type Mask = Array2<bool>;

/// One dimension of a shape given without the batch axis; `None` is open (any length).
pub type Dim = Option<usize>;

/// The interface every layer implements, object-safe so models can hold `Box<dyn Layer<F>>`.
///
/// Shapes always put the batch first: sequences are `[batch, steps, features]`.
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::Array3;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut lstm = LstmConfig::new(4).init::<f64>(3, &mut seeded_rng(0))?;
/// let x = Array3::<f64>::zeros((2, 5, 3)).into_dyn();
/// let y = lstm.forward(&x, Mode::Train)?;
/// assert_eq!(y.shape(), &[2, 4]);
/// let dx = lstm.backward(&rnnkit::ndarray::ArrayD::ones(y.raw_dim()))?;
/// assert_eq!(dx.shape(), x.shape());
/// assert_eq!(lstm.param_count(), 4 * 4 * (3 + 4 + 1));
/// # Ok(()) }
/// ```
pub trait Layer<F: Float>: Module<F> + Debug + Send + Sync {

    /// Renames the layer (models give unique names as Keras does).
    fn set_name(&mut self, name: &str);

    /// Keras class name (`"LSTM"`, `"Dense"`), as shown by `summary()`.
    fn type_name(&self) -> &'static str;

    /// Output shape for an input shape given without the batch axis.
    ///
    /// # Errors
    /// [`Error::Incompatible`] when this layer cannot take that input.
    fn output_shape(&self, input: &[Dim]) -> Result<Vec<Dim>>;

    /// Forward pass with an optional `[batch, steps]` mask.
    ///
    /// # Errors
    /// Wrong rank, feature count, empty batch, or a mask that does not fit the input.
    fn forward_masked(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
    ) -> Result<ArrayD<F>>;

    /// Forward pass without a mask.
    ///
    /// # Errors
    /// As [`Layer::forward_masked`].
    fn forward(&mut self, x: &ArrayD<F>, mode: Mode) -> Result<ArrayD<F>> {
        self.forward_masked(x, None, mode)
    }

    /// Inference through a shared reference: the same output as
    /// `forward_masked(x, mask, Mode::Infer)`, but nothing in the layer changes (except the
    /// carried state of a `stateful` layer, which moves on as Keras's `predict` moves it),
    /// so one trained layer can serve several threads at once.
    ///
    /// The default runs `forward_masked` on a copy ([`Layer::box_clone`]); every rnnkit
    /// layer overrides it without copying.
    ///
    /// # Errors
    /// As [`Layer::forward_masked`].
    fn infer(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<ArrayD<F>> {
        self.box_clone().forward_masked(x, mask, Mode::Infer)
    }

    /// Inference from explicit recurrent states, which are replaced by the states after the
    /// last step: the streaming form of [`Layer::infer`]. Feeding a sequence chunk by chunk
    /// through the same `states` gives the outputs of one pass over the whole sequence.
    /// States are in Keras's order: `[h]` (SimpleRNN, GRU), `[h, c]` (LSTM), each
    /// `[batch, units]`; start from [`Layer::zero_states`]. A layer without state ignores
    /// them (the default); a `stateful` layer's carried state is neither read nor changed.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::{Array3, Axis, Slice};
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let lstm = LstmConfig::new(3).init::<f64>(2, &mut seeded_rng(0))?;
    /// let x = Array3::from_shape_fn((1, 6, 2), |(_, t, f)| (t + f) as f64 * 0.1).into_dyn();
    /// let whole = lstm.infer(&x, None)?;
    /// let mut states = lstm.zero_states(1);
    /// for t in 0..6 {
    ///     let step = x.slice_axis(Axis(1), Slice::from(t..t + 1)).to_owned();
    ///     let y = lstm.infer_with_states(&step, None, &mut states)?;
    ///     if t == 5 {
    ///         assert!((&y - &whole).iter().all(|d| d.abs() < 1e-12));
    ///     }
    /// }
    /// assert_eq!(states.len(), 2); // h and c
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Layer::infer`]; [`Error::Shape`] for states of the wrong number or shape,
    /// [`Error::Data`] for a non-finite state. `states` is unchanged then.
    fn infer_with_states(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        states: &mut Vec<Array2<F>>,
    ) -> Result<ArrayD<F>> {
        let _ = states;
        self.infer(x, mask)
    }

    /// [`Layer::forward_masked`] from explicit recurrent states, which are replaced by the
    /// states after the last step (truncated backpropagation through time: the states are
    /// constants, no gradient flows into them). Layers without state ignore them.
    ///
    /// # Errors
    /// As [`Layer::infer_with_states`].
    fn forward_with_states(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
        states: &mut Vec<Array2<F>>,
    ) -> Result<ArrayD<F>> {
        let _ = states;
        self.forward_masked(x, mask, mode)
    }

    /// [`Layer::backward`] of a training pass made by [`Layer::forward_with_states`], with
    /// gradients flowing through the states: `d_states` holds dL/d(final states) (the
    /// states that call returned, same order and shapes; empty for none), and the result
    /// is dL/dx with dL/d(initial states) in state order. Layers without state return no
    /// state gradients. How a graph model trains an encoder through the decoder's initial
    /// state.
    ///
    /// # Example
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::{Array2, Array3};
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let mut gru = GruConfig::new(3).init::<f64>(2, &mut seeded_rng(0))?;
    /// let x = Array3::from_elem((1, 4, 2), 0.5).into_dyn();
    /// let mut states = vec![Array2::from_elem((1, 3), 0.1)];
    /// let y = gru.forward_with_states(&x, None, Mode::Train, &mut states)?;
    /// // L = sum(y) + sum(h_T): both the output and the returned state carry gradient.
    /// let dy = y.mapv(|_| 1.0);
    /// let (dx, d_init) = gru.backward_with_states(&dy, &[Array2::ones((1, 3))])?;
    /// assert_eq!((dx.shape(), d_init.len(), d_init[0].dim()), (&[1, 4, 2][..], 1, (1, 3)));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Layer::backward`]; [`Error::Shape`] for state gradients that do not fit the
    /// layer's states; the default ([`Error::Unsupported`]) when a stateless layer is given
    /// state gradients.
    fn backward_with_states(
        &mut self,
        dy: &ArrayD<F>,
        d_states: &[Array2<F>],
    ) -> Result<(ArrayD<F>, Vec<Array2<F>>)> {
        if !d_states.is_empty() {
            return Err(Error::Unsupported {
                layer: self.name().to_string(),
                reason: format!(
                    "a {} layer has no states to take gradients",
                    self.type_name()
                ),
            });
        }
        Ok((self.backward(dy)?, Vec::new()))
    }

    /// The output shape (without batch) of a call on a list of tensors (Keras's
    /// `layer([a, b])`, as `Attention([query, value])`). The default accepts one tensor.
    ///
    /// # Errors
    /// [`Error::Incompatible`] for inputs the layer cannot take; the default, for more
    /// than one.
    fn output_shape_list(&self, inputs: &[Vec<Dim>]) -> Result<Vec<Dim>> {
        match inputs {
            [one] => self.output_shape(one),
            _ => Err(self.takes_one(inputs.len())),
        }
    }

    /// [`Layer::forward_masked`] on a list of tensors, each with its mask. The default
    /// takes one tensor.
    ///
    /// # Errors
    /// As [`Layer::forward_masked`]; the default, [`Error::Unsupported`] for several.
    fn forward_list(
        &mut self,
        xs: &[&ArrayD<F>],
        masks: &[Option<&Mask>],
        mode: Mode,
    ) -> Result<ArrayD<F>> {
        match xs {
            [x] => self.forward_masked(x, masks.first().copied().flatten(), mode),
            _ => Err(self.takes_one(xs.len())),
        }
    }

    /// [`Layer::infer`] on a list of tensors.
    ///
    /// # Errors
    /// As [`Layer::forward_list`].
    fn infer_list(&self, xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Result<ArrayD<F>> {
        match xs {
            [x] => self.infer(x, masks.first().copied().flatten()),
            _ => Err(self.takes_one(xs.len())),
        }
    }

    /// The mask the output of a call on a list carries (Keras's `compute_mask`).
    fn compute_mask_list(&self, xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Option<Mask> {
        match xs {
            [x] => self.compute_mask(x, masks.first().copied().flatten()),
            _ => None,
        }
    }

    /// [`Layer::backward`] of a [`Layer::forward_list`] pass: one gradient per input.
    ///
    /// # Errors
    /// As [`Layer::backward`].
    fn backward_list(&mut self, dy: &ArrayD<F>) -> Result<Vec<ArrayD<F>>> {
        Ok(vec![self.backward(dy)?])
    }

    /// The error of the list defaults: this layer takes one tensor.
    #[doc(hidden)]
    fn takes_one(&self, got: usize) -> Error {
        Error::Unsupported {
            layer: self.name().to_string(),
            reason: format!("a {} layer takes one tensor, not {got}", self.type_name()),
        }
    }

    /// Whether the layer runs one step at a time ([`Layer::step`]). A model streams only
    /// when every layer does; it asks once, when a stream starts. Default `false`; layers
    /// that implement `step` return `true`.
    fn streams(&self) -> bool {
        false
    }

    /// One step of streaming inference without allocating (after the first call at a
    /// batch size): `x` `[batch, features]` → `out` `[batch, output features]` (resized on
    /// the first call only), from `states` (as [`Layer::infer_with_states`]), which are
    /// replaced in place by the states after the step. `work` holds the step's scratch
    /// buffers. The output equals that step's output in one pass over the whole sequence.
    /// [`Sequential::step`](crate::Sequential::step) chains it through a model.
    ///
    /// # Errors
    /// The default: [`Error::Unsupported`] (the layer cannot run one step at a time, as a
    /// Bidirectional layer, which needs the steps to come). Recurrent and Dense layers:
    /// [`Error::Features`] for the wrong feature count, [`Error::Shape`] for states that do
    /// not fit; nothing changes then.
    fn step(
        &self,
        x: ArrayView2<'_, F>,
        states: &mut [Array2<F>],
        work: &mut StepWork<F>,
        out: &mut Array2<F>,
    ) -> Result<()> {
        let _ = (x, states, work, out);
        Err(Error::Unsupported {
            layer: self.name().to_string(),
            reason: format!("a {} layer cannot run one step at a time", self.type_name()),
        })
    }

    /// Zero states for a batch of `batch` sequences, in the order of
    /// [`Layer::infer_with_states`]; empty for a layer without state.
    fn zero_states(&self, batch: usize) -> Vec<Array2<F>> {
        let _ = batch;
        Vec::new()
    }

    /// Zeroes the carried states of a `stateful` layer (Keras's `reset_state`), keeping its
    /// batch size; nothing for other layers.
    fn reset_states(&mut self) {}

    /// The states a `stateful` layer carries (Keras order, `[batch, units]` each); empty
    /// before its first call and for other layers.
    fn states(&self) -> Vec<Array2<F>> {
        Vec::new()
    }

    /// Sets the carried states of a `stateful` layer (`None` forgets them: the next call
    /// starts from zeros and may have any batch size).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a layer that is not stateful; [`Error::Shape`] or
    /// [`Error::Data`] for bad states (nothing changes then).
    fn set_states(&mut self, states: Option<&[Array2<F>]>) -> Result<()> {
        let _ = states;
        Err(Error::Unsupported {
            layer: self.name().to_string(),
            reason: "this layer carries no state between calls".into(),
        })
    }

    /// Where this layer's random streams stand (dropout masks): each stream's seed and the
    /// training passes it has drawn. Checkpoints store them, so a resumed run draws the
    /// masks an uninterrupted one would. Empty (the default) for layers without randomness.
    fn rng_state(&self) -> Vec<u64> {
        Vec::new()
    }

    /// Restores [`Layer::rng_state`].
    ///
    /// # Errors
    /// [`Error::Shape`] for another count of numbers than [`Layer::rng_state`] gives
    /// (nothing changes then).
    fn set_rng_state(&mut self, state: &[u64]) -> Result<()> {
        let have = self.rng_state().len();
        if state.len() != have {
            return Err(Error::Shape {
                layer: self.name().to_string(),
                what: "random stream state",
                expected: format!("{have} numbers"),
                got: vec![state.len()],
            });
        }
        Ok(())
    }

    /// The mask this layer's output carries, given its input and input mask (Keras's
    /// `compute_mask`). The default passes the mask through.
    fn compute_mask(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Option<Mask> {
        let _ = x;
        mask.cloned()
    }

    /// Backward pass: takes dL/dy of the last `Mode::Train` forward, returns dL/dx and
    /// **adds** dL/dθ into every parameter's `grad`.
    ///
    /// # Errors
    /// [`Error::NoCache`] without a preceding `Mode::Train` forward; [`Error::Shape`] when
    /// `dy` does not have the output's shape.
    fn backward(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>>;



    /// A boxed copy of this layer (weights and configuration; caches need not be copied).
    fn box_clone(&self) -> Box<dyn Layer<F>>;





    /// The activation this layer applies last (`Dense`: its activation; others: linear).
    /// Cross-entropy losses use it to work from logits, as Keras does.
    fn output_activation(&self) -> crate::Activation {
        crate::Activation::Linear
    }

    /// The pre-activation output of the last forward (either [`Mode`]), kept by layers
    /// whose output activation is softmax or sigmoid.
    fn logits(&self) -> Option<ArrayD<F>> {
        None
    }

    /// Backward from dL/d(pre-activation) instead of dL/dy (skips the output activation).
    ///
    /// # Errors
    /// As [`Layer::backward`].
    fn backward_from_logits(&mut self, dz: &ArrayD<F>) -> Result<ArrayD<F>> {
        self.backward(dz)
    }

    /// The configuration as Keras would report it (`units`, `activation`, ...), for display.
    fn describe(&self) -> String {
        self.type_name().to_string()
    }

    /// The configuration as data, for saving; `None` for layer types that have no saved
    /// form (layers defined outside rnnkit), which makes [`Sequential::save`] refuse.
    ///
    /// [`Sequential::save`]: crate::Sequential::save
    fn spec(&self) -> Option<LayerSpec> {
        None
    }
}

impl<F: Float> Clone for Box<dyn Layer<F>> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

/// Something that builds a layer for a given input shape: what `Sequential::push` takes.
pub trait LayerConfig<F: Float>: Debug {
    /// Builds the layer for `input` (shape without the batch axis), drawing initial weights
    /// from `rng`.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid options, [`Error::Incompatible`] for an input this
    /// layer cannot take.
    fn build(&self, input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>>;

    /// The name the user gave, if any.
    fn name(&self) -> Option<&str>;

    /// Keras's default name stem for this layer type (`"lstm"`).
    fn default_name(&self) -> &'static str;
}

/// The scratch buffers of one layer's streaming step ([`Layer::step`]): sized on the first
/// step, reused after. Opaque; clone it with the states to branch a stream.
#[derive(Debug, Clone, Default)]
pub struct StepWork<F> {
    pub(crate) bufs: [Array2<F>; 6],
}

/// The error of a layer given an input shape it cannot take: `needs` says what it reads
/// (`"RepeatVector needs [batch, features]"`); the shape it got is appended.
pub(crate) fn wrong_input(layer: &str, needs: &str, input: &[Dim]) -> Error {
    Error::Incompatible {
        layer: layer.to_string(),
        previous: "its input".into(),
        reason: format!("{needs}, got {}", format_shape(input)),
    }
}

/// `a`, reallocated only when its shape is not `shape`.
pub(crate) fn ensure<F: Float>(a: &mut Array2<F>, shape: (usize, usize)) -> &mut Array2<F> {
    if a.dim() != shape {
        *a = Array2::zeros(shape);
    }
    a
}

/// Checks a sequence input `[batch, steps, features]` and views it as 3-D.
pub(crate) fn check_seq<'a, F: Float>(
    layer: &str,
    x: &'a ArrayD<F>,
    features: usize,
) -> Result<ArrayView3<'a, F>> {
    if x.ndim() != 3 {
        return Err(Error::Rank {
            layer: layer.to_string(),
            expected: "3".into(),
            layout: "[batch, steps, features]",
            got: x.ndim(),
            shape: x.shape().to_vec(),
        });
    }
    let s = x.shape();
    if s[0] == 0 {
        return Err(empty(layer, "batch", s));
    }
    if s[1] == 0 {
        return Err(empty(layer, "steps", s));
    }
    if s[2] != features {
        return Err(Error::Features {
            layer: layer.to_string(),
            expected: features,
            got: s[2],
        });
    }
    Ok(x.view().into_dimensionality::<Ix3>().expect("rank checked"))
}

/// Checks a mask against a `[batch, steps, ..]` input.
pub(crate) fn check_mask(
    layer: &str,
    mask: Option<&Mask>,
    batch: usize,
    steps: usize,
) -> Result<()> {
    if let Some(m) = mask {
        if m.dim() != (batch, steps) {
            return Err(Error::Shape {
                layer: layer.to_string(),
                what: "mask",
                expected: format!("[{batch}, {steps}] (batch, steps)"),
                got: m.shape().to_vec(),
            });
        }
    }
    Ok(())
}

/// Checks a mask against an input that must then be a sequence `[batch, steps, ..]` of
/// rank 3 (what layers and models that take masks accept).
pub(crate) fn check_seq_mask<F>(layer: &str, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<()> {
    if mask.is_none() {
        return Ok(());
    }
    if x.ndim() != 3 {
        return Err(Error::Mask {
            layer: layer.to_string(),
            reason: format!(
                "a [batch, steps] mask needs 3-D input, got shape {:?}",
                x.shape()
            ),
        });
    }
    check_mask(layer, mask, x.shape()[0], x.shape()[1])
}

pub(crate) fn empty(layer: &str, what: &'static str, shape: &[usize]) -> Error {
    Error::Empty {
        layer: layer.to_string(),
        what,
        shape: shape.to_vec(),
    }
}

/// Every layer's [`Layer::rng_state`], one list per layer.
pub(crate) fn rng_state_of<F: Float>(layers: &[Box<dyn Layer<F>>]) -> Vec<Vec<u64>> {
    layers.iter().map(|l| l.rng_state()).collect()
}

/// Sets every layer's [`Layer::rng_state`] from one list per layer, all checked first
/// (nothing changes on an error).
pub(crate) fn set_rng_state_of<F: Float>(
    model: &str,
    layers: &mut [Box<dyn Layer<F>>],
    state: &[Vec<u64>],
) -> Result<()> {
    let fits = state.len() == layers.len()
        && layers
            .iter()
            .zip(state)
            .all(|(l, p)| l.rng_state().len() == p.len());
    if !fits {
        return Err(Error::Shape {
            layer: model.to_string(),
            what: "random stream state (one list per layer)",
            expected: format!(
                "{:?} numbers per layer",
                rng_state_of(layers)
                    .iter()
                    .map(Vec::len)
                    .collect::<Vec<_>>()
            ),
            got: state.iter().map(Vec::len).collect(),
        });
    }
    for (l, p) in layers.iter_mut().zip(state) {
        l.set_rng_state(p)?;
    }
    Ok(())
}

/// Checks that `dy` has the shape of the last output.
pub(crate) fn check_dy<F: Float>(layer: &str, dy: &ArrayD<F>, out_shape: &[usize]) -> Result<()> {
    if dy.shape() != out_shape {
        return Err(Error::Shape {
            layer: layer.to_string(),
            what: "dL/dy",
            expected: format!("{out_shape:?}"),
            got: dy.shape().to_vec(),
        });
    }
    Ok(())
}

pub(crate) fn positive(layer: &str, field: &'static str, v: usize) -> Result<()> {
    if v == 0 {
        return Err(Error::Config {
            layer: layer.to_string(),
            field,
            reason: "expected a positive integer, got 0".into(),
        });
    }
    Ok(())
}

/// The most scalars one weight tensor (or one layer output per call, or one generated
/// array) may hold: 2^28, 1 GiB in f32 and 2 GiB in f64 (an embedding of a million
/// tokens by 256). Larger sizes are refused before anything is allocated.
pub const MAX_WEIGHT_LEN: usize = 1 << 28;

/// Refuses an output of shape `dims` (batch included) that overflows or exceeds
/// [`MAX_WEIGHT_LEN`].
pub(crate) fn check_output_size(layer: &str, dims: &[usize]) -> Result<()> {
    let len = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match len {
        Some(n) if n <= MAX_WEIGHT_LEN => Ok(()),
        _ => Err(Error::Data(format!(
            "{layer}: the output would be {dims:?}, more than the {MAX_WEIGHT_LEN} scalars one \
             array may hold"
        ))),
    }
}

/// Refuses a weight of shape `dims` that overflows or exceeds [`MAX_WEIGHT_LEN`].
pub(crate) fn check_weight_size(layer: &str, what: &str, dims: &[usize]) -> Result<()> {
    let len = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    match len {
        Some(n) if n <= MAX_WEIGHT_LEN => Ok(()),
        _ => Err(Error::Config {
            layer: layer.to_string(),
            field: "units",
            reason: format!(
                "the {what} would be {dims:?}, more than the {MAX_WEIGHT_LEN} scalars a weight may hold"
            ),
        }),
    }
}

/// Serde default for options that are on unless said otherwise.
pub(crate) fn yes() -> bool {
    true
}

/// Formats a shape without the batch axis as Keras does: `(None, 3, 20)`.
pub fn format_shape(shape: &[Dim]) -> String {
    format_batched("None", shape)
}

/// A shape written with `batch` for the batch axis: `(batch 8, None, 5)`, `(samples, 3)`.
pub(crate) fn format_batched(batch: &str, shape: &[Dim]) -> String {
    let mut s = format!("({batch}");
    for d in shape {
        match d {
            Some(n) => s.push_str(&format!(", {n}")),
            None => s.push_str(", None"),
        }
    }
    s.push(')');
    s
}

/// Whether an array of `shape` (batch first) fits the per-sample `want` (`None`: any).
pub(crate) fn fits_batched(shape: &[usize], want: &[Dim]) -> bool {
    shape.len() == want.len() + 1
        && shape[1..]
            .iter()
            .zip(want)
            .all(|(&d, w)| w.is_none_or(|w| w == d))
}

