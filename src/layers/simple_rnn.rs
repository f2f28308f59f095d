//! `SimpleRnn`: the Elman cell, `h_t = act(x_t·kernel + h_{t-1}·recurrent_kernel + bias)`.

use super::LayerSpec;
use super::bidirectional::{BidirectionalConfig, BidirectionalSpec};
use super::recurrent::cell_sealed::Sealed;
use super::recurrent::config::{NoReturnState, is_orthogonal, orthogonal, tanh, yes};
use super::recurrent::{BackwardStep, Cell, CellOptions, CellWeights, Recurrent, sl, sl_mut};
use super::recurrent::{RecurrentLayerConfig, sequence_builders};
use crate::activation::{Activation, Deriv, with_derivatives};
use crate::float::Float;
use crate::init::{Init, StdRng};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewMut2, IxDyn};
use serde::{Deserialize, Serialize};

/// Fully connected recurrent layer, numerically equal to `keras.layers.SimpleRNN`.
///
/// `h_t = act(x_t·kernel + h_{t-1}·recurrent_kernel + bias)`; the output is `h_t`.
/// In the course's notation `kernel = Uᵀ`, `recurrent_kernel = Wᵀ`, `bias = b`.
///
/// # Shapes
/// `[batch, steps, input_dim]` → `[batch, units]`, or `[batch, steps, units]` with
/// `return_sequences(true)`. Weights: kernel `[input_dim, units]`, recurrent_kernel
/// `[units, units]`, bias `[units]`.
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut rnn = SimpleRnnConfig::new(20).build::<f32>(1, &mut seeded_rng(0))?;
/// assert_eq!(rnn.param_count(), 440); // the lecture's model 1
/// let x = rnnkit::ndarray::Array3::<f32>::zeros((32, 3, 1)).into_dyn();
/// let y = rnn.forward(Inputs::new(&x))?.output;
/// assert_eq!(y.shape(), &[32, 20]);
/// # Ok(()) }
/// ```
pub type SimpleRnn<F> = Recurrent<SimpleRnnCell<F>>;

/// Configuration of a [`SimpleRnn`] layer: Keras's `SimpleRNN` arguments as fields, set by
/// builder methods of the same names; serialises to Keras's config keys.
///
/// | option | default |
/// |---|---|
/// | `activation` | `tanh` |
/// | `use_bias` | `true` |
/// | `return_sequences`, `go_backwards`, `zero_output_for_mask`, `stateful`, `dropout`, `recurrent_dropout`, `seed` | see [`SequenceOptions`](crate::layers::SequenceOptions) |
/// | `name` | `simple_rnn` (`simple_rnn_1`, ... in a model) |
///
/// ```
/// use rnnkit::prelude::*;
/// let c = SimpleRnnConfig::new(4).activation(Activation::Relu).go_backwards(true);
/// assert!(c.go_backwards && c.activation == Activation::Relu);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleRnnConfig {
    /// Layer name (Keras default `%s`, numbered in a model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of units.
    pub units: usize,
    /// Activation (Keras default `tanh`).
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Whether the layer has a bias.
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Output every step (`[batch, steps, units]`) instead of the last.
    #[serde(default)]
    pub return_sequences: bool,
    /// Process the sequence from the last step to the first (output in processing order).
    #[serde(default)]
    pub go_backwards: bool,
    /// Output zeros at masked steps instead of repeating the previous output.
    #[serde(default)]
    pub zero_output_for_mask: bool,
    /// Carry the final state of each call into the next, sample by sample (Keras
    /// `stateful`): the first call fixes the batch size; `reset_states` zeroes the state.
    #[serde(default)]
    pub stateful: bool,
    /// Fraction of input features dropped in training: masks per sample and call, fixed
    /// across the steps (Keras's variational dropout), kept values scaled by `1/(1 − rate)`.
    #[serde(default)]
    pub dropout: f64,
    /// Fraction of `h_{t−1}` dropped where it enters the recurrent products, in training.
    #[serde(default)]
    pub recurrent_dropout: f64,
    /// Seed of the dropout masks (`None`: drawn from the model's seed when the layer is
    /// built).
    #[serde(default)]
    pub seed: Option<u64>,
    /// How the recurrent kernel is drawn (Keras's `recurrent_initializer`, default
    /// orthogonal; written to files only when another).
    #[serde(default = "orthogonal", skip_serializing_if = "is_orthogonal")]
    pub recurrent_initializer: Init,
    #[serde(default, skip_serializing, rename = "return_state")]
    return_state: NoReturnState,
}

sequence_builders!(SimpleRnnConfig);

impl SimpleRnnConfig {
    /// The layer with `units` units and Keras's defaults.
    pub fn new(units: usize) -> Self {
        SimpleRnnConfig {
            name: None,
            units,
            activation: Activation::Tanh,
            use_bias: true,
            return_sequences: false,
            go_backwards: false,
            zero_output_for_mask: false,
            stateful: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            seed: None,
            recurrent_initializer: Init::Orthogonal,
            return_state: NoReturnState,
        }
    }
}

impl RecurrentLayerConfig for SimpleRnnConfig {
    type Cell<F: Float> = SimpleRnnCell<F>;
    const DEFAULT_NAME: &'static str = "simple_rnn";
    const TYPE_NAME: &'static str = "SimpleRNN";
    fn cell_options(&self) -> CellOptions {
        CellOptions {
            units: self.units,
            activation: self.activation,
            recurrent_activation: Activation::Sigmoid,
            use_bias: self.use_bias,
            recurrent_initializer: self.recurrent_initializer,
        }
    }
    fn describe(&self) -> String {
        format!("units={}, activation={}", self.units, self.activation)
    }
    fn layer_spec(self) -> LayerSpec {
        LayerSpec::SimpleRnn(self)
    }
    fn bidirectional_spec(config: BidirectionalConfig<SimpleRnnConfig>) -> BidirectionalSpec {
        BidirectionalSpec::SimpleRnn(config)
    }
    fn init_cell<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> SimpleRnnCell<F> {
        let bias = self.use_bias.then(|| ArrayD::zeros(IxDyn(&[self.units])));
        let w = CellWeights::init(
            input_dim,
            self.units,
            1,
            bias,
            self.recurrent_initializer,
            rng,
        );
        SimpleRnnCell {
            activation: self.activation,
            w,
        }
    }
}

/// The Elman cell behind [`SimpleRnn`].
#[derive(Clone, Debug)]
pub struct SimpleRnnCell<F: Float> {
    activation: Activation,
    w: CellWeights<F>,
}

impl<F: Float> Sealed for SimpleRnnCell<F> {}

impl<F: Float> Cell for SimpleRnnCell<F> {
    type F = F;
    type Config = SimpleRnnConfig;
    const GATES: usize = 1;
    const STATE_BLOCKS: usize = 1;

    fn weights(&self) -> &CellWeights<F> {
        &self.w
    }
    fn weights_mut(&mut self) -> &mut CellWeights<F> {
        &mut self.w
    }
    fn cache_width(&self) -> usize {
        0
    }

    fn step(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        _cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        self.w.times_r(&prev, F::zero(), &mut scratch.view_mut());
        let (xw, s, h) = (sl(xw), sl(scratch.view()), sl_mut(next));
        for ((h, &a), &r) in h.iter_mut().zip(xw).zip(s) {
            *h = a + r;
        }
        self.activation.apply_slice(h);
    }

    fn step_backward(&self, s: BackwardStep<'_, F>, _scratch: &mut Array2<F>) {
        let BackwardStep {
            prev: _,
            next,
            cache: _,
            d_state,
            mut d_xw,
            d_rw: _,
            mut d_prev,
        } = s;
        let act = self.activation;
        {
            let (h, dh, da) = (sl(next), sl(d_state), sl_mut(d_xw.view_mut()));
            with_derivatives!(
                act,
                |dact| for ((da, &dh), &h) in da.iter_mut().zip(dh).zip(h) {
                    *da = dh * dact.d(h);
                }
            );
        }
        // dh_{t-1} = da·Rᵀ
        self.w.times_rt(&d_xw.view(), F::zero(), &mut d_prev);
    }
}
