//! The per-step matrix product of the time loop.
//!
//! A product whose left operand is all zeros (the first step's zero initial state) is
//! skipped: for the lecture's three-step sequences that is a third of the recurrent
//! products. Everything else goes to ndarray's matrixmultiply. (Plain loops for the tiny
//! products were tried and measured slower: without register blocking every multiply-add
//! reloads and stores its output row.)

use crate::float::Float;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

/// `c = a·b + beta·c`, with `beta` 0 or 1.
///
/// When `a` is all zeros the result is `beta·c` without a product (exact for finite `b`;
/// weights are finite: the loader and the trainer's NaN guard see to that).
pub(crate) fn step_mm<F: Float>(
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    debug_assert!(beta == F::zero() || beta == F::one());
    if a.iter().all(|&v| v == F::zero()) {
        if beta == F::zero() {
            c.fill(F::zero());
        }
        return;
    }
    general_mat_mul(F::one(), a, b, beta, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    /// Both paths on odd sizes, a strided left operand, a transposed right one, both betas.
    #[test]
    fn matches_a_plain_product() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (32, 10, 40), (7, 17, 33)] {
            let wide =
                Array2::from_shape_fn((m, 2 * k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let a = wide.slice(s![.., ..k]);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.25 - 1.0);
            let bt = Array2::from_shape_fn((n, k), |(j, i)| b[[i, j]]);
            let c0 = Array2::from_shape_fn((m, n), |(i, j)| (i + j) as f64);
            for beta in [0.0, 1.0] {
                for bv in [b.view(), bt.t()] {
                    let mut c = c0.clone();
                    step_mm(&a, &bv, beta, &mut c.view_mut());
                    assert_eq!(c, a.dot(&bv) + &c0 * beta);
                }
                let zeros = Array2::<f64>::zeros((m, k));
                let mut c = c0.clone();
                step_mm(&zeros.view(), &b.view(), beta, &mut c.view_mut());
                assert_eq!(c, &c0 * beta);
            }
        }
    }
}
