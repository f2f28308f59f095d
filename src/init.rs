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
/// use rnnkit::rand::Rng;
/// let a: f64 = seeded_rng(7).random();
/// let b: f64 = seeded_rng(7).random();
/// assert_eq!(a, b);
/// ```
pub fn seeded_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// The stream a layer draws its dropout masks from: one seeded generator per training
/// pass, derived from the layer's seed and the number of passes drawn so far, so that its
/// state is two numbers (checkpoints store them, and a resumed run draws the masks an
/// uninterrupted one would). The first pass draws from `seeded_rng(seed)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MaskStream {
    seed: u64,
    draws: u64,
}

impl MaskStream {
    /// A stream at its start.
    pub(crate) fn new(seed: u64) -> Self {
        MaskStream { seed, draws: 0 }
    }

    /// The generator of the next pass; the stream moves on only with [`Self::advance`]
    /// (a pass that fails draws its masks again next time).
    pub(crate) fn current(&self) -> StdRng {
        if self.draws == 0 {
            return seeded_rng(self.seed);
        }
        seeded_rng(splitmix64(self.seed ^ splitmix64(self.draws)))
    }

    /// Moves past the pass [`Self::current`] served.
    pub(crate) fn advance(&mut self) {
        self.draws = self.draws.wrapping_add(1);
    }

    /// The stream's seed and the passes drawn so far.
    pub(crate) fn state(&self) -> [u64; 2] {
        [self.seed, self.draws]
    }

    /// Restores [`Self::state`] (from a checkpoint) given as a layer's list of numbers.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) unless `state` is two numbers.
    pub(crate) fn set_state(&mut self, layer: &str, state: &[u64]) -> crate::error::Result<()> {
        match state {
            [seed, draws] => {
                (self.seed, self.draws) = (*seed, *draws);
                Ok(())
            }
            _ => Err(crate::error::Error::Shape {
                layer: layer.to_string(),
                what: "random stream state (seed, passes drawn)",
                expected: "2 numbers".into(),
                got: vec![state.len()],
            }),
        }
    }
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A weight initialiser, as Keras names them.
///
/// ```
/// use rnnkit::{Init, seeded_rng};
/// let w = Init::GlorotUniform.sample::<f64>(&[3, 8], &mut seeded_rng(0));
/// let limit = (6.0f64 / 11.0).sqrt();
/// assert!(w.iter().all(|v| v.abs() <= limit));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "class_name", content = "config")]
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
    /// An echo state network's reservoir for a trainable layer's recurrent kernel (notes
    /// 002): each square `[rows, rows]` block of the matrix (one per gate) has entries
    /// non-zero with probability `density`, drawn from U[−1, 1], and is rescaled to the
    /// given spectral radius (the ESN's own radius code). A block too sparse to have a
    /// non-zero radius stays as drawn; a matrix that is not whole square blocks, too.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::init::Init;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let init = Init::Reservoir { spectral_radius: 0.9, density: 0.2 };
    /// let rnn = SimpleRnnConfig::new(50).recurrent_initializer(init).build::<f64>(1, &mut seeded_rng(0))?;
    /// let w = rnn.get_weights()[1].clone(); // the recurrent kernel
    /// assert!(w.iter().filter(|&&v| v == 0.0).count() > 50 * 50 / 2); // sparse
    /// # Ok(()) }
    /// ```
    Reservoir {
        /// The spectral radius each block is scaled to (> 0; below 1 for the echo state
        /// property).
        spectral_radius: f64,
        /// Fraction of non-zero entries, in (0, 1].
        density: f64,
    },
}

impl Init {
    /// Draws an array of `shape` from this initialiser.
    ///
    /// # Panics
    /// When the shape's number of entries overflows `isize`, as ndarray's constructors do
    /// (the layers check their weights' sizes first and return
    /// [`Error::Config`](crate::Error::Config) instead).
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
            Init::Reservoir {
                spectral_radius,
                density,
            } => {
                let mut w = ArrayD::from_shape_simple_fn(IxDyn(shape), || {
                    if rng.random_bool(density.clamp(0.0, 1.0)) {
                        rng.random_range(-1.0..=1.0)
                    } else {
                        0.0
                    }
                });
                if let [rows, cols] = *shape
                    && rows > 0
                    && cols % rows == 0
                {
                    let mut w2 = w
                        .view_mut()
                        .into_dimensionality::<ndarray::Ix2>()
                        .expect("a 2-D shape");
                    for k in 0..cols / rows {
                        let mut block = w2.slice_mut(ndarray::s![.., k * rows..(k + 1) * rows]);
                        let r = crate::linalg::krylov::spectral_radius(block.to_owned().view());
                        if let Some(r) = r.filter(|r| *r > 0.0 && r.is_finite()) {
                            block.mapv_inplace(|v| v * spectral_radius / r);
                        }
                    }
                }
                w.mapv(F::c)
            }
        }
    }

    /// Refuses parameters no draw can meet (a non-positive radius, a density outside
    /// (0, 1]), naming the layer and the field.
    pub(crate) fn check(&self, layer: &str, field: &'static str) -> crate::Result<()> {
        if let Init::Reservoir {
            spectral_radius,
            density,
        } = *self
            && !(spectral_radius > 0.0
                && spectral_radius.is_finite()
                && density > 0.0
                && density <= 1.0)
        {
            return Err(crate::Error::Config {
                layer: layer.to_string(),
                field,
                reason: format!(
                    "a reservoir needs a spectral radius > 0 and a density in (0, 1], got \
                     {spectral_radius} and {density}"
                ),
            });
        }
        Ok(())
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
    if m > BLOCKED_ABOVE {
        orthonormalise_blocked(&mut a);
    } else {
        orthonormalise(&mut a);
    }
    if rows < cols {
        a.reversed_axes().as_standard_layout().to_owned()
    } else {
        a
    }
}

/// Above this many columns the blocked orthonormalisation runs (below it, the column by
/// column one, whose numbers every smaller layer has had since the first release).
const BLOCKED_ABOVE: usize = 256;

/// Modified Gram-Schmidt, column by column: `diag(R) > 0` directly.
fn orthonormalise(a: &mut Array2<f64>) {
    for j in 0..a.ncols() {
        for k in 0..j {
            let dot = a.column(j).dot(&a.column(k));
            let qk = a.column(k).to_owned();
            a.column_mut(j).scaled_add(-dot, &qk);
        }
        let norm = a.column(j).dot(&a.column(j)).sqrt();
        let norm = if norm > 0.0 { norm } else { 1.0 };
        a.column_mut(j).mapv_inplace(|v| v / norm);
    }
}

/// Block Gram-Schmidt: panels of 64 columns are projected off every earlier column with two
/// matrix products (twice for near-square matrices: classical Gram-Schmidt applied twice is
/// orthogonal to working precision), then orthonormalised within the panel. The same `Q` as column by
/// column up to rounding, but nearly all the work is matrix products: an LSTM(2048)'s
/// `[8192, 2048]` recurrent kernel in seconds instead of minutes.
fn orthonormalise_blocked(a: &mut Array2<f64>) {
    const PANEL: usize = 64;
    let (n, m) = a.dim();
    // A tall Gaussian matrix (n ≥ 2m: LSTM and GRU kernels) is well conditioned (κ < 6),
    // so one projection is orthogonal to ~κ²·ε; near-square ones (κ ~ n) project twice.
    let passes = if n >= 2 * m { 1 } else { 2 };
    for start in (0..m).step_by(PANEL) {
        let end = (start + PANEL).min(m);
        if start > 0 {
            for _ in 0..passes {
                let (done, mut rest) = a.view_mut().split_at(ndarray::Axis(1), start);
                let mut panel = rest.slice_mut(ndarray::s![.., ..end - start]);
                let mut c = Array2::<f64>::zeros((start, end - start));
                crate::parallel::gemm(1.0, &done.t(), &panel.view(), 0.0, &mut c.view_mut());
                crate::parallel::gemm(-1.0, &done.view(), &c.view(), 1.0, &mut panel);
            }
        }
        // Within the panel: modified Gram-Schmidt on a transposed copy, so that every
        // column is contiguous (down a row-major column each access is a cache miss).
        let mut t = a.slice(ndarray::s![.., start..end]).t().to_owned();
        for j in 0..t.nrows() {
            let (done, mut rest) = t.view_mut().split_at(ndarray::Axis(0), j);
            let mut col = rest.row_mut(0);
            for q in done.rows() {
                let dot = col.dot(&q);
                col.scaled_add(-dot, &q);
            }
            let norm = col.dot(&col).sqrt();
            let norm = if norm > 0.0 { norm } else { 1.0 };
            col.mapv_inplace(|v| v / norm);
        }
        a.slice_mut(ndarray::s![.., start..end]).assign(&t.t());
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
    fn the_blocked_path_is_orthonormal_and_agrees_with_column_by_column() {
        // 300 columns: blocked (over 256); the same draws column by column for comparison.
        // Tall (one projection) and near-square (two).
        for (n, m) in [(700, 300), (320, 300)] {
            check_blocked(n, m);
        }
    }

    fn check_blocked(n: usize, m: usize) {
        let q = orthogonal(n, m, &mut seeded_rng(4));
        let g = q.t().dot(&q);
        for i in 0..m {
            for j in 0..m {
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((g[[i, j]] - e).abs() < 1e-12, "{i},{j}: {}", g[[i, j]]);
            }
        }
        let mut rng = seeded_rng(4);
        let mut plain = Array2::<f64>::from_shape_simple_fn((n, m), || rng.sample(StandardNormal));
        orthonormalise(&mut plain);
        let diff = (&q - &plain).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b));
        assert!(diff < 1e-10, "{diff}");
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
