//! [`Model`]: the one interface through which a model is trained, evaluated, predicted and
//! checkpointed; [`ModelState`]: its carried states and runs from explicit states.
//! [`Sequential`](crate::Sequential), [`Functional`](crate::Functional) and
//! [`EchoStateNetwork`](crate::EchoStateNetwork) implement it; so can a user's own model.

use super::{ModelSpec, Summary, SummaryRow};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{Dim, Inputs, OutputGrads, Outputs, check_mask};
use crate::param::Module;
use ndarray::{Array2, ArrayD, Axis, Slice, concatenate};
use std::fmt::Debug;

/// A model's architecture as data: a [`Sequential`](crate::Sequential) stack or a graph.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::model::Architecture;
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
    /// An echo state network: its configuration and input width (the reservoir's weights
    /// are drawn from them, or read from the file).
    EchoStateNetwork {
        /// Features per input step.
        input_dim: usize,
        /// The reservoir and readout settings.
        config: crate::reservoir::EsnConfig,
    },
}

impl Architecture {
    /// The model type, as files record it: `"Sequential"`, `"Functional"` or
    /// `"EchoStateNetwork"`.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let seq = Sequential::<f32>::new(&[3, 1]).push(GruConfig::new(4))?;
    /// assert_eq!(seq.architecture()?.model_type(), "Sequential");
    /// # Ok(()) }
    /// ```
    pub fn model_type(&self) -> &'static str {
        match self {
            Architecture::Sequential(_) => "Sequential",
            Architecture::Graph(_) => "Functional",
            Architecture::EchoStateNetwork { .. } => "EchoStateNetwork",
        }
    }
}

/// A trainable model: what [`Trainer`](crate::Trainer) trains, evaluates and predicts, and
/// what callbacks and optimizers see. One call for one input or several, as a layer's:
/// [`Model::forward`] takes [`Inputs`] and returns one [`Outputs`] per model output;
/// [`Model::backward`] takes one [`OutputGrads`] per output and returns dL/d(input) per
/// input.
///
/// Implement the shapes, `forward`, `infer`, `backward` and [`Module`]; the rest has
/// defaults. The trainer calls `forward` in [`Mode::Train`](crate::Mode::Train), then
/// [`Module::zero_grad`], then `backward` with the loss gradient, then lets the optimizer
/// update what the visitors show; prediction goes through `infer`, which takes `&self` so
/// that a trained model can serve several threads at once (hence `Send + Sync`).
///
/// # Example
/// A hand-written model, `y = w·x` summed over the features, trained by the
/// [`Trainer`](crate::Trainer):
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{Dim, Param};
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
///     fn input_shapes(&self) -> Vec<Vec<Dim>> { vec![vec![Some(2)]] }
///     fn output_shapes(&self) -> Vec<Vec<Dim>> { vec![vec![Some(1)]] }
///     fn forward(&mut self, inputs: Inputs<'_, f64>) -> Result<Vec<Outputs<f64>>, rnnkit::Error> {
///         if inputs.mode == Mode::Train { self.x = Some(inputs.xs[0].clone().into_owned()); }
///         self.infer(inputs)
///     }
///     fn infer(&self, inputs: Inputs<'_, f64>) -> Result<Vec<Outputs<f64>>, rnnkit::Error> {
///         let x: &ArrayD<f64> = &inputs.xs[0];
///         let y = (x * self.w.value()).sum_axis(Axis(1)).insert_axis(Axis(1));
///         Ok(vec![Outputs::new(y)])
///     }
///     fn backward(&mut self, grads: &[OutputGrads<'_, f64>]) -> Result<Vec<ArrayD<f64>>, rnnkit::Error> {
///         let (x, dy) = (self.x.as_ref().expect("a Train forward first"), grads[0].dy);
///         self.w.add_grad(&(x * dy).sum_axis(Axis(0)))?;
///         Ok(vec![dy * self.w.value()])
///     }
/// }
///
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = Array2::from_shape_fn((64, 2), |(i, j)| ((i * 2 + j) as f64 * 0.37).sin()).into_dyn();
/// let y = x.map_axis(Axis(1), |r| 2.0 * r[0] - r[1]).insert_axis(Axis(1)).into_dyn();
/// let mut model = Linear { w: Param::new(ArrayD::zeros(IxDyn(&[2]))), x: None };
/// let mut trainer = Trainer::new(Adam::new(0.1), Loss::Mse).epochs(200).shuffle(false);
/// let history = trainer.fit(&mut model, (&x, &y))?;
/// assert!(*history.loss().last().unwrap() < 1e-4);
/// assert!((model.get_weights()[0][0] - 2.0).abs() < 1e-2);
/// # Ok(()) }
/// ```
pub trait Model<F: Float>: Module<F> + Debug + Send + Sync {
    /// The shape of each input, without the batch axis, in input order.
    fn input_shapes(&self) -> Vec<Vec<Dim>>;

    /// The shape of each output, without the batch axis, in output order.
    fn output_shapes(&self) -> Vec<Vec<Dim>>;

    /// The activation each output applies last; cross-entropy losses work from the logits
    /// of a softmax or sigmoid output. Default linear.
    fn output_activations(&self) -> Vec<Activation> {
        vec![Activation::Linear; self.output_shapes().len()]
    }

    /// Forward pass of a batch: one tensor per model input, with optional masks (a
    /// [`Sequential`](crate::Sequential) takes one). In
    /// [`Mode::Train`](crate::Mode::Train) the model keeps what [`Model::backward`] needs.
    /// Returns one [`Outputs`] per model output, with its mask and (for a softmax or
    /// sigmoid output) its logits.
    ///
    /// # Errors
    /// Inputs or masks that do not fit the model.
    fn forward(&mut self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>>;

    /// Inference through a shared reference: what `forward` returns in
    /// [`Mode::Infer`](crate::Mode::Infer) (logits aside), with nothing in the model changed
    /// (but a stateful layer's carried states).
    ///
    /// # Errors
    /// As [`Model::forward`].
    fn infer(&self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>>;

    /// Backward pass of the last training forward: one gradient per output (dL/d(logits)
    /// where its `from_logits` says so); adds every weight gradient into its
    /// [`Param`](crate::Param) and returns dL/d(input) per input (empty arrays where every
    /// gradient's [`input_grads`](OutputGrads::input_grads) is cleared: the trainer's
    /// steps skip that work).
    ///
    /// # Errors
    /// [`Error::NoCache`] without a preceding training forward; a gradient of the wrong
    /// count or shape.
    fn backward(&mut self, grads: &[OutputGrads<'_, F>]) -> Result<Vec<ArrayD<F>>>;

    /// The architecture as data, of whichever kind the model is: what model files and
    /// checkpoints store.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for models without a saved form (the default).
    fn architecture(&self) -> Result<Architecture> {
        Err(Error::Unsupported {
            layer: self.name().to_string(),
            reason: "cannot be saved: this model type has no saved form (Model::architecture)"
                .into(),
        })
    }

    /// The model's carried states, random streams and runs from explicit states, if it
    /// has any.
    fn state(&self) -> Option<&dyn ModelState<F>> {
        None
    }

    /// [`Model::state`], mutably.
    fn state_mut(&mut self) -> Option<&mut dyn ModelState<F>> {
        None
    }

    /// The model summary in Keras's layout (`Display` prints it). The default shows the
    /// model as one row; rnnkit's models list their layers.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let esn = EsnConfig::new(20).density(0.5).build::<f64>(1)?;
    /// let models: Vec<Box<dyn Model<f64>>> = vec![
    ///     Box::new(Sequential::<f64>::new(&[3, 1]).push(GruConfig::new(2))?),
    ///     Box::new(esn),
    /// ];
    /// for m in &models {
    ///     assert!(m.summary().to_string().contains("Total params"));
    /// }
    /// # Ok(()) }
    /// ```
    fn summary(&self) -> Summary {
        let shapes: Vec<String> = self
            .output_shapes()
            .iter()
            .map(|s| crate::layers::format_shape(s))
            .collect();
        Summary {
            name: self.name().to_string(),
            rows: vec![SummaryRow {
                name: self.name().to_string(),
                type_name: "Model".into(),
                output_shape: shapes.join(", "),
                params: self.param_count(),
                connected_to: None,
            }],
            bytes_per_param: std::mem::size_of::<F>(),
        }
    }

    /// Inference in batches of `batch_size` (Keras's `predict`): one array per output,
    /// the batches' outputs joined. No samples give empty outputs.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::Array3;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let model = Sequential::<f64>::new(&[5, 2]).push(GruConfig::new(3))?;
    /// let x = Array3::<f64>::ones((10, 5, 2)).into_dyn();
    /// let y = model.predict(Inputs::new(&x), 4)?;
    /// assert_eq!(y[0].shape(), &[10, 3]);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] for `batch_size == 0`; [`Error::Shape`] for inputs or masks whose
    /// sample counts differ; as [`Model::infer`].
    fn predict(&self, inputs: Inputs<'_, F>, batch_size: usize) -> Result<Vec<ArrayD<F>>> {
        if batch_size == 0 {
            return Err(Error::Config {
                layer: self.name().to_string(),
                field: "batch_size",
                reason: "expected a positive integer, got 0".into(),
            });
        }
        let want = self.input_shapes().len();
        if inputs.xs.len() != want {
            return Err(Error::Shape {
                layer: self.name().to_string(),
                what: "list of inputs",
                expected: format!("{want} arrays"),
                got: vec![inputs.xs.len()],
            });
        }
        let Some(first) = inputs.xs.first().map(|x| x.shape().to_vec()) else {
            return Err(Error::Shape {
                layer: self.name().to_string(),
                what: "list of inputs",
                expected: "at least one array (this model declares no input)".into(),
                got: vec![0],
            });
        };
        let n = first.first().copied().unwrap_or(0);
        let shapes = self.input_shapes();
        for (k, x) in inputs.xs.iter().enumerate() {
            if !crate::layers::fits_batched(x.shape(), &shapes[k]) {
                return Err(Error::Shape {
                    layer: self.name().to_string(),
                    what: "input",
                    expected: crate::layers::format_batched("batch", &shapes[k]),
                    got: x.shape().to_vec(),
                });
            }
            if x.shape().first() != Some(&n) {
                return Err(Error::Shape {
                    layer: self.name().to_string(),
                    what: "input (every input needs the samples of input 0)",
                    expected: format!("{n} samples in input {k}"),
                    got: x.shape().to_vec(),
                });
            }
            let steps = x.shape().get(1).copied().unwrap_or(0);
            check_mask(self.name(), inputs.mask_at(k), n, steps)?;
        }
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
        if n == 0 {
            // Keras: no samples, no predictions; the outputs' shapes with 0 rows (an open
            // step count is the input's).
            let steps = first.get(1).copied().unwrap_or(0);
            return Ok(self
                .output_shapes()
                .iter()
                .map(|s| {
                    let dims: Vec<usize> = std::iter::once(0)
                        .chain(s.iter().map(|d| d.unwrap_or(steps)))
                        .collect();
                    ArrayD::zeros(dims)
                })
                .collect());
        }
        let mut parts: Vec<Vec<ArrayD<F>>> = Vec::new();
        for start in (0..n).step_by(batch_size) {
            let r = Slice::from(start..(start + batch_size).min(n));
            let xs: Vec<ArrayD<F>> = inputs
                .xs
                .iter()
                .map(|x| x.slice_axis(Axis(0), r).to_owned())
                .collect();
            let ms: Vec<Option<crate::layers::Mask>> = (0..xs.len())
                .map(|k| {
                    inputs
                        .mask_at(k)
                        .map(|m| m.slice_axis(Axis(0), r).to_owned())
                })
                .collect();
            let refs: Vec<&ArrayD<F>> = xs.iter().collect();
            let mrefs: Vec<_> = ms.iter().map(Option::as_ref).collect();
            let outs = self.infer(Inputs::list(&refs).masks(&mrefs))?;
            parts.resize_with(outs.len(), Vec::new);
            for (p, o) in parts.iter_mut().zip(outs) {
                p.push(o.output);
            }
        }
        parts
            .into_iter()
            .map(|p| {
                let views: Vec<_> = p.iter().map(|o| o.view()).collect();
                concatenate(Axis(0), &views).map_err(|e| Error::Unsupported {
                    layer: self.name().to_string(),
                    reason: format!("batch outputs of different shapes: {e}"),
                })
            })
            .collect()
    }
}

/// What a model carries between calls and its runs from explicit states: the model-level
/// counterpart of [`LayerState`](crate::LayerState), one list per layer. Every method has
/// a default meaning "none".
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::{Array3, Axis, Slice};
/// # fn main() -> Result<(), rnnkit::Error> {
/// let model = Sequential::<f64>::with_input_shape(vec![None, Some(2)])
///     .push(GruConfig::new(4).return_sequences(true))?
///     .push(DenseConfig::new(1))?;
/// let x = Array3::from_shape_fn((2, 8, 2), |(b, t, f)| (b + t * f) as f64 * 0.1).into_dyn();
/// let whole = model.infer(Inputs::new(&x))?.remove(0).output;
/// let state = model.state().expect("a Sequential has states");
/// let mut states = state.zero_states(2)?;
/// let cut = |r| x.slice_axis(Axis(1), Slice::from(r)).to_owned();
/// state.infer_from(Inputs::new(&cut(0..5)), &mut states)?;
/// let rest = state.infer_from(Inputs::new(&cut(5..8)), &mut states)?.remove(0).output;
/// let want = whole.slice_axis(Axis(1), Slice::from(5..8));
/// assert!((&rest - &want).iter().all(|d| d.abs() < 1e-12));
/// # Ok(()) }
/// ```
pub trait ModelState<F: Float>: Model<F> {
    /// Zeroes the carried states of every stateful layer (Keras's `reset_states`).
    fn reset_states(&mut self) {}

    /// The carried states of every layer, one list per layer (empty for layers that are
    /// not stateful or not yet called), in Keras order.
    fn states(&self) -> Vec<Vec<Array2<F>>> {
        Vec::new()
    }

    /// Zero states for running `batch` sequences from explicit states (one list per layer).
    ///
    /// # Errors
    /// [`Error::Data`] for states too large for one array.
    fn zero_states(&self, batch: usize) -> Result<Vec<Vec<Array2<F>>>> {
        let _ = batch;
        Ok(Vec::new())
    }

    /// Where every layer's random streams stand (see
    /// [`LayerState::rng_state`](crate::LayerState::rng_state)).
    fn rng_state(&self) -> Vec<Vec<u64>> {
        Vec::new()
    }

    /// Restores [`ModelState::rng_state`].
    ///
    /// # Errors
    /// [`Error::Shape`] for lists that do not fit the layers (nothing changes then).
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

    /// Streaming inference: runs the chunk from `states` (one list per layer, from
    /// [`ModelState::zero_states`]) and replaces them by the states after it, so a
    /// sequence fed chunk by chunk gives the outputs of one pass over all of it. The
    /// states are a value: clone them to branch (beam search). Stateful layers' carried
    /// states are neither read nor changed.
    ///
    /// # Errors
    /// As [`Model::infer`]; [`Error::Shape`] for states that do not fit (`states` is
    /// unchanged then); the default, [`Error::Unsupported`].
    fn infer_from(
        &self,
        inputs: Inputs<'_, F>,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Vec<Outputs<F>>> {
        let _ = (inputs, states);
        Err(no_states(self.name()))
    }

    /// [`ModelState::infer_from`] through `&mut self`, in either mode (truncated
    /// backpropagation through time: no gradient flows into the states).
    ///
    /// # Errors
    /// As [`ModelState::infer_from`].
    fn forward_from(
        &mut self,
        inputs: Inputs<'_, F>,
        states: &mut Vec<Vec<Array2<F>>>,
    ) -> Result<Vec<Outputs<F>>> {
        let _ = (inputs, states);
        Err(no_states(self.name()))
    }
}

/// The error of a model that does not run from explicit states.
fn no_states(model: &str) -> Error {
    Error::Unsupported {
        layer: model.to_string(),
        reason: "this model type does not run from explicit states".into(),
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
        Ok(Architecture::EchoStateNetwork { .. }) | Err(_) => false,
    }
}
