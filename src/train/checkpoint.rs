//! Checkpoints during `fit`: Keras's `ModelCheckpoint`, saving model and optimizer state.

use super::callbacks::{Logs, Monitor};
use super::optim::Optimizer;
use super::trainer::{Trainer, fingerprint};
use crate::error::{FileError, Result};
use crate::float::Float;
use crate::io::sealed::Decode;
use crate::io::{self, AnyModel, CheckpointInfo, Header, OPTIMIZER_PREFIX, Writer};
use crate::model::Model;
#[cfg(doc)]
use crate::model::Sequential;
use std::path::{Path, PathBuf};

/// Saves training checkpoints during [`Trainer::fit`](crate::Trainer::fit): the model, the
/// optimizer's state, the epoch and the shuffle seed, so that
/// [`Trainer::resume`](crate::Trainer::resume) continues bit for bit as if training had
/// never stopped. Attach it with [`Trainer::checkpoint`](crate::Trainer::checkpoint).
///
/// | option | default | Keras |
/// |---|---|---|
/// | path | (given) | `filepath`; `{epoch}` is replaced by the 1-based epoch |
/// | `every` | 1 epoch | `save_freq` in epochs |
/// | `save_best_only` | off | `save_best_only=True, monitor=...` (`max` for `acc` keys, else `min`) |
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ModelCheckpoint;
/// let dir = std::env::temp_dir();
/// let every_5 = ModelCheckpoint::new(dir.join("ckpt-{epoch}.safetensors")).every(5);
/// let best = ModelCheckpoint::new(dir.join("best.safetensors")).save_best_only("val_loss");
/// let trainer = Trainer::<f32, _>::new(Adam::default(), Loss::Mse).checkpoint(best);
/// # let _ = (every_5, trainer);
/// ```
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    path: PathBuf,
    every: usize,
    best: Option<Monitor>,
    saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Checkpoints to `path` after every epoch.
    pub fn new(path: impl AsRef<Path>) -> Self {
        ModelCheckpoint {
            path: path.as_ref().to_path_buf(),
            every: 1,
            best: None,
            saved: Vec::new(),
        }
    }

    /// Checkpoints every `n` epochs (`n` = 0 is taken as 1).
    pub fn every(mut self, n: usize) -> Self {
        self.every = n.max(1);
        self
    }

    /// Saves only when `monitor` (a log key such as `"val_loss"`) improves on the best seen.
    pub fn save_best_only(mut self, monitor: &str) -> Self {
        self.best = Some(Monitor::new(monitor));
        self
    }

    /// The files written so far, oldest first.
    pub fn saved(&self) -> &[PathBuf] {
        &self.saved
    }

    /// Where to save after 0-based `epoch`, or `None` when this epoch is not saved.
    pub(crate) fn due(&mut self, epoch: usize, logs: &Logs) -> Option<PathBuf> {
        if !(epoch + 1).is_multiple_of(self.every) {
            return None;
        }
        if let Some(m) = &mut self.best {
            let current = *logs.get(&m.key)?;
            if !m.improved(current) {
                return None;
            }
            m.best = current;
        }
        let path = self.path.to_string_lossy();
        let path = if path.contains("{epoch}") {
            PathBuf::from(path.replace("{epoch}", &(epoch + 1).to_string()))
        } else {
            self.path.clone()
        };
        Some(path)
    }

    pub(crate) fn record(&mut self, path: PathBuf) {
        if !self.saved.contains(&path) {
            self.saved.push(path);
        }
    }
}

/// Saving and resuming: the trainer's state next to the model, in one file.
impl<F: Float, O: Optimizer<F>> Trainer<F, O> {
    /// Saves a training checkpoint: the model, the optimizer's state (moments and step
    /// count), the epochs done and the shuffle seed, in one safetensors file (see
    /// [`crate::io`]), atomically. [`Trainer::resume`] continues from it bit for bit.
    ///
    /// # Errors
    /// As [`Save::save`](crate::io::Save::save).
    pub fn save_checkpoint(
        &self,
        model: &dyn Model<F>,
        path: impl AsRef<std::path::Path>,
    ) -> Result<()> {
        let mut w = Writer::model(model)?;
        let names = self.optimizer.state_names();
        for (group, arrays) in names.iter().zip(self.optimizer.state()) {
            for (slot, a) in arrays.iter().enumerate() {
                w.tensor(format!("{OPTIMIZER_PREFIX}{group}/{slot}"), a)?;
            }
        }
        let info = CheckpointInfo {
            epoch: self.epoch,
            optimizer: self.optimizer.name().to_string(),
            iterations: self.optimizer.iterations(),
            seed: self.seed,
            state: names.iter().map(|s| s.to_string()).collect(),
            rng: model.state().map_or_else(Vec::new, |s| s.rng_state()),
        };
        w.meta(
            "checkpoint",
            serde_json::to_string(&info).expect("plain data serialises"),
        );
        io::write_atomic(path.as_ref(), &w.finish()?)
    }

    /// Loads a checkpoint written by [`Trainer::save_checkpoint`] (or the
    /// [`ModelCheckpoint`] callback): returns the model, whichever type it is (a
    /// [`Sequential`] or a [`Functional`](crate::Functional), as an [`AnyModel`]: a
    /// [`Model`] to `fit` on, or `match` it for the concrete type), and restores this
    /// trainer's optimizer state, epoch count and shuffle seed, so the next `fit` continues
    /// exactly where the saved run stopped. The trainer's optimizer must be of the same
    /// kind.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::{Array2, Array3};
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let x = Array3::from_shape_fn((8, 3, 1), |(i, t, _)| 0.1 * (i + t) as f64).into_dyn();
    /// let y = Array2::from_shape_fn((8, 1), |(i, _)| 0.1 * i as f64).into_dyn();
    /// let mut model = Sequential::<f64>::new(&[3, 1]).push(GruConfig::new(4))?.push(DenseConfig::new(1))?;
    /// let mut trainer = Trainer::new(Adam::default(), Loss::Mse).batch_size(4).epochs(2);
    /// trainer.fit(&mut model, (&x, &y))?;
    /// let path = std::env::temp_dir().join("rnnkit-doc-resume.safetensors");
    /// trainer.save_checkpoint(&model, &path)?;
    ///
    /// let mut again = Trainer::new(Adam::default(), Loss::Mse).batch_size(4).epochs(2);
    /// let mut resumed = again.resume(&path)?;
    /// assert_eq!(again.epochs_done(), 2);
    /// again.fit(&mut resumed, (&x, &y))?;
    /// trainer.fit(&mut model, (&x, &y))?;
    /// assert_eq!(resumed.get_weights(), model.get_weights()); // bit for bit
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io); [`Error::File`](crate::Error::File) for an invalid file, a model file that is not a
    /// checkpoint, another optimizer, or state that does not fit the model.
    pub fn resume(&mut self, path: impl AsRef<std::path::Path>) -> Result<AnyModel<F>> {
        let path = path.as_ref();
        let bytes = io::read_file(path)?;
        self.restore(&bytes).map_err(|e| io::file_error(path, e))
    }

    fn restore(&mut self, bytes: &[u8]) -> std::result::Result<AnyModel<F>, FileError> {
        let header = Header::parse(bytes)?;
        let info = self.check_info(header.checkpoint.clone())?;
        let mut model = AnyModel::decode(&header, &|n| n.starts_with(OPTIMIZER_PREFIX))?;
        restore_streams(&mut model, &info)?;
        self.restore_state(&header.c, info, &model)?;
        Ok(model)
    }

    /// The checkpoint's training state, checked against this trainer.
    fn check_info(
        &self,
        info: Option<CheckpointInfo>,
    ) -> std::result::Result<CheckpointInfo, FileError> {
        let info = info.ok_or_else(|| {
            FileError::Checkpoint(
                "a model file without training state; load it with Load::load".into(),
            )
        })?;
        // Every epoch takes at least one step; beyond 2^53 steps the count loses integers.
        if info.iterations > 1 << 53 || info.epoch as u64 > info.iterations {
            return Err(FileError::Checkpoint(format!(
                "{} epochs and {} steps cannot both be true (at most 2^53 steps, at least one per epoch)",
                info.epoch, info.iterations
            )));
        }
        if info.optimizer != self.optimizer.name() {
            return Err(FileError::Checkpoint(format!(
                "saved with optimizer {:?}, this trainer has {:?}",
                info.optimizer,
                self.optimizer.name()
            )));
        }
        let names = self.optimizer.state_names();
        if info.state != names {
            return Err(FileError::Checkpoint(format!(
                "optimizer state groups {:?}, expected {names:?}",
                info.state
            )));
        }
        Ok(info)
    }

    /// Loads the optimizer state, epoch count and seed of a checkpoint for `model`.
    fn restore_state(
        &mut self,
        c: &io::Container<'_>,
        info: CheckpointInfo,
        model: &dyn Model<F>,
    ) -> std::result::Result<(), FileError> {
        let names = self.optimizer.state_names();
        let mut shapes = Vec::new();
        model.visit_params(&mut |_, p| shapes.push(p.value.shape().to_vec()));
        let present: Vec<&str> = c
            .names()
            .into_iter()
            .filter(|n| n.starts_with(OPTIMIZER_PREFIX))
            .collect();
        let mut state = Vec::new();
        let mut used = 0;
        for group in names {
            let prefix = format!("{OPTIMIZER_PREFIX}{group}/");
            let count = present.iter().filter(|n| n.starts_with(&prefix)).count();
            if count > shapes.len() {
                return Err(FileError::Checkpoint(format!(
                    "{count} `{prefix}*` tensors for a model with {} weights",
                    shapes.len()
                )));
            }
            let arrays = shapes[..count]
                .iter()
                .enumerate()
                .map(|(slot, shape)| c.array::<F>(&format!("{prefix}{slot}"), shape))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            used += count;
            state.push(arrays);
        }
        if used != present.len() {
            let stray = present
                .iter()
                .find(|n| {
                    !names
                        .iter()
                        .any(|g| n.starts_with(&format!("{OPTIMIZER_PREFIX}{g}/")))
                })
                .unwrap_or(&"optimizer/?");
            return Err(FileError::UnexpectedTensor(stray.to_string()));
        }
        self.optimizer
            .set_state(info.iterations, state)
            .map_err(|e| FileError::Checkpoint(e.to_string()))?;
        self.epoch = info.epoch;
        self.seed = info.seed;
        self.bound = Some(fingerprint(model));
        Ok(())
    }
}

/// Puts a checkpoint's random stream state into the model it holds (none recorded: fresh
/// streams, as files before 0.2 resume).
fn restore_streams<F: Float>(
    model: &mut dyn Model<F>,
    info: &CheckpointInfo,
) -> std::result::Result<(), FileError> {
    if info.rng.is_empty() {
        return Ok(());
    }
    let Some(state) = model.state_mut() else {
        return Err(FileError::Checkpoint(
            "random streams saved for a model that has none".into(),
        ));
    };
    state
        .set_rng_state(&info.rng)
        .map_err(|e| FileError::Checkpoint(format!("random streams: {e}")))
}
