//! `Trainer`: Keras's `compile` + `fit` / `evaluate` / `predict` for any [`Model`] ([`Sequential`](crate::Sequential) or your own).

use super::callbacks::{Callback, Logs};
use super::checkpoint::ModelCheckpoint;
use super::data::{check_data, check_sample_weight, check_stateful_batches, class_weights};
use super::dataset::Data;
use super::logs::Running;
use super::loss::Metric;
use super::objective::{LossFunction, MetricFunction};
use super::optim::Optimizer;
use super::tbptt::TruncatedBptt;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{Inputs, Mask, Mode, OutputGrads};
use crate::model::Model;
use ndarray::{Array2, ArrayD, Axis};
use std::collections::BTreeMap;

/// Validation inputs, targets, mask and sample weights.
type ValidationData<F> = (ArrayD<F>, ArrayD<F>, Option<Mask>, Option<ArrayD<F>>);

/// What `fit` returns: per-epoch logs, as Keras's `History`.
///
/// ```
/// let h = rnnkit::History::default();
/// assert!(h.loss().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Epoch indices (0-based), as `history.epoch`.
    pub epoch: Vec<usize>,
    /// Values per key (`loss`, `val_loss`, metrics), as `history.history`.
    pub history: BTreeMap<String, Vec<f64>>,
}

impl History {
    /// The training loss of every epoch.
    pub fn loss(&self) -> &[f64] {
        self.get("loss").unwrap_or(&[])
    }
    /// The validation loss of every epoch, when there was validation data.
    pub fn val_loss(&self) -> Option<&[f64]> {
        self.get("val_loss")
    }
    /// Any key's values.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.history.get(key).map(|v| v.as_slice())
    }
}

/// Trains a [`Model`] (a [`Sequential`](crate::Sequential) or your own) with backpropagation through time: Keras's `compile` and `fit`
/// in one type.
///
/// | option | default (Keras) |
/// |---|---|
/// | `epochs` | 1 |
/// | `batch_size` | 32 |
/// | `shuffle` | true (seeded: `seed`, default 0) |
/// | `validation_split` | 0.0 (the last samples, taken before shuffling) |
/// | `verbose` | 0 (1: Keras's bar, live during the epoch on a terminal; 2: one line per epoch) |
///
/// The epoch `loss` is Keras's batch-size-weighted mean of the batch losses, each taken
/// before that batch's update. Training stops with [`Error::NonFinite`] when a loss,
/// gradient or updated weight is not finite; the weights of the last finite step are kept.
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::{Array2, Array3};
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = Array3::from_shape_fn((100, 3, 1), |(i, t, _)| 0.1 * (i + t) as f64).into_dyn();
/// let y = Array2::from_shape_fn((100, 1), |(i, _)| 0.1 * i as f64 + 0.3).into_dyn();
/// let mut model = Sequential::<f64>::new(&[3, 1]).push(SimpleRnnConfig::new(20))?.push(DenseConfig::new(1))?;
/// let mut trainer = Trainer::new(Adam::default(), Loss::Mse).epochs(5);
/// let history = trainer.fit(&mut model, (&x, &y))?;
/// assert_eq!(history.loss().len(), 5);
/// # Ok(()) }
/// ```
pub struct Trainer<F: Float, O: Optimizer<F>> {
    /// The optimizer (its state persists across `fit` calls).
    pub optimizer: O,
    pub(super) loss: Box<dyn LossFunction<F>>,
    pub(super) metrics: Vec<Box<dyn MetricFunction<F>>>,
    pub(super) epochs: usize,
    pub(super) batch_size: usize,
    pub(super) shuffle: bool,
    pub(super) seed: u64,
    pub(super) validation_split: f64,
    pub(super) validation_data: Option<ValidationData<F>>,
    /// Validation data of several inputs or outputs was given (not taken yet).
    pub(super) validation_list: bool,
    pub(super) class_weight: Option<BTreeMap<usize, f64>>,
    pub(super) verbose: u8,
    pub(super) callbacks: Vec<Box<dyn Callback<F>>>,
    pub(super) checkpoint: Option<ModelCheckpoint>,
    pub(super) epoch: usize,
    /// The weights before the last update (reused buffers).
    pub(super) snapshot: Vec<ArrayD<F>>,
    /// Per-output loss weights (several outputs).
    pub(super) loss_weights: Option<Vec<f64>>,
    /// Truncated BPTT settings, when set.
    pub(super) tbptt: Option<TruncatedBptt>,
    /// The parameter paths and shapes of the model this trainer's state belongs to.
    pub(super) bound: Option<Vec<(String, Vec<usize>)>>,
}

impl<F: Float, O: Optimizer<F>> std::fmt::Debug for Trainer<F, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("optimizer", &self.optimizer)
            .field("loss", &self.loss)
            .field("metrics", &self.metrics)
            .field("epochs", &self.epochs)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl<F: Float, O: Optimizer<F>> Trainer<F, O> {
    /// A trainer with Keras's `fit` defaults (`compile(optimizer, loss)`).
    pub fn new(optimizer: O, loss: impl LossFunction<F> + 'static) -> Self {
        Trainer {
            optimizer,
            loss: Box::new(loss),
            metrics: Vec::new(),
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            validation_split: 0.0,
            validation_data: None,
            validation_list: false,
            class_weight: None,
            verbose: 0,
            callbacks: Vec::new(),
            checkpoint: None,
            epoch: 0,
            snapshot: Vec::new(),
            loss_weights: None,
            tbptt: None,
            bound: None,
        }
    }
    /// Number of epochs per `fit`.
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    /// Samples per gradient step (the last batch may be smaller).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Reshuffle the training samples every epoch.
    pub fn shuffle(mut self, v: bool) -> Self {
        self.shuffle = v;
        self
    }
    /// Seed of the shuffling (each epoch's order depends only on the seed and the epoch
    /// number, so a resumed run shuffles as an uninterrupted one).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Fraction of the samples (the last ones) held out for validation.
    pub fn validation_split(mut self, f: f64) -> Self {
        self.validation_split = f;
        self
    }
    /// Validation data (Keras's `validation_data=(x, y, sample_weight)`; overrides
    /// `validation_split`), scored as the training data is: with its mask and weights.
    /// For sequences padded to one length, give their mask: a masked `fit` refuses
    /// unmasked validation data, which would be scored over the padding.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::{Array2, Array3};
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let x = Array3::<f64>::ones((4, 5, 1)).into_dyn();
    /// let y = Array2::<f64>::ones((4, 1)).into_dyn();
    /// let mask = mask_from_lengths(&[5, 3, 2, 4], 5)?;
    /// let mut model = Sequential::<f64>::new(&[5, 1]).push(GruConfig::new(2))?.push(DenseConfig::new(1))?;
    /// let mut trainer = Trainer::new(Adam::default(), Loss::Mse)
    ///     .epochs(1)
    ///     .validation_data(Data::new(&x, &y).mask(Some(&mask)));
    /// let history = trainer.fit(&mut model, Data::new(&x, &y).mask(Some(&mask)))?;
    /// assert!(history.val_loss().is_some());
    /// # Ok(()) }
    /// ```
    pub fn validation_data<'a>(mut self, data: impl Into<Data<'a, F>>) -> Self {
        let d = data.into();
        self.validation_data = d.single().map(|(x, y)| {
            (
                x.clone(),
                y.clone(),
                d.mask.cloned(),
                d.sample_weight.cloned(),
            )
        });
        self.validation_list = d.single().is_none();
        self
    }
    /// Keras's `class_weight`: each training sample weighs its class's weight (classes not
    /// listed weigh 1), as a `sample_weight` would. Not with sequence outputs or together
    /// with a `sample_weight`, as in Keras.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// let t = Trainer::<f64, _>::new(Adam::default(), Loss::categorical_crossentropy())
    ///     .class_weight([(0, 0.5), (1, 2.0)]);
    /// # let _ = t;
    /// ```
    pub fn class_weight(mut self, weights: impl IntoIterator<Item = (usize, f64)>) -> Self {
        self.class_weight = Some(weights.into_iter().collect());
        self
    }
    /// Adds a metric of your own (see [`MetricFunction`]).
    pub fn metric(mut self, m: impl MetricFunction<F> + 'static) -> Self {
        self.metrics.push(Box::new(m));
        self
    }
    /// Adds built-in metrics to report besides the loss.
    pub fn metrics(mut self, m: &[Metric]) -> Self {
        self.metrics
            .extend(m.iter().map(|&m| Box::new(m) as Box<dyn MetricFunction<F>>));
        self
    }
    /// 0: silent; 1: Keras's bar line per epoch; 2: Keras's one-line-per-epoch format.
    pub fn verbose(mut self, v: u8) -> Self {
        self.verbose = v;
        self
    }
    /// Adds a callback (EarlyStopping, LambdaCallback, your own).
    pub fn callback(mut self, cb: impl Callback<F> + 'static) -> Self {
        self.callbacks.push(Box::new(cb));
        self
    }
    /// Saves checkpoints during `fit` (Keras's `ModelCheckpoint` callback).
    pub fn checkpoint(mut self, c: ModelCheckpoint) -> Self {
        self.checkpoint = Some(c);
        self
    }
    /// The checkpoint callback, to see which files it wrote.
    pub fn checkpointer(&self) -> Option<&ModelCheckpoint> {
        self.checkpoint.as_ref()
    }
    /// The loss.
    pub fn loss(&self) -> &dyn LossFunction<F> {
        &*self.loss
    }
    /// Epochs completed over all `fit` calls.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// Checks everything that can be checked before the first step.
    pub(super) fn validate(
        &mut self,
        model: &dyn Model<F>,
        x: &ArrayD<F>,
        y: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
    ) -> Result<()> {
        self.optimizer.validate()?;
        if self.batch_size == 0 {
            return Err(Error::Config {
                layer: "trainer".into(),
                field: "batch_size",
                reason: "expected a positive integer, got 0".into(),
            });
        }
        if !(0.0..1.0).contains(&self.validation_split) {
            return Err(Error::Config {
                layer: "trainer".into(),
                field: "validation_split",
                reason: format!(
                    "expected a fraction in [0, 1), got {}",
                    self.validation_split
                ),
            });
        }
        check_data(model, &*self.loss, x, y, mask)?;
        let n = x.shape()[0];
        let n_train = if self.validation_data.is_none() && self.validation_split > 0.0 {
            (n as f64 * (1.0 - self.validation_split)).floor() as usize
        } else {
            n
        };
        let mut counts = vec![n_train, n - n_train];
        if let Some((vx, ..)) = &self.validation_data {
            counts.push(vx.shape().first().copied().unwrap_or(0));
        }
        check_stateful_batches(model, &counts, self.batch_size)?;
        if let Some(sw) = sample_weight {
            if self.class_weight.is_some() {
                return Err(Error::Config {
                    layer: "trainer".into(),
                    field: "class_weight",
                    reason: "class_weight and sample_weight cannot both be given (as in Keras)"
                        .into(),
                });
            }
            check_sample_weight(model, y, sw)?;
        }
        if let Some(cw) = &self.class_weight {
            class_weights(model, y, cw)?;
        }
        if let Some((vx, vy, vm, vw)) = &self.validation_data {
            check_data(model, &*self.loss, vx, vy, vm.as_ref())?;
            if let Some(w) = vw {
                check_sample_weight(model, vy, w)?;
            }
            if mask.is_some() && vm.is_none() {
                return Err(Error::Data(
                    "training data has a mask but validation_data has none: its padding would \
                     be scored; give the mask in validation_data's Data"
                        .into(),
                ));
            }
        }
        self.bind(model)
    }

    /// Binds the trainer's optimizer state to `model` on first use; refuses another model
    /// (other weight paths or shapes) afterwards.
    pub(super) fn bind(&mut self, model: &dyn Model<F>) -> Result<()> {
        // Compared in place: train_on_batch validates on every step.
        if let Some(bound) = &self.bound
            && !same_params(bound, model)
        {
            let mut count = 0;
            model.visit_params(&mut |_, _| count += 1);
            return Err(Error::Config {
                layer: "trainer".into(),
                field: "model",
                reason: format!(
                    "this trainer holds optimizer state for another model ({} weights; {} has {count}): use a new Trainer for it",
                    bound.len(),
                    model.name(),
                ),
            });
        }
        // The same architecture is not the same model: the optimizer's slots belong to
        // the parameters it stepped (Keras refuses another model's variables).
        let mut ids = Vec::new();
        model.visit_params(&mut |_, p| ids.push(p.id()));
        self.optimizer.bind(&ids)?;
        if self.bound.is_none() {
            self.bound = Some(fingerprint(model));
        }
        Ok(())
    }

    /// One gradient step on one batch (Keras's `train_on_batch`), with the batch's mask
    /// and sample weights if given (the trainer's `class_weight`, if set, applies too);
    /// returns the batch loss computed before the update.
    ///
    /// # Errors
    /// Invalid data or settings; [`Error::NonFinite`] when the step diverges (weights are
    /// left as they were before it).
    pub fn train_on_batch<'a>(
        &mut self,
        model: &mut dyn Model<F>,
        data: impl Into<Data<'a, F>>,
    ) -> Result<f64> {
        let data = data.into();
        let Some((x, y)) = data.single().filter(|_| one_to_one(model)) else {
            self.check_list_data(model, &data)?;
            let (xs, ys) = owned(&data);
            return self.step_many(model, &xs, &ys, (1, 1)).map(|(l, _)| l);
        };
        let (mask, sample_weight) = (data.mask, data.sample_weight);
        self.validate(model, x, y, mask, sample_weight)?;
        let from_classes = match &self.class_weight {
            Some(cw) => Some(class_weights(model, y, cw)?),
            None => None,
        };
        let sw = sample_weight.or(from_classes.as_ref());
        self.step(model, x, y, mask, sw, (1, 1), None)
            .map(|(l, _)| l)
    }

    /// The loss of one batch without an update (Keras's `test_on_batch`).
    ///
    /// # Errors
    /// As [`Trainer::evaluate`].
    pub fn test_on_batch<'a>(
        &self,
        model: &dyn Model<F>,
        data: impl Into<Data<'a, F>>,
    ) -> Result<f64> {
        let data = data.into();
        let n = data
            .x
            .first()
            .and_then(|x| x.shape().first().copied())
            .unwrap_or(0);
        self.evaluate_in(model, &data, n.max(1))
            .map(|logs| logs["loss"])
    }

    /// Forward (from explicit `states` when given, which it moves on), loss, backward,
    /// update. Returns the loss and the metrics' (sum, count).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step(
        &mut self,
        model: &mut dyn Model<F>,
        x: &ArrayD<F>,
        y: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
        at: (usize, usize),
        states: Option<&mut Vec<Vec<Array2<F>>>>,
    ) -> Result<(f64, Vec<(f64, f64)>)> {
        let (loss, metrics) =
            self.loss_and_grads(model, x, y, mask, sample_weight, Mode::Train, states)?;
        self.apply_update(model, loss, at)?;
        Ok((loss, metrics))
    }

    /// After a training pass: refuses a non-finite loss or gradient, applies the optimizer
    /// and undoes an update that makes a weight non-finite ([`Error::NonFinite`] at `at`).
    pub(super) fn apply_update(
        &mut self,
        model: &mut dyn Model<F>,
        loss: f64,
        at: (usize, usize),
    ) -> Result<()> {
        let diverged = |what: String| Error::NonFinite {
            epoch: at.0,
            batch: at.1,
            loss: what,
        };
        let mut finite = true;
        model.visit_params(&mut |_, p| finite &= all_finite(&p.grad));
        if !loss.is_finite() || !finite {
            return Err(diverged(if loss.is_finite() {
                format!("{loss} but a gradient is not finite")
            } else {
                loss.to_string()
            }));
        }
        // Keep the weights (in a buffer reused from step to step) so a diverging update
        // can be undone.
        let snapshot = &mut self.snapshot;
        let mut n = 0;
        model.visit_params(&mut |_, p| {
            match snapshot.get_mut(n) {
                Some(s) if s.shape() == p.value.shape() => {
                    match (s.as_slice_mut(), p.value.as_slice()) {
                        (Some(d), Some(v)) => crate::linalg::wide::copy_flat(d, v),
                        _ => s.assign(&p.value),
                    }
                }
                _ => {
                    snapshot.truncate(n);
                    snapshot.push(p.value.clone());
                }
            }
            n += 1;
        });
        self.optimizer.apply(model)?;
        let mut finite = true;
        model.visit_params(&mut |_, p| finite &= all_finite(&p.value));
        if !finite {
            let mut n = 0;
            model.visit_params_mut(&mut |_, p| {
                p.value.assign(&self.snapshot[n]);
                n += 1;
            });
            return Err(diverged(format!(
                "{loss} but the update made a weight non-finite"
            )));
        }
        Ok(())
    }

    /// The batch loss (and metrics); in `Mode::Train` also the gradients.
    #[allow(clippy::too_many_arguments)]
    fn loss_and_grads(
        &self,
        model: &mut dyn Model<F>,
        x: &ArrayD<F>,
        y: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
        mode: Mode,
        states: Option<&mut Vec<Vec<Array2<F>>>>,
    ) -> Result<(f64, Vec<(f64, f64)>)> {
        let call = Inputs::new(x).mask(mask).mode(mode);
        let outs = match states {
            Some(s) => {
                super::tbptt::state_of(model)?;
                model
                    .state_mut()
                    .expect("checked above")
                    .forward_from(call, s)?
            }
            None => model.forward(call)?,
        };
        let (loss, grad, fused, metrics) = self.score(&*model, outs, y, sample_weight)?;
        if mode == Mode::Train {
            model.zero_grad();
            model.backward(&[OutputGrads::new(&grad)
                .from_logits(fused)
                .input_grads(false)])?;
        }
        Ok((loss, metrics))
    }

    /// The loss of one output against its targets, its gradient (with respect to the
    /// logits when `fused`), and the metrics' (sum, count). Keras computes cross-entropy
    /// from the logits of a softmax/sigmoid output; `forward` and `infer` return them.
    #[allow(clippy::type_complexity)]
    fn score(
        &self,
        model: &dyn Model<F>,
        mut outs: Vec<crate::layers::Outputs<F>>,
        y: &ArrayD<F>,
        sample_weight: Option<&ArrayD<F>>,
    ) -> Result<(f64, ArrayD<F>, bool, Vec<(f64, f64)>)> {
        let act = model.output_activations().first().copied();
        let fused = act.is_some() && self.loss.fuses_with() == act;
        if outs.len() != 1 {
            return Err(Error::Shape {
                layer: model.name().to_string(),
                what: "list of outputs (give one target array per output)",
                expected: "1 output".into(),
                got: vec![outs.len()],
            });
        }
        let out = outs.remove(0);
        let (pred, out_mask) = (out.output, out.mask);
        let metrics = self
            .metrics
            .iter()
            .map(|m| m.sum_count(&pred, y, out_mask.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let (loss, grad) = if fused {
            let Some(z) = out.logits else {
                return Err(Error::Unsupported {
                    layer: model.name().to_string(),
                    reason: format!(
                        "the model reports a {} output but its forward pass returned no logits",
                        act.unwrap_or(crate::Activation::Linear)
                    ),
                });
            };
            self.loss
                .compute_from_logits(&z, y, out_mask.as_ref(), sample_weight)?
        } else {
            self.loss
                .compute(&pred, y, out_mask.as_ref(), sample_weight)?
        };
        Ok((loss, grad, fused, metrics))
    }

    /// Trains for `epochs` epochs (Keras's `fit`): one input and target, or one array per
    /// input and per output (a graph model's; the loss is the trainer's on every output,
    /// summed with `loss_weights`), with an optional input mask (variable-length
    /// sequences) and `sample_weight` (`[samples]` or `[samples, 1]`, or `[samples,
    /// steps]` for a sequence output; see [`LossFunction`]). A `validation_split` splits
    /// the mask and weights too and weighs the validation loss.
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
    /// let both = g.apply_list(&ConcatenateConfig::new(), &[h, side])?;
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
    /// let history = trainer.fit(&mut model, (&xs, &ys))?;
    /// assert!(history.loss().last().unwrap() < &(history.loss()[0] / 4.0));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Before training: mismatched or non-finite data, targets that do not fit the loss,
    /// labels out of range, invalid settings; weights of the wrong shape, negative or not
    /// finite; a `sample_weight` next to the trainer's `class_weight`; for several inputs
    /// or outputs, arrays of the wrong count or sample count, and settings that take one
    /// of each (`class_weight`, `validation_data`, truncated BPTT, a mask or sample
    /// weights, metrics with several outputs). During: [`Error::NonFinite`].
    pub fn fit<'a>(
        &mut self,
        model: &mut dyn Model<F>,
        data: impl Into<Data<'a, F>>,
    ) -> Result<History> {
        let data = data.into();
        let Some((x, y)) = data.single().filter(|_| one_to_one(model)) else {
            self.check_list_data(model, &data)?;
            let (xs, ys) = owned(&data);
            return self.fit_list(model, &xs, &ys);
        };
        let (mask, sample_weight) = (data.mask, data.sample_weight);
        if self.validation_list {
            return Err(Error::Config {
                layer: "trainer".into(),
                field: "validation_data",
                reason: "several validation arrays for a model fitted on one input and target"
                    .into(),
            });
        }
        match self.tbptt {
            Some(t) => self.validate_windows(model, x, y, mask, sample_weight, t)?,
            None => self.validate(model, x, y, mask, sample_weight)?,
        }
        let weights = match (&self.class_weight, sample_weight) {
            (Some(cw), _) => Some(class_weights(model, y, cw)?),
            (None, Some(w)) => Some(w.clone()),
            (None, None) => None,
        };
        let n = x.shape()[0];
        let (n_train, val) = if let Some(v) = &self.validation_data {
            (n, Some(v.clone()))
        } else if self.validation_split > 0.0 {
            let n_train = (n as f64 * (1.0 - self.validation_split)).floor() as usize;
            if n_train == 0 || n_train == n {
                return Err(Error::Data(format!(
                    "validation_split {} of {n} samples leaves an empty training or validation set",
                    self.validation_split
                )));
            }
            let take = |a: &ArrayD<F>| a.slice_axis(Axis(0), (n_train..).into()).to_owned();
            (
                n_train,
                Some((
                    take(x),
                    take(y),
                    mask.map(|m| m.slice_axis(Axis(0), (n_train..).into()).to_owned()),
                    // Keras weighs validation by `sample_weight` only: class weights are
                    // for training.
                    sample_weight.map(take),
                )),
            )
        } else {
            (n, None)
        };
        let tbptt = self.tbptt;
        let mut batch = |t: &mut Self, model: &mut dyn Model<F>, idx: &[usize], at| {
            let xb = x.select(Axis(0), idx);
            let yb = y.select(Axis(0), idx);
            let mb = mask.map(|m| m.select(Axis(0), idx));
            let wb = weights.as_ref().map(|w| w.select(Axis(0), idx));
            let (mb, wb) = (mb.as_ref(), wb.as_ref());
            match tbptt {
                Some(tb) => t.step_windows(model, &xb, &yb, mb, wb, at, tb),
                None => t.step(model, &xb, &yb, mb, wb, at, None),
            }
        };
        let mut validate = |t: &Self, model: &mut dyn Model<F>| match &val {
            Some((vx, vy, vm, vw)) => t
                .evaluate_in(
                    model,
                    &Data::new(vx, vy)
                        .mask(vm.as_ref())
                        .sample_weight(vw.as_ref()),
                    t.batch_size,
                )
                .map(Some),
            None => Ok(None),
        };
        self.run_epochs(model, n_train, &mut batch, &mut validate)
    }

    /// Loss and metrics over the data, in batches (Keras's `evaluate`,
    /// `return_dict=True`): the loss weighted by `sample_weight` as in training, metrics
    /// unweighted (Keras's `metrics`).
    ///
    /// # Errors
    /// As [`Trainer::fit`]'s data checks.
    pub fn evaluate<'a>(&self, model: &dyn Model<F>, data: impl Into<Data<'a, F>>) -> Result<Logs> {
        self.evaluate_in(model, &data.into(), self.batch_size)
    }

    /// [`Trainer::evaluate`] in batches of `batch_size`.
    pub(super) fn evaluate_in(
        &self,
        model: &dyn Model<F>,
        data: &Data<'_, F>,
        batch_size: usize,
    ) -> Result<Logs> {
        let Some((x, y)) = data.single().filter(|_| one_to_one(model)) else {
            self.check_list_shapes(model, data)?;
            let (xs, ys) = owned(data);
            return self.evaluate_list(model, &xs, &ys, batch_size);
        };
        let (mask, sample_weight) = (data.mask, data.sample_weight);
        if batch_size == 0 {
            return Err(Error::Config {
                layer: "trainer".into(),
                field: "batch_size",
                reason: "expected a positive integer, got 0".into(),
            });
        }
        check_data(model, &*self.loss, x, y, mask)?;
        if let Some(sw) = sample_weight {
            check_sample_weight(model, y, sw)?;
        }
        let n = x.shape()[0];
        check_stateful_batches(model, &[n], batch_size)?;
        let mut running = Running::new(self.metrics.len());
        for start in (0..n).step_by(batch_size) {
            let r = (start..(start + batch_size).min(n)).into();
            let xb = x.slice_axis(Axis(0), r).to_owned();
            let yb = y.slice_axis(Axis(0), r).to_owned();
            let mb = mask.map(|m| m.slice_axis(Axis(0), r).to_owned());
            let wb = sample_weight.map(|w| w.slice_axis(Axis(0), r).to_owned());
            let outs = model.infer(Inputs::new(&xb).mask(mb.as_ref()))?;
            let (l, _, _, ms) = self.score(model, outs, &yb, wb.as_ref())?;
            running.add(l, xb.shape()[0], ms);
        }
        let logs = running.logs(&self.metrics);
        Ok(logs)
    }
}

/// A model's parameter paths and shapes: what identifies it to an optimizer.
pub(super) fn fingerprint<F: Float>(model: &dyn Model<F>) -> Vec<(String, Vec<usize>)> {
    let mut v = Vec::new();
    model.visit_params(&mut |n, p| v.push((n.to_string(), p.value.shape().to_vec())));
    v
}

/// Whether `model`'s parameters have exactly the paths and shapes of `bound`.
fn same_params<F: Float>(bound: &[(String, Vec<usize>)], model: &dyn Model<F>) -> bool {
    let mut i = 0;
    let mut same = true;
    model.visit_params(&mut |n, p| {
        same &= bound
            .get(i)
            .is_some_and(|(bn, bs)| bn == n && bs.as_slice() == p.value.shape());
        i += 1;
    });
    same && i == bound.len()
}

/// Whether every element is finite (a flat pass, AVX-512/AVX2 wide, for contiguous arrays).
fn all_finite<F: Float>(a: &ArrayD<F>) -> bool {
    match a.as_slice_memory_order() {
        Some(s) => crate::linalg::wide::all_finite(s),
        None => a.iter().all(|v| v.is_finite()),
    }
}

/// Owned copies of a list data argument's arrays (the graph path batches by selecting rows).
pub(super) fn owned<F: Float>(data: &Data<'_, F>) -> (Vec<ArrayD<F>>, Vec<ArrayD<F>>) {
    (
        data.x.iter().map(|a| a.clone().into_owned()).collect(),
        data.y.iter().map(|a| (*a).clone()).collect(),
    )
}

/// Whether a model takes one input and gives one output (the one-array path of `fit`).
fn one_to_one<F: Float>(model: &dyn Model<F>) -> bool {
    model.input_shapes().len() == 1 && model.output_shapes().len() == 1
}
