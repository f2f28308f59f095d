//! The per-step matrix products of the time loop.
//!
//! On an AVX2 + FMA CPU the recurrent kernel is packed once per weight update ([`PackedB`])
//! and every step multiplies against it with a 6×16 (f32) or 3×16 (f64) micro-kernel
//! ([`packed_mm`]); otherwise ([`step_mm`]) products go to ndarray's matrixmultiply, which repacks its
//! operands on every call. Either way a product whose left operand is all zeros (the first
//! step's zero initial state) is skipped: for the lecture's three-step sequences that is a
//! third of the recurrent products. (Plain loops for the tiny products were tried and
//! measured slower: without register blocking every multiply-add reloads and stores its
//! output row.)

use crate::float::Float;
#[cfg(target_arch = "x86_64")]
pub(crate) use fast32::avx2_fma;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2};

/// `c = a·b + beta·c`, with `beta` 0 or 1.
///
/// When `a` is all zeros the result is `beta·c` without a product (exact for finite `b`;
/// weights are finite: the loader and the trainer's NaN guard see to that).
pub(crate) fn step_mm<F: Float>(
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    if !zero_lhs(a, beta, c) {
        general_mat_mul(F::one(), a, b, beta, c);
    }
}

/// When `a` is all zeros, sets `c = beta·c` (`beta` 0 or 1) and returns true.
fn zero_lhs<F: Float>(a: &ArrayView2<'_, F>, beta: F, c: &mut ArrayViewMut2<'_, F>) -> bool {
    debug_assert!(beta == F::zero() || beta == F::one());
    if !a.iter().all(|&v| v == F::zero()) {
        return false;
    }
    if beta == F::zero() {
        c.fill(F::zero());
    }
    true
}

/// Columns per packed panel: two 8-lane AVX registers of f32.
const NR: usize = 16;
/// Rows per micro-kernel call.
const MR: usize = 6;

/// A right-hand matrix packed once for the many per-step products of a pass: column panels
/// of [`NR`], each `k` rows of `NR` contiguous values (zero-padded). The recurrent kernel is
/// packed at the start of every forward (and, transposed, every backward) pass, so the
/// product of each time step reads it without repacking it as matrixmultiply would.
/// Measured against matrixmultiply on this project's machine it wins from one row on
/// (batch-1 LSTM inference 3.5× faster, 16-row halves of W4-sized products 2× faster).
#[derive(Clone, Default)]
pub(crate) struct PackedB<F> {
    data: Vec<F>,
    /// `(k, n, transposed)` of what is packed; `None` when nothing valid is.
    what: Option<(usize, usize, bool)>,
}

/// Only what is packed: the values are a copy of weights printed elsewhere.
impl<F> std::fmt::Debug for PackedB<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB").field("what", &self.what).finish()
    }
}

impl<F> PackedB<F> {
    /// The length of the packing of a `[k, n]` matrix.
    pub(crate) fn len_for(k: usize, n: usize) -> usize {
        n.div_ceil(NR) * k * NR
    }

    /// The buffer, for a later packing to reuse.
    pub(crate) fn into_buffer(self) -> Vec<F> {
        self.data
    }
}

impl<F: Float> PackedB<F> {
    /// Whether packed products run on this machine for this float type (f32 or f64, with
    /// AVX2 and FMA); otherwise products go to matrixmultiply and nothing is packed.
    pub(crate) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let ty = std::any::TypeId::of::<F>();
            (ty == std::any::TypeId::of::<f32>() || ty == std::any::TypeId::of::<f64>())
                && crate::linalg::avx2_fma()
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Packs `b` (`transposed` records which view of the weights it is) into `buf`, a
    /// buffer of an earlier packing to reuse (empty for a new one): every value is
    /// written, so nothing is zero-filled first.
    pub(crate) fn packed(b: &ArrayView2<'_, F>, transposed: bool, buf: Vec<F>) -> Self {
        let mut p = PackedB {
            data: buf,
            what: None,
        };
        p.pack(b, transposed);
        p
    }

    /// Packs `b` (`transposed` records which view of the weights it is), reusing the buffer.
    pub(crate) fn pack(&mut self, b: &ArrayView2<'_, F>, transposed: bool) {
        if !Self::available() {
            self.what = None;
            return;
        }
        let (k, n) = b.dim();
        let panels = n.div_ceil(NR);
        // Every full panel's value is written below; only the last panel's padding
        // columns need zeros.
        self.data.resize(panels * k * NR, F::zero());
        let at = |p: usize, kk: usize| (p * k + kk) * NR;
        if n % NR != 0 {
            let p = panels - 1;
            for kk in 0..k {
                self.data[at(p, kk) + n % NR..at(p, kk) + NR].fill(F::zero());
            }
        }
        if b.rows().into_iter().all(|r| r.as_slice().is_some()) {
            // Rows contiguous (R in a forward pass): copy 16-wide pieces of each row (as
            // fixed-size copies, inlined, not one `memcpy` call per 64 bytes).
            for (kk, row) in b.rows().into_iter().enumerate() {
                let row = row.to_slice().expect("checked contiguous");
                let mut pieces = row.chunks_exact(NR);
                for (p, piece) in pieces.by_ref().enumerate() {
                    let piece: &[F; NR] = piece.try_into().expect("NR long");
                    let dst: &mut [F; NR] = (&mut self.data[at(p, kk)..at(p, kk) + NR])
                        .try_into()
                        .expect("NR long");
                    *dst = *piece;
                }
                let rest = pieces.remainder();
                if !rest.is_empty() {
                    let p = n / NR;
                    self.data[at(p, kk)..at(p, kk) + rest.len()].copy_from_slice(rest);
                }
            }
        } else if let Some(bt) = b.t().to_slice() {
            // Columns contiguous (Rᵀ in a backward pass, `bt` = R row-major): each panel
            // is 16 rows of R scattered into a `k × 16` block small enough to stay in L1.
            for p in 0..panels {
                let panel = &mut self.data[at(p, 0)..at(p, 0) + k * NR];
                for (jj, j) in (p * NR..((p + 1) * NR).min(n)).enumerate() {
                    let col = &bt[j * k..(j + 1) * k];
                    for (kk, &v) in col.iter().enumerate() {
                        panel[kk * NR + jj] = v;
                    }
                }
            }
        } else {
            // Any other layout, element by element.
            for ((kk, j), &v) in b.indexed_iter() {
                self.data[at(j / NR, kk) + j % NR] = v;
            }
        }
        self.what = Some((k, n, transposed));
    }
}

/// `c = a·b + beta·c` (`beta` 0 or 1) using `packed` when it holds `b` (in the orientation
/// `transposed`), else [`step_mm`].
pub(crate) fn packed_mm<F: Float>(
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    packed: &PackedB<F>,
    transposed: bool,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let usable = packed.what == Some((k, n, transposed))
        && m > 0
        && k > 0
        && (m == 1 || a.strides()[0] > 0)
        && (k == 1 || a.strides()[1] == 1)
        && (n == 1 || c.strides()[1] == 1)
        && (m == 1 || c.strides()[0] > 0);
    if !usable {
        return step_mm(a, b, beta, c);
    }
    if zero_lhs(a, beta, c) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        debug_assert!(PackedB::<F>::available());
        let (lda, ldc) = (a.strides()[0] as usize, c.strides()[0] as usize);
        // SAFETY: `packed` exists only where `available()` held, i.e. F is f32 or f64 (the
        // pointer casts are identity casts for the type checked) and the CPU has AVX2 and
        // FMA (and AVX-512F where `avx512::available()` chose those kernels). Every row index
        // passed is below `m`, every column below `n`, with the strides of these views.
        unsafe {
            let wide = avx512::available();
            if std::mem::size_of::<F>() == 4 {
                let driver = if wide { avx512::packed_f32 } else { packed_f32 };
                driver(
                    m,
                    k,
                    n,
                    a.as_ptr() as *const f32,
                    lda,
                    packed.data.as_ptr() as *const f32,
                    c.as_mut_ptr() as *mut f32,
                    ldc,
                    beta == F::one(),
                );
            } else {
                let driver = if wide { avx512::packed_f64 } else { packed_f64 };
                driver(
                    m,
                    k,
                    n,
                    a.as_ptr() as *const f64,
                    lda,
                    packed.data.as_ptr() as *const f64,
                    c.as_mut_ptr() as *mut f64,
                    ldc,
                    beta == F::one(),
                );
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    step_mm(a, b, beta, c);
}

/// The panels × row-blocks driver of one micro-kernel, written once for each float type.
/// The kernel gets `panels` adjacent panels (the next one `k·NR` further) and the number
/// of valid columns among them, at most `panels·NR`; `block(rows_left)` says how many rows
/// the next call takes.
macro_rules! packed_driver {
    (
        $(#[$doc:meta])* $vis:vis $name:ident, $t:ty, $block:expr, $panels:expr, $features:literal,
        $kernel:ident, $row:ident
    ) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU features named in its `target_feature`; `a` valid for `m` rows of stride
        /// `lda` and `k` contiguous values; `b` holds `ceil(n/NR)` panels of `k·NR`; `c`
        /// valid for `m` rows of stride `ldc` and `n` contiguous values.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name(
            m: usize,
            k: usize,
            n: usize,
            a: *const $t,
            lda: usize,
            b: *const $t,
            c: *mut $t,
            ldc: usize,
            accumulate: bool,
        ) {
            // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
            // features it is compiled for, and the slice lengths and pointers it names).
            unsafe {
            if m == 1 {
                return $row(k, a, b, n, c, accumulate);
            }
            for p in (0..n.div_ceil(NR)).step_by($panels) {
                let cols = (n - p * NR).min($panels * NR);
                let panel = b.add(p * k * NR);
                let mut i = 0;
                while i < m {
                    let rows = ($block)(m - i);
                    $kernel(
                        k,
                        a.add(i * lda),
                        lda,
                        panel,
                        c.add(i * ldc + p * NR),
                        ldc,
                        rows,
                        cols,
                        accumulate,
                    );
                    i += rows;
                }
            }
            }
        }
    };
}

packed_driver!(
    /// `C (+)= A·B` in f32 from the packed panels of `B`, 6 or 4 rows at a time.
    packed_f32, f32, f32_rows, 1, "avx2,fma", kernel_f32, row_f32
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
    lda: usize,
    panel: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        if rows > 4 {
            kernel_tile::<MR>(k, a, lda, panel, c, ldc, rows, cols, accumulate)
        } else {
            kernel_tile::<4>(k, a, lda, panel, c, ldc, rows, cols, accumulate)
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod eigen;

/// Whether this machine runs rnnkit's AVX-512 code (see `RNNKIT_NO_AVX512`).
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512() -> bool {
    avx512::available()
}
pub(crate) mod fast32;
pub(crate) mod fast64;
pub(crate) mod krylov;
pub(crate) mod matvec;
pub(crate) mod solve;
pub(crate) mod wide;
pub(crate) use wide::column_sums;

/// Writes (or adds) the first `cols` values of `v` to `c`.
///
/// # Safety
/// `c` valid for `cols ≤ v.len()` values.
#[inline(always)]
unsafe fn put<T: Copy + std::ops::Add<Output = T>>(c: *mut T, v: &[T], cols: usize, add: bool) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        for (q, &x) in v.iter().enumerate().take(cols) {
            *c.add(q) = if add { *c.add(q) + x } else { x };
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
unsafe fn row_f32(k: usize, a: *const f32, b: *const f32, n: usize, c: *mut f32, accumulate: bool) {
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
            put(c.add(p * NR), &tmp, (n - p * NR).min(NR), accumulate);
        };
        let mut p = 0;
        while p + G <= panels {
            let mut acc = [[_mm256_setzero_ps(); 2]; G];
            let base = b.add(p * k * NR);
            for kk in 0..k {
                let x = _mm256_broadcast_ss(&*a.add(kk));
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
                let x = _mm256_broadcast_ss(&*a.add(kk));
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
unsafe fn row_f64(k: usize, a: *const f64, b: *const f64, n: usize, c: *mut f64, accumulate: bool) {
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
            put(c.add(p * NR), &tmp, (n - p * NR).min(NR), accumulate);
        };
        let mut p = 0;
        while p + G <= panels {
            let mut acc = [[_mm256_setzero_pd(); 4]; G];
            let base = b.add(p * k * NR);
            for kk in 0..k {
                let x = _mm256_broadcast_sd(&*a.add(kk));
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
                let x = _mm256_broadcast_sd(&*a.add(kk));
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
    lda: usize,
    panel: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        use std::arch::x86_64::*;
        // Rows past `rows` re-read the last real row; their results are discarded.
        let ar: [*const f32; R] = std::array::from_fn(|r| a.add(r.min(rows - 1) * lda));
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for kk in 0..k {
            let b0 = _mm256_loadu_ps(panel.add(kk * NR));
            let b1 = _mm256_loadu_ps(panel.add(kk * NR + 8));
            for r in 0..R {
                let x = _mm256_broadcast_ss(&*ar[r].add(kk));
                acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
            }
        }
        if cols == NR {
            for (r, acc) in acc.iter().enumerate().take(rows) {
                let cr = c.add(r * ldc);
                let (mut v0, mut v1) = (acc[0], acc[1]);
                if accumulate {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr.add(8)));
                }
                _mm256_storeu_ps(cr, v0);
                _mm256_storeu_ps(cr.add(8), v1);
            }
        } else {
            let mut tmp = [0f32; NR];
            for (r, acc) in acc.iter().enumerate().take(rows) {
                _mm256_storeu_ps(tmp.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), acc[1]);
                let cr = c.add(r * ldc);
                for (j, &v) in tmp.iter().enumerate().take(cols) {
                    *cr.add(j) = if accumulate { *cr.add(j) + v } else { v };
                }
            }
        }
    }
}

/// Rows per f64 micro-kernel call: 3 rows × 16 columns is 12 accumulators of 4 lanes,
/// with the 4 panel registers the 16 AVX2 registers.
const MR64: usize = 3;

packed_driver!(
    /// `C (+)= A·B` in f64 from the packed panels of `B`, [`MR64`] rows at a time.
    packed_f64, f64, |left: usize| left.min(MR64), 1, "avx2,fma", kernel_3x16_f64, row_f64
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
    lda: usize,
    panel: *const f64,
    c: *mut f64,
    ldc: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
    // features it is compiled for, and the slice lengths and pointers it names).
    unsafe {
        use std::arch::x86_64::*;
        // Rows past `rows` re-read the last real row; their results are discarded.
        let ar: [*const f64; MR64] = std::array::from_fn(|r| a.add(r.min(rows - 1) * lda));
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
                let x = _mm256_broadcast_sd(&*ar[r].add(kk));
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
                    let v = if accumulate {
                        _mm256_add_pd(v, _mm256_loadu_pd(cr.add(4 * q)))
                    } else {
                        v
                    };
                    _mm256_storeu_pd(cr.add(4 * q), v);
                }
            } else {
                for (q, &v) in acc.iter().enumerate() {
                    _mm256_storeu_pd(tmp.as_mut_ptr().add(4 * q), v);
                }
                for (j, &v) in tmp.iter().enumerate().take(cols) {
                    *cr.add(j) = if accumulate { *cr.add(j) + v } else { v };
                }
            }
        }
    }
}

/// A dot product in eight independent accumulators (vector lanes), then the tail.
pub(crate) fn dot<F: Float>(a: &[F], b: &[F]) -> F {
    let mut acc = [F::zero(); 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (a8.remainder(), b8.remainder());
    for (x, y) in a8.zip(b8) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += *x * *y;
    }
    s
}

/// `c = a·b + bias` (each row of `c`) for a few rows of `a` without allocating: each row of
/// `b`, read once, is added to every output row scaled by that row's entry of `a`
/// (contiguous and vectorised; zero entries skipped). For one-step streaming products,
/// where `a` has a row or a few (a general multiply would pack its operands, allocating,
/// for a product this small), and for a few columns against a long matrix (`nᵀ·w` with
/// `a = nᵀ`: one pass over `w`, where a general multiply would copy it into packed panels).
pub(crate) fn few_rows_mm<F: Float>(
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    bias: Option<ndarray::ArrayView1<'_, F>>,
    mut c: ArrayViewMut2<'_, F>,
) {
    let m = a.nrows().min(c.nrows());
    for mut cr in c.rows_mut().into_iter().take(m) {
        match bias {
            Some(bv) => cr.assign(&bv),
            None => cr.fill(F::zero()),
        }
    }
    for (k, br) in b.rows().into_iter().enumerate().take(a.ncols()) {
        for (q, mut cr) in c.rows_mut().into_iter().enumerate().take(m) {
            let av = a[[q, k]];
            if av == F::zero() {
                continue;
            }
            match (cr.as_slice_mut(), br.as_slice()) {
                (Some(cs), Some(bs)) => {
                    for (cv, &bv) in cs.iter_mut().zip(bs) {
                        *cv += av * bv;
                    }
                }
                _ => cr.scaled_add(av, &br),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    /// Both paths on odd sizes, a strided left operand, a transposed right one, both betas.
    #[test]
    fn matches_a_plain_product() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (32, 10, 40), (7, 17, 33)] {
            let wide =
                Array2::from_shape_fn((m, 2 * k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let a = wide.slice(s![.., ..k]);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.25 - 1.0);
            let bt = Array2::from_shape_fn((n, k), |(j, i)| b[[i, j]]);
            let c0 = Array2::from_shape_fn((m, n), |(i, j)| (i + j) as f64);
            for beta in [0.0, 1.0] {
                for bv in [b.view(), bt.t()] {
                    let mut c = c0.clone();
                    step_mm(&a, &bv, beta, &mut c.view_mut());
                    assert_eq!(c, a.dot(&bv) + &c0 * beta);
                }
                let zeros = Array2::<f64>::zeros((m, k));
                let mut c = c0.clone();
                step_mm(&zeros.view(), &b.view(), beta, &mut c.view_mut());
                assert_eq!(c, &c0 * beta);
            }
        }
    }

    /// The packed kernels (6×16 f32, 3×16 f64) against a plain product: odd sizes (row and
    /// column tails), strided left operands, transposed weights, both betas.
    macro_rules! packed_products_match {
        ($name:ident, $t:ty) => {
            #[test]
            fn $name() {
                for &(m, k, n) in &[
                    (1, 1, 1),
                    (1, 7, 80),
                    (1, 33, 50),
                    (1, 128, 512),
                    (6, 16, 16),
                    (7, 5, 17),
                    (32, 10, 40),
                    (13, 33, 50),
                    (64, 128, 512),
                    (2, 3, 20),
                    (3, 4, 33),
                    (4, 7, 31),
                    (5, 5, 5),
                    (8, 9, 20),
                    (9, 3, 33),
                    (10, 4, 16),
                    (11, 6, 47),
                ] {
                    let wide = Array2::from_shape_fn((m, k + 3), |(i, j)| {
                        ((i * 7 + j * 3) % 11) as $t - 5.0
                    });
                    let a = wide.slice(s![.., 1..k + 1]);
                    let r = Array2::from_shape_fn((k, n), |(i, j)| {
                        ((i * 5 + j) % 13) as $t * 0.25 - 1.0
                    });
                    let rt = Array2::from_shape_fn((n, k), |(j, i)| r[[i, j]]);
                    // Neither rows nor columns contiguous: the element-wise packing.
                    let r2 = Array2::from_shape_fn((k, 2 * n), |(i, j)| r[[i, j / 2]]);
                    let strided = r2.slice(s![.., ..;2]);
                    let c0 = Array2::from_shape_fn((m, n), |(i, j)| (i + j) as $t);
                    for (b, transposed, reuse) in [
                        (r.view(), false, false),
                        (rt.t(), true, false),
                        (strided, false, false),
                        // Into a reused buffer full of NaN (longer, then shorter, than
                        // the packing): every value and every padding lane is written.
                        (r.view(), false, true),
                        (rt.t(), true, true),
                    ] {
                        let len = PackedB::<$t>::len_for(k, n);
                        let packed = match reuse {
                            false => PackedB::packed(&b, transposed, Vec::new()),
                            true if m % 2 == 0 => {
                                PackedB::packed(&b, transposed, vec![<$t>::NAN; len + 37])
                            }
                            true => {
                                let mut buf = vec![<$t>::NAN; len];
                                buf.truncate(len / 2);
                                PackedB::packed(&b, transposed, buf)
                            }
                        };
                        for beta in [0.0, 1.0] {
                            let mut c = c0.clone();
                            packed_mm(&a, &b, &packed, transposed, beta, &mut c.view_mut());
                            let expected = a.dot(&b) + &c0 * beta;
                            // Integers and quarters: exact in both types at these sizes.
                            assert_eq!(
                                c, expected,
                                "{m}x{k}x{n} transposed {transposed} beta {beta}"
                            );
                        }
                        // A stale or mismatched packing is never used.
                        let mut c = c0.clone();
                        packed_mm(&a, &b, &packed, !transposed, 0.0, &mut c.view_mut());
                        assert_eq!(c, a.dot(&b));
                    }
                }
            }
        };
    }

    packed_products_match!(packed_products_match, f32);
    packed_products_match!(packed_products_match_in_f64, f64);
}
