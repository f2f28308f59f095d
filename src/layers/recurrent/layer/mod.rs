//! [`Recurrent<C>`]: a cell run over time as a layer, with `return_sequences`,
//! `go_backwards` and masking.

use super::cell::Cell;
use super::cell::SequenceGrads;
use super::config::{RecurrentLayerConfig, SequenceConfig, SequenceOptions, seq_input};
use super::state::{Carried, carried_initial, gather_states, scatter_states};
use super::time_loop::{BackwardBuffers, OutGrad, Projection, backward_loop, forward_loop, mask_h};
use super::workspace::{
    Buffers, SpareBuffers, ensure_scratch, ensure2, ensure3, loop_threads, rows,
};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{MaskStream, StdRng};
use crate::layers::call::{self};
use crate::layers::{
    Dim, Layer, LayerSpec, Mask, Mode, OutputGrads, check_dy, check_mask, check_seq,
};
use crate::linalg::{PackedB, column_sums};
use crate::parallel;
use crate::param::{Module, Param};
use ndarray::{Array2, Array3, ArrayD, ArrayView2, Axis, Ix2, Ix3, IxDyn, s};
use ndarray_rand::rand::Rng;
use num_traits::{One, Zero};

mod stream;
mod wrapped;
pub use wrapped::RecurrentLayer;

/// A recurrent layer: one [`Cell`] run over time. [`SimpleRnn`](crate::layers::SimpleRnn),
/// [`Lstm`](crate::layers::Lstm) and [`Gru`](crate::layers::Gru) are this type with their cells.
///
/// # Shapes
/// `[batch, steps, input_dim]` → `[batch, units]`, or `[batch, steps, units]` with
/// `return_sequences` (in processing order, so reversed with `go_backwards`, as in Keras).
///
/// # Masking
/// At a masked step the state is carried unchanged and the output repeats the previous
/// output (zeros before the first real step), or is zero with `zero_output_for_mask`.
#[derive(Debug, Clone)]
pub struct Recurrent<C: Cell> {
    cell: C,
    /// The configuration the layer was built from, its name always set: the layer's one
    /// description, read by the loop and saved as it is.
    config: C::Config,
    buf: Buffers<C::F>,
    /// Buffers for inference through `&self`.
    spare: SpareBuffers<C::F>,
    /// The state carried between calls when `stateful`.
    carried: Carried<C::F>,
    /// The stream the dropout masks are drawn from (training passes only).
    masks: MaskStream,
    trained: bool,
    /// The last training pass ran from explicit initial states: backward returns their
    /// gradients.
    from_states: bool,
}

impl<C: Cell> Recurrent<C> {
    /// A layer running `cell` as `config` says (its name set).
    pub(crate) fn new(cell: C, config: C::Config, seed: u64) -> Self {
        Recurrent {
            cell,
            config,
            buf: Buffers::default(),
            spare: SpareBuffers::default(),
            carried: Carried::default(),
            masks: MaskStream::new(seed),
            trained: false,
            from_states: false,
        }
    }

    /// The cell.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    /// The configuration, with the layer's name.
    pub fn config(&self) -> &C::Config {
        &self.config
    }

    /// The sequence options of the configuration.
    fn cfg(&self) -> SequenceOptions {
        self.config.sequence()
    }

    fn lname(&self) -> &str {
        name_of(&self.config)
    }

    /// The loop's initial state `[batch, h | c]` from explicit states for input `x`.
    fn explicit_initial(&self, x: &ArrayD<C::F>, states: &[Array2<C::F>]) -> Result<Array2<C::F>> {
        let b = check_seq(self.lname(), x, self.cell.input_dim())?.dim().0;
        let (blocks, u) = (self.cell.state_blocks(), self.cell.units());
        let mut init = Array2::zeros((b, blocks * u));
        gather_states(self.lname(), states, blocks, u, b, true, init.view_mut())?;
        Ok(init)
    }

    /// The initial state of a call on `x` when `stateful` (checked against the carried
    /// batch size), `None` otherwise.
    fn carried_initial(&self, x: &ArrayD<C::F>) -> Result<Option<Array2<C::F>>> {
        self.initial_from(x, self.carried.get().as_ref())
    }

    /// [`Self::carried_initial`] from a carried state already read (under its lock).
    fn initial_from(
        &self,
        x: &ArrayD<C::F>,
        carried: Option<&Array2<C::F>>,
    ) -> Result<Option<Array2<C::F>>> {
        if !self.cfg().stateful {
            return Ok(None);
        }
        let b = check_seq(self.lname(), x, self.cell.input_dim())?.dim().0;
        let width = self.cell.state_width();
        carried_initial(self.lname(), carried, b, width).map(Some)
    }

    /// The forward pass over `buf`: the layer's own buffers (training, `&mut self`) or a
    /// call's (inference through `&self`). `keep`: keep every step's cache for a backward
    /// pass (training).
    #[allow(clippy::too_many_arguments)]
    fn run(
        cell: &C,
        config: &C::Config,
        buf: &mut Buffers<C::F>,
        x: &ArrayD<C::F>,
        mask: Option<&Mask>,
        init: Option<ArrayView2<'_, C::F>>,
        drop: Option<&mut StdRng>,
        keep: bool,
    ) -> Result<ArrayD<C::F>> {
        let (lname, config) = (name_of(config), config.sequence());
        let xv = check_seq(lname, x, cell.input_dim())?;
        let (b, t, f) = xv.dim();
        check_mask(lname, mask, b, t)?;
        let (g, sw, cw, u) = (
            cell.gate_width(),
            cell.state_width(),
            cell.cache_width(),
            cell.units(),
        );
        // Without `keep` (inference: no backward pass follows) each step's cache, and its
        // projection where the loop projects step by step, live only during the step: one
        // step's worth of buffer, reused, instead of a sequence's streamed through memory.
        let kept = if keep { t } else { 1 };
        // Inference without dropout, where the loop projects step by step, reads each
        // step's rows straight from `x` (the time-major copy below is for the backward
        // pass's whole-sequence products and for the dropout masks): no copy on the
        // calling thread, and each thread reads only its own rows.
        let direct = !keep && drop.is_none() && PackedB::<C::F>::available();
        ensure3(&mut buf.states, (t + 1, b, sw));
        ensure3(&mut buf.cache, (kept, b, cw));
        if !direct {
            ensure3(&mut buf.x, (t, b, f));
            // Inputs in processing order, time-major, so each step is one contiguous block.
            for k in 0..t {
                let ti = if config.go_backwards { t - 1 - k } else { k };
                buf.x
                    .index_axis_mut(Axis(0), k)
                    .assign(&xv.index_axis(Axis(1), ti));
            }
        }
        // Dropout (training only): masks per sample, fixed for the whole sequence. With
        // recurrent dropout Keras (`implementation=1`) draws one mask per gate, for the
        // inputs and for h_{t−1}; without it, one input mask shared by the gates.
        let keep = |rate: f64| C::F::c(1.0 / (1.0 - rate));
        let draw = |rng: &mut StdRng, rate: f64, cols: usize| {
            Array2::from_shape_simple_fn((b, cols), || {
                if rng.random::<f64>() < rate {
                    C::F::zero()
                } else {
                    keep(rate)
                }
            })
        };
        let gates = C::GATES;
        (buf.in_mask, buf.rec_mask) = match drop {
            Some(rng) => {
                let per = if config.recurrent_dropout > 0.0 {
                    gates
                } else {
                    1
                };
                (
                    (config.dropout > 0.0).then(|| draw(rng, config.dropout, per * f)),
                    (config.recurrent_dropout > 0.0)
                        .then(|| draw(rng, config.recurrent_dropout, gates * u)),
                )
            }
            None => (None, None),
        };
        let per_gate = buf.rec_mask.is_some();
        if per_gate {
            // Gate k's product sees x⊙d_k (or x when there is no input dropout).
            ensure2(&mut buf.x_gates, (t * b, gates * f));
            let x2 = rows(&buf.x);
            for k in 0..gates {
                let mut block = buf.x_gates.slice_mut(s![.., k * f..(k + 1) * f]);
                block.assign(&x2);
                if let Some(m) = &buf.in_mask {
                    let dk = m.slice(s![.., k * f..(k + 1) * f]);
                    // Rows are (step, sample) pairs: row i is sample i % b.
                    for (i, mut row) in block.rows_mut().into_iter().enumerate() {
                        row *= &dk.row(i % b);
                    }
                }
            }
        } else if let Some(m) = &buf.in_mask {
            for mut xk in buf.x.outer_iter_mut() {
                xk *= m;
            }
        }
        buf.mask = mask.map(|m| {
            Array2::from_shape_fn((t, b), |(k, bi)| {
                m[[bi, if config.go_backwards { t - 1 - k } else { k }]]
            })
        });
        // Outputs that are a constant zero: masked steps with `zero_output_for_mask`, else
        // the masked steps before a sample's first real step (Keras's "previous output"
        // starts at zero, whatever the initial state).
        buf.quiet = buf.mask.as_ref().map(|m| {
            let mut q = m.mapv(|keep| !keep);
            if !config.zero_output_for_mask {
                for mut col in q.columns_mut() {
                    let mut leading = true;
                    for z in col.iter_mut() {
                        leading &= *z;
                        *z = leading;
                    }
                }
            }
            q
        });

        // The input projection: step by step inside the loop where the packed kernel runs
        // (each step's projection is then still in cache when the step reads it), else of
        // all steps in one matrix product (one per gate block under per-gate masks).
        let per_step = !per_gate && PackedB::<C::F>::available();
        ensure3(&mut buf.xw, (if per_step { kept } else { t }, b, g));
        if !per_step {
            let (p, q, r) = buf.xw.dim();
            let mut xw2 = buf
                .xw
                .view_mut()
                .into_shape_with_order((p * q, r))
                .expect("standard layout");
            let kernel = cell.weights().kernel.v2();
            if per_gate {
                for k in 0..gates {
                    let cols = k * u..(k + 1) * u;
                    parallel::gemm(
                        C::F::one(),
                        &buf.x_gates.slice(s![.., k * f..(k + 1) * f]),
                        &kernel.slice(s![.., cols.clone()]),
                        C::F::zero(),
                        &mut xw2.slice_mut(s![.., cols]),
                    );
                }
            } else {
                parallel::gemm(C::F::one(), &rows(&buf.x), &kernel, C::F::zero(), &mut xw2);
            }
            if let Some(bias) = cell.weights().input_bias() {
                xw2 += &bias;
            }
        }

        // Batch rows are independent: large batches run their time loops on several
        // threads, each over its own rows of the same buffers.
        let fresh = !cell.weights().is_packed();
        buf.chunks = parallel::ranges(b, loop_threads(cell, b, t, fresh));
        let chunks = &buf.chunks;
        cell.prepare(false);
        ensure_scratch(&mut buf.scratch, chunks, g);
        match init {
            Some(h0) => buf.states.index_axis_mut(Axis(0), 0).assign(&h0),
            None => buf.states.index_axis_mut(Axis(0), 0).fill(C::F::zero()),
        }
        let tasks: Vec<_> = parallel::split_mut(buf.states.view_mut(), Axis(1), chunks)
            .into_iter()
            .zip(parallel::split_mut(buf.cache.view_mut(), Axis(1), chunks))
            .zip(buf.scratch.iter_mut())
            .zip(parallel::split_mut(buf.xw.view_mut(), Axis(1), chunks))
            .zip(chunks.iter().cloned())
            .collect();
        // The inputs `[T, B, F]` in processing order.
        let x = if direct {
            let by_step = xv.permuted_axes([1, 0, 2]);
            if config.go_backwards {
                by_step.slice_move(s![..;-1, .., ..])
            } else {
                by_step
            }
        } else {
            buf.x.view()
        };
        let (mask, rec_mask) = (&buf.mask, &buf.rec_mask);
        parallel::note_loop(chunks.len());
        parallel::run(tasks, |((((states, cache), scratch), xw), r)| {
            forward_loop(
                cell,
                Projection {
                    xw,
                    x: per_step.then(|| x.slice(s![.., r.clone(), ..])),
                },
                states,
                cache,
                mask.as_ref().map(|m| m.slice(s![.., r.clone()])),
                rec_mask.as_ref().map(|m| m.slice(s![r, ..])),
                scratch,
            )
        });

        let quiet = |k: usize, bi: usize| buf.quiet.as_ref().is_some_and(|q| q[[k, bi]]);
        let out = if config.return_sequences {
            let mut out = Array3::<C::F>::zeros((b, t, u));
            for k in 0..t {
                let h = buf.states.slice(s![k + 1, .., ..u]);
                out.index_axis_mut(Axis(1), k).assign(&h);
                for bi in (0..b).filter(|&bi| quiet(k, bi)) {
                    out.slice_mut(s![bi, k, ..]).fill(C::F::zero());
                }
            }
            out.into_dyn()
        } else {
            let mut out = buf.states.slice(s![t, .., ..u]).to_owned();
            for bi in (0..b).filter(|&bi| quiet(t - 1, bi)) {
                out.row_mut(bi).fill(C::F::zero());
            }
            out.into_dyn()
        };
        buf.out_shape = out.shape().to_vec();
        Ok(out)
    }

    /// Backward through the last training pass from `dy` and, when given, dL/d(final
    /// state) `[b, S]`; returns dL/dx and dL/d(initial state) `[b, S]`.
    fn run_backward(
        &mut self,
        dy: &ArrayD<C::F>,
        d_final: Option<ArrayView2<'_, C::F>>,
        need_init: bool,
        input_grads: bool,
    ) -> Result<InputAndStateGrads<C::F>> {
        if !self.trained {
            return Err(Error::NoCache {
                layer: self.lname().to_string(),
            });
        }
        check_dy(self.lname(), dy, &self.buf.out_shape)?;
        let (t, b, f) = self.buf.x.dim();
        let (g, sw) = (self.cell.gate_width(), self.cell.state_width());
        let rw = self.cell.step_grad_width();
        self.cell.prepare(true);
        let buf = &mut self.buf;
        ensure3(&mut buf.d_xw, (t, b, g));
        ensure3(&mut buf.d_rw, (t, b, rw));
        ensure2(&mut buf.sum_xw, (b, g));
        ensure2(&mut buf.sum_rw, (b, rw));
        ensure2(&mut buf.d_state, (b, sw));
        ensure2(&mut buf.d_prev, (b, sw));
        match d_final {
            Some(d) => buf.d_state.assign(&d),
            None => buf.d_state.fill(C::F::zero()),
        }

        let dy = if self.config.sequence().return_sequences {
            OutGrad::Sequence(
                dy.view()
                    .into_dimensionality::<Ix3>()
                    .expect("shape checked"),
            )
        } else {
            OutGrad::Last(
                dy.view()
                    .into_dimensionality::<Ix2>()
                    .expect("shape checked"),
            )
        };
        let chunks = &buf.chunks;
        ensure_scratch(&mut buf.scratch, chunks, g);
        let tasks: Vec<_> = parallel::split_mut(buf.d_xw.view_mut(), Axis(1), chunks)
            .into_iter()
            .zip(parallel::split_mut(buf.d_rw.view_mut(), Axis(1), chunks))
            .zip(parallel::split_mut(buf.sum_xw.view_mut(), Axis(0), chunks))
            .zip(parallel::split_mut(buf.sum_rw.view_mut(), Axis(0), chunks))
            .zip(parallel::split_mut(buf.d_state.view_mut(), Axis(0), chunks))
            .zip(parallel::split_mut(buf.d_prev.view_mut(), Axis(0), chunks))
            .zip(buf.scratch.iter_mut())
            .zip(chunks.iter().cloned())
            .collect();
        let (cell, states, cache, mask) = (&self.cell, &buf.states, &buf.cache, &buf.mask);
        let (rec_mask, quiet) = (&buf.rec_mask, &buf.quiet);
        parallel::note_loop(chunks.len());
        parallel::run(
            tasks,
            |(((((((d_xw, d_rw), sum_xw), sum_rw), d_state), d_prev), scratch), r)| {
                let dy = dy.rows(r.clone());
                backward_loop(
                    cell,
                    states.slice(s![.., r.clone(), ..]),
                    cache.slice(s![.., r.clone(), ..]),
                    dy,
                    mask.as_ref().map(|m| m.slice(s![.., r.clone()])),
                    quiet.as_ref().map(|q| q.slice(s![.., r.clone()])),
                    BackwardBuffers {
                        rec_mask: rec_mask.as_ref().map(|m| m.slice(s![r, ..])),
                        d_xw,
                        d_rw,
                        sum_xw,
                        sum_rw,
                        d_state,
                        d_prev,
                        scratch,
                    },
                    need_init,
                )
            },
        );

        // The loop swapped its two state-gradient buffers once per step.
        let d_init = match (need_init, t % 2 == 0) {
            (false, _) => None,
            (true, true) => Some(buf.d_state.clone()),
            (true, false) => Some(buf.d_prev.clone()),
        };

        // Weight gradients with whole-sequence products, against the inputs and previous
        // states as the products saw them.
        let per_gate = buf.rec_mask.is_some();
        if let Some(m) = &buf.rec_mask {
            let u = self.cell.units();
            ensure3(&mut buf.masked_prev, (t, b, m.ncols()));
            for (seen, prev) in buf
                .masked_prev
                .outer_iter_mut()
                .zip(buf.states.outer_iter())
            {
                mask_h(seen, prev, m.view(), u);
            }
        }
        let prev_states = if per_gate {
            rows(&buf.masked_prev)
        } else {
            buf.states
                .slice(s![..t, .., ..])
                .into_shape_with_order((t * b, sw))
                .expect("standard layout")
        };
        let d_xw2 = rows(&buf.d_xw);
        // The bias gradients: each row's sum over the steps, then the rows in order.
        let xw_sums = column_sums(&buf.sum_xw.view());
        let (d_rw2, rw_sums) = if rw > 0 {
            (rows(&buf.d_rw), Some(column_sums(&buf.sum_rw.view())))
        } else {
            (d_xw2.view(), None)
        };
        self.cell.accumulate_grads(SequenceGrads {
            x: if per_gate {
                buf.x_gates.view()
            } else {
                rows(&buf.x)
            },
            prev: prev_states,
            cache: rows(&buf.cache),
            d_xw: d_xw2.view(),
            d_rw: d_rw2,
            d_xw_sums: xw_sums.view(),
            d_rw_sums: rw_sums.as_ref().unwrap_or(&xw_sums).view(),
            batch: b,
            per_gate,
        });

        if !input_grads {
            return Ok((ArrayD::zeros(IxDyn(&[0])), d_init));
        }
        // dL/dx of all steps: one product (one per gate, under its mask, with per-gate
        // masks), then back to [batch, steps, features].
        let kernel = self.cell.weights().kernel.v2();
        let mut dxp = Array2::<C::F>::zeros((t * b, f));
        if per_gate {
            let u = self.cell.units();
            let mut part = Array2::<C::F>::zeros((t * b, f));
            for k in 0..C::GATES {
                parallel::gemm(
                    C::F::one(),
                    &d_xw2.slice(s![.., k * u..(k + 1) * u]),
                    &kernel.slice(s![.., k * u..(k + 1) * u]).t(),
                    C::F::zero(),
                    &mut part.view_mut(),
                );
                if let Some(m) = &buf.in_mask {
                    let dk = m.slice(s![.., k * f..(k + 1) * f]);
                    for mut step in part
                        .view_mut()
                        .into_shape_with_order((t, b, f))
                        .expect("sized above")
                        .outer_iter_mut()
                    {
                        step *= &dk;
                    }
                }
                dxp += &part;
            }
        } else {
            parallel::gemm(
                C::F::one(),
                &d_xw2,
                &kernel.t(),
                C::F::zero(),
                &mut dxp.view_mut(),
            );
        }
        let dxp = dxp.into_shape_with_order((t, b, f)).expect("sized above");
        let mut dx = Array3::<C::F>::zeros((b, t, f));
        for k in 0..t {
            let ti = if self.cfg().go_backwards {
                t - 1 - k
            } else {
                k
            };
            dx.index_axis_mut(Axis(1), ti)
                .assign(&dxp.index_axis(Axis(0), k));
        }
        if let (Some(m), false) = (&self.buf.in_mask, per_gate) {
            for mut dk in dx.axis_iter_mut(Axis(1)) {
                dk *= m;
            }
        }
        Ok((dx.into_dyn(), d_init))
    }
}

/// dL/dx and dL/d(initial state block) (when asked for).
type InputAndStateGrads<F> = (ArrayD<F>, Option<Array2<F>>);

/// The state after the last step of the last run, `[batch, h | c]`.
fn last_state<F: Float>(buf: &Buffers<F>) -> ArrayView2<'_, F> {
    let t = buf.states.len_of(Axis(0)) - 1;
    buf.states.index_axis(Axis(0), t)
}

/// The layer's name from its configuration.
fn name_of<L: RecurrentLayerConfig>(config: &L) -> &str {
    config.layer_name().unwrap_or(L::DEFAULT_NAME)
}

impl<C: Cell> Layer<C::F> for Recurrent<C> {
    fn set_name(&mut self, name: &str) {
        self.config.set_layer_name(Some(name.to_string()));
    }
    fn type_name(&self) -> &'static str {
        <C::Config as RecurrentLayerConfig>::TYPE_NAME
    }
    fn box_clone(&self) -> Box<dyn Layer<C::F>> {
        let mut c = self.clone();
        c.buf = Buffers::default();
        c.trained = false;
        Box::new(c)
    }
    fn spec(&self) -> Option<LayerSpec> {
        Some(self.config.clone().layer_spec())
    }
    fn describe(&self) -> String {
        let mut s = self.config.describe();
        if self.cfg().return_sequences {
            s.push_str(", return_sequences=True");
        }
        if self.cfg().go_backwards {
            s.push_str(", go_backwards=True");
        }
        s
    }
    call::layer_call!(C::F, state);
}

impl<C: Cell> call::Parts<C::F> for Recurrent<C> {
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        let (steps, f) = seq_input(self.lname(), input)?;
        if f != self.cell.input_dim() {
            return Err(Error::Features {
                layer: self.lname().to_string(),
                expected: self.cell.input_dim(),
                got: f,
            });
        }
        let u = Some(self.cell.units());
        Ok(if self.cfg().return_sequences {
            vec![steps, u]
        } else {
            vec![u]
        })
    }
    fn forward_x(
        &mut self,
        x: &ArrayD<C::F>,
        mask: Option<&Mask>,
        mode: Mode,
    ) -> Result<ArrayD<C::F>> {
        self.trained = false;
        self.from_states = false;
        let init = self.carried_initial(x)?;
        // Masks only in training; inference draws nothing and does not move the stream.
        let mut rng = (mode == Mode::Train).then(|| self.masks.current());
        let drop = rng.as_mut();
        let out = Self::run(
            &self.cell,
            &self.config,
            &mut self.buf,
            x,
            mask,
            init.as_ref().map(|s| s.view()),
            drop,
            mode == Mode::Train,
        )?;
        if mode == Mode::Train {
            self.masks.advance();
        }
        if init.is_some() {
            self.carried.set(Some(last_state(&self.buf).to_owned()));
        }
        self.trained = mode == Mode::Train;
        Ok(out)
    }
    fn infer_x(&self, x: &ArrayD<C::F>, mask: Option<&Mask>) -> Result<ArrayD<C::F>> {
        // A stateful call holds the slot from reading to writing it: concurrent calls each
        // advance the state once (in some order) instead of overwriting each other.
        let mut slot = self.cfg().stateful.then(|| self.carried.lock());
        let init = self.initial_from(x, slot.as_deref().and_then(Option::as_ref))?;
        self.spare.with(|buf| {
            let out = Self::run(
                &self.cell,
                &self.config,
                buf,
                x,
                mask,
                init.as_ref().map(|s| s.view()),
                None,
                false,
            )?;
            if let Some(slot) = slot.as_deref_mut() {
                *slot = Some(last_state(buf).to_owned());
            }
            Ok(out)
        })
    }
    fn infer_x_states(
        &self,
        x: &ArrayD<C::F>,
        mask: Option<&Mask>,
        states: &mut Vec<Array2<C::F>>,
    ) -> Result<ArrayD<C::F>> {
        let init = self.explicit_initial(x, states)?;
        self.spare.with(|buf| {
            let out = Self::run(
                &self.cell,
                &self.config,
                buf,
                x,
                mask,
                Some(init.view()),
                None,
                false,
            )?;
            scatter_states(
                last_state(buf),
                self.cell.state_blocks(),
                self.cell.units(),
                states,
            );
            Ok(out)
        })
    }
    fn forward_x_states(
        &mut self,
        x: &ArrayD<C::F>,
        mask: Option<&Mask>,
        mode: Mode,
        states: &mut Vec<Array2<C::F>>,
    ) -> Result<ArrayD<C::F>> {
        self.trained = false;
        self.from_states = false;
        let init = self.explicit_initial(x, states)?;
        let out = Self::run(
            &self.cell,
            &self.config,
            &mut self.buf,
            x,
            mask,
            Some(init.view()),
            (mode == Mode::Train).then(|| self.masks.current()).as_mut(),
            mode == Mode::Train,
        )?;
        if mode == Mode::Train {
            self.masks.advance();
        }
        scatter_states(
            last_state(&self.buf),
            self.cell.state_blocks(),
            self.cell.units(),
            states,
        );
        self.trained = mode == Mode::Train;
        self.from_states = true;
        Ok(out)
    }
    fn mask_x(&self, _x: &ArrayD<C::F>, mask: Option<&Mask>) -> Option<Mask> {
        if self.cfg().return_sequences {
            mask.cloned()
        } else {
            None
        }
    }
    fn backward_x(&mut self, dy: &ArrayD<C::F>) -> Result<ArrayD<C::F>> {
        self.run_backward(dy, None, false, true).map(|(dx, _)| dx)
    }
    fn backward_x_states(
        &mut self,
        g: &OutputGrads<'_, C::F>,
    ) -> Result<(ArrayD<C::F>, Vec<Array2<C::F>>)> {
        let (dy, d_states) = (g.dy, g.states);
        if d_states.is_empty() && !self.from_states {
            let (dx, _) = self.run_backward(dy, None, false, g.input_grads)?;
            return Ok((dx, Vec::new()));
        }
        let (blocks, u) = (self.cell.state_blocks(), self.cell.units());
        let d_final = if d_states.is_empty() {
            None
        } else {
            let b = self.buf.x.dim().1;
            let mut block = Array2::zeros((b, blocks * u));
            gather_states(
                self.lname(),
                d_states,
                blocks,
                u,
                b,
                false,
                block.view_mut(),
            )?;
            Some(block)
        };
        let d_final = d_final.as_ref().map(|d| d.view());
        let (dx, d_init) = self.run_backward(dy, d_final, true, g.input_grads)?;
        let d_init = d_init.expect("asked for");
        let mut d_states = Vec::new();
        scatter_states(d_init.view(), blocks, u, &mut d_states);
        Ok((dx, d_states))
    }
}

impl<C: Cell> Module<C::F> for Recurrent<C> {
    fn name(&self) -> &str {
        self.lname()
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<C::F>)) {
        self.cell.weights().visit(f);
        self.cell.visit_extra(f)
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<C::F>)) {
        self.cell.weights_mut().visit_mut(f);
        self.cell.visit_extra_mut(f)
    }
}
