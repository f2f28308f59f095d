//! The spectral radius of a large (usually sparse) matrix without all its eigenvalues: the
//! Arnoldi method.
//!
//! A Krylov basis `v, Av, A²v, …` (orthonormalised by modified Gram–Schmidt, a second
//! pass only when the first cancelled much of the vector: the Daniel–Gragg–Kaufman–Stewart
//! criterion, which keeps the basis orthogonal to working precision) turns `A` into a small
//! upper Hessenberg matrix `H` whose eigenvalues (the Ritz values, found by the dense QR
//! iteration of [`super::eigen`], without its Hessenberg reduction) approach `A`'s
//! outermost eigenvalues first. The largest-modulus Ritz value `θ` is checked by its
//! residual `‖A·x − θ·x‖ = h_{k+1,k}·|y_k|` (`x = V·y`, `y` the eigenvector of `H` by
//! inverse iteration); below `1e-10·|θ|` the value is accepted. Each check solves the small
//! eigenproblem again (`O(k³)`, the larger part of the work), so checks are spaced: every
//! 16 steps at first, then, once two residuals are known, at the step where their trend
//! (linear in its logarithm; the convergence is faster than that, so the estimate is late
//! rather than early) reaches the tolerance, but at most half the basis size ahead. Each
//! step costs one matrix-vector product with the non-zeros only ([`FixedMatrix`]), plus
//! the orthogonalisation (`O(k·n)`), so a sparse reservoir of 1,000 units (about 250
//! steps) takes a fraction of the dense QR's seconds.
//! A matrix for which the basis would grow past three quarters of its size returns `None`:
//! the caller then uses the dense QR iteration, which always answers.

use super::dot;
use super::eigen::{dense_spectral_radius, hessenberg_eigenvalues};
use super::matvec::FixedMatrix;
use ndarray::{Array2, ArrayView2};

/// Accept a Ritz value whose residual is below this, relative to its modulus.
const TOLERANCE: f64 = 1e-10;
/// Check for convergence every this many steps at first, or every quarter of the basis
/// size when that is more (each check solves the small eigenproblem again), until two
/// residuals give a trend.
const CHECK_EVERY: usize = 16;
/// At least this many steps between checks, whatever the residuals' trend says.
const MIN_GAP: usize = 4;

/// Above this size the Arnoldi method is tried first.
const ARNOLDI_ABOVE: usize = 256;

/// The spectral radius `max |λ|` of a square matrix; `None` when the QR iteration does not
/// converge (it does for every finite matrix in practice) or the matrix has a non-finite
/// entry. Large matrices go to the Arnoldi method first, and to the QR iteration of
/// [`super::eigen`] if it does not converge.
pub(crate) fn spectral_radius(a: ArrayView2<'_, f64>) -> Option<f64> {
    if a.nrows() > ARNOLDI_ABOVE
        && a.iter().all(|v| v.is_finite())
        && let Some(r) = arnoldi_spectral_radius(a)
    {
        return Some(r);
    }
    dense_spectral_radius(a)
}

/// `max |λ(a)|` by Arnoldi, or `None` when it does not converge within `3n/4` steps
/// (random reservoirs of 1,000 units converge in about 250).
pub(crate) fn arnoldi_spectral_radius(a: ArrayView2<'_, f64>) -> Option<f64> {
    let n = a.nrows();
    if n < 2 * CHECK_EVERY || n != a.ncols() {
        return None;
    }
    let norm = a.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return None;
    }
    // Arnoldi on `Aᵀ` (the same eigenvalues): `Aᵀv = v·A`, the product the reservoir's own
    // layout computes (non-zeros only for a sparse `A`).
    let a = FixedMatrix::new(a);
    let matvec = |x: &[f64], y: &mut [f64]| {
        y.fill(0.0);
        a.add_product_cols(x, 0, y);
    };

    // A start vector with no structure a reservoir could share (deterministic).
    let mut v0: Vec<f64> = (0..n)
        .map(|i| ((i as f64 + 1.0) * 12.9898).sin() * 43_758.545_3 % 1.0 + 0.5)
        .collect();
    let s = dot(&v0, &v0).sqrt();
    v0.iter_mut().for_each(|x| *x /= s);
    let max_steps = 3 * n / 4;
    let mut next_check = 2 * CHECK_EVERY;
    // The last check's step and relative residual.
    let mut last: Option<(usize, f64)> = None;
    let mut basis: Vec<Vec<f64>> = vec![v0];
    // h[j] is column j of H: h[j][i] for i ≤ j + 1.
    let mut h: Vec<Vec<f64>> = Vec::new();
    let mut w = vec![0.0; n];
    for j in 0..max_steps {
        matvec(&basis[j], &mut w);
        let mut col = vec![0.0; j + 2];
        let beta = orthogonalise(&basis, &mut w, &mut col);
        col[j + 1] = beta;
        h.push(col);
        let k = j + 1;
        let invariant = beta <= 1e-13 * norm;
        if invariant || k == next_check {
            next_check = k + CHECK_EVERY.max(k / 4);
            let hk = Array2::from_shape_fn((k, k), |(r, c)| h[c].get(r).copied().unwrap_or(0.0));
            let eig = hessenberg_eigenvalues(hk.view())?;
            let theta = eig
                .iter()
                .copied()
                .max_by(|a, b| a.0.hypot(a.1).total_cmp(&b.0.hypot(b.1)))?;
            let modulus = theta.0.hypot(theta.1);
            if invariant {
                // The basis spans an invariant subspace: its Ritz values are eigenvalues.
                // (Another part of the spectrum may lie outside it: let the caller decide.)
                return None;
            }
            if let Some(y_last) = last_component(&hk, theta) {
                let residual = beta * y_last / modulus;
                if residual <= TOLERANCE {
                    return Some(modulus);
                }
                if let Some(at) = trend(last, (k, residual)) {
                    // With a trend, up to half the basis size ahead (it is late, not early).
                    next_check = at.min(k + CHECK_EVERY.max(k / 2)).max(k + MIN_GAP);
                }
                last = Some((k, residual));
            }
        }
        basis.push(w.iter().map(|x| x / beta).collect());
    }
    None
}

/// Removes from `w` its components along the orthonormal `basis` (modified Gram–Schmidt),
/// adding them to `coeffs`, and returns the norm of what is left. A second pass runs only
/// when the first cancelled more than `1 − 1/√2` of the vector (the Daniel–Gragg–
/// Kaufman–Stewart criterion): then rounding errors of the size of the cancelled part
/// could leave `w` visibly non-orthogonal to the basis; otherwise they cannot.
fn orthogonalise(basis: &[Vec<f64>], w: &mut [f64], coeffs: &mut [f64]) -> f64 {
    let mut before = dot(w, w).sqrt();
    let mut left = before;
    for _ in 0..2 {
        for (i, v) in basis.iter().enumerate() {
            let c = dot(v, w);
            coeffs[i] += c;
            w.iter_mut().zip(v).for_each(|(wk, vk)| *wk -= c * vk);
        }
        left = dot(w, w).sqrt();
        if left > std::f64::consts::FRAC_1_SQRT_2 * before {
            break;
        }
        before = left;
    }
    left
}

/// The step at which the relative residual, falling from `earlier` to `now` at the same
/// rate per step (in its logarithm), reaches [`TOLERANCE`]; `None` without two falling
/// residuals.
fn trend(earlier: Option<(usize, f64)>, now: (usize, f64)) -> Option<usize> {
    let (k0, r0) = earlier?;
    let (k1, r1) = now;
    if !(r1 < r0 && r1 > 0.0 && k1 > k0) {
        return None;
    }
    let per_step = (r1.ln() - r0.ln()) / (k1 - k0) as f64;
    let steps = (TOLERANCE.ln() - r1.ln()) / per_step;
    // `steps` is positive (r1 is above the tolerance) and finite (the residuals fell).
    Some(k1.saturating_add(steps.ceil() as usize))
}

/// `|y_k| / ‖y‖` for the eigenvector `y` of the Hessenberg `h` `[k, k]` belonging to the
/// (complex) eigenvalue `theta`, by two steps of inverse iteration; `None` if the solve
/// breaks down.
fn last_component(h: &Array2<f64>, theta: (f64, f64)) -> Option<f64> {
    let k = h.nrows();
    let scale = h
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    let mut y = vec![(1.0, 0.0); k];
    for _ in 0..2 {
        y = solve_shifted(h, theta, &y, scale * f64::EPSILON)?;
        let norm = y.iter().map(|c| c.0 * c.0 + c.1 * c.1).sum::<f64>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return None;
        }
        y.iter_mut().for_each(|c| *c = (c.0 / norm, c.1 / norm));
    }
    let last = y[k - 1];
    Some(last.0.hypot(last.1))
}

/// Solves `(h − θI)·z = b` for upper Hessenberg `h` in complex arithmetic, by Gaussian
/// elimination with partial pivoting between neighbouring rows; a zero pivot becomes
/// `tiny` (θ is an eigenvalue: the solution then points along its eigenvector).
fn solve_shifted(
    h: &Array2<f64>,
    theta: (f64, f64),
    b: &[(f64, f64)],
    tiny: f64,
) -> Option<Vec<(f64, f64)>> {
    type C = (f64, f64);
    let mul = |a: C, b: C| (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0);
    let sub = |a: C, b: C| (a.0 - b.0, a.1 - b.1);
    let div = |a: C, b: C| {
        let d = b.0 * b.0 + b.1 * b.1;
        ((a.0 * b.0 + a.1 * b.1) / d, (a.1 * b.0 - a.0 * b.1) / d)
    };
    let abs = |a: C| a.0.hypot(a.1);
    let k = h.nrows();
    let mut m: Vec<Vec<C>> = (0..k)
        .map(|r| {
            (0..k)
                .map(|c| {
                    let v = (h[[r, c]], 0.0);
                    if r == c { sub(v, theta) } else { v }
                })
                .collect()
        })
        .collect();
    let mut z = b.to_vec();
    for i in 0..k {
        if i + 1 < k && abs(m[i + 1][i]) > abs(m[i][i]) {
            m.swap(i, i + 1);
            z.swap(i, i + 1);
        }
        if abs(m[i][i]) < tiny {
            m[i][i] = (tiny, 0.0);
        }
        if i + 1 < k {
            let f = div(m[i + 1][i], m[i][i]);
            let (upper, lower) = m.split_at_mut(i + 1);
            for (below, &above) in lower[0][i..].iter_mut().zip(&upper[i][i..]) {
                *below = sub(*below, mul(f, above));
            }
            z[i + 1] = sub(z[i + 1], mul(f, z[i]));
        }
    }
    for i in (0..k).rev() {
        let mut s = z[i];
        for c in (i + 1)..k {
            s = sub(s, mul(m[i][c], z[c]));
        }
        z[i] = div(s, m[i][i]);
    }
    z.iter()
        .all(|c| c.0.is_finite() && c.1.is_finite())
        .then_some(z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::seeded_rng;
    use ndarray_rand::rand::Rng;

    #[test]
    fn agrees_with_the_dense_qr_on_random_sparse_reservoirs() {
        for (n, density, seed) in [(300, 0.1, 1), (400, 0.05, 2), (300, 0.3, 3), (600, 0.02, 4)] {
            let mut rng = seeded_rng(seed);
            let a = Array2::from_shape_simple_fn((n, n), || {
                if rng.random_bool(density) {
                    rng.random_range(-1.0..1.0)
                } else {
                    0.0
                }
            });
            let dense = dense_spectral_radius(a.view()).unwrap();
            let fast = arnoldi_spectral_radius(a.view()).expect("converges on a random reservoir");
            assert!(
                (fast - dense).abs() <= 1e-9 * dense,
                "n {n}: Arnoldi {fast}, QR {dense}"
            );
        }
    }

    #[test]
    fn a_vector_almost_in_the_basis_is_orthogonalised_twice() {
        // An orthonormal basis of 5 vectors and `w` = a combination of them plus 1e-9 of
        // something else: one pass leaves errors of about 1e-16 of the cancelled part,
        // i.e. 1e-7 relative to what is left; the second pass brings them to 1e-16.
        let n = 200;
        let mut rng = seeded_rng(5);
        let mut basis: Vec<Vec<f64>> = Vec::new();
        for _ in 0..5 {
            let mut v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let mut c = vec![0.0; 5];
            orthogonalise(&basis, &mut v, &mut c);
            let s = dot(&v, &v).sqrt();
            v.iter_mut().for_each(|x| *x /= s);
            basis.push(v);
        }
        let mut w: Vec<f64> = (0..n)
            .map(|i| {
                let along: f64 = basis
                    .iter()
                    .enumerate()
                    .map(|(q, v)| (q + 1) as f64 * v[i])
                    .sum();
                along + 1e-9 * rng.random_range(-1.0..1.0)
            })
            .collect();
        let mut coeffs = vec![0.0; 5];
        let left = orthogonalise(&basis, &mut w, &mut coeffs);
        assert!((left - dot(&w, &w).sqrt()).abs() <= 1e-15 * left);
        for (q, v) in basis.iter().enumerate() {
            let overlap = dot(v, &w).abs() / left;
            assert!(overlap < 1e-12, "basis vector {q}: overlap {overlap:e}");
            assert!((coeffs[q] - (q + 1) as f64).abs() < 1e-8, "{coeffs:?}");
        }
    }

    #[test]
    fn the_trend_predicts_where_the_residual_reaches_the_tolerance() {
        // 1e-2 at step 100, 1e-4 at step 120: a decade per 10 steps, 1e-10 at step 180.
        let at = trend(Some((100, 1e-2)), (120, 1e-4)).unwrap();
        assert!((179..=181).contains(&at), "{at}");
        // No trend without an earlier check, or when the residual did not fall.
        assert_eq!(trend(None, (120, 1e-4)), None);
        assert_eq!(trend(Some((100, 1e-4)), (120, 1e-2)), None);
        // A residual that barely falls predicts a far step without overflowing.
        assert!(trend(Some((100, 1e-2)), (120, 1e-2 * (1.0 - 1e-15))).unwrap() > 10_000);
    }
}
