//! SGD with momentum and Nesterov momentum, as Keras's `SGD`.

use super::{Clip, LearningRate, Optimizer, check_common, ensure_slot, restore, unit_interval};
use crate::error::Result;
use crate::float::Float;
use ndarray::{ArrayD, Zip};

/// Stochastic gradient descent with optional (Nesterov) momentum, as Keras's `SGD`.
///
/// | option | default |
/// |---|---|
/// | `learning_rate` | 0.01 |
/// | `momentum` | 0.0 |
/// | `nesterov` | false |
/// | `weight_decay` | none |
///
/// ```text
/// m ← m·μ̃ − g·lr;  w ← w + m   (Nesterov: w ← w + (m·μ̃ − g·lr))
/// ```
/// with `μ̃` the momentum rounded through float32, as Keras casts it.
///
/// ```
/// use rnnkit::Sgd;
/// let sgd = Sgd::<f64>::new(0.1).momentum(0.9).nesterov(true);
/// assert!(sgd.nesterov);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd<F: Float = f64> {
    /// Learning rate, constant or scheduled.
    pub learning_rate: LearningRate,
    /// Momentum.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Decoupled weight decay (see [`Optimizer::weight_decay`]).
    pub weight_decay: Option<f64>,
    /// Gradient clipping.
    pub clip: Clip,
    t: u64,
    lr: f64,
    /// The identities of the parameters this optimizer steps (empty until the first).
    bound: Vec<u64>,
    velocity: Vec<ArrayD<F>>,
}

impl<F: Float> Default for Sgd<F> {
    fn default() -> Self {
        Sgd::new(0.01)
    }
}

impl<F: Float> Sgd<F> {
    common_builders!();
    /// SGD with learning rate `lr` (a number or a schedule), no momentum.
    pub fn new(lr: impl Into<LearningRate>) -> Self {
        let learning_rate = lr.into();
        Sgd {
            lr: learning_rate.at(0),
            learning_rate,
            momentum: 0.0,
            nesterov: false,
            weight_decay: None,
            clip: Clip::default(),
            t: 0,
            bound: Vec::new(),
            velocity: Vec::new(),
        }
    }
    /// Sets the momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// Sets Nesterov momentum.
    pub fn nesterov(mut self, v: bool) -> Self {
        self.nesterov = v;
        self
    }
}

impl<F: Float> Optimizer<F> for Sgd<F> {
    common_optimizer_methods!("sgd");
    fn validate(&self) -> Result<()> {
        check_common("sgd", &self.learning_rate, self.weight_decay)?;
        unit_interval("sgd", "momentum", self.momentum)?;
        self.clip.check("sgd")
    }
    fn begin_step(&mut self, t: u64) {
        self.t = t;
        self.lr = self.learning_rate.at(t - 1);
    }
    fn update(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>) {
        let lr = F::c(self.lr);
        if self.momentum == 0.0 {
            Zip::from(value).and(g).for_each(|w, &g| *w -= g * lr);
            return;
        }
        ensure_slot(&mut self.velocity, slot, value);
        // Keras casts the momentum through float32.
        let mom = F::c(f64::from(self.momentum as f32));
        let nesterov = self.nesterov;
        Zip::from(value)
            .and(&mut self.velocity[slot])
            .and(g)
            .for_each(|w, m, &g| {
                *m = *m * mom - g * lr;
                if nesterov {
                    *w += *m * mom - g * lr;
                } else {
                    *w += *m;
                }
            });
    }
    fn iterations(&self) -> u64 {
        self.t
    }
    fn state(&self) -> Vec<Vec<ArrayD<F>>> {
        vec![self.velocity.clone()]
    }
    fn state_names(&self) -> &'static [&'static str] {
        &["velocity"]
    }
    fn set_state(&mut self, iterations: u64, state: Vec<Vec<ArrayD<F>>>) -> Result<()> {
        self.t = iterations;
        self.bound.clear();
        self.lr = self.learning_rate.at(iterations.saturating_sub(1));
        restore("sgd", state, [&mut self.velocity])
    }
}
