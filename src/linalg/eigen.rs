//! Eigenvalues of a general (non-symmetric) real matrix, for the spectral radius of a
//! reservoir.
//!
//! How: the matrix is balanced (rows and columns rescaled by powers of two so their norms
//! match, which changes no eigenvalue and removes the error that bad scaling brings), reduced
//! to upper Hessenberg form by Gaussian elimination with pivoting, and its eigenvalues found
//! by the Francis double-shift QR iteration: the EISPACK route (`balanc`, `elmhes`, `hqr`)
//! that LAPACK's `dgeev` (numpy's `eigvals`) refines. It finds every eigenvalue, complex
//! pairs included, so the radius is right for any matrix — unlike power iteration, which
//! does not converge when the largest eigenvalues are a complex pair or differ little in
//! modulus, as they do in random reservoirs. Cost `O(n³)`, all in `f64`. (The Krylov
//! module builds on this one: its Arnoldi method, tried first for large matrices, finds
//! the eigenvalues of its small Hessenberg matrix here.)

use super::dot;
use ndarray::{Array2, ArrayView2};

/// Iterations allowed per eigenvalue before giving up (EISPACK uses 30; random matrices
/// need fewer than 10).
const MAX_ITERATIONS: usize = 60;

/// The spectral radius from every eigenvalue (the QR iteration).
pub(crate) fn dense_spectral_radius(a: ArrayView2<'_, f64>) -> Option<f64> {
    let eig = eigenvalues(a)?;
    Some(eig.iter().map(|&(re, im)| re.hypot(im)).fold(0.0, f64::max))
}

/// Every eigenvalue `(re, im)` of a square matrix (in no particular order).
pub(crate) fn eigenvalues(a: ArrayView2<'_, f64>) -> Option<Vec<(f64, f64)>> {
    eigenvalues_of(a, true)
}

/// [`eigenvalues`] of a matrix already in upper Hessenberg form (as Arnoldi's `H`): the
/// reduction is skipped (balancing only rescales, so the form is kept). Entries below the
/// subdiagonal must be zero.
pub(crate) fn hessenberg_eigenvalues(h: ArrayView2<'_, f64>) -> Option<Vec<(f64, f64)>> {
    debug_assert!(h.indexed_iter().all(|((r, c), &v)| r <= c + 1 || v == 0.0));
    eigenvalues_of(h, false)
}

fn eigenvalues_of(a: ArrayView2<'_, f64>, reduce: bool) -> Option<Vec<(f64, f64)>> {
    let n = a.nrows();
    if n != a.ncols() || a.iter().any(|v| !v.is_finite()) {
        return None;
    }
    if n == 0 {
        return Some(Vec::new());
    }
    // 1-based storage, so the classic algorithms read as published.
    let mut m = Array2::<f64>::zeros((n + 1, n + 1));
    m.slice_mut(ndarray::s![1.., 1..]).assign(&a);
    balance(&mut m, n);
    if reduce {
        hessenberg(&mut m, n);
    }
    hqr(&mut m, n)
}

/// Rescales rows and columns by powers of two until their off-diagonal norms match.
fn balance(a: &mut Array2<f64>, n: usize) {
    const RADIX: f64 = 2.0;
    let sqrdx = RADIX * RADIX;
    let mut done = false;
    while !done {
        done = true;
        for i in 1..=n {
            let (mut c, mut r) = (0.0, 0.0);
            for j in 1..=n {
                if j != i {
                    c += a[[j, i]].abs();
                    r += a[[i, j]].abs();
                }
            }
            if c != 0.0 && r != 0.0 {
                let mut g = r / RADIX;
                let mut f = 1.0;
                let s = c + r;
                while c < g {
                    f *= RADIX;
                    c *= sqrdx;
                }
                g = r * RADIX;
                while c > g {
                    f /= RADIX;
                    c /= sqrdx;
                }
                if (c + r) / f < 0.95 * s {
                    done = false;
                    let g = 1.0 / f;
                    for j in 1..=n {
                        a[[i, j]] *= g;
                    }
                    for j in 1..=n {
                        a[[j, i]] *= f;
                    }
                }
            }
        }
    }
}

/// Reduces to upper Hessenberg form by elimination with partial pivoting (a similarity
/// transform `L⁻¹AL`: the eigenvalues are kept); entries below the subdiagonal are zeroed.
///
/// Each stage applies all its row operations (`L⁻¹A`) and then all its column operations
/// (`·L`), which commute among themselves; the column operations then become one dot
/// product per row over contiguous memory, not a walk down columns (20 times faster at
/// n = 1000 than the textbook's interleaved order).
fn hessenberg(a: &mut Array2<f64>, n: usize) {
    let w = n + 1;
    let d = a
        .as_slice_mut()
        .expect("invariant: a fresh standard-layout matrix");
    let mut y = vec![0.0; w];
    for m in 2..n {
        let (mut x, mut piv) = (0.0f64, m);
        for j in m..=n {
            if d[j * w + m - 1].abs() > x.abs() {
                x = d[j * w + m - 1];
                piv = j;
            }
        }
        if piv != m {
            for j in (m - 1)..=n {
                d.swap(piv * w + j, m * w + j);
            }
            for j in 1..=n {
                d.swap(j * w + piv, j * w + m);
            }
        }
        if x == 0.0 {
            continue;
        }
        // Row operations: row_i −= y_i · row_m (columns m..n), for i > m.
        let (top, rest) = d.split_at_mut((m + 1) * w);
        let row_m = &top[m * w..(m + 1) * w];
        for (i, row_i) in rest.chunks_exact_mut(w).enumerate() {
            let yi = row_i[m - 1] / x;
            y[m + 1 + i] = yi;
            row_i[m - 1] = 0.0;
            if yi != 0.0 {
                for (r, &p) in row_i[m..].iter_mut().zip(&row_m[m..]) {
                    *r -= yi * p;
                }
            }
        }
        // Column operations: column_m += Σ_{i>m} y_i · column_i, one dot per row.
        let ys = &y[m + 1..=n];
        for row in d.chunks_exact_mut(w).skip(1) {
            row[m] += dot(&row[m + 1..=n], ys);
        }
    }
    for i in 3..=n {
        for j in 1..(i - 1) {
            d[i * w + j] = 0.0;
        }
    }
}

/// `|a|` with the sign of `b`.
fn sign(a: f64, b: f64) -> f64 {
    if b >= 0.0 { a.abs() } else { -a.abs() }
}

/// Eigenvalues of an upper Hessenberg matrix by the Francis double-shift QR iteration;
/// on AVX2 CPUs compiled for them (its row updates then run four lanes wide).
fn hqr(a: &mut Array2<f64>, n: usize) -> Option<Vec<(f64, f64)>> {
    #[cfg(target_arch = "x86_64")]
    if crate::linalg::avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        return unsafe { hqr_avx2(a, n) };
    }
    hqr_in(a, n)
}

/// [`hqr_in`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn hqr_avx2(a: &mut Array2<f64>, n: usize) -> Option<Vec<(f64, f64)>> {
    hqr_in(a, n)
}

#[allow(clippy::many_single_char_names)]
#[inline(always)]
fn hqr_in(a: &mut Array2<f64>, n: usize) -> Option<Vec<(f64, f64)>> {
    let ld = n + 1;
    let d = a
        .as_slice_mut()
        .expect("invariant: a fresh standard-layout matrix");
    let mut wr = vec![0.0; n + 1];
    let mut wi = vec![0.0; n + 1];
    let mut anorm = 0.0;
    for i in 1..=n {
        for j in (i.max(2) - 1)..=n {
            anorm += d[i * ld + j].abs();
        }
    }
    let mut nn = n;
    let mut t = 0.0;
    let (mut p, mut q, mut r): (f64, f64, f64);
    let (mut x, mut y, mut z, mut w, mut s);
    while nn >= 1 {
        let mut its = 0;
        loop {
            // Look for a single small subdiagonal element.
            let mut l = nn;
            while l >= 2 {
                s = d[(l - 1) * ld + l - 1].abs() + d[l * ld + l].abs();
                if s == 0.0 {
                    s = anorm;
                }
                if d[l * ld + l - 1].abs() + s == s {
                    d[l * ld + l - 1] = 0.0;
                    break;
                }
                l -= 1;
            }
            x = d[nn * ld + nn];
            if l == nn {
                // One root found.
                wr[nn] = x + t;
                wi[nn] = 0.0;
                nn -= 1;
                break;
            }
            y = d[(nn - 1) * ld + nn - 1];
            w = d[nn * ld + nn - 1] * d[(nn - 1) * ld + nn];
            if l == nn - 1 {
                // Two roots found.
                p = 0.5 * (y - x);
                q = p * p + w;
                z = q.abs().sqrt();
                x += t;
                if q >= 0.0 {
                    z = p + sign(z, p);
                    wr[nn - 1] = x + z;
                    wr[nn] = x + z;
                    if z != 0.0 {
                        wr[nn] = x - w / z;
                    }
                    wi[nn - 1] = 0.0;
                    wi[nn] = 0.0;
                } else {
                    wr[nn - 1] = x + p;
                    wr[nn] = x + p;
                    wi[nn - 1] = -z;
                    wi[nn] = z;
                }
                nn -= 2;
                break;
            }
            if its == MAX_ITERATIONS {
                return None;
            }
            if its == 10 || its == 20 {
                // Exceptional shift.
                t += x;
                for i in 1..=nn {
                    d[i * ld + i] -= x;
                }
                s = d[nn * ld + nn - 1].abs() + d[(nn - 1) * ld + nn - 2].abs();
                x = 0.75 * s;
                y = x;
                w = -0.4375 * s * s;
            }
            its += 1;
            // Form the shift and look for two consecutive small subdiagonal elements.
            let mut m = nn - 2;
            loop {
                z = d[m * ld + m];
                r = x - z;
                s = y - z;
                p = (r * s - w) / d[(m + 1) * ld + m] + d[m * ld + m + 1];
                q = d[(m + 1) * ld + m + 1] - z - r - s;
                r = d[(m + 2) * ld + m + 1];
                s = p.abs() + q.abs() + r.abs();
                p /= s;
                q /= s;
                r /= s;
                if m == l {
                    break;
                }
                let u = d[m * ld + m - 1].abs() * (q.abs() + r.abs());
                let v = p.abs()
                    * (d[(m - 1) * ld + m - 1].abs() + z.abs() + d[(m + 1) * ld + m + 1].abs());
                if u + v == v {
                    break;
                }
                m -= 1;
            }
            for i in (m + 2)..=nn {
                d[i * ld + i - 2] = 0.0;
                if i != m + 2 {
                    d[i * ld + i - 3] = 0.0;
                }
            }
            // Double QR step on rows l..nn and columns m..nn.
            for k in m..nn {
                if k != m {
                    p = d[k * ld + k - 1];
                    q = d[(k + 1) * ld + k - 1];
                    r = 0.0;
                    if k != nn - 1 {
                        r = d[(k + 2) * ld + k - 1];
                    }
                    x = p.abs() + q.abs() + r.abs();
                    if x != 0.0 {
                        p /= x;
                        q /= x;
                        r /= x;
                    }
                }
                s = sign((p * p + q * q + r * r).sqrt(), p);
                if s != 0.0 {
                    if k == m {
                        if l != m {
                            d[k * ld + k - 1] = -d[k * ld + k - 1];
                        }
                    } else {
                        d[k * ld + k - 1] = -s * x;
                    }
                    p += s;
                    x = p / s;
                    y = q / s;
                    z = r / s;
                    q /= p;
                    r /= p;
                    // Rows k, k+1 (and k+2) over columns k..=nn: contiguous slices, so
                    // the loop runs in vector lanes.
                    let three = k != nn - 1;
                    let (upper, lower) = d.split_at_mut((k + 1) * ld);
                    let row0 = &mut upper[k * ld + k..=k * ld + nn];
                    let (row1, row2) = lower.split_at_mut(ld);
                    let row1 = &mut row1[k..=nn];
                    if three {
                        let row2 = &mut row2[k..=nn];
                        for ((a0, a1), a2) in row0.iter_mut().zip(row1).zip(row2) {
                            let p = *a0 + q * *a1 + r * *a2;
                            *a2 -= p * z;
                            *a1 -= p * y;
                            *a0 -= p * x;
                        }
                    } else {
                        for (a0, a1) in row0.iter_mut().zip(row1) {
                            let p = *a0 + q * *a1;
                            *a1 -= p * y;
                            *a0 -= p * x;
                        }
                    }
                    // Columns k, k+1 (and k+2) over rows l..=min(nn, k+3).
                    let mmin = if nn < k + 3 { nn } else { k + 3 };
                    for row in d[l * ld..(mmin + 1) * ld].chunks_exact_mut(ld) {
                        let c = &mut row[k..if three { k + 3 } else { k + 2 }];
                        p = x * c[0] + y * c[1];
                        if three {
                            p += z * c[2];
                            c[2] -= p * r;
                        }
                        c[1] -= p * q;
                        c[0] -= p;
                    }
                }
            }
            if l >= nn - 1 {
                break;
            }
        }
    }
    Some((1..=n).map(|i| (wr[i], wi[i])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn sorted(mut v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
        v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        v
    }

    #[test]
    fn a_hessenberg_matrix_needs_no_reduction() {
        let n = 40;
        let h = Array2::from_shape_fn((n, n), |(r, c)| {
            if r <= c + 1 {
                ((r * 7 + c * 3) as f64 * 0.61).sin()
            } else {
                0.0
            }
        });
        let (mut a, mut b) = (
            eigenvalues(h.view()).unwrap(),
            hessenberg_eigenvalues(h.view()).unwrap(),
        );
        for v in [&mut a, &mut b] {
            v.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.total_cmp(&y.1)));
        }
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x.0 - y.0).abs() < 1e-10 && (x.1 - y.1).abs() < 1e-10,
                "{x:?} {y:?}"
            );
        }
    }

    #[test]
    fn known_spectra() {
        // A rotation scaled by 2: eigenvalues ±2i, where power iteration never converges.
        let rot = array![[0.0, -2.0], [2.0, 0.0]];
        assert!((dense_spectral_radius(rot.view()).unwrap() - 2.0).abs() < 1e-15);
        // Triangular: the diagonal.
        let tri = array![[3.0, 1.0, 7.0], [0.0, -5.0, 2.0], [0.0, 0.0, 0.5]];
        let e = sorted(eigenvalues(tri.view()).unwrap());
        let want = [(-5.0, 0.0), (0.5, 0.0), (3.0, 0.0)];
        for (g, w) in e.iter().zip(want) {
            assert!((g.0 - w.0).abs() < 1e-13 && g.1.abs() < 1e-13, "{e:?}");
        }
        // A companion matrix of (λ-1)(λ-2)(λ-3)(λ²+4): roots 1, 2, 3, ±2i.
        // λ⁵ - 6λ⁴ + 15λ³ - 30λ² + 44λ - 24
        let c = [-24.0, 44.0, -30.0, 15.0, -6.0];
        let mut comp = Array2::<f64>::zeros((5, 5));
        for i in 1..5 {
            comp[[i, i - 1]] = 1.0;
        }
        for i in 0..5 {
            comp[[i, 4]] = -c[i];
        }
        let e = sorted(eigenvalues(comp.view()).unwrap());
        let want = [(0.0, -2.0), (0.0, 2.0), (1.0, 0.0), (2.0, 0.0), (3.0, 0.0)];
        for (g, w) in e.iter().zip(want) {
            assert!(
                (g.0 - w.0).abs() < 1e-9 && (g.1 - w.1).abs() < 1e-9,
                "{e:?}"
            );
        }
        assert!((dense_spectral_radius(comp.view()).unwrap() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_radius_of_a_random_matrix_is_the_largest_modulus_of_its_characteristic_roots() {
        // Similar matrices have the same spectrum: S·D·S⁻¹ with D block-diagonal of known
        // eigenvalues (a 2×2 rotation block gives a complex pair).
        let n = 6;
        let mut d = Array2::<f64>::zeros((n, n));
        d[[0, 0]] = 0.3;
        d[[1, 1]] = -0.9;
        d[[2, 2]] = 0.95; // the pair 0.95 ± 0.4i has modulus 1.0308
        d[[2, 3]] = -0.4;
        d[[3, 2]] = 0.4;
        d[[3, 3]] = 0.95;
        d[[4, 4]] = 1.02;
        d[[5, 5]] = 0.1;
        // S = I + small upper-triangular part: S⁻¹ by back substitution.
        let mut s = Array2::<f64>::eye(n);
        for i in 0..n {
            for j in (i + 1)..n {
                s[[i, j]] = ((i * 7 + j * 3) as f64 * 0.37).sin() * 0.5;
            }
        }
        let mut s_inv = Array2::<f64>::eye(n);
        for col in 0..n {
            for i in (0..n).rev() {
                let mut v = if i == col { 1.0 } else { 0.0 };
                for k in (i + 1)..n {
                    v -= s[[i, k]] * s_inv[[k, col]];
                }
                s_inv[[i, col]] = v;
            }
        }
        let a = s.dot(&d).dot(&s_inv);
        let radius = dense_spectral_radius(a.view()).unwrap();
        assert!((radius - 0.95f64.hypot(0.4)).abs() < 1e-12, "{radius}");
    }

    #[test]
    fn non_finite_or_non_square_input_gives_none() {
        assert!(dense_spectral_radius(array![[f64::NAN]].view()).is_none());
        assert!(eigenvalues(Array2::<f64>::zeros((2, 3)).view()).is_none());
        assert_eq!(
            dense_spectral_radius(Array2::<f64>::zeros((0, 0)).view()),
            Some(0.0)
        );
        assert_eq!(
            dense_spectral_radius(Array2::<f64>::zeros((4, 4)).view()),
            Some(0.0)
        );
    }
}
