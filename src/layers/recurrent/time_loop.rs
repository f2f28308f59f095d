//! The one time loop: forward and backward through time over some batch rows, for any
//! [`Cell`]. Allocation-free.

use super::cell::{BackwardStep, Cell, sl, sl_mut};
use crate::float::Float;
use crate::linalg::wide::add_rows_wide;
use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, s};
use num_traits::Zero;
use std::ops::Range;

/// The input projections of the steps `[T, b, G]` for the forward loop.
pub(super) struct Projection<'a, F> {
    /// The projections: computed for all steps before the loop (`x` is `None`), or written
    /// here step by step.
    pub(super) xw: ArrayViewMut3<'a, F>,
    /// The inputs `[T, b, F]` when the loop projects each step just before it (with
    /// [`CellWeights::times_k`](super::CellWeights), where the packed kernel runs).
    pub(super) x: Option<ArrayView3<'a, F>>,
}

/// The forward time loop over some batch rows: `xw` `[T, b, G]`, `states` `[T + 1, b, S]`
/// (`states[0]` holds the initial state), `cache` `[T, b, C]`, `mask` `[T, b]`. A `cache`
/// (or, when the loop projects each step, an `xw`) of one step is reused by every step:
/// inference keeps no step's cache for a backward pass.
/// Allocation-free: every step works in the given views.
///
/// Each step's input projection comes from `inputs` (see [`Projection`]).
///
/// With recurrent dropout masks `rec_mask` `[b, G·u]` (one per gate) each gate's product
/// sees `h_{t−1}` under its own mask (the state itself, and `c`, are kept whole).
pub(super) fn forward_loop<C: Cell>(
    cell: &C,
    inputs: Projection<'_, C::F>,
    mut states: ArrayViewMut3<'_, C::F>,
    mut cache: ArrayViewMut3<'_, C::F>,
    mask: Option<ArrayView2<'_, bool>>,
    rec_mask: Option<ArrayView2<'_, C::F>>,
    scratch: &mut Array2<C::F>,
) {
    let u = cell.units();
    let Projection { mut xw, x } = inputs;
    // One buffer per call for what the gates' products see.
    let mut masked = rec_mask.map(|m| Array2::zeros(m.dim()));
    let steps = states.len_of(Axis(0)) - 1;
    let (n_xw, n_cache) = (xw.len_of(Axis(0)), cache.len_of(Axis(0)));
    for k in 0..steps {
        let (kx, kc) = (k % n_xw, k % n_cache);
        if let Some(x) = &x {
            cell.weights().times_k(
                &x.index_axis(Axis(0), k),
                &mut xw.index_axis_mut(Axis(0), kx),
            );
        }
        let (done, mut todo) = states.view_mut().split_at(Axis(0), k + 1);
        let prev = done.index_axis(Axis(0), k);
        let mut next = todo.index_axis_mut(Axis(0), 0);
        match (&mut masked, &rec_mask) {
            (Some(buf), Some(m)) => {
                mask_h(buf.view_mut(), prev.view(), m.view(), u);
                cell.step_dropped(
                    xw.index_axis(Axis(0), kx),
                    prev.view(),
                    buf.view(),
                    next.view_mut(),
                    cache.index_axis_mut(Axis(0), kc),
                    scratch,
                );
            }
            _ => cell.step(
                xw.index_axis(Axis(0), kx),
                prev.view(),
                next.view_mut(),
                cache.index_axis_mut(Axis(0), kc),
                scratch,
            ),
        }
        if let Some(m) = &mask {
            // Masked rows carry the previous state unchanged.
            for (bi, &keep) in m.row(k).iter().enumerate() {
                if !keep {
                    next.row_mut(bi).assign(&prev.row(bi));
                }
            }
        }
    }
}

/// `seen[:, k] = h⊙m[:, k]` for every gate block `k`: what each gate's recurrent product
/// sees under per-gate recurrent dropout (`h` the first `u` columns of `prev`).
pub(super) fn mask_h<F: Float>(
    mut seen: ArrayViewMut2<'_, F>,
    prev: ArrayView2<'_, F>,
    m: ArrayView2<'_, F>,
    u: usize,
) {
    let h = prev.slice(s![.., ..u]);
    for k in 0..m.ncols() / u {
        let cols = k * u..(k + 1) * u;
        let mut block = seen.slice_mut(s![.., cols.clone()]);
        block.assign(&h);
        block *= &m.slice(s![.., cols]);
    }
}

/// The gradient arriving at the layer's output, for some batch rows.
pub(super) enum OutGrad<'a, F> {
    /// `return_sequences`: `[b, T, u]`.
    Sequence(ArrayView3<'a, F>),
    /// Last step only: `[b, u]`.
    Last(ArrayView2<'a, F>),
}

impl<'a, F> OutGrad<'a, F> {
    /// The gradient of some batch rows.
    pub(super) fn rows(&self, r: Range<usize>) -> OutGrad<'a, F> {
        match self {
            OutGrad::Sequence(d) => OutGrad::Sequence((*d).slice_move(s![r, .., ..])),
            OutGrad::Last(d) => OutGrad::Last((*d).slice_move(s![r, ..])),
        }
    }
}

/// The backward loop's working views for some batch rows.
pub(super) struct BackwardBuffers<'a, F> {
    /// The recurrent dropout masks `[b, G·u]`, if any.
    pub(super) rec_mask: Option<ArrayView2<'a, F>>,
    pub(super) d_xw: ArrayViewMut3<'a, F>,
    pub(super) d_rw: ArrayViewMut3<'a, F>,
    /// Per batch row, `d_xw` summed over the steps `[b, G]` (the bias gradient's rows,
    /// added while each step's block is still in cache, in an order no split of the batch
    /// changes).
    pub(super) sum_xw: ArrayViewMut2<'a, F>,
    /// Per batch row, `d_rw` summed over the steps `[b, Rw]` (no columns unless `sep`).
    pub(super) sum_rw: ArrayViewMut2<'a, F>,
    pub(super) d_state: ArrayViewMut2<'a, F>,
    pub(super) d_prev: ArrayViewMut2<'a, F>,
    pub(super) scratch: &'a mut Array2<F>,
}

/// Backpropagation through time over some batch rows: writes the pre-activation gradients
/// `d_xw` (and `d_rw`) of every step. `bufs.d_state` comes in holding dL/d(final state)
/// (zeros when the final state is not used); when `t` is even it leaves holding dL/d
/// (initial state), else `bufs.d_prev` does. `quiet` `[T, b]` marks the outputs that are a
/// constant zero (masked steps: all of them with `zero_output_for_mask`, else those before
/// the first real step). `bufs.sum_xw` and `bufs.sum_rw` leave holding each row's
/// gradients summed over the steps (last step first). Without `need_init` the gradient of
/// the initial state is not wanted, and the first step may skip its recurrent product
/// (what the buffer then holds is unspecified). Allocation-free.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward_loop<C: Cell>(
    cell: &C,
    states: ArrayView3<'_, C::F>,
    cache: ArrayView3<'_, C::F>,
    dy: OutGrad<'_, C::F>,
    mask: Option<ArrayView2<'_, bool>>,
    quiet: Option<ArrayView2<'_, bool>>,
    bufs: BackwardBuffers<'_, C::F>,
    need_init: bool,
) {
    let BackwardBuffers {
        rec_mask,
        mut d_xw,
        mut d_rw,
        mut sum_xw,
        mut sum_rw,
        mut d_state,
        mut d_prev,
        scratch,
    } = bufs;
    sum_xw.fill(C::F::zero());
    sum_rw.fill(C::F::zero());
    let t = cache.len_of(Axis(0));
    let u = cell.units();
    let sep = cell.step_grad_width() > 0;
    let mut masked = rec_mask.map(|m| Array2::zeros(m.dim()));
    for k in (0..t).rev() {
        // This step's output gradient joins the state gradient (h part).
        let out_grad = match &dy {
            OutGrad::Sequence(d) => Some(d.index_axis(Axis(1), k)),
            OutGrad::Last(d) if k == t - 1 => Some(d.view()),
            OutGrad::Last(_) => None,
        };
        if let Some(d) = out_grad {
            match &quiet {
                // Outputs that are a constant zero (masked steps) take no gradient.
                Some(q) => {
                    for (bi, _) in q.row(k).iter().enumerate().filter(|&(_, &z)| !z) {
                        let mut row = d_state.slice_mut(s![bi, ..u]);
                        row += &d.row(bi);
                    }
                }
                None => {
                    let mut dh = d_state.slice_mut(s![.., ..u]);
                    dh += &d;
                }
            }
        }
        let step = BackwardStep {
            prev: states.index_axis(Axis(0), k),
            next: states.index_axis(Axis(0), k + 1),
            cache: cache.index_axis(Axis(0), k),
            d_state: d_state.view(),
            d_xw: d_xw.index_axis_mut(Axis(0), k),
            d_rw: d_rw.index_axis_mut(Axis(0), k), // zero columns unless `sep`
            d_prev: d_prev.view_mut(),
            need_prev: need_init || k > 0,
        };
        match (&mut masked, &rec_mask) {
            (Some(buf), Some(m)) => {
                mask_h(buf.view_mut(), states.index_axis(Axis(0), k), m.view(), u);
                cell.step_backward_dropped(step, buf.view(), m.view(), scratch);
            }
            _ => cell.step_backward(step, scratch),
        }
        if let Some(m) = &mask {
            // A masked step copied its state: the gradient passes through untouched
            // and nothing reaches the cell's input or weights.
            for (bi, _) in m.row(k).iter().enumerate().filter(|&(_, &keep)| !keep) {
                d_prev.row_mut(bi).assign(&d_state.row(bi));
                d_xw.slice_mut(s![k, bi, ..]).fill(C::F::zero());
                if sep {
                    d_rw.slice_mut(s![k, bi, ..]).fill(C::F::zero());
                }
            }
        }
        add_rows_wide(sl(d_xw.index_axis(Axis(0), k)), sl_mut(sum_xw.view_mut()));
        if sep {
            add_rows_wide(sl(d_rw.index_axis(Axis(0), k)), sl_mut(sum_rw.view_mut()));
        }
        std::mem::swap(&mut d_state, &mut d_prev);
    }
}
