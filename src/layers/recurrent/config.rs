//! What every recurrent layer's configuration shares: the options the one time loop reads
//! ([`SequenceOptions`], [`CellOptions`]), the [`RecurrentLayerConfig`] trait the three plain
//! configuration structs implement, the builder methods they share, and the checked
//! construction of a layer.

use super::cell::Cell;
use super::layer::Recurrent;
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{Init, StdRng};
use crate::layers::LayerSpec;
use crate::layers::bidirectional::{BidirectionalConfig, BidirectionalSpec};
use crate::layers::{Dim, check_weight_size, positive, wrong_input};
use ndarray_rand::rand::Rng;
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt::Debug;

/// The options every cell has, with Keras's defaults (`tanh`, `sigmoid`, bias on).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellOptions {
    /// Number of units.
    pub units: usize,
    /// Activation (Keras default `tanh`).
    pub activation: Activation,
    /// Gate activation of LSTM and GRU (Keras default `sigmoid`); SimpleRNN has none.
    pub recurrent_activation: Activation,
    /// Whether the layer has a bias.
    pub use_bias: bool,
    /// How the recurrent kernel is drawn (Keras default orthogonal).
    pub recurrent_initializer: Init,
}

impl CellOptions {
    /// Rejects activations a cell cannot use.
    pub(crate) fn check(&self, layer: &str) -> Result<()> {
        self.activation.check_elementwise(layer, "activation")?;
        self.recurrent_activation
            .check_elementwise(layer, "recurrent_activation")?;
        self.recurrent_initializer
            .check(layer, "recurrent_initializer")
    }
}

/// The sequence options every recurrent layer has, as the time loop reads them (copied out
/// of the configuration).
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
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SequenceOptions {
    /// Return the output of every step (`[batch, steps, units]`) instead of the last.
    pub return_sequences: bool,
    /// Process the sequence from the last step to the first (output in processing order).
    pub go_backwards: bool,
    /// Output zeros at masked steps instead of repeating the previous output.
    pub zero_output_for_mask: bool,
    /// Carry the final state of each call into the next, sample by sample.
    pub stateful: bool,
    /// Fraction of input features dropped in training.
    pub dropout: f64,
    /// Fraction of `h_{t−1}` dropped where it enters the recurrent products, in training.
    pub recurrent_dropout: f64,
    /// Seed of the dropout masks.
    pub seed: Option<u64>,
}

/// A recurrent layer's configuration: [`SimpleRnnConfig`](crate::SimpleRnnConfig),
/// [`LstmConfig`](crate::LstmConfig) or [`GruConfig`](crate::GruConfig), plain serde structs
/// with Keras's argument names as fields and builder methods. This trait is what the one
/// time loop and [`Bidirectional`](crate::layers::Bidirectional) read them through.
///
/// This trait is sealed: rnnkit's cells implement it.
pub trait RecurrentLayerConfig:
    Clone
    + Debug
    + PartialEq
    + Send
    + Sync
    + 'static
    + Serialize
    + DeserializeOwned
    + SequenceConfig
    + sealed::Sealed
{
    /// The cell type built for element type `F`.
    type Cell<F: Float>: Cell<F = F, Config = Self>;
    /// Keras's default layer name stem (`"lstm"`).
    const DEFAULT_NAME: &'static str;
    /// Keras's class name (`"LSTM"`).
    const TYPE_NAME: &'static str;
    /// Units, activations and `use_bias`.
    fn cell_options(&self) -> CellOptions;
    /// Keras-style summary of the options (`units=4, activation=tanh`).
    fn describe(&self) -> String {
        format!("units={}", self.cell_options().units)
    }
    /// Checks the options a layer type adds to the common ones (a leak's range).
    ///
    /// # Errors
    /// [`Error::Config`] naming the option.
    fn check(&self, layer: &str) -> Result<()> {
        let _ = layer;
        Ok(())
    }
    /// The tagged form of this configuration.
    fn layer_spec(self) -> LayerSpec;
    /// The tagged form of a Bidirectional configuration around this layer.
    fn bidirectional_spec(config: BidirectionalConfig<Self>) -> BidirectionalSpec;
    /// Builds the cell with Keras's default initialisers; the options, sizes and input
    /// features are checked before (by the configuration's `build`).
    fn init_cell<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> Self::Cell<F>;
}

/// The sequence options and the name, which every recurrent configuration stores in the
/// same fields (the builder macro implements this for each).
pub trait SequenceConfig {
    /// The sequence options.
    fn sequence(&self) -> SequenceOptions;
    /// Sets the sequence options.
    fn set_sequence(&mut self, options: SequenceOptions);
    /// The name given, if any.
    fn layer_name(&self) -> Option<&str>;
    /// Sets the name.
    fn set_layer_name(&mut self, name: Option<String>);
}

pub(crate) mod sealed {
    /// Implemented by rnnkit's recurrent layer configurations only.
    pub trait Sealed {}
}

/// The name given, or the layer type's default.
pub(crate) fn name_or_default<L: RecurrentLayerConfig>(config: &L) -> String {
    config.layer_name().unwrap_or(L::DEFAULT_NAME).to_string()
}

/// Builds a typed layer for `input_dim` features, checking every option and size first.
pub(crate) fn build_recurrent<L: RecurrentLayerConfig, F: Float>(
    config: &L,
    input_dim: usize,
    rng: &mut StdRng,
) -> Result<Recurrent<L::Cell<F>>> {
    let name = name_or_default(config);
    let (o, seq) = (config.cell_options(), config.sequence());
    positive(&name, "units", o.units)?;
    positive(&name, "input_dim", input_dim)?;
    o.check(&name)?;
    config.check(&name)?;
    for (field, rate) in [
        ("dropout", seq.dropout),
        ("recurrent_dropout", seq.recurrent_dropout),
    ] {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::Config {
                layer: name,
                field,
                reason: format!("expected a rate in [0, 1), got {rate}"),
            });
        }
    }
    let (u, gates) = (o.units, <L::Cell<F> as Cell>::GATES);
    let width = u.saturating_mul(gates);
    check_weight_size(&name, "kernel", &[input_dim, width])?;
    check_weight_size(&name, "recurrent kernel", &[u, width])?;
    let cell = config.init_cell::<F>(input_dim, rng);
    // Masks have their own stream; drawing its seed only when a layer drops keeps
    // every other model's seeded weights as they were.
    let drops = seq.dropout > 0.0 || seq.recurrent_dropout > 0.0;
    let seed = match seq.seed {
        Some(s) => s,
        None if drops => rng.random(),
        None => 0,
    };
    let mut config = config.clone();
    config.set_layer_name(Some(name));
    Ok(Recurrent::new(cell, config, seed))
}

/// Keras config keys a recurrent layer's configuration reads but does not keep:
/// `return_state`, accepted when `false` (a graph call asks for the states instead).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NoReturnState;

impl<'de> Deserialize<'de> for NoReturnState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        if bool::deserialize(d)? {
            return Err(de::Error::custom(
                "`return_state: true` belongs to a call in a graph model (Graph::rnn(..).call() \
                 returns the states), not to the layer's configuration",
            ));
        }
        Ok(NoReturnState)
    }
}

pub(crate) fn tanh() -> Activation {
    Activation::Tanh
}
pub(crate) fn sigmoid() -> Activation {
    Activation::Sigmoid
}
pub(crate) fn yes() -> bool {
    true
}
pub(crate) fn orthogonal() -> Init {
    Init::Orthogonal
}
pub(crate) fn is_orthogonal(i: &Init) -> bool {
    *i == Init::Orthogonal
}

/// The builder methods and trait plumbing every recurrent configuration shares, for a
/// plain struct with the fields `name`, `units`, `activation`, `use_bias`,
/// `return_sequences`, `go_backwards`, `zero_output_for_mask`, `stateful`, `dropout`,
/// `recurrent_dropout` and `seed`.
macro_rules! sequence_builders {
    ($name:ident) => {
        impl $name {
            /// Sets `return_sequences`: output every step (`[batch, steps, units]`) instead
            /// of the last.
            pub fn return_sequences(mut self, v: bool) -> Self {
                self.return_sequences = v;
                self
            }
            /// Sets `go_backwards`: process the sequence from the last step to the first.
            pub fn go_backwards(mut self, v: bool) -> Self {
                self.go_backwards = v;
                self
            }
            /// Sets `zero_output_for_mask`: output zeros at masked steps.
            pub fn zero_output_for_mask(mut self, v: bool) -> Self {
                self.zero_output_for_mask = v;
                self
            }
            /// Sets `stateful`: each call starts from the state the previous call left,
            /// sample by sample (row `b` of a batch continues row `b` of the last one).
            /// The first call fixes the batch size; `reset_states` zeroes the state.
            pub fn stateful(mut self, v: bool) -> Self {
                self.stateful = v;
                self
            }
            /// Sets `dropout`: the fraction of input features dropped in training (one
            /// mask per sample, fixed across the steps, shared by the gates unless
            /// `recurrent_dropout > 0`, then one per gate as in Keras; identity at
            /// inference).
            pub fn dropout(mut self, rate: f64) -> Self {
                self.dropout = rate;
                self
            }
            /// Sets `recurrent_dropout`: the fraction of `h_{t−1}` dropped where it enters
            /// the recurrent products in training (one mask per sample and gate, fixed
            /// across the steps; GRU's update `z⊙h_{t−1} + (1−z)⊙ĥ` keeps the whole
            /// state).
            pub fn recurrent_dropout(mut self, rate: f64) -> Self {
                self.recurrent_dropout = rate;
                self
            }
            /// Sets the seed of the dropout masks.
            pub fn seed(mut self, seed: u64) -> Self {
                self.seed = Some(seed);
                self
            }
            /// Sets the layer name.
            pub fn name(mut self, name: &str) -> Self {
                self.name = Some(name.to_string());
                self
            }
            /// Sets the activation (linear, tanh, sigmoid or relu).
            pub fn activation(mut self, a: $crate::Activation) -> Self {
                self.activation = a;
                self
            }
            /// Sets `use_bias`.
            pub fn use_bias(mut self, v: bool) -> Self {
                self.use_bias = v;
                self
            }
            /// Sets `recurrent_initializer`: how the recurrent kernel is drawn (Keras's
            /// default orthogonal; [`Init::Reservoir`](crate::init::Init::Reservoir) for an
            /// echo-state-style start with a chosen spectral radius).
            pub fn recurrent_initializer(mut self, init: $crate::init::Init) -> Self {
                self.recurrent_initializer = init;
                self
            }
            /// Builds a typed layer for `input_dim` features.
            ///
            /// # Errors
            /// [`Error::Config`](crate::Error::Config) for zero units, zero input features,
            /// an invalid activation or dropout rate, or weights too large to allocate.
            pub fn build<F: $crate::Float>(
                &self,
                input_dim: usize,
                rng: &mut $crate::init::StdRng,
            ) -> $crate::Result<
                $crate::layers::Recurrent<
                    <$name as $crate::layers::recurrent::RecurrentLayerConfig>::Cell<F>,
                >,
            > {
                $crate::layers::recurrent::build_recurrent(self, input_dim, rng)
            }
        }

        impl $crate::layers::recurrent::SequenceConfig for $name {
            fn sequence(&self) -> $crate::layers::recurrent::SequenceOptions {
                $crate::layers::recurrent::SequenceOptions {
                    return_sequences: self.return_sequences,
                    go_backwards: self.go_backwards,
                    zero_output_for_mask: self.zero_output_for_mask,
                    stateful: self.stateful,
                    dropout: self.dropout,
                    recurrent_dropout: self.recurrent_dropout,
                    seed: self.seed,
                }
            }
            fn set_sequence(&mut self, o: $crate::layers::recurrent::SequenceOptions) {
                self.return_sequences = o.return_sequences;
                self.go_backwards = o.go_backwards;
                self.zero_output_for_mask = o.zero_output_for_mask;
                self.stateful = o.stateful;
                self.dropout = o.dropout;
                self.recurrent_dropout = o.recurrent_dropout;
                self.seed = o.seed;
            }
            fn layer_name(&self) -> Option<&str> {
                self.name.as_deref()
            }
            fn set_layer_name(&mut self, name: Option<String>) {
                self.name = name;
            }
        }

        impl $crate::layers::recurrent::config::sealed::Sealed for $name {}

        impl<F: $crate::Float> $crate::LayerConfig<F> for $name {
            fn build(
                &self,
                input: &[$crate::Dim],
                rng: &mut $crate::init::StdRng,
            ) -> $crate::Result<Box<dyn $crate::Layer<F>>> {
                let name = $crate::layers::recurrent::name_or_default(self);
                let (_, f) = $crate::layers::recurrent::seq_input(&name, input)?;
                Ok(Box::new($name::build::<F>(self, f, rng)?))
            }
            fn name(&self) -> Option<&str> {
                self.name.as_deref()
            }
            fn default_name(&self) -> &'static str {
                <$name as $crate::layers::recurrent::RecurrentLayerConfig>::DEFAULT_NAME
            }
        }
    };
}
pub(crate) use sequence_builders;

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

#[cfg(test)]
mod tests {
    use crate::{BidirectionalConfig, GruConfig, LstmConfig, SimpleRnnConfig};
    use std::any::type_name;

    /// Compiler messages print a type's path as `type_name` does: each configuration is its
    /// own plain type, not an alias of a generic one.
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
