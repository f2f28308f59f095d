//! [`AnyModel`]: whichever model a file holds, opened by one call.

use super::header::Header;
use super::{Save, sealed::Decode};
use crate::activation::Activation;
use crate::error::{FileError, Result};
use crate::float::Float;
use crate::layers::{Dim, Inputs, OutputGrads, Outputs};
use crate::model::{Architecture, Functional, Model, ModelState, Sequential, Summary};
use crate::param::{Module, Param};
use crate::reservoir::EchoStateNetwork;
use ndarray::ArrayD;

/// Any rnnkit model, as a file holds it: what [`Load::load`](super::Load::load) gives for
/// a file whose model type is not known in advance, and what
/// [`Trainer::resume`](crate::Trainer::resume) gives for a checkpoint. It is a [`Model`]
/// itself (predict, evaluate, train, save it as it is), and a `match` takes the concrete
/// model out.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::io::AnyModel;
/// use rnnkit::ndarray::Array2;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = Array2::from_shape_fn((200, 1), |(t, _)| (t as f64 * 0.1).sin());
/// let mut esn = EsnConfig::new(20).density(0.5).washout(20).build::<f64>(1)?;
/// esn.fit(&x, &x.mapv(|v| v * v))?;
/// let path = std::env::temp_dir().join("rnnkit-doc-any.safetensors");
/// esn.save(&path)?;
///
/// let model = AnyModel::<f64>::load(&path)?;
/// assert_eq!(model.architecture()?.model_type(), "EchoStateNetwork");
/// let AnyModel::EchoStateNetwork(mut loaded) = model else { unreachable!() };
/// assert_eq!(loaded.run(&x)?, esn.run(&x)?); // the state was saved too
/// # std::fs::remove_file(&path).ok();
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AnyModel<F: Float> {
    /// A stack of layers.
    Sequential(Sequential<F>),
    /// A graph model.
    Functional(Functional<F>),
    /// An echo state network.
    EchoStateNetwork(EchoStateNetwork<F>),
}

/// `each!(self, m => expr)`: `expr` on whichever model `self` holds.
macro_rules! each {
    ($s:expr, $m:ident => $e:expr) => {
        match $s {
            AnyModel::Sequential($m) => $e,
            AnyModel::Functional($m) => $e,
            AnyModel::EchoStateNetwork($m) => $e,
        }
    };
}

impl<F: Float> Decode for AnyModel<F> {
    fn decode(
        header: &Header<'_>,
        extra: &dyn Fn(&str) -> bool,
    ) -> std::result::Result<Self, FileError> {
        Ok(match header.architecture {
            Architecture::Sequential(_) => AnyModel::Sequential(Sequential::decode(header, extra)?),
            Architecture::Graph(_) => AnyModel::Functional(Functional::decode(header, extra)?),
            Architecture::EchoStateNetwork { .. } => {
                AnyModel::EchoStateNetwork(EchoStateNetwork::decode(header, extra)?)
            }
        })
    }
}

impl<F: Float> Save for AnyModel<F> {
    fn to_bytes(&self) -> Result<Vec<u8>> {
        each!(self, m => m.to_bytes())
    }
    fn to_format(&self, format: super::Format) -> Result<Vec<u8>> {
        each!(self, m => m.to_format(format))
    }
}

impl<F: Float> Module<F> for AnyModel<F> {
    fn name(&self) -> &str {
        each!(self, m => m.name())
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        each!(self, m => m.visit_params(f))
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        each!(self, m => m.visit_params_mut(f))
    }
}

impl<F: Float> Model<F> for AnyModel<F> {
    fn input_shapes(&self) -> Vec<Vec<Dim>> {
        each!(self, m => m.input_shapes())
    }
    fn output_shapes(&self) -> Vec<Vec<Dim>> {
        each!(self, m => m.output_shapes())
    }
    fn output_activations(&self) -> Vec<Activation> {
        each!(self, m => m.output_activations())
    }
    fn forward(&mut self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>> {
        each!(self, m => Model::forward(m, inputs))
    }
    fn infer(&self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>> {
        each!(self, m => Model::infer(m, inputs))
    }
    fn backward(&mut self, grads: &[OutputGrads<'_, F>]) -> Result<Vec<ArrayD<F>>> {
        each!(self, m => Model::backward(m, grads))
    }
    fn architecture(&self) -> Result<Architecture> {
        each!(self, m => m.architecture())
    }
    fn state(&self) -> Option<&dyn ModelState<F>> {
        each!(self, m => Model::state(m))
    }
    fn state_mut(&mut self) -> Option<&mut dyn ModelState<F>> {
        each!(self, m => Model::state_mut(m))
    }
    fn summary(&self) -> Summary {
        each!(self, m => Model::summary(m))
    }
    fn predict(&self, inputs: Inputs<'_, F>, batch_size: usize) -> Result<Vec<ArrayD<F>>> {
        each!(self, m => Model::predict(m, inputs, batch_size))
    }
}
