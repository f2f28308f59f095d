//! The float bound shared by every layer.

use ndarray::NdFloat;
use num_traits::FromPrimitive;

/// Floating-point element type: `f32` or `f64`.
///
/// Built on ndarray's [`NdFloat`] (arithmetic, matrix products, formatting) and num-traits'
/// [`FromPrimitive`], plus the bulk activations the recurrent cells run on whole gate blocks.
/// Both vectorise: `f64` computes them from a branch-free `exp` within 1e-15 relative of
/// libm (Keras parity to 1e-9 holds); `f32` uses branch-free rational approximations (max
/// absolute error below 5e-7, a few f32 ulps, below f32's own rounding of the inputs after
/// a few products).
///
/// # Example
/// ```
/// use rnnkit::Float;
/// fn half<F: Float>(x: F) -> F { x * F::c(0.5) }
/// assert_eq!(half(3.0f32), 1.5);
/// let mut v = [0.0f32, 1.0, -20.0];
/// f32::tanh_slice(&mut v);
/// assert!((v[1] - 1.0f32.tanh()).abs() < 1e-6 && v[2] == -1.0);
/// ```
pub trait Float:
    NdFloat + FromPrimitive + Default + Send + Sync + 'static + private::Sealed
{
    /// `F::from_f64(v)`, for constants that always fit.
    fn c(v: f64) -> Self {
        Self::from_f64(v).unwrap_or_else(Self::nan)
    }

    /// `tanh` of every element, in place.
    fn tanh_slice(v: &mut [Self]);

    /// The logistic `1 / (1 + e^-x)` of every element, in place.
    fn sigmoid_slice(v: &mut [Self]);
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The exact logistic function, stable for large `|x|`.
#[inline]
pub(crate) fn sigmoid<F: Float>(x: F) -> F {
    if x >= F::zero() {
        F::one() / (F::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (F::one() + e)
    }
}

impl Float for f64 {
    fn tanh_slice(v: &mut [f64]) {
        crate::linalg::fast64::tanh_slice(v)
    }
    fn sigmoid_slice(v: &mut [f64]) {
        crate::linalg::fast64::sigmoid_slice(v)
    }
}

impl Float for f32 {
    fn tanh_slice(v: &mut [f32]) {
        crate::linalg::fast32::tanh_slice(v)
    }
    fn sigmoid_slice(v: &mut [f32]) {
        crate::linalg::fast32::sigmoid_slice(v)
    }
}
