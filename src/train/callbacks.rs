//! Callbacks run by `Trainer::fit` at Keras's hooks, with the model and the optimizer's
//! learning rate in reach: [`EarlyStopping`], [`ReduceLROnPlateau`], [`LambdaCallback`].

use super::optim::{LearningRate, Optimizer};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::model::Model;
use ndarray::ArrayD;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// One epoch's (or, in batch hooks, the epoch so far's) logs: `loss`, metrics, and `val_`
/// versions, as in Keras.
pub type Logs = BTreeMap<String, f64>;

/// What a callback asks of the training loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on training.
    Continue,
    /// Stop after this epoch (Keras's `model.stop_training = True`).
    Stop,
}

/// What a callback reaches during `fit`: the model, and the optimizer's learning rate
/// (Keras's `self.model` and `self.model.optimizer.learning_rate`).
pub struct Context<'a, F: Float> {
    /// The model being trained.
    pub model: &'a mut dyn Model<F>,
    optimizer: &'a mut dyn Optimizer<F>,
}

impl<F: Float> std::fmt::Debug for Context<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("model", &self.model.name())
            .field("optimizer", &self.optimizer.name())
            .finish()
    }
}

impl<'a, F: Float> Context<'a, F> {
    /// The context of a model and its optimizer (what `fit` gives its callbacks; also for
    /// running a callback by hand).
    pub fn new(model: &'a mut dyn Model<F>, optimizer: &'a mut dyn Optimizer<F>) -> Self {
        Context { model, optimizer }
    }
    /// The learning rate of the next step, as Keras's `optimizer.learning_rate` reads
    /// between steps (with a schedule: the schedule at the current iteration count).
    pub fn learning_rate(&self) -> f64 {
        self.optimizer.next_learning_rate()
    }
    /// Replaces the learning rate (schedule included) by a constant from the next step on.
    ///
    /// # Errors
    /// [`Error::Config`] for a rate that is not positive and finite, or an optimizer that
    /// cannot change its rate.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        let rate = LearningRate::Constant(lr);
        rate.validate(self.optimizer.name())?;
        self.optimizer.set_learning_rate(rate)
    }
    /// Optimizer steps taken so far.
    pub fn iterations(&self) -> u64 {
        self.optimizer.iterations()
    }
}

/// A training callback with Keras's hooks (`keras.callbacks.Callback`). Every hook has a
/// default that does nothing; an error from any hook stops `fit`, which returns it (the
/// weights are those of the last finished step, and every callback still gets
/// `on_train_end`).
///
/// Keep a callback's results readable after `fit` by passing it shared:
/// `Rc<RefCell<C>>` (or `Arc<Mutex<C>>`) is a callback too.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{Callback, train::Context, train::Logs};
/// use std::{cell::RefCell, rc::Rc};
///
/// /// Counts batches, as a progress display would.
/// #[derive(Default)]
/// struct Batches(usize);
/// impl Callback<f64> for Batches {
///     fn on_train_batch_end(&mut self, _: usize, _: &Logs, _: &mut Context<'_, f64>) -> rnnkit::Result<()> {
///         self.0 += 1;
///         Ok(())
///     }
/// }
///
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = rnnkit::ndarray::Array2::<f64>::zeros((10, 2)).into_dyn();
/// let y = rnnkit::ndarray::Array2::<f64>::zeros((10, 1)).into_dyn();
/// let mut model = Sequential::<f64>::new(&[2]).push(DenseConfig::new(1))?;
/// let counter = Rc::new(RefCell::new(Batches::default()));
/// let mut trainer = Trainer::new(Sgd::new(0.1), Loss::Mse).epochs(3).batch_size(4).callback(counter.clone());
/// trainer.fit(&mut model, (&x, &y))?;
/// assert_eq!(counter.borrow().0, 9); // 3 epochs of 3 batches
/// # Ok(()) }
/// ```
pub trait Callback<F: Float> {
    /// When `fit` starts (Keras resets a callback's state here).
    ///
    /// # Errors
    /// Any: `fit` then returns it.
    fn on_train_begin(&mut self, ctx: &mut Context<'_, F>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }
    /// Before each epoch (0-based, counted over every `fit` of the trainer).
    ///
    /// # Errors
    /// Any: `fit` then returns it.
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut Context<'_, F>) -> Result<()> {
        let _ = (epoch, ctx);
        Ok(())
    }
    /// Before each training batch (0-based within the epoch).
    ///
    /// # Errors
    /// Any: `fit` then returns it.
    fn on_train_batch_begin(&mut self, batch: usize, ctx: &mut Context<'_, F>) -> Result<()> {
        let _ = (batch, ctx);
        Ok(())
    }
    /// After each training batch, with the epoch's running logs so far.
    ///
    /// # Errors
    /// Any: `fit` then returns it.
    fn on_train_batch_end(
        &mut self,
        batch: usize,
        logs: &Logs,
        ctx: &mut Context<'_, F>,
    ) -> Result<()> {
        let _ = (batch, logs, ctx);
        Ok(())
    }
    /// After each epoch, with its logs (validation included); may stop training.
    ///
    /// # Errors
    /// Any: `fit` then returns it.
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        ctx: &mut Context<'_, F>,
    ) -> Result<Control> {
        let _ = (epoch, logs, ctx);
        Ok(Control::Continue)
    }
    /// When training ends (normally, stopped, or after an error).
    ///
    /// # Errors
    /// Whatever the callback cannot do to the model (then `fit` returns the error).
    fn on_train_end(&mut self, ctx: &mut Context<'_, F>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }
}

/// A callback behind a shared handle: runs `f` on the callback inside.
trait Shared<C> {
    fn with<R>(&mut self, f: impl FnOnce(&mut C) -> R) -> R;
}

impl<C> Shared<C> for Rc<RefCell<C>> {
    fn with<R>(&mut self, f: impl FnOnce(&mut C) -> R) -> R {
        f(&mut self.borrow_mut())
    }
}

impl<C> Shared<C> for Arc<Mutex<C>> {
    fn with<R>(&mut self, f: impl FnOnce(&mut C) -> R) -> R {
        f(&mut self.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Forwards every hook to the shared callback.
macro_rules! delegate_hooks {
    () => {
        fn on_train_begin(&mut self, ctx: &mut Context<'_, F>) -> Result<()> {
            self.with(|c| c.on_train_begin(ctx))
        }
        fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut Context<'_, F>) -> Result<()> {
            self.with(|c| c.on_epoch_begin(epoch, ctx))
        }
        fn on_train_batch_begin(&mut self, batch: usize, ctx: &mut Context<'_, F>) -> Result<()> {
            self.with(|c| c.on_train_batch_begin(batch, ctx))
        }
        fn on_train_batch_end(
            &mut self,
            batch: usize,
            logs: &Logs,
            ctx: &mut Context<'_, F>,
        ) -> Result<()> {
            self.with(|c| c.on_train_batch_end(batch, logs, ctx))
        }
        fn on_epoch_end(
            &mut self,
            epoch: usize,
            logs: &Logs,
            ctx: &mut Context<'_, F>,
        ) -> Result<Control> {
            self.with(|c| c.on_epoch_end(epoch, logs, ctx))
        }
        fn on_train_end(&mut self, ctx: &mut Context<'_, F>) -> Result<()> {
            self.with(|c| c.on_train_end(ctx))
        }
    };
}

/// A callback kept by the caller too: read its results after `fit`.
impl<F: Float, C: Callback<F>> Callback<F> for Rc<RefCell<C>> {
    delegate_hooks!();
}

/// A callback shared across threads: read its results after `fit`.
impl<F: Float, C: Callback<F>> Callback<F> for Arc<Mutex<C>> {
    delegate_hooks!();
}

/// A callback from a closure, as Keras's `LambdaCallback(on_epoch_end=...)`.
///
/// ```
/// use rnnkit::{train::Control, train::LambdaCallback, train::Logs};
/// let cb = LambdaCallback::new(|epoch: usize, logs: &Logs| {
///     if logs["loss"] < 1e-3 || epoch > 100 { Control::Stop } else { Control::Continue }
/// });
/// # let _ = cb;
/// ```
pub struct LambdaCallback<G>(G);

impl<G: FnMut(usize, &Logs) -> Control> LambdaCallback<G> {
    /// Wraps `on_epoch_end(epoch, logs)`.
    pub fn new(on_epoch_end: G) -> Self {
        LambdaCallback(on_epoch_end)
    }
}

impl<F: Float, G: FnMut(usize, &Logs) -> Control> Callback<F> for LambdaCallback<G> {
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        _: &mut Context<'_, F>,
    ) -> Result<Control> {
        Ok((self.0)(epoch, logs))
    }
}

/// `on_epoch_end` from a closure that also reaches the model and the learning rate.
///
/// ```
/// use rnnkit::{train::Control, train::Context, train::Logs, train::EpochEnd};
/// // Halve the learning rate every 10 epochs.
/// let cb = EpochEnd::new(|epoch: usize, _: &Logs, ctx: &mut Context<'_, f64>| {
///     if epoch % 10 == 9 {
///         let lr = ctx.learning_rate();
///         ctx.set_learning_rate(lr / 2.0)?;
///     }
///     Ok::<_, rnnkit::Error>(Control::Continue)
/// });
/// # let _ = cb;
/// ```
pub struct EpochEnd<G>(G);

impl<G> EpochEnd<G> {
    /// Wraps `on_epoch_end(epoch, logs, ctx)`.
    pub fn new(on_epoch_end: G) -> Self {
        EpochEnd(on_epoch_end)
    }
}

impl<F: Float, G> Callback<F> for EpochEnd<G>
where
    G: FnMut(usize, &Logs, &mut Context<'_, F>) -> Result<Control>,
{
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        ctx: &mut Context<'_, F>,
    ) -> Result<Control> {
        (self.0)(epoch, logs, ctx)
    }
}

/// Stops training when a monitored value stops improving, as Keras's `EarlyStopping`.
///
/// | option | default |
/// |---|---|
/// | `monitor` | `"val_loss"` |
/// | `min_delta` | 0 |
/// | `patience` | 0 |
/// | `restore_best_weights` | false |
/// | mode | `max` for keys containing `acc`, else `min` |
///
/// ```
/// use rnnkit::EarlyStopping;
/// let es = EarlyStopping::<f32>::new("val_loss").patience(5).restore_best_weights(true);
/// # let _ = es;
/// ```
#[derive(Debug, Clone)]
pub struct EarlyStopping<F: Float> {
    monitor: Monitor,
    patience: usize,
    restore_best_weights: bool,
    verbose: bool,
    wait: usize,
    best_epoch: Option<usize>,
    best_weights: Option<Vec<ArrayD<F>>>,
    stopped_epoch: Option<usize>,
    warned: bool,
}

impl<F: Float> EarlyStopping<F> {
    /// Monitors `monitor` (a log key such as `"val_loss"` or `"loss"`).
    pub fn new(monitor: &str) -> Self {
        EarlyStopping {
            monitor: Monitor::new(monitor),
            patience: 0,
            restore_best_weights: false,
            verbose: false,
            wait: 0,
            best_epoch: None,
            best_weights: None,
            stopped_epoch: None,
            warned: false,
        }
    }
    /// Minimum change that counts as an improvement.
    pub fn min_delta(mut self, d: f64) -> Self {
        self.monitor.min_delta = d.abs();
        self
    }
    /// Epochs without improvement before stopping.
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p;
        self
    }
    /// Restore the best epoch's weights when training ends.
    pub fn restore_best_weights(mut self, v: bool) -> Self {
        self.restore_best_weights = v;
        self
    }
    /// Print Keras's messages when stopping and restoring.
    pub fn verbose(mut self, v: bool) -> Self {
        self.verbose = v;
        self
    }
    /// The 0-based epoch training stopped after, if it was stopped.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }
    /// The 0-based best epoch seen.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }
}

/// A monitored log value and the best seen so far; Keras's `mode="auto"`: higher is better
/// for keys containing `acc`, lower for everything else.
#[derive(Debug, Clone)]
pub(crate) struct Monitor {
    pub key: String,
    pub min_delta: f64,
    pub best: f64,
}

impl Monitor {
    pub fn new(key: &str) -> Self {
        let best = if key.contains("acc") {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        Monitor {
            key: key.to_string(),
            min_delta: 0.0,
            best,
        }
    }

    /// Whether `current` beats the best by more than `min_delta`.
    pub fn improved(&self, current: f64) -> bool {
        if self.key.contains("acc") {
            current - self.min_delta > self.best
        } else {
            current + self.min_delta < self.best
        }
    }
}

impl<F: Float> Callback<F> for EarlyStopping<F> {
    /// Keras resets the wait, the best value and weights, and the stopped epoch at the
    /// start of every `fit`: a second `fit` starts afresh.
    fn on_train_begin(&mut self, _ctx: &mut Context<'_, F>) -> Result<()> {
        self.monitor.best = Monitor::new(&self.monitor.key).best;
        self.wait = 0;
        self.best_epoch = None;
        self.best_weights = None;
        self.stopped_epoch = None;
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        ctx: &mut Context<'_, F>,
    ) -> Result<Control> {
        let model = &mut *ctx.model;
        let Some(&current) = logs.get(&self.monitor.key) else {
            if !self.warned {
                let keys: Vec<_> = logs.keys().collect();
                eprintln!(
                    "EarlyStopping: `{}` is not in the logs (available: {keys:?}); skipping",
                    self.monitor.key
                );
                self.warned = true;
            }
            return Ok(Control::Continue);
        };
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(model.get_weights());
            self.best_epoch = Some(epoch);
        }
        self.wait += 1;
        if self.monitor.improved(current) {
            self.monitor.best = current;
            self.best_epoch = Some(epoch);
            if self.restore_best_weights {
                self.best_weights = Some(model.get_weights());
            }
            self.wait = 0;
            return Ok(Control::Continue);
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, ctx: &mut Context<'_, F>) -> Result<()> {
        if let (Some(e), true) = (self.stopped_epoch, self.verbose) {
            println!("Epoch {}: early stopping", e + 1);
        }
        if self.restore_best_weights
            && let Some(w) = &self.best_weights
        {
            if self.verbose {
                println!(
                    "Restoring model weights from the end of the best epoch: {}.",
                    self.best_epoch.map_or(0, |e| e + 1)
                );
            }
            // Weights of this model, unless a caller runs the callback by hand on
            // another one: then set_weights refuses and nothing changes.
            ctx.model.set_weights(w)?;
        }
        Ok(())
    }
}

/// Lowers the learning rate when a monitored value stops improving, as Keras's
/// `ReduceLROnPlateau`: after `patience` epochs without an improvement of more than
/// `min_delta`, the rate is multiplied by `factor` (not below `min_lr`), then `cooldown`
/// epochs pass before counting again. The rate becomes a constant (Keras refuses
/// schedules here; rnnkit replaces them).
///
/// | option | default |
/// |---|---|
/// | `monitor` | `"val_loss"` |
/// | `factor` | 0.1 |
/// | `patience` | 10 |
/// | `min_delta` | 1e-4 |
/// | `cooldown` | 0 |
/// | `min_lr` | 0 |
///
/// ```
/// use rnnkit::train::ReduceLROnPlateau;
/// let cb = ReduceLROnPlateau::new("loss").factor(0.5).patience(2).min_lr(1e-5);
/// # let _ = cb;
/// ```
#[derive(Debug, Clone)]
pub struct ReduceLROnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    cooldown: usize,
    min_lr: f64,
    wait: usize,
    cooldown_counter: usize,
    reductions: Vec<(usize, f64)>,
}

impl ReduceLROnPlateau {
    /// Monitors `monitor` (a log key).
    pub fn new(monitor: &str) -> Self {
        let mut m = Monitor::new(monitor);
        m.min_delta = 1e-4;
        ReduceLROnPlateau {
            monitor: m,
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            wait: 0,
            cooldown_counter: 0,
            reductions: Vec::new(),
        }
    }
    /// The factor the rate is multiplied by (in (0, 1)).
    pub fn factor(mut self, f: f64) -> Self {
        self.factor = f;
        self
    }
    /// Epochs without improvement before a reduction.
    pub fn patience(mut self, p: usize) -> Self {
        self.patience = p;
        self
    }
    /// Minimum change that counts as an improvement.
    pub fn min_delta(mut self, d: f64) -> Self {
        self.monitor.min_delta = d.abs();
        self
    }
    /// Epochs to wait after a reduction before counting again.
    pub fn cooldown(mut self, c: usize) -> Self {
        self.cooldown = c;
        self
    }
    /// The rate is never reduced below this.
    pub fn min_lr(mut self, lr: f64) -> Self {
        self.min_lr = lr;
        self
    }
    /// Every reduction so far: (0-based epoch, new rate).
    pub fn reductions(&self) -> &[(usize, f64)] {
        &self.reductions
    }
}

impl<F: Float> Callback<F> for ReduceLROnPlateau {
    fn on_train_begin(&mut self, ctx: &mut Context<'_, F>) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::Config {
                layer: "ReduceLROnPlateau".into(),
                field: "factor",
                reason: format!("expected a value in (0, 1), got {}", self.factor),
            });
        }
        let _ = ctx;
        self.monitor.best = Monitor::new(&self.monitor.key).best;
        self.wait = 0;
        self.cooldown_counter = 0;
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &Logs,
        ctx: &mut Context<'_, F>,
    ) -> Result<Control> {
        let Some(&current) = logs.get(&self.monitor.key) else {
            return Ok(Control::Continue);
        };
        // Keras 3: the cooldown counts down first, and the wait resumes in the epoch the
        // cooldown ends.
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.monitor.improved(current) {
            self.monitor.best = current;
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = ctx.learning_rate();
                if old > f64::from(self.min_lr as f32) {
                    let new = (old * self.factor).max(self.min_lr);
                    ctx.set_learning_rate(new)?;
                    self.reductions.push((epoch, new));
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(Control::Continue)
    }
}
