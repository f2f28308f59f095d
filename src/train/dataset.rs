//! [`Data`]: the one data argument of [`Trainer::fit`](crate::Trainer::fit),
//! `evaluate`, `train_on_batch` and `test_on_batch`, as Keras's `fit(x, y,
//! sample_weight=)` takes it: inputs (one array or several), targets (one per output),
//! and optionally an input mask and sample weights.

use crate::float::Float;
use crate::layers::Mask;
use ndarray::{Array, ArrayD, Dimension};
use std::borrow::Cow;

/// Inputs and targets, with an optional `[samples, steps]` input mask and Keras's
/// `sample_weight`. Built from `(&x, &y)` or with [`Data::new`] / [`Data::list`]:
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::{Array1, Array2};
/// # fn main() -> Result<(), rnnkit::Error> {
/// let x = Array2::from_shape_fn((4, 2), |(i, j)| (i + j) as f64).into_dyn();
/// let y = Array2::from_shape_fn((4, 1), |(i, _)| i as f64).into_dyn();
/// let w = Array1::from(vec![1.0, 1.0, 0.0, 3.0]).into_dyn(); // sample 2 does not count
/// let mut model = Sequential::<f64>::new(&[2]).push(DenseConfig::new(1))?;
/// let mut trainer = Trainer::new(Sgd::new(0.01), Loss::Mse).epochs(2);
/// trainer.fit(&mut model, (&x, &y))?;
/// trainer.fit(&mut model, Data::new(&x, &y).sample_weight(Some(&w)))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Data<'a, F: Float> {
    /// One array per model input, `[samples, ...]` (borrowed, or converted from integer
    /// token ids: `(&ids, &y)`).
    pub x: Vec<Cow<'a, ArrayD<F>>>,
    /// One target array per model output, `[samples, ...]`.
    pub y: Vec<&'a ArrayD<F>>,
    /// A `[samples, steps]` mask of the (one) input: `true` marks a real step.
    pub mask: Option<&'a Mask>,
    /// Keras's `sample_weight`: `[samples]` (or `[samples, steps]` for a sequence output).
    pub sample_weight: Option<&'a ArrayD<F>>,
}

impl<'a, F: Float> Data<'a, F> {
    /// One input and one target (integer token ids as the input: `Data::from((&ids, &y))`).
    pub fn new(x: &'a ArrayD<F>, y: &'a ArrayD<F>) -> Self {
        Data {
            x: vec![Cow::Borrowed(x)],
            y: vec![y],
            mask: None,
            sample_weight: None,
        }
    }

    /// One array per model input and one target per output (a graph model's
    /// `fit(x=[...], y=[...])`).
    pub fn list(x: &'a [ArrayD<F>], y: &'a [ArrayD<F>]) -> Self {
        Data {
            x: x.iter().map(Cow::Borrowed).collect(),
            y: y.iter().collect(),
            mask: None,
            sample_weight: None,
        }
    }

    /// With an input mask.
    pub fn mask(mut self, mask: Option<&'a Mask>) -> Self {
        self.mask = mask;
        self
    }

    /// With Keras's `sample_weight`.
    pub fn sample_weight(mut self, w: Option<&'a ArrayD<F>>) -> Self {
        self.sample_weight = w;
        self
    }

    /// The one input and target, when there is one of each.
    pub(crate) fn single(&self) -> Option<(&ArrayD<F>, &'a ArrayD<F>)> {
        match (self.x.as_slice(), self.y.as_slice()) {
            ([x], [y]) => Some((x, y)),
            _ => None,
        }
    }
}

impl<'a, F: Float> From<(&'a ArrayD<F>, &'a ArrayD<F>)> for Data<'a, F> {
    fn from((x, y): (&'a ArrayD<F>, &'a ArrayD<F>)) -> Self {
        Data::new(x, y)
    }
}

impl<'a, F: Float> From<(&'a [ArrayD<F>], &'a [ArrayD<F>])> for Data<'a, F> {
    fn from((x, y): (&'a [ArrayD<F>], &'a [ArrayD<F>])) -> Self {
        Data::list(x, y)
    }
}

impl<'a, F: Float> From<(&'a Vec<ArrayD<F>>, &'a Vec<ArrayD<F>>)> for Data<'a, F> {
    fn from((x, y): (&'a Vec<ArrayD<F>>, &'a Vec<ArrayD<F>>)) -> Self {
        Data::list(x, y)
    }
}

/// `(&ids, &y)`: integer token ids as the input, converted once to the model's float type.
macro_rules! id_data {
    ($($t:ty),*) => {$(
        impl<'a, F: Float, D: Dimension> From<(&'a Array<$t, D>, &'a ArrayD<F>)> for Data<'a, F> {
            fn from((x, y): (&'a Array<$t, D>, &'a ArrayD<F>)) -> Self {
                Data {
                    x: vec![Cow::Owned(x.mapv(|i| F::c(i as f64)).into_dyn())],
                    y: vec![y],
                    mask: None,
                    sample_weight: None,
                }
            }
        }
    )*};
}
id_data!(usize, u32, i32, i64);
