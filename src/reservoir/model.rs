//! The echo state network as a [`Model`]: batches of sequences through the trainer's
//! `predict` and `evaluate`. Its readout is fitted in one solve by
//! [`EchoStateNetwork::fit`], not by gradients, so `backward` refuses.

use super::esn::EchoStateNetwork;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{Dim, Inputs, Mask, OutputGrads, Outputs};
use crate::model::Model;
use crate::param::{Module, Param};
use ndarray::{Array1, Array3, ArrayD, Axis, Ix3};

impl<F: Float> EchoStateNetwork<F> {
    /// Runs every sequence of a batch `[batch, steps, input_dim]` from a zero state:
    /// the outputs `[batch, steps, outputs]`.
    fn run_batch(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<ArrayD<F>> {
        let name = self.config().model_name();
        if mask.is_some() {
            return Err(Error::Mask {
                layer: name.to_string(),
                reason: "an echo state network runs whole sequences; it takes no mask".into(),
            });
        }
        let x3 = x
            .view()
            .into_dimensionality::<Ix3>()
            .map_err(|_| Error::Rank {
                layer: name.to_string(),
                expected: "3".into(),
                layout: "[batch, steps, features]",
                got: x.ndim(),
                shape: x.shape().to_vec(),
            })?;
        let (b, t, _) = x3.dim();
        if b == 0 {
            return Err(crate::layers::empty(name, "batch", x.shape()));
        }
        let zero = Array1::zeros(self.units());
        let mut out: Option<Array3<F>> = None;
        for (i, seq) in x3.axis_iter(Axis(0)).enumerate() {
            let (y, _) = self.run_from(&seq.to_owned(), &zero)?;
            let o = out.get_or_insert_with(|| Array3::zeros((b, t, y.ncols())));
            o.index_axis_mut(Axis(0), i).assign(&y);
        }
        Ok(out.map(|o| o.into_dyn()).unwrap_or_default())
    }
}

/// An echo state network is a model for prediction and evaluation: each sequence of a batch
/// runs from a zero state (as a Keras layer's does), giving `[batch, steps, outputs]`.
/// Training goes through [`EchoStateNetwork::fit`]; the trainer's `fit` stops at
/// `backward` with [`Error::Unsupported`].
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::EsnConfig;
/// use rnnkit::ndarray::{Array2, Array3};
/// # fn main() -> Result<(), rnnkit::Error> {
/// let s = Array2::from_shape_fn((300, 1), |(t, _)| (t as f64 * 0.1).sin());
/// let mut esn = EsnConfig::new(30).density(0.3).washout(30).build::<f64>(1)?;
/// esn.fit(&s.slice(rnnkit::ndarray::s![..299, ..]).to_owned(), &s.slice(rnnkit::ndarray::s![1.., ..]).to_owned())?;
/// let batch = Array3::from_shape_fn((4, 50, 1), |(i, t, _)| ((i * 7 + t) as f64 * 0.1).sin()).into_dyn();
/// let y = esn.predict(Inputs::new(&batch), 32)?;
/// assert_eq!(y[0].shape(), &[4, 50, 1]);
/// # Ok(()) }
/// ```
impl<F: Float> Model<F> for EchoStateNetwork<F> {
    fn input_shapes(&self) -> Vec<Vec<Dim>> {
        vec![self.shapes[0].to_vec()]
    }
    fn output_shapes(&self) -> Vec<Vec<Dim>> {
        vec![self.shapes[1].to_vec()]
    }
    fn forward(&mut self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>> {
        Model::infer(self, inputs)
    }
    fn infer(&self, inputs: Inputs<'_, F>) -> Result<Vec<Outputs<F>>> {
        let name = self.config().model_name();
        let ([x], None) = (inputs.xs.as_slice(), inputs.states) else {
            return Err(Error::Unsupported {
                layer: name.to_string(),
                reason: "an echo state network takes one input and no explicit states".into(),
            });
        };
        Ok(vec![Outputs::new(self.run_batch(x, inputs.mask_at(0))?)])
    }
    /// One row: the reservoir's and readout's weights (fixed or fitted by the ridge
    /// solve, not trained by gradients).
    fn summary(&self) -> crate::model::Summary {
        let weights = self.w_in().len()
            + self.reservoir().len()
            + self.bias().len()
            + self.readout().map_or(0, |r| r.len());
        crate::model::Summary {
            name: self.config().model_name().to_string(),
            rows: vec![crate::model::SummaryRow {
                name: self.config().model_name().to_string(),
                type_name: "EchoStateNetwork".into(),
                output_shape: crate::layers::format_shape(&self.shapes[1]),
                params: weights,
                connected_to: None,
            }],
            bytes_per_param: std::mem::size_of::<F>(),
        }
    }
    fn architecture(&self) -> Result<crate::model::Architecture> {
        Ok(crate::model::Architecture::EchoStateNetwork {
            input_dim: self.input_dim(),
            config: self.config().clone(),
        })
    }
    fn backward(&mut self, _: &[OutputGrads<'_, F>]) -> Result<Vec<ArrayD<F>>> {
        Err(Error::Unsupported {
            layer: self.config().model_name().to_string(),
            reason: "the readout is fitted in one ridge solve by EchoStateNetwork::fit, \
                     not by gradients"
                .into(),
        })
    }
}

impl<F: Float> Module<F> for EchoStateNetwork<F> {
    fn name(&self) -> &str {
        self.config().model_name()
    }
    fn visit_params(&self, _: &mut dyn FnMut(&str, &Param<F>)) {}
    fn visit_params_mut(&mut self, _: &mut dyn FnMut(&str, &mut Param<F>)) {}
}
