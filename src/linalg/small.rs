//! Weight-gradient products of short sequences and small layers (`c += aᵀ·b` over the `N`
//! rows of a whole sequence: `dK += Xᵀ·dG`, `dR += Hᵀ·dG`) on the packed kernel.
//!
//! matrixmultiply packs both operands of every product and, at widths of 10 to 40, runs
//! mostly padded edge tiles: the two products of a 10-unit LSTM's training step spent 29 %
//! of the step there, at about 8 GFLOP/s. Here the gradients `b` are packed once for every
//! product against them and the packed kernel reads `aᵀ` in place (its rows are `a`'s
//! columns, each `k` value a row of `a` further). Transposing `a` into a row-major copy
//! first was measured too: it cost about what the product did, and lost on 32 units.
//! Above [`SMALL_FLOPS`] the products split over the threads, each packing its own columns
//! of the gradients, where that was measured to pay ([`plan`]); elsewhere matrixmultiply
//! (on one thread this path was 5–15 % slower there).

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

/// Rows (`N`, steps × batch) up to which products too large for one thread still take
/// this path, split over the threads, where one packing serves both products (`dK` and
/// `dR` against the same gradients: LSTM, SimpleRNN). Measured in alternated pairs
/// against matrixmultiply: LSTM(64) batch 32 T 20 (640 rows) 0.90–0.94, LSTM(128) 640
/// rows level, W4 LSTM (3,200 rows) level; with two packings (GRU's `d_rw` is not `d_xw`;
/// SimpleRNN(256) batch 32 T 3, whose zero first step `dR` skips) GRU(64) 640 rows was
/// 1.14, W4 GRU 1.09, W2 1.00–1.02.
pub(crate) const SPLIT_ROWS: usize = 1024;

/// Whether `c += aᵀ·b` for `a` `[N, m]`, `b` `[N, n]` runs here, and on how many threads:
/// below [`SMALL_FLOPS`] on one; else, when one packing serves both products (`shared`)
/// and `N ≤ SPLIT_ROWS`, split over all of them; else not at all (matrixmultiply).
pub(crate) fn plan<F: Float>(n_rows: usize, m: usize, n: usize, shared: bool) -> Option<usize> {
    if !PackedB::<F>::available() {
        return None;
    }
    if 2 * n_rows * m * n < SMALL_FLOPS {
        return Some(1);
    }
    (shared && n_rows <= SPLIT_ROWS).then(crate::parallel::num_threads)
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

/// [`at_b`] split over `parts` threads by columns of `b` (and of every `c`), each part
/// packing its own columns into its own buffers (`scratch` grows to `parts`). Each column
/// of `c` gets the same numbers on any number of parts.
pub(crate) fn at_b_split<F: Float>(
    b: &ArrayView2<'_, F>,
    pairs: &mut [(ArrayView2<'_, F>, ArrayViewMut2<'_, F>)],
    scratch: &mut Vec<Scratch<F>>,
    parts: usize,
) {
    // Whole pairs of panels (the AVX-512 tile's 32 columns) per part.
    const W: usize = 32;
    let n = b.ncols();
    let parts = parts.clamp(1, n.div_ceil(W).max(1));
    if scratch.len() < parts {
        scratch.resize_with(parts, Scratch::default);
    }
    if parts == 1 {
        return at_b(b, pairs, &mut scratch[0]);
    }
    let blocks = n.div_ceil(W);
    let cuts: Vec<_> = crate::parallel::ranges(blocks, parts)
        .into_iter()
        .map(|r| r.start * W..(r.end * W).min(n))
        .collect();
    let mut tasks: Vec<_> = cuts
        .iter()
        .zip(scratch.iter_mut())
        .map(|(r, s)| (b.slice(ndarray::s![.., r.clone()]), Vec::new(), s))
        .collect();
    for (a, c) in pairs.iter_mut() {
        let parts = crate::parallel::split_mut(c.view_mut(), ndarray::Axis(1), &cuts);
        for (task, c) in tasks.iter_mut().zip(parts) {
            task.1.push((a.view(), c));
        }
    }
    crate::parallel::run(tasks, |(b, mut pairs, s)| at_b(&b, &mut pairs, s));
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

    /// Split over 1–3 threads by columns, each part with its own packing: the bits of one
    /// part, and the plain product's numbers (exact values).
    #[test]
    fn split_products_match_one_part() {
        let (rows, m, n) = (50, 12, 100);
        let b = Array2::from_shape_fn((rows, n), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.25);
        let a = Array2::from_shape_fn((rows, m), |(i, j)| ((i + 3 * j) % 7) as f64 - 3.0);
        let expected = a.t().dot(&b);
        let mut scratch = Vec::new();
        for parts in 1..=3 {
            let mut c = Array2::zeros((m, n));
            at_b_split(
                &b.view(),
                &mut [(a.view(), c.view_mut())],
                &mut scratch,
                parts,
            );
            assert_eq!(c, expected, "{parts} parts");
        }
        assert_eq!(scratch.len(), 3);
    }

    small_products_match!(small_products_match_in_f32, f32);
    small_products_match!(small_products_match_in_f64, f64);
}
