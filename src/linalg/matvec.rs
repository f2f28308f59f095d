//! A fixed matrix multiplied by one vector at a time, thousands of times (`h·W`: a
//! reservoir's per-step product, an Arnoldi step), laid out for it once.
//!
//! A matrix-vector product is what a general matrix multiply (packing its operands on
//! every call) does badly. Both layouts here compute each output as one dot product over a
//! column of `W`:
//! - sparse reservoirs (the usual ones, density 0.1 or less) keep only the non-zeros of each
//!   column (compressed sparse columns) and gather the state entries they need: work and
//!   memory in proportion to the non-zeros. The gathered loads skip bounds checks (every
//!   row index is below `n`, checked when the layout is built) and, on AVX2 + FMA CPUs,
//!   multiply-add in one fused instruction, in f64 four entries to a register: a
//!   1,000-unit reservoir's 10,000 steps on one thread 0.57 → 0.45 s, 0.45 ns per
//!   non-zero (AVX2's vector gather was tried and measured slower);
//! - dense reservoirs keep `Wᵀ` row-major, so each column is contiguous, and the dot product
//!   runs in eight independent accumulators that the compiler turns into vector lanes.

use crate::float::Float;
use crate::linalg::dot;
#[cfg(test)]
use ndarray::Array2;
use ndarray::ArrayView2;

/// Above this density the dense layout is faster (the sparse one pays an index per entry).
const DENSE_ABOVE: f64 = 0.3;

/// Compressed sparse columns: column `j`'s non-zeros are `vals[ptr[j]..ptr[j+1]]` at rows
/// `rows[..]`. Built only by [`FixedMatrix::new`] (the fields are private to this module), so
/// every row index is below `n = ptr.len() − 1`: the product's unchecked gathers rely on it.
#[derive(Debug, Clone)]
pub(crate) struct Csc<F> {
    ptr: Vec<usize>,
    rows: Vec<u32>,
    vals: Vec<F>,
}

/// `W` laid out for `y = h·W`.
#[derive(Debug, Clone)]
pub(crate) enum FixedMatrix<F> {
    /// Compressed sparse columns.
    Sparse(Csc<F>),
    /// `Wᵀ` row-major `[n, n]`.
    Dense(Vec<F>),
}

impl<F: Float> FixedMatrix<F> {
    /// The layout for `w` `[n, n]` (n < 2^32, which the size cap guarantees).
    pub(crate) fn new(w: ArrayView2<'_, F>) -> Self {
        let n = w.nrows();
        let nnz = w.iter().filter(|v| **v != F::zero()).count();
        if n == 0 || nnz as f64 > DENSE_ABOVE * (n * n) as f64 {
            return FixedMatrix::Dense(w.t().iter().copied().collect());
        }
        let mut ptr = Vec::with_capacity(n + 1);
        let mut rows = Vec::with_capacity(nnz);
        let mut vals = Vec::with_capacity(nnz);
        ptr.push(0);
        for col in w.columns() {
            for (i, &v) in col.iter().enumerate() {
                if v != F::zero() {
                    rows.push(i as u32);
                    vals.push(v);
                }
            }
            ptr.push(rows.len());
        }
        FixedMatrix::Sparse(Csc { ptr, rows, vals })
    }

    /// Non-zero weights (every weight of a dense layout): the work of one product.
    pub(crate) fn work(&self) -> usize {
        match self {
            FixedMatrix::Sparse(c) => c.vals.len(),
            FixedMatrix::Dense(wt) => wt.len(),
        }
    }

    /// `y += h·W`.
    #[cfg(test)]
    pub(crate) fn add_product(&self, h: &[F], y: &mut [F]) {
        self.add_product_cols(h, 0, y);
    }

    /// `y += (h·W)[from..from + y.len()]`: the columns `from..` of the product, so threads
    /// can each compute their own columns.
    pub(crate) fn add_product_cols(&self, h: &[F], from: usize, y: &mut [F]) {
        match self {
            FixedMatrix::Sparse(Csc { ptr, rows, vals }) => {
                // The layout's invariant (every row index below `n`) makes the gathers from
                // `h` in bounds once `h` has `n` entries.
                assert!(
                    h.len() + 1 == ptr.len() && from + y.len() < ptr.len(),
                    "invariant: a state of {} units and columns {from}..{} of a {}-unit \
                     reservoir",
                    h.len(),
                    from + y.len(),
                    ptr.len() - 1
                );
                #[cfg(target_arch = "x86_64")]
                if crate::linalg::avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked just above).
                    return unsafe { sparse_cols_fma(h, ptr, rows, vals, from, y) };
                }
                sparse_cols::<F, false>(h, ptr, rows, vals, from, y);
            }
            FixedMatrix::Dense(wt) => {
                let n = h.len().max(1);
                for (yj, col) in y.iter_mut().zip(wt.chunks_exact(n).skip(from)) {
                    *yj += dot(h, col);
                }
            }
        }
    }
}

/// [`sparse_cols`] compiled for AVX2 + FMA, its multiply-adds fused.
///
/// # Safety
/// The CPU must support AVX2 and FMA; the arguments as [`sparse_cols`]'s.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sparse_cols_fma<F: Float>(
    h: &[F],
    ptr: &[usize],
    rows: &[u32],
    vals: &[F],
    from: usize,
    y: &mut [F],
) {
    if std::any::TypeId::of::<F>() == std::any::TypeId::of::<f64>() {
        // SAFETY: F is f64 (the casts are identity casts); the CPU has AVX2 and FMA (this
        // function's contract); the arguments as `sparse_cols` wants them.
        return unsafe {
            gathered_f64(
                &*(h as *const [F] as *const [f64]),
                ptr,
                rows,
                &*(vals as *const [F] as *const [f64]),
                from,
                &mut *(y as *mut [F] as *mut [f64]),
            )
        };
    }
    sparse_cols::<F, true>(h, ptr, rows, vals, from, y);
}

/// [`sparse_cols`] for f64 with its eight accumulators as two 4-lane registers, each
/// register's four entries loaded one by one (two indices per 64-bit load) and combined:
/// a third fewer loads than one multiply-add per entry, and the same sums in the same
/// order (so the same bits). AVX2's own gather instruction was measured slower on this
/// project's machine (0.61 s against 0.47 s for an ESN(1000) run); this is 10–12 % faster
/// than the scalar loop (one thread, 0.51 → 0.45 s; four registers instead of two: no
/// faster).
///
/// # Safety
/// The CPU must support AVX2 and FMA; the arguments as [`sparse_cols`]'s.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gathered_f64(
    h: &[f64],
    ptr: &[usize],
    rows: &[u32],
    vals: &[f64],
    from: usize,
    y: &mut [f64],
) {
    use std::arch::x86_64::*;
    let hp = h.as_ptr();
    for (j, yj) in (from..).zip(y.iter_mut()) {
        let (rows, vals) = (&rows[ptr[j]..ptr[j + 1]], &vals[ptr[j]..ptr[j + 1]]);
        // SAFETY (all loads below): every row index is below `h.len()` (the layout's
        // invariant); the chunks hold 8 indices and 8 values.
        // Two indices per 64-bit load (x86-64 is little-endian: the first is the low half).
        let four = |r: &[u32]| unsafe {
            let pair = |at: usize| {
                let v = (r.as_ptr().add(at) as *const u64).read_unaligned();
                (hp.add(v as u32 as usize), hp.add((v >> 32) as usize))
            };
            let ((a, b), (c, d)) = (pair(0), pair(2));
            let lo = _mm_loadh_pd(_mm_load_sd(a), b);
            let hi = _mm_loadh_pd(_mm_load_sd(c), d);
            _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(lo), hi)
        };
        let mut acc = [_mm256_setzero_pd(); 2];
        let (r8, v8) = (rows.chunks_exact(8), vals.chunks_exact(8));
        let (rr, rv) = (r8.remainder(), v8.remainder());
        for (r, v) in r8.zip(v8) {
            for q in 0..2 {
                // SAFETY: `v` holds 8 values, so 4·q + 4 ≤ 8; an unaligned load.
                let x = unsafe { _mm256_loadu_pd(v.as_ptr().add(4 * q)) };
                acc[q] = _mm256_fmadd_pd(four(&r[4 * q..]), x, acc[q]);
            }
        }
        let mut lanes = [0.0f64; 4];
        // SAFETY: `lanes` holds exactly 4 f64; an unaligned store.
        unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), _mm256_add_pd(acc[0], acc[1])) };
        let mut s = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]);
        for (&r, &v) in rr.iter().zip(rv) {
            // SAFETY: every row index is below `h.len()` (the layout's invariant).
            s = unsafe { *h.get_unchecked(r as usize) }.mul_add(v, s);
        }
        *yj += s;
    }
}

/// `y[i] += Σ_k h[rows[k]]·vals[k]` over column `from + i`'s non-zeros `ptr[j]..ptr[j+1]`,
/// in eight independent accumulators (one would wait for each multiply-add to finish before
/// the next: measured 1.8 ns per entry against 0.6 with four); `FUSED` rounds each
/// multiply-add once (only where the CPU has FMA: elsewhere `mul_add` is a library call).
///
/// The caller guarantees what [`FixedMatrix::new`] builds: `h.len() == ptr.len() − 1`, every
/// `rows[k] < h.len()`, `ptr` non-decreasing up to `rows.len() == vals.len()`, and
/// `from + y.len() < ptr.len()`.
#[inline(always)]
fn sparse_cols<F: Float, const FUSED: bool>(
    h: &[F],
    ptr: &[usize],
    rows: &[u32],
    vals: &[F],
    from: usize,
    y: &mut [F],
) {
    let madd = |x: F, v: F, acc: F| {
        if FUSED {
            x.mul_add(v, acc)
        } else {
            acc + x * v
        }
    };
    for (j, yj) in (from..).zip(y.iter_mut()) {
        let (rows, vals) = (&rows[ptr[j]..ptr[j + 1]], &vals[ptr[j]..ptr[j + 1]]);
        // SAFETY: every row index is below `h.len()` (the layout's invariant, above).
        let at = |r: u32| unsafe { *h.get_unchecked(r as usize) };
        let mut acc = [F::zero(); 8];
        let (r8, v8) = (rows.chunks_exact(8), vals.chunks_exact(8));
        let (rr, rv) = (r8.remainder(), v8.remainder());
        for (r, v) in r8.zip(v8) {
            for k in 0..8 {
                acc[k] = madd(at(r[k]), v[k], acc[k]);
            }
        }
        // Paired as two 4-lane registers would be (see `gathered_f64`).
        let mut s =
            ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        for (&r, &v) in rr.iter().zip(rv) {
            s = madd(at(r), v, s);
        }
        *yj += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_equal_a_plain_product() {
        // 37 units: columns of a few non-zeros (the tail loop); 401: dozens per column
        // (the eight-accumulator loop).
        for (n, density) in [(37, 0.05), (37, 0.2), (37, 0.9), (401, 0.1), (401, 0.25)] {
            let w = Array2::from_shape_fn((n, n), |(i, j)| {
                let u = ((i * 31 + j * 17) % 101) as f64 / 101.0;
                if u < density { (u * 13.0).sin() } else { 0.0 }
            });
            let h: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).cos()).collect();
            let mut y = vec![1.0; n];
            FixedMatrix::new(w.view()).add_product(&h, &mut y);
            for j in 0..n {
                let want = 1.0 + (0..n).map(|i| h[i] * w[[i, j]]).sum::<f64>();
                assert!(
                    (y[j] - want).abs() < 1e-13,
                    "{n} units, density {density}, column {j}: {} against {want}",
                    y[j]
                );
            }
        }
    }

    /// The four-lane f64 loop gives the scalar loop's bits (same sums, same order), on
    /// columns of every length around the 8-entry chunks.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_gathered_loop_equals_the_scalar_one() {
        if !crate::linalg::avx2_fma() {
            // Through the uncaptured stdout handle, so a normal `cargo test` shows it.
            use std::io::Write;
            let _ = writeln!(
                std::io::stdout().lock(),
                "the_gathered_loop_equals_the_scalar_one: skipped, this CPU has no AVX2 + FMA"
            );
            return;
        }
        let n = 300;
        let mut ptr = vec![0];
        let mut rows = Vec::new();
        for j in 0..n {
            let len = (j * 7) % 41; // 0..40 non-zeros: empty, tails only, chunks + tails
            rows.extend((0..len).map(|k| ((j * 31 + k * 97) % n) as u32));
            ptr.push(rows.len());
        }
        let vals: Vec<f64> = (0..rows.len()).map(|k| (k as f64 * 0.37).sin()).collect();
        let h: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut fast = vec![0.5; n - 3];
        // SAFETY: AVX2 and FMA checked above; every index below n; columns 3..n exist.
        unsafe { gathered_f64(&h, &ptr, &rows, &vals, 3, &mut fast) };
        let mut scalar = vec![0.5; n - 3];
        // The generic loop compiled for FMA, without the f64 dispatch.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn generic(h: &[f64], p: &[usize], r: &[u32], v: &[f64], y: &mut [f64]) {
            sparse_cols::<f64, true>(h, p, r, v, 3, y);
        }
        // SAFETY: AVX2 and FMA checked above.
        unsafe { generic(&h, &ptr, &rows, &vals, &mut scalar) };
        assert_eq!(fast, scalar);
        assert!(fast.iter().filter(|&&v| v != 0.5).count() > n / 2);
    }
}
