//! The one time loop: [`Recurrent<C>`] runs any [`Cell`] over a sequence, forwards and
//! backwards through time, with `return_sequences`, `go_backwards` and masking.

use super::{check_dy, check_mask, check_seq, positive, Dim, Layer, LayerConfig, Mask, Mode};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::io::{LayerSpec, RecurrentSpec};
use crate::linalg::{packed_mm, PackedB};
use crate::parallel;
use crate::param::Param;
use ndarray::{
    s, Array2, Array3, ArrayD, ArrayView1, ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3,
    Axis, Ix2, Ix3,
};
use num_traits::{One, Zero};
use std::fmt::Debug;
use std::ops::Range;

/// One step of a recurrent cell, the only part in which SimpleRnn, Lstm and Gru differ.
///
/// The loop in [`Recurrent`] owns everything else. The contract:
/// - the input projection `xw = x_t·kernel + input_bias` of every step is computed by the
///   loop in one matrix product before the first step;
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
pub trait Cell: Clone + Debug + Send + Sync + 'static {
    /// Element type.
    type F: Float;

    /// Keras class name of the layer this cell makes (`"LSTM"`).
    const TYPE_NAME: &'static str;

    /// Number of hidden units.
    fn units(&self) -> usize;
    /// Input features.
    fn input_dim(&self) -> usize;
    /// Width of the input projection (`k * units`, k = 1, 4, 3).
    fn gate_width(&self) -> usize;
    /// Width of the state block (`units`, or `2 * units` for LSTM).
    fn state_width(&self) -> usize;
    /// Width of what one step keeps for backward.
    fn cache_width(&self) -> usize;
    /// True when the gradient w.r.t. the recurrent product differs from the gradient w.r.t.
    /// the input projection (GRU with `reset_after`).
    fn separate_recurrent_grad(&self) -> bool {
        false
    }

    /// The kernel `[input_dim, gate_width]`.
    fn kernel(&self) -> ArrayView2<'_, Self::F>;
    /// The bias added to the input projection, if any.
    fn input_bias(&self) -> Option<ArrayView1<'_, Self::F>>;

    /// One forward step: `xw` `[B, G]`, `prev` `[B, S]` → `next` `[B, S]`, `cache` `[B, C]`.
    fn step(
        &self,
        xw: ArrayView2<'_, Self::F>,
        prev: ArrayView2<'_, Self::F>,
        next: ArrayViewMut2<'_, Self::F>,
        cache: ArrayViewMut2<'_, Self::F>,
        scratch: &mut Array2<Self::F>,
    );

    /// One backward step. `next` is the state the step produced; `d_state` is dL/d(next),
    /// including this step's output gradient.
    #[allow(clippy::too_many_arguments)]
    fn step_backward(
        &self,
        prev: ArrayView2<'_, Self::F>,
        next: ArrayView2<'_, Self::F>,
        cache: ArrayView2<'_, Self::F>,
        d_state: ArrayView2<'_, Self::F>,
        d_xw: ArrayViewMut2<'_, Self::F>,
        d_rw: ArrayViewMut2<'_, Self::F>,
        d_prev: ArrayViewMut2<'_, Self::F>,
        scratch: &mut Array2<Self::F>,
    );

    /// Adds the weight gradients of the whole sequence, given (rows = steps × batch):
    /// inputs `x` `[N, F]`, previous states `prev` `[N, S]`, caches `[N, C]`, `d_xw` and
    /// `d_rw` `[N, G]` (`d_rw` is `d_xw` unless [`Cell::separate_recurrent_grad`]).
    fn accumulate_grads(
        &mut self,
        x: ArrayView2<'_, Self::F>,
        prev: ArrayView2<'_, Self::F>,
        cache: ArrayView2<'_, Self::F>,
        d_xw: ArrayView2<'_, Self::F>,
        d_rw: ArrayView2<'_, Self::F>,
    );

    /// Visits the weights in Keras order.
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<Self::F>));
    /// Visits the weights mutably in Keras order.
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<Self::F>));
    /// Keras-style config for display (`units=4, activation=tanh`).
    fn describe(&self) -> String;
    /// Called before each pass (`backward` false for forward, true for backward) with the
    /// weights fixed for the pass: cells pack their recurrent kernel here. The default does
    /// nothing.
    fn prepare(&mut self, backward: bool) {
        let _ = backward;
    }
    /// The cell's part of the saved configuration: units, activations, `use_bias` and the
    /// cell's own options (the sequence options are the layer's).
    fn spec(&self) -> RecurrentSpec;
}

/// The options every cell has, with Keras's defaults (`tanh`, `sigmoid`, bias on).
#[derive(Clone, Debug, PartialEq)]
pub struct CellOptions {
    /// Number of units.
    pub units: usize,
    /// Activation (Keras default `tanh`).
    pub activation: Activation,
    /// Gate activation of LSTM and GRU (Keras default `sigmoid`); SimpleRNN has none.
    pub recurrent_activation: Activation,
    /// Whether the layer has a bias.
    pub use_bias: bool,
}

impl CellOptions {
    pub(crate) fn new(units: usize) -> Self {
        CellOptions {
            units,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
        }
    }

    /// Rejects activations a cell cannot use.
    pub(crate) fn check(&self, layer: &str) -> Result<()> {
        self.activation.check_elementwise(layer, "activation")?;
        self.recurrent_activation
            .check_elementwise(layer, "recurrent_activation")
    }
}

/// Builds a cell: the cell-specific half of a recurrent layer's configuration.
pub trait CellConfig: Clone + Debug + Send + Sync + 'static {
    /// The cell type built for element type `F`.
    type Cell<F: Float>: Cell<F = F>;
    /// Keras's default layer name stem (`"lstm"`).
    const DEFAULT_NAME: &'static str;
    /// The options every cell has.
    fn options(&self) -> &CellOptions;
    /// The options every cell has, mutably.
    fn options_mut(&mut self) -> &mut CellOptions;
    /// Number of units.
    fn units(&self) -> usize {
        self.options().units
    }
    /// Builds the cell with Keras's default initialisers.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid options.
    fn init_cell<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> Result<Self::Cell<F>>;
}

/// Configuration of a recurrent layer: the cell's options plus the sequence options that
/// every recurrent layer shares. Use the aliases [`SimpleRnnConfig`](crate::SimpleRnnConfig),
/// [`LstmConfig`](crate::LstmConfig) and [`GruConfig`](crate::GruConfig).
///
/// | option | default | Keras |
/// |---|---|---|
/// | `return_sequences` | `false` | `return_sequences` |
/// | `go_backwards` | `false` | `go_backwards` |
/// | `zero_output_for_mask` | `false` | `zero_output_for_mask` |
/// | `name` | `simple_rnn`, `lstm`, `gru` (+ `_1`, `_2` in a model) | `name` |
#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentConfig<K> {
    /// The cell's own options.
    pub cell: K,
    /// Return the output of every step (`[batch, steps, units]`) instead of the last.
    pub return_sequences: bool,
    /// Process the sequence from the last step to the first (output in processing order).
    pub go_backwards: bool,
    /// Output zeros at masked steps instead of repeating the previous output.
    pub zero_output_for_mask: bool,
    /// Layer name.
    pub name: Option<String>,
}

impl<K: CellConfig> RecurrentConfig<K> {
    pub(crate) fn from_cell(cell: K) -> Self {
        RecurrentConfig {
            cell,
            return_sequences: false,
            go_backwards: false,
            zero_output_for_mask: false,
            name: None,
        }
    }

    /// Sets `return_sequences`.
    pub fn return_sequences(mut self, v: bool) -> Self {
        self.return_sequences = v;
        self
    }

    /// Sets `go_backwards`.
    pub fn go_backwards(mut self, v: bool) -> Self {
        self.go_backwards = v;
        self
    }

    /// Sets `zero_output_for_mask`.
    pub fn zero_output_for_mask(mut self, v: bool) -> Self {
        self.zero_output_for_mask = v;
        self
    }

    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Sets the activation (linear, tanh, sigmoid or relu).
    pub fn activation(mut self, a: Activation) -> Self {
        self.cell.options_mut().activation = a;
        self
    }

    /// Sets `use_bias`.
    pub fn use_bias(mut self, v: bool) -> Self {
        self.cell.options_mut().use_bias = v;
        self
    }

    /// Builds a typed layer for `input_dim` features.
    ///
    /// # Errors
    /// [`Error::Config`] for zero units, zero input features or an invalid activation.
    pub fn init<F: Float>(
        &self,
        input_dim: usize,
        rng: &mut StdRng,
    ) -> Result<Recurrent<K::Cell<F>>> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| K::DEFAULT_NAME.to_string());
        positive(&name, "units", self.cell.units())?;
        positive(&name, "input_dim", input_dim)?;
        self.cell.options().check(&name)?;
        let cell = self
            .cell
            .init_cell::<F>(input_dim, rng)
            .map_err(|e| rename(e, &name))?;
        Ok(Recurrent {
            cell,
            name,
            return_sequences: self.return_sequences,
            go_backwards: self.go_backwards,
            zero_output_for_mask: self.zero_output_for_mask,
            buf: Buffers::default(),
            trained: false,
        })
    }
}

/// Cells with gates (LSTM, GRU), which take a `recurrent_activation`.
pub trait GatedCellConfig: CellConfig {}

impl<K: GatedCellConfig> RecurrentConfig<K> {
    /// Sets the gate activation (Keras default `sigmoid`).
    pub fn recurrent_activation(mut self, a: Activation) -> Self {
        self.cell.options_mut().recurrent_activation = a;
        self
    }
}

fn rename(e: Error, name: &str) -> Error {
    match e {
        Error::Config { field, reason, .. } => Error::Config {
            layer: name.to_string(),
            field,
            reason,
        },
        other => other,
    }
}

/// Checks that a recurrent layer gets a `[steps, features]` input shape.
pub(crate) fn seq_input(layer: &str, input: &[Dim]) -> Result<(Dim, usize)> {
    match input {
        [steps, Some(f)] => Ok((*steps, *f)),
        _ => Err(Error::Incompatible {
            layer: layer.to_string(),
            previous: "its input".into(),
            reason: format!(
                "a recurrent layer needs 3-D input [batch, steps, features], got {}",
                super::format_shape(input)
            ),
        }),
    }
}

impl<F: Float, K: CellConfig> LayerConfig<F> for RecurrentConfig<K> {
    fn build(&self, input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| K::DEFAULT_NAME.to_string());
        let (_, f) = seq_input(&name, input)?;
        Ok(Box::new(self.init::<F>(f, rng)?))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        K::DEFAULT_NAME
    }
}

/// Sequence-sized buffers, allocated once and reused while the shapes stay the same.
#[derive(Debug, Clone)]
struct Buffers<F> {
    /// Inputs in processing order, time-major: `[T, B, F]`.
    x: Array3<F>,
    /// Input projections `[T, B, G]`.
    xw: Array3<F>,
    /// States `[T + 1, B, S]`; `states[0]` is the zero initial state.
    states: Array3<F>,
    /// Per-step cache `[T, B, C]`.
    cache: Array3<F>,
    /// Mask in processing order `[T, B]`, when a mask was given.
    mask: Option<Array2<bool>>,
    /// `[rows, G]` scratch for the per-step products, one per batch chunk.
    scratch: Vec<Array2<F>>,
    /// The batch chunks of the last forward (backward must use the same ones: a step's
    /// cache block is laid out per chunk).
    chunks: Vec<Range<usize>>,
    /// Backward: gradients of the pre-activations `[T, B, G]`.
    d_xw: Array3<F>,
    /// Backward: gradients w.r.t. the recurrent product (GRU reset_after only).
    d_rw: Array3<F>,
    /// Backward: dL/d state, current and previous `[B, S]`.
    d_state: Array2<F>,
    d_prev: Array2<F>,
    /// Output shape of the last forward.
    out_shape: Vec<usize>,
}

impl<F: Float> Default for Buffers<F> {
    fn default() -> Self {
        Buffers {
            x: Array3::zeros((0, 0, 0)),
            xw: Array3::zeros((0, 0, 0)),
            states: Array3::zeros((0, 0, 0)),
            cache: Array3::zeros((0, 0, 0)),
            mask: None,
            scratch: Vec::new(),
            chunks: Vec::new(),
            d_xw: Array3::zeros((0, 0, 0)),
            d_rw: Array3::zeros((0, 0, 0)),
            d_state: Array2::zeros((0, 0)),
            d_prev: Array2::zeros((0, 0)),
            out_shape: Vec::new(),
        }
    }
}

/// Reallocates `a` only when its shape changes.
fn ensure3<F: Float>(a: &mut Array3<F>, shape: (usize, usize, usize)) {
    if a.dim() != shape {
        *a = Array3::zeros(shape);
    }
}

fn ensure2<F: Float>(a: &mut Array2<F>, shape: (usize, usize)) {
    if a.dim() != shape {
        *a = Array2::zeros(shape);
    }
}

/// Views the first two axes of a standard-layout 3-D array as rows: `[A*B, C]`.
fn rows<F>(a: &Array3<F>) -> ArrayView2<'_, F> {
    let (p, q, r) = a.dim();
    a.view()
        .into_shape_with_order((p * q, r))
        .expect("standard layout")
}

/// How many threads the time loop of a `[b, t]` batch uses: one unless the per-step work
/// is large enough to pay for starting threads.
fn loop_threads<C: Cell>(cell: &C, b: usize, t: usize) -> usize {
    let work = b * t * cell.units() * cell.gate_width();
    if work < parallel::MIN_LOOP_FLOPS || b < 16 {
        1
    } else {
        parallel::num_threads().min(b / 8)
    }
}

/// One scratch block per chunk, reallocated only when the chunking changes.
fn ensure_scratch<F: Float>(scratch: &mut Vec<Array2<F>>, chunks: &[Range<usize>], g: usize) {
    scratch.resize_with(chunks.len(), || Array2::zeros((0, 0)));
    for (sc, r) in scratch.iter_mut().zip(chunks) {
        ensure2(sc, (r.len(), g));
    }
}

/// The forward time loop over some batch rows: `xw` `[T, b, G]`, `states` `[T + 1, b, S]`
/// (`states[0]` holds the initial state), `cache` `[T, b, C]`, `mask` `[T, b]`.
/// Allocation-free: every step works in the given views.
fn forward_loop<C: Cell>(
    cell: &C,
    xw: ArrayView3<'_, C::F>,
    mut states: ArrayViewMut3<'_, C::F>,
    mut cache: ArrayViewMut3<'_, C::F>,
    mask: Option<ArrayView2<'_, bool>>,
    scratch: &mut Array2<C::F>,
) {
    for k in 0..xw.len_of(Axis(0)) {
        let (done, mut todo) = states.view_mut().split_at(Axis(0), k + 1);
        let prev = done.index_axis(Axis(0), k);
        let mut next = todo.index_axis_mut(Axis(0), 0);
        cell.step(
            xw.index_axis(Axis(0), k),
            prev.view(),
            next.view_mut(),
            cache.index_axis_mut(Axis(0), k),
            scratch,
        );
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

/// The gradient arriving at the layer's output, for some batch rows.
enum OutGrad<'a, F> {
    /// `return_sequences`: `[b, T, u]`.
    Sequence(ArrayView3<'a, F>),
    /// Last step only: `[b, u]`.
    Last(ArrayView2<'a, F>),
}

impl<'a, F> OutGrad<'a, F> {
    /// The gradient of some batch rows.
    fn rows(&self, r: Range<usize>) -> OutGrad<'a, F> {
        match self {
            OutGrad::Sequence(d) => OutGrad::Sequence((*d).slice_move(s![r, .., ..])),
            OutGrad::Last(d) => OutGrad::Last((*d).slice_move(s![r, ..])),
        }
    }
}

/// The backward loop's working views for some batch rows.
struct BackwardBuffers<'a, F> {
    d_xw: ArrayViewMut3<'a, F>,
    d_rw: ArrayViewMut3<'a, F>,
    d_state: ArrayViewMut2<'a, F>,
    d_prev: ArrayViewMut2<'a, F>,
    scratch: &'a mut Array2<F>,
}

/// Backpropagation through time over some batch rows: writes the pre-activation gradients
/// `d_xw` (and `d_rw`) of every step. Allocation-free.
fn backward_loop<C: Cell>(
    cell: &C,
    states: ArrayView3<'_, C::F>,
    cache: ArrayView3<'_, C::F>,
    dy: OutGrad<'_, C::F>,
    mask: Option<ArrayView2<'_, bool>>,
    zero_masked: bool,
    bufs: BackwardBuffers<'_, C::F>,
) {
    let BackwardBuffers {
        mut d_xw,
        mut d_rw,
        mut d_state,
        mut d_prev,
        scratch,
    } = bufs;
    let t = cache.len_of(Axis(0));
    let u = cell.units();
    let sep = cell.separate_recurrent_grad();
    d_state.fill(C::F::zero());
    for k in (0..t).rev() {
        // This step's output gradient joins the state gradient (h part).
        let out_grad = match &dy {
            OutGrad::Sequence(d) => Some(d.index_axis(Axis(1), k)),
            OutGrad::Last(d) if k == t - 1 => Some(d.view()),
            OutGrad::Last(_) => None,
        };
        if let Some(d) = out_grad {
            match (&mask, zero_masked) {
                // Zeroed outputs at masked steps take no gradient.
                (Some(m), true) => {
                    for (bi, _) in m.row(k).iter().enumerate().filter(|(_, &keep)| keep) {
                        let mut row = d_state.slice_mut(s![bi, ..u]);
                        row += &d.row(bi);
                    }
                }
                _ => {
                    let mut dh = d_state.slice_mut(s![.., ..u]);
                    dh += &d;
                }
            }
        }
        cell.step_backward(
            states.index_axis(Axis(0), k),
            states.index_axis(Axis(0), k + 1),
            cache.index_axis(Axis(0), k),
            d_state.view(),
            d_xw.index_axis_mut(Axis(0), k),
            d_rw.index_axis_mut(Axis(0), k), // zero columns unless `sep`
            d_prev.view_mut(),
            scratch,
        );
        if let Some(m) = &mask {
            // A masked step copied its state: the gradient passes through untouched
            // and nothing reaches the cell's input or weights.
            for (bi, _) in m.row(k).iter().enumerate().filter(|(_, &keep)| !keep) {
                d_prev.row_mut(bi).assign(&d_state.row(bi));
                d_xw.slice_mut(s![k, bi, ..]).fill(C::F::zero());
                if sep {
                    d_rw.slice_mut(s![k, bi, ..]).fill(C::F::zero());
                }
            }
        }
        std::mem::swap(&mut d_state, &mut d_prev);
    }
}

/// A recurrent layer: one [`Cell`] run over time. [`SimpleRnn`](crate::SimpleRnn),
/// [`Lstm`](crate::Lstm) and [`Gru`](crate::Gru) are this type with their cells.
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
    name: String,
    return_sequences: bool,
    go_backwards: bool,
    zero_output_for_mask: bool,
    buf: Buffers<C::F>,
    trained: bool,
}

/// What [`Bidirectional`](crate::Bidirectional) needs of the layer it wraps.
pub trait RecurrentLayer<F: Float>: Layer<F> + Clone + 'static {
    /// Whether the layer returns every step.
    fn return_sequences(&self) -> bool;
    /// Whether the layer runs backwards in time.
    fn go_backwards(&self) -> bool;
    /// Sets `go_backwards`.
    fn set_go_backwards(&mut self, v: bool);
    /// Sets `zero_output_for_mask`.
    fn set_zero_output_for_mask(&mut self, v: bool);
    /// Output features per step.
    fn units(&self) -> usize;
    /// Input features.
    fn input_dim(&self) -> usize;
}

impl<C: Cell> Recurrent<C> {
    /// The cell.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    fn run(&mut self, x: &ArrayD<C::F>, mask: Option<&Mask>) -> Result<ArrayD<C::F>> {
        let xv = check_seq(&self.name, x, self.cell.input_dim())?;
        let (b, t, f) = xv.dim();
        check_mask(&self.name, mask, b, t)?;
        let (g, sw, cw, u) = (
            self.cell.gate_width(),
            self.cell.state_width(),
            self.cell.cache_width(),
            self.cell.units(),
        );
        let buf = &mut self.buf;
        ensure3(&mut buf.x, (t, b, f));
        ensure3(&mut buf.xw, (t, b, g));
        ensure3(&mut buf.states, (t + 1, b, sw));
        ensure3(&mut buf.cache, (t, b, cw));

        // Inputs in processing order, time-major, so each step is one contiguous block.
        for k in 0..t {
            let ti = if self.go_backwards { t - 1 - k } else { k };
            buf.x
                .index_axis_mut(Axis(0), k)
                .assign(&xv.index_axis(Axis(1), ti));
        }
        buf.mask = mask.map(|m| {
            Array2::from_shape_fn((t, b), |(k, bi)| {
                m[[bi, if self.go_backwards { t - 1 - k } else { k }]]
            })
        });

        // The input projection of all steps: one matrix product.
        {
            let x2 = rows(&buf.x);
            let (p, q, r) = buf.xw.dim();
            let mut xw2 = buf
                .xw
                .view_mut()
                .into_shape_with_order((p * q, r))
                .expect("standard layout");
            parallel::gemm(
                C::F::one(),
                &x2,
                &self.cell.kernel(),
                C::F::zero(),
                &mut xw2,
            );
            if let Some(bias) = self.cell.input_bias() {
                xw2 += &bias;
            }
        }

        // Batch rows are independent: large batches run their time loops on several
        // threads, each over its own rows of the same buffers.
        buf.chunks = parallel::ranges(b, loop_threads(&self.cell, b, t));
        let chunks = &buf.chunks;
        self.cell.prepare(false);
        ensure_scratch(&mut buf.scratch, chunks, g);
        buf.states.index_axis_mut(Axis(0), 0).fill(C::F::zero());
        let tasks: Vec<_> = parallel::split_mut(buf.states.view_mut(), Axis(1), chunks)
            .into_iter()
            .zip(parallel::split_mut(buf.cache.view_mut(), Axis(1), chunks))
            .zip(buf.scratch.iter_mut())
            .zip(chunks.iter().cloned())
            .collect();
        let (cell, xw, mask) = (&self.cell, &buf.xw, &buf.mask);
        parallel::run(tasks, |(((states, cache), scratch), r)| {
            forward_loop(
                cell,
                xw.slice(s![.., r.clone(), ..]),
                states,
                cache,
                mask.as_ref().map(|m| m.slice(s![.., r])),
                scratch,
            )
        });

        let zero_masked = self.zero_output_for_mask;
        let masked = |k: usize, bi: usize| buf.mask.as_ref().is_some_and(|m| !m[[k, bi]]);
        let out = if self.return_sequences {
            let mut out = Array3::<C::F>::zeros((b, t, u));
            for k in 0..t {
                let h = buf.states.slice(s![k + 1, .., ..u]);
                out.index_axis_mut(Axis(1), k).assign(&h);
                if zero_masked {
                    for bi in 0..b {
                        if masked(k, bi) {
                            out.slice_mut(s![bi, k, ..]).fill(C::F::zero());
                        }
                    }
                }
            }
            out.into_dyn()
        } else {
            let mut out = buf.states.slice(s![t, .., ..u]).to_owned();
            if zero_masked {
                for bi in 0..b {
                    if masked(t - 1, bi) {
                        out.row_mut(bi).fill(C::F::zero());
                    }
                }
            }
            out.into_dyn()
        };
        buf.out_shape = out.shape().to_vec();
        Ok(out)
    }

    fn run_backward(&mut self, dy: &ArrayD<C::F>) -> Result<ArrayD<C::F>> {
        if !self.trained {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        }
        check_dy(&self.name, dy, &self.buf.out_shape)?;
        let (t, b, f) = self.buf.x.dim();
        let (g, sw) = (self.cell.gate_width(), self.cell.state_width());
        let sep = self.cell.separate_recurrent_grad();
        self.cell.prepare(true);
        let buf = &mut self.buf;
        ensure3(&mut buf.d_xw, (t, b, g));
        ensure3(&mut buf.d_rw, (t, b, if sep { g } else { 0 }));
        ensure2(&mut buf.d_state, (b, sw));
        ensure2(&mut buf.d_prev, (b, sw));

        let dy = if self.return_sequences {
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
        let zero_masked = self.zero_output_for_mask;
        let chunks = &buf.chunks;
        ensure_scratch(&mut buf.scratch, chunks, g);
        let tasks: Vec<_> = parallel::split_mut(buf.d_xw.view_mut(), Axis(1), chunks)
            .into_iter()
            .zip(parallel::split_mut(buf.d_rw.view_mut(), Axis(1), chunks))
            .zip(parallel::split_mut(buf.d_state.view_mut(), Axis(0), chunks))
            .zip(parallel::split_mut(buf.d_prev.view_mut(), Axis(0), chunks))
            .zip(buf.scratch.iter_mut())
            .zip(chunks.iter().cloned())
            .collect();
        let (cell, states, cache, mask) = (&self.cell, &buf.states, &buf.cache, &buf.mask);
        parallel::run(
            tasks,
            |(((((d_xw, d_rw), d_state), d_prev), scratch), r)| {
                let dy = dy.rows(r.clone());
                backward_loop(
                    cell,
                    states.slice(s![.., r.clone(), ..]),
                    cache.slice(s![.., r.clone(), ..]),
                    dy,
                    mask.as_ref().map(|m| m.slice(s![.., r])),
                    zero_masked,
                    BackwardBuffers {
                        d_xw,
                        d_rw,
                        d_state,
                        d_prev,
                        scratch,
                    },
                )
            },
        );

        // Weight gradients with whole-sequence products.
        let prev_states = buf.states.slice(s![..t, .., ..]);
        let prev2 = prev_states
            .into_shape_with_order((t * b, sw))
            .expect("standard layout");
        let d_xw2 = rows(&buf.d_xw);
        let d_rw2 = if sep { rows(&buf.d_rw) } else { d_xw2.view() };
        self.cell
            .accumulate_grads(rows(&buf.x), prev2, rows(&buf.cache), d_xw2.view(), d_rw2);

        // dL/dx of all steps: one product, then back to [batch, steps, features].
        let mut dxp = Array2::<C::F>::zeros((t * b, f));
        parallel::gemm(
            C::F::one(),
            &d_xw2,
            &self.cell.kernel().t(),
            C::F::zero(),
            &mut dxp.view_mut(),
        );
        let dxp = dxp.into_shape_with_order((t, b, f)).expect("sized above");
        let mut dx = Array3::<C::F>::zeros((b, t, f));
        for k in 0..t {
            let ti = if self.go_backwards { t - 1 - k } else { k };
            dx.index_axis_mut(Axis(1), ti)
                .assign(&dxp.index_axis(Axis(0), k));
        }
        Ok(dx.into_dyn())
    }
}

impl<C: Cell> Layer<C::F> for Recurrent<C> {
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        C::TYPE_NAME
    }
    fn output_shape(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        let (steps, f) = seq_input(&self.name, input)?;
        if f != self.cell.input_dim() {
            return Err(Error::Features {
                layer: self.name.clone(),
                expected: self.cell.input_dim(),
                got: f,
            });
        }
        let u = Some(self.cell.units());
        Ok(if self.return_sequences {
            vec![steps, u]
        } else {
            vec![u]
        })
    }
    fn forward_masked(
        &mut self,
        x: &ArrayD<C::F>,
        mask: Option<&Mask>,
        mode: Mode,
    ) -> Result<ArrayD<C::F>> {
        self.trained = false;
        let out = self.run(x, mask)?;
        self.trained = mode == Mode::Train;
        Ok(out)
    }
    fn compute_mask(&self, _x: &ArrayD<C::F>, mask: Option<&Mask>) -> Option<Mask> {
        if self.return_sequences {
            mask.cloned()
        } else {
            None
        }
    }
    fn backward(&mut self, dy: &ArrayD<C::F>) -> Result<ArrayD<C::F>> {
        self.run_backward(dy)
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<C::F>)) {
        self.cell.visit_params(f)
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<C::F>)) {
        self.cell.visit_params_mut(f)
    }
    fn box_clone(&self) -> Box<dyn Layer<C::F>> {
        let mut c = self.clone();
        c.buf = Buffers::default();
        c.trained = false;
        Box::new(c)
    }
    fn spec(&self) -> Option<LayerSpec> {
        let mut s = self.cell.spec();
        s.name = Some(self.name.clone());
        s.return_sequences = self.return_sequences;
        s.go_backwards = self.go_backwards;
        s.zero_output_for_mask = self.zero_output_for_mask;
        LayerSpec::recurrent(self.type_name(), s)
    }
    fn describe(&self) -> String {
        let mut s = self.cell.describe();
        if self.return_sequences {
            s.push_str(", return_sequences=True");
        }
        if self.go_backwards {
            s.push_str(", go_backwards=True");
        }
        s
    }
}

impl<C: Cell> RecurrentLayer<C::F> for Recurrent<C> {
    fn return_sequences(&self) -> bool {
        self.return_sequences
    }
    fn go_backwards(&self) -> bool {
        self.go_backwards
    }
    fn set_go_backwards(&mut self, v: bool) {
        self.go_backwards = v;
        self.trained = false;
    }
    fn set_zero_output_for_mask(&mut self, v: bool) {
        self.zero_output_for_mask = v;
    }
    fn units(&self) -> usize {
        self.cell.units()
    }
    fn input_dim(&self) -> usize {
        self.cell.input_dim()
    }
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

/// The weights every cell has, in Keras layout: `kernel` `[F, k*u]`, `recurrent_kernel`
/// `[u, k*u]` and an optional `bias` (`[k*u]`, or `[2, k*u]` for GRU with `reset_after`).
#[derive(Clone, Debug)]
pub(crate) struct CellWeights<F: Float> {
    pub kernel: Param<F>,
    pub recurrent_kernel: Param<F>,
    pub bias: Option<Param<F>>,
    /// The recurrent kernel (or its transpose, in a backward pass) packed for the per-step
    /// products; invalidated whenever the weights are visited mutably.
    packed: PackedB<F>,
}

impl<F: Float> CellWeights<F> {
    /// Keras's default initialisers: glorot_uniform kernel, orthogonal recurrent kernel
    /// (over the whole `[u, k*u]` matrix), and the given bias.
    pub fn init(
        input_dim: usize,
        units: usize,
        gates: usize,
        bias: Option<ArrayD<F>>,
        rng: &mut StdRng,
    ) -> Self {
        use crate::init::Init;
        let kernel = Init::GlorotUniform.sample::<F>(&[input_dim, gates * units], rng);
        let recurrent = Init::Orthogonal.sample::<F>(&[units, gates * units], rng);
        CellWeights {
            kernel: Param::new(kernel),
            recurrent_kernel: Param::new(recurrent),
            bias: bias.map(Param::new),
            packed: PackedB::default(),
        }
    }

    /// Packs the recurrent kernel for the per-step products of the coming pass: `R` for a
    /// forward pass, `Rᵀ` for a backward one.
    /// (Nothing is packed where the packed kernel does not run: f64, or a CPU without AVX2.)
    pub fn prepare(&mut self, backward: bool) {
        let r = self.recurrent_kernel.v2();
        if backward {
            self.packed.pack(&r.t(), true);
        } else {
            self.packed.pack(&r, false);
        }
    }

    /// `c = a·R + beta·c`, the recurrent product of one step.
    pub fn times_r(&self, a: &ArrayView2<'_, F>, beta: F, c: &mut ArrayViewMut2<'_, F>) {
        packed_mm(a, &self.recurrent_kernel.v2(), &self.packed, false, beta, c);
    }

    /// `c = a·Rᵀ + beta·c`, the recurrent product of one backward step.
    pub fn times_rt(&self, a: &ArrayView2<'_, F>, beta: F, c: &mut ArrayViewMut2<'_, F>) {
        packed_mm(
            a,
            &self.recurrent_kernel.v2().t(),
            &self.packed,
            true,
            beta,
            c,
        );
    }

    /// The saved configuration every cell shares: units, activations and whether there is
    /// a bias (`recurrent_activation` only for gated cells).
    pub fn spec(
        &self,
        units: usize,
        activation: Activation,
        recurrent_activation: Option<Activation>,
    ) -> RecurrentSpec {
        RecurrentSpec {
            activation,
            recurrent_activation,
            use_bias: self.bias.is_some(),
            ..RecurrentSpec::new(units)
        }
    }

    /// The part of the bias added to the input projection.
    pub fn input_bias(&self) -> Option<ArrayView1<'_, F>> {
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

    /// Whole-sequence weight gradients: `dK += Xᵀ·d_xw`, `dR += H_prevᵀ·d_rw` (over the
    /// first `units` state columns, for the first `rec_cols` columns of R), and the bias:
    /// column sums of `d_xw` (and of `d_rw` into the recurrent row of a `[2, k*u]` bias).
    pub fn accumulate(
        &mut self,
        x: ArrayView2<'_, F>,
        prev: ArrayView2<'_, F>,
        d_xw: ArrayView2<'_, F>,
        d_rw: ArrayView2<'_, F>,
        units: usize,
        rec_cols: usize,
    ) {
        parallel::gemm(F::one(), &x.t(), &d_xw, F::one(), &mut self.kernel.g2());
        let h_prev = prev.slice(s![.., ..units]);
        let mut dr = self.recurrent_kernel.g2();
        parallel::gemm(
            F::one(),
            &h_prev.t(),
            &d_rw.slice(s![.., ..rec_cols]),
            F::one(),
            &mut dr.slice_mut(s![.., ..rec_cols]),
        );
        if let Some(b) = &mut self.bias {
            if b.grad.ndim() == 2 {
                let mut g = b.g2();
                let mut g0 = g.row_mut(0);
                g0 += &d_xw.sum_axis(Axis(0));
                let mut g1 = g.row_mut(1);
                g1 += &d_rw.sum_axis(Axis(0));
            } else {
                let mut g = b.g1();
                g += &d_xw.sum_axis(Axis(0));
            }
        }
    }

    pub fn visit(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        f("kernel", &self.kernel);
        f("recurrent_kernel", &self.recurrent_kernel);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }

    pub fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        self.packed.invalidate();
        f("kernel", &mut self.kernel);
        f("recurrent_kernel", &mut self.recurrent_kernel);
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }
}
