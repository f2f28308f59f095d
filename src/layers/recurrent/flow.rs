//! The gradient-flow regulariser of Pascanu, Mikolov and Bengio (2013), "On the difficulty
//! of training recurrent neural networks", eq. (9), in its simplified form:
//!
//! `Ω = λ · mean over the batch of Σ_t (‖g_t·∂h_t/∂h_{t−1}‖ / ‖g_t‖ − 1)²`, `g_t = dL/dh_t`,
//!
//! which asks every step to pass the gradient back with its norm kept. As in the paper,
//! `g_t` and the step's activations are held constant: only the recurrent kernel's direct
//! part of the Jacobian is differentiated. With `w = g·∂h_t/∂h_{t−1}` (its product with
//! the recurrent kernel `R` being `v·Rᵀ`, `v = dL/dz_t`), `∂‖w‖/∂R_ij = w_i v_j / ‖w‖`, so
//!
//! `∂Ω/∂R = λ/B · Σ_t (c_t ⊙ w_t/‖w_t‖)ᵀ · v_t`, `c_t = 2 (‖w_t‖/‖g_t‖ − 1) / ‖g_t‖`.
//!
//! A backward step writes the row `c_t w_t/‖w_t‖` ([`flow_row`]); the whole sequence's
//! product is added once ([`add_flow_grad`]).

use crate::float::Float;
use crate::param::Param;
use ndarray::ArrayView2;

/// One row of the regulariser's factor: `out = c·w/‖w‖`, `c = 2 (‖w‖/‖g‖ − 1)/‖g‖` (zero
/// where no gradient arrives or none leaves).
pub(crate) fn flow_row<F: Float>(g: &[F], w: &[F], out: &mut [F]) {
    let norm = |v: &[F]| v.iter().fold(F::zero(), |s, &x| s + x * x).sqrt();
    let (gn, wn) = (norm(g), norm(w));
    if gn == F::zero() || wn == F::zero() {
        out.fill(F::zero());
        return;
    }
    let c = F::c(2.0) * (wn / gn - F::one()) / gn / wn;
    for (o, &w) in out.iter_mut().zip(w) {
        *o = c * w;
    }
}

/// `dR += λ/batch · flowᵀ·d_z`, the whole sequence's rows at once.
pub(crate) fn add_flow_grad<F: Float>(
    lambda: F,
    batch: usize,
    flow: ArrayView2<'_, F>,
    d_z: ArrayView2<'_, F>,
    recurrent_kernel: &mut Param<F>,
) {
    let scale = lambda / F::c(batch.max(1) as f64);
    crate::parallel::gemm(scale, &flow.t(), &d_z, F::one(), &mut recurrent_kernel.g2());
}
