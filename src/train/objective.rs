//! What the trainer minimises and reports: [`LossFunction`] and [`MetricFunction`],
//! implemented by the built-in [`Loss`] and [`Metric`] and open to your own.

use super::loss::{Loss, Metric, reduce_rows};
use crate::activation::Activation;
use crate::error::Result;
use crate::float::Float;
use crate::layers::Mask;
use ndarray::{ArrayD, ArrayView1, ArrayViewMut1};
use std::fmt::Debug;

/// A loss the [`Trainer`](crate::Trainer) minimises: the built-in [`Loss`] or your own.
///
/// Implement `compute` with Keras's conventions, as the built-ins do: reduce over the batch
/// (and the real steps under a mask), weight entries by `sample_weight` when given, and
/// return the gradient with respect to `pred`.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{train::LossFunction, Mask};
/// use rnnkit::ndarray::ArrayD;
///
/// /// Mean of (ŷ − y)⁴: punishes large errors harder than MSE.
/// #[derive(Debug)]
/// struct Quartic;
/// impl LossFunction<f64> for Quartic {
///     fn name(&self) -> &str { "quartic" }
///     fn compute(&self, pred: &ArrayD<f64>, y: &ArrayD<f64>, _: Option<&Mask>, _: Option<&ArrayD<f64>>)
///         -> Result<(f64, ArrayD<f64>), rnnkit::Error> {
///         let n = pred.len() as f64;
///         let d = pred - y;
///         Ok((d.mapv(|v| v.powi(4)).sum() / n, d.mapv(|v| 4.0 * v.powi(3) / n)))
///     }
/// }
///
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = rnnkit::ndarray::Array2::from_shape_fn((16, 1), |(i, _)| i as f64 / 16.0).into_dyn();
/// let y = x.mapv(|v| 2.0 * v);
/// let mut model = Sequential::<f64>::new(&[1]).push(DenseConfig::new(1))?;
/// let mut trainer = Trainer::new(Adam::new(0.05), Quartic).epochs(100);
/// let h = trainer.fit(&mut model, (&x, &y))?;
/// assert!(h.loss().last().unwrap() < &h.loss()[0]);
/// # Ok(()) }
/// ```
pub trait LossFunction<F: Float>: Debug + Send + Sync {
    /// The name in logs and messages (Keras's loss name for the built-ins).
    fn name(&self) -> &str;
    /// The reduced loss and its gradient with respect to `pred`.
    ///
    /// # Errors
    /// Targets, masks or weights that do not fit the predictions.
    fn compute(
        &self,
        pred: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
    ) -> Result<(f64, ArrayD<F>)>;
    /// Whether targets are class indices (`[N]`, `[N, 1]`) rather than arrays of the
    /// output's shape. Default false.
    fn sparse_targets(&self) -> bool {
        false
    }
    /// The output activation whose logits this loss reads instead of the probabilities
    /// (Keras's fused softmax / sigmoid cross-entropy). Default none.
    fn fuses_with(&self) -> Option<Activation> {
        None
    }
    /// The loss and gradient from the logits of a fused output (called only when
    /// [`LossFunction::fuses_with`] names the model's output activation).
    ///
    /// # Errors
    /// As [`LossFunction::compute`].
    fn compute_from_logits(
        &self,
        logits: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
    ) -> Result<(f64, ArrayD<F>)> {
        self.compute(logits, target, mask, sample_weight)
    }
}

impl<F: Float> LossFunction<F> for Loss {
    fn name(&self) -> &str {
        self.keras_name()
    }
    fn compute(
        &self,
        pred: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
    ) -> Result<(f64, ArrayD<F>)> {
        Loss::compute(*self, pred, target, mask, sample_weight)
    }
    fn sparse_targets(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy { .. })
    }
    fn fuses_with(&self) -> Option<Activation> {
        Loss::fuses_with(*self)
    }
    fn compute_from_logits(
        &self,
        logits: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
    ) -> Result<(f64, ArrayD<F>)> {
        Loss::compute(self.with_logits(), logits, target, mask, sample_weight)
    }
}

/// A loss given per output row (the last axis), which rnnkit reduces exactly as it reduces
/// the built-in losses: over the batch, over the real steps under a mask, with sample and
/// class weights. Wrap it in [`PerRow`] to train with it.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{train::PerRow, train::RowLoss};
/// use rnnkit::ndarray::{ArrayView1, ArrayViewMut1};
///
/// /// Huber loss with δ = 1, averaged over the features of a row.
/// #[derive(Debug)]
/// struct Huber;
/// impl RowLoss<f64> for Huber {
///     fn name(&self) -> &str { "huber" }
///     fn row(&self, p: ArrayView1<f64>, y: ArrayView1<f64>, mut g: ArrayViewMut1<f64>) -> f64 {
///         let k = p.len() as f64;
///         let mut l = 0.0;
///         for i in 0..p.len() {
///             let d = p[i] - y[i];
///             if d.abs() <= 1.0 { l += 0.5 * d * d; g[i] = d / k; }
///             else { l += d.abs() - 0.5; g[i] = d.signum() / k; }
///         }
///         l / k
///     }
/// }
///
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = rnnkit::ndarray::Array3::from_shape_fn((6, 4, 1), |(i, t, _)| (i + t) as f64 * 0.1).into_dyn();
/// let y = rnnkit::ndarray::Array3::from_shape_fn((6, 4, 1), |(i, t, _)| (i * t) as f64 * 0.1).into_dyn();
/// let mask = mask_from_lengths(&[4, 2, 3, 1, 4, 2], 4)?;
/// let mut model = Sequential::<f64>::new(&[4, 1]).push(GruConfig::new(3).return_sequences(true))?
///     .push(DenseConfig::new(1))?;
/// let mut trainer = Trainer::new(Adam::new(0.01), PerRow(Huber)).epochs(3);
/// trainer.fit(&mut model, Data::new(&x, &y).mask(Some(&mask)))?; // masked steps do not count
/// # Ok(()) }
/// ```
pub trait RowLoss<F: Float>: Debug + Send + Sync {
    /// The name in logs and messages.
    fn name(&self) -> &str;
    /// The loss of one row of predictions against its targets; writes dℓ/dpred into `grad`
    /// (zeros on entry).
    fn row(
        &self,
        pred: ArrayView1<'_, F>,
        target: ArrayView1<'_, F>,
        grad: ArrayViewMut1<'_, F>,
    ) -> F;
}

/// A [`RowLoss`] as a [`LossFunction`], reduced as the built-ins are.
#[derive(Debug, Clone, Copy)]
pub struct PerRow<L>(pub L);

impl<F: Float, L: RowLoss<F>> LossFunction<F> for PerRow<L> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn compute(
        &self,
        pred: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
    ) -> Result<(f64, ArrayD<F>)> {
        reduce_rows(pred, target, mask, sample_weight, |p, t, g| {
            self.0.row(p, t, g)
        })
    }
}

/// A metric `fit` and `evaluate` report: the built-in [`Metric`] or your own. Values are
/// averaged over entries as Keras's `Mean` metrics are: return the sum over the batch's
/// (unmasked) entries and their number.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{Mask, train::MetricFunction};
/// use rnnkit::ndarray::ArrayD;
///
/// /// The largest absolute error of a batch, averaged over batches by entry count.
/// #[derive(Debug)]
/// struct MaxError;
/// impl MetricFunction<f64> for MaxError {
///     fn name(&self) -> &str { "max_error" }
///     fn sum_count(&self, pred: &ArrayD<f64>, y: &ArrayD<f64>, _: Option<&Mask>)
///         -> Result<(f64, f64), rnnkit::Error> {
///         let m = (pred - y).mapv(f64::abs).fold(0.0, |a: f64, &b| a.max(b));
///         Ok((m, 1.0))
///     }
/// }
///
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = rnnkit::ndarray::Array2::from_shape_fn((8, 1), |(i, _)| i as f64).into_dyn();
/// let mut model = Sequential::<f64>::new(&[1]).push(DenseConfig::new(1))?;
/// let mut trainer = Trainer::new(Sgd::new(0.001), Loss::Mse).metric(MaxError);
/// let h = trainer.fit(&mut model, (&x, &x))?;
/// assert!(h.get("max_error").is_some());
/// # Ok(()) }
/// ```
pub trait MetricFunction<F: Float>: Debug + Send + Sync {
    /// The log key.
    fn name(&self) -> &str;
    /// The sum of the per-entry values and the number of entries (masked ones left out).
    ///
    /// # Errors
    /// Targets that do not fit the predictions.
    fn sum_count(
        &self,
        pred: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
    ) -> Result<(f64, f64)>;
}

impl<F: Float> MetricFunction<F> for Metric {
    fn name(&self) -> &str {
        self.keras_name()
    }
    fn sum_count(
        &self,
        pred: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
    ) -> Result<(f64, f64)> {
        Metric::sum_count(*self, pred, target, mask)
    }
}
