//! The reservoir's per-step product `h·W`, laid out for it once when the network is built.
//!
//! A reservoir is a fixed matrix multiplied by one state vector per step, thousands of times:
//! a matrix-vector product, which a general matrix multiply (packing its operands on every
//! call) does badly. Both layouts here compute each output as one dot product over a
//! column of `W`:
//! - sparse reservoirs (the usual ones, density 0.1 or less) keep only the non-zeros of each
//!   column (compressed sparse columns) and gather the state entries they need: work and
//!   memory in proportion to the non-zeros;
//! - dense reservoirs keep `Wᵀ` row-major, so each column is contiguous, and the dot product
//!   runs in eight independent accumulators that the compiler turns into vector lanes.

use crate::float::Float;
use crate::linalg::dot;
use ndarray::Array2;

/// Above this density the dense layout is faster (the sparse one pays an index per entry).
const DENSE_ABOVE: f64 = 0.3;

/// `W` laid out for `y = h·W`.
#[derive(Debug, Clone)]
pub(crate) enum Kernel<F> {
    /// Compressed sparse columns: column `j`'s non-zeros are `vals[ptr[j]..ptr[j+1]]` at
    /// rows `rows[..]`.
    Sparse {
        ptr: Vec<usize>,
        rows: Vec<u32>,
        vals: Vec<F>,
    },
    /// `Wᵀ` row-major `[n, n]`.
    Dense(Vec<F>),
}

impl<F: Float> Kernel<F> {
    /// The layout for `w` `[n, n]` (n < 2^32, which the size cap guarantees).
    pub(crate) fn new(w: &Array2<F>) -> Self {
        let n = w.nrows();
        let nnz = w.iter().filter(|v| **v != F::zero()).count();
        if n == 0 || nnz as f64 > DENSE_ABOVE * (n * n) as f64 {
            return Kernel::Dense(w.t().iter().copied().collect());
        }
        let mut ptr = Vec::with_capacity(n + 1);
        let mut rows = Vec::with_capacity(nnz);
        let mut vals = Vec::with_capacity(nnz);
        ptr.push(0);
        for col in w.columns() {
            for (i, &v) in col.iter().enumerate() {
                if v != F::zero() {
                    rows.push(i as u32);
                    vals.push(v);
                }
            }
            ptr.push(rows.len());
        }
        Kernel::Sparse { ptr, rows, vals }
    }

    /// Non-zero weights (every weight of a dense layout): the work of one product.
    pub(crate) fn work(&self) -> usize {
        match self {
            Kernel::Sparse { vals, .. } => vals.len(),
            Kernel::Dense(wt) => wt.len(),
        }
    }

    /// `y += h·W`.
    #[cfg(test)]
    pub(crate) fn add_product(&self, h: &[F], y: &mut [F]) {
        self.add_product_cols(h, 0, y);
    }

    /// `y += (h·W)[from..from + y.len()]`: the columns `from..` of the product, so threads
    /// can each compute their own columns.
    pub(crate) fn add_product_cols(&self, h: &[F], from: usize, y: &mut [F]) {
        match self {
            Kernel::Sparse { ptr, rows, vals } => {
                for (j, yj) in (from..).zip(y.iter_mut()) {
                    let (a, b) = (ptr[j], ptr[j + 1]);
                    *yj += gather_dot(h, &rows[a..b], &vals[a..b]);
                }
            }
            Kernel::Dense(wt) => {
                let n = h.len().max(1);
                for (yj, col) in y.iter_mut().zip(wt.chunks_exact(n).skip(from)) {
                    *yj += dot(h, col);
                }
            }
        }
    }
}

/// `Σ h[rows[k]]·vals[k]` in four independent accumulators: one accumulator would wait for
/// each multiply-add to finish before the next (measured 1.8 ns per entry against 0.6).
fn gather_dot<F: Float>(h: &[F], rows: &[u32], vals: &[F]) -> F {
    let mut acc = [F::zero(); 4];
    let (r4, v4) = (rows.chunks_exact(4), vals.chunks_exact(4));
    let (rr, rv) = (r4.remainder(), v4.remainder());
    for (r, v) in r4.zip(v4) {
        for k in 0..4 {
            acc[k] += h[r[k] as usize] * v[k];
        }
    }
    let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    for (&r, &v) in rr.iter().zip(rv) {
        s += h[r as usize] * v;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_equal_a_plain_product() {
        for density in [0.05, 0.2, 0.9] {
            let n = 37;
            let w = Array2::from_shape_fn((n, n), |(i, j)| {
                let u = ((i * 31 + j * 17) % 101) as f64 / 101.0;
                if u < density {
                    (u * 13.0).sin()
                } else {
                    0.0
                }
            });
            let h: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).cos()).collect();
            let mut y = vec![1.0; n];
            Kernel::new(&w).add_product(&h, &mut y);
            for j in 0..n {
                let want = 1.0 + (0..n).map(|i| h[i] * w[[i, j]]).sum::<f64>();
                assert!((y[j] - want).abs() < 1e-13, "density {density}, column {j}");
            }
        }
    }
}
