//! [`Model`]: the one interface through which a model is trained, evaluated, predicted and
//! checkpointed. [`Sequential`](crate::Sequential) implements it; so can a user's own model.

use super::ModelSpec;
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{check_mask, Dim, Mask, Mode};
use crate::param::Module;
use ndarray::{concatenate, Array2, ArrayD, Axis, Slice};
use std::fmt::Debug;

/// A model's architecture as data: a [`Sequential`](crate::Sequential) stack or a graph.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::Architecture;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let seq = Sequential::<f32>::new(&[3, 1]).push(GruConfig::new(4))?;
/// assert!(matches!(seq.architecture()?, Architecture::Sequential(_)));
/// let mut g = Graph::<f32>::new(0);
/// let x = g.input("x", &[Some(3), Some(1)])?;
/// let y = g.apply(&GruConfig::new(4), x)?;
/// assert!(matches!(g.build(&[x], &[y])?.architecture()?, Architecture::Graph(_)));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Architecture {
    /// A stack of layers.
    Sequential(ModelSpec),
    /// A graph model.
    Graph(crate::model::GraphSpec),
}

/// What one forward pass of a model returns: nothing is parked in the model for the caller
/// to fetch afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward<F: Float> {
    /// The output.
    pub output: ArrayD<F>,
    /// The `[batch, steps]` mask the output carries (what the loss averages over), if any.
    pub mask: Option<Mask>,
    /// The pre-activation output, when the model ends in softmax or sigmoid (cross-entropy
    /// is computed from it, as Keras does). A model's `forward` returns it in either
    /// [`Mode`]; `infer` need not.
    pub logits: Option<ArrayD<F>>,
}

/// A trainable model: what [`Trainer`](crate::Trainer) trains, evaluates and predicts, and
/// what callbacks and optimizers see.
///
/// Implement [`Model::forward`], [`Model::infer`], [`Model::backward`] and the two parameter
/// visitors; the rest has defaults. The trainer calls `forward` in [`Mode::Train`], then
/// [`Module::zero_grad`], then `backward` with the loss gradient, then lets the optimizer
/// update what the visitors show; prediction goes through `infer`, which takes `&self` so
/// that a trained model can serve several threads at once (hence `Send + Sync`).
///
/// The one-array methods speak of one input and one output; models with several (graph
/// models, [`Functional`](crate::Functional)) also implement [`Model::forward_many`],
/// [`Model::infer_many`] and [`Model::backward_many`], whose defaults wrap the one-array
/// methods, so implementations written for one input keep compiling.
///
/// # Example
/// A hand-written model, `y = w·x` summed over the features, trained by the
/// [`Trainer`](crate::Trainer):
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{Dim, Forward, Model, Param};
/// use rnnkit::ndarray::{Array2, ArrayD, Axis, IxDyn};
///
/// #[derive(Debug)]
/// struct Linear { w: Param<f64>, x: Option<ArrayD<f64>> }
///
/// impl Module<f64> for Linear {
///     fn name(&self) -> &str { "linear" }
///     fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<f64>)) { f("w", &self.w) }
///     fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<f64>)) { f("w", &mut self.w) }
/// }
///
/// impl Model<f64> for Linear {
///     fn input_shape(&self) -> &[Dim] { &[Some(2)] }
///     fn output_shape(&self) -> &[Dim] { &[Some(1)] }
///     fn forward(&mut self, x: &ArrayD<f64>, mask: Option<&Mask>, mode: Mode)
///         -> Result<Forward<f64>, rnnkit::Error> {
///         if mode == Mode::Train { self.x = Some(x.clone()); }
///         self.infer(x, mask)
///     }
///     fn infer(&self, x: &ArrayD<f64>, _: Option<&Mask>) -> Result<Forward<f64>, rnnkit::Error> {
///         let y = (x * self.w.value()).sum_axis(Axis(1)).insert_axis(Axis(1));
///         Ok(Forward { output: y, mask: None, logits: None })
///     }
///     fn backward(&mut self, dy: &ArrayD<f64>, _: bool) -> Result<ArrayD<f64>, rnnkit::Error> {
///         let x = self.x.as_ref().expect("a Train forward first");
///         self.w.add_grad(&(x * dy).sum_axis(Axis(0)))?;
///         Ok(dy * self.w.value())
///     }
/// }
///
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = Array2::from_shape_fn((64, 2), |(i, j)| ((i * 2 + j) as f64 * 0.37).sin()).into_dyn();
/// let y = x.map_axis(Axis(1), |r| 2.0 * r[0] - r[1]).insert_axis(Axis(1)).into_dyn();
/// let mut model = Linear { w: Param::new(ArrayD::zeros(IxDyn(&[2]))), x: None };
/// let mut trainer = Trainer::new(Adam::new(0.1), Loss::Mse).epochs(200).shuffle(false);
/// let history = trainer.fit(&mut model, &x, &y)?;
/// assert!(*history.loss().last().unwrap() < 1e-4);
/// assert!((model.get_weights()[0][0] - 2.0).abs() < 1e-2);
/// # Ok(()) }
/// ```
pub trait Model<F: Float>: Module<F> + Debug + Send + Sync {
    /// Input shape without the batch axis.
    fn input_shape(&self) -> &[Dim];

    /// Output shape without the batch axis.
    fn output_shape(&self) -> &[Dim];

    /// The activation the model applies last; cross-entropy losses work from the logits
    /// of a softmax or sigmoid output. Default linear.
    fn output_activation(&self) -> Activation {
        Activation::Linear
    }

    /// Forward pass of a batch with an optional `[batch, steps]` mask. In
    /// [`Mode::Train`] the model keeps what [`Model::backward`] needs.
    ///
    /// # Errors
    /// Inputs or masks that do not fit the model.
    fn forward(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<Forward<F>>;

    /// Inference through a shared reference: what `forward(x, mask, Mode::Infer)` returns,
    /// with nothing in the model changed.
    ///
    /// # Errors
    /// As [`Model::forward`].
    fn infer(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<Forward<F>>;

    /// Backward pass of the last `Mode::Train` forward: takes dL/d(output) (dL/d(logits)
    /// when `from_logits`), adds every weight gradient into its [`Param`](crate::Param), returns dL/dx.
    ///
    /// # Errors
    /// [`Error::NoCache`] without a preceding `Mode::Train` forward; a gradient of the
    /// wrong shape.
    fn backward(&mut self, dy: &ArrayD<F>, from_logits: bool) -> Result<ArrayD<F>>;

    /// Number of inputs (one array each). Default 1.
    fn input_count(&self) -> usize {
        1
    }

    /// Number of outputs. Default 1.
    fn output_count(&self) -> usize {
        1
    }

    /// The activation each output applies last (see [`Model::output_activation`]).
    fn output_activations(&self) -> Vec<Activation> {
        vec![self.output_activation()]
    }

    /// [`Model::forward`] over one array per input, one [`Forward`] per output: how the
    /// [`Trainer`](crate::Trainer) runs a model with several inputs or outputs. The
    /// default takes one input.
    ///
    /// # Errors
    /// As [`Model::forward`]; the default, [`Error::Shape`] for other than one input.
    fn forward_many(&mut self, xs: &[ArrayD<F>], mode: Mode) -> Result<Vec<Forward<F>>> {
        match xs {
            [x] => Ok(vec![self.forward(x, None, mode)?]),
            _ => Err(self.one_input(xs.len())),
        }
    }

    /// [`Model::forward_many`] through a shared reference (inference).
    ///
    /// # Errors
    /// As [`Model::forward_many`].
    fn infer_many(&self, xs: &[ArrayD<F>]) -> Result<Vec<Forward<F>>> {
        match xs {
            [x] => Ok(vec![self.infer(x, None)?]),
            _ => Err(self.one_input(xs.len())),
        }
    }

    /// [`Model::backward`] from one gradient per output (`from_logits[k]`: output `k`'s
    /// gradient is with respect to its logits); returns one gradient per input.
    ///
    /// # Errors
    /// As [`Model::backward`]; the default, [`Error::Shape`] for other than one output.
    fn backward_many(&mut self, dys: &[ArrayD<F>], from_logits: &[bool]) -> Result<Vec<ArrayD<F>>> {
        match dys {
            [dy] => {
                Ok(vec![self.backward(
                    dy,
                    from_logits.first().copied().unwrap_or(false),
                )?])
            }
            _ => Err(Error::Shape {
                layer: self.name().to_string(),
                what: "list of output gradients",
                expected: "1 array".into(),
                got: vec![dys.len()],
            }),
        }
    }

    /// The error of the one-input defaults.
    #[doc(hidden)]
    fn one_input(&self, got: usize) -> Error {
        Error::Shape {
            layer: self.name().to_string(),
            what: "list of inputs",
            expected: "1 array".into(),
            got: vec![got],
        }
    }

    /// Zeroes the carried states of every stateful layer. The default does nothing.
    fn reset_states(&mut self) {}

    /// Where every layer's random streams (dropout masks) stand, one list per layer (see
    /// [`LayerState::rng_state`](crate::LayerState::rng_state)). The default has none.
    fn rng_state(&self) -> Vec<Vec<u64>> {
        Vec::new()
    }

    /// Restores [`Model::rng_state`].
    ///
    /// # Errors
    /// [`Error::Shape`] when the lists do not fit the layers' streams; nothing changes then.
    fn set_rng_state(&mut self, state: &[Vec<u64>]) -> Result<()> {
        if state.iter().all(Vec::is_empty) {
            return Ok(());
        }
        Err(Error::Shape {
            layer: self.name().to_string(),
            what: "random stream state",
            expected: "none (this model has no random streams)".into(),
            got: vec![state.len()],
        })
    }

    /// Zero states for streaming `batch` sequences (one list per layer, see
    /// [`Sequential::infer_with_states`](crate::Sequential::infer_with_states)). The
    /// default has none.
    ///
    /// # Errors
    /// [`Error::Data`] for states too large for one array.
    fn zero_states(&self, batch: usize) -> Result<Vec<Vec<Array2<F>>>> {
        let _ = batch;
        Ok(Vec::new())
    }

    /// Streaming inference from explicit states, replaced by the states after `x`.
    ///
    /// # Errors
    /// The default: [`Error::Unsupported`] (the model has no streaming form).
    fn infer_with_states(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Forward<F>> {
        let _ = (x, mask, states);
        Err(self.no_states())
    }

    /// A forward pass from explicit states, replaced by the states after `x`: what
    /// truncated backpropagation through time runs on each window.
    ///
    /// # Errors
    /// The default: [`Error::Unsupported`].
    fn forward_with_states(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Forward<F>> {
        let _ = (x, mask, mode, states);
        Err(self.no_states())
    }

    /// The error of the state-passing defaults.
    #[doc(hidden)]
    fn no_states(&self) -> Error {
        Error::Unsupported {
            layer: self.name().to_string(),
            reason: "this model type does not run from explicit states".into(),
        }
    }

    /// The architecture as data, for model files and checkpoints.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for models without a saved form (the default).
    fn spec(&self) -> Result<ModelSpec> {
        Err(Error::Unsupported {
            layer: self.name().to_string(),
            reason: "cannot be saved: this model type has no saved form (Model::spec)".into(),
        })
    }

    /// The architecture as data, of whichever kind the model is: what model files and
    /// checkpoints store. The default is [`Model::spec`]'s `Sequential` form; a graph model
    /// gives its [`GraphSpec`](crate::GraphSpec).
    ///
    /// # Errors
    /// As [`Model::spec`].
    fn architecture(&self) -> Result<Architecture> {
        self.spec().map(Architecture::Sequential)
    }

    /// Inference in batches of `batch_size`, with an optional mask.
    ///
    /// # Errors
    /// [`Error::Config`] for `batch_size == 0`; [`Error::Shape`] for a mask whose rows do
    /// not match `x`; as [`Model::forward`].
    fn predict_batched(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        batch_size: usize,
    ) -> Result<ArrayD<F>> {
        if batch_size == 0 {
            return Err(Error::Config {
                layer: self.name().to_string(),
                field: "batch_size",
                reason: "expected a positive integer, got 0".into(),
            });
        }
        let n = x.shape().first().copied().unwrap_or(0);
        if n == 0 {
            return Err(crate::layers::empty(self.name(), "batch", x.shape()));
        }
        let steps = x.shape().get(1).copied().unwrap_or(0);
        check_mask(self.name(), mask, n, steps)?;
        // A stateful model keeps one state per sample: a last, smaller batch would fail
        // after the earlier ones moved the states. Refused before any moves.
        if n > batch_size && n % batch_size != 0 && has_stateful_layer(self.architecture()) {
            return Err(Error::Shape {
                layer: self.name().to_string(),
                what: "samples (a stateful model predicts in batches of one size)",
                expected: format!("a multiple of batch_size {batch_size}"),
                got: vec![n],
            });
        }
        let mut outs = Vec::new();
        for start in (0..n).step_by(batch_size) {
            let r = Slice::from(start..(start + batch_size).min(n));
            let xb = x.slice_axis(Axis(0), r).to_owned();
            let mb = mask.map(|m| m.slice_axis(Axis(0), r).to_owned());
            outs.push(self.infer(&xb, mb.as_ref())?.output);
        }
        let views: Vec<_> = outs.iter().map(|o| o.view()).collect();
        concatenate(Axis(0), &views).map_err(|e| Error::Unsupported {
            layer: self.name().to_string(),
            reason: format!("batch outputs of different shapes: {e}"),
        })
    }
}

/// Whether an architecture has a layer that carries its state between calls.
pub(crate) fn has_stateful_layer(arch: Result<Architecture>) -> bool {
    match arch {
        Ok(Architecture::Sequential(s)) => s.layers.iter().any(|l| l.is_stateful()),
        Ok(Architecture::Graph(g)) => g
            .nodes
            .iter()
            .any(|n| matches!(&n.layer, crate::model::graph::NodeLayer::New(l) if l.is_stateful())),
        Err(_) => false,
    }
}
