//! Weight-gradient products too small to split over threads (`c += aᵀ·b` over the `N`
//! rows of a whole sequence: `dK += Xᵀ·dG`, `dR += Hᵀ·dG` for small layers and batches).
//!
//! matrixmultiply packs both operands of every product and, at widths of 10 to 40, runs
//! mostly padded edge tiles: the two products of a 10-unit LSTM's training step spent 29 %
//! of the step there, at about 8 GFLOP/s. Here the gradients `b` are packed once for every
//! product against them and the packed kernel reads `aᵀ` in place (its rows are `a`'s
//! columns, each `k` value a row of `a` further). Transposing `a` into a row-major copy
//! first was measured too: it cost about what the product did, and lost on 32 units.
//! Above [`SMALL_FLOPS`] matrixmultiply split over two threads wins (this path on one
//! thread: 5–15 % slower training for SimpleRNN(256) batch 32, LSTM(64), GRU(64)).

use super::{PackedB, Plus, packed_mm};
use crate::float::Float;
use ndarray::{ArrayView2, ArrayViewMut2};

/// Products below this many FLOPs take this path (where the packed kernel runs); larger
/// ones are split over the threads by matrixmultiply ([`crate::parallel::gemm`]'s
/// threshold).
pub(crate) const SMALL_FLOPS: usize = 4_000_000;

/// The packing reused from one training step to the next (a clone starts with none).
#[derive(Debug)]
pub(crate) struct Scratch<F> {
    packed: PackedB<F>,
}

impl<F> Default for Scratch<F> {
    fn default() -> Self {
        Scratch {
            packed: PackedB {
                data: Vec::new(),
                what: None,
            },
        }
    }
}

impl<F> Clone for Scratch<F> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// Whether `c += aᵀ·b` for `a` `[N, m]`, `b` `[N, n]` runs here.
pub(crate) fn fits<F: Float>(n_rows: usize, m: usize, n: usize) -> bool {
    PackedB::<F>::available() && 2 * n_rows * m * n < SMALL_FLOPS
}

/// `c += aᵀ·b` for every `(a, c)` of `pairs`, `b` packed once for all of them. Every `a`
/// has `b`'s rows; `c` is `[a.ncols(), b.ncols()]`.
pub(crate) fn at_b<F: Float>(
    b: &ArrayView2<'_, F>,
    pairs: &mut [(ArrayView2<'_, F>, ArrayViewMut2<'_, F>)],
    scratch: &mut Scratch<F>,
) {
    scratch.packed.pack(b, false);
    for (a, c) in pairs.iter_mut() {
        // `aᵀ` read in place: its rows are `a`'s columns, `k` values a row of `a` apart.
        packed_mm(&a.t(), b, &scratch.packed, false, Plus::C, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    /// `c += aᵀ·b` for every pair against one packing of `b`, with `a` a column slice of a
    /// wider matrix (as `h` is of the states `[h | c]`): the numbers of a plain product
    /// (integers and quarters, exact), in both types, from no rows to more than a panel.
    macro_rules! small_products_match {
        ($name:ident, $t:ty) => {
            #[test]
            fn $name() {
                let mut scratch = Scratch::default();
                for &(rows, m, n) in &[(0, 3, 5), (1, 1, 1), (7, 10, 40), (64, 16, 17), (33, 5, 48)]
                {
                    let b =
                        Array2::from_shape_fn((rows, n), |(i, j)| ((i * 5 + j) % 13) as $t * 0.25);
                    let wide = Array2::from_shape_fn((rows, 2 * m), |(i, j)| {
                        ((i + 3 * j) % 7) as $t - 3.0
                    });
                    let (a1, a2) = (wide.slice(s![.., ..m]), wide.slice(s![.., m..]));
                    let c0 = Array2::from_shape_fn((m, n), |(i, j)| (i * n + j) as $t);
                    let (mut c1, mut c2) = (c0.clone(), c0.clone());
                    at_b(
                        &b.view(),
                        &mut [(a1, c1.view_mut()), (a2, c2.view_mut())],
                        &mut scratch,
                    );
                    assert_eq!(c1, &c0 + &a1.t().dot(&b), "{rows}x{m}x{n}, first");
                    assert_eq!(c2, &c0 + &a2.t().dot(&b), "{rows}x{m}x{n}, second");
                }
            }
        };
    }

    small_products_match!(small_products_match_in_f32, f32);
    small_products_match!(small_products_match_in_f64, f64);
}
