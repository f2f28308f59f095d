//! Everything a model needs, in one import: `use rnnkit::prelude::*;` (with
//! `rnnkit::ndarray` for the arrays). Layers and their configurations, the models, the
//! trainer with its optimizers, losses, schedules and callbacks, decoding, echo state
//! networks, and Keras's data one-liners.

pub use crate::io::FileInfo;
pub use crate::utils::{pad_sequences, to_categorical, PadSequences, Side};
pub use crate::{
    mask_from_lengths, seeded_rng, Activation, Adam, AdamW, AdditiveAttentionConfig,
    AttentionConfig, Bidirectional, BidirectionalConfig, Callback, Context, Control, CosineDecay,
    Data, DecodeState, Dense, DenseConfig, DropoutConfig, EarlyStopping, EchoStateNetwork,
    Embedding, EmbeddingConfig, EpochEnd, Error, EsnConfig, ExponentialDecay, Float, Functional,
    GlobalAveragePooling1DConfig, Graph, Gru, GruConfig, History, InputGrads, Inputs, Layer,
    LayerConfig, LayerState, Logs, Loss, Lstm, LstmConfig, Mask, Masking, MaskingConfig, Merge,
    MergeMode, Metric, Mode, Model, ModelCheckpoint, ModelState, Module, Optimizer, OutputGrads,
    Outputs, PiecewiseConstantDecay, ReduceLROnPlateau, RepeatVectorConfig, RmsProp, Sequential,
    Sgd, SimpleRnn, SimpleRnnConfig, StepDecoder, StreamState, Tensor, Trainer, TruncatedBptt,
};
