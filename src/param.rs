//! A trainable weight and its gradient.

use crate::error::{Error, Result};
use crate::float::Float;
use ndarray::{
    ArrayD, ArrayView1, ArrayView2, ArrayViewD, ArrayViewMut1, ArrayViewMut2, ArrayViewMutD, Ix1,
    Ix2,
};

/// A trainable weight tensor and the gradient accumulated for it.
///
/// The gradient always has the shape of the value, and neither changes shape: values and
/// gradients are changed in place through views, or replaced by arrays of the same shape.
/// `backward` adds into the gradient, [`Param::zero_grad`] clears it.
///
/// ```
/// use rnnkit::Param;
/// use rnnkit::ndarray::{ArrayD, IxDyn};
/// let mut p = Param::<f64>::new(ArrayD::zeros(IxDyn(&[2, 3])));
/// p.grad_mut().fill(1.0);
/// p.zero_grad();
/// assert!(p.grad().iter().all(|&g| g == 0.0));
/// assert!(p.set_value(&ArrayD::ones(IxDyn(&[3, 2]))).is_err()); // shape kept
/// ```
#[derive(Debug)]
pub struct Param<F: Float> {
    pub(crate) value: ArrayD<F>,
    pub(crate) grad: ArrayD<F>,
    /// This weight's identity (a Keras variable's): unique in the process, new for every
    /// parameter made or cloned, kept when values are replaced in place. An optimizer
    /// serves the parameters it first stepped and refuses others.
    id: u64,
}

/// A fresh parameter identity.
fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<F: Float> Clone for Param<F> {
    /// A copy with the same values and gradient, and an identity of its own (a copied
    /// model is another model to an optimizer, as a cloned Keras model is).
    fn clone(&self) -> Self {
        Param {
            value: self.value.clone(),
            grad: self.grad.clone(),
            id: next_id(),
        }
    }
}

impl<F: Float> PartialEq for Param<F> {
    /// Equal values and gradients (identities aside).
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.grad == other.grad
    }
}

impl<F: Float> Param<F> {
    /// A parameter holding `value` with a zero gradient.
    pub fn new(value: ArrayD<F>) -> Self {
        // Row-major always: the kernels and optimizers read weights as flat slices.
        let value = if value.is_standard_layout() {
            value
        } else {
            value.as_standard_layout().into_owned()
        };
        let grad = ArrayD::zeros(value.raw_dim());
        Param {
            value,
            grad,
            id: next_id(),
        }
    }

    /// This parameter's identity: unique in the process, new for every parameter made or
    /// cloned (what an optimizer binds to).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The weight values.
    pub fn value(&self) -> &ArrayD<F> {
        &self.value
    }

    /// dL/d(value), accumulated by `backward`.
    pub fn grad(&self) -> &ArrayD<F> {
        &self.grad
    }

    /// The values, writable in place (the shape cannot change).
    pub fn value_mut(&mut self) -> ArrayViewMutD<'_, F> {
        self.value.view_mut()
    }

    /// The gradient, writable in place (the shape cannot change).
    pub fn grad_mut(&mut self) -> ArrayViewMutD<'_, F> {
        self.grad.view_mut()
    }

    /// The values as a view.
    pub fn view(&self) -> ArrayViewD<'_, F> {
        self.value.view()
    }

    /// Replaces the values by `v`, which must have the same shape.
    ///
    /// # Errors
    /// [`Error::Shape`] for another shape; nothing is changed then.
    pub fn set_value(&mut self, v: &ArrayD<F>) -> Result<()> {
        self.same_shape("value", v)?;
        self.value.assign(v);
        Ok(())
    }

    /// Adds `g` into the gradient; `g` must have the value's shape.
    ///
    /// # Errors
    /// [`Error::Shape`] for another shape; nothing is changed then.
    pub fn add_grad(&mut self, g: &ArrayD<F>) -> Result<()> {
        self.same_shape("gradient", g)?;
        self.grad += g;
        Ok(())
    }

    fn same_shape(&self, what: &'static str, a: &ArrayD<F>) -> Result<()> {
        if a.shape() != self.value.shape() {
            return Err(Error::Shape {
                layer: "param".into(),
                what,
                expected: format!("{:?}", self.value.shape()),
                got: a.shape().to_vec(),
            });
        }
        Ok(())
    }

    /// Sets the gradient to zero.
    pub fn zero_grad(&mut self) {
        match self.grad.as_slice_memory_order_mut() {
            Some(flat) => crate::linalg::wide::fill_flat(flat, F::zero()),
            None => self.grad.fill(F::zero()),
        }
    }

    /// Number of scalar weights.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// True for a weight with no entries.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    pub(crate) fn v2(&self) -> ArrayView2<'_, F> {
        self.value
            .view()
            .into_dimensionality::<Ix2>()
            .expect("invariant: 2-D weight")
    }

    pub(crate) fn v1(&self) -> ArrayView1<'_, F> {
        self.value
            .view()
            .into_dimensionality::<Ix1>()
            .expect("invariant: 1-D weight")
    }

    pub(crate) fn g2(&mut self) -> ArrayViewMut2<'_, F> {
        self.grad
            .view_mut()
            .into_dimensionality::<Ix2>()
            .expect("invariant: 2-D weight")
    }

    pub(crate) fn g1(&mut self) -> ArrayViewMut1<'_, F> {
        self.grad
            .view_mut()
            .into_dimensionality::<Ix1>()
            .expect("invariant: 1-D weight")
    }
}

/// Anything with a name and trainable parameters: every layer and every model (PyTorch's
/// `nn.Module`, burn's `Module`). Implement the two visitors; the weight conveniences
/// Keras has (`count_params`, `get_weights`, `set_weights`) come with them.
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut dense = DenseConfig::new(2).build::<f64>(3, &mut seeded_rng(0))?;
/// assert_eq!(dense.param_count(), 3 * 2 + 2);
/// let mut w = dense.get_weights();
/// w[1].fill(0.5); // the bias
/// dense.set_weights(&w)?;
/// assert_eq!(dense.get_weights()[1][[0]], 0.5);
/// # Ok(()) }
/// ```
pub trait Module<F: Float> {
    /// Keras-style instance name (`"lstm"`, `"dense_1"`, `"sequential"`).
    fn name(&self) -> &str;

    /// Visits parameters in Keras `get_weights()` order with their names.
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>));

    /// Visits parameters mutably, in the same order.
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>));

    /// Number of scalar weights (Keras's `count_params`).
    fn param_count(&self) -> usize {
        let mut n = 0;
        self.visit_params(&mut |_, p| n += p.len());
        n
    }

    /// Copies of the weights in Keras `get_weights()` order.
    fn get_weights(&self) -> Vec<ArrayD<F>> {
        let mut w = Vec::new();
        self.visit_params(&mut |_, p| w.push(p.value.clone()));
        w
    }

    /// Sets the weights from arrays in Keras `get_weights()` order.
    ///
    /// # Errors
    /// [`Error::WeightCount`], [`Error::WeightShape`], or [`Error::Data`] for a non-finite
    /// value; nothing is changed then.
    fn set_weights(&mut self, weights: &[ArrayD<F>]) -> Result<()> {
        let mut expected = Vec::new();
        self.visit_params(&mut |n, p| expected.push((n.to_string(), p.value.shape().to_vec())));
        check_weights(self.name(), &expected, weights)?;
        let mut i = 0;
        self.visit_params_mut(&mut |_, p| {
            p.value.assign(&weights[i]);
            i += 1;
        });
        Ok(())
    }

    /// Sets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.visit_params_mut(&mut |_, p| p.zero_grad());
    }
}

/// Checks a weight list against (name, shape) pairs.
pub(crate) fn check_weights<F: Float>(
    layer: &str,
    expected: &[(String, Vec<usize>)],
    weights: &[ArrayD<F>],
) -> Result<()> {
    if expected.len() != weights.len() {
        return Err(Error::WeightCount {
            layer: layer.to_string(),
            expected: expected.len(),
            got: weights.len(),
        });
    }
    for ((name, shape), w) in expected.iter().zip(weights) {
        if w.shape() != shape.as_slice() {
            return Err(Error::WeightShape {
                layer: layer.to_string(),
                name: name.clone(),
                expected: shape.clone(),
                got: w.shape().to_vec(),
            });
        }
        if let Some(i) = w.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "{layer}: weight `{name}` has a non-finite value at flat index {i}"
            )));
        }
    }
    Ok(())
}
