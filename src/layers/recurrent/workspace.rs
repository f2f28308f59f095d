//! The loop's sequence-sized buffers, reused across calls while shapes stay the same, and
//! how a batch is split across threads.

use super::cell::Cell;
use crate::float::Float;
use crate::parallel;
use ndarray::{Array2, Array3, ArrayView2};
use std::ops::Range;
use std::sync::Mutex;

/// Sequence-sized buffers, allocated once and reused while the shapes stay the same.
#[derive(Debug, Clone)]
pub(super) struct Buffers<F> {
    /// Inputs in processing order, time-major: `[T, B, F]`.
    pub(super) x: Array3<F>,
    /// Input projections `[T, B, G]`.
    pub(super) xw: Array3<F>,
    /// States `[T + 1, B, S]`; `states[0]` is the zero initial state.
    pub(super) states: Array3<F>,
    /// Per-step cache `[T, B, C]`.
    pub(super) cache: Array3<F>,
    /// Mask in processing order `[T, B]`, when a mask was given.
    pub(super) mask: Option<Array2<bool>>,
    /// Outputs that are a constant zero `[T, B]` (see the loop), when a mask was given.
    pub(super) quiet: Option<Array2<bool>>,
    /// `[rows, G]` scratch for the per-step products, one per batch chunk.
    pub(super) scratch: Vec<Array2<F>>,
    /// The batch chunks of the last forward (backward must use the same ones: a step's
    /// cache block is laid out per chunk).
    pub(super) chunks: Vec<Range<usize>>,
    /// Backward: gradients of the pre-activations `[T, B, G]`.
    pub(super) d_xw: Array3<F>,
    /// Backward: gradients w.r.t. the recurrent product (GRU reset_after only).
    pub(super) d_rw: Array3<F>,
    /// Backward: per batch row, `d_xw` and `d_rw` summed over the steps `[B, G]`,
    /// `[B, Rw]` (see the backward loop).
    pub(super) sum_xw: Array2<F>,
    pub(super) sum_rw: Array2<F>,
    /// Backward: dL/d state, current and previous `[B, S]`.
    pub(super) d_state: Array2<F>,
    pub(super) d_prev: Array2<F>,
    /// Output shape of the last forward.
    pub(super) out_shape: Vec<usize>,
    /// The input dropout mask of the last training forward (scaled keep values): `[B, F]`,
    /// or `[B, G·F]` (one per gate) with recurrent dropout.
    pub(super) in_mask: Option<Array2<F>>,
    /// The recurrent dropout masks `[B, G·u]` (one per gate) of the last training forward.
    pub(super) rec_mask: Option<Array2<F>>,
    /// With recurrent dropout, the inputs as each gate's product saw them `[T·B, G·F]`.
    pub(super) x_gates: Array2<F>,
    /// Backward with recurrent dropout: the previous `h` as each gate's product saw it
    /// `[T, B, G·u]`.
    pub(super) masked_prev: Array3<F>,
}

impl<F: Float> Default for Buffers<F> {
    fn default() -> Self {
        Buffers {
            x: Array3::zeros((0, 0, 0)),
            xw: Array3::zeros((0, 0, 0)),
            states: Array3::zeros((0, 0, 0)),
            cache: Array3::zeros((0, 0, 0)),
            mask: None,
            quiet: None,
            scratch: Vec::new(),
            chunks: Vec::new(),
            d_xw: Array3::zeros((0, 0, 0)),
            d_rw: Array3::zeros((0, 0, 0)),
            sum_xw: Array2::zeros((0, 0)),
            sum_rw: Array2::zeros((0, 0)),
            d_state: Array2::zeros((0, 0)),
            d_prev: Array2::zeros((0, 0)),
            out_shape: Vec::new(),
            in_mask: None,
            rec_mask: None,
            x_gates: Array2::zeros((0, 0)),
            masked_prev: Array3::zeros((0, 0, 0)),
        }
    }
}

/// Reallocates `a` only when its shape changes.
pub(super) fn ensure3<F: Float>(a: &mut Array3<F>, shape: (usize, usize, usize)) {
    if a.dim() != shape {
        *a = Array3::zeros(shape);
    }
}

pub(super) fn ensure2<F: Float>(a: &mut Array2<F>, shape: (usize, usize)) {
    if a.dim() != shape {
        *a = Array2::zeros(shape);
    }
}

/// Views the first two axes of a standard-layout 3-D array as rows: `[A*B, C]`.
pub(super) fn rows<F>(a: &Array3<F>) -> ArrayView2<'_, F> {
    let (p, q, r) = a.dim();
    a.view()
        .into_shape_with_order((p * q, r))
        .expect("standard layout")
}

/// How many threads the time loop of a `[b, t]` batch uses: one unless the per-step work
/// is large enough to pay for handing work to another thread. With `fresh` weights (just
/// updated: a training pass) every other thread must also fetch them from the core that
/// packed them, which pays only where each thread uses each weight on at least
/// [`MIN_FRESH_USES`] rows × steps.
pub(super) fn loop_threads<C: Cell>(cell: &C, b: usize, t: usize, fresh: bool) -> usize {
    let work = b * t * cell.units() * cell.gate_width();
    if work < parallel::MIN_LOOP_FLOPS || b < 16 {
        return 1;
    }
    let n = parallel::num_threads().min(b / 8).max(1);
    if fresh && (b / n) * t < MIN_FRESH_USES {
        1
    } else {
        n
    }
}

/// See [`loop_threads`].
const MIN_FRESH_USES: usize = 16;

/// One scratch block per chunk, reallocated only when the chunking changes.
pub(super) fn ensure_scratch<F: Float>(
    scratch: &mut Vec<Array2<F>>,
    chunks: &[Range<usize>],
    g: usize,
) {
    scratch.resize_with(chunks.len(), || Array2::zeros((0, 0)));
    for (sc, r) in scratch.iter_mut().zip(chunks) {
        ensure2(sc, (r.len(), g));
    }
}

/// Buffers for passes through `&self` (inference): one set kept for reuse, so repeated
/// predictions on one thread allocate nothing new; a call that finds it in use (another
/// thread predicting with the same layer) works in buffers of its own.
#[derive(Debug)]
pub(super) struct SpareBuffers<F>(Mutex<Buffers<F>>);

impl<F: Float> Default for SpareBuffers<F> {
    fn default() -> Self {
        SpareBuffers(Mutex::new(Buffers::default()))
    }
}

impl<F: Float> SpareBuffers<F> {
    /// Runs `f` with the kept buffers when free, else with fresh ones.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut Buffers<F>) -> R) -> R {
        match self.0.try_lock() {
            Ok(mut buf) => f(&mut buf),
            Err(_) => f(&mut Buffers::default()),
        }
    }
}

/// A copy starts with empty buffers: they are scratch, not state.
impl<F: Float> Clone for SpareBuffers<F> {
    fn clone(&self) -> Self {
        Self::default()
    }
}
