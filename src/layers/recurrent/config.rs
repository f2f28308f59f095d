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
use crate::layers::{check_weight_size, positive, wrong_input, Dim};
use ndarray_rand::rand::Rng;
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
    /// The layer configuration type users write ([`LstmConfig`](crate::LstmConfig)).
    type Layer: RecurrentLayerConfig<Options = Self>;
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
    fn layer_spec(config: Self::Layer) -> LayerSpec;
    /// The tagged form of a Bidirectional configuration around this cell's layer.
    fn bidirectional_spec(config: BidirectionalConfig<Self::Layer>) -> BidirectionalSpec;
    /// Builds the cell with Keras's default initialisers; the options, sizes and input
    /// features are checked before (by the layer configuration's `init`).
    fn init_cell<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> Self::Cell<F>;
}

/// The options every recurrent layer configuration holds: the cell's options plus the
/// sequence options. Users write [`SimpleRnnConfig`](crate::SimpleRnnConfig),
/// [`LstmConfig`](crate::LstmConfig) or [`GruConfig`](crate::GruConfig), which wrap one of
/// these and expose it through `AsRef`/`AsMut`.
///
/// | option | default | Keras |
/// |---|---|---|
/// | `return_sequences` | `false` | `return_sequences` |
/// | `go_backwards` | `false` | `go_backwards` |
/// | `zero_output_for_mask` | `false` | `zero_output_for_mask` |
/// | `stateful` | `false` | `stateful`: each call starts from the state the last one left |
/// | `dropout` | 0 | `dropout`: inverted dropout on the inputs in training |
/// | `recurrent_dropout` | 0 | `recurrent_dropout`: on `h_{t−1}` where it enters the gates |
/// | `seed` | drawn from the model's seed | `seed`: of the dropout masks |
/// | `name` | `simple_rnn`, `lstm`, `gru` (+ `_1`, `_2` in a model) | `name` |
///
/// Serialises to Keras's config keys (`{"units": 8, "activation": "tanh", ...}`); reading
/// refuses keys the layer type does not have.
///
/// ```
/// use rnnkit::prelude::*;
/// let c = LstmConfig::new(8).return_sequences(true);
/// assert!(c.as_ref().return_sequences && c.as_ref().cell.unit_forget_bias);
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
    /// Carry the final state of each call into the next, sample by sample (Keras
    /// `stateful`): the first call fixes the batch size; `reset_states` zeroes the state.
    pub stateful: bool,
    /// Fraction of input features dropped in training: masks per sample and call, fixed
    /// across the steps (Keras's variational dropout). As in Keras, one mask is shared by
    /// the gates, unless `recurrent_dropout > 0`: then each gate draws its own (Keras's
    /// `implementation=1`). Kept values are scaled by `1/(1 − rate)`.
    pub dropout: f64,
    /// Fraction of `h_{t−1}` dropped where it enters the recurrent products, in training:
    /// one mask per sample, gate and call, fixed across the steps.
    pub recurrent_dropout: f64,
    /// Seed of the dropout masks (`None`: drawn from the model's seed when the layer is
    /// built).
    pub seed: Option<u64>,
    /// Layer name.
    pub name: Option<String>,
}

/// A recurrent layer's configuration as users write it: [`SimpleRnnConfig`](crate::SimpleRnnConfig),
/// [`LstmConfig`](crate::LstmConfig) or [`GruConfig`](crate::GruConfig), each its own type
/// (so compiler messages name the type you wrote) around a [`RecurrentConfig`].
pub trait RecurrentLayerConfig:
    Clone
    + Debug
    + PartialEq
    + Send
    + Sync
    + 'static
    + AsRef<RecurrentConfig<Self::Options>>
    + AsMut<RecurrentConfig<Self::Options>>
    + From<RecurrentConfig<Self::Options>>
{
    /// The cell's options type.
    type Options: CellConfig<Layer = Self>;
}

impl<K: CellConfig> RecurrentConfig<K> {
    pub(crate) fn from_cell(cell: K) -> Self {
        RecurrentConfig {
            cell,
            return_sequences: false,
            go_backwards: false,
            zero_output_for_mask: false,
            stateful: false,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            seed: None,
            name: None,
        }
    }

    /// The name given, or the layer type's default.
    pub(crate) fn layer_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| K::DEFAULT_NAME.to_string())
    }

    /// Builds a typed layer for `input_dim` features.
    pub(crate) fn init<F: Float>(
        &self,
        input_dim: usize,
        rng: &mut StdRng,
    ) -> Result<Recurrent<K::Cell<F>>> {
        let name = self.layer_name();
        positive(&name, "units", self.cell.units())?;
        positive(&name, "input_dim", input_dim)?;
        self.cell.options().check(&name)?;
        for (field, rate) in [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
        ] {
            if !(0.0..1.0).contains(&rate) {
                return Err(Error::Config {
                    layer: name,
                    field,
                    reason: format!("expected a rate in [0, 1), got {rate}"),
                });
            }
        }
        let (u, gates) = (self.cell.units(), <K::Cell<F> as Cell>::GATES);
        let width = u.saturating_mul(gates);
        check_weight_size(&name, "kernel", &[input_dim, width])?;
        check_weight_size(&name, "recurrent kernel", &[u, width])?;
        let cell = self.cell.init_cell::<F>(input_dim, rng);
        // Masks have their own stream; drawing its seed only when a layer drops keeps
        // every other model's seeded weights as they were.
        let drops = self.dropout > 0.0 || self.recurrent_dropout > 0.0;
        let seed = match self.seed {
            Some(s) => s,
            None if drops => rng.random(),
            None => 0,
        };
        let mut config = self.clone();
        config.name = Some(name);
        Ok(Recurrent::new(cell, K::Layer::from(config), seed))
    }
}

/// Defines a recurrent layer's configuration type `$name` around `RecurrentConfig<$opts>`:
/// the builder methods named after Keras's arguments, `init`, the layer-building and serde
/// impls. Options of one cell type (`unit_forget_bias`) are added beside it.
macro_rules! recurrent_layer_config {
    ($(#[$doc:meta])* $name:ident($opts:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name($crate::layers::recurrent::RecurrentConfig<$opts>);

        impl $name {
            /// The layer with `units` units and Keras's defaults.
            pub fn new(units: usize) -> Self {
                $name($crate::layers::recurrent::RecurrentConfig::from_cell(
                    <$opts as $crate::layers::recurrent::CellConfig>::with_units(units),
                ))
            }
            /// Sets `return_sequences`: output every step (`[batch, steps, units]`) instead
            /// of the last.
            pub fn return_sequences(mut self, v: bool) -> Self {
                self.0.return_sequences = v;
                self
            }
            /// Sets `go_backwards`: process the sequence from the last step to the first.
            pub fn go_backwards(mut self, v: bool) -> Self {
                self.0.go_backwards = v;
                self
            }
            /// Sets `zero_output_for_mask`: output zeros at masked steps.
            pub fn zero_output_for_mask(mut self, v: bool) -> Self {
                self.0.zero_output_for_mask = v;
                self
            }
            /// Sets `stateful`: each call starts from the state the previous call left,
            /// sample by sample (row `b` of a batch continues row `b` of the last one).
            /// The first call fixes the batch size; `reset_states` zeroes the state.
            pub fn stateful(mut self, v: bool) -> Self {
                self.0.stateful = v;
                self
            }
            /// Sets `dropout`: the fraction of input features dropped in training (one
            /// mask per sample, fixed across the steps, shared by the gates unless
            /// `recurrent_dropout > 0`, then one per gate as in Keras; identity at
            /// inference).
            pub fn dropout(mut self, rate: f64) -> Self {
                self.0.dropout = rate;
                self
            }
            /// Sets `recurrent_dropout`: the fraction of `h_{t−1}` dropped where it enters
            /// the recurrent products in training (one mask per sample and gate, fixed
            /// across the steps; GRU's update `z⊙h_{t−1} + (1−z)⊙ĥ` keeps the whole
            /// state).
            pub fn recurrent_dropout(mut self, rate: f64) -> Self {
                self.0.recurrent_dropout = rate;
                self
            }
            /// Sets the seed of the dropout masks.
            pub fn seed(mut self, seed: u64) -> Self {
                self.0.seed = Some(seed);
                self
            }
            /// Sets the layer name.
            pub fn name(mut self, name: &str) -> Self {
                self.0.name = Some(name.to_string());
                self
            }
            /// Sets the activation (linear, tanh, sigmoid or relu).
            pub fn activation(mut self, a: $crate::Activation) -> Self {
                $crate::layers::recurrent::CellConfig::options_mut(&mut self.0.cell).activation = a;
                self
            }
            /// Sets `use_bias`.
            pub fn use_bias(mut self, v: bool) -> Self {
                $crate::layers::recurrent::CellConfig::options_mut(&mut self.0.cell).use_bias = v;
                self
            }
            /// Builds a typed layer for `input_dim` features.
            ///
            /// # Errors
            /// [`Error::Config`](crate::Error::Config) for zero units, zero input features,
            /// an invalid activation or weights too large to allocate.
            pub fn init<F: $crate::Float>(
                &self,
                input_dim: usize,
                rng: &mut $crate::init::StdRng,
            ) -> $crate::Result<
                $crate::layers::Recurrent<<$opts as $crate::layers::recurrent::CellConfig>::Cell<F>>,
            > {
                self.0.init(input_dim, rng)
            }
        }

        impl AsRef<$crate::layers::recurrent::RecurrentConfig<$opts>> for $name {
            fn as_ref(&self) -> &$crate::layers::recurrent::RecurrentConfig<$opts> {
                &self.0
            }
        }

        impl AsMut<$crate::layers::recurrent::RecurrentConfig<$opts>> for $name {
            fn as_mut(&mut self) -> &mut $crate::layers::recurrent::RecurrentConfig<$opts> {
                &mut self.0
            }
        }

        impl From<$crate::layers::recurrent::RecurrentConfig<$opts>> for $name {
            fn from(c: $crate::layers::recurrent::RecurrentConfig<$opts>) -> Self {
                $name(c)
            }
        }

        impl $crate::layers::recurrent::RecurrentLayerConfig for $name {
            type Options = $opts;
        }

        impl<F: $crate::Float> $crate::LayerConfig<F> for $name {
            fn build(
                &self,
                input: &[$crate::Dim],
                rng: &mut $crate::init::StdRng,
            ) -> $crate::Result<Box<dyn $crate::Layer<F>>> {
                let (_, f) = $crate::layers::recurrent::seq_input(&self.0.layer_name(), input)?;
                Ok(Box::new(self.0.init::<F>(f, rng)?))
            }
            fn name(&self) -> Option<&str> {
                self.0.name.as_deref()
            }
            fn default_name(&self) -> &'static str {
                <$opts as $crate::layers::recurrent::CellConfig>::DEFAULT_NAME
            }
        }
    };
}
pub(crate) use recurrent_layer_config;

/// Whether cells of this configuration have gates, and so a `recurrent_activation`.
fn gated<K: CellConfig>() -> bool {
    <K::Cell<f64> as Cell>::GATES > 1
}

/// Checks that a recurrent layer gets a `[steps, features]` input shape.
pub(crate) fn seq_input(layer: &str, input: &[Dim]) -> Result<(Dim, usize)> {
    match input {
        [steps, Some(f)] => Ok((*steps, *f)),
        _ => Err(wrong_input(
            layer,
            "a recurrent layer needs 3-D input [batch, steps, features]",
            input,
        )),
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
        m.serialize_entry("stateful", &self.stateful)?;
        m.serialize_entry("dropout", &self.dropout)?;
        m.serialize_entry("recurrent_dropout", &self.recurrent_dropout)?;
        m.serialize_entry("seed", &self.seed)?;
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
        c.stateful = take_key(&mut map, "stateful")?.unwrap_or(false);
        c.dropout = take_key(&mut map, "dropout")?.unwrap_or(0.0);
        c.recurrent_dropout = take_key(&mut map, "recurrent_dropout")?.unwrap_or(0.0);
        c.seed = take_key::<Option<u64>, _>(&mut map, "seed")?.flatten();
        if take_key::<bool, _>(&mut map, "return_state")?.unwrap_or(false) {
            return Err(de::Error::custom(
                "`return_state: true` needs a functional model, which rnnkit does not have yet",
            ));
        }
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

#[cfg(test)]
mod tests {
    use crate::{BidirectionalConfig, GruConfig, LstmConfig, SimpleRnnConfig};
    use std::any::type_name;

    /// Compiler messages print a type's path as `type_name` does: each configuration is its
    /// own type, not an alias of a generic one (a user who wrote `LstmConfig` reads
    /// `LstmConfig`, not `RecurrentConfig<LstmOptions>`).
    #[test]
    fn configuration_types_are_named_as_written() {
        for (name, want) in [
            (type_name::<SimpleRnnConfig>(), "SimpleRnnConfig"),
            (type_name::<LstmConfig>(), "LstmConfig"),
            (type_name::<GruConfig>(), "GruConfig"),
        ] {
            assert!(
                name.ends_with(want) && !name.contains("Recurrent"),
                "{name}"
            );
        }
        let bi = type_name::<BidirectionalConfig<LstmConfig>>();
        assert!(
            bi.ends_with("BidirectionalConfig<rnnkit::layers::lstm::LstmConfig>"),
            "{bi}"
        );
    }
}
