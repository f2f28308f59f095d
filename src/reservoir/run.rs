//! The reservoir's time loop: one product for every step's input term, then per step the
//! recurrent product `h·W`, the activation and the leak. Large reservoirs split each step's
//! units over the threads: each thread owns a block of columns of `W` (so of the state) for
//! the whole run, and the threads meet once per step, where each needs the whole previous
//! state. The split changes no arithmetic: every unit is computed by the same operations in
//! the same order on any number of threads.

use crate::float::Float;
use crate::linalg::matvec::FixedMatrix;
use crate::parallel::{num_threads, ranges, run_concurrently, split_mut};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Non-zero weights per step below which one thread runs the loop: a step's meeting point
/// costs about a microsecond, a thousandth of a microsecond per weight.
const MIN_PARALLEL_WORK: usize = 20_000;

/// What a reservoir step needs: `W` laid out for the product, the leak rate.
pub(crate) struct Step<'a, F> {
    pub(crate) kernel: &'a FixedMatrix<F>,
    pub(crate) leak: f64,
}

/// The states `h_1 … h_T` `[T, n]` from `h0` for inputs `x` `[T, f]`:
/// `h_t = (1 − a)·h_{t−1} + a·tanh(x_t·W_in + b + h_{t−1}·W)`.
pub(crate) fn states<F: Float>(
    step: &Step<'_, F>,
    w_in: &Array2<F>,
    b: &Array1<F>,
    x: ArrayView2<'_, F>,
    h0: &[F],
) -> Array2<F> {
    let (t, n) = (x.nrows(), w_in.ncols());
    let mut states = Array2::<F>::zeros((t, n));
    general_mat_mul(F::one(), &x, w_in, F::zero(), &mut states);
    states += b;
    let threads = num_threads().min(n / 64).max(1);
    if threads == 1 || t < 2 || step.kernel.work() < MIN_PARALLEL_WORK {
        serial(step, states.view_mut(), h0);
    } else {
        parallel(step, states.view_mut(), h0, threads);
    }
    states
}

/// Unit `r`'s new state from its activation `tanh(pre)` and its previous state.
#[inline]
fn leaky<F: Float>(keep: F, a: F, act: F, prev: F) -> F {
    keep * prev + a * act
}

/// One step on one thread: `row` holds the step's input term `x·W_in + b` and becomes the
/// new state; `prev` (the previous state) becomes it too. Allocation-free.
pub(crate) fn advance<F: Float>(step: &Step<'_, F>, row: &mut [F], prev: &mut [F]) {
    let a = F::c(step.leak);
    let keep = F::one() - a;
    step.kernel.add_product_cols(prev, 0, row);
    // The whole row at once: the vectorised tanh (libm's, one unit at a time, was a
    // quarter of a 1,000-unit step).
    F::tanh_slice(row);
    for (r, p) in row.iter_mut().zip(prev.iter_mut()) {
        *r = leaky(keep, a, *r, *p);
        *p = *r;
    }
}

fn serial<F: Float>(step: &Step<'_, F>, mut states: ArrayViewMut2<'_, F>, h0: &[F]) {
    let mut prev = h0.to_vec();
    for mut row in states.rows_mut() {
        let row = row
            .as_slice_mut()
            .expect("invariant: rows of a fresh standard-layout array are contiguous");
        advance(step, row, &mut prev);
    }
}

/// The loop on `threads` threads, each owning a block of units. The state is exchanged
/// through two buffers of atomics (step `k` reads buffer `k % 2` and writes the other), and
/// a counter of arrivals is the per-step barrier: no thread starts step `k + 1`, whose
/// writes go to the buffer others read in step `k`, before all have finished step `k`.
fn parallel<F: Float>(step: &Step<'_, F>, states: ArrayViewMut2<'_, F>, h0: &[F], threads: usize) {
    let n = h0.len();
    let bits = |v: F| v.to_f64().unwrap_or(f64::NAN).to_bits();
    let buffers: [Vec<AtomicU64>; 2] = [
        h0.iter().map(|&v| AtomicU64::new(bits(v))).collect(),
        (0..n).map(|_| AtomicU64::new(0)).collect(),
    ];
    let arrived = AtomicUsize::new(0);
    let blocks = ranges(n, threads);
    let tasks: Vec<_> = split_mut(states, Axis(1), &blocks)
        .into_iter()
        .zip(blocks)
        .collect();
    let (a, buffers, arrived) = (F::c(step.leak), &buffers, &arrived);
    let keep = F::one() - a;
    run_concurrently(tasks, |(mut mine, cols)| {
        let mut prev = vec![F::zero(); n];
        for (k, mut row) in mine.rows_mut().into_iter().enumerate() {
            let (src, dst) = (&buffers[k % 2], &buffers[(k + 1) % 2]);
            for (p, s) in prev.iter_mut().zip(src) {
                *p = F::c(f64::from_bits(s.load(Ordering::Relaxed)));
            }
            let row = row
                .as_slice_mut()
                .expect("invariant: a block of a row is contiguous");
            step.kernel.add_product_cols(&prev, cols.start, row);
            F::tanh_slice(row);
            for ((r, &p), d) in row
                .iter_mut()
                .zip(&prev[cols.clone()])
                .zip(&dst[cols.clone()])
            {
                *r = leaky(keep, a, *r, p);
                d.store(bits(*r), Ordering::Relaxed);
            }
            // The barrier: Release publishes this step's stores, Acquire sees the others'.
            arrived.fetch_add(1, Ordering::Release);
            let target = threads * (k + 1);
            let mut spins = 0u32;
            while arrived.load(Ordering::Acquire) < target {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(4096) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loop split over 2 or 3 threads gives the serial loop's states bit for bit, for
    /// both layouts of `W`, in f64 and f32.
    fn split_equals_serial<F: Float>() {
        for density in [0.1, 0.6] {
            let n = 150;
            let w = Array2::from_shape_fn((n, n), |(i, j)| {
                let u = ((i * 31 + j * 17) % 97) as f64 / 97.0;
                F::c(if u < density {
                    (u * 13.0).sin() * 0.2
                } else {
                    0.0
                })
            });
            let kernel = FixedMatrix::new(w.view());
            let step = Step {
                kernel: &kernel,
                leak: 0.3,
            };
            let (t, f) = (40, 2);
            let x = Array2::from_shape_fn((t, f), |(i, k)| F::c(((i + 3 * k) as f64).sin()));
            let w_in = Array2::from_shape_fn((f, n), |(k, j)| F::c(((k * n + j) as f64).cos()));
            let b = Array1::from_shape_fn(n, |j| F::c(0.01 * j as f64));
            let h0: Vec<F> = (0..n).map(|j| F::c((j as f64 * 0.1).sin())).collect();
            let mut want = Array2::<F>::zeros((t, n));
            general_mat_mul(F::one(), &x, &w_in, F::zero(), &mut want);
            want += &b;
            let mut got = [want.clone(), want.clone()];
            serial(&step, want.view_mut(), &h0);
            for (g, threads) in got.iter_mut().zip([2, 3]) {
                parallel(&step, g.view_mut(), &h0, threads);
                assert_eq!(*g, want, "density {density}, {threads} threads");
            }
            assert!(want.iter().all(|v| v.abs() > F::zero()), "the states moved");
        }
    }

    #[test]
    fn threads_change_no_state_f64() {
        split_equals_serial::<f64>();
    }

    #[test]
    fn threads_change_no_state_f32() {
        split_equals_serial::<f32>();
    }
}
