//! Training models with several inputs or outputs (graph models): `fit_many`,
//! `evaluate_many`, `predict_many`, one loss over all outputs with optional per-output
//! weights (Keras's `loss_weights`).

use super::callbacks::Logs;
use super::logs::Running;
use super::optim::Optimizer;
use super::trainer::{History, Trainer};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::Mode;
use crate::model::Model;
use ndarray::{ArrayD, Axis};

impl<F: Float, O: Optimizer<F>> Trainer<F, O> {
    /// Weighs each output's loss in the total (Keras's `loss_weights`; default 1 each).
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// let t = Trainer::<f64, _>::new(Adam::default(), Loss::Mse).loss_weights(&[1.0, 0.5]);
    /// # let _ = t;
    /// ```
    pub fn loss_weights(mut self, weights: &[f64]) -> Self {
        self.loss_weights = Some(weights.to_vec());
        self
    }

    /// Checks data for a model with several inputs or outputs.
    fn check_many(
        &mut self,
        model: &dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
    ) -> Result<()> {
        let bad = |field: &'static str, reason: String| Error::Config {
            layer: "trainer".into(),
            field,
            reason,
        };
        if self.tbptt.is_some() {
            return Err(bad("truncated_bptt", "not available with fit_many".into()));
        }
        if self.class_weight.is_some() || self.validation_data.is_some() {
            return Err(bad(
                "class_weight",
                "class_weight and validation_data are for one input and output (fit); fit_many \
                 takes validation_split"
                    .into(),
            ));
        }
        if !self.metrics.is_empty() && model.output_count() > 1 {
            return Err(bad(
                "metrics",
                "metrics are computed for models with one output".into(),
            ));
        }
        if xs.len() != model.input_count() || ys.len() != model.output_count() {
            return Err(Error::Data(format!(
                "{} takes {} inputs and gives {} outputs; got {} input arrays and {} target arrays",
                model.name(),
                model.input_count(),
                model.output_count(),
                xs.len(),
                ys.len()
            )));
        }
        if let Some(w) = &self.loss_weights {
            if w.len() != ys.len() || w.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(bad(
                    "loss_weights",
                    format!("expected {} finite weights ≥ 0, got {w:?}", ys.len()),
                ));
            }
        }
        let n = xs[0].shape().first().copied().unwrap_or(0);
        for (what, arrays) in [("input", xs), ("target", ys)] {
            for (k, a) in arrays.iter().enumerate() {
                if a.ndim() == 0 || a.shape()[0] != n {
                    return Err(Error::Data(format!(
                        "{what} {k} has shape {:?}: every input and target needs the {n} samples of input 0",
                        a.shape()
                    )));
                }
                if let Some(i) = a.iter().position(|v| !v.is_finite()) {
                    return Err(Error::Data(format!(
                        "{what} {k} has a non-finite value at flat index {i}"
                    )));
                }
            }
        }
        if n == 0 {
            return Err(Error::Data("no samples".into()));
        }
        // The optimizer, batch size and validation split as `fit` checks them.
        self.optimizer.validate()?;
        if self.batch_size == 0 {
            return Err(bad(
                "batch_size",
                "expected a positive integer, got 0".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.validation_split) {
            return Err(bad(
                "validation_split",
                format!(
                    "expected a fraction in [0, 1), got {}",
                    self.validation_split
                ),
            ));
        }
        self.bind(model)
    }

    /// The total loss of a batch (and the metrics of a one-output model); in
    /// [`Mode::Train`] also the gradients.
    fn loss_and_grads_many(
        &self,
        model: &mut dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
        mode: Mode,
    ) -> Result<(f64, Vec<(f64, f64)>)> {
        let acts = model.output_activations();
        let fused: Vec<bool> = acts
            .iter()
            .map(|a| self.loss.fuses_with() == Some(*a))
            .collect();
        let outs = model.forward_many(xs, mode)?;
        let mut total = 0.0;
        let mut grads = Vec::with_capacity(outs.len());
        let mut metrics = Vec::new();
        for (k, (out, y)) in outs.iter().zip(ys).enumerate() {
            let w = self.loss_weights.as_ref().map_or(1.0, |w| w[k]);
            if k == 0 {
                metrics = self
                    .metrics
                    .iter()
                    .map(|m| m.sum_count(&out.output, y, out.mask.as_ref()))
                    .collect::<Result<Vec<_>>>()?;
            }
            let (l, g) = match (&out.logits, fused[k]) {
                (Some(z), true) => self
                    .loss
                    .compute_from_logits(z, y, out.mask.as_ref(), None)?,
                (None, true) => {
                    return Err(Error::Unsupported {
                        layer: model.name().to_string(),
                        reason: format!("output {k} reports a {} output but no logits", acts[k]),
                    })
                }
                _ => self.loss.compute(&out.output, y, out.mask.as_ref(), None)?,
            };
            total += w * l;
            grads.push(g.mapv(|v| v * F::c(w)));
        }
        if mode == Mode::Train {
            model.zero_grad();
            model.backward_many(&grads, &fused)?;
        }
        Ok((total, metrics))
    }

    /// One update from the rows `idx` (a training step of `fit_many`).
    fn step_many(
        &mut self,
        model: &mut dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
        at: (usize, usize),
    ) -> Result<(f64, Vec<(f64, f64)>)> {
        let (loss, metrics) = self.loss_and_grads_many(model, xs, ys, Mode::Train)?;
        self.apply_update(model, loss, at)?;
        Ok((loss, metrics))
    }

    /// Trains a model with several inputs or outputs (Keras's `fit(x=[...], y=[...])`):
    /// one array per input and per output, in the model's order; the loss is the trainer's
    /// on every output, summed with `loss_weights`. Epochs, batches, shuffling,
    /// `validation_split`, metrics (one output), callbacks and checkpoints as in
    /// [`Trainer::fit`]; masks come from the model (Embedding, Masking).
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::{Array2, Array3};
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// // y = the sum of a sequence's last step and a side input.
    /// let mut g = Graph::<f64>::new(0);
    /// let seq = g.input("seq", &[Some(4), Some(1)])?;
    /// let side = g.input("side", &[Some(1)])?;
    /// let h = g.apply(&GruConfig::new(8), seq)?;
    /// let both = g.merge(Merge::Concatenate { axis: -1 }, &[h, side])?;
    /// let y = g.apply(&DenseConfig::new(1), both)?;
    /// let mut model = g.build(&[seq, side], &[y])?;
    /// let xs = vec![
    ///     Array3::from_shape_fn((64, 4, 1), |(i, t, _)| ((i * 4 + t) as f64 * 0.37).sin()).into_dyn(),
    ///     Array2::from_shape_fn((64, 1), |(i, _)| (i as f64 * 0.11).cos()).into_dyn(),
    /// ];
    /// let ys = vec![Array2::from_shape_fn((64, 1), |(i, _)| {
    ///     ((i * 4 + 3) as f64 * 0.37).sin() + (i as f64 * 0.11).cos()
    /// }).into_dyn()];
    /// let mut trainer = Trainer::new(Adam::new(0.01), Loss::Mse).epochs(60).batch_size(16);
    /// let history = trainer.fit_many(&mut model, &xs, &ys)?;
    /// assert!(history.loss().last().unwrap() < &(history.loss()[0] / 4.0));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Arrays of the wrong count or sample count, non-finite data, settings `fit_many`
    /// does not take (`class_weight`, `validation_data`, truncated BPTT, metrics with
    /// several outputs), bad `loss_weights`; during training as [`Trainer::fit`].
    pub fn fit_many(
        &mut self,
        model: &mut dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
    ) -> Result<History> {
        self.check_many(model, xs, ys)?;
        let n = xs[0].shape()[0];
        let n_train = if self.validation_split > 0.0 {
            let n_train = (n as f64 * (1.0 - self.validation_split)).floor() as usize;
            if n_train == 0 || n_train == n {
                return Err(Error::Data(format!(
                    "validation_split {} of {n} samples leaves an empty training or validation set",
                    self.validation_split
                )));
            }
            n_train
        } else {
            n
        };
        let tail = |arrays: &[ArrayD<F>]| -> Vec<ArrayD<F>> {
            arrays
                .iter()
                .map(|a| a.slice_axis(Axis(0), (n_train..).into()).to_owned())
                .collect()
        };
        let val = (n_train < n).then(|| (tail(xs), tail(ys)));
        let mut batch = |t: &mut Self, model: &mut dyn Model<F>, idx: &[usize], at| {
            let xb: Vec<_> = xs.iter().map(|a| a.select(Axis(0), idx)).collect();
            let yb: Vec<_> = ys.iter().map(|a| a.select(Axis(0), idx)).collect();
            t.step_many(model, &xb, &yb, at)
        };
        let mut validate = |t: &Self, model: &mut dyn Model<F>| match &val {
            Some((vx, vy)) => t.evaluate_many_checked(model, vx, vy).map(Some),
            None => Ok(None),
        };
        self.run_epochs(model, n_train, &mut batch, &mut validate)
    }

    /// The loss (and metrics) over `xs`, in batches, for a model with several inputs or
    /// outputs (Keras's `evaluate`).
    ///
    /// # Errors
    /// As [`Trainer::fit_many`]'s data checks.
    pub fn evaluate_many(
        &mut self,
        model: &mut dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
    ) -> Result<Logs> {
        self.check_many(model, xs, ys)?;
        self.evaluate_many_checked(model, xs, ys)
    }

    fn evaluate_many_checked(
        &self,
        model: &mut dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
    ) -> Result<Logs> {
        let n = xs[0].shape()[0];
        let mut running = Running::new(self.metrics.len());
        for start in (0..n).step_by(self.batch_size.max(1)) {
            let r: ndarray::Slice = (start..(start + self.batch_size).min(n)).into();
            let xb: Vec<_> = xs
                .iter()
                .map(|a| a.slice_axis(Axis(0), r).to_owned())
                .collect();
            let yb: Vec<_> = ys
                .iter()
                .map(|a| a.slice_axis(Axis(0), r).to_owned())
                .collect();
            let (l, ms) = self.loss_and_grads_many(model, &xb, &yb, Mode::Infer)?;
            running.add(l, xb[0].shape()[0], ms);
        }
        Ok(running.logs(&self.metrics))
    }

    /// Predictions of every output, in batches of `batch_size` (Keras's `predict` on a
    /// model with several inputs or outputs).
    ///
    /// # Errors
    /// [`Error::Config`] for `batch_size` 0; [`Error::Data`] for another number of
    /// arrays than the model's inputs, or arrays with different sample counts;
    /// [`Error::Empty`] for no samples; the model's errors.
    pub fn predict_many(&self, model: &dyn Model<F>, xs: &[ArrayD<F>]) -> Result<Vec<ArrayD<F>>> {
        if self.batch_size == 0 {
            return Err(Error::Config {
                layer: "trainer".into(),
                field: "batch_size",
                reason: "expected a positive integer, got 0".into(),
            });
        }
        if xs.is_empty() || xs.len() != model.input_count() {
            return Err(Error::Data(format!(
                "{} takes {} inputs; got {} input arrays",
                model.name(),
                model.input_count(),
                xs.len()
            )));
        }
        let n = xs[0].shape().first().copied().unwrap_or(0);
        for (k, a) in xs.iter().enumerate() {
            if a.ndim() == 0 || a.shape()[0] != n {
                return Err(Error::Data(format!(
                    "input {k} has shape {:?}: every input needs the {n} samples of input 0",
                    a.shape()
                )));
            }
        }
        if n == 0 {
            return Err(crate::layers::empty(model.name(), "batch", xs[0].shape()));
        }
        let mut parts: Vec<Vec<ArrayD<F>>> = Vec::new();
        for start in (0..n).step_by(self.batch_size) {
            let r: ndarray::Slice = (start..(start + self.batch_size).min(n)).into();
            let xb: Vec<_> = xs
                .iter()
                .map(|a| a.slice_axis(Axis(0), r).to_owned())
                .collect();
            let outs = model.infer_many(&xb)?;
            parts.resize_with(outs.len(), Vec::new);
            for (p, o) in parts.iter_mut().zip(outs) {
                p.push(o.output);
            }
        }
        parts
            .into_iter()
            .map(|p| {
                let views: Vec<_> = p.iter().map(|a| a.view()).collect();
                ndarray::concatenate(Axis(0), &views).map_err(|e| Error::Data(e.to_string()))
            })
            .collect()
    }
}
