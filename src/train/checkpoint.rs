//! Checkpoints during `fit`: Keras's `ModelCheckpoint`, saving model and optimizer state.

use super::callbacks::{Logs, Monitor};
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
        if (epoch + 1) % self.every != 0 {
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
