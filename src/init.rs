//! Keras's default initialisers, seeded and reproducible.

use crate::float::Float;
use ndarray::{Array2, ArrayD, IxDyn};
use ndarray_rand::rand::{Rng, SeedableRng};
use ndarray_rand::rand_distr::StandardNormal;

/// The random number generator every initialiser draws from.
pub use ndarray_rand::rand::rngs::StdRng;

/// A seeded [`StdRng`]: the same seed gives the same weights on every run.
///
/// ```
/// use rnnkit::seeded_rng;
/// use ndarray_rand::rand::Rng;
/// let a: f64 = seeded_rng(7).random();
/// let b: f64 = seeded_rng(7).random();
/// assert_eq!(a, b);
/// ```
pub fn seeded_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A weight initialiser, as Keras names them.
///
/// ```
/// use rnnkit::{Init, seeded_rng};
/// let w = Init::GlorotUniform.sample::<f64>(&[3, 8], &mut seeded_rng(0));
/// let limit = (6.0f64 / 11.0).sqrt();
/// assert!(w.iter().all(|v| v.abs() <= limit));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// `U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))`, fans from the whole 2-D shape.
    GlorotUniform,
    /// QR-based orthogonal matrix over the whole shape (rows orthonormal when rows < cols).
    Orthogonal,
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Every entry the same value.
    Constant(f64),
}

impl Init {
    /// Draws an array of `shape` from this initialiser.
    pub fn sample<F: Float>(self, shape: &[usize], rng: &mut StdRng) -> ArrayD<F> {
        match self {
            Init::Zeros => ArrayD::zeros(IxDyn(shape)),
            Init::Ones => ArrayD::ones(IxDyn(shape)),
            Init::Constant(v) => ArrayD::from_elem(IxDyn(shape), F::c(v)),
            Init::GlorotUniform => {
                let (fan_in, fan_out) = fans(shape);
                let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                ArrayD::from_shape_simple_fn(IxDyn(shape), || F::c(rng.random_range(-limit..limit)))
            }
            Init::Orthogonal => {
                let cols = shape.last().copied().unwrap_or(1);
                let rows: usize = shape[..shape.len().saturating_sub(1)].iter().product();
                let q = orthogonal(rows, cols, rng);
                q.into_shape_with_order(IxDyn(shape))
                    .expect("orthogonal: rows*cols equals the shape's size")
                    .mapv(F::c)
            }
        }
    }
}

/// Keras's fan computation for 2-D (and 1-D) shapes.
fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [a, b] => (*a, *b),
        _ => {
            let receptive: usize = shape[..shape.len() - 2].iter().product();
            (
                shape[shape.len() - 2] * receptive,
                shape[shape.len() - 1] * receptive,
            )
        }
    }
}

/// Keras's orthogonal initialiser: QR of a `[max, min]` standard-normal matrix, columns
/// sign-fixed so `diag(R) > 0`, transposed when `rows < cols`.
fn orthogonal(rows: usize, cols: usize, rng: &mut StdRng) -> Array2<f64> {
    let (n, m) = (rows.max(cols), rows.min(cols));
    let mut a = Array2::<f64>::from_shape_simple_fn((n, m), || rng.sample(StandardNormal));
    // Modified Gram-Schmidt, column by column: yields Q with diag(R) > 0 directly.
    for j in 0..m {
        for k in 0..j {
            let dot = a.column(j).dot(&a.column(k));
            let qk = a.column(k).to_owned();
            a.column_mut(j).scaled_add(-dot, &qk);
        }
        let norm = a.column(j).dot(&a.column(j)).sqrt();
        let norm = if norm > 0.0 { norm } else { 1.0 };
        a.column_mut(j).mapv_inplace(|v| v / norm);
    }
    if rows < cols {
        a.reversed_axes().as_standard_layout().to_owned()
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orthogonal_rows_are_orthonormal_over_the_whole_wide_matrix() {
        let r = orthogonal(5, 20, &mut seeded_rng(3));
        let g = r.dot(&r.t());
        for i in 0..5 {
            for j in 0..5 {
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((g[[i, j]] - e).abs() < 1e-12, "{i},{j}: {}", g[[i, j]]);
            }
        }
    }

    #[test]
    fn orthogonal_square_is_orthogonal() {
        let q = orthogonal(6, 6, &mut seeded_rng(1));
        let g = q.t().dot(&q);
        for i in 0..6 {
            assert!((g[[i, i]] - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn seeded_draws_repeat() {
        let a = Init::GlorotUniform.sample::<f32>(&[4, 4], &mut seeded_rng(9));
        let b = Init::GlorotUniform.sample::<f32>(&[4, 4], &mut seeded_rng(9));
        assert_eq!(a, b);
    }
}
