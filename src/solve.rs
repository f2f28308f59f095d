//! Ridge regression in closed form, for readouts trained in one solve.
//!
//! `W = (ΦᵀΦ + λI)⁻¹ ΦᵀY`: the normal equations of `min ‖ΦW − Y‖² + λ‖W‖²`, whose matrix is
//! symmetric and, for `λ > 0`, positive definite, so a Cholesky factorisation solves them
//! stably in `p³/3` operations for `p` features: half of LU's work, no pivoting, and a
//! failure to factor means the problem is singular (then `None`: with `λ = 0` and
//! collinear features the readout is not determined). `ΦᵀΦ` and `ΦᵀY` are formed with the
//! matrix-multiply backend, which dominates for long series (`T·p²`). All in `f64`.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};

/// The ridge solution `W` `[p, o]` of `min ‖ΦW − Y‖² + λ‖W‖²` for `Φ` `[T, p]` and `Y`
/// `[T, o]`; `None` when `ΦᵀΦ + λI` is not positive definite (numerically).
pub(crate) fn ridge(
    phi: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    lambda: f64,
) -> Option<Array2<f64>> {
    let p = phi.ncols();
    let mut gram = Array2::<f64>::zeros((p, p));
    crate::parallel::gemm(1.0, &phi.t(), &phi, 0.0, &mut gram.view_mut());
    for i in 0..p {
        gram[[i, i]] += lambda;
    }
    let mut rhs = Array2::<f64>::zeros((p, y.ncols()));
    general_mat_mul(1.0, &phi.t(), &y, 0.0, &mut rhs);
    let l = cholesky(gram)?;
    Some(cholesky_solve(&l, rhs))
}

/// The lower Cholesky factor `L` (`A = LLᵀ`) of a symmetric matrix, in place of its lower
/// triangle; `None` when a pivot is not positive.
fn cholesky(mut a: Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    for j in 0..n {
        let mut d = a[[j, j]];
        for k in 0..j {
            d -= a[[j, k]] * a[[j, k]];
        }
        if d.is_nan() || d <= 0.0 || d.is_infinite() {
            return None;
        }
        let d = d.sqrt();
        a[[j, j]] = d;
        for i in (j + 1)..n {
            let mut s = a[[i, j]];
            let (ri, rj) = (a.row(i), a.row(j));
            for k in 0..j {
                s -= ri[k] * rj[k];
            }
            a[[i, j]] = s / d;
        }
    }
    Some(a)
}

/// Solves `LLᵀX = B` for every column of `B`.
fn cholesky_solve(l: &Array2<f64>, mut b: Array2<f64>) -> Array2<f64> {
    let n = l.nrows();
    for c in 0..b.ncols() {
        // L z = b
        for i in 0..n {
            let mut s = b[[i, c]];
            for k in 0..i {
                s -= l[[i, k]] * b[[k, c]];
            }
            b[[i, c]] = s / l[[i, i]];
        }
        // Lᵀ x = z
        for i in (0..n).rev() {
            let mut s = b[[i, c]];
            for k in (i + 1)..n {
                s -= l[[k, i]] * b[[k, c]];
            }
            b[[i, c]] = s / l[[i, i]];
        }
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
}
