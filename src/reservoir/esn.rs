//! [`EchoStateNetwork`]: a fixed random reservoir of leaky units and a linear readout
//! trained by ridge regression in one solve.

use super::config::EsnConfig;
use super::run::{Step, advance, states};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::linalg::krylov::spectral_radius;
use crate::linalg::matvec::FixedMatrix;
use crate::linalg::solve::ridge_blocks;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, s};

/// The reservoir matrix handed to [`EchoStateNetwork::from_weights`].
#[derive(Debug, Clone)]
pub enum Reservoir<F> {
    /// A raw matrix, rescaled to the configuration's spectral radius:
    /// `W = W_raw · ρ / max |λ(W_raw)|`.
    Raw(Array2<F>),
    /// A matrix used as it is (already scaled).
    Scaled(Array2<F>),
}

/// An echo state network (notes 002; Jaeger 2001): a reservoir of N leaky-integrator units
/// with fixed random weights,
/// `h_t = (1 − a)·h_{t−1} + a·tanh(x_t·W_in + h_{t−1}·W + b)` (row vectors, `h_0 = 0`),
/// and a linear readout `y_t = [1, x_t, h_t]·W_out` trained by ridge regression on the
/// states after the washout: one linear solve, no backpropagation.
///
/// The network keeps the reservoir state between calls, as a running reservoir does:
/// [`fit`](EchoStateNetwork::fit) starts from zero and leaves the last training state, so
/// [`run`](EchoStateNetwork::run) continues the series;
/// [`run_from`](EchoStateNetwork::run_from) takes the state explicitly and changes nothing.
/// Series are single sequences `[steps, features]`.
///
/// # Example
/// One-step-ahead prediction of a sine, as in the lecture:
/// ```
/// use rnnkit::EsnConfig;
/// use rnnkit::ndarray::Array2;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let s = Array2::from_shape_fn((600, 1), |(t, _)| (t as f64 * 0.1).sin());
/// let (x, y) = (s.slice(rnnkit::ndarray::s![..599, ..]).to_owned(), s.slice(rnnkit::ndarray::s![1.., ..]).to_owned());
/// let mut esn = EsnConfig::new(50).spectral_radius(0.9).washout(50).build::<f64>(1)?;
/// esn.fit(&x.slice(rnnkit::ndarray::s![..500, ..]).to_owned(), &y.slice(rnnkit::ndarray::s![..500, ..]).to_owned())?;
/// let pred = esn.run(&x.slice(rnnkit::ndarray::s![500.., ..]).to_owned())?;
/// let err = (&pred - &y.slice(rnnkit::ndarray::s![500.., ..])).mapv(f64::abs).fold(0.0, |a: f64, &b| a.max(b));
/// assert!(err < 1e-3);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EchoStateNetwork<F: Float> {
    config: EsnConfig,
    w_in: Array2<F>,
    w: Array2<F>,
    b: Array1<F>,
    w_out: Option<Array2<F>>,
    state: Array1<F>,
    raw_radius: Option<f64>,
    /// `W` laid out for the per-step product.
    kernel: FixedMatrix<F>,
    /// Shapes without the batch axis, for the `Model` interface: `[None, F]`, and
    /// `[None, O]` once fitted (`[None, None]` before).
    pub(super) shapes: [[crate::layers::Dim; 2]; 2],
}

impl<F: Float> EchoStateNetwork<F> {
    /// A network from given weights: `w_in` `[input_dim, units]`, the reservoir `[units,
    /// units]` (raw, to be rescaled, or already scaled) and `b` `[units]`; no readout yet.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid option or a raw reservoir with spectral radius 0;
    /// [`Error::WeightShape`] for shapes that disagree with `config.units`;
    /// [`Error::Data`] for a non-finite weight.
    pub fn from_weights(
        config: EsnConfig,
        w_in: Array2<F>,
        reservoir: Reservoir<F>,
        b: Array1<F>,
    ) -> Result<Self> {
        config.check(w_in.nrows())?;
        let (n, f_in) = (config.units, w_in.nrows());
        let name = config.model_name().to_string();
        let (w, raw) = match reservoir {
            Reservoir::Raw(w) | Reservoir::Scaled(w) if w.dim() != (n, n) => {
                return Err(shape_error(&name, "W", &[n, n], w.shape()));
            }
            Reservoir::Raw(w) => (w, true),
            Reservoir::Scaled(w) => (w, false),
        };
        if w_in.ncols() != n {
            return Err(shape_error(&name, "W_in", &[w_in.nrows(), n], w_in.shape()));
        }
        if b.len() != n {
            return Err(shape_error(&name, "b", &[n], b.shape()));
        }
        for (what, bad) in [
            ("W_in", w_in.iter().any(|v| !v.is_finite())),
            ("W", w.iter().any(|v| !v.is_finite())),
            ("b", b.iter().any(|v| !v.is_finite())),
        ] {
            if bad {
                return Err(Error::Data(format!(
                    "{name}: {what} has a non-finite value"
                )));
            }
        }
        let (w, raw_radius) = if raw {
            let r = radius(&w).unwrap_or(0.0);
            if r <= f64::MIN_POSITIVE {
                return Err(Error::Config {
                    layer: name,
                    field: "density",
                    reason: "the reservoir's spectral radius is 0, so it cannot be rescaled: \
                             raise `density` or `units`"
                        .into(),
                });
            }
            let scale = F::c(config.spectral_radius / r);
            (w.mapv(|v| v * scale), Some(r))
        } else {
            (w, None)
        };
        Ok(EchoStateNetwork {
            kernel: FixedMatrix::new(w.view()),
            state: Array1::zeros(n),
            config,
            w_in,
            w,
            b,
            w_out: None,
            raw_radius,
            shapes: [[None, Some(f_in)], [None, None]],
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EsnConfig {
        &self.config
    }

    /// Number of input features.
    pub fn input_dim(&self) -> usize {
        self.w_in.nrows()
    }

    /// Number of reservoir units.
    pub fn units(&self) -> usize {
        self.config.units
    }

    /// Number of outputs of the fitted readout (`None` before [`EchoStateNetwork::fit`]).
    pub fn output_dim(&self) -> Option<usize> {
        self.w_out.as_ref().map(|w| w.ncols())
    }

    /// The input weights `[input_dim, units]`.
    pub fn w_in(&self) -> &Array2<F> {
        &self.w_in
    }

    /// The (rescaled) reservoir matrix `[units, units]`.
    pub fn reservoir(&self) -> &Array2<F> {
        &self.w
    }

    /// The bias `[units]`.
    pub fn bias(&self) -> &Array1<F> {
        &self.b
    }

    /// The readout `[1 + input_dim + units, outputs]` (rows: bias, inputs, states), once
    /// fitted.
    pub fn readout(&self) -> Option<&Array2<F>> {
        self.w_out.as_ref()
    }

    /// The spectral radius of the raw reservoir before rescaling, when the network rescaled
    /// one.
    pub fn raw_spectral_radius(&self) -> Option<f64> {
        self.raw_radius
    }

    /// The spectral radius of the reservoir matrix in use (computed, `O(units³)`).
    ///
    /// # Errors
    /// [`Error::Data`] if the eigenvalue iteration does not converge.
    pub fn spectral_radius(&self) -> Result<f64> {
        radius(&self.w).ok_or_else(|| {
            Error::Data(format!(
                "{}: the eigenvalue iteration did not converge",
                self.config.model_name()
            ))
        })
    }

    /// The current reservoir state `[units]`.
    pub fn reservoir_state(&self) -> &Array1<F> {
        &self.state
    }

    /// Sets the reservoir state.
    ///
    /// # Errors
    /// [`Error::Shape`] for a state of the wrong length, [`Error::Data`] for a non-finite one.
    pub fn set_reservoir_state(&mut self, state: &Array1<F>) -> Result<()> {
        self.check_state(state.view())?;
        self.state.assign(state);
        Ok(())
    }

    /// Sets the readout (the loader; shapes checked there).
    pub(crate) fn set_readout(&mut self, w_out: Option<Array2<F>>) {
        self.shapes[1][1] = w_out.as_ref().map(|w| w.ncols());
        self.w_out = w_out;
    }

    /// Sets the state to zero.
    pub fn reset_reservoir_state(&mut self) {
        self.state.fill(F::zero());
    }

    fn name(&self) -> &str {
        self.config.model_name()
    }

    fn check_state(&self, state: ArrayView1<'_, F>) -> Result<()> {
        if state.len() != self.units() {
            return Err(Error::Shape {
                layer: self.name().to_string(),
                what: "state",
                expected: format!("[{}]", self.units()),
                got: state.shape().to_vec(),
            });
        }
        if state.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data(format!("{}: non-finite state", self.name())));
        }
        Ok(())
    }

    /// Checks a series `[steps, input_dim]`.
    fn check_series(&self, x: ArrayView2<'_, F>, what: &str) -> Result<()> {
        if x.nrows() == 0 {
            return Err(crate::layers::empty(self.name(), "steps", x.shape()));
        }
        if x.ncols() != self.input_dim() {
            return Err(Error::Features {
                layer: self.name().to_string(),
                expected: self.input_dim(),
                got: x.ncols(),
            });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "{}: {what} has a non-finite value at flat index {i}",
                self.name()
            )));
        }
        Ok(())
    }

    /// The states `h_1 … h_T` `[steps, units]` the reservoir goes through reading `x`
    /// `[steps, input_dim]` from `h0`; nothing in the network changes.
    ///
    /// # Errors
    /// A series of the wrong width, empty, or with a non-finite value; a bad `h0`.
    pub fn states_from(&self, x: &Array2<F>, h0: &Array1<F>) -> Result<Array2<F>> {
        self.check_series(x.view(), "x")?;
        self.check_state(h0.view())?;
        Ok(self.run_reservoir(x.view(), h0.view()))
    }

    /// The reservoir's time loop ([`super::run`]).
    fn run_reservoir(&self, x: ArrayView2<'_, F>, h0: ArrayView1<'_, F>) -> Array2<F> {
        let step = Step {
            kernel: &self.kernel,
            leak: self.config.leak_rate,
        };
        states(&step, &self.w_in, &self.b, x, &h0.to_vec())
    }

    /// The extended states `[1, x_t, h_t]` `[steps, 1 + input_dim + units]` as f64.
    fn design(x: ArrayView2<'_, F>, h: ArrayView2<'_, F>) -> Array2<f64> {
        let (t, f) = x.dim();
        let mut phi = Array2::<f64>::ones((t, 1 + f + h.ncols()));
        phi.slice_mut(s![.., 1..1 + f])
            .assign(&x.mapv(|v| v.to_f64().unwrap_or(f64::NAN)));
        phi.slice_mut(s![.., 1 + f..])
            .assign(&h.mapv(|v| v.to_f64().unwrap_or(f64::NAN)));
        phi
    }

    /// Fits the readout on one training series: runs the reservoir over `x`
    /// `[steps, input_dim]` from a zero state, drops the first `washout` states, and solves
    /// the ridge regression of `y` `[steps, outputs]` on `[1, x_t, h_t]` (in f64, see
    /// [`EsnConfig`]). Returns the fitted outputs on the steps after the washout; leaves
    /// the state at the last training state. Any number of outputs at once.
    ///
    /// # Errors
    /// [`Error::Shape`] when `y` has other rows than `x`; [`Error::Config`] when
    /// `washout ≥ steps`; a bad series; [`Error::Data`] when the regression is singular
    /// (`ridge` 0 with collinear states) or gives non-finite weights. Nothing changes then.
    pub fn fit(&mut self, x: &Array2<F>, y: &Array2<F>) -> Result<Array2<F>> {
        self.check_series(x.view(), "x")?;
        if y.nrows() != x.nrows() || y.ncols() == 0 {
            return Err(Error::Shape {
                layer: self.name().to_string(),
                what: "targets",
                expected: format!("[{}, outputs ≥ 1]", x.nrows()),
                got: y.shape().to_vec(),
            });
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "{}: y has a non-finite value at flat index {i}",
                self.name()
            )));
        }
        let w = self.config.washout;
        if w >= x.nrows() {
            return Err(Error::Config {
                layer: self.name().to_string(),
                field: "washout",
                reason: format!(
                    "a washout of {w} steps leaves nothing of a {}-step series to fit",
                    x.nrows()
                ),
            });
        }
        let zero = Array1::zeros(self.units());
        let h = self.run_reservoir(x.view(), zero.view());
        let to64 = |a: ArrayView2<'_, F>| a.mapv(|v| v.to_f64().unwrap_or(f64::NAN));
        let (x64, y64) = (to64(x.slice(s![w.., ..])), to64(y.slice(s![w.., ..])));
        let ones = Array2::<f64>::ones((x64.nrows(), 1));
        // The states as f64 without a copy when they are f64 already.
        let h_copy;
        let h64 = match (&h as &dyn std::any::Any).downcast_ref::<Array2<f64>>() {
            Some(h) => h.slice(s![w.., ..]),
            None => {
                h_copy = to64(h.slice(s![w.., ..]));
                h_copy.view()
            }
        };
        let w_out = ridge_blocks(
            &[ones.view(), x64.view(), h64],
            y64.view(),
            self.config.ridge,
        )
        .filter(|w| w.iter().all(|v| v.is_finite()))
        .ok_or_else(|| {
            Error::Data(format!(
                "{}: the ridge regression is singular or overflows (ridge = {}): \
                     raise `ridge`",
                self.name(),
                self.config.ridge
            ))
        })?;
        // Φ·W_out by the same blocks: bias row, input rows, state rows.
        let f = x64.ncols();
        let fitted = (x64.dot(&w_out.slice(s![1..1 + f, ..]))
            + h64.dot(&w_out.slice(s![1 + f.., ..]))
            + w_out.row(0))
        .mapv(F::c);
        self.set_readout(Some(w_out.mapv(F::c)));
        self.state = h.row(h.nrows() - 1).to_owned();
        Ok(fitted)
    }

    fn readout_or_err(&self) -> Result<&Array2<F>> {
        self.w_out.as_ref().ok_or_else(|| Error::NotFitted {
            model: self.name().to_string(),
        })
    }

    /// Open-loop prediction from an explicit state: the outputs `[steps, outputs]` for the
    /// inputs `x` and the state after the last step. Nothing in the network changes, so one
    /// fitted network can serve several threads.
    ///
    /// # Errors
    /// [`Error::NotFitted`] before [`EchoStateNetwork::fit`]; a bad series or state.
    pub fn run_from(&self, x: &Array2<F>, h0: &Array1<F>) -> Result<(Array2<F>, Array1<F>)> {
        let w_out = self.readout_or_err()?;
        let h = self.states_from(x, h0)?;
        let phi = Self::design(x.view(), h.view());
        let out = phi.dot(&w_out.mapv(|v| v.to_f64().unwrap_or(f64::NAN)));
        Ok((out.mapv(F::c), h.row(h.nrows() - 1).to_owned()))
    }

    /// Open-loop prediction continuing from the current state (the last training state
    /// after [`EchoStateNetwork::fit`]); the state moves on to the end of `x`.
    ///
    /// # Errors
    /// As [`EchoStateNetwork::run_from`]; the state is unchanged then.
    pub fn run(&mut self, x: &Array2<F>) -> Result<Array2<F>> {
        let (out, last) = self.run_from(x, &self.state)?;
        self.state = last;
        Ok(out)
    }

    /// Closed-loop generation (forecasting): starting from the current state and the input
    /// `first` `[input_dim]`, each output becomes the next input, for `steps` steps. Needs
    /// as many outputs as inputs. Returns the outputs `[steps, outputs]`; the state moves on.
    ///
    /// # Errors
    /// [`Error::NotFitted`]; [`Error::Config`] when outputs ≠ inputs; a bad `first`;
    /// [`Error::Data`] when the generated series leaves the finite numbers (the state is
    /// unchanged then).
    pub fn generate(&mut self, first: &Array1<F>, steps: usize) -> Result<Array2<F>> {
        let w_out = self.readout_or_err()?.clone();
        let f = self.input_dim();
        if w_out.ncols() != f {
            return Err(Error::Config {
                layer: self.name().to_string(),
                field: "output_dim",
                reason: format!(
                    "closed-loop generation feeds each output back as the next input: needs as \
                     many outputs as inputs, got {} outputs for {f} inputs",
                    w_out.ncols()
                ),
            });
        }
        let x0 = first.view().insert_axis(Axis(0)).to_owned();
        self.check_series(x0.view(), "first")?;
        crate::layers::check_output_size(self.name(), &[steps, f])?;
        let mut out = Array2::<F>::zeros((steps, f));
        let mut x = x0.row(0).to_vec();
        let mut h = self.state.to_vec();
        // Buffers and the readout in f64 made once: nothing is allocated per step.
        let w_out64 = w_out.mapv(|v| v.to_f64().unwrap_or(f64::NAN));
        let n = self.units();
        let mut row = vec![F::zero(); n];
        let mut y = vec![0.0f64; f];
        let step = Step {
            kernel: &self.kernel,
            leak: self.config.leak_rate,
        };
        for k in 0..steps {
            // The input term x·W_in + b, then the reservoir step.
            for (r, &bv) in row.iter_mut().zip(self.b.iter()) {
                *r = bv;
            }
            for (xi, wr) in x.iter().zip(self.w_in.rows()) {
                for (r, &w) in row.iter_mut().zip(wr.iter()) {
                    *r += *xi * w;
                }
            }
            advance(&step, &mut row, &mut h);
            // y = [1, x, h]·W_out in f64.
            for (j, yj) in y.iter_mut().enumerate() {
                let col = w_out64.column(j);
                let mut s = col[0];
                for (i, &xi) in x.iter().enumerate() {
                    s += xi.to_f64().unwrap_or(f64::NAN) * col[1 + i];
                }
                for (i, &hi) in h.iter().enumerate() {
                    s += hi.to_f64().unwrap_or(f64::NAN) * col[1 + f + i];
                }
                *yj = s;
            }
            if y.iter().any(|v| !v.is_finite()) {
                return Err(Error::Data(format!(
                    "{}: the generated series diverged at step {k}",
                    self.name()
                )));
            }
            for (xi, (o, &yj)) in x.iter_mut().zip(out.row_mut(k).iter_mut().zip(&y)) {
                *o = F::c(yj);
                *xi = *o;
            }
        }
        self.state = Array1::from(h);
        Ok(out)
    }
}

fn radius<F: Float>(w: &Array2<F>) -> Option<f64> {
    spectral_radius(w.mapv(|v| v.to_f64().unwrap_or(f64::NAN)).view())
}

fn shape_error(name: &str, what: &str, expected: &[usize], got: &[usize]) -> Error {
    Error::WeightShape {
        layer: name.to_string(),
        name: what.to_string(),
        expected: expected.to_vec(),
        got: got.to_vec(),
    }
}
