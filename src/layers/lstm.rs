//! `Lstm`: long short-term memory, Keras gate order i, f, c, o.

use super::LayerSpec;
use super::bidirectional::{BidirectionalConfig, BidirectionalSpec};
use super::recurrent::cell_sealed::Sealed;
use super::recurrent::config::{NoReturnState, is_orthogonal, orthogonal, sigmoid, tanh, yes};
use super::recurrent::{BackwardStep, Cell, CellOptions, CellWeights, Recurrent, sl, sl_mut};
use super::recurrent::{RecurrentLayerConfig, sequence_builders};
use super::recurrent::{avx2_twin, zip_lanes};
use crate::activation::{Activation, Deriv, with_derivatives};
use crate::float::Float;
use crate::init::{Init, StdRng};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewMut2, IxDyn, s};
use serde::{Deserialize, Serialize};

/// Long short-term memory layer, numerically equal to `keras.layers.LSTM`.
///
/// `[a_i|a_f|a_c|a_o] = x_t·kernel + h_{t-1}·recurrent_kernel + bias`;
/// `i, f, o = ract(a_i, a_f, a_o)`, `g = act(a_c)`; `c_t = f⊙c_{t-1} + i⊙g`;
/// `h_t = o⊙act(c_t)`; the output is `h_t`.
///
/// # Shapes
/// `[batch, steps, input_dim]` → `[batch, units]` (or `[batch, steps, units]`).
/// Weights: kernel `[input_dim, 4u]`, recurrent_kernel `[u, 4u]`, bias `[4u]`.
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let lstm = LstmConfig::new(10).build::<f64>(1, &mut seeded_rng(0))?;
/// assert_eq!(lstm.param_count(), 480);
/// // unit_forget_bias: the forget block of the bias starts at exactly 1.
/// let bias = &lstm.get_weights()[2];
/// assert!(bias.iter().skip(10).take(10).all(|&b| b == 1.0));
/// # Ok(()) }
/// ```
pub type Lstm<F> = Recurrent<LstmCell<F>>;

/// Configuration of an [`Lstm`] layer: Keras's `LSTM` arguments as fields, set by builder
/// methods of the same names; serialises to Keras's config keys and refuses keys an LSTM
/// does not have.
///
/// | option | default |
/// |---|---|
/// | `activation` | `tanh` |
/// | `recurrent_activation` | `sigmoid` |
/// | `use_bias` | `true` |
/// | `unit_forget_bias` | `true` (forget bias initialised to 1) |
/// | `return_sequences`, `go_backwards`, `zero_output_for_mask`, `stateful`, `dropout`, `recurrent_dropout`, `seed` | see [`SequenceOptions`](crate::layers::SequenceOptions) |
/// | `name` | `lstm` (`lstm_1`, ... in a model) |
///
/// ```
/// use rnnkit::prelude::*;
/// let c = LstmConfig::new(4).recurrent_activation(Activation::Sigmoid).name("encoder");
/// assert!(c.name.as_deref() == Some("encoder") && c.unit_forget_bias);
/// let json = serde_json::to_string(&c).unwrap();
/// assert!(json.contains(r#""units":4"#) && json.contains(r#""unit_forget_bias":true"#));
/// assert_eq!(serde_json::from_str::<LstmConfig>(&json).unwrap(), c);
/// assert!(serde_json::from_str::<LstmConfig>(r#"{"units": 2, "reset_after": true}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LstmConfig {
    /// Layer name (Keras default `%s`, numbered in a model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of units.
    pub units: usize,
    /// Activation (Keras default `tanh`).
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Gate activation (Keras default `sigmoid`).
    #[serde(default = "sigmoid")]
    pub recurrent_activation: Activation,
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
    /// Initialise the forget-gate bias to 1.
    #[serde(default = "yes")]
    pub unit_forget_bias: bool,
    /// How the recurrent kernel is drawn (Keras's `recurrent_initializer`, default
    /// orthogonal; written to files only when another).
    #[serde(default = "orthogonal", skip_serializing_if = "is_orthogonal")]
    pub recurrent_initializer: Init,
    #[serde(default, skip_serializing, rename = "return_state")]
    return_state: NoReturnState,
}

sequence_builders!(LstmConfig);

impl LstmConfig {
    /// The layer with `units` units and Keras's defaults.
    pub fn new(units: usize) -> Self {
        LstmConfig {
            name: None,
            units,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
            return_sequences: false,
            go_backwards: false,
            zero_output_for_mask: false,
            stateful: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            seed: None,
            unit_forget_bias: true,
            recurrent_initializer: Init::Orthogonal,
            return_state: NoReturnState,
        }
    }
    /// Sets `unit_forget_bias`.
    pub fn unit_forget_bias(mut self, v: bool) -> Self {
        self.unit_forget_bias = v;
        self
    }
    /// Sets the gate activation (Keras default `sigmoid`).
    pub fn recurrent_activation(mut self, a: Activation) -> Self {
        self.recurrent_activation = a;
        self
    }
}

impl RecurrentLayerConfig for LstmConfig {
    type Cell<F: Float> = LstmCell<F>;
    const DEFAULT_NAME: &'static str = "lstm";
    const TYPE_NAME: &'static str = "LSTM";
    fn cell_options(&self) -> CellOptions {
        CellOptions {
            units: self.units,
            activation: self.activation,
            recurrent_activation: self.recurrent_activation,
            use_bias: self.use_bias,
            recurrent_initializer: self.recurrent_initializer,
        }
    }
    fn layer_spec(self) -> LayerSpec {
        LayerSpec::Lstm(self)
    }
    fn bidirectional_spec(config: BidirectionalConfig<LstmConfig>) -> BidirectionalSpec {
        BidirectionalSpec::Lstm(config)
    }
    fn init_cell<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> LstmCell<F> {
        let u = self.units;
        let bias = self.use_bias.then(|| {
            let mut b = ArrayD::zeros(IxDyn(&[4 * u]));
            if self.unit_forget_bias {
                b.slice_mut(s![u..2 * u]).fill(F::one());
            }
            b
        });
        let w = CellWeights::init(input_dim, u, 4, bias, self.recurrent_initializer, rng);
        LstmCell {
            activation: self.activation,
            recurrent_activation: self.recurrent_activation,
            w,
        }
    }
}

/// The cell behind [`Lstm`]. State `[h | c]`; cache per step, gate-major:
/// `[i | f | g | o | act(c)]`, each block `[batch, units]`.
#[derive(Clone, Debug)]
pub struct LstmCell<F: Float> {
    activation: Activation,
    recurrent_activation: Activation,
    w: CellWeights<F>,
}

impl<F: Float> Sealed for LstmCell<F> {}

impl<F: Float> Cell for LstmCell<F> {
    type F = F;
    type Config = LstmConfig;
    const GATES: usize = 4;
    const STATE_BLOCKS: usize = 2;

    fn weights(&self) -> &CellWeights<F> {
        &self.w
    }
    fn weights_mut(&mut self) -> &mut CellWeights<F> {
        &mut self.w
    }
    fn cache_width(&self) -> usize {
        5 * self.units()
    }

    fn step(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        // One fused product for all four gates.
        self.w.times_r(
            &prev.slice(s![.., ..self.units()]),
            F::zero(),
            &mut scratch.view_mut(),
        );
        self.gates(xw, prev, next, cache, scratch);
    }

    /// Each gate's product sees its own masked `h_{t−1}`; `c_{t−1}` is whole.
    fn step_dropped(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        seen: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        self.w.times_r_gates(&seen, 4, &mut scratch.view_mut());
        self.gates(xw, prev, next, cache, scratch);
    }

    fn step_backward(&self, s: BackwardStep<'_, F>, _scratch: &mut Array2<F>) {
        let (u, need) = (self.units(), s.need_prev);
        let (d_xw, mut d_prev) = self.gates_backward(s);
        // dh_{t-1} = d_a·Rᵀ (all gates in one product).
        if need {
            self.w
                .times_rt(&d_xw.view(), F::zero(), &mut d_prev.slice_mut(s![.., ..u]));
        }
    }

    fn step_backward_dropped(
        &self,
        s: BackwardStep<'_, F>,
        _seen: ArrayView2<'_, F>,
        mask: ArrayView2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        let (u, need) = (self.units(), s.need_prev);
        let (d_xw, mut d_prev) = self.gates_backward(s);
        if !need {
            return;
        }
        // dh_{t-1} = Σ_k (d_a_k·R_kᵀ)⊙m_k.
        let mut dh = d_prev.slice_mut(s![.., ..u]);
        dh.fill(F::zero());
        self.w
            .times_rt_gates_masked(&d_xw.view(), &mask, 4, &mut scratch.view_mut(), &mut dh);
    }
}

impl<F: Float> LstmCell<F> {
    avx2_twin!(
        /// The step after the recurrent products (in `scratch`): gates, `c_t` and `h_t`.
        fn gates / gates_avx2 / gates_body(
            &self,
            xw: ArrayView2<'_, F>,
            prev: ArrayView2<'_, F>,
            next: ArrayViewMut2<'_, F>,
            cache: ArrayViewMut2<'_, F>,
            scratch: &Array2<F>,
        )
    );

    #[inline(always)]
    fn gates_body(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: ArrayViewMut2<'_, F>,
        scratch: &Array2<F>,
    ) {
        let u = self.units();
        let (act, ract) = (self.activation, self.recurrent_activation);
        let (xw, sc, prev, next, cache) = (
            sl(xw),
            sl(scratch.view()),
            sl(prev),
            sl_mut(next),
            sl_mut(cache),
        );
        let rows = next.len() / (2 * u);
        let n = rows * u;
        // Gate-major cache: [i | f | g | o | act(c)], each block [rows, u], so every
        // activation runs once over a long contiguous block (vector code even for 10 units).
        for b in 0..rows {
            let (a, r) = (
                &xw[b * 4 * u..(b + 1) * 4 * u],
                &sc[b * 4 * u..(b + 1) * 4 * u],
            );
            for k in 0..4 {
                let z = &mut cache[k * n + b * u..k * n + (b + 1) * u];
                let (a, r) = (&a[k * u..(k + 1) * u], &r[k * u..(k + 1) * u]);
                zip_lanes(u, [a, r], [z], |[a, r]| [a + r]);
            }
        }
        ract.apply_slice(&mut cache[..2 * n]); // i, f
        act.apply_slice(&mut cache[2 * n..3 * n]); // g
        ract.apply_slice(&mut cache[3 * n..4 * n]); // o
        let (gates, ac) = cache.split_at_mut(4 * n);
        let (i, rest) = gates.split_at(n);
        let (f, rest) = rest.split_at(n);
        let (g, o) = rest.split_at(n);
        for b in 0..rows {
            let row = b * u..(b + 1) * u;
            let (i, f, g) = (&i[row.clone()], &f[row.clone()], &g[row]);
            let c_prev = &prev[b * 2 * u + u..(b + 1) * 2 * u];
            let c_next = &mut next[b * 2 * u + u..(b + 1) * 2 * u];
            let ac = &mut ac[b * u..(b + 1) * u];
            // c_t = f⊙c_{t-1} + i⊙g
            zip_lanes(u, [f, c_prev, i, g], [c_next, ac], |[f, c_prev, i, g]| {
                let c = f * c_prev + i * g;
                [c, c]
            });
        }
        act.apply_slice(ac);
        for b in 0..rows {
            let (o, ac) = (&o[b * u..(b + 1) * u], &ac[b * u..(b + 1) * u]);
            let h = &mut next[b * 2 * u..b * 2 * u + u];
            zip_lanes(u, [o, ac], [h], |[o, ac]| [o * ac]); // h_t = o⊙act(c_t)
        }
    }

    avx2_twin!(
        /// The backward of [`LstmCell::gates`]: writes `d_xw` (the pre-activation gradients)
        /// and the `c` part of `d_prev`, and returns them for the product into `dh_{t−1}`.
        fn gates_backward / gates_backward_avx2 / gates_backward_body<'a>(
            &self,
            s: BackwardStep<'a, F>,
        ) -> (ArrayViewMut2<'a, F>, ArrayViewMut2<'a, F>)
    );

    #[inline(always)]
    fn gates_backward_body<'a>(
        &self,
        s: BackwardStep<'a, F>,
    ) -> (ArrayViewMut2<'a, F>, ArrayViewMut2<'a, F>) {
        let BackwardStep {
            prev,
            next: _,
            cache,
            d_state,
            mut d_xw,
            d_rw: _,
            mut d_prev,
            need_prev: _,
        } = s;
        let u = self.units();
        let (act, ract) = (self.activation, self.recurrent_activation);
        {
            let (p, ca, ds) = (sl(prev), sl(cache), sl(d_state));
            let (da, dp) = (sl_mut(d_xw.view_mut()), sl_mut(d_prev.view_mut()));
            let rows = ds.len() / (2 * u);
            let n = rows * u;
            let block = |k: usize, b: usize| &ca[k * n + b * u..k * n + (b + 1) * u];
            with_derivatives!(act, ract, |dact, dract| for b in 0..rows {
                let (i, f, g, o, ac) = (
                    block(0, b),
                    block(1, b),
                    block(2, b),
                    block(3, b),
                    block(4, b),
                );
                let c_prev = &p[b * 2 * u + u..(b + 1) * 2 * u];
                let (dh, dc_next) = ds[b * 2 * u..(b + 1) * 2 * u].split_at(u);
                let da = &mut da[b * 4 * u..(b + 1) * 4 * u];
                let (da_i, rest) = da.split_at_mut(u);
                let (da_f, rest) = rest.split_at_mut(u);
                let (da_g, da_o) = rest.split_at_mut(u);
                let dc_prev = &mut dp[b * 2 * u + u..(b + 1) * 2 * u];
                zip_lanes(
                    u,
                    [i, f, g, o, ac, c_prev, dh, dc_next],
                    [da_i, da_f, da_g, da_o, dc_prev],
                    |[i, f, g, o, ac, c_prev, dh, dc_next]| {
                        let dc = dc_next + dh * o * dact.d(ac);
                        [
                            dc * g * dract.d(i),
                            dc * c_prev * dract.d(f),
                            dc * i * dact.d(g),
                            dh * ac * dract.d(o),
                            dc * f,
                        ]
                    },
                );
            });
        }
        (d_xw, d_prev)
    }
}
