//! Training models with several inputs or outputs (graph models) through `fit`,
//! `evaluate` and the batch methods given a list [`Data`]: one loss over all outputs
//! with optional per-output weights (Keras's `loss_weights`).

use super::callbacks::Logs;
use super::dataset::Data;
use super::logs::Running;
use super::optim::Optimizer;
use super::trainer::{History, Trainer};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{Inputs, Mode, OutputGrads};
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

    /// Checks list data (several inputs or outputs) and the settings `fit` takes with it,
    /// and binds the optimizer.
    pub(super) fn check_list_data(
        &mut self,
        model: &dyn Model<F>,
        data: &Data<'_, F>,
    ) -> Result<()> {
        self.check_list_shapes(model, data)?;
        // The optimizer, batch size and validation split as `fit` checks them.
        self.optimizer.validate()?;
        let bad = |field: &'static str, reason: String| Error::Config {
            layer: "trainer".into(),
            field,
            reason,
        };
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

    /// Checks list data against the model and the trainer's settings.
    pub(super) fn check_list_shapes(&self, model: &dyn Model<F>, data: &Data<'_, F>) -> Result<()> {
        let xs: Vec<&ArrayD<F>> = data.x.iter().map(|x| x.as_ref()).collect();
        let ys = &data.y;
        let bad = |field: &'static str, reason: String| Error::Config {
            layer: "trainer".into(),
            field,
            reason,
        };
        if self.tbptt.is_some() {
            return Err(bad(
                "truncated_bptt",
                "not available with several inputs or outputs".into(),
            ));
        }
        if self.class_weight.is_some() || self.validation_data.is_some() || self.validation_list {
            return Err(bad(
                "class_weight",
                "class_weight and validation_data are for one input and output; several \
                 inputs or outputs take validation_split"
                    .into(),
            ));
        }
        if data.mask.is_some() || data.sample_weight.is_some() {
            return Err(bad(
                "sample_weight",
                "a mask and sample weights are for one input and output; a graph model's \
                 masks come from its layers (Masking, Embedding)"
                    .into(),
            ));
        }
        let (n_in, n_out) = (model.input_shapes().len(), model.output_shapes().len());
        if !self.metrics.is_empty() && n_out > 1 {
            return Err(bad(
                "metrics",
                "metrics are computed for models with one output".into(),
            ));
        }
        if xs.len() != n_in || ys.len() != n_out {
            return Err(Error::Data(format!(
                "{} takes {} inputs and gives {} outputs; got {} input arrays and {} target arrays",
                model.name(),
                n_in,
                n_out,
                xs.len(),
                ys.len()
            )));
        }
        if let Some(w) = &self.loss_weights
            && (w.len() != ys.len() || w.iter().any(|v| !v.is_finite() || *v < 0.0))
        {
            return Err(bad(
                "loss_weights",
                format!("expected {} finite weights ≥ 0, got {w:?}", ys.len()),
            ));
        }
        let n = xs[0].shape().first().copied().unwrap_or(0);
        for (what, arrays) in [("input", &xs), ("target", ys)] {
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
        Ok(())
    }

    /// The total loss of a training batch and its gradients (and the metrics of a
    /// one-output model).
    fn loss_and_grads_many(
        &self,
        model: &mut dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
    ) -> Result<(f64, Vec<(f64, f64)>)> {
        let refs: Vec<&ArrayD<F>> = xs.iter().collect();
        let outs = model.forward(Inputs::list(&refs).mode(Mode::Train))?;
        let (total, grads, fused, metrics) = self.score_many(&*model, &outs, ys)?;
        model.zero_grad();
        let gs: Vec<OutputGrads<'_, F>> = grads
            .iter()
            .zip(&fused)
            .map(|(g, &f)| OutputGrads::new(g).from_logits(f).input_grads(false))
            .collect();
        model.backward(&gs)?;
        Ok((total, metrics))
    }

    /// The weighted total loss of every output, each output's gradient (with respect to
    /// its logits where fused), and the metrics of a one-output model.
    #[allow(clippy::type_complexity)]
    fn score_many(
        &self,
        model: &dyn Model<F>,
        outs: &[crate::layers::Outputs<F>],
        ys: &[ArrayD<F>],
    ) -> Result<(f64, Vec<ArrayD<F>>, Vec<bool>, Vec<(f64, f64)>)> {
        let acts = model.output_activations();
        let fused: Vec<bool> = acts
            .iter()
            .map(|a| self.loss.fuses_with() == Some(*a))
            .collect();
        if outs.len() != ys.len() {
            return Err(Error::Data(format!(
                "{} gave {} outputs for {} target arrays",
                model.name(),
                outs.len(),
                ys.len()
            )));
        }
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
                    });
                }
                _ => self.loss.compute(&out.output, y, out.mask.as_ref(), None)?,
            };
            total += w * l;
            grads.push(g.mapv(|v| v * F::c(w)));
        }
        Ok((total, grads, fused, metrics))
    }

    /// One update from the rows `idx` (a training step of list data).
    pub(super) fn step_many(
        &mut self,
        model: &mut dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
        at: (usize, usize),
    ) -> Result<(f64, Vec<(f64, f64)>)> {
        let (loss, metrics) = self.loss_and_grads_many(model, xs, ys)?;
        self.apply_update(model, loss, at)?;
        Ok((loss, metrics))
    }

    /// `fit` of list data (checked).
    pub(super) fn fit_list(
        &mut self,
        model: &mut dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
    ) -> Result<History> {
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
            Some((vx, vy)) => t.evaluate_list(model, vx, vy, t.batch_size).map(Some),
            None => Ok(None),
        };
        self.run_epochs(model, n_train, &mut batch, &mut validate)
    }

    /// `evaluate` of list data (checked), in batches of `batch_size`.
    pub(super) fn evaluate_list(
        &self,
        model: &dyn Model<F>,
        xs: &[ArrayD<F>],
        ys: &[ArrayD<F>],
        batch_size: usize,
    ) -> Result<Logs> {
        if batch_size == 0 {
            return Err(Error::Config {
                layer: "trainer".into(),
                field: "batch_size",
                reason: "expected a positive integer, got 0".into(),
            });
        }
        let n = xs[0].shape()[0];
        let mut running = Running::new(self.metrics.len());
        for start in (0..n).step_by(batch_size) {
            let r: ndarray::Slice = (start..(start + batch_size).min(n)).into();
            let xb: Vec<_> = xs
                .iter()
                .map(|a| a.slice_axis(Axis(0), r).to_owned())
                .collect();
            let yb: Vec<_> = ys
                .iter()
                .map(|a| a.slice_axis(Axis(0), r).to_owned())
                .collect();
            let refs: Vec<&ArrayD<F>> = xb.iter().collect();
            let outs = model.infer(Inputs::list(&refs))?;
            let (l, _, _, ms) = self.score_many(model, &outs, &yb)?;
            running.add(l, xb[0].shape()[0], ms);
        }
        Ok(running.logs(&self.metrics))
    }
}
