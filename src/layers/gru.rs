//! `Gru`: gated recurrent unit, Keras gate order z, r, h, both `reset_after` forms.

use super::LayerSpec;
use super::bidirectional::{BidirectionalConfig, BidirectionalSpec};
use super::recurrent::cell_sealed::Sealed;
use super::recurrent::config::{NoReturnState, is_orthogonal, orthogonal, sigmoid, tanh, yes};
use super::recurrent::{
    BackwardStep, Cell, CellOptions, CellWeights, Recurrent, SequenceGrads, sl, sl_mut,
};
use super::recurrent::{RecurrentLayerConfig, sequence_builders};
use super::recurrent::{avx2_twin, zip_lanes};
use crate::activation::{Activation, Deriv, with_derivatives};
use crate::float::Float;
use crate::init::{Init, StdRng};
use crate::linalg::step_mm;
use ndarray::{Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewMut2, IxDyn, s};
use serde::{Deserialize, Serialize};

/// Gated recurrent unit layer, numerically equal to `keras.layers.GRU`.
///
/// With `reset_after = true` (Keras's default, the cuDNN/PyTorch form), bias `[2, 3u]`:
/// `mx = x_t·kernel + b_in`, `mh = h_{t-1}·recurrent_kernel + b_rec`;
/// `z = ract(mx_z + mh_z)`, `r = ract(mx_r + mh_r)`, `ĥ = act(mx_h + r⊙mh_h)`.
///
/// With `reset_after = false` (Cho et al. 2014, the lecture's formula), bias `[3u]`:
/// `z = ract(mx_z + h_{t-1}·R_z)`, `r = ract(mx_r + h_{t-1}·R_r)`,
/// `ĥ = act(mx_h + (r⊙h_{t-1})·R_h)`.
///
/// Both: `h_t = z⊙h_{t-1} + (1−z)⊙ĥ` (Keras keeps `z` on the previous state).
///
/// # Shapes
/// `[batch, steps, input_dim]` → `[batch, units]` (or `[batch, steps, units]`).
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let after = GruConfig::new(10).build::<f64>(1, &mut seeded_rng(0))?;
/// let before = GruConfig::new(10).reset_after(false).build::<f64>(1, &mut seeded_rng(0))?;
/// assert_eq!((after.param_count(), before.param_count()), (390, 360));
/// # Ok(()) }
/// ```
pub type Gru<F> = Recurrent<GruCell<F>>;

/// Configuration of a [`Gru`] layer: Keras's `GRU` arguments as fields, set by builder
/// methods of the same names; serialises to Keras's config keys.
///
/// | option | default |
/// |---|---|
/// | `activation` | `tanh` |
/// | `recurrent_activation` | `sigmoid` |
/// | `use_bias` | `true` |
/// | `reset_after` | `true` |
/// | `return_sequences`, `go_backwards`, `zero_output_for_mask`, `stateful`, `dropout`, `recurrent_dropout`, `seed` | see [`SequenceOptions`](crate::layers::SequenceOptions) |
/// | `name` | `gru` (`gru_1`, ... in a model) |
///
/// ```
/// use rnnkit::prelude::*;
/// let c = GruConfig::new(4).reset_after(false).return_sequences(true);
/// assert!(!c.reset_after && c.return_sequences);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GruConfig {
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
    /// Apply the reset gate after the recurrent product (two biases).
    #[serde(default = "yes")]
    pub reset_after: bool,
    /// How the recurrent kernel is drawn (Keras's `recurrent_initializer`, default
    /// orthogonal; written to files only when another).
    #[serde(default = "orthogonal", skip_serializing_if = "is_orthogonal")]
    pub recurrent_initializer: Init,
    #[serde(default, skip_serializing, rename = "return_state")]
    return_state: NoReturnState,
}

sequence_builders!(GruConfig);

impl GruConfig {
    /// The layer with `units` units and Keras's defaults.
    pub fn new(units: usize) -> Self {
        GruConfig {
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
            reset_after: true,
            recurrent_initializer: Init::Orthogonal,
            return_state: NoReturnState,
        }
    }
    /// Sets `reset_after`.
    pub fn reset_after(mut self, v: bool) -> Self {
        self.reset_after = v;
        self
    }
    /// Sets the gate activation (Keras default `sigmoid`).
    pub fn recurrent_activation(mut self, a: Activation) -> Self {
        self.recurrent_activation = a;
        self
    }
}

impl RecurrentLayerConfig for GruConfig {
    type Cell<F: Float> = GruCell<F>;
    const DEFAULT_NAME: &'static str = "gru";
    const TYPE_NAME: &'static str = "GRU";
    fn cell_options(&self) -> CellOptions {
        CellOptions {
            units: self.units,
            activation: self.activation,
            recurrent_activation: self.recurrent_activation,
            use_bias: self.use_bias,
            recurrent_initializer: self.recurrent_initializer,
        }
    }
    fn describe(&self) -> String {
        format!("units={}, reset_after={}", self.units, self.reset_after)
    }
    fn layer_spec(self) -> LayerSpec {
        LayerSpec::Gru(self)
    }
    fn bidirectional_spec(config: BidirectionalConfig<GruConfig>) -> BidirectionalSpec {
        BidirectionalSpec::Gru(config)
    }
    fn init_cell<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> GruCell<F> {
        let u = self.units;
        let bias = self.use_bias.then(|| {
            if self.reset_after {
                ArrayD::zeros(IxDyn(&[2, 3 * u]))
            } else {
                ArrayD::zeros(IxDyn(&[3 * u]))
            }
        });
        GruCell {
            activation: self.activation,
            recurrent_activation: self.recurrent_activation,
            reset_after: self.reset_after,
            w: CellWeights::init(input_dim, u, 3, bias, self.recurrent_initializer, rng),
            zeros: vec![F::zero(); 3 * u],
        }
    }
}

/// The cell behind [`Gru`]. Cache per step `[z | r | ĥ | m]`, where `m` is `mh_h`
/// (`reset_after`) or `r⊙h_{t-1}` (not).
#[derive(Clone, Debug)]
pub struct GruCell<F: Float> {
    activation: Activation,
    recurrent_activation: Activation,
    reset_after: bool,
    w: CellWeights<F>,
    /// Stands in for an absent recurrent bias, so the step needs no branch per element.
    zeros: Vec<F>,
}

impl<F: Float> GruCell<F> {
    avx2_twin!(
        /// A step whose update mixes in `prev` and whose recurrent products see `prev`, or
        /// under recurrent dropout block `k` of `seen` `[B, 3u]` (`h_{t−1}⊙m_k`) for gate `k`.
        fn step_impl / step_avx2 / step_body(
            &self,
            xw: ArrayView2<'_, F>,
            prev: ArrayView2<'_, F>,
            seen: Option<ArrayView2<'_, F>>,
            next: ArrayViewMut2<'_, F>,
            cache: ArrayViewMut2<'_, F>,
            scratch: &mut Array2<F>,
        )
    );

    #[inline(always)]
    fn step_body(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        seen: Option<ArrayView2<'_, F>>,
        next: ArrayViewMut2<'_, F>,
        mut cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        let u = self.units();

        let (act, ract) = (self.activation, self.recurrent_activation);
        let r_all = self.w.recurrent_kernel.v2();
        let rows = prev.nrows();
        if self.reset_after {
            // mh = h_{t-1}·R + b_rec, all three blocks in one product (one per gate under
            // per-gate masks).
            match seen {
                None => self.w.times_r(&prev, F::zero(), &mut scratch.view_mut()),
                Some(sn) => self.w.times_r_gates(&sn, 3, &mut scratch.view_mut()),
            }
            let rb = self.recurrent_bias();
            let br = rb.as_ref().map_or(&self.zeros[..], |b| {
                b.as_slice().expect("contiguous bias row")
            });
            let (xw, sc, p, n, ca) = (
                sl(xw),
                sl(scratch.view()),
                sl(prev),
                sl_mut(next),
                sl_mut(cache),
            );
            // Gate-major cache: [z | r | ĥ | mh], each block [rows, u], so every activation
            // runs once over a long contiguous block (vector code even for 10 units).
            let nb = rows * u;
            let (zr, rest) = ca.split_at_mut(2 * nb);
            for b in 0..rows {
                for k in 0..2 {
                    let at = b * 3 * u + k * u;
                    let (a, m, br) = (&xw[at..at + u], &sc[at..at + u], &br[k * u..(k + 1) * u]);
                    let z = &mut zr[k * nb + b * u..k * nb + (b + 1) * u];
                    zip_lanes(u, [a, m, br], [z], |[a, m, br]| [a + m + br]);
                }
            }
            ract.apply_slice(zr); // z, r
            let (z, r) = zr.split_at(nb);
            let (hh, mh) = rest.split_at_mut(nb);
            for b in 0..rows {
                let (at, row) = (b * 3 * u + 2 * u, b * u..(b + 1) * u);
                let (a, m, br) = (&xw[at..at + u], &sc[at..at + u], &br[2 * u..3 * u]);
                let (r, hh, mh) = (&r[row.clone()], &mut hh[row.clone()], &mut mh[row]);
                zip_lanes(u, [a, m, br, r], [hh, mh], |[a, m, br, r]| {
                    let mh = m + br;
                    [a + r * mh, mh] // x_h + r⊙mh
                });
            }
            act.apply_slice(hh); // ĥ
            zip_lanes(rows * u, [z, &*hh, p], [n], |[z, hh, hp]| {
                [z * hp + (F::one() - z) * hh]
            });
        } else {
            // z and r from h_{t-1}·R_zr, then ĥ from (r⊙h_{t-1})·R_h.
            match seen {
                None => step_mm(
                    &prev,
                    &r_all.slice(s![.., ..2 * u]),
                    F::zero(),
                    &mut scratch.slice_mut(s![.., ..2 * u]),
                ),
                Some(sn) => self.w.times_r_gates(&sn, 2, &mut scratch.view_mut()),
            }
            // What ĥ's product sees of h_{t−1}: row b, column j at `p[b * stride + off + j]`.
            let (p, stride, off) = match &seen {
                None => (sl(prev), u, 0),
                Some(sn) => (sl(sn.view()), 3 * u, 2 * u),
            };
            {
                let (xw, sc, ca) = (sl(xw), sl(scratch.view()), sl_mut(cache.view_mut()));
                for b in 0..rows {
                    let a = &xw[b * 3 * u..(b + 1) * 3 * u];
                    let m = &sc[b * 3 * u..(b + 1) * 3 * u];
                    let ca = &mut ca[b * 4 * u..(b + 1) * 4 * u];
                    for j in 0..2 * u {
                        ca[j] = a[j] + m[j];
                    }
                    ract.apply_slice(&mut ca[..2 * u]); // z, r
                    for j in 0..u {
                        ca[3 * u + j] = ca[u + j] * p[b * stride + off + j]; // r⊙h_{t-1}
                    }
                }
            }
            step_mm(
                &cache.slice(s![.., 3 * u..]),
                &r_all.slice(s![.., 2 * u..]),
                F::zero(),
                &mut scratch.slice_mut(s![.., 2 * u..]),
            );
            let (xw, sc, p, n, ca) = (
                sl(xw),
                sl(scratch.view()),
                sl(prev),
                sl_mut(next),
                sl_mut(cache),
            );
            for b in 0..rows {
                let a = &xw[b * 3 * u..(b + 1) * 3 * u];
                let m = &sc[b * 3 * u..(b + 1) * 3 * u];
                let ca = &mut ca[b * 4 * u..(b + 1) * 4 * u];
                for j in 0..u {
                    ca[2 * u + j] = a[2 * u + j] + m[2 * u + j];
                }
                act.apply_slice(&mut ca[2 * u..3 * u]); // ĥ
                for j in 0..u {
                    let (z, hh, hp) = (ca[j], ca[2 * u + j], p[b * u + j]);
                    n[b * u + j] = z * hp + (F::one() - z) * hh;
                }
            }
        }
    }

    avx2_twin!(
        /// The backward of [`GruCell::step_impl`]: `s.prev` the true previous state; under
        /// recurrent dropout `dropped` holds `seen` (what the products saw) and the masks
        /// `[B, 3u]` (each product's part of the gradient is multiplied by its gate's mask; the
        /// update's part is not).
        fn backward_impl / backward_avx2 / backward_body(
            &self,
            s: BackwardStep<'_, F>,
            dropped: Option<(ArrayView2<'_, F>, ArrayView2<'_, F>)>,
            scratch: &mut Array2<F>,
        )
    );

    #[inline(always)]
    fn backward_body(
        &self,
        s: BackwardStep<'_, F>,
        dropped: Option<(ArrayView2<'_, F>, ArrayView2<'_, F>)>,
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
            need_prev,
        } = s;
        let u = self.units();
        let (act, ract) = (self.activation, self.recurrent_activation);
        let r_all = self.w.recurrent_kernel.v2();
        let rows = prev.nrows();
        if self.reset_after {
            {
                let (p, ca, ds) = (sl(prev), sl(cache), sl(d_state));
                let (dx, dr, dp) = (
                    sl_mut(d_xw.view_mut()),
                    sl_mut(d_rw.view_mut()),
                    sl_mut(d_prev.view_mut()),
                );
                let nb = rows * u;
                let (z, rest) = ca.split_at(nb);
                let (r, rest) = rest.split_at(nb);
                let (hh, mh) = rest.split_at(nb);
                with_derivatives!(act, ract, |dact, dract| for b in 0..rows {
                    let row = b * u..(b + 1) * u;
                    let (dx_z, dx_rest) = dx[b * 3 * u..(b + 1) * 3 * u].split_at_mut(u);
                    let (dx_r, dx_h) = dx_rest.split_at_mut(u);
                    let (dr_z, dr_rest) = dr[b * 3 * u..(b + 1) * 3 * u].split_at_mut(u);
                    let (dr_r, dr_h) = dr_rest.split_at_mut(u);
                    let ins = [z, r, hh, mh, ds, p].map(|v| &v[row.clone()]);
                    zip_lanes(
                        u,
                        ins,
                        [dx_z, dx_r, dx_h, dr_z, dr_r, dr_h, &mut dp[row]],
                        |[z, r, hh, mh, dh, hp]| {
                            let dah = dh * (F::one() - z) * dact.d(hh);
                            let daz = dh * (hp - hh) * dract.d(z);
                            let dar = dah * mh * dract.d(r);
                            [daz, dar, dah, daz, dar, dah * r, dh * z]
                        },
                    );
                });
            }
            // dh_{t-1} += d_mh·Rᵀ (per gate ⊙ its mask: gate k's product saw h_{t-1}⊙m_k).
            match dropped {
                _ if !need_prev => {}
                None => self.w.times_rt(&d_rw.view(), F::one(), &mut d_prev),
                Some((_, m)) => self.w.times_rt_gates_masked(
                    &d_rw.view(),
                    &m,
                    3,
                    &mut scratch.view_mut(),
                    &mut d_prev,
                ),
            }
        } else {
            {
                let (p, ca, ds) = (sl(prev), sl(cache), sl(d_state));
                let (dx, dp) = (sl_mut(d_xw.view_mut()), sl_mut(d_prev.view_mut()));
                with_derivatives!(act, ract, |dact, dract| for b in 0..rows {
                    let ca = &ca[b * 4 * u..(b + 1) * 4 * u];
                    let dx = &mut dx[b * 3 * u..(b + 1) * 3 * u];
                    for j in 0..u {
                        let (z, hh) = (ca[j], ca[2 * u + j]);
                        let dh = ds[b * u + j];
                        let hp = p[b * u + j];
                        dx[j] = dh * (hp - hh) * dract.d(z);
                        dx[2 * u + j] = dh * (F::one() - z) * dact.d(hh);
                        dp[b * u + j] = dh * z;
                    }
                });
            }
            // d(r⊙h_{t-1}) = d_ah·R_hᵀ, into the first u scratch columns.
            step_mm(
                &d_xw.slice(s![.., 2 * u..]),
                &r_all.slice(s![.., 2 * u..]).t(),
                F::zero(),
                &mut scratch.slice_mut(s![.., ..u]),
            );
            // The products' part of dh_{t-1}, each times its gate's mask under dropout.
            let g = 3 * u;
            {
                let ca = sl(cache);
                // What ĥ's product saw of h_{t−1}, and its mask (row b, column j at
                // `[b * stride + off + j]`).
                let (p, m, stride, off) = match &dropped {
                    None => (sl(prev), None, u, 0),
                    Some((sn, m)) => (sl(sn.view()), Some(sl(m.view())), g, 2 * u),
                };
                let dx = sl_mut(d_xw.view_mut());
                let sc = sl(scratch.view());
                let dp = sl_mut(d_prev.view_mut());
                with_derivatives!(act, ract, |_dact, dract| for b in 0..rows {
                    for j in 0..u {
                        let r = ca[b * 4 * u + u + j];
                        let d_rh = sc[b * g + j];
                        let at = b * stride + off + j;
                        dx[b * g + u + j] = d_rh * p[at] * dract.d(r);
                        dp[b * u + j] += d_rh * r * m.map_or(F::one(), |m| m[at]);
                    }
                });
            }
            match dropped {
                _ if !need_prev => {}
                None => step_mm(
                    &d_xw.slice(s![.., ..2 * u]),
                    &r_all.slice(s![.., ..2 * u]).t(),
                    F::one(),
                    &mut d_prev,
                ),
                Some((_, m)) => self.w.times_rt_gates_masked(
                    &d_xw.view(),
                    &m,
                    2,
                    &mut scratch.view_mut(),
                    &mut d_prev,
                ),
            }
        }
    }

    /// The recurrent bias row (`reset_after` with bias only).
    fn recurrent_bias(&self) -> Option<ArrayView1<'_, F>> {
        self.w
            .bias
            .as_ref()
            .filter(|b| b.value.ndim() == 2)
            .map(|b| {
                b.value
                    .slice(s![1, ..])
                    .into_dimensionality()
                    .expect("2-D bias")
            })
    }
}

impl<F: Float> Sealed for GruCell<F> {}

impl<F: Float> Cell for GruCell<F> {
    type F = F;
    type Config = GruConfig;
    const GATES: usize = 3;
    const STATE_BLOCKS: usize = 1;

    fn weights(&self) -> &CellWeights<F> {
        &self.w
    }
    fn weights_mut(&mut self) -> &mut CellWeights<F> {
        &mut self.w
    }
    /// `reset_after`: gate-major `[z | r | ĥ | mh]` per step chunk (blocks of `[rows, u]`);
    /// otherwise row-major `[z, r, ĥ, r⊙h_{t−1}]`, whose last block `accumulate_grads`
    /// reads as a matrix.
    fn cache_width(&self) -> usize {
        4 * self.units()
    }
    fn separate_recurrent_grad(&self) -> bool {
        self.reset_after
    }

    fn step(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        self.step_impl(xw, prev, None, next, cache, scratch);
    }

    /// Gate k's product sees block k of `seen` (h_{t−1}⊙m_k); the update
    /// `z⊙h_{t−1} + (1−z)⊙ĥ` keeps the true `h_{t−1}`.
    fn step_dropped(
        &self,
        xw: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        seen: ArrayView2<'_, F>,
        next: ArrayViewMut2<'_, F>,
        cache: ArrayViewMut2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        self.step_impl(xw, prev, Some(seen), next, cache, scratch);
    }

    fn step_backward(&self, s: BackwardStep<'_, F>, scratch: &mut Array2<F>) {
        self.backward_impl(s, None, scratch);
    }

    fn step_backward_dropped(
        &self,
        s: BackwardStep<'_, F>,
        seen: ArrayView2<'_, F>,
        mask: ArrayView2<'_, F>,
        scratch: &mut Array2<F>,
    ) {
        self.backward_impl(s, Some((seen, mask)), scratch);
    }
    fn accumulate_grads(&mut self, g: SequenceGrads<'_, F>) {
        let SequenceGrads {
            x,
            prev,
            cache,
            d_xw,
            d_rw,
            d_xw_sums,
            d_rw_sums,
            per_gate,
            ..
        } = g;
        let u = self.units();
        let (grads, sums) = ([d_xw, d_rw], [d_xw_sums, d_rw_sums]);
        if self.reset_after {
            self.w.accumulate(x, prev, grads, sums, u, 3 * u, per_gate);
        } else {
            // z and r blocks from h_{t-1}; the h block from r⊙h_{t-1} (cached).
            self.w.accumulate(x, prev, grads, sums, u, 2 * u, per_gate);
            let mut dr = self.w.recurrent_kernel.g2();
            crate::parallel::gemm(
                F::one(),
                &cache.slice(s![.., 3 * u..]).t(),
                &d_rw.slice(s![.., 2 * u..]),
                F::one(),
                &mut dr.slice_mut(s![.., 2 * u..]),
            );
        }
    }

    fn prepare(&self, backward: bool) {
        // reset_before products use column blocks of R: matrixmultiply.
        if self.reset_after {
            self.w.prepare(backward);
        }
    }
}
