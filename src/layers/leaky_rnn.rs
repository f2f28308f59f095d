//! `LeakyRnn`: leaky units (notes 002, several time scales),
//! `h_t = (1 − a)⊙h_{t−1} + a⊙act(x_t·kernel + h_{t−1}·recurrent_kernel + bias)`, the leak
//! `a` fixed (one number or one per unit) or learned (`a = sigmoid(leak_logit)`).

use super::LayerSpec;
use super::bidirectional::{BidirectionalConfig, BidirectionalSpec};
use super::recurrent::cell_sealed::Sealed;
use super::recurrent::config::{NoReturnState, is_orthogonal, orthogonal, tanh, yes};
use super::recurrent::{BackwardStep, Cell, CellOptions, CellWeights, Recurrent};
use super::recurrent::{RecurrentLayerConfig, SequenceGrads, sequence_builders};
use super::recurrent::{add_flow_grad, flow_row, sl, sl_mut};
use super::simple_rnn::check_flow;
use crate::activation::{Activation, Deriv, with_derivatives};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{Init, StdRng};
use crate::param::Param;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayD, ArrayView2, ArrayViewMut2, Axis, IxDyn, s};
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
/// kernel `[input_dim, u]`, recurrent_kernel `[u, u]`, bias `[u]`, with a learned leak
/// `leak_logit` `[u]`, with a skip connection `skip_kernel` `[u, u]`.
///
/// # Several time scales
/// Besides leaks, the notes' other multi-time-scale remedies are options of this layer,
/// each a change of the step that keeps the one time loop (checked against a slow
/// reference by finite differences in `tests/suite/time_scales.rs`):
/// - [`skip_delay(d)`](LeakyRnnConfig::skip_delay): the step also sees `h_{t−d}`, a path
///   through time `d` times shorter;
/// - [`clock_periods(&[1, 2, 4, …])`](LeakyRnnConfig::clock_periods): the clockwork RNN,
///   unit groups that update only every `period` steps and otherwise keep their state.
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
/// | `skip_delay` | none; `d ≥ 2` adds `h_{t−d}·skip_kernel` to the step |
/// | `clock_periods` | none; one period per equal group of units (clockwork) |
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
    /// A skip connection through time with delay `d ≥ 2`: the step also sees `h_{t−d}`
    /// through its own `skip_kernel`, `z_t = x_t·W + h_{t−1}·U + h_{t−d}·V + b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_delay: Option<usize>,
    /// Clockwork periods (Koutník et al. 2014): the units split into as many equal groups,
    /// group `i` updated only at the steps `t` with `t mod period_i = 0` and keeping its
    /// state in between; a group receives recurrent input only from groups as slow or
    /// slower than itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_periods: Option<Vec<usize>>,
    /// Strength λ of the gradient-flow regulariser (see
    /// [`SimpleRnnConfig::gradient_flow_regularizer`](crate::layers::SimpleRnnConfig::gradient_flow_regularizer)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient_flow_regularizer: Option<f64>,
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
            skip_delay: None,
            clock_periods: None,
            gradient_flow_regularizer: None,
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

    /// Sets a skip connection through time with delay `d ≥ 2`: the step also sees
    /// `h_{t−d}` through a `skip_kernel` `[units, units]` (drawn like the recurrent kernel).
    /// The layer then carries its last `d` states (`h_t, …, h_{t−d+1}`, the states a stateful
    /// or streaming call keeps and a graph passes on).
    pub fn skip_delay(mut self, d: usize) -> Self {
        self.skip_delay = Some(d);
        self
    }
    /// Sets clockwork periods: the units split into `periods.len()` equal groups, group `i`
    /// updated only at steps `t` with `t mod periods[i] = 0` (counted from 0 at the first
    /// step, carried across stateful or streaming calls; masked steps do not count), keeping
    /// its state in between. Group `j` receives recurrent input only from groups `i` with
    /// `periods[i] ≥ periods[j]` (the recurrent kernel's other blocks stay zero). The layer
    /// carries the step count as one more state of `units` columns.
    pub fn clock_periods(mut self, periods: &[usize]) -> Self {
        self.clock_periods = Some(periods.to_vec());
        self
    }

    /// Adds the gradient-flow regulariser of Pascanu et al. (2013) with strength `lambda`
    /// to training, as
    /// [`SimpleRnnConfig::gradient_flow_regularizer`](crate::layers::SimpleRnnConfig::gradient_flow_regularizer)
    /// does; the step's Jacobian is the leaky one, `diag(1 − a) + diag(a⊙act′)·Rᵀ` (the
    /// skip connection's path is not part of it).
    pub fn gradient_flow_regularizer(mut self, lambda: f64) -> Self {
        self.gradient_flow_regularizer = Some(lambda);
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
        let mut out = format!(
            "units={}, activation={}, leak={leak}",
            self.units, self.activation
        );
        if let Some(d) = self.skip_delay {
            out += &format!(", skip_delay={d}");
        }
        if let Some(p) = &self.clock_periods {
            out += &format!(", clock_periods={p:?}");
        }
        out
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
        check_flow(
            layer,
            self.gradient_flow_regularizer,
            self.recurrent_dropout,
        )?;
        let bad = |field, reason: String| {
            Err(Error::Config {
                layer: layer.to_string(),
                field,
                reason,
            })
        };
        if let Some(d) = self.skip_delay {
            if d < 2 {
                return bad(
                    "skip_delay",
                    format!("expected a delay of at least 2 (1 is the recurrence), got {d}"),
                );
            }
            if self.recurrent_dropout > 0.0 {
                return bad(
                    "skip_delay",
                    "a skip connection does not take recurrent_dropout".into(),
                );
            }
        }
        if let Some(p) = &self.clock_periods {
            if p.is_empty() || !self.units.is_multiple_of(p.len()) {
                return bad(
                    "clock_periods",
                    format!(
                        "expected a number of periods dividing units={}, got {}",
                        self.units,
                        p.len()
                    ),
                );
            }
            if p.contains(&0) {
                return bad("clock_periods", "expected every period ≥ 1, got 0".into());
            }
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
        let skip = self.skip_delay.map(|_| {
            Param::new(
                self.recurrent_initializer
                    .sample(&[self.units, self.units], rng),
            )
        });
        let periods = match &self.clock_periods {
            Some(p) => {
                let group = self.units / p.len().max(1);
                (0..self.units).map(|i| p[i / group.max(1)]).collect()
            }
            None => Vec::new(),
        };
        let mut cell = LeakyRnnCell {
            activation: self.activation,
            w,
            leak: Array1::from_iter(leaks.iter().map(|&a| F::c(a))),
            leak_logit,
            skip,
            delay: self.skip_delay.unwrap_or(1),
            rec_mask: None,
            periods,
            flow: self.gradient_flow_regularizer.map(F::c),
        };
        cell.rec_mask = cell.clock_connectivity();
        cell.hold_connectivity();
        cell
    }
}

/// The cell behind [`LeakyRnn`]. State `[h_t | h_{t−1} … h_{t−d+1} | clock]` (the older
/// states only with a skip delay `d`, the clock only with clockwork periods; plain: `h`);
/// cache per step `s = act(z)`, the SimpleRNN step the unit leaks towards.
#[derive(Clone, Debug)]
pub struct LeakyRnnCell<F: Float> {
    activation: Activation,
    w: CellWeights<F>,
    /// The fixed leak per unit (unused when learned).
    leak: Array1<F>,
    /// The learned leak's logit per unit, `a = sigmoid(leak_logit)`.
    leak_logit: Option<Param<F>>,
    /// The skip kernel `[u, u]` applied to `h_{t−d}`.
    skip: Option<Param<F>>,
    /// The skip delay `d` (1: no skip connection).
    delay: usize,
    /// Clockwork: which recurrent-kernel entries exist (1) or stay zero (0).
    rec_mask: Option<Array2<F>>,
    /// Clockwork: each unit's period (empty: every unit updates every step).
    periods: Vec<usize>,
    /// The gradient-flow regulariser's strength, if on.
    flow: Option<F>,
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

    /// Older states carried for the skip connection (`d − 1`).
    fn history(&self) -> usize {
        self.delay - 1
    }

    /// The clock's first column in the state, if the layer has one.
    fn clock_col(&self) -> Option<usize> {
        (!self.periods.is_empty()).then(|| (1 + self.history()) * self.w.units())
    }

    /// The step count a state row holds (0 without a clock).
    fn clock(&self, prev_row: &[F]) -> usize {
        self.clock_col().map_or(0, |c| {
            let t = prev_row[c].to_f64().unwrap_or(0.0).round();
            if t > 0.0 { t as usize } else { 0 }
        })
    }

    /// Whether unit `i` updates at step `t`.
    #[inline]
    fn on(&self, i: usize, t: usize) -> bool {
        self.periods.get(i).is_none_or(|&p| t.is_multiple_of(p))
    }

    /// Clockwork's connectivity: entry `(i, j)` of the recurrent kernel (from unit `i` to
    /// unit `j`) exists when `i`'s period is at least `j`'s.
    fn clock_connectivity(&self) -> Option<Array2<F>> {
        let p = &self.periods;
        (!p.is_empty()).then(|| {
            Array2::from_shape_fn((p.len(), p.len()), |(i, j)| {
                if p[i] >= p[j] { F::one() } else { F::zero() }
            })
        })
    }

    /// Zeroes the recurrent kernel's entries clockwork's connectivity leaves out.
    fn hold_connectivity(&mut self) {
        if let Some(m) = &self.rec_mask {
            let mut r = self.w.recurrent_kernel.value.view_mut();
            r *= &m.view().into_dyn();
        }
    }

    /// One step: `z = xw + seen·R (+ h_{t−d}·V)`, `s = act(z)` (cached),
    /// `h = prev + a⊙(s − prev)` for the units the clock lets update; the older states
    /// shift by one and the clock advances. `seen` is `h_{t−1}` under recurrent dropout's
    /// mask, what the product sees.
    fn leaky_step(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        seen: ArrayView2<'_, F>,
        mut next: ArrayViewMut2<'_, F>,
        mut cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        let (u, hist) = (self.w.units(), self.history());
        self.w
            .times_r(&seen.slice(s![.., ..u]), F::zero(), &mut scratch.view_mut());
        {
            let (xw, r, s) = (sl(xw), sl(scratch.view()), sl_mut(cache.view_mut()));
            for ((s, &a), &r) in s.iter_mut().zip(xw).zip(r) {
                *s = a + r;
            }
        }
        if let Some(v) = &self.skip {
            let old = prev.slice(s![.., hist * u..(hist + 1) * u]);
            general_mat_mul(F::one(), &old, &v.v2(), F::one(), &mut cache);
        }
        self.activation.apply_slice(sl_mut(cache.view_mut()));
        // The product is consumed: the scratch holds the leaks now.
        let a = self.leaks(Self::leak_buf(scratch, u));
        for ((mut next, prev), s) in next
            .rows_mut()
            .into_iter()
            .zip(prev.rows())
            .zip(cache.rows())
        {
            let (next, prev, s) = (
                next.as_slice_mut()
                    .expect("invariant: standard-layout state"),
                prev.as_slice().expect("invariant: standard-layout state"),
                s.as_slice().expect("invariant: standard-layout cache"),
            );
            let t = self.clock(prev);
            for (i, ((h, &s), &p)) in next[..u].iter_mut().zip(s).zip(&prev[..u]).enumerate() {
                *h = if self.on(i, t) { p + a[i] * (s - p) } else { p };
            }
            next[u..(hist + 1) * u].copy_from_slice(&prev[..hist * u]);
            if let Some(c) = self.clock_col() {
                next[c..c + u].fill(F::c((t + 1) as f64));
            }
        }
    }

    /// The backward of [`Self::leaky_step`]: `dz = dh⊙a⊙act'(s)` (0 where the clock held
    /// the unit), `dh_{t−1} = dh⊙(1 − a) + (dz·Rᵀ)⊙mask` plus what the shifted older state
    /// took, `dh_{t−d} = dz·Vᵀ`, and for a learned leak `d_rw = dh⊙(s − h_{t−1})`.
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
            need_prev: _,
        } = st;
        let (u, hist) = (self.w.units(), self.history());
        let learned = self.leak_logit.is_some();
        let a = self.leaks(Self::leak_buf(scratch, u));
        let act = self.activation;
        let rows = prev
            .rows()
            .into_iter()
            .zip(cache.rows())
            .zip(d_state.rows());
        with_derivatives!(act, |dact| for ((((p, s), dh), mut dz), mut dl) in
            rows.zip(d_xw.rows_mut()).zip(d_rw.rows_mut())
        {
            let t = self.clock(p.as_slice().expect("invariant: standard-layout state"));
            for i in 0..u {
                let on = self.on(i, t);
                dz[i] = if on {
                    dh[i] * a[i] * dact.d(s[i])
                } else {
                    F::zero()
                };
                if learned {
                    dl[i] = if on { dh[i] * (s[i] - p[i]) } else { F::zero() };
                }
            }
        });
        {
            let mut d0 = d_prev.slice_mut(s![.., ..u]);
            self.w.times_rt(&d_xw.view(), F::zero(), &mut d0);
            if let Some(m) = mask {
                d0 *= &m;
            }
        }
        let flow_at = if learned { u } else { 0 };
        let rows = d_prev
            .rows_mut()
            .into_iter()
            .zip(d_state.rows())
            .zip(prev.rows());
        for (((mut dp, dh), p), mut rw) in rows.zip(d_rw.rows_mut()) {
            let t = self.clock(p.as_slice().expect("invariant: standard-layout state"));
            for i in 0..u {
                let keep = if self.on(i, t) {
                    F::one() - a[i]
                } else {
                    F::one()
                };
                dp[i] += dh[i] * keep;
            }
            if self.flow.is_some() {
                // The one-step Jacobian's product, before the older states join `dp`.
                let (dp, dh) = (dp.as_slice().expect("row"), dh.as_slice().expect("row"));
                let out = rw
                    .as_slice_mut()
                    .expect("invariant: standard-layout buffer");
                flow_row(&dh[..u], &dp[..u], &mut out[flow_at..flow_at + u]);
            }
            // `next`'s older states are `prev`'s shifted by one block.
            for k in 0..hist * u {
                if k < u {
                    dp[k] += dh[k + u];
                } else {
                    dp[k] = dh[k + u];
                }
            }
            // The clock takes no gradient.
            dp.slice_mut(s![(hist + 1) * u..]).fill(F::zero());
        }
        if let Some(v) = &self.skip {
            let mut old = d_prev.slice_mut(s![.., hist * u..(hist + 1) * u]);
            general_mat_mul(F::one(), &d_xw.view(), &v.v2().t(), F::zero(), &mut old);
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
    fn state_blocks(&self) -> usize {
        self.delay + usize::from(!self.periods.is_empty())
    }
    /// A learned leak takes its gradient through `d_rw`, which the loop keeps apart: there
    /// the backward step writes `dL/dh_t ⊙ (s_t − h_{t−1})` in the first `u` columns (the
    /// recurrent product's own gradient is `d_xw`, as for SimpleRNN), and the
    /// gradient-flow regulariser's factor in the next `u`.
    fn step_grad_width(&self) -> usize {
        self.units() * (usize::from(self.leak_logit.is_some()) + usize::from(self.flow.is_some()))
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
        let (grads, sums) = ([g.d_xw, g.d_xw], [g.d_xw_sums, g.d_xw_sums]);
        self.w
            .accumulate(g.x, g.prev, grads, sums, u, gw, g.per_gate);
        let learned = self.leak_logit.is_some();
        if let Some(p) = &mut self.leak_logit {
            let da = g.d_rw.slice(s![.., ..u]).sum_axis(Axis(0));
            let mut grad = p.grad.view_mut();
            for ((gl, &l), &d) in grad.iter_mut().zip(p.value.iter()).zip(da.iter()) {
                let a = F::one() / (F::one() + (-l).exp());
                *gl += d * a * (F::one() - a);
            }
        }
        if let Some(v) = &mut self.skip {
            // Skip connections refuse recurrent dropout: `prev` holds whole states here.
            let hist = self.delay - 1;
            let old = g.prev.slice(s![.., hist * u..(hist + 1) * u]);
            crate::parallel::gemm(F::one(), &old.t(), &g.d_xw, F::one(), &mut v.g2());
        }
        if let Some(lambda) = self.flow {
            let at = if learned { u } else { 0 };
            let factor = g.d_rw.slice(s![.., at..at + u]);
            add_flow_grad(
                lambda,
                g.batch,
                factor,
                g.d_xw,
                &mut self.w.recurrent_kernel,
            );
        }
        if let Some(m) = &self.rec_mask {
            let mut dr = self.w.recurrent_kernel.g2();
            dr *= m;
        }
    }

    fn visit_extra(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        if let Some(p) = &self.leak_logit {
            f("leak_logit", p);
        }
        if let Some(p) = &self.skip {
            f("skip_kernel", p);
        }
    }
    /// Visited after the kernels: a clockwork layer's absent recurrent connections are
    /// held at zero here, whenever weights may have been written (set, loaded, updated).
    fn visit_extra_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        if let Some(p) = &mut self.leak_logit {
            f("leak_logit", p);
        }
        if let Some(p) = &mut self.skip {
            f("skip_kernel", p);
        }
        self.hold_connectivity();
    }
}
