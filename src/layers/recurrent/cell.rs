//! The cell contract: what one step of SimpleRnn, Lstm or Gru must provide to the loop.

use super::config::RecurrentLayerConfig;
use super::weights::CellWeights;
use crate::float::Float;
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use std::fmt::Debug;

pub(crate) mod sealed {
    /// Only rnnkit's cells implement [`Cell`](super::Cell): the loop relies on the layout
    /// contract below, which the compiler cannot check.
    pub trait Sealed {}
}

/// One step of a recurrent cell, the only part in which SimpleRnn, Lstm and Gru differ.
///
/// The loop in [`Recurrent`](crate::layers::Recurrent) owns everything else. Sealed: only rnnkit's
/// cells implement it. The contract:
/// - the input projection `xw = x_t·kernel + input_bias` of every step is computed by the
///   loop (just before the step where the packed kernel runs, else for all steps in one
///   matrix product before the first);
/// - the state is one `[batch, state_width]` block whose first `units` columns are the
///   hidden state `h` (the output); LSTM appends `c`;
/// - `step` and `step_backward` never allocate: they get preallocated views and a scratch
///   buffer of shape `[batch, gate_width]` (batch = the rows of one chunk: large batches
///   are split across threads);
/// - a step's cache block `[batch, cache_width]` is the cell's own to lay out (the loop
///   gives backward the same chunks as forward); a cell that reads the cache in
///   [`Cell::accumulate_grads`] keeps it row-major;
/// - `step_backward` writes the gradient of the step's *pre-activations* (`d_xw`, and
///   `d_rw` when [`Cell::separate_recurrent_grad`]) and of the previous state; the weight
///   gradients are then accumulated for the whole sequence at once by
///   [`Cell::accumulate_grads`].
pub trait Cell: Clone + Debug + Send + Sync + 'static + sealed::Sealed {
    /// Element type.
    type F: Float;
    /// The configuration this cell is built from.
    type Config: RecurrentLayerConfig<Cell<Self::F> = Self>;

    /// Gate blocks in the input projection (1, 4, 3).
    const GATES: usize;
    /// State blocks of `units` columns (1, or 2 for LSTM's `[h | c]`).
    const STATE_BLOCKS: usize;

    /// The weights.
    fn weights(&self) -> &CellWeights<Self::F>;
    /// The weights, mutably.
    fn weights_mut(&mut self) -> &mut CellWeights<Self::F>;

    /// Width of what one step keeps for backward.
    fn cache_width(&self) -> usize;

    /// True when the gradient w.r.t. the recurrent product differs from the gradient w.r.t.
    /// the input projection (GRU with `reset_after`).
    fn separate_recurrent_grad(&self) -> bool {
        false
    }

    /// Columns of `d_rw`, what each backward step writes besides `d_xw`: the gate width
    /// when [`Cell::separate_recurrent_grad`], else 0 unless the cell keeps per-step terms
    /// of its own there (a learned leak, the gradient-flow regulariser's factor).
    fn step_grad_width(&self) -> usize {
        if self.separate_recurrent_grad() {
            self.gate_width()
        } else {
            0
        }
    }

    /// One forward step: `xw` `[B, G]`, `prev` `[B, S]` → `next` `[B, S]`, `cache` `[B, C]`.
    fn step(
        &self,
        xw: ArrayView2<'_, Self::F>,
        prev: ArrayView2<'_, Self::F>,
        next: ArrayViewMut2<'_, Self::F>,
        cache: ArrayViewMut2<'_, Self::F>,
        scratch: &mut Array2<Self::F>,
    );

    /// One backward step (see [`BackwardStep`]).
    fn step_backward(&self, s: BackwardStep<'_, Self::F>, scratch: &mut Array2<Self::F>);

    /// [`Cell::step`] under recurrent dropout, Keras's per-gate form: gate `k`'s recurrent
    /// product sees block `k` of `seen` `[B, G·u]` (`h_{t−1}⊙m_k`, one mask per gate, as
    /// Keras's `implementation=1` draws them), while the state's own update uses `prev`.
    /// The default steps on `seen`, right only for a one-gate cell whose state is `h`
    /// (SimpleRNN); LSTM and GRU override it.
    fn step_dropped(
        &self,
        xw: ArrayView2<'_, Self::F>,
        prev: ArrayView2<'_, Self::F>,
        seen: ArrayView2<'_, Self::F>,
        next: ArrayViewMut2<'_, Self::F>,
        cache: ArrayViewMut2<'_, Self::F>,
        scratch: &mut Array2<Self::F>,
    ) {
        let _ = prev;
        self.step(xw, seen, next, cache, scratch);
    }

    /// The backward of [`Cell::step_dropped`]: `s.prev` is the true previous state, `seen`
    /// what the products saw `[B, G·u]`, `mask` `[B, G·u]` the per-gate recurrent masks;
    /// writes `s.d_prev` with respect to the true state. The default (one gate, state `h`)
    /// backpropagates through the step on `seen` and multiplies the gradient by the mask.
    fn step_backward_dropped(
        &self,
        s: BackwardStep<'_, Self::F>,
        seen: ArrayView2<'_, Self::F>,
        mask: ArrayView2<'_, Self::F>,
        scratch: &mut Array2<Self::F>,
    ) {
        let u = self.units();
        let BackwardStep {
            next,
            cache,
            d_state,
            d_xw,
            d_rw,
            mut d_prev,
            need_prev,
            ..
        } = s;
        self.step_backward(
            BackwardStep {
                prev: seen,
                next,
                cache,
                d_state,
                d_xw,
                d_rw,
                d_prev: d_prev.view_mut(),
                need_prev,
            },
            scratch,
        );
        let mut dh = d_prev.slice_mut(ndarray::s![.., ..u]);
        dh *= &mask;
    }

    /// Adds the weight gradients of the whole sequence (see [`SequenceGrads`]). The default
    /// is `dK += Xᵀ·d_xw`, `dR += H_prevᵀ·d_rw`, and the bias from the column sums.
    fn accumulate_grads(&mut self, g: SequenceGrads<'_, Self::F>) {
        let (u, gw) = (self.units(), self.gate_width());
        self.weights_mut().accumulate(
            g.x,
            g.prev,
            [g.d_xw, g.d_rw],
            [g.d_xw_sums, g.d_rw_sums],
            u,
            gw,
            g.per_gate,
        );
    }

    /// Weights beyond the kernel, recurrent kernel and bias (a learned leak), visited after
    /// them.
    fn visit_extra(&self, f: &mut dyn FnMut(&str, &crate::param::Param<Self::F>)) {
        let _ = f;
    }

    /// [`Cell::visit_extra`], mutably.
    fn visit_extra_mut(&mut self, f: &mut dyn FnMut(&str, &mut crate::param::Param<Self::F>)) {
        let _ = f;
    }

    /// Called before each pass (`backward` false for forward, true for backward) with the
    /// weights fixed for the pass: the recurrent kernel is packed here, once per weight
    /// update (passes after the first reuse the packing).
    fn prepare(&self, backward: bool) {
        self.weights().prepare(backward);
    }

    /// Number of hidden units.
    fn units(&self) -> usize {
        self.weights().units()
    }
    /// Input features.
    fn input_dim(&self) -> usize {
        self.weights().input_dim()
    }
    /// Width of the input projection (`GATES * units`).
    fn gate_width(&self) -> usize {
        Self::GATES * self.units()
    }
    /// State blocks of `units` columns this cell carries ([`Cell::STATE_BLOCKS`] unless
    /// its options add some: a LeakyRNN's skip connection carries older states, a clockwork
    /// layer its clock).
    fn state_blocks(&self) -> usize {
        Self::STATE_BLOCKS
    }
    /// Width of the state block (`state_blocks() * units`).
    fn state_width(&self) -> usize {
        self.state_blocks() * self.units()
    }
}

/// What one backward step reads and writes, for some batch rows `B`.
#[derive(Debug)]
pub struct BackwardStep<'a, F> {
    /// The state before the step `[B, S]`.
    pub prev: ArrayView2<'a, F>,
    /// The state the step produced `[B, S]`.
    pub next: ArrayView2<'a, F>,
    /// The step's cache `[B, C]`.
    pub cache: ArrayView2<'a, F>,
    /// dL/d(next), including this step's output gradient `[B, S]`.
    pub d_state: ArrayView2<'a, F>,
    /// Written: dL/d(input projection) `[B, G]`.
    pub d_xw: ArrayViewMut2<'a, F>,
    /// Written when [`Cell::separate_recurrent_grad`]: dL/d(recurrent product) `[B, G]`
    /// (`[B, step_grad_width]`: whatever per-step terms the cell keeps).
    pub d_rw: ArrayViewMut2<'a, F>,
    /// Written: dL/d(prev) `[B, S]`.
    pub d_prev: ArrayViewMut2<'a, F>,
    /// Whether `d_prev` is wanted: `false` on the first step when nothing uses the
    /// gradient of the initial state, where a cell may skip its recurrent product and
    /// leave `d_prev` unspecified.
    pub need_prev: bool,
}

/// The whole sequence's rows (steps × batch) from which the weight gradients are formed.
#[derive(Debug)]
pub struct SequenceGrads<'a, F> {
    /// Inputs `[N, F]` (`[N, G·F]` when `per_gate`: gate `k`'s block is the input as its
    /// product saw it, under its own dropout mask).
    pub x: ArrayView2<'a, F>,
    /// Previous states `[N, S]` (`[N, G·u]` when `per_gate`: gate `k`'s block is
    /// `h_{t−1}⊙m_k`, what its recurrent product saw).
    pub prev: ArrayView2<'a, F>,
    /// Caches `[N, C]`.
    pub cache: ArrayView2<'a, F>,
    /// Pre-activation gradients `[N, G]`.
    pub d_xw: ArrayView2<'a, F>,
    /// Gradients w.r.t. the recurrent product `[N, G]` (`d_xw` when
    /// [`Cell::step_grad_width`] is 0; else what the backward steps wrote there).
    pub d_rw: ArrayView2<'a, F>,
    /// The column sums of `d_xw` `[G]` (the input bias's gradient), summed per batch row
    /// over the steps and then over the rows, an order no split of the batch over threads
    /// changes.
    pub d_xw_sums: ArrayView1<'a, F>,
    /// The column sums of `d_rw` `[G]`, the same way (`d_xw_sums` when `d_rw` is `d_xw`).
    pub d_rw_sums: ArrayView1<'a, F>,
    /// Batch rows (`N` = steps × batch).
    pub batch: usize,
    /// True under recurrent dropout: `x` and `prev` hold one block per gate.
    pub per_gate: bool,
}

/// Flat contiguous slice of a standard-layout view (all loop buffers are).
#[inline]
pub(crate) fn sl<'a, F>(v: ArrayView2<'a, F>) -> &'a [F] {
    v.to_slice().expect("invariant: contiguous step block")
}

/// Flat contiguous mutable slice of a standard-layout view.
#[inline]
pub(crate) fn sl_mut<'a, F>(v: ArrayViewMut2<'a, F>) -> &'a mut [F] {
    v.into_slice().expect("invariant: contiguous step block")
}
