//! The per-step matrix products of the time loop.
//!
//! On an AVX2 + FMA CPU the recurrent kernel is packed once per weight update ([`PackedB`])
//! and every step multiplies against it with a 6×16 (f32) or 3×16 (f64) micro-kernel
//! ([`packed_mm`]; the kernels in `avx2`, and wider ones in `avx512` where AVX-512F runs),
//! adding `C` or a bias row as it stores the product; otherwise ([`step_mm`]) products go to ndarray's matrixmultiply, which repacks its
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
use std::ops::Range;

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
    if !zero_lhs(a, Plus::beta(beta), c) {
        general_mat_mul(F::one(), a, b, beta, c);
    }
}

/// When `a` is all zeros, sets `c` to what the product adds (zeros, `c` as it is, or the
/// row in every row) and returns true.
fn zero_lhs<F: Float>(
    a: &ArrayView2<'_, F>,
    plus: Plus<'_, F>,
    c: &mut ArrayViewMut2<'_, F>,
) -> bool {
    if !a.iter().all(|&v| v == F::zero()) {
        return false;
    }
    match plus {
        Plus::Nothing => c.fill(F::zero()),
        Plus::C => {}
        Plus::Row(row) => c.assign(&ndarray::ArrayView1::from(row)),
    }
    true
}

/// Columns per packed panel: two 8-lane AVX registers of f32.
const NR: usize = 16;

/// The strides of a packed product's left operand: between its rows, and between
/// consecutive values of a row (`k` is 1 for a row-major `A`, the row length of `H` for
/// `A = Hᵀ` in a weight gradient).
#[derive(Clone, Copy)]
struct Lda {
    row: usize,
    k: usize,
}

/// What a packed product adds to `A·B` before it stores `C`: nothing (null), `C` itself
/// (`ld` its row stride), or one row broadcast to every row of `C` (`ld` 0: a bias). The
/// addition is the last operation, so `C = A·B + row` gives the bits of copying the row
/// into `C` first and accumulating, without writing and reading `C` twice.
struct Addend<T> {
    ptr: *const T,
    ld: usize,
}

impl<T> Clone for Addend<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Addend<T> {}

impl<T> Addend<T> {
    /// Nothing added.
    const NONE: Self = Addend {
        ptr: std::ptr::null(),
        ld: 0,
    };

    /// The addend of the block at row `r`, column `col` (null stays null).
    #[inline(always)]
    fn at(self, r: usize, col: usize) -> Self {
        match self.row(r) {
            Some(p) => Addend {
                ptr: p.wrapping_add(col),
                ld: self.ld,
            },
            None => self,
        }
    }

    /// The first value of row `r`, or `None` when nothing is added.
    #[inline(always)]
    fn row(self, r: usize) -> Option<*const T> {
        (!self.ptr.is_null()).then(|| self.ptr.wrapping_add(r * self.ld))
    }
}

/// What [`packed_mm`] adds to the product.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Plus<'a, F> {
    /// `c = a·b`.
    Nothing,
    /// `c = a·b + c`.
    C,
    /// `c = a·b + row` for every row of `c` (a bias; `row` as long as a row of `c`).
    Row(&'a [F]),
}

impl<F: Float> Plus<'_, F> {
    /// `Nothing` for `beta` 0, `C` for 1.
    pub(crate) fn beta(beta: F) -> Self {
        debug_assert!(beta == F::zero() || beta == F::one());
        if beta == F::zero() {
            Plus::Nothing
        } else {
            Plus::C
        }
    }
}

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
    /// Large weights are packed by every thread at once (with the team, when it is free),
    /// each the part whose values come from its share of `R`'s rows, the rows
    /// [`crate::parallel::flat_piece`] gives it in the optimizer's update: read where they
    /// were just written.
    pub(crate) fn pack(&mut self, b: &ArrayView2<'_, F>, transposed: bool) {
        if !Self::available() {
            self.what = None;
            return;
        }
        let (k, n) = b.dim();
        let panels = n.div_ceil(NR);
        // Every full panel's value is written below; only the last panel's padding
        // columns need zeros (written with the values where rows are contiguous).
        self.data.resize(panels * k * NR, F::zero());
        if self.data.is_empty() {
            self.what = Some((k, n, transposed)); // nothing to pack (no rows or columns)
            return;
        }
        let rows_contiguous = b.rows().into_iter().all(|r| r.as_slice().is_some());
        if n % NR != 0 && !rows_contiguous {
            let at = |p: usize, kk: usize| (p * k + kk) * NR;
            let p = panels - 1;
            for kk in 0..k {
                self.data[at(p, kk) + n % NR..at(p, kk) + NR].fill(F::zero());
            }
        }
        let split = crate::parallel::flat_piece(k * n) < k * n;
        if split && rows_contiguous {
            // `R` (rows of `b`) by rows: each part writes its rows' slice of every panel.
            let cuts = crate::parallel::ranges(k, crate::parallel::num_threads());
            let mut tasks: Vec<_> = cuts.iter().map(|r| (Vec::new(), r.clone())).collect();
            for panel in self.data.chunks_mut(k * NR) {
                let mut rest = panel;
                for (task, r) in tasks.iter_mut().zip(&cuts) {
                    let (mine, tail) = rest.split_at_mut(r.len() * NR);
                    task.0.push(mine);
                    rest = tail;
                }
            }
            crate::parallel::run_if_free(tasks, |(dst, rows)| pack_rows(b, dst, rows));
        } else if split && b.t().as_slice().is_some() {
            // `Rᵀ` by panels, each panel 16 rows of `R`.
            let cuts = crate::parallel::ranges(panels, crate::parallel::num_threads());
            let mut tasks = Vec::with_capacity(cuts.len());
            let mut rest = self.data.as_mut_slice();
            for r in cuts {
                let (mine, tail) = rest.split_at_mut(r.len() * k * NR);
                tasks.push((mine, r));
                rest = tail;
            }
            crate::parallel::run_if_free(tasks, |(dst, r)| pack_columns(b, dst, r));
        } else if rows_contiguous {
            for (kk, row) in b.rows().into_iter().enumerate() {
                let row = row.to_slice().expect("rows contiguous");
                for (p, panel) in self.data.chunks_exact_mut(k * NR).enumerate() {
                    row_piece(row, p, &mut panel[kk * NR..(kk + 1) * NR]);
                }
            }
        } else if b.t().as_slice().is_some() {
            pack_columns(b, &mut self.data, 0..panels);
        } else {
            // Any other layout, element by element.
            let at = |p: usize, kk: usize| (p * k + kk) * NR;
            for ((kk, j), &v) in b.indexed_iter() {
                self.data[at(j / NR, kk) + j % NR] = v;
            }
        }
        self.what = Some((k, n, transposed));
    }
}

/// Packs the rows `rows` of a row-major `b` (`R` in a forward pass): `dst[p]` is panel
/// `p`'s part for those rows.
fn pack_rows<F: Float>(b: &ArrayView2<'_, F>, mut dst: Vec<&mut [F]>, rows: Range<usize>) {
    for (i, kk) in rows.enumerate() {
        let row = b.row(kk);
        let row = row.to_slice().expect("rows contiguous");
        for (p, panel) in dst.iter_mut().enumerate() {
            row_piece(row, p, &mut panel[i * NR..(i + 1) * NR]);
        }
    }
}

/// Writes panel `p`'s 16 values of `row` to `out` (16 long), zero-padded past the row's
/// end: a fixed-size copy, inlined, not one `memcpy` call per 64 bytes (nor a `memcpy` and
/// a `memset` per row of a few units).
#[inline(always)]
fn row_piece<F: Float>(row: &[F], p: usize, out: &mut [F]) {
    let out: &mut [F; NR] = out.try_into().expect("NR long");
    match row.get(p * NR..(p + 1) * NR) {
        Some(piece) => *out = piece.try_into().expect("NR long"),
        None => {
            let rest = &row[p * NR..];
            for (q, d) in out.iter_mut().enumerate() {
                *d = rest.get(q).copied().unwrap_or_else(F::zero);
            }
        }
    }
}

/// Packs the panels `panels` of a column-major `b` (`Rᵀ` in a backward pass, `bᵀ` = `R`
/// row-major) into `dst`, those panels' part of the packing: each panel is 16 rows of `R`
/// scattered into a `k × 16` block small enough to stay in L1; in f32 as 8×8 blocks
/// transposed in registers.
fn pack_columns<F: Float>(b: &ArrayView2<'_, F>, dst: &mut [F], panels: Range<usize>) {
    let (k, n) = b.dim();
    let bt = b.t();
    let bt = bt.to_slice().expect("columns contiguous");
    let p0 = panels.start;
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>() && avx2_fma() {
        let cols = (panels.end * NR).min(n) - p0 * NR;
        // SAFETY: the CPU has AVX2 and FMA (checked); F is f32 (the casts are identity
        // casts); from row `p0·NR` on, `bt` holds `cols·k` values, and `dst` holds these
        // panels, `panels.len()·k·NR`.
        unsafe {
            avx2::pack_transposed_f32(
                bt.as_ptr().add(p0 * NR * k) as *const f32,
                k,
                cols,
                dst.as_mut_ptr() as *mut f32,
            )
        };
        return;
    }
    for p in panels {
        let panel = &mut dst[(p - p0) * k * NR..(p - p0 + 1) * k * NR];
        for (jj, j) in (p * NR..((p + 1) * NR).min(n)).enumerate() {
            let col = &bt[j * k..(j + 1) * k];
            for (kk, &v) in col.iter().enumerate() {
                panel[kk * NR + jj] = v;
            }
        }
    }
}

/// `c = a·b + plus` using `packed` when it holds `b` (in the orientation `transposed`),
/// else [`step_mm`].
pub(crate) fn packed_mm<F: Float>(
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    packed: &PackedB<F>,
    transposed: bool,
    plus: Plus<'_, F>,
    c: &mut ArrayViewMut2<'_, F>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let usable = packed.what == Some((k, n, transposed))
        && m > 0
        && k > 0
        && (m == 1 || a.strides()[0] > 0)
        && (k == 1 || a.strides()[1] > 0)
        && (n == 1 || c.strides()[1] == 1)
        && (m == 1 || c.strides()[0] > 0);
    let beta = match plus {
        Plus::Nothing => F::zero(),
        Plus::C => F::one(),
        Plus::Row(row) => {
            debug_assert_eq!(row.len(), n);
            if !usable {
                // The same numbers the kernel gives: the row first, the product added.
                c.assign(&ndarray::ArrayView1::from(row));
            }
            F::one()
        }
    };
    if !usable {
        return step_mm(a, b, beta, c);
    }
    if zero_lhs(a, plus, c) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        debug_assert!(PackedB::<F>::available());
        let ldc = c.strides()[0] as usize;
        // Strides checked positive above where they are used (a row or a `k` of one is
        // never stepped over).
        let lda = Lda {
            row: if m == 1 { 0 } else { a.strides()[0] as usize },
            k: if k == 1 { 1 } else { a.strides()[1] as usize },
        };
        let add = match plus {
            Plus::Nothing => Addend::NONE,
            Plus::C => Addend {
                ptr: c.as_ptr(),
                ld: ldc,
            },
            Plus::Row(row) => Addend {
                ptr: row.as_ptr(),
                ld: 0,
            },
        };
        // SAFETY: `packed` exists only where `available()` held, i.e. F is f32 or f64 (the
        // pointer casts are identity casts for the type checked) and the CPU has AVX2 and
        // FMA (and AVX-512F where `avx512::available()` chose those kernels). Every row index
        // passed is below `m`, every column below `n`, with the strides of these views; the
        // addend is `c` itself or a row of `n` values.
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
                    Addend {
                        ptr: add.ptr as *const f32,
                        ld: add.ld,
                    },
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
                    Addend {
                        ptr: add.ptr as *const f64,
                        ld: add.ld,
                    },
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
        /// `lda.row`, each `k` values of stride `lda.k`; `b` holds `ceil(n/NR)` panels of
        /// `k·NR`; `c` valid for `m` rows of stride `ldc` and `n` contiguous values; `add`
        /// null, or valid for `m` rows of stride `add.ld` and `n` values.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        #[allow(clippy::too_many_arguments)]
        $vis unsafe fn $name(
            m: usize,
            k: usize,
            n: usize,
            a: *const $t,
            lda: Lda,
            b: *const $t,
            c: *mut $t,
            ldc: usize,
            add: Addend<$t>,
        ) {
            // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
            // features it is compiled for, and the slice lengths and pointers it names).
            unsafe {
            if m == 1 {
                return $row(k, a, lda.k, b, n, c, add);
            }
            for p in (0..n.div_ceil(NR)).step_by($panels) {
                let cols = (n - p * NR).min($panels * NR);
                let panel = b.add(p * k * NR);
                let mut i = 0;
                while i < m {
                    let rows = ($block)(m - i);
                    $kernel(
                        k,
                        a.add(i * lda.row),
                        lda,
                        panel,
                        c.add(i * ldc + p * NR),
                        ldc,
                        rows,
                        cols,
                        add.at(i, p * NR),
                    );
                    i += rows;
                }
            }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
use avx2::{packed_f32, packed_f64};
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
pub(crate) mod small;
pub(crate) mod solve;
pub(crate) mod wide;
pub(crate) use wide::column_sums;

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
                        let bias: Vec<$t> = (0..n).map(|j| (j % 7) as $t - 3.0).collect();
                        let row = ndarray::ArrayView1::from(&bias);
                        for (plus, expected) in [
                            (Plus::beta(0.0), a.dot(&b)),
                            (Plus::beta(1.0), a.dot(&b) + &c0),
                            (Plus::Row(&bias), a.dot(&b) + &row),
                        ] {
                            let mut c = c0.clone();
                            packed_mm(&a, &b, &packed, transposed, plus, &mut c.view_mut());
                            // Integers and quarters: exact in both types at these sizes.
                            assert_eq!(
                                c, expected,
                                "{m}x{k}x{n} transposed {transposed} {plus:?}"
                            );
                            // `a` as a transposed view of a wider matrix (as `Hᵀ` in a weight
                            // gradient, `k` values `m + 2` apart, also for one row): the
                            // same numbers.
                            let wide_t = Array2::from_shape_fn((k, m + 2), |(kk, i)| {
                                if i < m { a[[i, kk]] } else { 99.0 }
                            });
                            let a_t = wide_t.slice(s![.., ..m]);
                            let mut c = c0.clone();
                            packed_mm(&a_t.t(), &b, &packed, transposed, plus, &mut c.view_mut());
                            assert_eq!(c, expected, "{m}x{k}x{n} strided a {plus:?}");
                            // A stale or mismatched packing is never used: the same
                            // numbers from matrixmultiply.
                            let mut c = c0.clone();
                            packed_mm(&a, &b, &packed, !transposed, plus, &mut c.view_mut());
                            assert_eq!(c, expected, "{m}x{k}x{n} mismatched {plus:?}");
                        }
                    }
                }
            }
        };
    }

    /// Weights large enough to be packed by several threads at once (by rows of `R`, by
    /// panels of `Rᵀ`) give the one-thread layout: every panel's value and padding.
    #[test]
    fn split_packings_match_the_layout() {
        crate::set_num_threads(2); // split even on a one-core machine
        for &(k, n) in &[(256, 256), (200, 300), (301, 130)] {
            assert!(
                crate::parallel::flat_piece(k * n) < k * n,
                "{k}x{n} is split"
            );
            let r = Array2::from_shape_fn((k, n), |(i, j)| (i * 1000 + j) as f32);
            let rt = Array2::from_shape_fn((n, k), |(j, i)| r[[i, j]]);
            for (b, transposed) in [(r.view(), false), (rt.t(), true)] {
                let len = PackedB::<f32>::len_for(k, n);
                let packed = PackedB::packed(&b, transposed, vec![f32::NAN; len]);
                if !PackedB::<f32>::available() {
                    // No packed kernels here (`RNNKIT_NO_AVX2`): nothing may claim a packing.
                    assert_eq!(packed.what, None);
                    continue;
                }
                for p in 0..n.div_ceil(NR) {
                    for kk in 0..k {
                        for jj in 0..NR {
                            let j = p * NR + jj;
                            let want = if j < n { r[[kk, j]] } else { 0.0 };
                            let got = packed.data[(p * k + kk) * NR + jj];
                            assert_eq!(got, want, "{k}x{n} {transposed} panel {p} row {kk}");
                        }
                    }
                }
            }
        }
    }

    /// A left operand of zeros (the first step's zero state) skips the product and still
    /// gives what each addend asks for.
    #[test]
    fn zero_left_operands_give_the_addend() {
        let b = Array2::from_shape_fn((5, 20), |(i, j)| (i * 3 + j) as f32 * 0.5);
        let packed = PackedB::packed(&b.view(), false, Vec::new());
        let a = Array2::<f32>::zeros((7, 5));
        let c0 = Array2::from_shape_fn((7, 20), |(i, j)| (i + 2 * j) as f32);
        let bias: Vec<f32> = (0..20).map(|j| j as f32 - 4.0).collect();
        let row = ndarray::ArrayView1::from(&bias);
        for (plus, expected) in [
            (Plus::Nothing, Array2::zeros((7, 20))),
            (Plus::C, c0.clone()),
            (Plus::Row(&bias), row.broadcast((7, 20)).unwrap().to_owned()),
        ] {
            let mut c = c0.clone();
            packed_mm(
                &a.view(),
                &b.view(),
                &packed,
                false,
                plus,
                &mut c.view_mut(),
            );
            assert_eq!(c, expected, "{plus:?}");
        }
    }

    packed_products_match!(packed_products_match, f32);
    packed_products_match!(packed_products_match_in_f64, f64);
}
