//! # rnnkit
//!
//! Recurrent neural networks with a Keras-like layer API and Keras-exact numerics:
//! [`SimpleRnn`](layers::SimpleRnn), [`Lstm`](layers::Lstm), [`Gru`](layers::Gru), [`Dense`](layers::Dense), [`Bidirectional`](layers::Bidirectional) and [`Masking`](layers::Masking) stack in a
//! [`Sequential`] model. Weights use Keras's layouts and gate orders, so
//! `model.get_weights()` from Keras loads unchanged, and forward outputs and every BPTT
//! gradient are tested against Keras (float64) to `1e-9`.
//!
//! Beyond a stack, [`Graph`] wires Keras-style functional models ([`Functional`]): several
//! inputs and outputs, recurrent states passed between layers, shared layers, merges,
//! [`Attention`](layers::Attention), and step-by-step decoding with [`StepDecoder`](model::StepDecoder) (greedy, sampling, beam
//! search); the [`Trainer`] trains both kinds through the one [`Model`] trait.
//!
//! Generic over `f32` and `f64`; initialisation is seeded and reproducible.
//!
//! ```
//! use rnnkit::prelude::*;
//! use rnnkit::ndarray::Array3;
//! # fn main() -> Result<(), rnnkit::Error> {
//! let mut model = Sequential::<f64>::new(&[3, 1])
//!     .push(SimpleRnnConfig::new(20))?
//!     .push(DenseConfig::new(1))?;
//! let x = Array3::from_shape_fn((4, 3, 1), |(i, t, _)| 0.1 * (i + t) as f64).into_dyn();
//! let y = model.forward(Inputs::new(&x).mode(Mode::Train))?.remove(0).output;
//! assert_eq!(y.shape(), &[4, 1]);
//! let dy = rnnkit::ndarray::ArrayD::ones(y.raw_dim());
//! let dx = model.backward(&[OutputGrads::new(&dy)])?; // BPTT, one dL/dx per input
//! assert_eq!(dx[0].shape(), x.shape());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![doc(test(attr(deny(warnings))))]

pub mod activation;
pub mod error;
pub mod float;
pub mod init;
pub mod io;
pub mod layers;
mod linalg;
pub mod model;
#[doc(hidden)]
pub mod parallel;
pub mod param;
pub mod prelude;
pub mod reservoir;
pub mod train;
pub mod utils;

/// The `ndarray` this crate is built on (every array in the API is one of its types):
/// `use rnnkit::ndarray;` needs no `ndarray` dependency of your own, and cannot disagree in
/// version.
pub use ndarray;
/// The `rand` behind [`seeded_rng`] and [`StdRng`](init::StdRng) (through `ndarray-rand`), for drawing from
/// the same generator: `use rnnkit::rand::Rng;`.
pub use ndarray_rand::rand;

pub use activation::Activation;
pub use error::{Error, FileError, Result};
pub use float::Float;
pub use init::{Init, seeded_rng};
pub use layers::{
    AdditiveAttentionConfig, AttentionConfig, BidirectionalConfig, DenseConfig, Dim, DropoutConfig,
    EmbeddingConfig, GlobalAveragePooling1DConfig, GruConfig, InputGrads, Inputs, Layer,
    LayerConfig, LayerState, LeakyRnnConfig, LstmConfig, Mask, MaskingConfig, MergeMode, Mode,
    OutputGrads, Outputs, RepeatVectorConfig, SimpleRnnConfig,
};
pub use model::{Functional, Graph, Model, ModelState, Sequential, Tensor};
pub use parallel::{num_threads, set_num_threads};
pub use param::{Module, Param};
pub use reservoir::{EchoStateNetwork, EsnConfig};
pub use train::{
    Adam, AdamW, Callback, Data, EarlyStopping, History, Loss, Metric, ModelCheckpoint, Optimizer,
    RmsProp, Sgd, Trainer, TruncatedBptt,
};

/// The README's examples, compiled and run as doctests so the README stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// A `[batch, steps]` mask from sequence lengths: step `t` of sample `b` is real when
/// `t < lengths[b]` (right padding).
///
/// ```
/// let m = rnnkit::mask_from_lengths(&[2, 0, 3], 3)?;
/// assert_eq!(m, rnnkit::ndarray::array![[true, true, false], [false, false, false], [true, true, true]]);
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// [`Error::Data`] for a mask of more than [`layers::MAX_WEIGHT_LEN`] entries.
pub fn mask_from_lengths(lengths: &[usize], steps: usize) -> Result<Mask> {
    layers::check_output_size("mask_from_lengths", &[lengths.len(), steps])?;
    Ok(Mask::from_shape_fn((lengths.len(), steps), |(b, t)| {
        t < lengths[b]
    }))
}
