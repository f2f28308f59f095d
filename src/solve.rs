//! Ridge regression in closed form, for readouts trained in one solve.
//!
//! `W = (ΦᵀΦ + λI)⁻¹ ΦᵀY`: the normal equations of `min ‖ΦW − Y‖² + λ‖W‖²`, whose matrix is
//! symmetric and, for `λ > 0`, positive definite, so a Cholesky factorisation solves them
//! stably in `p³/3` operations for `p` features: half of LU's work, no pivoting, and a
//! failure to factor means the problem is singular (then `None`: with `λ = 0` and
//! collinear features the readout is not determined). `ΦᵀΦ` and `ΦᵀY` are formed with the
//! matrix-multiply backend, which dominates for long series (`T·p²`). All in `f64`.

use crate::linalg::dot;
use crate::parallel::{gemm, num_threads, run, split_mut};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};

/// The ridge solution `W` `[p, o]` of `min ‖ΦW − Y‖² + λ‖W‖²` for `Φ` `[T, p]` and `Y`
/// `[T, o]`; `None` when `ΦᵀΦ + λI` is not positive definite (numerically).
#[cfg(test)]
pub(crate) fn ridge(
    phi: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    lambda: f64,
) -> Option<Array2<f64>> {
    ridge_blocks(&[phi], y, lambda)
}

/// [`ridge`] with `Φ` given as column blocks `[B₀ | B₁ | …]` (each `[T, pᵢ]`), so a design
/// matrix `[1, x_t, h_t]` need not be copied together: `ΦᵀΦ` is assembled block by block,
/// `BᵢᵀBᵢ` as a symmetric product (half the work of a general one).
pub(crate) fn ridge_blocks(
    blocks: &[ArrayView2<'_, f64>],
    y: ArrayView2<'_, f64>,
    lambda: f64,
) -> Option<Array2<f64>> {
    let widths: Vec<usize> = blocks.iter().map(|b| b.ncols()).collect();
    let p: usize = widths.iter().sum();
    let starts: Vec<usize> = widths
        .iter()
        .scan(0, |at, w| {
            let s = *at;
            *at += w;
            Some(s)
        })
        .collect();
    let mut gram = Array2::<f64>::zeros((p, p));
    let mut rhs = Array2::<f64>::zeros((p, y.ncols()));
    for (i, bi) in blocks.iter().enumerate() {
        let ri = starts[i]..starts[i] + widths[i];
        symmetric_gram(bi.view(), gram.slice_mut(s![ri.clone(), ri.clone()]));
        for (j, bj) in blocks.iter().enumerate().take(i) {
            let rj = starts[j]..starts[j] + widths[j];
            gemm(
                1.0,
                &bi.t(),
                bj,
                0.0,
                &mut gram.slice_mut(s![ri.clone(), rj]),
            );
        }
        general_mat_mul(1.0, &bi.t(), &y, 0.0, &mut rhs.slice_mut(s![ri, ..]));
    }
    // Only the lower triangle was formed; the factorisation reads no more.
    for i in 0..p {
        gram[[i, i]] += lambda;
    }
    let l = cholesky(gram)?;
    Some(cholesky_solve(&l, rhs))
}

/// Column panels of the symmetric product, each one matrix product.
const PANEL: usize = 128;

/// The lower triangle (and diagonal) of `bᵀb` into `g` `[p, p]`, by row panels: panel `I`
/// is `b[:, I]ᵀ · b[:, ..end of I]`, so the upper triangle is (almost) never computed;
/// panels are dealt to the threads so each gets about the same work.
fn symmetric_gram(b: ArrayView2<'_, f64>, mut g: ArrayViewMut2<'_, f64>) {
    let p = b.ncols();
    let bounds: Vec<std::ops::Range<usize>> = (0..p.div_ceil(PANEL))
        .map(|k| k * PANEL..((k + 1) * PANEL).min(p))
        .collect();
    let threads = num_threads().clamp(1, bounds.len().max(1));
    let panels = split_mut(g.view_mut(), Axis(0), &bounds);
    // Work of panel k grows with k: deal from the heaviest, each to the lightest thread.
    let mut buckets: Vec<(usize, Vec<_>)> = (0..threads).map(|_| (0, Vec::new())).collect();
    for (panel, r) in panels.into_iter().zip(bounds).rev() {
        let lightest = buckets
            .iter_mut()
            .min_by_key(|(w, _)| *w)
            .expect("invariant: at least one thread");
        lightest.0 += r.end;
        lightest.1.push((panel, r));
    }
    run(buckets, |(_, panels)| {
        for (mut panel, r) in panels {
            let end = r.end;
            general_mat_mul(
                1.0,
                &b.slice(s![.., r]).t(),
                &b.slice(s![.., ..end]),
                0.0,
                &mut panel.slice_mut(s![.., ..end]),
            );
        }
    });
}

/// The lower Cholesky factor `L` (`A = LLᵀ`) of a symmetric matrix whose lower triangle is
/// given, in place of its lower triangle (row by row, each entry one dot product of two
/// contiguous rows); `None` when a pivot is not positive.
fn cholesky(mut a: Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let data = a.as_slice_mut()?;
    for i in 0..n {
        let (done, rest) = data.split_at_mut(i * n);
        let row_i = &mut rest[..n];
        for j in 0..i {
            let row_j = &done[j * n..j * n + j + 1];
            let s = row_i[j] - dot(&row_i[..j], &row_j[..j]);
            row_i[j] = s / row_j[j];
        }
        let d = row_i[i] - dot(&row_i[..i], &row_i[..i]);
        if d.is_nan() || d <= 0.0 || d.is_infinite() {
            return None;
        }
        row_i[i] = d.sqrt();
    }
    Some(a)
}

/// Solves `LLᵀX = B` for every column of `B`.
fn cholesky_solve(l: &Array2<f64>, mut b: Array2<f64>) -> Array2<f64> {
    let n = l.nrows();
    for c in 0..b.ncols() {
        let mut z = b.column(c).to_vec();
        // L z = b, row by row.
        for i in 0..n {
            let row = l.row(i);
            let row = row.as_slice().expect("invariant: L is standard layout");
            z[i] = (z[i] - dot(&row[..i], &z[..i])) / row[i];
        }
        // Lᵀ x = z, as columns of L: subtract each solved entry from the ones above.
        for i in (0..n).rev() {
            z[i] /= l[[i, i]];
            let zi = z[i];
            let row = l.row(i);
            for (zk, lik) in z[..i].iter_mut().zip(row.iter()) {
                *zk -= lik * zi;
            }
        }
        b.column_mut(c).assign(&ndarray::Array1::from(z));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ridge_matches_the_normal_equations_worked_by_hand() {
        // Φ = [[1, 0], [1, 1], [1, 2]], y = [1, 2, 2], λ = 1:
        // ΦᵀΦ + I = [[4, 3], [3, 6]], Φᵀy = [5, 6]; W = [[6, -3], [-3, 4]]·[5, 6] / 15
        //         = [12, 9] / 15 = [0.8, 0.6].
        let phi = array![[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]];
        let y = array![[1.0], [2.0], [2.0]];
        let w = ridge(phi.view(), y.view(), 1.0).unwrap();
        assert!(
            (w[[0, 0]] - 0.8).abs() < 1e-15 && (w[[1, 0]] - 0.6).abs() < 1e-15,
            "{w}"
        );
        // λ = 0 with collinear columns: singular, refused.
        let phi = array![[1.0, 2.0], [2.0, 4.0]];
        assert!(ridge(phi.view(), y.slice(ndarray::s![..2, ..]), 0.0).is_none());
    }

    #[test]
    fn blocks_and_panels_agree_with_a_plain_elimination() {
        // 300 columns: several panels of the symmetric product, split over threads.
        let (t, p, o) = (400, 300, 2);
        let phi = Array2::from_shape_fn((t, p), |(i, j)| {
            ((i * 7 + j * 13) as f64 * 0.37).sin() + if i % (j + 2) == 0 { 0.5 } else { 0.0 }
        });
        let y = Array2::from_shape_fn((t, o), |(i, k)| ((i + k) as f64 * 0.11).cos());
        let lambda = 1e-3;
        let blocks = [
            phi.slice(s![.., ..1]),
            phi.slice(s![.., 1..4]),
            phi.slice(s![.., 4..]),
        ];
        let w = ridge_blocks(&blocks, y.view(), lambda).unwrap();
        // Reference: Gauss-Jordan elimination with partial pivoting on the normal equations.
        let mut a = phi.t().dot(&phi) + Array2::<f64>::eye(p) * lambda;
        let mut r = phi.t().dot(&y);
        for c in 0..p {
            let piv = (c..p)
                .max_by(|&i, &j| a[[i, c]].abs().total_cmp(&a[[j, c]].abs()))
                .unwrap();
            for k in 0..p {
                a.swap([c, k], [piv, k]);
            }
            for k in 0..o {
                r.swap([c, k], [piv, k]);
            }
            for i in 0..p {
                if i != c {
                    let f = a[[i, c]] / a[[c, c]];
                    for k in 0..p {
                        a[[i, k]] -= f * a[[c, k]];
                    }
                    for k in 0..o {
                        r[[i, k]] -= f * r[[c, k]];
                    }
                }
            }
        }
        for i in 0..p {
            for k in 0..o {
                let want = r[[i, k]] / a[[i, i]];
                assert!(
                    (w[[i, k]] - want).abs() < 1e-8 * (1.0 + want.abs()),
                    "{i},{k}"
                );
            }
        }
    }
}
