#!/usr/bin/env python3
"""Checks the logic of rnnkit's AVX-512 kernels on any x86-64 host, AVX-512 or not.

Copies the packed driver, its strides and its addend (src/linalg/mod.rs) and the AVX-512 kernels (src/linalg/avx512.rs)
into a scratch crate where every `_mm512_*` intrinsic is a scalar stand-in with the
semantics Intel documents (masked lanes neither read nor written), strips the
`target_feature` attributes, and runs the kernels on every tile, panel-pair and mask
tail shape against a plain triple loop. On an AVX-512 host the unit tests in
src/linalg/avx512.rs run the real instructions as well; this script is what checks
the tiling, masks and panel offsets where they cannot run (CI runs it). It also runs the
16-lane f32 tanh and sigmoid (src/linalg/fast32.rs) on emulated intrinsics against libm.

    python3 tools/avx512_emulated.py
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EMU = r"""
#![allow(non_camel_case_types, dead_code, unused)]
const NR: usize = 16;
mod emu {
    pub type __m512 = [f32; 16];
    pub type __m512d = [f64; 8];
    pub type __mmask16 = u16;
    pub type __mmask8 = u8;
    pub unsafe fn _mm512_setzero_ps() -> __m512 { [0.0; 16] }
    pub unsafe fn _mm512_setzero_pd() -> __m512d { [0.0; 8] }
    pub unsafe fn _mm512_loadu_ps(p: *const f32) -> __m512 { std::array::from_fn(|i| *p.add(i)) }
    pub unsafe fn _mm512_loadu_pd(p: *const f64) -> __m512d { std::array::from_fn(|i| *p.add(i)) }
    pub unsafe fn _mm512_set1_ps(x: f32) -> __m512 { [x; 16] }
    pub unsafe fn _mm512_set1_pd(x: f64) -> __m512d { [x; 8] }
    pub unsafe fn _mm512_fmadd_ps(a: __m512, b: __m512, c: __m512) -> __m512 {
        std::array::from_fn(|i| a[i].mul_add(b[i], c[i]))
    }
    pub unsafe fn _mm512_fmadd_pd(a: __m512d, b: __m512d, c: __m512d) -> __m512d {
        std::array::from_fn(|i| a[i].mul_add(b[i], c[i]))
    }
    pub unsafe fn _mm512_add_ps(a: __m512, b: __m512) -> __m512 { std::array::from_fn(|i| a[i] + b[i]) }
    pub unsafe fn _mm512_add_pd(a: __m512d, b: __m512d) -> __m512d { std::array::from_fn(|i| a[i] + b[i]) }
    // Masked-off lanes are not read (they may lie past the end of the row).
    pub unsafe fn _mm512_maskz_loadu_ps(k: __mmask16, p: *const f32) -> __m512 {
        std::array::from_fn(|i| if k >> i & 1 == 1 { *p.add(i) } else { 0.0 })
    }
    pub unsafe fn _mm512_maskz_loadu_pd(k: __mmask8, p: *const f64) -> __m512d {
        std::array::from_fn(|i| if k >> i & 1 == 1 { *p.add(i) } else { 0.0 })
    }
    pub unsafe fn _mm512_mask_storeu_ps(p: *mut f32, k: __mmask16, a: __m512) {
        for i in 0..16 { if k >> i & 1 == 1 { *p.add(i) = a[i]; } }
    }
    pub unsafe fn _mm512_mask_storeu_pd(p: *mut f64, k: __mmask8, a: __m512d) {
        for i in 0..8 { if k >> i & 1 == 1 { *p.add(i) = a[i]; } }
    }
    // What the f32 activations (src/linalg/fast32.rs) use besides.
    pub type __m512i = [i32; 16];
    pub const _CMP_GE_OQ: i32 = 29;
    pub unsafe fn _mm512_storeu_ps(p: *mut f32, a: __m512) { for i in 0..16 { *p.add(i) = a[i]; } }
    pub unsafe fn _mm512_set1_epi32(x: i32) -> __m512i { [x; 16] }
    pub unsafe fn _mm512_castps_si512(a: __m512) -> __m512i { a.map(|x| x.to_bits() as i32) }
    pub unsafe fn _mm512_castsi512_ps(a: __m512i) -> __m512 { a.map(|x| f32::from_bits(x as u32)) }
    pub unsafe fn _mm512_andnot_si512(a: __m512i, b: __m512i) -> __m512i { std::array::from_fn(|i| !a[i] & b[i]) }
    pub unsafe fn _mm512_and_si512(a: __m512i, b: __m512i) -> __m512i { std::array::from_fn(|i| a[i] & b[i]) }
    pub unsafe fn _mm512_or_si512(a: __m512i, b: __m512i) -> __m512i { std::array::from_fn(|i| a[i] | b[i]) }
    pub unsafe fn _mm512_xor_si512(a: __m512i, b: __m512i) -> __m512i { std::array::from_fn(|i| a[i] ^ b[i]) }
    // Ordered, non-signalling >=: false when either is NaN.
    pub unsafe fn _mm512_cmp_ps_mask<const P: i32>(a: __m512, b: __m512) -> __mmask16 {
        assert_eq!(P, _CMP_GE_OQ, "only GE_OQ is emulated");
        (0..16).fold(0, |k, i| if a[i] >= b[i] { k | 1 << i } else { k })
    }
    // MINPS/MAXPS: the second operand when either is NaN (or both are zeros).
    pub unsafe fn _mm512_min_ps(a: __m512, b: __m512) -> __m512 { std::array::from_fn(|i| if a[i] < b[i] { a[i] } else { b[i] }) }
    pub unsafe fn _mm512_max_ps(a: __m512, b: __m512) -> __m512 { std::array::from_fn(|i| if a[i] > b[i] { a[i] } else { b[i] }) }
    pub unsafe fn _mm512_mul_ps(a: __m512, b: __m512) -> __m512 { std::array::from_fn(|i| a[i] * b[i]) }
    pub unsafe fn _mm512_div_ps(a: __m512, b: __m512) -> __m512 { std::array::from_fn(|i| a[i] / b[i]) }
    pub unsafe fn _mm512_mask_blend_ps(k: __mmask16, a: __m512, b: __m512) -> __m512 {
        std::array::from_fn(|i| if k >> i & 1 == 1 { b[i] } else { a[i] })
    }
}
use emu::*;
// The one-row products stay on the AVX2 row kernels; a scalar stand-in here.
unsafe fn row_f32(k: usize, a: *const f32, ska: usize, b: *const f32, n: usize, c: *mut f32, add: Addend<f32>) { row(k, a, ska, b, n, c, add) }
unsafe fn row_f64(k: usize, a: *const f64, ska: usize, b: *const f64, n: usize, c: *mut f64, add: Addend<f64>) { row(k, a, ska, b, n, c, add) }
unsafe fn row<T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>>(
    k: usize, a: *const T, ska: usize, b: *const T, n: usize, c: *mut T, add: Addend<T>,
) {
    for j in 0..n {
        let mut s = T::default();
        for kk in 0..k { s = s + *a.add(kk * ska) * *b.add(((j / NR) * k + kk) * NR + j % NR); }
        *c.add(j) = match add.row(0) { Some(d) => s + *d.add(j), None => s };
    }
}
/// The layout of `PackedB::pack`: panels of NR columns, k rows each, zero-padded.
fn pack<T: Copy + Default>(b: &[T], k: usize, n: usize) -> Vec<T> {
    let mut d = vec![T::default(); n.div_ceil(NR) * k * NR];
    for kk in 0..k { for j in 0..n { d[((j / NR) * k + kk) * NR + j % NR] = b[kk * n + j]; } }
    d
}
"""

MAIN = r"""
macro_rules! check { ($t:ty, $f:ident) => {{
    let mut shapes = vec![(1usize, 7usize, 80usize), (64, 128, 512), (13, 33, 50)];
    for m in 1..=19 { for n in [1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 64, 65] { shapes.push((m, 3, n)); } }
    // `a` row-major (rows `k + 3` apart), or read as the transpose of a `[k, m + 2]`
    // matrix (rows one apart, `k` values `m + 2` apart: `Hᵀ` in a weight gradient).
    for (&(m, k, n), column_major) in shapes.iter().flat_map(|s| [(s, false), (s, true)]) {
        let ldc = n + 2;
        let lda = if column_major { Lda { row: 1, k: m + 2 } } else { Lda { row: k + 3, k: 1 } };
        let a: Vec<$t> = (0..m.max(k) * (m.max(k) + 3)).map(|x| ((x * 7) % 11) as $t - 5.0).collect();
        let at = |i: usize, kk: usize| a[1 + i * lda.row + kk * lda.k];
        let b: Vec<$t> = (0..k * n).map(|x| ((x * 5) % 13) as $t * 0.25 - 1.0).collect();
        let p = pack(&b, k, n);
        let bias: Vec<$t> = (0..n).map(|j| (j % 7) as $t - 3.0).collect();
        // Nothing added, C itself, or a bias row broadcast to every row.
        for what in 0..3 {
            let c0: Vec<$t> = (0..m * ldc).map(|x| (x % 17) as $t).collect();
            let mut c = c0.clone();
            let add = match what {
                0 => Addend::NONE,
                1 => Addend { ptr: c.as_ptr(), ld: ldc },
                _ => Addend { ptr: bias.as_ptr(), ld: 0 },
            };
            unsafe { $f(m, k, n, a.as_ptr().add(1), lda, p.as_ptr(), c.as_mut_ptr(), ldc, add) };
            for i in 0..m { for j in 0..ldc {
                let want = if j < n {
                    let mut s: $t = 0.0;
                    for kk in 0..k { s += at(i, kk) * b[kk * n + j]; }
                    match what { 0 => s, 1 => s + c0[i * ldc + j], _ => s + bias[j] }
                } else { c0[i * ldc + j] };
                assert_eq!(c[i * ldc + j], want, "{} {m}x{k}x{n} column-major {column_major} addend {what} at ({i}, {j})", stringify!($t));
            } }
        }
    }
    println!("{}: {} shapes match, `a` row- and column-major", stringify!($f), shapes.len());
}}; }
fn activations() {
    let mut xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.0037).collect();
    xs.extend([9.0, -9.0, 7.905_311, -7.905_311, 100.0, f32::INFINITY, f32::NEG_INFINITY, -0.0]);
    for len in (0..40).chain([xs.len()]) {
        let (mut t, mut s) = (xs[..len].to_vec(), xs[..len].to_vec());
        unsafe { by_lanes16::<false>(&mut t); by_lanes16::<true>(&mut s); }
        for (i, &x) in xs[..len].iter().enumerate() {
            let (et, es) = ((x as f64).tanh(), 1.0 / (1.0 + (-(x as f64)).exp()));
            assert!((t[i] as f64 - et).abs() < 5e-7, "tanh({x}) = {} at length {len}", t[i]);
            assert!((s[i] as f64 - es).abs() < 5e-7, "sigmoid({x}) = {} at length {len}", s[i]);
        }
    }
    let mut nan = [f32::NAN; 3];
    unsafe { by_lanes16::<false>(&mut nan) };
    assert!(nan.iter().all(|v| v.is_nan()), "NaN must propagate");
    println!("by_lanes16: tanh and sigmoid within 5e-7 of libm at {} points and every tail", xs.len());
}
fn main() {
    check!(f32, packed_f32);
    check!(f64, packed_f64);
    activations();
}
"""


def main():
    lin = open(os.path.join(ROOT, "src/linalg/mod.rs")).read()
    k512 = open(os.path.join(ROOT, "src/linalg/avx512.rs")).read()
    start = lin.index("macro_rules! packed_driver {")
    driver = lin[start:lin.index("\n}\n", start) + 3]
    addend = lin[lin.index("/// The strides of a packed product's left operand"):lin.index("/// What [`packed_mm`] adds")]
    driver = addend + driver
    driver = driver.replace("#[target_feature(enable = $features)]", "")
    driver = driver.replace('#[cfg(target_arch = "x86_64")]', "")
    kernels = k512[k512.index("/// Rows per micro-kernel call"):k512.index("#[cfg(test)]")]
    kernels = re.sub(r'#\[target_feature\(enable = "[^"]*"\)\]', "", kernels)
    kernels = re.sub(r"pub\(super\) fn available\(\) -> bool \{.*?\n\}\n", "", kernels, flags=re.S)
    kernels = kernels.replace("pub(super) packed_f", "pub(crate) packed_f")
    if "_mm512" not in kernels or "macro_rules" not in driver:
        sys.exit("avx512_emulated: could not find the kernels or the driver")
    f32src = open(os.path.join(ROOT, "src/linalg/fast32.rs")).read()
    consts = f32src[f32src.index("const TANH_CLAMP"):f32src.index("];", f32src.index("const TANH_Q")) + 2]
    rational = f32src[f32src.index("    macro_rules! rational"):f32src.index("    /// tanh of 8 lanes")]
    acts = f32src[f32src.index("    /// tanh of 16 lanes"):f32src.index("    /// Eight lanes at a time")]
    acts = re.sub(r'#\[target_feature\(enable = "[^"]*"\)\]', "", acts)
    acts = acts.replace("pub(super) unsafe fn by_lanes16", "pub(crate) unsafe fn by_lanes16")
    if "by_lanes16" not in acts or "_mm512" not in acts:
        sys.exit("avx512_emulated: could not find the AVX-512 activations")
    kernels += "\n" + consts + "\n" + rational + acts
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "src"))
        with open(os.path.join(d, "Cargo.toml"), "w") as f:
            f.write('[package]\nname = "avx512-emulated"\nversion = "0.0.0"\nedition = "2021"\n'
                    "publish = false\n\n[workspace]\n")
        with open(os.path.join(d, "src/main.rs"), "w") as f:
            f.write(EMU + driver + kernels + MAIN)
        env = dict(os.environ)
        env.setdefault("CARGO_TARGET_DIR", os.path.join(d, "target"))
        subprocess.run(["cargo", "run", "-q", "--release", "--manifest-path",
                        os.path.join(d, "Cargo.toml")], check=True, env=env)


if __name__ == "__main__":
    main()
