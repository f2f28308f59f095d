//! Callbacks run by `Trainer::fit` at the end of each epoch.

use crate::float::Float;
use crate::model::Model;
use ndarray::ArrayD;
use std::collections::BTreeMap;

/// One epoch's logs: `loss`, metrics, and `val_` versions, as in Keras.
pub type Logs = BTreeMap<String, f64>;

/// What a callback asks of the training loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on training.
    Continue,
    /// Stop after this epoch (Keras's `model.stop_training = True`).
    Stop,
}

/// A training callback (Keras's `keras.callbacks.Callback`, the hooks `fit` uses).
pub trait Callback<F: Float> {
    /// Called once when `fit` starts (Keras resets a callback's state here).
    fn on_train_begin(&mut self, model: &mut dyn Model<F>) {
        let _ = model;
    }
    /// Called after each epoch (0-based) with its logs.
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut dyn Model<F>) -> Control;
    /// Called once when training ends (normally or stopped).
    ///
    /// # Errors
    /// Whatever the callback cannot do to the model (then `fit` returns the error).
    fn on_train_end(&mut self, model: &mut dyn Model<F>) -> crate::Result<()> {
        let _ = model;
        Ok(())
    }
}

/// A callback from a closure, as Keras's `LambdaCallback(on_epoch_end=...)`.
///
/// ```
/// use rnnkit::{Control, LambdaCallback, Logs};
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
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _model: &mut dyn Model<F>) -> Control {
        (self.0)(epoch, logs)
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
    fn on_train_begin(&mut self, _model: &mut dyn Model<F>) {
        self.monitor.best = Monitor::new(&self.monitor.key).best;
        self.wait = 0;
        self.best_epoch = None;
        self.best_weights = None;
        self.stopped_epoch = None;
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, model: &mut dyn Model<F>) -> Control {
        let Some(&current) = logs.get(&self.monitor.key) else {
            if !self.warned {
                let keys: Vec<_> = logs.keys().collect();
                eprintln!(
                    "EarlyStopping: `{}` is not in the logs (available: {keys:?}); skipping",
                    self.monitor.key
                );
                self.warned = true;
            }
            return Control::Continue;
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
            return Control::Continue;
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            return Control::Stop;
        }
        Control::Continue
    }

    fn on_train_end(&mut self, model: &mut dyn Model<F>) -> crate::Result<()> {
        if let (Some(e), true) = (self.stopped_epoch, self.verbose) {
            println!("Epoch {}: early stopping", e + 1);
        }
        if self.restore_best_weights {
            if let Some(w) = &self.best_weights {
                if self.verbose {
                    println!(
                        "Restoring model weights from the end of the best epoch: {}.",
                        self.best_epoch.map_or(0, |e| e + 1)
                    );
                }
                // Weights of this model, unless a caller runs the callback by hand on
                // another one: then set_weights refuses and nothing changes.
                model.set_weights(w)?;
            }
        }
        Ok(())
    }
}
