//! The float bound shared by every layer.

use ndarray::NdFloat;
use num_traits::FromPrimitive;

/// Floating-point element type: `f32` or `f64`.
///
/// Built on ndarray's [`NdFloat`] (arithmetic, matrix products, formatting) and num-traits'
/// [`FromPrimitive`] (constants from `f64`). Implemented for every type that has both.
///
/// # Example
/// ```
/// use rnnkit::Float;
/// fn half<F: Float>(x: F) -> F { x * F::from_f64(0.5).unwrap() }
/// assert_eq!(half(3.0f32), 1.5);
/// ```
pub trait Float: NdFloat + FromPrimitive + Default + Send + Sync + 'static {
    /// `F::from_f64(v)`, for constants that always fit.
    fn c(v: f64) -> Self {
        Self::from_f64(v).unwrap_or_else(Self::nan)
    }
}

impl<T: NdFloat + FromPrimitive + Default + Send + Sync + 'static> Float for T {}
