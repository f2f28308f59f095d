//! Configuration of a recurrent layer: builder methods named after Keras's arguments, and
//! the serialised form (Keras's class names and config keys).

use super::cell::Cell;
use super::layer::Recurrent;
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::layers::bidirectional::{BidirectionalConfig, BidirectionalSpec};
use crate::layers::spec::take_key;
use crate::layers::LayerSpec;
use crate::layers::{check_weight_size, format_shape, positive, Dim, Layer, LayerConfig};
use serde::de;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt::Debug;

/// The options every cell has, with Keras's defaults (`tanh`, `sigmoid`, bias on).
#[derive(Clone, Debug, PartialEq)]
pub struct CellOptions {
    /// Number of units.
    pub units: usize,
    /// Activation (Keras default `tanh`).
    pub activation: Activation,
    /// Gate activation of LSTM and GRU (Keras default `sigmoid`); SimpleRNN has none.
    pub recurrent_activation: Activation,
    /// Whether the layer has a bias.
    pub use_bias: bool,
}

impl CellOptions {
    /// The options for `units` with Keras's defaults.
    pub fn new(units: usize) -> Self {
        CellOptions {
            units,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
        }
    }

    /// Rejects activations a cell cannot use.
    pub(crate) fn check(&self, layer: &str) -> Result<()> {
        self.activation.check_elementwise(layer, "activation")?;
        self.recurrent_activation
            .check_elementwise(layer, "recurrent_activation")
    }
}

/// Builds a cell: the cell-specific half of a recurrent layer's configuration.
pub trait CellConfig: Clone + Debug + PartialEq + Send + Sync + 'static {
    /// The cell type built for element type `F`.
    type Cell<F: Float>: Cell<F = F, Config = Self>;
    /// Keras's default layer name stem (`"lstm"`).
    const DEFAULT_NAME: &'static str;
    /// Keras's class name (`"LSTM"`).
    const TYPE_NAME: &'static str;
    /// The options with Keras's defaults for `units`.
    fn with_units(units: usize) -> Self;
    /// The options every cell has.
    fn options(&self) -> &CellOptions;
    /// The options every cell has, mutably.
    fn options_mut(&mut self) -> &mut CellOptions;
    /// Number of units.
    fn units(&self) -> usize {
        self.options().units
    }
    /// This cell type's own boolean Keras option beyond the common ones
    /// (`unit_forget_bias`, `reset_after`): its config key and value.
    fn flag(&self) -> Option<(&'static str, bool)> {
        None
    }
    /// That option, to set it.
    fn flag_mut(&mut self) -> Option<&mut bool> {
        None
    }
    /// Keras-style summary of the options (`units=4, activation=tanh`).
    fn describe(&self) -> String {
        format!("units={}", self.units())
    }
    /// The tagged form of a layer configuration with this cell.
    fn layer_spec(config: RecurrentConfig<Self>) -> LayerSpec;
    /// The tagged form of a Bidirectional configuration around this cell's layer.
    fn bidirectional_spec(config: BidirectionalConfig<Self>) -> BidirectionalSpec;
    /// Builds the cell with Keras's default initialisers; the options, sizes and input
    /// features are checked by [`RecurrentConfig::init`] before.
    fn init_cell<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> Self::Cell<F>;
}

/// Configuration of a recurrent layer: the cell's options plus the sequence options that
/// every recurrent layer shares. Use the aliases [`SimpleRnnConfig`](crate::SimpleRnnConfig),
/// [`LstmConfig`](crate::LstmConfig) and [`GruConfig`](crate::GruConfig).
///
/// | option | default | Keras |
/// |---|---|---|
/// | `return_sequences` | `false` | `return_sequences` |
/// | `go_backwards` | `false` | `go_backwards` |
/// | `zero_output_for_mask` | `false` | `zero_output_for_mask` |
/// | `name` | `simple_rnn`, `lstm`, `gru` (+ `_1`, `_2` in a model) | `name` |
///
/// Serialises to Keras's config keys (`{"units": 8, "activation": "tanh", ...}`); reading
/// refuses keys the layer type does not have.
///
/// ```
/// use rnnkit::prelude::*;
/// let c = LstmConfig::new(8).return_sequences(true);
/// let json = serde_json::to_string(&c).unwrap();
/// assert!(json.contains(r#""units":8"#) && json.contains(r#""unit_forget_bias":true"#));
/// assert_eq!(serde_json::from_str::<LstmConfig>(&json).unwrap(), c);
/// assert!(serde_json::from_str::<SimpleRnnConfig>(r#"{"units": 2, "reset_after": true}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RecurrentConfig<K> {
    /// The cell's own options.
    pub cell: K,
    /// Return the output of every step (`[batch, steps, units]`) instead of the last.
    pub return_sequences: bool,
    /// Process the sequence from the last step to the first (output in processing order).
    pub go_backwards: bool,
    /// Output zeros at masked steps instead of repeating the previous output.
    pub zero_output_for_mask: bool,
    /// Layer name.
    pub name: Option<String>,
}

impl<K: CellConfig> RecurrentConfig<K> {
    pub(crate) fn from_cell(cell: K) -> Self {
        RecurrentConfig {
            cell,
            return_sequences: false,
            go_backwards: false,
            zero_output_for_mask: false,
            name: None,
        }
    }

    /// Sets `return_sequences`.
    pub fn return_sequences(mut self, v: bool) -> Self {
        self.return_sequences = v;
        self
    }

    /// Sets `go_backwards`.
    pub fn go_backwards(mut self, v: bool) -> Self {
        self.go_backwards = v;
        self
    }

    /// Sets `zero_output_for_mask`.
    pub fn zero_output_for_mask(mut self, v: bool) -> Self {
        self.zero_output_for_mask = v;
        self
    }

    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Sets the activation (linear, tanh, sigmoid or relu).
    pub fn activation(mut self, a: Activation) -> Self {
        self.cell.options_mut().activation = a;
        self
    }

    /// Sets `use_bias`.
    pub fn use_bias(mut self, v: bool) -> Self {
        self.cell.options_mut().use_bias = v;
        self
    }

    /// The name given, or the layer type's default.
    fn layer_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| K::DEFAULT_NAME.to_string())
    }

    /// Builds a typed layer for `input_dim` features.
    ///
    /// # Errors
    /// [`Error::Config`] for zero units, zero input features or an invalid activation.
    pub fn init<F: Float>(
        &self,
        input_dim: usize,
        rng: &mut StdRng,
    ) -> Result<Recurrent<K::Cell<F>>> {
        let name = self.layer_name();
        positive(&name, "units", self.cell.units())?;
        positive(&name, "input_dim", input_dim)?;
        self.cell.options().check(&name)?;
        let (u, gates) = (self.cell.units(), <K::Cell<F> as Cell>::GATES);
        let width = u.saturating_mul(gates);
        check_weight_size(&name, "kernel", &[input_dim, width])?;
        check_weight_size(&name, "recurrent kernel", &[u, width])?;
        let cell = self.cell.init_cell::<F>(input_dim, rng);
        let mut config = self.clone();
        config.name = Some(name);
        Ok(Recurrent::new(cell, config))
    }
}

/// Cells with gates (LSTM, GRU), which take a `recurrent_activation`.
pub trait GatedCellConfig: CellConfig {}

impl<K: GatedCellConfig> RecurrentConfig<K> {
    /// Sets the gate activation (Keras default `sigmoid`).
    pub fn recurrent_activation(mut self, a: Activation) -> Self {
        self.cell.options_mut().recurrent_activation = a;
        self
    }
}

/// Whether cells of this configuration have gates, and so a `recurrent_activation`.
fn gated<K: CellConfig>() -> bool {
    <K::Cell<f64> as Cell>::GATES > 1
}

/// Checks that a recurrent layer gets a `[steps, features]` input shape.
pub(crate) fn seq_input(layer: &str, input: &[Dim]) -> Result<(Dim, usize)> {
    match input {
        [steps, Some(f)] => Ok((*steps, *f)),
        _ => Err(Error::Incompatible {
            layer: layer.to_string(),
            previous: "its input".into(),
            reason: format!(
                "a recurrent layer needs 3-D input [batch, steps, features], got {}",
                format_shape(input)
            ),
        }),
    }
}

impl<F: Float, K: CellConfig> LayerConfig<F> for RecurrentConfig<K> {
    fn build(&self, input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let (_, f) = seq_input(&self.layer_name(), input)?;
        Ok(Box::new(self.init::<F>(f, rng)?))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        K::DEFAULT_NAME
    }
}

impl<K: CellConfig> Serialize for RecurrentConfig<K> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let o = self.cell.options();
        let mut m = s.serialize_map(None)?;
        if let Some(n) = &self.name {
            m.serialize_entry("name", n)?;
        }
        m.serialize_entry("units", &o.units)?;
        m.serialize_entry("activation", &o.activation)?;
        if gated::<K>() {
            m.serialize_entry("recurrent_activation", &o.recurrent_activation)?;
        }
        m.serialize_entry("use_bias", &o.use_bias)?;
        m.serialize_entry("return_sequences", &self.return_sequences)?;
        m.serialize_entry("go_backwards", &self.go_backwards)?;
        m.serialize_entry("zero_output_for_mask", &self.zero_output_for_mask)?;
        if let Some((k, v)) = self.cell.flag() {
            m.serialize_entry(k, &v)?;
        }
        m.end()
    }
}

impl<'de, K: CellConfig> Deserialize<'de> for RecurrentConfig<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let units: usize =
            take_key(&mut map, "units")?.ok_or_else(|| de::Error::missing_field("units"))?;
        let mut c = RecurrentConfig::from_cell(K::with_units(units));
        c.name = take_key(&mut map, "name")?;
        let o = c.cell.options_mut();
        o.activation = take_key(&mut map, "activation")?.unwrap_or(o.activation);
        if gated::<K>() {
            o.recurrent_activation =
                take_key(&mut map, "recurrent_activation")?.unwrap_or(o.recurrent_activation);
        }
        o.use_bias = take_key(&mut map, "use_bias")?.unwrap_or(true);
        c.return_sequences = take_key(&mut map, "return_sequences")?.unwrap_or(false);
        c.go_backwards = take_key(&mut map, "go_backwards")?.unwrap_or(false);
        c.zero_output_for_mask = take_key(&mut map, "zero_output_for_mask")?.unwrap_or(false);
        let flag = c.cell.flag().map(|(k, _)| k);
        for (key, value) in map {
            let known = flag == Some(key.as_str());
            match (value.as_bool(), c.cell.flag_mut()) {
                (Some(v), Some(f)) if known => *f = v,
                _ if known => {
                    return Err(de::Error::custom(format!(
                        "`{key}`: expected a boolean, got {value}"
                    )))
                }
                _ => {
                    return Err(de::Error::custom(format!(
                        "{} has no `{key}` option",
                        K::TYPE_NAME
                    )))
                }
            }
        }
        Ok(c)
    }
}
