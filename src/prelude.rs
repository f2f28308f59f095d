//! Everything a model needs, in one import: `use rnnkit::prelude::*;`.

pub use crate::{
    mask_from_lengths, seeded_rng, Activation, Adam, AdamW, Bidirectional, BidirectionalConfig,
    Dense, DenseConfig, DropoutConfig, EarlyStopping, Embedding, EmbeddingConfig, Error, Float,
    Functional, GlobalAveragePooling1DConfig, Graph, Gru, GruConfig, History, Layer, LayerConfig,
    Loss, Lstm, LstmConfig, Mask, Masking, MaskingConfig, Merge, MergeMode, Metric, Mode, Model,
    Optimizer, RepeatVectorConfig, RmsProp, Sequential, Sgd, SimpleRnn, SimpleRnnConfig,
    StreamState, Trainer, TruncatedBptt,
};
