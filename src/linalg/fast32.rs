//! f32 activations over whole slices: a branch-free rational `tanh` (and the logistic from
//! it), 16 lanes at a time with AVX-512 or 8 with AVX2 + FMA intrinsics (the same
//! operations, so the same numbers) chosen at run time, and the one check
//! of those CPU features the crate's kernels share ([`avx2_fma`]).

/// `tanh` of every element, in place (AVX-512, or AVX2 + FMA, when the CPU has them).
pub(crate) fn tanh_slice(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx512() {
        // SAFETY: the CPU supports AVX-512F (checked at run time just above).
        unsafe { simd::by_lanes16::<false>(v) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time just above).
        unsafe { simd::tanh_avx2(v) };
        return;
    }
    for x in v {
        *x = tanh_f32(*x);
    }
}
/// The logistic of every element, in place (AVX-512, or AVX2 + FMA, when the CPU has
/// them).
pub(crate) fn sigmoid_slice(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::avx512() {
        // SAFETY: the CPU supports AVX-512F (checked at run time just above).
        unsafe { simd::by_lanes16::<true>(v) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2_fma() {
        // SAFETY: as above.
        unsafe { simd::sigmoid_avx2(v) };
        return;
    }
    for x in v {
        *x = sigmoid_f32(*x);
    }
}

/// Whether this CPU has AVX2 and FMA and `RNNKIT_NO_AVX2` is unset (asked once).
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx2_fma() -> bool {
    simd::has_avx2_fma()
}

/// The same approximation written with AVX2 + FMA intrinsics, chosen at run time, so a
/// default build (x86-64 baseline, SSE2) still runs its activations 8 lanes wide.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{TANH_CLAMP, TANH_P, TANH_Q};
    use std::arch::x86_64::*;

    pub(super) fn has_avx2_fma() -> bool {
        // Asked once: CPUID, and `RNNKIT_NO_AVX2=1`, which runs the portable code on an
        // AVX2 machine (what CPUs without AVX2 run; the tests use it to check that path).
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| {
            std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::env::var_os("RNNKIT_NO_AVX2").is_none()
        })
    }

    /// The numerator and denominator of tanh's rational approximation at the clamped
    /// `xc`, with one vector width's intrinsics (the same operations at every width).
    macro_rules! rational {
        ($xc:expr, $set1:ident, $mul:ident, $fmadd:ident) => {{
            let xc = $xc;
            let x2 = $mul(xc, xc);
            let mut p = $set1(TANH_P[0]);
            for &c in &TANH_P[1..] {
                p = $fmadd(x2, p, $set1(c));
            }
            let mut q = $set1(TANH_Q[0]);
            for &c in &TANH_Q[1..] {
                q = $fmadd(x2, q, $set1(c));
            }
            ($mul(p, xc), q)
        }};
    }

    /// tanh of 8 lanes: same coefficients and saturation as the portable `tanh_f32`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tanh8(x: __m256) -> __m256 {
        let clamp = _mm256_set1_ps(TANH_CLAMP);
        let sign = _mm256_set1_ps(-0.0);
        let saturated = _mm256_cmp_ps::<_CMP_GE_OQ>(_mm256_andnot_ps(sign, x), clamp); // NaN: no
        // min/max return their second operand on NaN, so NaN flows through.
        let xc = _mm256_max_ps(_mm256_xor_ps(clamp, sign), _mm256_min_ps(clamp, x));
        let (p, q) = rational!(xc, _mm256_set1_ps, _mm256_mul_ps, _mm256_fmadd_ps);
        let one = _mm256_or_ps(_mm256_and_ps(x, sign), _mm256_set1_ps(1.0)); // ±1
        _mm256_blendv_ps(_mm256_div_ps(p, q), one, saturated)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sigmoid8(x: __m256) -> __m256 {
        // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
        // features it is compiled for, and the slice lengths and pointers it names).
        unsafe {
            let half = _mm256_set1_ps(0.5);
            _mm256_fmadd_ps(half, tanh8(_mm256_mul_ps(half, x)), half)
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tanh_avx2(v: &mut [f32]) {
        // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
        // features it is compiled for, and the slice lengths and pointers it names).
        unsafe { by_lanes::<false>(v) }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sigmoid_avx2(v: &mut [f32]) {
        // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
        // features it is compiled for, and the slice lengths and pointers it names).
        unsafe { by_lanes::<true>(v) }
    }

    /// tanh of 16 lanes: [`tanh8`]'s operations, in the same order, 16 lanes wide (so the
    /// same numbers).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tanh16(x: __m512) -> __m512 {
        let clamp = _mm512_set1_ps(TANH_CLAMP);
        let sign = _mm512_set1_epi32(i32::MIN);
        let xi = _mm512_castps_si512(x);
        let abs = _mm512_castsi512_ps(_mm512_andnot_si512(sign, xi));
        let saturated = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(abs, clamp); // NaN: no
        let neg_clamp = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(clamp), sign));
        let xc = _mm512_max_ps(neg_clamp, _mm512_min_ps(clamp, x));
        let (p, q) = rational!(xc, _mm512_set1_ps, _mm512_mul_ps, _mm512_fmadd_ps);
        let one = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_and_si512(xi, sign),
            _mm512_castps_si512(_mm512_set1_ps(1.0)),
        )); // ±1
        _mm512_mask_blend_ps(saturated, _mm512_div_ps(p, q), one)
    }

    /// Sixteen lanes at a time, the tail through a masked load and store.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn by_lanes16<const SIGMOID: bool>(v: &mut [f32]) {
        #[inline(always)]
        unsafe fn f<const SIGMOID: bool>(x: __m512) -> __m512 {
            // SAFETY: the caller guarantees AVX-512F.
            unsafe {
                if SIGMOID {
                    let half = _mm512_set1_ps(0.5);
                    _mm512_fmadd_ps(half, tanh16(_mm512_mul_ps(half, x)), half)
                } else {
                    tanh16(x)
                }
            }
        }
        let mut blocks = v.chunks_exact_mut(16);
        for b in &mut blocks {
            // SAFETY: `b` holds exactly 16 floats (unaligned loads and stores); the caller
            // guarantees AVX-512F.
            unsafe { _mm512_storeu_ps(b.as_mut_ptr(), f::<SIGMOID>(_mm512_loadu_ps(b.as_ptr()))) };
        }
        let tail = blocks.into_remainder();
        if !tail.is_empty() {
            let mask = ((1u32 << tail.len()) - 1) as __mmask16;
            // SAFETY: the mask covers exactly the tail's `len < 16` floats; AVX-512F as above.
            unsafe {
                let x = _mm512_maskz_loadu_ps(mask, tail.as_ptr());
                _mm512_mask_storeu_ps(tail.as_mut_ptr(), mask, f::<SIGMOID>(x));
            }
        }
    }

    /// Eight lanes at a time; the tail goes through a padded block, so short rows (gates
    /// of 10 units) take the vector code too.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn by_lanes<const SIGMOID: bool>(v: &mut [f32]) {
        #[inline(always)]
        unsafe fn f<const SIGMOID: bool>(x: __m256) -> __m256 {
            // SAFETY: the caller upholds this function's `# Safety` contract (the CPU
            // features it is compiled for, and the slice lengths and pointers it names).
            unsafe { if SIGMOID { sigmoid8(x) } else { tanh8(x) } }
        }
        let mut blocks = v.chunks_exact_mut(8);
        for b in &mut blocks {
            // SAFETY: `b` holds exactly 8 floats (unaligned loads and stores); the caller
            // guarantees AVX2 and FMA.
            unsafe { _mm256_storeu_ps(b.as_mut_ptr(), f::<SIGMOID>(_mm256_loadu_ps(b.as_ptr()))) };
        }
        let tail = blocks.into_remainder();
        if !tail.is_empty() {
            let mut pad = [0f32; 8];
            pad[..tail.len()].copy_from_slice(tail);
            // SAFETY: `pad` holds exactly 8 floats; AVX2 and FMA as above.
            unsafe {
                _mm256_storeu_ps(
                    pad.as_mut_ptr(),
                    f::<SIGMOID>(_mm256_loadu_ps(pad.as_ptr())),
                )
            };
            tail.copy_from_slice(&pad[..tail.len()]);
        }
    }
}

/// Eigen's `ptanh_float` rational approximation: clamp, numerator (odd, highest power
/// first), denominator (even).
const TANH_CLAMP: f32 = 7.905_311;
const TANH_P: [f32; 7] = [
    -2.760_768_5e-16,
    2.000_188e-13,
    -8.604_672e-11,
    5.122_297e-8,
    1.485_722_4e-5,
    6.372_619_3e-4,
    4.893_524_6e-3,
];
const TANH_Q: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3];

/// σ(x) = (1 + tanh(x/2)) / 2.
#[inline(always)]
fn sigmoid_f32(x: f32) -> f32 {
    0.5 * tanh_f32(0.5 * x) + 0.5
}

/// Rational minimax approximation of tanh on [-7.9, 7.9] (Eigen's `ptanh_float`
/// coefficients), exactly ±1 outside, as libm gives in f32. Branch-free; NaN propagates.
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let saturated = x.abs() >= TANH_CLAMP; // false for NaN
    let x = x.clamp(-TANH_CLAMP, TANH_CLAMP);
    let x2 = x * x;
    let p = TANH_P[1..].iter().fold(TANH_P[0], |p, &c| x2 * p + c) * x;
    let q = TANH_Q[1..].iter().fold(TANH_Q[0], |q, &c| x2 * q + c);
    if saturated { 1f32.copysign(x) } else { p / q }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX-512 and AVX2 forms give the same numbers, bit for bit, at every length
    /// around the block widths (tails included), NaN and saturation included.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx512_activations_equal_avx2() {
        if !(crate::linalg::avx512() && simd::has_avx2_fma()) {
            return;
        }
        let xs: Vec<f32> = (-4000..=4000)
            .map(|i| i as f32 * 0.0037)
            .chain([f32::NAN, 9.0, -9.0, 7.905_311, f32::INFINITY, -0.0])
            .collect();
        for len in (0..40).chain([xs.len()]) {
            for sigmoid in [false, true] {
                let (mut a, mut b) = (xs[..len].to_vec(), xs[..len].to_vec());
                // SAFETY: both feature sets checked above.
                unsafe {
                    if sigmoid {
                        simd::by_lanes16::<true>(&mut a);
                        simd::sigmoid_avx2(&mut b);
                    } else {
                        simd::by_lanes16::<false>(&mut a);
                        simd::tanh_avx2(&mut b);
                    }
                }
                let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "len {len} sigmoid {sigmoid}");
            }
        }
    }

    #[test]
    fn fast_f32_activations_are_within_5e_7_of_libm() {
        let xs: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.005).collect();
        let mut t = xs.clone();
        tanh_slice(&mut t);
        let mut s = xs.clone();
        sigmoid_slice(&mut s);
        for (i, &x) in xs.iter().enumerate() {
            let et = (x as f64).tanh();
            let es = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(
                (t[i] as f64 - et).abs() < 5e-7,
                "tanh({x}) = {} vs {et}",
                t[i]
            );
            assert!(
                (s[i] as f64 - es).abs() < 5e-7,
                "sigmoid({x}) = {} vs {es}",
                s[i]
            );
        }
        let mut nan = [f32::NAN];
        tanh_slice(&mut nan);
        assert!(
            nan[0].is_nan(),
            "NaN must propagate so the trainer's guard sees it"
        );
        // The portable path (used on CPUs without AVX2/FMA) meets the same bound.
        for &x in xs.iter().step_by(7) {
            let et = (x as f64).tanh();
            assert!((tanh_f32(x) as f64 - et).abs() < 5e-7, "portable tanh({x})");
        }
        let mut ext = [100.0f32, -100.0, f32::INFINITY];
        tanh_slice(&mut ext);
        assert_eq!(ext, [1.0, -1.0, 1.0]);
    }
}
