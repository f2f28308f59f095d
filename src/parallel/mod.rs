//! Using more than one core where it pays: large matrix products, the time loop over
//! independent batch rows, and the elementwise work on large weights (the optimizer's
//! update, the trainer's checks, the packings), cut so that each core works on the same
//! rows of a weight from one step to the next.
//!
//! Work is split over a team of spinning helper threads (rayon's pool when the
//! team is busy), only above a size at which the split saves more than handing work to
//! another thread costs, so the lecture's tiny models stay single-threaded and
//! allocation-free.

use crate::float::Float;
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

mod team;

/// 0 means "not set": use every core.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Recurrent time loops (forward or backward) split over more than one task so far.
static LOOP_SPLITS: AtomicUsize = AtomicUsize::new(0);

/// How many recurrent time loops (forward or backward passes) this process has split over
/// more than one thread: lets a test check that the work it compares really was split.
/// Not part of the API's promises.
#[doc(hidden)]
pub fn time_loop_splits() -> usize {
    LOOP_SPLITS.load(Ordering::Relaxed)
}

/// Counts a time loop about to run over `chunks` row ranges (see [`time_loop_splits`]).
pub(crate) fn note_loop(chunks: usize) {
    if chunks > 1 {
        LOOP_SPLITS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sets how many threads rnnkit may use (`0` restores the default: every core the
/// process may run on). Takes effect on the next forward or backward pass.
///
/// # Example
/// ```
/// rnnkit::set_num_threads(1); // e.g. when running several models side by side
/// assert_eq!(rnnkit::num_threads(), 1);
/// rnnkit::set_num_threads(0);
/// assert!(rnnkit::num_threads() >= 1);
/// ```
pub fn set_num_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// How many threads rnnkit uses (see [`set_num_threads`]).
///
/// # Example
/// ```
/// assert!(rnnkit::num_threads() >= 1);
/// ```
pub fn num_threads() -> usize {
    // `available_parallelism` reads cgroup files on every call (tens of µs): ask once.
    static CORES: OnceLock<usize> = OnceLock::new();
    match THREADS.load(Ordering::Relaxed) {
        0 => *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n,
    }
}

/// Floating-point operations below which a product runs on one thread. With the team's
/// hand-over (about a microsecond) a split pays from about 4 MFLOP (measured on the 2-core
/// Zen 4 host: W2's 8.4 MFLOP `dR` product, and LSTM/GRU(64) training steps).
const MIN_GEMM_FLOPS: usize = 4_000_000;

/// Work (multiply-adds over the whole sequence) below which the time loop runs on one
/// thread.
pub(crate) const MIN_LOOP_FLOPS: usize = 3_000_000;

/// `c = alpha·a·b + beta·c`, split over threads along the longer side of `c` when large.
pub(crate) fn gemm<F: Float>(
    alpha: F,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let parts = num_threads().min(m.max(n) / 16).max(1);
    if parts == 1 || 2 * m * n * k < MIN_GEMM_FLOPS {
        general_mat_mul(alpha, a, b, beta, c);
        return;
    }
    if m >= n {
        let tasks: Vec<_> = split_mut(c.view_mut(), Axis(0), &ranges(m, parts))
            .into_iter()
            .zip(ranges(m, parts))
            .collect();
        run(tasks, |(mut c, r)| {
            general_mat_mul(alpha, &a.slice_axis(Axis(0), r.into()), b, beta, &mut c)
        });
    } else {
        let tasks: Vec<_> = split_mut(c.view_mut(), Axis(1), &ranges(n, parts))
            .into_iter()
            .zip(ranges(n, parts))
            .collect();
        run(tasks, |(mut c, r)| {
            general_mat_mul(alpha, a, &b.slice_axis(Axis(1), r.into()), beta, &mut c)
        });
    }
}

/// `n` nearly equal consecutive ranges covering `0..len` (`n <= len`, or one range).
pub(crate) fn ranges(len: usize, n: usize) -> Vec<Range<usize>> {
    let n = n.clamp(1, len.max(1));
    (0..n).map(|i| i * len / n..(i + 1) * len / n).collect()
}

/// Splits a mutable view along `axis` into the given consecutive ranges.
pub(crate) fn split_mut<'a, A, D: ndarray::Dimension>(
    mut v: ndarray::ArrayViewMut<'a, A, D>,
    axis: Axis,
    ranges: &[Range<usize>],
) -> Vec<ndarray::ArrayViewMut<'a, A, D>> {
    let mut out = Vec::with_capacity(ranges.len());
    let mut start = 0;
    for r in ranges {
        debug_assert_eq!(r.start, start, "ranges must be consecutive");
        let (head, tail) = v.split_at(axis, r.end - start);
        out.push(head);
        v = tail;
        start = r.end;
    }
    out
}

/// Runs `f` on every task, the first on this thread and the others on the team of spinning
/// helpers (handing a task over costs about a microsecond), or, when the team is busy or
/// there are more tasks than cores, on rayon's pool of parked workers (waking one costs
/// tens of microseconds, where starting a thread cost 20–50). The tasks may then run one
/// after another: tasks that wait for each other use [`run_concurrently`].
pub(crate) fn run<T: Send, G: Fn(T) + Sync>(tasks: Vec<T>, f: G) {
    let Err(tasks) = team::try_run(tasks, &f) else {
        return;
    };
    let mut tasks = tasks.into_iter();
    let Some(first) = tasks.next() else { return };
    if tasks.len() == 0 {
        // One task: no pool at all, so single-threaded passes allocate nothing for it
        // (the pool's bookkeeping allocates now and then, which tests/alloc.rs would see).
        return f(first);
    }

    rayon::in_place_scope(|s| {
        for task in tasks {
            let f = &f;
            s.spawn(move |_| f(task));
        }
        f(first);
    });
}

/// Values from which flat elementwise work (the optimizer's update, the trainer's checks
/// and copies of the weights) is split over the threads: W2's 256 × 256 recurrent kernel
/// (65,536) is, a 64-unit LSTM's (16,384) is not.
const MIN_FLAT_SPLIT: usize = 1 << 15;

/// The length of each thread's piece of flat elementwise work over `len` values (`len`
/// itself, one piece, when short). Equal pieces from the start, so a weight's rows split
/// where [`ranges`] splits them for the weight-gradient products (whose thread wrote
/// them) whenever its row count divides evenly.
pub(crate) fn flat_piece(len: usize) -> usize {
    let parts = if len >= MIN_FLAT_SPLIT {
        num_threads()
    } else {
        1
    };
    len.div_ceil(parts).max(1)
}

/// Runs `f` on every piece of flat elementwise work over `len` values: `pieces(size)` cuts
/// the slices into pieces of [`flat_piece`]'s size. Several pieces go to the team (as
/// [`run_if_free`]); one runs here, with nothing allocated.
pub(crate) fn over_pieces<T: Send, I: Iterator<Item = T>>(
    len: usize,
    pieces: impl FnOnce(usize) -> I,
    f: impl Fn(T) + Sync,
) {
    let size = flat_piece(len);
    let pieces = pieces(size);
    if size >= len {
        pieces.for_each(f);
    } else {
        run_if_free(pieces.collect(), f);
    }
}

/// Runs `f` on every task, on the team when it is free, else one after another on this
/// thread: for short work that another thread's or a split loop's use of the team should
/// not send to rayon's pool (whose wake-up would cost more than the work).
pub(crate) fn run_if_free<T: Send, G: Fn(T) + Sync>(tasks: Vec<T>, f: G) {
    if let Err(tasks) = team::try_run(tasks, &f) {
        tasks.into_iter().for_each(f);
    }
}

/// Runs `f` on every task at the same time, the first on this thread and the others on
/// the team's helpers, or on their own scoped threads when the team is busy: for tasks
/// that meet at a barrier (the reservoir's steps), which a pool might run one after
/// another and so deadlock.
pub(crate) fn run_concurrently<T: Send, G: Fn(T) + Sync>(tasks: Vec<T>, f: G) {
    let Err(tasks) = team::try_run(tasks, &f) else {
        return;
    };
    let mut tasks = tasks.into_iter();
    let Some(first) = tasks.next() else { return };
    std::thread::scope(|s| {
        for task in tasks {
            let f = &f;
            s.spawn(move || f(task));
        }
        f(first);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn ranges_cover_everything_once() {
        assert_eq!(ranges(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(ranges(1, 4), vec![0..1]);
        assert_eq!(ranges(0, 2), vec![0..0]);
    }

    #[test]
    fn split_gemm_equals_plain_gemm() {
        set_num_threads(2); // split even on a one-core machine
        for &(m, k, n) in &[(300, 70, 90), (40, 90, 700), (5, 3, 2)] {
            let a = Array2::from_shape_fn((m, k), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
            let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.25);
            let mut c1 = Array2::from_elem((m, n), 1.0);
            let mut c2 = c1.clone();
            general_mat_mul(2.0, &a, &b, 0.5, &mut c1);
            gemm(2.0, &a.view(), &b.view(), 0.5, &mut c2.view_mut());
            assert_eq!(c1, c2);
        }
    }
}
