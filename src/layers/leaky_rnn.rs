//! `LeakyRnn`: leaky units (notes 002, several time scales),
//! `h_t = (1 − a)⊙h_{t−1} + a⊙act(x_t·kernel + h_{t−1}·recurrent_kernel + bias)`, the leak
//! `a` fixed (one number or one per unit) or learned (`a = sigmoid(leak_logit)`).

use super::LayerSpec;
use super::bidirectional::{BidirectionalConfig, BidirectionalSpec};
use super::recurrent::cell_sealed::Sealed;
use super::recurrent::config::{NoReturnState, is_orthogonal, orthogonal, tanh, yes};
use super::recurrent::{BackwardStep, Cell, CellOptions, CellWeights, Recurrent};
use super::recurrent::{RecurrentLayerConfig, SequenceGrads, sequence_builders};
use super::recurrent::{sl, sl_mut};
use crate::activation::{Activation, Deriv, with_derivatives};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{Init, StdRng};
use crate::param::Param;
use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewMut2, Axis, IxDyn};
use serde::{Deserialize, Serialize};

/// Leaky recurrent layer: each unit keeps `1 − a` of its state and takes `a` of a SimpleRNN
/// step, `h_t = (1 − a)⊙h_{t−1} + a⊙act(x_t·kernel + h_{t−1}·recurrent_kernel + bias)`.
/// `a = 1` is [`SimpleRnn`](crate::layers::SimpleRnn); a small `a` is a slow unit (time
/// constant `1/a`) that averages its past, the notes' remedy for long-term dependencies.
/// Keras has no such layer; its numbers are checked against an independent float64
/// reference with autograd gradients (`tests/fixtures/leaky/`).
///
/// # Shapes
/// `[batch, steps, input_dim]` → `[batch, units]` (or `[batch, steps, units]`). Weights:
/// kernel `[input_dim, u]`, recurrent_kernel `[u, u]`, bias `[u]`, and with a learned leak
/// `leak_logit` `[u]`.
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = rnnkit::ndarray::Array3::from_elem((1, 50, 1), 1.0).into_dyn();
/// let fast = LeakyRnnConfig::new(1).build::<f64>(1, &mut seeded_rng(0))?;
/// let slow = LeakyRnnConfig::new(1).leak(0.05).build::<f64>(1, &mut seeded_rng(0))?;
/// let (f, s) = (fast.infer(Inputs::new(&x))?.output, slow.infer(Inputs::new(&x))?.output);
/// // Same weights; the slow unit has moved only part of the way after 50 steps.
/// assert!((s[[0, 0]] - f[[0, 0]]).abs() > 1e-3);
/// # Ok(()) }
/// ```
pub type LeakyRnn<F> = Recurrent<LeakyRnnCell<F>>;

/// The leak of a [`LeakyRnn`]: one number for every unit, or one per unit, each in (0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Leak {
    /// The same leak for every unit.
    Scalar(f64),
    /// One leak per unit.
    PerUnit(Vec<f64>),
}

/// Configuration of a [`LeakyRnn`] layer: SimpleRNN's arguments plus the leak.
///
/// | option | default |
/// |---|---|
/// | `activation` | `tanh` |
/// | `use_bias` | `true` |
/// | `leak` | fixed: 1 (SimpleRNN); learned: 0.5 to start |
/// | `train_leak` | `false`; `true` learns `a = sigmoid(leak_logit)` per unit |
/// | `return_sequences`, `go_backwards`, `zero_output_for_mask`, `stateful`, `dropout`, `recurrent_dropout`, `seed` | see [`SequenceOptions`](crate::layers::SequenceOptions) |
/// | `name` | `leaky_rnn` (`leaky_rnn_1`, ... in a model) |
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::layers::Leak;
/// let c = LeakyRnnConfig::new(4).leak_per_unit(&[1.0, 0.5, 0.1, 0.01]).return_sequences(true);
/// assert_eq!(c.leak, Some(Leak::PerUnit(vec![1.0, 0.5, 0.1, 0.01])));
/// let json = serde_json::to_string(&c).unwrap();
/// assert_eq!(serde_json::from_str::<LeakyRnnConfig>(&json).unwrap(), c);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakyRnnConfig {
    /// Layer name (default `leaky_rnn`, numbered in a model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of units.
    pub units: usize,
    /// Activation (default `tanh`).
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
    /// Carry the final state of each call into the next, sample by sample.
    #[serde(default)]
    pub stateful: bool,
    /// Fraction of input features dropped in training.
    #[serde(default)]
    pub dropout: f64,
    /// Fraction of `h_{t−1}` dropped where it enters the recurrent product, in training.
    #[serde(default)]
    pub recurrent_dropout: f64,
    /// Seed of the dropout masks.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The leak (fixed), or the starting leak (learned); `None`: 1 fixed, 0.5 learned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak: Option<Leak>,
    /// Learn the leak per unit, `a = sigmoid(leak_logit)`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub train_leak: bool,
    /// How the recurrent kernel is drawn (Keras's `recurrent_initializer`, default
    /// orthogonal; written to files only when another).
    #[serde(default = "orthogonal", skip_serializing_if = "is_orthogonal")]
    pub recurrent_initializer: Init,
    #[serde(default, skip_serializing, rename = "return_state")]
    return_state: NoReturnState,
}

sequence_builders!(LeakyRnnConfig);

impl LeakyRnnConfig {
    /// The layer with `units` units, leak 1 (a SimpleRNN until told otherwise).
    pub fn new(units: usize) -> Self {
        LeakyRnnConfig {
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
            leak: None,
            train_leak: false,
            recurrent_initializer: Init::Orthogonal,
            return_state: NoReturnState,
        }
    }
    /// Sets one leak for every unit, in (0, 1].
    pub fn leak(mut self, a: f64) -> Self {
        self.leak = Some(Leak::Scalar(a));
        self
    }
    /// Sets one leak per unit, each in (0, 1] (several time scales in one layer).
    pub fn leak_per_unit(mut self, a: &[f64]) -> Self {
        self.leak = Some(Leak::PerUnit(a.to_vec()));
        self
    }
    /// Sets `train_leak`: learn each unit's leak, `a = sigmoid(leak_logit)`, starting from
    /// `leak` (0.5 when not set; a start of 1 begins at 1 − 1e-7, a sigmoid's reach).
    pub fn train_leak(mut self, v: bool) -> Self {
        self.train_leak = v;
        self
    }

    /// The starting leak of every unit.
    fn leaks(&self) -> Vec<f64> {
        let default = if self.train_leak { 0.5 } else { 1.0 };
        match &self.leak {
            None => vec![default; self.units],
            Some(Leak::Scalar(a)) => vec![*a; self.units],
            Some(Leak::PerUnit(v)) => v.clone(),
        }
    }
}

impl RecurrentLayerConfig for LeakyRnnConfig {
    type Cell<F: Float> = LeakyRnnCell<F>;
    const DEFAULT_NAME: &'static str = "leaky_rnn";
    const TYPE_NAME: &'static str = "LeakyRNN";
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
        let leak = match (&self.leak, self.train_leak) {
            (_, true) => "learned".to_string(),
            (None, false) => "1".to_string(),
            (Some(Leak::Scalar(a)), false) => a.to_string(),
            (Some(Leak::PerUnit(_)), false) => "per unit".to_string(),
        };
        format!(
            "units={}, activation={}, leak={leak}",
            self.units, self.activation
        )
    }
    fn check(&self, layer: &str) -> Result<()> {
        let leaks = self.leaks();
        if leaks.len() != self.units {
            return Err(Error::Config {
                layer: layer.to_string(),
                field: "leak",
                reason: format!("{} leaks for {} units", leaks.len(), self.units),
            });
        }
        if let Some(a) = leaks.iter().find(|&&a| !(a > 0.0 && a <= 1.0)) {
            return Err(Error::Config {
                layer: layer.to_string(),
                field: "leak",
                reason: format!("expected every leak in (0, 1], got {a}"),
            });
        }
        Ok(())
    }
    fn layer_spec(self) -> LayerSpec {
        LayerSpec::LeakyRnn(self)
    }
    fn bidirectional_spec(config: BidirectionalConfig<LeakyRnnConfig>) -> BidirectionalSpec {
        BidirectionalSpec::LeakyRnn(config)
    }
    fn init_cell<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> LeakyRnnCell<F> {
        let bias = self.use_bias.then(|| ArrayD::zeros(IxDyn(&[self.units])));
        let w = CellWeights::init(
            input_dim,
            self.units,
            1,
            bias,
            self.recurrent_initializer,
            rng,
        );
        let leaks = self.leaks();
        let leak_logit = self.train_leak.then(|| {
            // A learned leak is a sigmoid: a start of exactly 1 begins just below it.
            let logit = leaks.iter().map(|&a| {
                let a = a.min(1.0 - 1e-7);
                F::c((a / (1.0 - a)).ln())
            });
            Param::new(Array1::from_iter(logit).into_dyn())
        });
        LeakyRnnCell {
            activation: self.activation,
            w,
            leak: Array1::from_iter(leaks.iter().map(|&a| F::c(a))),
            leak_logit,
        }
    }
}

/// The cell behind [`LeakyRnn`]. State `h`; cache per step `s = act(z)`, the SimpleRNN step
/// the unit leaks towards.
#[derive(Clone, Debug)]
pub struct LeakyRnnCell<F: Float> {
    activation: Activation,
    w: CellWeights<F>,
    /// The fixed leak per unit (unused when learned).
    leak: Array1<F>,
    /// The learned leak's logit per unit, `a = sigmoid(leak_logit)`.
    leak_logit: Option<Param<F>>,
}

impl<F: Float> LeakyRnnCell<F> {
    /// The leak of every unit: the fixed one, or the learned one computed once per step
    /// into `buf` (`units` entries of the step's scratch), not once per batch row.
    fn leaks<'s>(&'s self, buf: &'s mut [F]) -> &'s [F] {
        match self.logits() {
            Some(l) => {
                for (a, &l) in buf.iter_mut().zip(l) {
                    *a = F::one() / (F::one() + (-l).exp());
                }
                &buf[..l.len()]
            }
            None => self
                .leak
                .as_slice()
                .expect("invariant: a 1-D standard-layout leak"),
        }
    }

    /// The first `units` entries of a step's scratch `[rows, units]`.
    fn leak_buf(scratch: &mut Array2<F>, u: usize) -> &mut [F] {
        &mut scratch
            .as_slice_mut()
            .expect("invariant: the loop's scratch is standard layout")[..u]
    }

    /// One step: `z = xw + seen·R`, `s = act(z)` (cached), `h = prev + a⊙(s − prev)`;
    /// `seen` is `prev` under recurrent dropout's mask, what the product sees.
    fn leaky_step(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        seen: ArrayView2<'_, F>,
        mut next: ArrayViewMut2<'_, F>,
        mut cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        let u = self.w.units();
        self.w.times_r(&seen, F::zero(), &mut scratch.view_mut());
        {
            let (xw, r, s) = (sl(xw), sl(scratch.view()), sl_mut(cache.view_mut()));
            for ((s, &a), &r) in s.iter_mut().zip(xw).zip(r) {
                *s = a + r;
            }
            self.activation.apply_slice(s);
        }
        // The product is consumed: the scratch holds the leaks now.
        let a = self.leaks(Self::leak_buf(scratch, u));
        let (s, p, h) = (sl(cache.view()), sl(prev), sl_mut(next.view_mut()));
        for ((h, s), p) in h.chunks_mut(u).zip(s.chunks(u)).zip(p.chunks(u)) {
            for (((h, &s), &p), &a) in h.iter_mut().zip(s).zip(p).zip(a) {
                *h = p + a * (s - p);
            }
        }
    }

    /// The backward of [`Self::leaky_step`]: `dz = dh⊙a⊙act'(s)`,
    /// `dh_{t−1} = dh⊙(1 − a) + (dz·Rᵀ)⊙mask`, and for a learned leak
    /// `d_rw = dh⊙(s − h_{t−1})`.
    fn leaky_backward(
        &self,
        st: BackwardStep<'_, F>,
        mask: Option<ArrayView2<'_, F>>,
        scratch: &mut Array2<F>,
    ) {
        let BackwardStep {
            prev,
            next: _,
            cache,
            d_state,
            mut d_xw,
            mut d_rw,
            mut d_prev,
        } = st;
        let u = self.w.units();
        let learned = self.leak_logit.is_some();
        let a = self.leaks(Self::leak_buf(scratch, u));
        let act = self.activation;
        {
            let (s, dh, dz) = (sl(cache), sl(d_state), sl_mut(d_xw.view_mut()));
            with_derivatives!(act, |dact| for ((dz, dh), s) in
                dz.chunks_mut(u).zip(dh.chunks(u)).zip(s.chunks(u))
            {
                for (((dz, &dh), &s), &a) in dz.iter_mut().zip(dh).zip(s).zip(a) {
                    *dz = dh * a * dact.d(s);
                }
            });
        }
        if learned {
            let (s, p, dh, dl) = (sl(cache), sl(prev), sl(d_state), sl_mut(d_rw.view_mut()));
            for (((dl, &s), &p), &dh) in dl.iter_mut().zip(s).zip(p).zip(dh) {
                *dl = dh * (s - p);
            }
        }
        self.w.times_rt(&d_xw.view(), F::zero(), &mut d_prev);
        if let Some(m) = mask {
            d_prev *= &m;
        }
        let (dh, dp) = (sl(d_state), sl_mut(d_prev.view_mut()));
        for (dp, dh) in dp.chunks_mut(u).zip(dh.chunks(u)) {
            for ((dp, &dh), &a) in dp.iter_mut().zip(dh).zip(a) {
                *dp += dh * (F::one() - a);
            }
        }
    }

    fn logits(&self) -> Option<&[F]> {
        self.leak_logit.as_ref().map(|p| {
            p.value
                .as_slice()
                .expect("invariant: a 1-D standard-layout weight")
        })
    }
}

impl<F: Float> Sealed for LeakyRnnCell<F> {}

impl<F: Float> Cell for LeakyRnnCell<F> {
    type F = F;
    type Config = LeakyRnnConfig;
    const GATES: usize = 1;
    const STATE_BLOCKS: usize = 1;

    fn weights(&self) -> &CellWeights<F> {
        &self.w
    }
    fn weights_mut(&mut self) -> &mut CellWeights<F> {
        &mut self.w
    }
    fn cache_width(&self) -> usize {
        self.units()
    }
    /// A learned leak takes its gradient through `d_rw`, which the loop keeps apart: there
    /// the backward step writes `dL/dh_t ⊙ (s_t − h_{t−1})` (the recurrent product's own
    /// gradient is `d_xw`, as for SimpleRNN).
    fn separate_recurrent_grad(&self) -> bool {
        self.leak_logit.is_some()
    }

    fn step(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        self.leaky_step(xw, prev, prev, next, cache, scratch);
    }

    fn step_dropped(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        seen: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        self.leaky_step(xw, prev, seen, next, cache, scratch);
    }

    fn step_backward(&self, st: BackwardStep<'_, F>, scratch: &mut Array2<F>) {
        self.leaky_backward(st, None, scratch);
    }

    fn step_backward_dropped(
        &self,
        st: BackwardStep<'_, F>,
        _seen: ArrayView2<'_, F>,
        mask: ArrayView2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        self.leaky_backward(st, Some(mask), scratch);
    }

    fn accumulate_grads(&mut self, g: SequenceGrads<'_, F>) {
        let (u, gw) = (self.units(), self.gate_width());
        // The recurrent product's gradient is the pre-activation's (`d_rw` carries the
        // leak's terms instead).
        self.w
            .accumulate(g.x, g.prev, g.d_xw, g.d_xw, u, gw, g.per_gate);
        if let Some(p) = &mut self.leak_logit {
            let da = g.d_rw.sum_axis(Axis(0));
            let mut grad = p.grad.view_mut();
            for ((gl, &l), &d) in grad.iter_mut().zip(p.value.iter()).zip(da.iter()) {
                let a = F::one() / (F::one() + (-l).exp());
                *gl += d * a * (F::one() - a);
            }
        }
    }

    fn visit_extra(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        if let Some(p) = &self.leak_logit {
            f("leak_logit", p);
        }
    }
    fn visit_extra_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        if let Some(p) = &mut self.leak_logit {
            f("leak_logit", p);
        }
    }
}
