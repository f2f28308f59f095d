//! Everything a model needs, in one import: `use rnnkit::prelude::*;`.

pub use crate::{
    mask_from_lengths, seeded_rng, Activation, Adam, AdamW, Bidirectional, BidirectionalConfig,
    Dense, DenseConfig, EarlyStopping, Embedding, EmbeddingConfig, Error, Float, Gru, GruConfig,
    History, Layer, LayerConfig, Loss, Lstm, LstmConfig, Mask, Masking, MaskingConfig, MergeMode,
    Metric, Mode, Model, Optimizer, RmsProp, Sequential, Sgd, SimpleRnn, SimpleRnnConfig,
    StreamState, Trainer, TruncatedBptt,
};
