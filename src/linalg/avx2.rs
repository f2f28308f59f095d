//! The AVX2 + FMA micro-kernels of the packed per-step product (every x86-64 CPU with
//! AVX2 and FMA; the AVX-512 ones in `avx512` replace them where AVX-512F runs): a 6×16 f32
//! tile (4×16 for short row tails), a 3×16 f64 tile, and the one-row kernels (streaming,
//! batch 1) both paths share.

use super::{Addend, Lda, NR};

/// Rows per f32 micro-kernel call.
const MR: usize = 6;

packed_driver!(
    /// `C (+)= A·B` in f32 from the packed panels of `B`, 6 or 4 rows at a time.
    pub(super) packed_f32, f32, f32_rows, 1, "avx2,fma", kernel_f32, row_f32
);

/// Rows of the next f32 block: [`MR`]-row tiles, and 4-row ones where those waste less. A
/// half batch of 32 rows is then 4×6 + 2×4 rows, where 6-row tiles alone would compute 36
/// (a 4-row tile costs two thirds of a 6-row one).
#[cfg(target_arch = "x86_64")]
fn f32_rows(left: usize) -> usize {
    if left >= 10 || matches!(left, 5 | 6 | 9) {
        left.min(MR)
    } else {
        left.min(4)
    }
}

/// [`kernel_tile`] with the 6-row tile for more than 4 rows, else the 4-row one.
///
/// # Safety
/// As [`kernel_tile`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_f32(
    k: usize,
    a: *const f32,
    lda: Lda,
    panel: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    add: Addend<f32>,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        if rows > 4 {
            kernel_tile::<MR>(k, a, lda, panel, c, ldc, rows, cols, add)
        } else {
            kernel_tile::<4>(k, a, lda, panel, c, ldc, rows, cols, add)
        }
    }
}

/// Writes the first `cols` values of `v` to `c`, each plus the addend's value when there
/// is one.
///
/// # Safety
/// `c` (and `add`, unless null) valid for `cols ≤ v.len()` values.
#[inline(always)]
unsafe fn put<T: Copy + std::ops::Add<Output = T>>(
    c: *mut T,
    v: &[T],
    cols: usize,
    add: Addend<T>,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        match add.row(0) {
            Some(d) => {
                for (q, &x) in v.iter().enumerate().take(cols) {
                    *c.add(q) = x + *d.add(q);
                }
            }
            None => {
                for (q, &x) in v.iter().enumerate().take(cols) {
                    *c.add(q) = x;
                }
            }
        }
    }
}

/// `c[..n] (+)= a[..k]·B` for a single row (streaming, batch 1): four panels (64 columns)
/// at a time in eight independent accumulators. The 6-row kernel on one row would do six
/// times the multiply-adds, each waiting on the last.
///
/// # Safety
/// As [`packed_f32`] with `m = 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn row_f32(
    k: usize,
    a: *const f32,
    ska: usize,
    b: *const f32,
    n: usize,
    c: *mut f32,
    add: Addend<f32>,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        use std::arch::x86_64::*;
        const G: usize = 4;
        let panels = n.div_ceil(NR);
        let mut tmp = [0f32; NR];
        let mut flush = |p: usize, acc: &[__m256; 2]| {
            _mm256_storeu_ps(tmp.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(tmp.as_mut_ptr().add(8), acc[1]);
            put(c.add(p * NR), &tmp, (n - p * NR).min(NR), add.at(0, p * NR));
        };
        let mut p = 0;
        while p + G <= panels {
            let mut acc = [[_mm256_setzero_ps(); 2]; G];
            let base = b.add(p * k * NR);
            for kk in 0..k {
                let x = _mm256_broadcast_ss(&*a.add(kk * ska));
                for (j, acc) in acc.iter_mut().enumerate() {
                    let pk = base.add(j * k * NR + kk * NR);
                    acc[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(pk), acc[0]);
                    acc[1] = _mm256_fmadd_ps(x, _mm256_loadu_ps(pk.add(8)), acc[1]);
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                flush(p + j, acc);
            }
            p += G;
        }
        for p in p..panels {
            let mut acc = [_mm256_setzero_ps(); 2];
            let base = b.add(p * k * NR);
            for kk in 0..k {
                let x = _mm256_broadcast_ss(&*a.add(kk * ska));
                acc[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(base.add(kk * NR)), acc[0]);
                acc[1] = _mm256_fmadd_ps(x, _mm256_loadu_ps(base.add(kk * NR + 8)), acc[1]);
            }
            flush(p, &acc);
        }
    }
}

/// [`row_f32`] in f64: two panels (32 columns) at a time in eight accumulators.
///
/// # Safety
/// As [`packed_f64`] with `m = 1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn row_f64(
    k: usize,
    a: *const f64,
    ska: usize,
    b: *const f64,
    n: usize,
    c: *mut f64,
    add: Addend<f64>,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        use std::arch::x86_64::*;
        const G: usize = 2;
        let panels = n.div_ceil(NR);
        let mut tmp = [0f64; NR];
        let mut flush = |p: usize, acc: &[__m256d; 4]| {
            for (q, &v) in acc.iter().enumerate() {
                _mm256_storeu_pd(tmp.as_mut_ptr().add(4 * q), v);
            }
            put(c.add(p * NR), &tmp, (n - p * NR).min(NR), add.at(0, p * NR));
        };
        let mut p = 0;
        while p + G <= panels {
            let mut acc = [[_mm256_setzero_pd(); 4]; G];
            let base = b.add(p * k * NR);
            for kk in 0..k {
                let x = _mm256_broadcast_sd(&*a.add(kk * ska));
                for (j, acc) in acc.iter_mut().enumerate() {
                    let pk = base.add(j * k * NR + kk * NR);
                    for (q, v) in acc.iter_mut().enumerate() {
                        *v = _mm256_fmadd_pd(x, _mm256_loadu_pd(pk.add(4 * q)), *v);
                    }
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                flush(p + j, acc);
            }
            p += G;
        }
        for p in p..panels {
            let mut acc = [_mm256_setzero_pd(); 4];
            let base = b.add(p * k * NR);
            for kk in 0..k {
                let x = _mm256_broadcast_sd(&*a.add(kk * ska));
                for (q, v) in acc.iter_mut().enumerate() {
                    *v = _mm256_fmadd_pd(x, _mm256_loadu_pd(base.add(kk * NR + 4 * q)), *v);
                }
            }
            flush(p, &acc);
        }
    }
}

/// `C[rows, cols] (+)= A[rows, k]·P[k, 16]` for one panel and `R` rows (6: 12
/// accumulators, two panel loads and six broadcasts per `k`; 4: 8 accumulators).
///
/// # Safety
/// As [`packed_f32`], for `rows ≤ R` rows and `cols ≤ 16` columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn kernel_tile<const R: usize>(
    k: usize,
    a: *const f32,
    lda: Lda,
    panel: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    add: Addend<f32>,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        use std::arch::x86_64::*;
        // Rows past `rows` re-read the last real row; their results are discarded.
        let ar: [*const f32; R] = std::array::from_fn(|r| a.add(r.min(rows - 1) * lda.row));
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for kk in 0..k {
            let b0 = _mm256_loadu_ps(panel.add(kk * NR));
            let b1 = _mm256_loadu_ps(panel.add(kk * NR + 8));
            for r in 0..R {
                let x = _mm256_broadcast_ss(&*ar[r].add(kk * lda.k));
                acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            }
        }
        if cols == NR {
            for (r, acc) in acc.iter().enumerate().take(rows) {
                let cr = c.add(r * ldc);
                let (mut v0, mut v1) = (acc[0], acc[1]);
                if let Some(d) = add.row(r) {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(d));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(d.add(8)));
                }
                _mm256_storeu_ps(cr, v0);
                _mm256_storeu_ps(cr.add(8), v1);
            }
        } else {
            let mut tmp = [0f32; NR];
            for (r, acc) in acc.iter().enumerate().take(rows) {
                _mm256_storeu_ps(tmp.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), acc[1]);
                put(c.add(r * ldc), &tmp, cols, add.at(r, 0));
            }
        }
    }
}

/// Rows per f64 micro-kernel call: 3 rows × 16 columns is 12 accumulators of 4 lanes,
/// with the 4 panel registers the 16 AVX2 registers.
const MR64: usize = 3;

packed_driver!(
    /// `C (+)= A·B` in f64 from the packed panels of `B`, [`MR64`] rows at a time.
    pub(super) packed_f64, f64, |left: usize| left.min(MR64), 1, "avx2,fma", kernel_3x16_f64, row_f64
);

/// `C[rows, cols] (+)= A[rows, k]·P[k, 16]` in f64: 12 accumulators, four panel loads and
/// three broadcasts per `k`.
///
/// # Safety
/// As [`packed_f64`], for `rows ≤ 3` rows and `cols ≤ 16` columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_3x16_f64(
    k: usize,
    a: *const f64,
    lda: Lda,
    panel: *const f64,
    c: *mut f64,
    ldc: usize,
    rows: usize,
    cols: usize,
    add: Addend<f64>,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        use std::arch::x86_64::*;
        // Rows past `rows` re-read the last real row; their results are discarded.
        let ar: [*const f64; MR64] = std::array::from_fn(|r| a.add(r.min(rows - 1) * lda.row));
        let mut acc = [[_mm256_setzero_pd(); 4]; MR64];
        for kk in 0..k {
            let pk = panel.add(kk * NR);
            let bv = [
                _mm256_loadu_pd(pk),
                _mm256_loadu_pd(pk.add(4)),
                _mm256_loadu_pd(pk.add(8)),
                _mm256_loadu_pd(pk.add(12)),
            ];
            for r in 0..MR64 {
                let x = _mm256_broadcast_sd(&*ar[r].add(kk * lda.k));
                for q in 0..4 {
                    acc[r][q] = _mm256_fmadd_pd(x, bv[q], acc[r][q]);
                }
            }
        }
        let mut tmp = [0f64; NR];
        for (r, acc) in acc.iter().enumerate().take(rows) {
            let cr = c.add(r * ldc);
            if cols == NR {
                for (q, &v) in acc.iter().enumerate() {
                    let v = match add.row(r) {
                        Some(d) => _mm256_add_pd(v, _mm256_loadu_pd(d.add(4 * q))),
                        None => v,
                    };
                    _mm256_storeu_pd(cr.add(4 * q), v);
                }
            } else {
                for (q, &v) in acc.iter().enumerate() {
                    _mm256_storeu_pd(tmp.as_mut_ptr().add(4 * q), v);
                }
                put(cr, &tmp, cols, add.at(r, 0));
            }
        }
    }
}

/// Packs `Rᵀ` from `R` row-major (`bt`: `n` rows of `k`) into the panels of
/// [`PackedB`](super::PackedB): panel `p` holds rows `16p..16p + 16` of `R` as `k` rows of
/// 16. Each 8×8 block is transposed in registers (eight loads, 24 shuffles, eight stores
/// for 64 values, where the scalar scatter stores one value at a time); the blocks past
/// the last multiple of 8 rows or columns go one value at a time. Padding columns of the
/// last panel are not written (the caller zeroes them).
///
/// # Safety
/// AVX2; `bt` valid for `n·k` values, `data` for `ceil(n/16)·k·16`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn pack_transposed_f32(bt: *const f32, k: usize, n: usize, data: *mut f32) {
    // SAFETY: the caller upholds this function's `# Safety` contract; every index below
    // is a row below `n` and a column below `k` of `bt`, or a place in panel `j / NR`.
    unsafe {
        use std::arch::x86_64::*;
        let at = |kk: usize, j: usize| data.add(((j / NR) * k + kk) * NR + j % NR);
        let (k8, n8) = (k / 8 * 8, n / 8 * 8);
        for j0 in (0..n8).step_by(8) {
            for kk0 in (0..k8).step_by(8) {
                let r: [__m256; 8] =
                    std::array::from_fn(|i| _mm256_loadu_ps(bt.add((j0 + i) * k + kk0)));
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                let t4 = _mm256_unpacklo_ps(r[4], r[5]);
                let t5 = _mm256_unpackhi_ps(r[4], r[5]);
                let t6 = _mm256_unpacklo_ps(r[6], r[7]);
                let t7 = _mm256_unpackhi_ps(r[6], r[7]);
                let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                // Column i of the block: (r₀[i], …, r₇[i]), row kk0 + i of the panel.
                let cols = [
                    _mm256_permute2f128_ps::<0x20>(s0, s4),
                    _mm256_permute2f128_ps::<0x20>(s1, s5),
                    _mm256_permute2f128_ps::<0x20>(s2, s6),
                    _mm256_permute2f128_ps::<0x20>(s3, s7),
                    _mm256_permute2f128_ps::<0x31>(s0, s4),
                    _mm256_permute2f128_ps::<0x31>(s1, s5),
                    _mm256_permute2f128_ps::<0x31>(s2, s6),
                    _mm256_permute2f128_ps::<0x31>(s3, s7),
                ];
                for (i, &c) in cols.iter().enumerate() {
                    _mm256_storeu_ps(at(kk0 + i, j0), c);
                }
            }
            for i in 0..8 {
                for kk in k8..k {
                    *at(kk, j0 + i) = *bt.add((j0 + i) * k + kk);
                }
            }
        }
        for j in n8..n {
            for kk in 0..k {
                *at(kk, j) = *bt.add(j * k + kk);
            }
        }
    }
}
