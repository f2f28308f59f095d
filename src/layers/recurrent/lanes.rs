//! Elementwise loops over the short rows of the gate blocks, written so that the compiler
//! vectorises them even at 10 units.

/// Lanes per block: one AVX2 register of f32, two of f64.
const W: usize = 8;

/// For `j` in `0..u`: `outs[q][j] = f([ins[0][j], ins[1][j], …])[q]`.
///
/// A plain loop over a 10-unit row runs scalar: the vectoriser's main loop wants 32
/// elements (8 lanes unrolled 4 times) and the rest goes to a scalar epilogue. Here the row
/// goes in blocks of 8 lanes of compile-time length, copied into local arrays first (so
/// the compiler need not prove that the outputs do not alias the inputs), computed, and
/// stored back; the last block overlaps the one before it (rows shorter than 8 go one by
/// one). Every slice must hold at least `u` values.
///
/// # Panics
/// If a slice is shorter than `u` (a caller's invariant, never user input).
#[inline(always)]
pub(crate) fn zip_lanes<F: Copy + Default, const I: usize, const O: usize>(
    u: usize,
    ins: [&[F]; I],
    mut outs: [&mut [F]; O],
    f: impl Fn([F; I]) -> [F; O],
) {
    if u < W {
        for j in 0..u {
            let r = f(ins.map(|s| s[j]));
            for (out, r) in outs.iter_mut().zip(r) {
                out[j] = r;
            }
        }
        return;
    }
    // The last block overlaps the one before it instead of leaving a scalar tail: the
    // outputs are not inputs, so computing a lane twice writes the same value twice.
    let mut at = 0;
    loop {
        let x: [[F; W]; I] =
            std::array::from_fn(|q| ins[q][at..at + W].try_into().expect("a block of W lanes"));
        let mut y = [[F::default(); W]; O];
        for l in 0..W {
            let r = f(std::array::from_fn(|q| x[q][l]));
            for q in 0..O {
                y[q][l] = r[q];
            }
        }
        for (out, y) in outs.iter_mut().zip(&y) {
            out[at..at + W].copy_from_slice(y);
        }
        if at + W == u {
            return;
        }
        at = (at + W).min(u - W);
    }
}

/// Declares `$name`, which runs `self.$body(..)` compiled with AVX2 and FMA enabled
/// (through the method `$avx`) when the CPU has them, else as compiled for the baseline.
/// `$body` must be `#[inline(always)]`, so that its loops are vectorised 8 lanes wide on
/// AVX2 machines while the crate itself is built for plain x86-64.
macro_rules! avx2_twin {
    ($(#[$doc:meta])* fn $name:ident / $avx:ident / $body:ident $(<$lt:lifetime>)?
        (&self $(, $arg:ident : $ty:ty)* $(,)?) $(-> $ret:ty)?) => {
        $(#[$doc])*
        fn $name $(<$lt>)? (&self, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if $crate::linalg::avx2_fma() {
                // SAFETY: the CPU has AVX2 and FMA (checked just above).
                return unsafe { self.$avx($($arg),*) };
            }
            self.$body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx $(<$lt>)? (&self, $($arg: $ty),*) $(-> $ret)? {
            self.$body($($arg),*)
        }
    };
}
pub(crate) use avx2_twin;

#[cfg(test)]
mod tests {
    use super::zip_lanes;

    /// Every length around the block width (no block, one, one plus an overlapping tail,
    /// several) gives what a plain loop gives, and nothing past `u` is written.
    #[test]
    fn matches_a_plain_loop_at_every_length() {
        for u in 0..=35 {
            let a: Vec<f64> = (0..u + 3).map(|j| j as f64 * 0.5 - 3.0).collect();
            let b: Vec<f64> = (0..u + 3).map(|j| (j * j) as f64 * 0.25).collect();
            let (mut s, mut p) = (vec![-1.0; u + 3], vec![-1.0; u + 3]);
            zip_lanes(u, [&a, &b], [&mut s, &mut p], |[a, b]| [a + b, a * b - 1.0]);
            for j in 0..u + 3 {
                let (es, ep) = if j < u {
                    (a[j] + b[j], a[j] * b[j] - 1.0)
                } else {
                    (-1.0, -1.0)
                };
                assert_eq!((s[j], p[j]), (es, ep), "u {u}, lane {j}");
            }
        }
    }
}
