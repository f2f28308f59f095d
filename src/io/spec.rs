//! The architecture of a model as data: what a model file stores next to the weights, and
//! what [`Sequential::from_spec`](crate::Sequential::from_spec) rebuilds a model from.
//!
//! The JSON form follows Keras's names: `{"layer": "LSTM", "config": {"units": 8, ...}}`,
//! the same `LayerSpec` the Keras fixtures and `tools/keras_export.py` write.

use crate::activation::Activation;
use crate::error::{Error, FileError, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::layers::bidirectional::{BidirectionalConfig, MergeMode};
use crate::layers::dense::DenseConfig;
use crate::layers::gru::GruConfig;
use crate::layers::lstm::LstmConfig;
use crate::layers::masking::MaskingConfig;
use crate::layers::recurrent::{CellConfig, RecurrentConfig};
use crate::layers::simple_rnn::SimpleRnnConfig;
use crate::layers::{Dim, Layer, LayerConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The layer types a model file may name (Keras class names).
pub const LAYER_TYPES: &str = "SimpleRNN, LSTM, GRU, Dense, Masking, Bidirectional";

/// One layer's configuration, tagged with its Keras class name.
///
/// ```
/// use rnnkit::io::LayerSpec;
/// let spec: LayerSpec =
///     serde_json::from_str(r#"{"layer": "LSTM", "config": {"units": 8, "return_sequences": true}}"#)
///         .unwrap();
/// assert_eq!(spec.type_name(), "LSTM");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "layer", content = "config")]
#[non_exhaustive]
pub enum LayerSpec {
    /// `SimpleRNN`.
    #[serde(rename = "SimpleRNN")]
    SimpleRnn(RecurrentSpec),
    /// `LSTM`.
    #[serde(rename = "LSTM")]
    Lstm(RecurrentSpec),
    /// `GRU`.
    #[serde(rename = "GRU")]
    Gru(RecurrentSpec),
    /// `Dense`.
    Dense(DenseSpec),
    /// `Masking`.
    Masking(MaskingSpec),
    /// `Bidirectional` around one of the recurrent layers.
    Bidirectional(BidirectionalSpec),
}

/// The configuration of `SimpleRNN`, `LSTM` and `GRU` (Keras's keys and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrentSpec {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of units.
    pub units: usize,
    /// Activation (default `tanh`).
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Gate activation, LSTM and GRU only (default `sigmoid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrent_activation: Option<Activation>,
    /// Whether the layer has a bias (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Return every step's output.
    #[serde(default)]
    pub return_sequences: bool,
    /// Process the sequence backwards.
    #[serde(default)]
    pub go_backwards: bool,
    /// Zeros at masked steps.
    #[serde(default)]
    pub zero_output_for_mask: bool,
    /// LSTM only: forget bias initialised to 1 (affects initialisation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_forget_bias: Option<bool>,
    /// GRU only: reset gate after the recurrent product (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_after: Option<bool>,
}

/// The configuration of `Dense`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseSpec {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Output features.
    pub units: usize,
    /// Activation (default `linear`).
    #[serde(default)]
    pub activation: Activation,
    /// Whether the layer has a bias (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
}

/// The configuration of `Masking`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingSpec {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Steps whose features all equal this value are masked (default 0).
    #[serde(default)]
    pub mask_value: f64,
}

/// The configuration of `Bidirectional`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidirectionalSpec {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How the directions merge (default `concat`).
    #[serde(default)]
    pub merge_mode: MergeMode,
    /// The wrapped recurrent layer (its `go_backwards` is the forward direction's).
    pub layer: Box<LayerSpec>,
}

/// A whole [`Sequential`](crate::Sequential) model: input shape and layers.
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let model = Sequential::<f32>::new(&[3, 1])
///     .push(SimpleRnnConfig::new(20))?
///     .push(DenseConfig::new(1))?;
/// let spec = model.spec()?;
/// let json = serde_json::to_string(&spec).unwrap();
/// assert!(json.contains(r#""layer":"SimpleRNN""#));
/// let again = Sequential::<f32>::from_spec(&serde_json::from_str(&json).unwrap(), 0)?;
/// assert_eq!(again.param_count(), 461);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Model name.
    #[serde(default = "sequential")]
    pub name: String,
    /// Input shape without the batch axis; `null` for an open dimension.
    pub input_shape: Vec<Dim>,
    /// The layers, first to last.
    pub layers: Vec<LayerSpec>,
}

fn tanh() -> Activation {
    Activation::Tanh
}
fn yes() -> bool {
    true
}
fn sequential() -> String {
    "sequential".into()
}

/// Serde through the Keras name, for the enums the configs hold.
macro_rules! serde_by_name {
    ($t:ty, $name:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                #[allow(clippy::redundant_closure_call)]
                s.serialize_str(($name)(*self))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_by_name!(Activation, Activation::keras_name);
serde_by_name!(MergeMode, |m: MergeMode| m.keras_name().unwrap_or("none"));

impl LayerSpec {
    /// The Keras class name (`"LSTM"`).
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerSpec::SimpleRnn(_) => "SimpleRNN",
            LayerSpec::Lstm(_) => "LSTM",
            LayerSpec::Gru(_) => "GRU",
            LayerSpec::Dense(_) => "Dense",
            LayerSpec::Masking(_) => "Masking",
            LayerSpec::Bidirectional(_) => "Bidirectional",
        }
    }

    /// The layer's name, if the spec gives one.
    pub fn name(&self) -> Option<&str> {
        match self {
            LayerSpec::SimpleRnn(s) | LayerSpec::Lstm(s) | LayerSpec::Gru(s) => s.name.as_deref(),
            LayerSpec::Dense(s) => s.name.as_deref(),
            LayerSpec::Masking(s) => s.name.as_deref(),
            LayerSpec::Bidirectional(s) => s.name.as_deref(),
        }
    }

    /// The spec of a recurrent layer from its parts (`type_name` as [`Layer::type_name`]).
    pub(crate) fn recurrent(type_name: &str, spec: RecurrentSpec) -> Option<LayerSpec> {
        match type_name {
            "SimpleRNN" => Some(LayerSpec::SimpleRnn(spec)),
            "LSTM" => Some(LayerSpec::Lstm(spec)),
            "GRU" => Some(LayerSpec::Gru(spec)),
            _ => None,
        }
    }

    /// The builder this spec describes.
    ///
    /// # Errors
    /// [`Error::Config`] for an option the layer type does not have (`reset_after` on an
    /// LSTM, a Bidirectional around a Dense, ...).
    pub fn config<F: Float>(&self) -> Result<Box<dyn LayerConfig<F>>> {
        /// A plain recurrent layer.
        struct Plain;
        impl<F: Float> WithRecurrent<F> for Plain {
            fn with<K: CellConfig>(self, c: RecurrentConfig<K>) -> Box<dyn LayerConfig<F>> {
                Box::new(c)
            }
        }
        /// The wrapped layer of a Bidirectional.
        struct Wrap<'a>(&'a BidirectionalSpec);
        impl<F: Float> WithRecurrent<F> for Wrap<'_> {
            fn with<K: CellConfig>(self, c: RecurrentConfig<K>) -> Box<dyn LayerConfig<F>> {
                let mut b = BidirectionalConfig::new(c).merge_mode(self.0.merge_mode);
                b.name.clone_from(&self.0.name);
                Box::new(b)
            }
        }
        Ok(match self {
            LayerSpec::Dense(s) => {
                let mut c = DenseConfig::new(s.units)
                    .activation(s.activation)
                    .use_bias(s.use_bias);
                c.name.clone_from(&s.name);
                Box::new(c)
            }
            LayerSpec::Masking(s) => {
                let mut c = MaskingConfig::new(s.mask_value);
                c.name.clone_from(&s.name);
                Box::new(c)
            }
            LayerSpec::Bidirectional(s) => match s.layer.build_recurrent(Wrap(s))? {
                Some(c) => c,
                None => {
                    return Err(Error::Config {
                        layer: s.name.clone().unwrap_or_else(|| "bidirectional".into()),
                        field: "layer",
                        reason: format!(
                            "Bidirectional wraps SimpleRNN, LSTM or GRU, not {}",
                            s.layer.type_name()
                        ),
                    })
                }
            },
            recurrent => recurrent
                .build_recurrent(Plain)?
                .expect("SimpleRNN, LSTM and GRU are recurrent"),
        })
    }

    /// Builds the typed configuration of a recurrent spec and hands it to `w`; `None` for
    /// the other layer types.
    fn build_recurrent<F: Float, W: WithRecurrent<F>>(
        &self,
        w: W,
    ) -> Result<Option<Box<dyn LayerConfig<F>>>> {
        Ok(Some(match self {
            LayerSpec::SimpleRnn(s) => {
                s.only(
                    self,
                    "recurrent_activation",
                    s.recurrent_activation.is_some(),
                )?;
                w.with(s.base(SimpleRnnConfig::new(s.units), self)?)
            }
            LayerSpec::Lstm(s) => w.with(
                s.base(LstmConfig::new(s.units), self)?
                    .recurrent_activation(s.gate())
                    .unit_forget_bias(s.unit_forget_bias.unwrap_or(true)),
            ),
            LayerSpec::Gru(s) => w.with(
                s.base(GruConfig::new(s.units), self)?
                    .recurrent_activation(s.gate())
                    .reset_after(s.reset_after.unwrap_or(true)),
            ),
            _ => return Ok(None),
        }))
    }

    /// `(units, recurrent)` of the layer (of the wrapped layer for Bidirectional); `None`
    /// for layers without weights. The loader checks these against the file size before
    /// anything is allocated.
    pub(crate) fn size(&self) -> Option<(usize, bool)> {
        match self {
            LayerSpec::SimpleRnn(s) | LayerSpec::Lstm(s) | LayerSpec::Gru(s) => {
                Some((s.units, true))
            }
            LayerSpec::Dense(s) => Some((s.units, false)),
            LayerSpec::Masking(_) => None,
            LayerSpec::Bidirectional(s) => s.layer.size(),
        }
    }
}

/// What to do with a recurrent layer's typed configuration (its cell type differs per
/// layer type, so this is a trait with a generic method rather than a closure).
trait WithRecurrent<F: Float> {
    fn with<K: CellConfig>(self, c: RecurrentConfig<K>) -> Box<dyn LayerConfig<F>>;
}

impl RecurrentSpec {
    /// The spec with Keras's defaults for `units`.
    pub fn new(units: usize) -> Self {
        RecurrentSpec {
            name: None,
            units,
            activation: Activation::Tanh,
            recurrent_activation: None,
            use_bias: true,
            return_sequences: false,
            go_backwards: false,
            zero_output_for_mask: false,
            unit_forget_bias: None,
            reset_after: None,
        }
    }

    fn gate(&self) -> Activation {
        self.recurrent_activation.unwrap_or(Activation::Sigmoid)
    }

    /// The options every recurrent layer has, after refusing ones of other layer types.
    fn base<K: CellConfig>(
        &self,
        mut c: RecurrentConfig<K>,
        spec: &LayerSpec,
    ) -> Result<RecurrentConfig<K>> {
        let ty = spec.type_name();
        self.only(
            spec,
            "unit_forget_bias",
            ty != "LSTM" && self.unit_forget_bias.is_some(),
        )?;
        self.only(
            spec,
            "reset_after",
            ty != "GRU" && self.reset_after.is_some(),
        )?;
        c = c
            .activation(self.activation)
            .use_bias(self.use_bias)
            .return_sequences(self.return_sequences)
            .go_backwards(self.go_backwards)
            .zero_output_for_mask(self.zero_output_for_mask);
        c.name.clone_from(&self.name);
        Ok(c)
    }

    /// Refuses `field` when `present` (an option this layer type does not have).
    fn only(&self, spec: &LayerSpec, field: &'static str, present: bool) -> Result<()> {
        if present {
            return Err(Error::Config {
                layer: self.name.clone().unwrap_or_else(|| spec.type_name().into()),
                field,
                reason: format!("{} has no `{field}` option", spec.type_name()),
            });
        }
        Ok(())
    }
}

impl<F: Float> LayerConfig<F> for LayerSpec {
    fn build(&self, input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        self.config::<F>()?.build(input, rng)
    }
    fn name(&self) -> Option<&str> {
        LayerSpec::name(self)
    }
    fn default_name(&self) -> &'static str {
        match self {
            LayerSpec::SimpleRnn(_) => "simple_rnn",
            LayerSpec::Lstm(_) => "lstm",
            LayerSpec::Gru(_) => "gru",
            LayerSpec::Dense(_) => "dense",
            LayerSpec::Masking(_) => "masking",
            LayerSpec::Bidirectional(_) => "bidirectional",
        }
    }
}

/// Parses architecture JSON, naming an unknown layer type as such (serde would only say
/// "unknown variant").
pub(crate) fn parse_model_spec(json: &str) -> std::result::Result<ModelSpec, FileError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| FileError::Architecture(e.to_string()))?;
    let layers = value.get("layers").and_then(|l| l.as_array());
    for l in layers.into_iter().flatten() {
        check_layer_type(l)?;
    }
    serde_json::from_value(value).map_err(|e| FileError::Architecture(e.to_string()))
}

/// One layer from its `layer` and `config` JSON values.
pub(crate) fn parse_layer_spec(
    layer: Option<&serde_json::Value>,
    config: Option<&serde_json::Value>,
) -> std::result::Result<LayerSpec, FileError> {
    let v = serde_json::json!({
        "layer": layer.cloned().unwrap_or_default(),
        "config": config.cloned().unwrap_or_else(|| serde_json::json!({})),
    });
    check_layer_type(&v)?;
    serde_json::from_value(v).map_err(|e| FileError::Architecture(e.to_string()))
}

/// Refuses a layer type rnnkit does not have, also inside a Bidirectional.
fn check_layer_type(spec: &serde_json::Value) -> std::result::Result<(), FileError> {
    const KNOWN: [&str; 6] = [
        "SimpleRNN",
        "LSTM",
        "GRU",
        "Dense",
        "Masking",
        "Bidirectional",
    ];
    let mut cur = Some(spec);
    // Iterative, so the depth is bounded by the JSON parser's own limit.
    while let Some(spec) = cur {
        if let Some(ty) = spec.get("layer").and_then(|t| t.as_str()) {
            if !KNOWN.contains(&ty) {
                return Err(FileError::UnknownLayer {
                    found: ty.to_string(),
                    supported: LAYER_TYPES,
                });
            }
        }
        cur = spec.get("config").and_then(|c| c.get("layer"));
    }
    Ok(())
}
