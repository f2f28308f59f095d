//! The AVX-512 kernels of the packed per-step product, chosen at run time on CPUs with
//! AVX-512F; the AVX2 kernels (in the parent module) run everywhere else.
//!
//! Same packed layout as the AVX2 path (panels of [`NR`] = 16 columns) and the same driver
//! ([`packed_driver!`]); what changes is the register tile. AVX-512 has 32 vector registers
//! of 16 f32 (8 f64): the f32 tile is 8 rows × 2 panels (16 accumulators, 2 panel loads
//! and 8 broadcasts per `k` for 256 multiply-adds, where the AVX2 6×16 tile does 8 loads
//! for 96), the f64 tile 8 rows × 1 panel (16 accumulators of 8 lanes). Column tails are
//! masked loads and stores instead of a bounce buffer. Products of one row keep the AVX2
//! row kernels: they stream the panels once and are bound by memory, not registers.
//!
//! On AMD Zen 4 a 512-bit multiply-add costs two 256-bit ones, so this path gains from
//! fewer loads per multiply-add, not wider arithmetic. `RNNKIT_NO_AVX512=1` in the
//! environment keeps the AVX2 kernels, so both can be measured on the same host.

use super::avx2::{row_f32, row_f64};
use super::{Addend, Lda, NR};
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Rows per micro-kernel call (both types).
const MR: usize = 8;

/// Whether the AVX-512 kernels run on this machine: AVX-512F (with AVX2 and FMA, which
/// every AVX-512 CPU has) and not switched off with `RNNKIT_NO_AVX512`.
pub(super) fn available() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::is_x86_feature_detected!("avx512f")
            && crate::linalg::avx2_fma()
            && std::env::var_os("RNNKIT_NO_AVX512").is_none()
    })
}

packed_driver!(
    /// `C (+)= A·B` in f32 from the packed panels of `B`, 8 rows × 2 panels at a time.
    pub(super) packed_f32, f32, |left: usize| left.min(MR), 2, "avx512f,avx2,fma", kernel_8x32, row_f32
);

packed_driver!(
    /// `C (+)= A·B` in f64 from the packed panels of `B`, 8 rows × 1 panel at a time.
    pub(super) packed_f64, f64, |left: usize| left.min(MR), 1, "avx512f,avx2,fma", kernel_8x16_f64, row_f64
);

/// Register `q` (of `width` lanes) of a row of `cols` valid values, as a write mask.
#[inline(always)]
fn lanes(cols: usize, q: usize, width: usize) -> u32 {
    let w = cols.saturating_sub(q * width).min(width);
    ((1u64 << w) - 1) as u32
}

/// `C[rows, cols] (+)= A[rows, k]·[P₀ P₁][k, 32]` for two adjacent panels (`P₁` starts
/// `k·NR` after `P₀`, and is not read when `cols ≤ 16`).
///
/// # Safety
/// AVX-512F; as the driver, for `rows ≤ 8` rows and `cols ≤ 32` columns.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_8x32(
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
        // Rows past `rows` re-read the last real row; their results are discarded.
        let ar: [*const f32; MR] = std::array::from_fn(|r| a.add(r.min(rows - 1) * lda.row));
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        if cols > NR {
            let next = panel.add(k * NR);
            for kk in 0..k {
                let b0 = _mm512_loadu_ps(panel.add(kk * NR));
                let b1 = _mm512_loadu_ps(next.add(kk * NR));
                for r in 0..MR {
                    let x = _mm512_set1_ps(*ar[r].add(kk * lda.k));
                    acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
                }
            }
        } else {
            for kk in 0..k {
                let b0 = _mm512_loadu_ps(panel.add(kk * NR));
                for r in 0..MR {
                    let x = _mm512_set1_ps(*ar[r].add(kk * lda.k));
                    acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate().take(rows) {
            for (q, &v) in acc.iter().enumerate() {
                let mask = lanes(cols, q, 16) as __mmask16;
                if mask == 0 {
                    continue;
                }
                let cr = c.add(r * ldc + q * 16);
                let v = match add.row(r) {
                    Some(d) => _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, d.add(q * 16))),
                    None => v,
                };
                _mm512_mask_storeu_ps(cr, mask, v);
            }
        }
    }
}

/// `C[rows, cols] (+)= A[rows, k]·P[k, 16]` in f64: 16 accumulators, two panel loads and
/// eight broadcasts per `k`.
///
/// # Safety
/// AVX-512F; as the driver, for `rows ≤ 8` rows and `cols ≤ 16` columns.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_8x16_f64(
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
        let ar: [*const f64; MR] = std::array::from_fn(|r| a.add(r.min(rows - 1) * lda.row));
        let mut acc = [[_mm512_setzero_pd(); 2]; MR];
        for kk in 0..k {
            let b0 = _mm512_loadu_pd(panel.add(kk * NR));
            let b1 = _mm512_loadu_pd(panel.add(kk * NR + 8));
            for r in 0..MR {
                let x = _mm512_set1_pd(*ar[r].add(kk * lda.k));
                acc[r][0] = _mm512_fmadd_pd(x, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_pd(x, b1, acc[r][1]);
            }
        }
        for (r, acc) in acc.iter().enumerate().take(rows) {
            for (q, &v) in acc.iter().enumerate() {
                let mask = lanes(cols, q, 8) as __mmask8;
                if mask == 0 {
                    continue;
                }
                let cr = c.add(r * ldc + q * 8);
                let v = match add.row(r) {
                    Some(d) => _mm512_add_pd(v, _mm512_maskz_loadu_pd(mask, d.add(q * 8))),
                    None => v,
                };
                _mm512_mask_storeu_pd(cr, mask, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Addend, Lda, PackedB};
    use ndarray::{Array2, s};

    /// The AVX-512 drivers called directly (not through the dispatch) against a plain
    /// product, on the shapes of the AVX2 test plus panel-pair tails (17, 33, 48 columns)
    /// and row tails of the 8-row tile. Skipped, with a notice, on CPUs without AVX-512F.
    macro_rules! avx512_products_match {
        ($name:ident, $t:ty, $driver:ident) => {
            #[test]
            fn $name() {
                if !super::available() {
                    // Through the stdout handle, which the test harness does not capture,
                    // so the notice shows in a normal `cargo test` run.
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stdout().lock(),
                        "{}: skipped, this CPU has no AVX-512F (or RNNKIT_NO_AVX512 is \
                         set); the AVX-512 kernels were not exercised",
                        stringify!($name)
                    );
                    return;
                }
                for &(m, k, n) in &[
                    (1, 7, 80),
                    (2, 1, 1),
                    (8, 16, 16),
                    (9, 5, 17),
                    (7, 3, 33),
                    (16, 10, 48),
                    (32, 10, 40),
                    (13, 33, 50),
                    (64, 128, 512),
                ] {
                    let wide = Array2::from_shape_fn((m, k + 3), |(i, j)| {
                        ((i * 7 + j * 3) % 11) as $t - 5.0
                    });
                    let a = wide.slice(s![.., 1..k + 1]);
                    let r = Array2::from_shape_fn((k, n), |(i, j)| {
                        ((i * 5 + j) % 13) as $t * 0.25 - 1.0
                    });
                    let mut packed = PackedB::<$t>::default();
                    packed.pack(&r.view(), false);
                    let c0 = Array2::from_shape_fn((m, n + 2), |(i, j)| (i + j) as $t);
                    let bias: Vec<$t> = (0..n).map(|j| (j % 7) as $t - 3.0).collect();
                    // Nothing added, `C` itself, or a bias row.
                    for what in 0..3 {
                        let mut c = c0.clone();
                        let add = match what {
                            0 => Addend::NONE,
                            1 => Addend {
                                ptr: c.as_ptr(),
                                ld: n + 2,
                            },
                            _ => Addend {
                                ptr: bias.as_ptr(),
                                ld: 0,
                            },
                        };
                        // SAFETY: AVX-512F checked above; `a` has `m` rows of stride
                        // `k + 3` with `k` contiguous values, `packed` holds `r`, `c`
                        // (the addend when it is `c`) has `m` rows of stride `n + 2` with
                        // room for `n` values, and `bias` holds `n`.
                        unsafe {
                            super::$driver(
                                m,
                                k,
                                n,
                                a.as_ptr(),
                                Lda { row: k + 3, k: 1 },
                                packed.data.as_ptr(),
                                c.as_mut_ptr(),
                                n + 2,
                                add,
                            )
                        };
                        let mut expected = c0.clone();
                        let prod = a.dot(&r);
                        let mut head = expected.slice_mut(s![.., ..n]);
                        match what {
                            0 => head.assign(&prod),
                            1 => head += &prod,
                            _ => head.assign(&(&prod + &ndarray::ArrayView1::from(&bias))),
                        }
                        // Integers and quarters: exact. The two columns past `n` are
                        // untouched (masked stores).
                        assert_eq!(c, expected, "{m}x{k}x{n} addend {what}");
                    }
                }
            }
        };
    }

    avx512_products_match!(avx512_f32_products_match, f32, packed_f32);
    avx512_products_match!(avx512_f64_products_match, f64, packed_f64);
}
