//! `SimpleRnn`: the Elman cell, `h_t = act(x_t·kernel + h_{t-1}·recurrent_kernel + bias)`.

use super::LayerSpec;
use super::bidirectional::{BidirectionalConfig, BidirectionalSpec};
use super::recurrent::cell_sealed::Sealed;
use super::recurrent::config::{NoReturnState, is_orthogonal, orthogonal, tanh, yes};
use super::recurrent::{BackwardStep, Cell, CellOptions, CellWeights, Recurrent, sl, sl_mut};
use super::recurrent::{RecurrentLayerConfig, SequenceGrads, sequence_builders};
use super::recurrent::{add_flow_grad, flow_row};
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
    /// Strength λ of the gradient-flow regulariser (Pascanu et al. 2013), a training term
    /// added to the recurrent kernel's gradient (see
    /// [`gradient_flow_regularizer`](SimpleRnnConfig::gradient_flow_regularizer)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient_flow_regularizer: Option<f64>,
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
            gradient_flow_regularizer: None,
            return_state: NoReturnState,
        }
    }
    /// Adds the gradient-flow regulariser of Pascanu, Mikolov and Bengio (2013) with
    /// strength `lambda` ≥ 0 to training: `Ω = λ·mean_b Σ_t (‖g_t·∂h_t/∂h_{t−1}‖/‖g_t‖ − 1)²`
    /// (`g_t = dL/dh_t`), which rewards steps that pass the gradient back with its norm
    /// kept, so that it neither vanishes nor explodes on the way to early inputs. In the
    /// paper's simplified form: `g_t` and the activations are held constant and only the
    /// recurrent kernel's gradient takes the term. The loss the trainer reports is the data
    /// loss alone (Ω shapes the update; its value is not reported).
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// let c = SimpleRnnConfig::new(8).gradient_flow_regularizer(2.0);
    /// assert_eq!(c.gradient_flow_regularizer, Some(2.0));
    /// ```
    pub fn gradient_flow_regularizer(mut self, lambda: f64) -> Self {
        self.gradient_flow_regularizer = Some(lambda);
        self
    }
}

/// Refuses a gradient-flow strength that is negative or not finite, or joined with
/// recurrent dropout (the regulariser's Jacobian is the undropped step's).
pub(crate) fn check_flow(
    layer: &str,
    lambda: Option<f64>,
    recurrent_dropout: f64,
) -> crate::error::Result<()> {
    let Some(l) = lambda else { return Ok(()) };
    let reason = if !(l >= 0.0 && l.is_finite()) {
        format!("expected a finite strength ≥ 0, got {l}")
    } else if recurrent_dropout > 0.0 {
        "the regulariser does not take recurrent_dropout".to_string()
    } else {
        return Ok(());
    };
    Err(crate::error::Error::Config {
        layer: layer.to_string(),
        field: "gradient_flow_regularizer",
        reason,
    })
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
    fn check(&self, layer: &str) -> crate::error::Result<()> {
        check_flow(
            layer,
            self.gradient_flow_regularizer,
            self.recurrent_dropout,
        )
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
            flow: self.gradient_flow_regularizer.map(F::c),
        }
    }
}

/// The Elman cell behind [`SimpleRnn`].
#[derive(Clone, Debug)]
pub struct SimpleRnnCell<F: Float> {
    activation: Activation,
    w: CellWeights<F>,
    /// The gradient-flow regulariser's strength, if on.
    flow: Option<F>,
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
    /// With the gradient-flow regulariser, each backward step keeps its factor in `d_rw`.
    fn step_grad_width(&self) -> usize {
        if self.flow.is_some() { self.units() } else { 0 }
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
            mut d_rw,
            mut d_prev,
            need_prev,
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
        // dh_{t-1} = da·Rᵀ (the regulariser's factor reads it even on the first step).
        if need_prev || self.flow.is_some() {
            self.w.times_rt(&d_xw.view(), F::zero(), &mut d_prev);
        }
        if self.flow.is_some() {
            for ((g, w), mut out) in d_state
                .rows()
                .into_iter()
                .zip(d_prev.rows())
                .zip(d_rw.rows_mut())
            {
                flow_row(
                    g.as_slice().expect("invariant: standard-layout state"),
                    w.as_slice().expect("invariant: standard-layout state"),
                    out.as_slice_mut()
                        .expect("invariant: standard-layout buffer"),
                );
            }
        }
    }

    fn accumulate_grads(&mut self, g: SequenceGrads<'_, F>) {
        let u = self.units();
        let (grads, sums) = ([g.d_xw, g.d_xw], [g.d_xw_sums, g.d_xw_sums]);
        self.w
            .accumulate(g.x, g.prev, grads, sums, u, u, g.per_gate);
        if let Some(lambda) = self.flow {
            add_flow_grad(
                lambda,
                g.batch,
                g.d_rw,
                g.d_xw,
                &mut self.w.recurrent_kernel,
            );
        }
    }
}
