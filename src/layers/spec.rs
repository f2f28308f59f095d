//! [`LayerSpec`]: any built-in layer's configuration, tagged with its Keras class name. This
//! is what a model's architecture lists and what a model file stores.

use super::attention::{AdditiveAttentionConfig, AttentionConfig};
use super::bidirectional::BidirectionalSpec;
use super::dense::DenseConfig;
use super::dropout::DropoutConfig;
use super::embedding::EmbeddingConfig;
use super::gru::GruConfig;
use super::leaky_rnn::LeakyRnnConfig;
use super::lstm::LstmConfig;
use super::masking::MaskingConfig;
use super::merge::{AddConfig, AverageConfig, ConcatenateConfig, MultiplyConfig};
use super::pooling::{GlobalAveragePooling1DConfig, RepeatVectorConfig};
use super::simple_rnn::SimpleRnnConfig;
use super::{Dim, Layer, LayerConfig};
use crate::error::Result;
use crate::float::Float;
use crate::init::StdRng;
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Serialize};

/// The Keras class names of the built-in layers.
pub const LAYER_TYPES: &str = "SimpleRNN, LSTM, GRU, LeakyRNN, Dense, Masking, Bidirectional, Embedding, Dropout, RepeatVector, GlobalAveragePooling1D, Attention, AdditiveAttention, Concatenate, Add, Multiply, Average";

/// One built-in layer's configuration, tagged with its Keras class name: the JSON form is
/// `{"layer": "LSTM", "config": {"units": 8, ...}}` with Keras's config keys.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::layers::LayerSpec;
/// let spec: LayerSpec =
///     serde_json::from_str(r#"{"layer": "LSTM", "config": {"units": 8, "return_sequences": true}}"#)
///         .unwrap();
/// assert_eq!(spec, LayerSpec::Lstm(LstmConfig::new(8).return_sequences(true)));
/// assert_eq!(spec.type_name(), "LSTM");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "layer", content = "config")]
#[non_exhaustive]
pub enum LayerSpec {
    /// `SimpleRNN`.
    #[serde(rename = "SimpleRNN")]
    SimpleRnn(SimpleRnnConfig),
    /// `LSTM`.
    #[serde(rename = "LSTM")]
    Lstm(LstmConfig),
    /// `GRU`.
    #[serde(rename = "GRU")]
    Gru(GruConfig),
    /// `LeakyRNN` (rnnkit's leaky units; Keras has no such layer).
    #[serde(rename = "LeakyRNN")]
    LeakyRnn(LeakyRnnConfig),
    /// `Dense`.
    Dense(DenseConfig),
    /// `Masking`.
    Masking(MaskingConfig),
    /// `Bidirectional` around one of the recurrent layers.
    Bidirectional(BidirectionalSpec),
    /// `Embedding`.
    Embedding(EmbeddingConfig),
    /// `Dropout`.
    Dropout(DropoutConfig),
    /// `RepeatVector`.
    RepeatVector(RepeatVectorConfig),
    /// `GlobalAveragePooling1D`.
    GlobalAveragePooling1D(GlobalAveragePooling1DConfig),
    /// `Attention` (Luong), called on a list of tensors in a graph model.
    Attention(AttentionConfig),
    /// `AdditiveAttention` (Bahdanau), called on a list of tensors in a graph model.
    AdditiveAttention(AdditiveAttentionConfig),
    /// `Concatenate`, called on a list of tensors in a graph model.
    Concatenate(ConcatenateConfig),
    /// `Add`, called on a list of tensors in a graph model.
    Add(AddConfig),
    /// `Multiply`, called on a list of tensors in a graph model.
    Multiply(MultiplyConfig),
    /// `Average`, called on a list of tensors in a graph model.
    Average(AverageConfig),
}

impl LayerSpec {
    /// The Keras class name (`"LSTM"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerSpec::SimpleRnn(_) => "SimpleRNN",
            LayerSpec::Lstm(_) => "LSTM",
            LayerSpec::Gru(_) => "GRU",
            LayerSpec::LeakyRnn(_) => "LeakyRNN",
            LayerSpec::Dense(_) => "Dense",
            LayerSpec::Masking(_) => "Masking",
            LayerSpec::Bidirectional(_) => "Bidirectional",
            LayerSpec::Embedding(_) => "Embedding",
            LayerSpec::Dropout(_) => "Dropout",
            LayerSpec::RepeatVector(_) => "RepeatVector",
            LayerSpec::GlobalAveragePooling1D(_) => "GlobalAveragePooling1D",
            LayerSpec::Attention(_) => "Attention",
            LayerSpec::AdditiveAttention(_) => "AdditiveAttention",
            LayerSpec::Concatenate(_) => "Concatenate",
            LayerSpec::Add(_) => "Add",
            LayerSpec::Multiply(_) => "Multiply",
            LayerSpec::Average(_) => "Average",
        }
    }

    /// Whether the layer carries its state from call to call (`stateful`).
    pub(crate) fn is_stateful(&self) -> bool {
        use super::bidirectional::BidirectionalSpec as B;
        match self {
            LayerSpec::SimpleRnn(c) => c.stateful,
            LayerSpec::Lstm(c) => c.stateful,
            LayerSpec::Gru(c) => c.stateful,
            LayerSpec::LeakyRnn(c) => c.stateful,
            LayerSpec::Bidirectional(B::SimpleRnn(b)) => b.layer.stateful,
            LayerSpec::Bidirectional(B::LeakyRnn(b)) => b.layer.stateful,
            LayerSpec::Bidirectional(B::Lstm(b)) => b.layer.stateful,
            LayerSpec::Bidirectional(B::Gru(b)) => b.layer.stateful,
            _ => false,
        }
    }

    /// Whether the layer is called on a list of tensors (the merges and attention).
    pub(crate) fn takes_list(&self) -> bool {
        matches!(
            self,
            LayerSpec::Concatenate(_)
                | LayerSpec::Add(_)
                | LayerSpec::Multiply(_)
                | LayerSpec::Average(_)
                | LayerSpec::Attention(_)
                | LayerSpec::AdditiveAttention(_)
        )
    }

    /// The layer's name, if the configuration gives one.
    pub fn name(&self) -> Option<&str> {
        match self {
            LayerSpec::SimpleRnn(c) => c.name.as_deref(),
            LayerSpec::Lstm(c) => c.name.as_deref(),
            LayerSpec::Gru(c) => c.name.as_deref(),
            LayerSpec::LeakyRnn(c) => c.name.as_deref(),
            LayerSpec::Dense(c) => c.name.as_deref(),
            LayerSpec::Masking(c) => c.name.as_deref(),
            LayerSpec::Bidirectional(b) => b.name(),
            LayerSpec::Embedding(c) => c.name.as_deref(),
            LayerSpec::Dropout(c) => c.name.as_deref(),
            LayerSpec::RepeatVector(c) => c.name.as_deref(),
            LayerSpec::GlobalAveragePooling1D(c) => c.name.as_deref(),
            LayerSpec::Attention(c) => c.name.as_deref(),
            LayerSpec::AdditiveAttention(c) => c.name.as_deref(),
            LayerSpec::Concatenate(c) => c.name.as_deref(),
            LayerSpec::Add(c) => c.name.as_deref(),
            LayerSpec::Multiply(c) => c.name.as_deref(),
            LayerSpec::Average(c) => c.name.as_deref(),
        }
    }

    /// The configuration as a builder.
    fn config<F: Float>(&self) -> &dyn LayerConfig<F> {
        match self {
            LayerSpec::SimpleRnn(c) => c,
            LayerSpec::Lstm(c) => c,
            LayerSpec::Gru(c) => c,
            LayerSpec::LeakyRnn(c) => c,
            LayerSpec::Dense(c) => c,
            LayerSpec::Masking(c) => c,
            LayerSpec::Bidirectional(c) => c.config(),
            LayerSpec::Embedding(c) => c,
            LayerSpec::Dropout(c) => c,
            LayerSpec::RepeatVector(c) => c,
            LayerSpec::GlobalAveragePooling1D(c) => c,
            LayerSpec::Attention(c) => c,
            LayerSpec::AdditiveAttention(c) => c,
            LayerSpec::Concatenate(c) => c,
            LayerSpec::Add(c) => c,
            LayerSpec::Multiply(c) => c,
            LayerSpec::Average(c) => c,
        }
    }

    /// `(units, recurrent)` of the layer (of the wrapped layer for Bidirectional); `None`
    /// for layers without weights. Loaders check these against the data they hold before
    /// anything is allocated.
    pub fn size(&self) -> Option<(usize, bool)> {
        match self {
            LayerSpec::SimpleRnn(c) => Some((c.units, true)),
            LayerSpec::Lstm(c) => Some((c.units, true)),
            LayerSpec::Gru(c) => Some((c.units, true)),
            LayerSpec::LeakyRnn(c) => Some((c.units, true)),
            LayerSpec::Dense(c) => Some((c.units, false)),
            LayerSpec::Masking(_) => None,
            LayerSpec::Bidirectional(b) => Some((b.units(), true)),
            LayerSpec::Embedding(c) => Some((c.output_dim, false)),
            LayerSpec::Dropout(_)
            | LayerSpec::RepeatVector(_)
            | LayerSpec::GlobalAveragePooling1D(_)
            | LayerSpec::Attention(_)
            | LayerSpec::AdditiveAttention(_)
            | LayerSpec::Concatenate(_)
            | LayerSpec::Add(_)
            | LayerSpec::Multiply(_)
            | LayerSpec::Average(_) => None,
        }
    }

    /// The fewest weights the layer can have on `inputs` input features: what a loader
    /// checks against the data a file holds before allocating anything.
    pub(crate) fn min_weights(&self, inputs: usize) -> Option<usize> {
        if let LayerSpec::Embedding(c) = self {
            return c.input_dim.checked_mul(c.output_dim);
        }
        let (units, recurrent) = self.size()?;
        let copies = if matches!(self, LayerSpec::Bidirectional(_)) {
            2
        } else {
            1
        };
        units.checked_mul(inputs).and_then(|k| {
            let r = if recurrent {
                units.checked_mul(units)?
            } else {
                0
            };
            k.checked_add(r)?.checked_mul(copies)
        })
    }
}

impl<F: Float> LayerConfig<F> for LayerSpec {
    fn build(&self, input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        self.config::<F>().build(input, rng)
    }
    fn name(&self) -> Option<&str> {
        LayerSpec::name(self)
    }
    fn default_name(&self) -> &'static str {
        self.config::<F>().default_name()
    }
}

/// Removes and parses one key of a config object (for configs read by hand).
pub(crate) fn take_key<T: DeserializeOwned, E: de::Error>(
    map: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> std::result::Result<Option<T>, E> {
    map.remove(key)
        .map(|v| serde_json::from_value(v).map_err(|e| E::custom(format!("`{key}`: {e}"))))
        .transpose()
}
