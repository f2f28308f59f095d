//! Elementwise loops run as wide as the CPU allows: one dispatch ([`wide_fn!`]) that
//! compiles a plain loop for AVX-512F and for AVX2 + FMA, chosen at run time, so that a
//! crate built for the x86-64 baseline (SSE2) still vectorises them 16 or 8 lanes wide.
//! The loop's operations and their order do not change with the width (Rust does not
//! contract into FMAs), so neither do its numbers.

use crate::float::Float;
use ndarray::{Array1, ArrayView2, Axis};

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
    /// `out += ` every `out.len()`-long row of `flat`, in order.
    fn add_rows_wide(flat: &[F], out: &mut [F]) = add_rows
);

/// The column sums of `a` (rows added in order, from zero: the same numbers as ndarray's
/// `sum_axis(Axis(0))`), as wide as the CPU allows: the bias gradients of the
/// whole-sequence weight products.
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

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
