//! The weights every cell has, and the recurrent kernel packed once per weight update for
//! the per-step products.

use crate::float::Float;
use crate::init::StdRng;
use crate::linalg::{PackedB, Plus, packed_mm, small, step_mm};
use crate::parallel;
use crate::param::Param;
use ndarray::{ArrayD, ArrayView1, ArrayView2, ArrayViewMut2, s};
use std::sync::{Mutex, OnceLock};

/// The weights every cell has, in Keras layout: `kernel` `[F, k*u]`, `recurrent_kernel`
/// `[u, k*u]` and an optional `bias` (`[k*u]`, or `[2, k*u]` for GRU with `reset_after`).
///
/// Opaque outside rnnkit: a layer's weights are read and written through
/// [`Module::visit_params`](crate::Module::visit_params) and
/// [`Module::set_weights`](crate::Module::set_weights).
#[derive(Clone, Debug)]
pub struct CellWeights<F: Float> {
    pub(crate) kernel: Param<F>,
    pub(crate) recurrent_kernel: Param<F>,
    pub(crate) bias: Option<Param<F>>,
    /// The recurrent kernel packed for the per-step products of forward passes, made on
    /// first use after each weight update (every mutable visit of the weights clears it).
    /// A `OnceLock`, so passes through `&self` on several threads share one packing.
    packed_r: OnceLock<PackedB<F>>,
    /// The same for `Rᵀ`, used by backward passes.
    packed_rt: OnceLock<PackedB<F>>,
    /// The input kernel packed for the per-step input projections ([`CellWeights::times_k`]).
    packed_k: OnceLock<PackedB<F>>,
    /// The buffers of the packings the last weight update cleared, reused by the next
    /// ones (a training step then neither allocates nor zero-fills them).
    spare: Spare<F>,
    /// Buffers of the small weight-gradient products.
    small: Vec<small::Scratch<F>>,
}

/// Buffers to reuse; a clone starts with none.
#[derive(Debug, Default)]
struct Spare<F>(Mutex<Vec<Vec<F>>>);

/// Packing buffers of fewer than [`ROTATE_BELOW`] values rotate through [`ROTATE`] spares
/// more than a packing needs, so a new packing is written into the buffer used longest
/// ago. The buffer a packing replaced was read by every thread of the last pass; writing
/// it at once first takes each of its lines back from the other cores' caches, which made
/// the packing of W2's 256 × 256 `R` three times slower on two threads than on one. One
/// rotated two steps back has mostly left those caches (W2 training 0.93–0.99 in 15 of
/// 18 alternated pairs, Zen 4 host; still 0.95 since each core packs its own rows of
/// `R`, 8 pairs). Larger weights (W5's `R`, 1 MiB) do not
/// rotate: the extra buffers would cost more memory than their packing costs time.
const ROTATE: usize = 2;
/// See [`ROTATE`].
const ROTATE_BELOW: usize = 1 << 18;

impl<F> Clone for Spare<F> {
    fn clone(&self) -> Self {
        Spare(Mutex::new(Vec::new()))
    }
}

impl<F> Spare<F> {
    /// The oldest of the smallest buffers holding `len` values (else the largest, which
    /// will grow); a new, empty one while fewer than [`ROTATE`] + 1 buffers of a small
    /// packing's size are kept.
    fn take(&self, len: usize) -> Vec<F> {
        let Ok(mut v) = self.0.lock() else {
            return Vec::new();
        };
        let fitting = v.iter().filter(|b| b.capacity() >= len).count();
        if len < ROTATE_BELOW && fitting <= ROTATE {
            return Vec::new(); // the rotation is not full yet: a new buffer joins it
        }
        let fit = |b: &Vec<F>| (b.capacity() < len, b.capacity().abs_diff(len));
        // The oldest of the best fits (buffers are kept in the order they were freed).
        let best = (0..v.len()).min_by_key(|&i| fit(&v[i]));
        best.map(|i| v.remove(i)).unwrap_or_default()
    }

    fn keep(&mut self, p: Option<PackedB<F>>) {
        if let (Some(p), Ok(v)) = (p, self.0.get_mut()) {
            v.push(p.into_buffer());
        }
    }
}

impl<F: Float> CellWeights<F> {
    /// Keras's default initialisers: glorot_uniform kernel, the recurrent kernel from
    /// `recurrent_init` (Keras's orthogonal over the whole `[u, k*u]` matrix by default),
    /// and the given bias.
    pub(crate) fn init(
        input_dim: usize,
        units: usize,
        gates: usize,
        bias: Option<ArrayD<F>>,
        recurrent_init: crate::init::Init,
        rng: &mut StdRng,
    ) -> Self {
        use crate::init::Init;
        let kernel = Init::GlorotUniform.sample::<F>(&[input_dim, gates * units], rng);
        let recurrent = recurrent_init.sample::<F>(&[units, gates * units], rng);
        CellWeights {
            kernel: Param::new(kernel),
            recurrent_kernel: Param::new(recurrent),
            bias: bias.map(Param::new),
            packed_r: OnceLock::new(),
            packed_rt: OnceLock::new(),
            packed_k: OnceLock::new(),
            spare: Spare::default(),
            small: Vec::new(),
        }
    }

    /// The recurrent kernel packed for the per-step products: `R` for a forward pass, `Rᵀ`
    /// for a backward one; packed on the first call after a weight update, then reused.
    /// (Nothing is packed where the packed kernel does not run: a CPU without AVX2 and FMA.)
    pub(crate) fn prepare(&self, backward: bool) -> &PackedB<F> {
        let (once, transposed) = if backward {
            (&self.packed_rt, true)
        } else {
            (&self.packed_r, false)
        };
        once.get_or_init(|| {
            let r = self.recurrent_kernel.v2();
            let r = if transposed { r.t() } else { r };
            let len = PackedB::<F>::len_for(r.nrows(), r.ncols());
            PackedB::packed(&r, transposed, self.spare.take(len))
        })
    }

    /// Whether `R` is packed for forward passes already: `false` after a weight update,
    /// when the weights are new to every core's cache.
    pub(crate) fn is_packed(&self) -> bool {
        self.packed_r.get().is_some()
    }

    /// `c = x·K + b`, the input projection of one step with the input part of the bias.
    /// Where the packed kernel runs the loop projects each step just before the step (so
    /// the projection is still in cache when the step reads it, rather than written for the
    /// whole sequence and read back from memory); `K` is packed once per weight update.
    pub(crate) fn times_k(&self, x: &ArrayView2<'_, F>, c: &mut ArrayViewMut2<'_, F>) {
        let packed = self.packed_k.get_or_init(|| {
            let k = self.kernel.v2();
            let len = PackedB::<F>::len_for(k.nrows(), k.ncols());
            PackedB::packed(&k, false, self.spare.take(len))
        });
        // The bias is added as the product is stored (the bits of copying it into `c` and
        // accumulating, without writing `c` twice): this runs every step.
        let plus = match self.input_bias() {
            Some(b) => match b.to_slice() {
                Some(row) => Plus::Row(row),
                None => {
                    c.assign(&b);
                    Plus::C
                }
            },
            None => Plus::Nothing,
        };
        packed_mm(x, &self.kernel.v2(), packed, false, plus, c);
    }

    /// `c = a·R + beta·c`, the recurrent product of one step.
    pub(crate) fn times_r(&self, a: &ArrayView2<'_, F>, beta: F, c: &mut ArrayViewMut2<'_, F>) {
        let packed = self.prepare(false);
        packed_mm(
            a,
            &self.recurrent_kernel.v2(),
            packed,
            false,
            Plus::beta(beta),
            c,
        );
    }

    /// `c = a·Rᵀ + beta·c`, the recurrent product of one backward step.
    pub(crate) fn times_rt(&self, a: &ArrayView2<'_, F>, beta: F, c: &mut ArrayViewMut2<'_, F>) {
        packed_mm(
            a,
            &self.recurrent_kernel.v2().t(),
            self.prepare(true),
            true,
            Plus::beta(beta),
            c,
        );
    }

    /// Number of units (rows of the recurrent kernel).
    pub(crate) fn units(&self) -> usize {
        self.recurrent_kernel.value.shape()[0]
    }

    /// Input features (rows of the kernel).
    pub(crate) fn input_dim(&self) -> usize {
        self.kernel.value.shape()[0]
    }

    /// The part of the bias added to the input projection.
    pub(crate) fn input_bias(&self) -> Option<ArrayView1<'_, F>> {
        self.bias.as_ref().map(|b| {
            if b.value.ndim() == 2 {
                b.value
                    .slice(s![0, ..])
                    .into_dimensionality()
                    .expect("2-D bias")
            } else {
                b.v1()
            }
        })
    }

    /// `c[:, k] = seen[:, k]·R[:, k]` for the first `n` gate blocks of `u` columns: the
    /// recurrent products under Keras's per-gate recurrent dropout, where gate `k` sees
    /// `h_{t−1}⊙m_k` (block `k` of `seen`). Allocation-free.
    pub(crate) fn times_r_gates(
        &self,
        seen: &ArrayView2<'_, F>,
        n: usize,
        c: &mut ArrayViewMut2<'_, F>,
    ) {
        let (u, r) = (self.units(), self.recurrent_kernel.v2());
        for k in 0..n {
            let cols = k * u..(k + 1) * u;
            step_mm(
                &seen.slice(s![.., cols.clone()]),
                &r.slice(s![.., cols.clone()]),
                F::zero(),
                &mut c.slice_mut(s![.., cols]),
            );
        }
    }

    /// The backward of [`CellWeights::times_r_gates`]: `out += Σ_k (d[:, k]·R[:, k]ᵀ)⊙m[:, k]`
    /// over the first `n` gate blocks, the gradient reaching `h_{t−1}` through the masked
    /// products. `scratch` (at least `[B, u]`) is overwritten. Allocation-free.
    pub(crate) fn times_rt_gates_masked(
        &self,
        d: &ArrayView2<'_, F>,
        mask: &ArrayView2<'_, F>,
        n: usize,
        scratch: &mut ArrayViewMut2<'_, F>,
        out: &mut ArrayViewMut2<'_, F>,
    ) {
        let (u, r) = (self.units(), self.recurrent_kernel.v2());
        let mut part = scratch.slice_mut(s![.., ..u]);
        for k in 0..n {
            let cols = k * u..(k + 1) * u;
            step_mm(
                &d.slice(s![.., cols.clone()]),
                &r.slice(s![.., cols.clone()]).t(),
                F::zero(),
                &mut part,
            );
            part *= &mask.slice(s![.., cols]);
            *out += &part;
        }
    }

    /// Whole-sequence weight gradients: `dK += Xᵀ·d_xw`, `dR += H_prevᵀ·d_rw` (over the
    /// first `units` state columns, for the first `rec_cols` columns of R), and the bias:
    /// `xw_sums`, the column sums of `d_xw` (and `rw_sums`, those of `d_rw`, into the
    /// recurrent row of a `[2, k*u]` bias).
    ///
    /// With `per_gate` (recurrent dropout, see [`SequenceGrads`](super::SequenceGrads)) `x`
    /// is `[N, G·F]` and `prev` `[N, G·u]`, one block per gate, each gate's block against
    /// its own columns of the gradients.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn accumulate(
        &mut self,
        x: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        [d_xw, d_rw]: [ArrayView2<'_, F>; 2],
        [xw_sums, rw_sums]: [ArrayView1<'_, F>; 2],
        units: usize,
        rec_cols: usize,
        per_gate: bool,
    ) {
        if per_gate {
            let (fi, gates) = (self.input_dim(), d_xw.ncols() / units);
            let mut dk = self.kernel.g2();
            for k in 0..gates {
                let cols = k * units..(k + 1) * units;
                parallel::gemm(
                    F::one(),
                    &x.slice(s![.., k * fi..(k + 1) * fi]).t(),
                    &d_xw.slice(s![.., cols.clone()]),
                    F::one(),
                    &mut dk.slice_mut(s![.., cols]),
                );
            }
            let mut dr = self.recurrent_kernel.g2();
            for k in 0..rec_cols / units {
                let cols = k * units..(k + 1) * units;
                parallel::gemm(
                    F::one(),
                    &prev.slice(s![.., cols.clone()]).t(),
                    &d_rw.slice(s![.., cols.clone()]),
                    F::one(),
                    &mut dr.slice_mut(s![.., cols]),
                );
            }
        } else {
            // Rows of zero states (the first step's from a zero initial state) add nothing
            // to `dR`.
            let h_prev = prev.slice(s![.., ..units]);
            let skip = leading_zero_rows(&h_prev);
            let (dk, dr) = (self.kernel.g2(), self.recurrent_kernel.g2());
            let dr_used = dr.slice_move(s![.., ..rec_cols]);
            // LSTM's and SimpleRNN's `d_rw` is `d_xw` itself: one packing can serve both
            // products, unless the rows `dR` skips are many.
            let shared = d_rw.as_ptr() == d_xw.as_ptr()
                && d_rw.strides() == d_xw.strides()
                && d_rw.raw_dim() == d_xw.raw_dim()
                && rec_cols == d_xw.ncols()
                && skip * 8 <= d_xw.nrows();
            let (rows, n) = d_xw.dim();
            let (h, d) = (
                h_prev.slice(s![skip.., ..]),
                d_rw.slice(s![skip.., ..rec_cols]),
            );
            match small::plan::<F>(rows, units.max(x.ncols()), n, shared) {
                // The gradients packed once per thread, the packed kernel reading `Xᵀ` and
                // `Hᵀ` in place.
                Some(threads) if shared => {
                    let pairs = &mut [(x, dk), (h_prev, dr_used)];
                    small::at_b_split(&d_xw, pairs, &mut self.small, threads);
                }
                Some(threads) => {
                    let scratch = &mut self.small;
                    small::at_b_split(&d_xw, &mut [(x, dk)], scratch, threads);
                    small::at_b_split(&d, &mut [(h, dr_used)], scratch, threads);
                }
                None => {
                    let (mut dk, mut dr_used) = (dk, dr_used);
                    parallel::gemm(F::one(), &x.t(), &d_xw, F::one(), &mut dk);
                    parallel::gemm(F::one(), &h.t(), &d, F::one(), &mut dr_used);
                }
            }
        }
        if let Some(b) = &mut self.bias {
            if b.grad.ndim() == 2 {
                let mut g = b.g2();
                let mut g0 = g.row_mut(0);
                g0 += &xw_sums;
                let mut g1 = g.row_mut(1);
                g1 += &rw_sums;
            } else {
                let mut g = b.g1();
                g += &xw_sums;
            }
        }
    }

    pub(crate) fn visit(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        f("kernel", &self.kernel);
        f("recurrent_kernel", &self.recurrent_kernel);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }

    pub(crate) fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        self.spare.keep(self.packed_r.take());
        self.spare.keep(self.packed_rt.take());
        self.spare.keep(self.packed_k.take());
        f("kernel", &mut self.kernel);
        f("recurrent_kernel", &mut self.recurrent_kernel);
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }
}

/// How many leading rows of `a` are all zero (stops at the first non-zero entry).
fn leading_zero_rows<F: Float>(a: &ArrayView2<'_, F>) -> usize {
    a.rows()
        .into_iter()
        .take_while(|r| r.iter().all(|v| v.is_zero()))
        .count()
}
