//! A trainable weight and its gradient.

use crate::float::Float;
use ndarray::{ArrayD, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Ix1, Ix2};

/// A trainable weight tensor and the gradient accumulated for it.
///
/// `grad` always has the shape of `value`; `backward` adds into it, [`Param::zero_grad`]
/// clears it.
///
/// ```
/// use rnnkit::Param;
/// let mut p = Param::<f64>::new(ndarray::ArrayD::zeros(ndarray::IxDyn(&[2, 3])));
/// p.grad.fill(1.0);
/// p.zero_grad();
/// assert!(p.grad.iter().all(|&g| g == 0.0));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Param<F: Float> {
    /// The weight values.
    pub value: ArrayD<F>,
    /// dL/d(value), accumulated by `backward`.
    pub grad: ArrayD<F>,
}

impl<F: Float> Param<F> {
    /// A parameter holding `value` with a zero gradient.
    pub fn new(value: ArrayD<F>) -> Self {
        let grad = ArrayD::zeros(value.raw_dim());
        Param { value, grad }
    }

    /// Sets the gradient to zero.
    pub fn zero_grad(&mut self) {
        self.grad.fill(F::zero());
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
