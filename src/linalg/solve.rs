//! Ridge regression in closed form, for readouts trained in one solve.
//!
//! `W = (ΦᵀΦ + λI)⁻¹ ΦᵀY`: the normal equations of `min ‖ΦW − Y‖² + λ‖W‖²`, whose matrix is
//! symmetric and, for `λ > 0`, positive definite, so a Cholesky factorisation solves them
//! stably in `p³/3` operations for `p` features: half of LU's work, no pivoting, and a
//! failure to factor means the problem is singular (then `None`: with `λ = 0` and
//! collinear features the readout is not determined). `ΦᵀΦ` is formed with the
//! matrix-multiply backend, which dominates for long series (`T·p²`); products with narrow
//! blocks (`ΦᵀY`, the bias and input columns) in one streaming pass. All in `f64`.

use super::{dot, few_rows_mm};
use crate::parallel::{gemm, num_threads, ranges, run, split_mut};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, ArrayView2, ArrayViewMut2, Axis, s};

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
        symmetric_gram(
            bi.view(),
            1.0,
            0.0,
            gram.slice_mut(s![ri.clone(), ri.clone()]),
        );
        for (j, bj) in blocks.iter().enumerate().take(i) {
            let rj = starts[j]..starts[j] + widths[j];
            product_t(bi.view(), bj.view(), gram.slice_mut(s![ri.clone(), rj]));
        }
        product_t(bi.view(), y.view(), rhs.slice_mut(s![ri, ..]));
    }
    // Only the lower triangle was formed; the factorisation reads no more.
    for i in 0..p {
        gram[[i, i]] += lambda;
    }
    let l = cholesky(gram)?;
    Some(cholesky_solve(&l, rhs))
}

/// Blocks at most this wide (a bias column, a few inputs, the targets) meet the others in
/// one streaming pass ([`narrow_t_wide`]).
const NARROW: usize = 8;

/// `c = aᵀ·b` (`a` `[T, p]`, `b` `[T, q]`). When either side is narrow, one streaming
/// pass over the rows of the other: a general product would first copy the wide block
/// into packed panels, for every narrow partner (for an ESN of 1,000 units over 10,000
/// steps, three copies of 80 MB of states: the bias, the input and the target columns).
fn product_t(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>, mut c: ArrayViewMut2<'_, f64>) {
    if b.ncols() <= NARROW {
        c.assign(&narrow_t_wide(b, a).t());
    } else if a.ncols() <= NARROW {
        c.assign(&narrow_t_wide(a, b));
    } else {
        gemm(1.0, &a.t(), &b, 0.0, &mut c);
    }
}

/// Rows of `w` below which [`narrow_t_wide`] runs on one thread.
const MIN_PARALLEL_ROWS: usize = 512;

/// `nᵀ·w` `[c, p]` for a narrow `n` `[T, c]` and `w` `[T, p]`: [`few_rows_mm`] (one pass
/// over the rows of `w`) on each thread's span of rows, the partial sums added in a fixed
/// order (the same bits on every run with the same number of threads).
fn narrow_t_wide(n: ArrayView2<'_, f64>, w: ArrayView2<'_, f64>) -> Array2<f64> {
    let (t, c, p) = (w.nrows(), n.ncols(), w.ncols());
    let parts = if t < MIN_PARALLEL_ROWS {
        1
    } else {
        num_threads()
    };
    let spans = ranges(t, parts);
    let mut partial = Array3::<f64>::zeros((spans.len(), c, p));
    let tasks: Vec<_> = partial.outer_iter_mut().zip(spans).collect();
    run(tasks, |(acc, rows)| {
        few_rows_mm(
            n.slice(s![rows.clone(), ..]).t(),
            w.slice(s![rows, ..]),
            None,
            acc,
        );
    });
    partial.sum_axis(Axis(0))
}

/// Column panels of the symmetric product, each one matrix product.
const PANEL: usize = 128;

/// The lower triangle (and diagonal) of `g ← alpha·bᵀb + beta·g` (`g` `[p, p]`), by row
/// panels: panel `I` is `b[:, I]ᵀ · b[:, ..end of I]`, so the upper triangle is (almost)
/// never computed; panels are dealt to the threads so each gets about the same work.
fn symmetric_gram(b: ArrayView2<'_, f64>, alpha: f64, beta: f64, mut g: ArrayViewMut2<'_, f64>) {
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
                alpha,
                &b.slice(s![.., r]).t(),
                &b.slice(s![.., ..end]),
                beta,
                &mut panel.slice_mut(s![.., ..end]),
            );
        }
    });
}

/// Columns per block of the factorisation.
const BLOCK: usize = 96;

/// The lower Cholesky factor `L` (`A = LLᵀ`) of a symmetric matrix whose lower triangle is
/// given, in place of its lower triangle; `None` when a pivot is not positive.
///
/// By blocks of [`BLOCK`] columns (right-looking): the block's rows and the rows below it
/// are factored one entry at a time (one dot product of two contiguous rows each, the rows
/// below split over the threads), then the rest of the matrix is updated by the block in
/// one symmetric product (`A₂₂ −= L₂₁L₂₁ᵀ`, lower triangle only). The unblocked
/// factorisation reads the whole factor once per row, from memory once the matrix
/// outgrows the cache: 1,002 features, 61 ms against 18–20 ms this way.
fn cholesky(mut a: Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let mut k0 = 0;
    while k0 < n {
        let k1 = (k0 + BLOCK).min(n);
        let data = a.as_slice_mut()?;
        let (head, below) = data.split_at_mut(k1 * n);
        // The diagonal block, row by row (each row reads the block's rows above it).
        for i in k0..k1 {
            let (done, rest) = head.split_at_mut(i * n);
            factor_row(done, &mut rest[..n], n, k0, i, Some(i))?;
        }
        // The rows below, independent of each other given the block.
        let head = &*head;
        let parts = if (n - k1) * (k1 - k0) < MIN_PARALLEL_PANEL {
            1
        } else {
            num_threads()
        };
        let spans = ranges(n - k1, parts);
        let mut chunks = Vec::with_capacity(spans.len());
        let mut rest = below;
        for r in &spans {
            let (chunk, tail) = rest.split_at_mut(r.len() * n);
            chunks.push(chunk);
            rest = tail;
        }
        run(chunks, |chunk| {
            for row in chunk.chunks_exact_mut(n) {
                factor_row(head, row, n, k0, k1, None);
            }
        });
        if k1 < n {
            let panel = a.slice(s![k1.., k0..k1]).to_owned();
            symmetric_gram(panel.t(), -1.0, 1.0, a.slice_mut(s![k1.., k1..]));
        }
        k0 = k1;
    }
    Some(a)
}

/// Entries below which the rows under a block are factored on one thread.
const MIN_PARALLEL_PANEL: usize = 32_768;

/// Entries `k0..end` of one row of the factor: `l_ij = (a_ij − Σ_{k0≤m<j} l_im·l_jm) / l_jj`
/// (the columns before `k0` were subtracted already), `rows` holding the factor's rows
/// `0..end` (at least); with `diagonal = Some(i)`, also the row's diagonal
/// `l_ii = √(a_ii − Σ l_im²)`, `None` when that is not a positive number.
fn factor_row(
    rows: &[f64],
    row: &mut [f64],
    n: usize,
    k0: usize,
    end: usize,
    diagonal: Option<usize>,
) -> Option<()> {
    for j in k0..end {
        let row_j = &rows[j * n..j * n + j + 1];
        let s = row[j] - dot(&row[k0..j], &row_j[k0..j]);
        row[j] = s / row_j[j];
    }
    if let Some(i) = diagonal {
        let d = row[i] - dot(&row[k0..i], &row[k0..i]);
        if d.is_nan() || d <= 0.0 || d.is_infinite() {
            return None;
        }
        row[i] = d.sqrt();
    }
    Some(())
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
    fn the_blocked_factor_reproduces_its_matrix() {
        // 250 features: two full blocks and a partial one, rows below split over threads.
        let (t, p) = (400, 250);
        let b = Array2::from_shape_fn((t, p), |(i, j)| {
            ((i * 7 + j * 13) as f64 * 0.37).sin() + if (i + 3 * j) % 11 == 0 { 1.0 } else { 0.0 }
        });
        let a = b.t().dot(&b) + Array2::<f64>::eye(p) * 0.5;
        let l = cholesky(a.clone()).unwrap();
        let l = Array2::from_shape_fn((p, p), |(i, j)| if j <= i { l[[i, j]] } else { 0.0 });
        let worst = (l.dot(&l.t()) - &a)
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            worst <= 1e-13 * scale,
            "‖LLᵀ − A‖ = {worst:e} (‖A‖ = {scale})"
        );
        // Not positive definite past the first block: refused there.
        let mut bad = a.clone();
        bad[[150, 150]] = -1.0;
        assert!(cholesky(bad).is_none());
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
