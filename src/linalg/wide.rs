//! Elementwise loops run as wide as the CPU allows: one dispatch ([`wide_fn!`]) that
//! compiles a plain loop for AVX-512F and for AVX2 + FMA, chosen at run time, so that a
//! crate built for the x86-64 baseline (SSE2) still vectorises them 16 or 8 lanes wide.
//! The loop's operations and their order do not change with the width (Rust does not
//! contract into FMAs), so neither do its numbers.

use crate::float::Float;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, ArrayView2, ArrayViewMut2, Axis};

/// Declares `$vis fn $name<F: Float>(args) -> ret`, which runs `$body(args)` compiled
/// with AVX-512F, or with AVX2 and FMA, where the CPU has them (`RNNKIT_NO_AVX512` and
/// `RNNKIT_NO_AVX2` are honoured), else as compiled for the baseline. `$body` must be
/// `#[inline(always)]`, so that its loops are vectorised at the width chosen.
macro_rules! wide_fn {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $body:ident) => {
        $(#[$doc])*
        $vis fn $name<F: $crate::float::Float>($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn wide<F: $crate::float::Float>($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn narrow<F: $crate::float::Float>($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if $crate::linalg::avx512() {
                    // SAFETY: the CPU has AVX-512F (checked just above).
                    return unsafe { wide($($arg),*) };
                }
                if $crate::linalg::avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { narrow($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use wide_fn;

#[inline(always)]
fn add_rows<F: Float>(flat: &[F], out: &mut [F]) {
    for row in flat.chunks_exact(out.len()) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

wide_fn!(
    /// `out += ` every `out.len()`-long row of `flat`, in order (with `flat` as long as
    /// `out`, an elementwise `out += flat`: the time loop's per-row sums of the bias
    /// gradients).
    pub(crate) fn add_rows_wide(flat: &[F], out: &mut [F]) = add_rows
);

#[inline(always)]
fn finite<F: Float>(v: &[F]) -> bool {
    v.iter().fold(true, |ok, x| ok & x.is_finite())
}

wide_fn!(
    /// Whether every value is finite, on one thread.
    fn finite_wide(v: &[F]) -> bool = finite
);

/// Whether every value is finite (the trainer's check of every gradient and weight,
/// twice per step); long slices split over the threads.
pub(crate) fn all_finite<F: Float>(v: &[F]) -> bool {
    let ok = std::sync::atomic::AtomicBool::new(true);
    crate::parallel::over_pieces(
        v.len(),
        |size| v.chunks(size),
        |part| {
            if !finite_wide(part) {
                ok.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        },
    );
    ok.into_inner()
}

/// Every value of `dst` set to `v`, long slices split over the threads as
/// [`copy_flat`]'s (a gradient zeroed where its rows are computed and read next).
pub(crate) fn fill_flat<F: Float>(dst: &mut [F], v: F) {
    crate::parallel::over_pieces(dst.len(), |size| dst.chunks_mut(size), |d| d.fill(v));
}

/// `dst = src`, long slices split over the threads (each copying the part it will go on
/// to update, where the pieces match [`crate::parallel::flat_piece`]'s).
pub(crate) fn copy_flat<F: Float>(dst: &mut [F], src: &[F]) {
    crate::parallel::over_pieces(
        src.len(),
        |size| dst.chunks_mut(size).zip(src.chunks(size)),
        |(d, s)| d.copy_from_slice(s),
    );
}

/// The column sums of `a` (rows added in order, from zero: the same numbers as ndarray's
/// `sum_axis(Axis(0))`), as wide as the CPU allows: the bias gradients of the
/// whole-sequence weight products. (Split over the threads by columns they were measured
/// slower on W4 GRU training: four pairs in five.)
pub(crate) fn column_sums<F: Float>(a: &ArrayView2<'_, F>) -> Array1<F> {
    match a.as_slice() {
        Some(flat) if a.ncols() > 0 => {
            let mut out = vec![F::zero(); a.ncols()];
            add_rows_wide(flat, &mut out);
            out.into()
        }
        _ => a.sum_axis(Axis(0)),
    }
}

/// `c = a·b + beta·c` (`beta` 0 or 1), as a loop where the product is too thin for a
/// packed matrix multiply to pay (matrixmultiply packs all of `a` for it): one output
/// column (`Dense(1)`: a dot product per row, or one `axpy` per row of `b` when `a` is a
/// transposed view), or one inner index (an outer product). Anything else goes to
/// matrixmultiply.
pub(crate) fn thin_mm<F: Float>(
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    let ((m, k), n) = (a.dim(), b.ncols());
    let zero = beta == F::zero();
    if n == 1
        && k > 0
        && m > 0
        && let (Some(bc), Some(cc)) = (b.column(0).as_slice(), c.column_mut(0).into_slice())
    {
        if let Some(at) = a.t().as_slice() {
            // `a` transposed (column-major, `k` columns of `m`): c += Σ_r b[r]·a[:, r].
            if zero {
                cc.fill(F::zero());
            }
            for (col, &w) in at.chunks_exact(m).zip(bc) {
                axpy_wide(w, col, cc);
            }
            return;
        }
        if a.rows().into_iter().all(|r| r.as_slice().is_some()) {
            for (row, cv) in a.rows().into_iter().zip(cc.iter_mut()) {
                let d = super::dot(row.as_slice().expect("checked"), bc);
                *cv = if zero { d } else { *cv + d };
            }
            return;
        }
    }
    if k == 1 {
        for (i, mut row) in c.rows_mut().into_iter().enumerate() {
            let ai = a[[i, 0]];
            row.zip_mut_with(&b.row(0), |cv, &bv| {
                *cv = if zero { ai * bv } else { *cv + ai * bv };
            });
        }
        return;
    }
    general_mat_mul(F::one(), a, b, beta, c);
}

#[inline(always)]
fn axpy<F: Float>(w: F, x: &[F], y: &mut [F]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += w * x;
    }
}

wide_fn!(
    /// `y += w·x`.
    fn axpy_wide(w: F, x: &[F], y: &mut [F]) = axpy
);

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    /// The wide finiteness check finds a NaN or an infinity at any position.
    #[test]
    fn all_finite_finds_every_bad_value() {
        for len in [0, 1, 15, 16, 17, 100] {
            let v: Vec<f32> = (0..len).map(|i| i as f32 - 3.5).collect();
            assert!(all_finite(&v));
            for at in 0..len {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut w = v.clone();
                    w[at] = bad;
                    assert!(!all_finite(&w), "len {len} at {at}");
                    let w64: Vec<f64> = w.iter().map(|&x| x as f64).collect();
                    assert!(!all_finite(&w64));
                }
            }
        }
    }

    /// Long slices, checked and copied in pieces over the threads: a bad value in any
    /// piece is found, and the copy is whole.
    #[test]
    fn long_slices_split_over_threads() {
        crate::set_num_threads(2); // split even on a one-core machine
        let len = 70_001;
        let v: Vec<f32> = (0..len).map(|i| (i % 101) as f32 - 50.5).collect();
        assert!(crate::parallel::flat_piece(len) < len, "the slice is split");
        assert!(all_finite(&v));
        for at in [0, 17, len / 2 - 1, len / 2, len / 2 + 1, len - 1] {
            let mut w = v.clone();
            w[at] = f32::NAN;
            assert!(!all_finite(&w), "NaN at {at}");
        }
        let mut copy = vec![0.0; len];
        copy_flat(&mut copy, &v);
        assert_eq!(copy, v);
        fill_flat(&mut copy, 0.0);
        assert!(copy.iter().all(|&x| x == 0.0));
    }

    /// The thin products give matrixmultiply's numbers (to rounding: the order of the
    /// additions differs) for every layout they take and the ones they hand on.
    #[test]
    fn thin_products_match() {
        for &(m, k, n) in &[
            (32, 256, 1),
            (7, 5, 1),
            (1, 1, 1),
            (9, 1, 6),
            (3, 4, 2),
            (5, 0, 1),
            (0, 3, 1),
        ] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.3);
            let at = Array2::from_shape_fn((k, m), |(j, i)| a[[i, j]]);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.27);
            for beta in [0.0, 1.0] {
                for av in [a.view(), at.t()] {
                    let c0 = Array2::from_shape_fn((m, n), |(i, j)| (i + 2 * j) as f64);
                    let mut c = c0.clone();
                    thin_mm(&av, &b.view(), beta, &mut c.view_mut());
                    let want = a.dot(&b) + &c0 * beta;
                    for (x, y) in c.iter().zip(&want) {
                        assert!(
                            (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
                            "{m}x{k}x{n}: {x} {y}"
                        );
                    }
                }
            }
        }
    }

    /// The wide column sums give ndarray's numbers exactly (same order of additions),
    /// for contiguous and strided views, in both types.
    #[test]
    fn column_sums_equal_sum_axis() {
        for &(m, n) in &[(0, 3), (1, 1), (7, 5), (100, 384), (3200, 17)] {
            let a = Array2::from_shape_fn((m, n), |(i, j)| {
                ((i * 31 + j * 7) % 97) as f64 * 0.013 - 0.6 + 1e-9 * i as f64
            });
            assert_eq!(column_sums(&a.view()), a.sum_axis(Axis(0)));
            let a32 = a.mapv(|v| v as f32);
            assert_eq!(column_sums(&a32.view()), a32.sum_axis(Axis(0)));
            let strided = a.slice(s![.., ..;2]);
            assert_eq!(column_sums(&strided), strided.sum_axis(Axis(0)));
        }
    }
}
