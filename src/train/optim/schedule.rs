//! Learning rates: a constant, or one of Keras's schedules, evaluated once per optimizer step
//! from the number of steps already taken.
//!
//! Keras computes every schedule in float32, even when the model is float64: its arguments
//! become float32 tensors, every operation rounds to float32, and the optimizer widens the
//! result. The schedules here do the same, operation for operation, so a trajectory replays
//! Keras's bit for bit (computing them in f64 moves Keras-parity weights by up to 7e-9).

use crate::error::{Error, Result};

/// A learning rate: a constant or a schedule. Optimizers take anything that converts into
/// one: `Adam::new(0.01)`, `Adam::new(ExponentialDecay::new(0.05, 100, 0.5))`.
///
/// ```
/// use rnnkit::{train::ExponentialDecay, train::LearningRate};
/// let lr: LearningRate = ExponentialDecay::new(0.05, 2, 0.5).into();
/// assert_eq!(lr.at(0), 0.05000000074505806); // 0.05 as float32, widened (as Keras)
/// assert_eq!(lr.at(2), 0.02500000037252903);
/// assert_eq!(LearningRate::from(0.01).at(7), 0.01);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum LearningRate {
    /// The same rate at every step (exact f64, as Keras's float64 variable).
    Constant(f64),
    /// [`ExponentialDecay`].
    Exponential(ExponentialDecay),
    /// [`PiecewiseConstantDecay`].
    Piecewise(PiecewiseConstantDecay),
    /// [`CosineDecay`].
    Cosine(CosineDecay),
}

impl LearningRate {
    /// The rate of the step taken after `iterations` completed steps (0 for the first).
    pub fn at(&self, iterations: u64) -> f64 {
        match self {
            LearningRate::Constant(v) => *v,
            LearningRate::Exponential(s) => f64::from(s.rate(iterations)),
            LearningRate::Piecewise(s) => f64::from(s.rate(iterations)),
            LearningRate::Cosine(s) => f64::from(s.rate(iterations)),
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Config`] naming the value: a rate that is negative or not finite (a
    /// constant must also be positive), zero decay steps, boundaries that do not increase,
    /// values that do not number one more than the boundaries.
    pub fn validate(&self, optimizer: &str) -> Result<()> {
        let bad = |field: &'static str, reason: String| {
            Err(Error::Config {
                layer: optimizer.to_string(),
                field,
                reason,
            })
        };
        let rate = |field: &'static str, v: f64| {
            if v >= 0.0 && v.is_finite() && (v as f32).is_finite() {
                Ok(())
            } else {
                bad(field, format!("expected a finite rate ≥ 0, got {v}"))
            }
        };
        match self {
            LearningRate::Constant(v) => {
                if !(*v > 0.0 && v.is_finite()) {
                    return bad(
                        "learning_rate",
                        format!("expected a positive finite value, got {v}"),
                    );
                }
            }
            LearningRate::Exponential(s) => {
                rate("initial_learning_rate", s.initial_learning_rate)?;
                rate("decay_rate", s.decay_rate)?;
                if s.decay_steps == 0 {
                    return bad("decay_steps", "expected a positive integer, got 0".into());
                }
            }
            LearningRate::Piecewise(s) => {
                if s.values.len() != s.boundaries.len() + 1 {
                    return bad(
                        "values",
                        format!(
                            "expected one more value than boundaries ({}), got {}",
                            s.boundaries.len(),
                            s.values.len()
                        ),
                    );
                }
                if s.boundaries.windows(2).any(|w| w[0] >= w[1]) {
                    return bad(
                        "boundaries",
                        format!("expected increasing boundaries, got {:?}", s.boundaries),
                    );
                }
                for v in &s.values {
                    rate("values", *v)?;
                }
            }
            LearningRate::Cosine(s) => {
                rate("initial_learning_rate", s.initial_learning_rate)?;
                if let Some(t) = s.warmup_target {
                    rate("warmup_target", t)?;
                }
                if !(0.0..=1.0).contains(&s.alpha) {
                    return bad(
                        "alpha",
                        format!("expected a value in [0, 1], got {}", s.alpha),
                    );
                }
                if s.decay_steps == 0 {
                    return bad("decay_steps", "expected a positive integer, got 0".into());
                }
            }
        }
        Ok(())
    }
}

impl From<f64> for LearningRate {
    fn from(v: f64) -> Self {
        LearningRate::Constant(v)
    }
}

impl From<ExponentialDecay> for LearningRate {
    fn from(s: ExponentialDecay) -> Self {
        LearningRate::Exponential(s)
    }
}

impl From<PiecewiseConstantDecay> for LearningRate {
    fn from(s: PiecewiseConstantDecay) -> Self {
        LearningRate::Piecewise(s)
    }
}

impl From<CosineDecay> for LearningRate {
    fn from(s: CosineDecay) -> Self {
        LearningRate::Cosine(s)
    }
}

/// Keras's `ExponentialDecay`: `initial_learning_rate · decay_rate^(step / decay_steps)`,
/// the exponent floored with `staircase`.
///
/// ```
/// use rnnkit::{Adam, train::ExponentialDecay, Optimizer};
/// let adam = Adam::<f64>::new(ExponentialDecay::new(0.05, 2, 0.5).staircase(true));
/// assert_eq!(adam.learning_rate(), 0.05000000074505806);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ExponentialDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f64,
    /// Steps per factor of `decay_rate`.
    pub decay_steps: u64,
    /// The factor.
    pub decay_rate: f64,
    /// Decay in whole intervals of `decay_steps`.
    pub staircase: bool,
}

impl ExponentialDecay {
    /// The schedule, without staircase.
    pub fn new(initial_learning_rate: f64, decay_steps: u64, decay_rate: f64) -> Self {
        ExponentialDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase: false,
        }
    }
    /// Sets `staircase`.
    pub fn staircase(mut self, v: bool) -> Self {
        self.staircase = v;
        self
    }
    fn rate(&self, iterations: u64) -> f32 {
        let mut p = iterations as f32 / self.decay_steps as f32;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate as f32 * (self.decay_rate as f32).powf(p)
    }
}

/// Keras's `PiecewiseConstantDecay`: `values[0]` up to and including step `boundaries[0]`,
/// `values[i]` after `boundaries[i − 1]` up to `boundaries[i]`, the last value after the
/// last boundary.
///
/// ```
/// use rnnkit::{train::LearningRate, train::PiecewiseConstantDecay};
/// let lr = LearningRate::from(PiecewiseConstantDecay::new(vec![2, 4], vec![0.1, 0.05, 0.01]));
/// assert_eq!([lr.at(2) as f32, lr.at(3) as f32, lr.at(5) as f32], [0.1, 0.05, 0.01]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PiecewiseConstantDecay {
    /// Step boundaries, increasing.
    pub boundaries: Vec<u64>,
    /// One more rate than boundaries.
    pub values: Vec<f64>,
}

impl PiecewiseConstantDecay {
    /// The schedule (checked when the optimizer is used).
    pub fn new(boundaries: Vec<u64>, values: Vec<f64>) -> Self {
        PiecewiseConstantDecay { boundaries, values }
    }
    fn rate(&self, iterations: u64) -> f32 {
        let i = self.boundaries.partition_point(|&b| b < iterations);
        self.values.get(i).copied().unwrap_or(f64::NAN) as f32
    }
}

/// Keras's `CosineDecay`, with optional linear warmup: from `initial_learning_rate` (or
/// from `warmup_target` after `warmup_steps` of linear warmup) down to `alpha` times it
/// along half a cosine over `decay_steps`, constant after.
///
/// ```
/// use rnnkit::{train::CosineDecay, train::LearningRate};
/// let lr = LearningRate::from(CosineDecay::new(0.001, 3).alpha(0.1).warmup(0.02, 2));
/// assert_eq!(lr.at(1), 0.010499999858438969); // halfway up the warmup (float32, as Keras)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CosineDecay {
    /// The rate at step 0.
    pub initial_learning_rate: f64,
    /// Length of the cosine decay.
    pub decay_steps: u64,
    /// The final rate as a fraction of the decayed-from rate.
    pub alpha: f64,
    /// The rate reached by the warmup, if any.
    pub warmup_target: Option<f64>,
    /// Length of the linear warmup.
    pub warmup_steps: u64,
}

impl CosineDecay {
    /// Cosine decay from `initial_learning_rate` to 0 over `decay_steps`, no warmup.
    pub fn new(initial_learning_rate: f64, decay_steps: u64) -> Self {
        CosineDecay {
            initial_learning_rate,
            decay_steps,
            alpha: 0.0,
            warmup_target: None,
            warmup_steps: 0,
        }
    }
    /// Sets `alpha`.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
    /// A linear warmup to `target` over `steps` steps before the decay.
    pub fn warmup(mut self, target: f64, steps: u64) -> Self {
        self.warmup_target = Some(target);
        self.warmup_steps = steps;
        self
    }
    fn rate(&self, iterations: u64) -> f32 {
        let s = iterations as f32;
        let d = self.decay_steps as f32;
        let i0 = self.initial_learning_rate as f32;
        let (one_minus_alpha, alpha) = ((1.0 - self.alpha) as f32, self.alpha as f32);
        let decay = |u: f32, from: f32| {
            let cosine = 0.5f32 * (1.0f32 + (std::f32::consts::PI * (u / d)).cos());
            from * (one_minus_alpha * cosine + alpha)
        };
        match self.warmup_target {
            None => decay(s.min(d), i0),
            Some(target) => {
                let (w, tau) = (self.warmup_steps as f32, target as f32);
                let u = s.min(d + w);
                if u < w {
                    (tau - i0) * (u / w) + i0
                } else {
                    decay(u - w, tau)
                }
            }
        }
    }
}
