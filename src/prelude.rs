//! Everything a model needs, in one import: `use rnnkit::prelude::*;` (with
//! `rnnkit::ndarray` for the arrays). Layers and their configurations, the models, the
//! trainer with its optimizers, losses, schedules and callbacks, decoding, echo state
//! networks, model files (save, load, inspect), and Keras's data one-liners.

pub use crate::io::{AnyModel, FileInfo, Load, Save};
pub use crate::layers::{
    AddConfig, AdditiveAttentionConfig, AttentionConfig, AverageConfig, Bidirectional,
    BidirectionalConfig, ConcatenateConfig, Dense, DenseConfig, Dim, DropoutConfig, Embedding,
    EmbeddingConfig, GlobalAveragePooling1DConfig, Gru, GruConfig, InputGrads, Inputs, Layer,
    LayerConfig, LayerState, LeakyRnn, LeakyRnnConfig, Lstm, LstmConfig, Mask, Masking,
    MaskingConfig, MergeMode, Mode, MultiplyConfig, OutputGrads, Outputs, RepeatVectorConfig,
    SimpleRnn, SimpleRnnConfig,
};
pub use crate::model::{
    DecodeState, Functional, Graph, Model, ModelState, Sequential, StepDecoder, StreamState, Tensor,
};
pub use crate::param::{Module, Param};
pub use crate::reservoir::{EchoStateNetwork, EsnConfig};
pub use crate::train::{
    Adam, AdamW, Callback, Context, Control, CosineDecay, Data, EarlyStopping, EpochEnd,
    ExponentialDecay, History, Logs, Loss, Metric, ModelCheckpoint, Optimizer,
    PiecewiseConstantDecay, ReduceLROnPlateau, RmsProp, Sgd, Trainer, TruncatedBptt,
};
pub use crate::utils::{PadSequences, Side, pad_sequences, to_categorical};
pub use crate::{Activation, Error, Float, mask_from_lengths, seeded_rng};
