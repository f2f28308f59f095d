//! [`EsnConfig`]: the echo state network's options, checked before anything is allocated,
//! and the seeded random reservoir they describe.

use super::esn::{EchoStateNetwork, Reservoir};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::seeded_rng;
use crate::layers::MAX_WEIGHT_LEN;
use ndarray::{Array1, Array2};
use ndarray_rand::rand::Rng;
use serde::{Deserialize, Serialize};

/// The options of an [`EchoStateNetwork`], named as the lecture notes and reservoirpy name
/// them. Also the network's saved form (its keys are checked when a file is loaded).
///
/// | option | default | meaning |
/// |---|---|---|
/// | `units` | — | reservoir size N |
/// | `spectral_radius` | 0.9 | ρ: the reservoir matrix is rescaled so `max |λ(W)| = ρ` |
/// | `leak_rate` | 1.0 | a in `h_t = (1 − a)·h_{t−1} + a·tanh(...)`; 1 is not leaky |
/// | `density` | 0.1 | fraction of non-zero reservoir weights |
/// | `input_scaling` | 1.0 | `W_in` drawn from U[−s, s] |
/// | `bias_scaling` | 1.0 | `b` drawn from U[−s, s] (0 for no bias) |
/// | `washout` | 0 | initial states left out of the readout's fit |
/// | `ridge` | 1e-6 | λ of the ridge readout |
/// | `seed` | 0 | the random reservoir's seed |
///
/// # Example
/// ```
/// use rnnkit::EsnConfig;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let esn = EsnConfig::new(100)
///     .spectral_radius(1.25)
///     .leak_rate(0.3)
///     .washout(100)
///     .build::<f64>(1)?;
/// assert!((esn.spectral_radius()? - 1.25).abs() < 1e-9);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EsnConfig {
    pub(crate) units: usize,
    pub(crate) spectral_radius: f64,
    pub(crate) leak_rate: f64,
    pub(crate) density: f64,
    pub(crate) input_scaling: f64,
    pub(crate) bias_scaling: f64,
    pub(crate) washout: usize,
    pub(crate) ridge: f64,
    pub(crate) seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
}

impl EsnConfig {
    /// A reservoir of `units` units with the defaults above.
    pub fn new(units: usize) -> Self {
        EsnConfig {
            units,
            spectral_radius: 0.9,
            leak_rate: 1.0,
            density: 0.1,
            input_scaling: 1.0,
            bias_scaling: 1.0,
            washout: 0,
            ridge: 1e-6,
            seed: 0,
            name: None,
        }
    }
    /// The reservoir size N.
    pub fn units(mut self, n: usize) -> Self {
        self.units = n;
        self
    }
    /// ρ, the spectral radius the reservoir matrix is rescaled to (in (0, ∞)).
    pub fn spectral_radius(mut self, rho: f64) -> Self {
        self.spectral_radius = rho;
        self
    }
    /// The leak rate a (in (0, 1]).
    pub fn leak_rate(mut self, a: f64) -> Self {
        self.leak_rate = a;
        self
    }
    /// Fraction of non-zero reservoir weights (in (0, 1]).
    pub fn density(mut self, d: f64) -> Self {
        self.density = d;
        self
    }
    /// Scale of the input weights (finite, ≥ 0).
    pub fn input_scaling(mut self, s: f64) -> Self {
        self.input_scaling = s;
        self
    }
    /// Scale of the bias (finite, ≥ 0).
    pub fn bias_scaling(mut self, s: f64) -> Self {
        self.bias_scaling = s;
        self
    }
    /// Initial states of each training series left out of the readout's fit.
    pub fn washout(mut self, w: usize) -> Self {
        self.washout = w;
        self
    }
    /// λ, the ridge penalty of the readout (finite, ≥ 0).
    pub fn ridge(mut self, lambda: f64) -> Self {
        self.ridge = lambda;
        self
    }
    /// Seed of the random reservoir.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// The model's name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    pub(crate) fn model_name(&self) -> &str {
        self.name.as_deref().unwrap_or("echo_state_network")
    }

    /// Checks every option for a network of `input_dim` inputs, before any allocation.
    ///
    /// # Errors
    /// [`Error::Config`] naming the option and the value received.
    pub fn check(&self, input_dim: usize) -> Result<()> {
        let bad = |field: &'static str, reason: String| {
            Err(Error::Config {
                layer: self.model_name().to_string(),
                field,
                reason,
            })
        };
        let n = self.units;
        if n == 0 {
            return bad("units", "expected a positive integer, got 0".into());
        }
        if n.checked_mul(n).is_none_or(|s| s > MAX_WEIGHT_LEN) {
            return bad(
                "units",
                format!("{n} units need a {n}×{n} reservoir, beyond {MAX_WEIGHT_LEN} weights"),
            );
        }
        if input_dim == 0 || input_dim.checked_mul(n).is_none_or(|s| s > MAX_WEIGHT_LEN) {
            return bad(
                "input_dim",
                format!(
                    "expected 1 to {} input features, got {input_dim}",
                    MAX_WEIGHT_LEN / n
                ),
            );
        }
        let rho = self.spectral_radius;
        if !(rho > 0.0 && rho.is_finite()) {
            return bad(
                "spectral_radius",
                format!("expected a positive finite value, got {rho}"),
            );
        }
        let unit = |field: &'static str, v: f64| {
            if v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                bad(field, format!("expected a value in (0, 1], got {v}"))
            }
        };
        unit("leak_rate", self.leak_rate)?;
        unit("density", self.density)?;
        for (field, v) in [
            ("input_scaling", self.input_scaling),
            ("bias_scaling", self.bias_scaling),
            ("ridge", self.ridge),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(field, format!("expected a finite value ≥ 0, got {v}"));
            }
        }
        Ok(())
    }

    /// A network with a random reservoir for `input_dim` input features: `W_in` from
    /// U[−input_scaling, input_scaling], `b` from U[−bias_scaling, bias_scaling], and a
    /// reservoir whose entries are non-zero with probability `density`, drawn from U[−1, 1],
    /// then rescaled to the spectral radius.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid option, or a reservoir so sparse its spectral radius
    /// is 0 (nothing to rescale: raise `density` or `units`).
    pub fn build<F: Float>(&self, input_dim: usize) -> Result<EchoStateNetwork<F>> {
        self.check(input_dim)?;
        let n = self.units;
        let mut rng = seeded_rng(self.seed);
        let mut uniform = |s: f64| -> F { F::c(s * rng.random_range(-1.0..=1.0)) };
        let w_in = Array2::from_shape_simple_fn((input_dim, n), || uniform(self.input_scaling));
        let b = Array1::from_shape_simple_fn(n, || uniform(self.bias_scaling));
        let mut rng = seeded_rng(self.seed ^ 0x005E_ED0F_7E5E_4701);
        let w_raw = Array2::from_shape_simple_fn((n, n), || {
            if rng.random_bool(self.density) {
                F::c(rng.random_range(-1.0..=1.0))
            } else {
                F::zero()
            }
        });
        EchoStateNetwork::from_weights(self.clone(), w_in, Reservoir::Raw(w_raw), b)
    }
}
