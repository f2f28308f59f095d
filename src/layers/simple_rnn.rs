//! `SimpleRnn`: the Elman cell, `h_t = act(x_t·kernel + h_{t-1}·recurrent_kernel + bias)`.

use super::bidirectional::{BidirectionalConfig, BidirectionalSpec};
use super::recurrent::cell_sealed::Sealed;
use super::recurrent::recurrent_layer_config;
use super::recurrent::{
    sl, sl_mut, BackwardStep, Cell, CellConfig, CellOptions, CellWeights, Recurrent,
};
use super::LayerSpec;
use crate::activation::{with_derivatives, Activation, Deriv};
use crate::float::Float;
use crate::init::StdRng;
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewMut2, IxDyn};

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
/// let mut rnn = SimpleRnnConfig::new(20).init::<f32>(1, &mut seeded_rng(0))?;
/// assert_eq!(rnn.param_count(), 440); // the lecture's model 1
/// let x = rnnkit::ndarray::Array3::<f32>::zeros((32, 3, 1)).into_dyn();
/// let y = rnn.forward(Inputs::new(&x))?.output;
/// assert_eq!(y.shape(), &[32, 20]);
/// # Ok(()) }
/// ```
pub type SimpleRnn<F> = Recurrent<SimpleRnnCell<F>>;

recurrent_layer_config! {
/// Configuration of a [`SimpleRnn`] layer.
///
/// | option | default |
/// |---|---|
/// | `activation` | `tanh` |
/// | `use_bias` | `true` |
/// | `return_sequences`, `go_backwards`, `zero_output_for_mask`, `name` | see [`RecurrentConfig`](crate::layers::RecurrentConfig) |
///
/// Its fields are read through `as_ref()` (a [`RecurrentConfig`](crate::layers::RecurrentConfig)).
///
/// ```
/// use rnnkit::prelude::*;
/// let c = SimpleRnnConfig::new(4).activation(Activation::Relu).go_backwards(true);
/// assert!(c.as_ref().go_backwards);
/// ```
SimpleRnnConfig(SimpleRnnOptions)
}

/// The cell options of a [`SimpleRnn`].
#[derive(Clone, Debug, PartialEq)]
pub struct SimpleRnnOptions {
    /// Units, activation (`tanh`) and `use_bias`.
    pub base: CellOptions,
}

impl CellConfig for SimpleRnnOptions {
    type Layer = SimpleRnnConfig;
    type Cell<F: Float> = SimpleRnnCell<F>;
    const DEFAULT_NAME: &'static str = "simple_rnn";
    const TYPE_NAME: &'static str = "SimpleRNN";
    fn with_units(units: usize) -> Self {
        SimpleRnnOptions {
            base: CellOptions::new(units),
        }
    }
    fn describe(&self) -> String {
        format!(
            "units={}, activation={}",
            self.base.units, self.base.activation
        )
    }
    fn options(&self) -> &CellOptions {
        &self.base
    }
    fn options_mut(&mut self) -> &mut CellOptions {
        &mut self.base
    }
    fn layer_spec(config: SimpleRnnConfig) -> LayerSpec {
        LayerSpec::SimpleRnn(config)
    }
    fn bidirectional_spec(config: BidirectionalConfig<SimpleRnnConfig>) -> BidirectionalSpec {
        BidirectionalSpec::SimpleRnn(config)
    }
    fn init_cell<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> SimpleRnnCell<F> {
        let bias = self
            .base
            .use_bias
            .then(|| ArrayD::zeros(IxDyn(&[self.base.units])));
        let w = CellWeights::init(input_dim, self.base.units, 1, bias, rng);
        SimpleRnnCell {
            activation: self.base.activation,
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
    type Config = SimpleRnnOptions;
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
