//! The machine's measured f32 multiply-add peak, the yardstick of BENCHMARKS.md's "share of
//! peak" columns: twelve independent FMA chains per thread (enough to cover the latency of
//! two FMA pipes), 256-bit (AVX2) and, where the CPU has it, 512-bit (AVX-512F), on one
//! thread and on every core.
//!
//! ```sh
//! cargo run --release --example fma_peak
//! ```
//! Prints one line per measurement: `peak isa=avx2 threads=2 gflops=227.2`.

use std::time::Instant;

/// Multiply-adds per chain and thread.
const ROUNDS: usize = 100_000_000;
/// Independent accumulator chains.
const CHAINS: usize = 12;

#[cfg(target_arch = "x86_64")]
mod kernels {
    use super::{CHAINS, ROUNDS};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2() -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_setzero_ps(); CHAINS];
        for _ in 0..ROUNDS {
            for v in &mut acc {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut out = [0f32; 8];
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
        // SAFETY: `out` holds the 8 floats the unaligned store writes.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
        out.iter().sum()
    }

    /// # Safety
    /// The CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512() -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..ROUNDS {
            for v in &mut acc {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }
}

/// A measurement: its name, the kernel, and its f32 lanes.
type Isa = (&'static str, fn() -> f32, usize);

/// GFLOP/s of `threads` threads each running `kernel`, of `lanes` f32 lanes.
fn measure(kernel: fn() -> f32, lanes: usize, threads: usize) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads).map(|_| std::thread::spawn(kernel)).collect();
    let check: f32 = handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum();
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(check);
    (ROUNDS * CHAINS * lanes * 2 * threads) as f64 / secs / 1e9
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    #[cfg(target_arch = "x86_64")]
    {
        let mut isas: Vec<Isa> = Vec::new();
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA were detected just above.
            isas.push(("avx2", || unsafe { kernels::avx2() }, 8));
        }
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected just above.
            isas.push(("avx512", || unsafe { kernels::avx512() }, 16));
        }
        if isas.is_empty() {
            println!("peak: this CPU has neither AVX2+FMA nor AVX-512F");
        }
        for (name, kernel, lanes) in isas {
            for threads in [1, cores] {
                let g = measure(kernel, lanes, threads);
                println!("peak isa={name} threads={threads} gflops={g:.1}");
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    println!("peak: measured on x86-64 only ({cores} cores here)");
}
