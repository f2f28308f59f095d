//! Truncated backpropagation through time (notes 001): a long sequence is cut into windows
//! that each run forward from the state the previous window left, with one gradient step
//! per window, so memory and the cost of a step grow with the window, not the sequence.

use super::trainer::Trainer;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{Inputs, Mask};
use crate::model::{Model, ModelState};
use crate::train::optim::Optimizer;
use ndarray::{Array2, ArrayD, Axis, Slice};

/// Truncated BPTT with windows of `k1` steps, of which the last `k2` are trained (Williams
/// and Peng's TBPTT(k1, k2) with `k2 ≤ k1`; `k2 = k1` by default).
///
/// For each batch of sequences `x` `[batch, steps, features]` the states start at zero (so
/// they are reset per sequence, and per epoch for one long series); then window after
/// window: the first `k1 − k2` steps only move the states on (inference), the last `k2`
/// run forward from there, and their loss (against per-step targets
/// `[batch, steps, ...]`) is backpropagated to the start of those `k2` steps and applied by
/// one optimizer step. The states carried into the next window are the ones this window's
/// forward pass left, computed with the weights before the update: with `k1 = k2` = chunk
/// length this is exactly Keras's `train_on_batch` over consecutive chunks with a stateful
/// model. A last window shorter than `k1` is trained the same way. The epoch's loss is the
/// mean over the trained steps.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::TruncatedBptt;
/// use rnnkit::ndarray::Array3;
/// # fn main() -> Result<(), rnnkit::Error> {
/// // One long series (batch 1, 400 steps): predict the next value.
/// let s: Vec<f64> = (0..401).map(|t| (0.1 * t as f64).sin()).collect();
/// let x = Array3::from_shape_fn((1, 400, 1), |(_, t, _)| s[t]).into_dyn();
/// let y = Array3::from_shape_fn((1, 400, 1), |(_, t, _)| s[t + 1]).into_dyn();
/// let mut model = Sequential::<f64>::with_input_shape(vec![None, Some(1)])
///     .push(LstmConfig::new(8).return_sequences(true))?
///     .push(DenseConfig::new(1))?;
/// let mut trainer = Trainer::new(Adam::new(0.01), Loss::Mse)
///     .truncated_bptt(TruncatedBptt::new(50))
///     .epochs(3);
/// let history = trainer.fit(&mut model, (&x, &y))?; // 8 windows, 8 updates per epoch
/// assert!(history.loss()[2] < history.loss()[0]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncatedBptt {
    k1: usize,
    k2: usize,
}

impl TruncatedBptt {
    /// Windows of `k` steps, all trained (`k1 = k2 = k`).
    pub fn new(k: usize) -> Self {
        TruncatedBptt { k1: k, k2: k }
    }

    /// Trains only the last `k2` steps of each window (`k2 ≤ k1`).
    pub fn backprop_steps(mut self, k2: usize) -> Self {
        self.k2 = k2;
        self
    }

    /// Steps per window (`k1`).
    pub fn window(&self) -> usize {
        self.k1
    }

    /// Trained steps per window (`k2`).
    pub fn trained_steps(&self) -> usize {
        self.k2
    }

    fn check(&self) -> Result<()> {
        let bad = |reason: String| Error::Config {
            layer: "trainer".into(),
            field: "truncated_bptt",
            reason,
        };
        if self.k1 == 0 || self.k2 == 0 {
            return Err(bad(format!(
                "k1 and k2 must be positive, got k1 = {}, k2 = {}",
                self.k1, self.k2
            )));
        }
        if self.k2 > self.k1 {
            return Err(bad(format!(
                "k2 = {} is longer than the window k1 = {}: backpropagating past a window's \
                 start is not supported",
                self.k2, self.k1
            )));
        }
        Ok(())
    }
}

/// `a[.., r, ..]` along the time axis, owned.
fn steps<A: Clone, D: ndarray::Dimension>(
    a: &ndarray::Array<A, D>,
    r: std::ops::Range<usize>,
) -> ndarray::Array<A, D> {
    a.slice_axis(Axis(1), Slice::from(r)).to_owned()
}

impl<F: Float, O: Optimizer<F>> Trainer<F, O> {
    /// Trains with truncated backpropagation through time (see [`TruncatedBptt`]):
    /// [`Trainer::fit`] and its variants then cut each batch of sequences into windows,
    /// with one optimizer step per window. Needs per-step targets and a model that runs
    /// from explicit states ([`ModelState::forward_from`](crate::ModelState::forward_from)).
    pub fn truncated_bptt(mut self, t: TruncatedBptt) -> Self {
        self.tbptt = Some(t);
        self
    }

    /// The checks of a truncated-BPTT fit: the settings, per-step targets, and the data
    /// checks of a plain fit on the first window.
    pub(super) fn validate_windows(
        &mut self,
        model: &dyn Model<F>,
        x: &ArrayD<F>,
        y: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
        t: TruncatedBptt,
    ) -> Result<()> {
        t.check()?;
        if x.ndim() < 2 || y.ndim() < 2 || y.shape()[..2] != x.shape()[..2] || x.shape()[1] == 0 {
            return Err(Error::Data(format!(
                "truncated BPTT needs sequences x [samples, steps ≥ 1, ...] and per-step \
                 targets y [samples, steps, ...], got x {:?} and y {:?}",
                x.shape(),
                y.shape()
            )));
        }
        let r = 0..t.k1.min(x.shape()[1]);
        let sw = sample_weight.map(|w| self.window_weights(w, x.shape()[1], r.clone()));
        self.validate(
            model,
            &steps(x, r.clone()),
            &steps(y, r.clone()),
            mask.map(|m| steps(m, r.clone())).as_ref(),
            sw.as_ref(),
        )
    }

    /// The sample weights of a window: per-step weights `[samples, steps]` are cut, per-
    /// sample ones kept.
    fn window_weights(&self, w: &ArrayD<F>, t: usize, r: std::ops::Range<usize>) -> ArrayD<F> {
        if w.ndim() == 2 && w.shape()[1] == t && t > 1 {
            steps(w, r)
        } else {
            w.clone()
        }
    }

    /// One batch of sequences trained window by window; returns the mean loss over the
    /// trained steps and the metrics' (sum, count).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step_windows(
        &mut self,
        model: &mut dyn Model<F>,
        x: &ArrayD<F>,
        y: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
        at: (usize, usize),
        t: TruncatedBptt,
    ) -> Result<(f64, Vec<(f64, f64)>)> {
        let (b, len) = (x.shape()[0], x.shape()[1]);
        let mut states: Vec<Vec<Array2<F>>> = state_of(model)?.zero_states(b)?;
        let (mut loss, mut trained) = (0.0, 0usize);
        let mut metrics: Vec<(f64, f64)> = Vec::new();
        let mut start = 0;
        while start < len {
            let end = (start + t.k1).min(len);
            let from = end.saturating_sub(t.k2).max(start);
            if from > start {
                let r = start..from;
                let m = mask.map(|m| steps(m, r.clone()));
                let xs = steps(x, r);
                state_of(model)?.infer_from(Inputs::new(&xs).mask(m.as_ref()), &mut states)?;
            }
            let r = from..end;
            let m = mask.map(|m| steps(m, r.clone()));
            let w = sample_weight.map(|w| self.window_weights(w, len, r.clone()));
            let (l, ms) = self.step(
                model,
                &steps(x, r.clone()),
                &steps(y, r.clone()),
                m.as_ref(),
                w.as_ref(),
                at,
                Some(&mut states),
            )?;
            loss += l * r.len() as f64;
            trained += r.len();
            metrics.resize(ms.len(), (0.0, 0.0));
            for (acc, (s, c)) in metrics.iter_mut().zip(ms) {
                acc.0 += s;
                acc.1 += c;
            }
            start = end;
        }
        Ok((loss / trained.max(1) as f64, metrics))
    }
}

/// A model's [`ModelState`], or the error of a model that has none.
pub(super) fn state_of<F: Float>(model: &dyn Model<F>) -> Result<&dyn ModelState<F>> {
    model.state().ok_or_else(|| Error::Unsupported {
        layer: model.name().to_string(),
        reason: "this model type does not run from explicit states".into(),
    })
}
