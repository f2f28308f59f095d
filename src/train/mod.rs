//! Training: losses, metrics, optimizers, the [`Trainer`] and its callbacks.

mod callbacks;
mod checkpoint;
mod data;
mod dataset;
mod epochs;
mod logs;
mod loss;
mod many;
mod objective;
mod optim;
mod tbptt;
mod trainer;

pub use callbacks::{
    Callback, Context, Control, EarlyStopping, EpochEnd, LambdaCallback, Logs, ReduceLROnPlateau,
};
pub use checkpoint::ModelCheckpoint;
pub use dataset::Data;
pub use loss::{Loss, Metric};
pub use objective::{LossFunction, MetricFunction, PerRow, RowLoss};
pub use optim::{
    Adam, AdamW, Clip, CosineDecay, ExponentialDecay, LearningRate, Optimizer,
    PiecewiseConstantDecay, RmsProp, Sgd,
};
pub use tbptt::TruncatedBptt;
pub use trainer::{History, Trainer};
