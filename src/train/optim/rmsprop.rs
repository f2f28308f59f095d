//! RMSprop as Keras's `RMSprop`.

use super::{
    Clip, LearningRate, Optimizer, check_common, ensure_slot, positive, restore, unit_interval,
};
use crate::error::Result;
use crate::float::Float;
use ndarray::{ArrayD, Zip};

/// RMSprop as Keras's `RMSprop` (ε inside the square root).
///
/// | option | default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `rho` | 0.9 |
/// | `momentum` | 0.0 |
/// | `epsilon` | 1e-7 |
/// | `centered` | false |
/// | `weight_decay` | none |
///
/// ```text
/// v ← ρ·v + (1 − ρ)·g²;  centered: a ← ρ·a + (1 − ρ)·g, d = (v − a²) + ε; else d = v + ε
/// inc = (lr·g)/sqrt(d);  momentum: u ← μ·u + inc, w ← w − u; else w ← w − inc
/// ```
///
/// ```
/// use rnnkit::RmsProp;
/// assert_eq!(RmsProp::<f32>::default().rho, 0.9);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RmsProp<F: Float = f64> {
    /// Learning rate, constant or scheduled.
    pub learning_rate: LearningRate,
    /// Decay of the squared-gradient average.
    pub rho: f64,
    /// Momentum.
    pub momentum: f64,
    /// ε, added inside the square root.
    pub epsilon: f64,
    /// Subtract the squared mean gradient.
    pub centered: bool,
    /// Decoupled weight decay (see [`Optimizer::weight_decay`]).
    pub weight_decay: Option<f64>,
    /// Gradient clipping.
    pub clip: Clip,
    t: u64,
    lr: f64,
    /// The identities of the parameters this optimizer steps (empty until the first).
    bound: Vec<u64>,
    velocity: Vec<ArrayD<F>>,
    average: Vec<ArrayD<F>>,
    moment: Vec<ArrayD<F>>,
}

impl<F: Float> Default for RmsProp<F> {
    fn default() -> Self {
        RmsProp::new(0.001)
    }
}

impl<F: Float> RmsProp<F> {
    common_builders!();
    /// RMSprop with learning rate `lr` (a number or a schedule) and Keras's other defaults.
    pub fn new(lr: impl Into<LearningRate>) -> Self {
        let learning_rate = lr.into();
        RmsProp {
            lr: learning_rate.at(0),
            learning_rate,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            weight_decay: None,
            clip: Clip::default(),
            t: 0,
            bound: Vec::new(),
            velocity: Vec::new(),
            average: Vec::new(),
            moment: Vec::new(),
        }
    }
    /// Sets the momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// Sets `centered`.
    pub fn centered(mut self, v: bool) -> Self {
        self.centered = v;
        self
    }
    /// Sets ρ.
    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }
    /// Sets ε.
    pub fn epsilon(mut self, eps: f64) -> Self {
        self.epsilon = eps;
        self
    }
}

impl<F: Float> Optimizer<F> for RmsProp<F> {
    common_optimizer_methods!("rmsprop");
    fn validate(&self) -> Result<()> {
        check_common("rmsprop", &self.learning_rate, self.weight_decay)?;
        unit_interval("rmsprop", "rho", self.rho)?;
        unit_interval("rmsprop", "momentum", self.momentum)?;
        positive("rmsprop", "epsilon", self.epsilon)?;
        self.clip.check("rmsprop")
    }
    fn begin_step(&mut self, t: u64) {
        self.t = t;
        self.lr = self.learning_rate.at(t - 1);
    }
    fn update(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>) {
        ensure_slot(&mut self.velocity, slot, value);
        ensure_slot(&mut self.average, slot, value);
        ensure_slot(&mut self.moment, slot, value);
        let (rho, one_rho, lr, eps, mom) = (
            F::c(self.rho),
            F::c(1.0 - self.rho),
            F::c(self.lr),
            F::c(self.epsilon),
            F::c(self.momentum),
        );
        let (centered, use_mom) = (self.centered, self.momentum > 0.0);
        Zip::from(value)
            .and(&mut self.velocity[slot])
            .and(&mut self.average[slot])
            .and(&mut self.moment[slot])
            .and(g)
            .for_each(|w, v, a, m, &g| {
                *v = rho * *v + one_rho * (g * g);
                let denom = if centered {
                    *a = rho * *a + one_rho * g;
                    *v - *a * *a + eps
                } else {
                    *v + eps
                };
                let inc = lr * g / denom.sqrt();
                if use_mom {
                    *m = mom * *m + inc;
                    *w -= *m;
                } else {
                    *w -= inc;
                }
            });
    }
    fn iterations(&self) -> u64 {
        self.t
    }
    fn state(&self) -> Vec<Vec<ArrayD<F>>> {
        vec![
            self.velocity.clone(),
            self.average.clone(),
            self.moment.clone(),
        ]
    }
    fn state_names(&self) -> &'static [&'static str] {
        &["velocity", "average", "moment"]
    }
    fn set_state(&mut self, iterations: u64, state: Vec<Vec<ArrayD<F>>>) -> Result<()> {
        self.t = iterations;
        self.bound.clear();
        self.lr = self.learning_rate.at(iterations.saturating_sub(1));
        restore(
            "rmsprop",
            state,
            [&mut self.velocity, &mut self.average, &mut self.moment],
        )
    }
}
