//! Layers: the [`Layer`] trait, the recurrent time loop and every layer type.

pub mod attention;
pub mod bidirectional;
pub mod call;
pub mod dense;
pub mod dropout;
pub mod embedding;
pub mod gru;
pub mod leaky_rnn;
pub mod lstm;
pub mod masking;
pub mod merge;
pub mod pooling;
pub mod recurrent;
pub mod simple_rnn;
pub mod spec;
pub mod state;

pub use attention::{AdditiveAttentionConfig, Attention, AttentionConfig, ScoreMode};
pub use bidirectional::{Bidirectional, BidirectionalConfig, BidirectionalSpec, MergeMode};
pub use call::{InputGrads, Inputs, OutputGrads, Outputs};
pub use dense::{Dense, DenseConfig};
pub use dropout::{Dropout, DropoutConfig};
pub use embedding::{Embedding, EmbeddingConfig};
pub use gru::{Gru, GruCell, GruConfig};
pub use leaky_rnn::{Leak, LeakyRnn, LeakyRnnCell, LeakyRnnConfig};
pub use lstm::{Lstm, LstmCell, LstmConfig};
pub use masking::{Masking, MaskingConfig};
pub use merge::{AddConfig, AverageConfig, ConcatenateConfig, MergeLayer, MultiplyConfig};
pub use pooling::{
    GlobalAveragePooling1D, GlobalAveragePooling1DConfig, RepeatVector, RepeatVectorConfig,
};
pub use recurrent::{
    BackwardStep, Cell, CellOptions, CellWeights, Recurrent, RecurrentLayer, RecurrentLayerConfig,
    SequenceConfig, SequenceGrads, SequenceOptions,
};
pub use simple_rnn::{SimpleRnn, SimpleRnnCell, SimpleRnnConfig};
pub use spec::{LAYER_TYPES, LayerSpec};
pub use state::LayerState;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::param::Module;
use ndarray::{Array2, ArrayD, ArrayView3, Ix3};
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
/// One call, as Keras's `layer(inputs, mask=, training=, initial_state=)`: [`Layer::forward`]
/// takes [`Inputs`] (one tensor or several, their masks, initial states, the [`Mode`]) and
/// returns [`Outputs`] (the output, its mask, the final states, the logits);
/// [`Layer::backward`] takes [`OutputGrads`] and returns [`InputGrads`]. [`Layer::infer`] is
/// the same call through `&self`. Names and parameters come from [`Module`]; carried
/// state and one-step streaming from [`LayerState`].
///
/// Shapes always put the batch first: sequences are `[batch, steps, features]`.
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::{Array3, ArrayD};
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut lstm = LstmConfig::new(4).build::<f64>(3, &mut seeded_rng(0))?;
/// let x = Array3::<f64>::zeros((2, 5, 3)).into_dyn();
/// let y = lstm.forward(Inputs::new(&x).mode(Mode::Train))?.output;
/// assert_eq!(y.shape(), &[2, 4]);
/// let dx = lstm.backward(OutputGrads::new(&ArrayD::ones(y.raw_dim())))?.dx();
/// assert_eq!(dx.shape(), x.shape());
/// assert_eq!(lstm.param_count(), 4 * 4 * (3 + 4 + 1));
/// # Ok(()) }
/// ```
///
/// A layer of your own implements [`Module`] and five methods; a model holds it like any
/// other, the [`Trainer`](crate::Trainer) trains it, and its gradient checks out against
/// finite differences:
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::{Array2, ArrayD, Axis, IxDyn};
///
/// /// `y = x ⊙ w`: one weight per feature.
/// #[derive(Debug, Clone)]
/// struct Scale { w: Param<f64>, x: Option<ArrayD<f64>> }
///
/// impl Module<f64> for Scale {
///     fn name(&self) -> &str { "scale" }
///     fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) { f("w", &self.w) }
///     fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) { f("w", &mut self.w) }
/// }
///
/// impl Layer<f64> for Scale {
///     fn type_name(&self) -> &'static str { "Scale" }
///     fn output_shape(&self, inputs: &[Vec<Dim>]) -> Result<Vec<Dim>, Error> { Ok(inputs[0].clone()) }
///     fn forward(&mut self, inputs: Inputs<'_, f64>) -> Result<Outputs<f64>, Error> {
///         let x: &ArrayD<f64> = &inputs.xs[0];
///         self.x = (inputs.mode == Mode::Train).then(|| x.clone());
///         Ok(Outputs::new(x * self.w.value()))
///     }
///     fn backward(&mut self, grads: OutputGrads<'_, f64>) -> Result<InputGrads<f64>, Error> {
///         let x = self.x.as_ref().ok_or(Error::NoCache { layer: "scale".into() })?;
///         self.w.add_grad(&(x * grads.dy).sum_axis(Axis(0)))?;
///         Ok(InputGrads { dxs: vec![grads.dy * self.w.value()], states: Vec::new() })
///     }
///     fn box_clone(&self) -> Box<dyn Layer<f64>> { Box::new(self.clone()) }
/// }
///
/// # fn main() -> Result<(), Error> {
/// let mut model = Sequential::<f64>::new(&[2]);
/// let w = Param::new(ArrayD::from_elem(IxDyn(&[2]), 0.5));
/// model.add_layer(Box::new(Scale { w, x: None }))?;
/// model.add(&DenseConfig::new(1))?;
/// let x = Array2::from_shape_fn((16, 2), |(i, j)| ((i * 2 + j) as f64 * 0.3).sin()).into_dyn();
/// let y = x.map_axis(Axis(1), |r| 3.0 * r[0] - r[1]).insert_axis(Axis(1)).into_dyn();
///
/// // dL/dw by backpropagation against central differences, L = Σ y_pred.
/// model.forward(Inputs::new(&x).mode(Mode::Train))?;
/// model.zero_grad();
/// model.backward(&[OutputGrads::new(&ArrayD::ones(IxDyn(&[16, 1])))])?;
/// let mut analytic = 0.0;
/// model.visit_params(&mut |n, p| if n == "scale/w" { analytic = p.grad()[0] });
/// let at = |m: &mut Sequential<f64>, d: f64| -> Result<f64, Error> {
///     let mut w = m.get_weights();
///     w[0][0] += d;
///     m.set_weights(&w)?;
///     let l = m.predict(Inputs::new(&x), 16)?[0].sum();
///     w[0][0] -= d;
///     m.set_weights(&w)?;
///     Ok(l)
/// };
/// let numeric = (at(&mut model, 1e-6)? - at(&mut model, -1e-6)?) / 2e-6;
/// assert!((analytic - numeric).abs() < 1e-7, "{analytic} vs {numeric}");
///
/// // Trained by the Trainer like any layer.
/// let mut trainer = Trainer::new(Adam::new(0.05), Loss::Mse).epochs(150);
/// let history = trainer.fit(&mut model, (&x, &y))?;
/// assert!(history.loss().last().unwrap() < &(history.loss()[0] / 10.0));
/// # Ok(()) }
/// ```
pub trait Layer<F: Float>: Module<F> + Debug + Send + Sync {
    /// Renames the layer (models give unique names as Keras does). The default ignores it.
    fn set_name(&mut self, name: &str) {
        let _ = name;
    }

    /// Keras class name (`"LSTM"`, `"Dense"`), as shown by `summary()` and saved in files.
    fn type_name(&self) -> &'static str;

    /// Output shape (without the batch axis) for the shapes of the tensors the layer is
    /// called on: one for most layers, several for merges and attention.
    ///
    /// # Errors
    /// [`Error::Incompatible`] when this layer cannot take those inputs.
    fn output_shape(&self, inputs: &[Vec<Dim>]) -> Result<Vec<Dim>>;

    /// The layer call. With [`Mode::Train`] it keeps what [`Layer::backward`] needs and
    /// draws its dropout masks; given initial states it returns the final ones.
    ///
    /// # Errors
    /// Wrong rank, feature count, empty batch, a mask that does not fit the input, states
    /// of the wrong number or shape ([`Error::Shape`]) or a non-finite state
    /// ([`Error::Data`]), a list to a layer that takes one tensor ([`Error::Unsupported`]).
    fn forward(&mut self, inputs: Inputs<'_, F>) -> Result<Outputs<F>>;

    /// The call through a shared reference, always as inference: the same outputs as
    /// `forward` in [`Mode::Infer`], but nothing in the layer changes (except the carried
    /// state of a `stateful` layer called without explicit states, which moves on as
    /// Keras's `predict` moves it), so one trained layer can serve several threads at
    /// once. Given states, a chunk at a time gives the outputs of one pass over the whole
    /// sequence.
    ///
    /// The default runs `forward` on a copy ([`Layer::box_clone`]); every rnnkit layer
    /// overrides it without copying.
    ///
    /// # Errors
    /// As [`Layer::forward`].
    fn infer(&self, inputs: Inputs<'_, F>) -> Result<Outputs<F>> {
        self.box_clone().forward(inputs.mode(Mode::Infer))
    }

    /// Backward pass of the last `Mode::Train` forward: takes dL/d(output) (and dL/d(final
    /// states) for a call given states), returns dL/d(input) per input tensor (and
    /// dL/d(initial states)), and **adds** dL/dθ into every parameter's `grad`.
    ///
    /// # Errors
    /// [`Error::NoCache`] without a preceding `Mode::Train` forward; [`Error::Shape`] when
    /// a gradient does not have its output's shape; [`Error::Unsupported`] for state
    /// gradients to a layer without states.
    fn backward(&mut self, grads: OutputGrads<'_, F>) -> Result<InputGrads<F>>;

    /// A boxed copy of this layer (weights and configuration; caches need not be copied).
    fn box_clone(&self) -> Box<dyn Layer<F>>;

    /// The activation this layer applies last (`Dense`: its activation; others: linear).
    /// Cross-entropy losses use it to work from [`Outputs::logits`], as Keras does.
    fn output_activation(&self) -> crate::Activation {
        crate::Activation::Linear
    }

    /// The configuration as Keras would report it (`units`, `activation`, ...), for display.
    fn describe(&self) -> String {
        self.type_name().to_string()
    }

    /// The configuration as data, for saving; `None` for layer types that have no saved
    /// form (layers defined outside rnnkit), which makes saving refuse.
    fn spec(&self) -> Option<LayerSpec> {
        None
    }

    /// The layer's carried state and streaming step, if it has either.
    fn state(&self) -> Option<&dyn LayerState<F>> {
        None
    }

    /// [`Layer::state`], mutably.
    fn state_mut(&mut self) -> Option<&mut dyn LayerState<F>> {
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

/// The scratch buffers of one layer's streaming step ([`LayerState::step`]): sized on the first
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
    if let Some(m) = mask
        && m.dim() != (batch, steps)
    {
        return Err(Error::Shape {
            layer: layer.to_string(),
            what: "mask",
            expected: format!("[{batch}, {steps}] (batch, steps)"),
            got: m.shape().to_vec(),
        });
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

/// Every layer's [`LayerState::rng_state`], one list per layer.
pub(crate) fn rng_state_of<F: Float>(layers: &[Box<dyn Layer<F>>]) -> Vec<Vec<u64>> {
    layers.iter().map(|l| state::rng_of(l.as_ref())).collect()
}

/// Sets every layer's [`LayerState::rng_state`] from one list per layer, all checked first
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
            .all(|(l, p)| state::rng_of(l.as_ref()).len() == p.len());
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
        if let Some(s) = l.state_mut() {
            s.set_rng_state(p)?;
        }
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
