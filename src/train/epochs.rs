//! The epoch loop every `fit` shares: batches in a seeded order, the live bar and epoch
//! lines, validation, callbacks and checkpoints.

use super::callbacks::{Context, Control, Logs};
use super::logs::{Running, epoch_line, progress_line};
use super::optim::Optimizer;
use super::trainer::{History, Trainer};
use crate::error::Result;
use crate::float::Float;
use crate::init::seeded_rng;
use crate::model::Model;
use ndarray_rand::rand::Rng;
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// One training step on the rows `idx` at (epoch, batch): the loss and the metrics'
/// (sum, count).
pub(super) type BatchStep<'a, F, O> = dyn FnMut(
        &mut Trainer<F, O>,
        &mut dyn Model<F>,
        &[usize],
        (usize, usize),
    ) -> Result<(f64, Vec<(f64, f64)>)>
    + 'a;

/// The validation logs after an epoch, if there is validation data.
pub(super) type Validation<'a, F, O> =
    dyn FnMut(&Trainer<F, O>, &mut dyn Model<F>) -> Result<Option<Logs>> + 'a;

impl<F: Float, O: Optimizer<F>> Trainer<F, O> {
    /// Runs the epochs over the first `n_train` samples: `batch` trains on each batch's
    /// rows, `validate` scores the epoch.
    pub(super) fn run_epochs(
        &mut self,
        model: &mut dyn Model<F>,
        n_train: usize,
        batch: &mut BatchStep<'_, F, O>,
        validate: &mut Validation<'_, F, O>,
    ) -> Result<History> {
        let steps = n_train.div_ceil(self.batch_size);
        let mut history = History::default();
        let mut callbacks = std::mem::take(&mut self.callbacks);
        // Keras's live bar for verbose 1 when stdout is a terminal; plain lines otherwise.
        let live = self.verbose == 1 && std::io::stdout().is_terminal();
        let result = (|| {
            for cb in callbacks.iter_mut() {
                cb.on_train_begin(&mut Context::new(model, &mut self.optimizer))?;
            }
            for e in 0..self.epochs {
                let epoch = self.epoch;
                for cb in callbacks.iter_mut() {
                    cb.on_epoch_begin(epoch, &mut Context::new(model, &mut self.optimizer))?;
                }
                let start = Instant::now();
                if self.verbose > 0 && self.epochs > 1 {
                    println!("Epoch {}/{}", e + 1, self.epochs);
                }
                let mut order: Vec<usize> = (0..n_train).collect();
                if self.shuffle {
                    let mut rng = seeded_rng(self.seed ^ (epoch as u64).rotate_left(32));
                    for i in (1..order.len()).rev() {
                        order.swap(i, rng.random_range(0..=i));
                    }
                }
                let mut running = Running::new(self.metrics.len());
                for (bi, idx) in order.chunks(self.batch_size).enumerate() {
                    for cb in callbacks.iter_mut() {
                        let mut ctx = Context::new(model, &mut self.optimizer);
                        cb.on_train_batch_begin(bi, &mut ctx)?;
                    }
                    let at = (epoch + 1, bi + 1);
                    let (l, ms) = batch(self, model, idx, at)?;
                    running.add(l, idx.len(), ms);
                    if live {
                        let so_far = running.logs(&self.metrics);
                        let secs = start.elapsed().as_secs_f64();
                        print!("\r{}", progress_line(bi + 1, steps, secs, &so_far));
                        let _ = std::io::stdout().flush();
                    }
                    if !callbacks.is_empty() {
                        let so_far = running.logs(&self.metrics);
                        for cb in callbacks.iter_mut() {
                            let mut ctx = Context::new(model, &mut self.optimizer);
                            cb.on_train_batch_end(bi, &so_far, &mut ctx)?;
                        }
                    }
                }
                let mut logs = running.logs(&self.metrics);
                if let Some(val) = validate(self, model)? {
                    for (k, v) in val {
                        logs.insert(format!("val_{k}"), v);
                    }
                }
                self.epoch += 1;
                history.epoch.push(epoch);
                for (k, v) in &logs {
                    history.history.entry(k.clone()).or_default().push(*v);
                }
                if self.verbose > 0 {
                    // On a terminal the live bar's line is replaced by the epoch's.
                    let clear = if live { "\r\x1b[2K" } else { "" };
                    println!(
                        "{clear}{}",
                        epoch_line(self.verbose, steps, start.elapsed().as_secs_f64(), &logs)
                    );
                }
                let mut stop = false;
                for cb in callbacks.iter_mut() {
                    let mut ctx = Context::new(model, &mut self.optimizer);
                    stop |= cb.on_epoch_end(epoch, &logs, &mut ctx)? == Control::Stop;
                }
                if let Some(mut ck) = self.checkpoint.take() {
                    let saved = match ck.due(epoch, &logs) {
                        Some(path) => self.save_checkpoint(model, &path).map(|()| ck.record(path)),
                        None => Ok(()),
                    };
                    self.checkpoint = Some(ck);
                    saved?;
                }
                if stop {
                    break;
                }
            }
            Ok(())
        })();
        // Every callback ends, even after an error; the first error is returned.
        let ended = callbacks
            .iter_mut()
            .map(|cb| cb.on_train_end(&mut Context::new(model, &mut self.optimizer)))
            .fold(Ok(()), Result::and);
        self.callbacks = callbacks;
        result.and(ended).map(|()| history)
    }
}
