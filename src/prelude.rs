//! Everything a model needs, in one import: `use rnnkit::prelude::*;`.

pub use crate::{
    mask_from_lengths, seeded_rng, Activation, Bidirectional, BidirectionalConfig, Dense,
    DenseConfig, Error, Float, Gru, GruConfig, Layer, LayerConfig, Lstm, LstmConfig, Mask, Masking,
    MaskingConfig, MergeMode, Mode, Sequential, SimpleRnn, SimpleRnnConfig,
};
