//! Optimizers with Keras's exact update rules, and Keras's gradient clipping.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::model::Model;
use crate::param::Param;
use ndarray::{ArrayD, Zip};

/// Gradient clipping, as Keras's optimizer arguments (at most one may be set).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Clip {
    /// `clipnorm`: each weight tensor's gradient rescaled to L2 norm ≤ c.
    pub clipnorm: Option<f64>,
    /// `global_clipnorm`: all gradients rescaled jointly so their global norm ≤ c.
    pub global_clipnorm: Option<f64>,
    /// `clipvalue`: every gradient entry clamped to `[-v, v]`.
    pub clipvalue: Option<f64>,
}

impl Clip {
    fn check(&self, name: &str) -> Result<()> {
        let set = [self.clipnorm, self.global_clipnorm, self.clipvalue]
            .iter()
            .filter(|c| c.is_some())
            .count();
        if set > 1 {
            return Err(Error::Config {
                layer: name.into(),
                field: "clipnorm",
                reason: "only one of clipnorm, global_clipnorm and clipvalue can be set".into(),
            });
        }
        for (field, v) in [
            ("clipnorm", self.clipnorm),
            ("global_clipnorm", self.global_clipnorm),
            ("clipvalue", self.clipvalue),
        ] {
            if let Some(v) = v {
                if !(v > 0.0 && v.is_finite()) {
                    return Err(Error::Config {
                        layer: name.into(),
                        field,
                        reason: format!("expected a positive finite value, got {v}"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// An optimizer: updates one weight tensor ("slot", in `get_weights()` order) at a time from
/// its (already clipped) gradient. Clipping and step counting are done by
/// [`Optimizer::apply`], written once for all optimizers.
pub trait Optimizer<F: Float>: std::fmt::Debug + Send {
    /// Keras name (`"adam"`).
    fn name(&self) -> &'static str;
    /// The clipping settings.
    fn clip(&self) -> Clip;
    /// The learning rate.
    fn learning_rate(&self) -> f64;
    /// Checks the hyper-parameters.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad value.
    fn validate(&self) -> Result<()>;
    /// Called once per step before the slots are updated; `t` is the 1-based step.
    fn begin_step(&mut self, t: u64);
    /// Updates slot `slot` from gradient `g`.
    fn update(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>);
    /// Number of steps taken.
    fn iterations(&self) -> u64;
    /// Optimizer state for checkpoints: one group per name in
    /// [`Optimizer::state_names`], each holding one array per slot touched so far.
    fn state(&self) -> Vec<Vec<ArrayD<F>>>;
    /// Names of the groups [`Optimizer::state`] returns (`["m", "v"]` for Adam).
    fn state_names(&self) -> &'static [&'static str];
    /// Restores the step count and the state groups, as [`Optimizer::state`] returned them
    /// (resuming from a checkpoint).
    ///
    /// # Errors
    /// [`Error::Config`] when the number of groups is not the number of state names.
    fn set_state(&mut self, iterations: u64, state: Vec<Vec<ArrayD<F>>>) -> Result<()>;

    /// Applies one step to every weight of `model` from the gradients in its parameters,
    /// clipping as configured. Slots are the model's parameters in visiting order, so one
    /// optimizer serves one model.
    ///
    /// # Errors
    /// [`Optimizer::validate`]'s errors; nothing is changed then.
    fn apply(&mut self, model: &mut dyn Model<F>) -> Result<()> {
        self.validate()?;
        let mut norms = 0.0;
        if self.clip().global_clipnorm.is_some() {
            model.visit_params(&mut |_, p| norms += norm2(&p.grad));
        }
        step(self, norms, &mut |f| model.visit_params_mut(f));
        Ok(())
    }
}

type Visitor<'a, F> = dyn FnMut(&mut dyn FnMut(&str, &mut Param<F>)) + 'a;

/// One optimizer step over the parameters `visit` reaches; `global_sq` is Σ‖g‖².
fn step<F: Float, O: Optimizer<F> + ?Sized>(
    opt: &mut O,
    global_sq: f64,
    visit: &mut Visitor<'_, F>,
) {
    let clip = opt.clip();
    let t = opt.iterations() + 1;
    opt.begin_step(t);
    // Keras: g·(c·min(1/n, 1/c))
    let global_scale = clip
        .global_clipnorm
        .map(|c| c * (1.0 / global_sq.sqrt()).min(1.0 / c));
    let mut slot = 0;
    visit(&mut |_, p| {
        let clipped = if let Some(s) = global_scale {
            Some(p.grad.mapv(|v| v * F::c(s)))
        } else if let Some(c) = clip.clipnorm {
            let s = F::c(c / norm2(&p.grad).sqrt().max(c));
            Some(p.grad.mapv(|v| v * s))
        } else if let Some(c) = clip.clipvalue {
            let c = F::c(c);
            Some(p.grad.mapv(|v| v.max(-c).min(c)))
        } else {
            None // the common case: no copy
        };
        opt.update(slot, &mut p.value, clipped.as_ref().unwrap_or(&p.grad));
        slot += 1;
    });
}

/// Moves checkpointed state groups into an optimizer's slots.
fn restore<F: Float, const N: usize>(
    name: &str,
    state: Vec<Vec<ArrayD<F>>>,
    slots: [&mut Vec<ArrayD<F>>; N],
) -> Result<()> {
    if state.len() != N {
        return Err(Error::Config {
            layer: name.into(),
            field: "state",
            reason: format!("expected {N} state groups, got {}", state.len()),
        });
    }
    for (slot, group) in slots.into_iter().zip(state) {
        *slot = group;
    }
    Ok(())
}

fn norm2<F: Float>(g: &ArrayD<F>) -> f64 {
    g.iter()
        .map(|v| v.to_f64().unwrap_or(f64::NAN).powi(2))
        .sum()
}

fn ensure_slot<F: Float>(slots: &mut Vec<ArrayD<F>>, slot: usize, like: &ArrayD<F>) {
    while slots.len() <= slot {
        slots.push(ArrayD::zeros(like.raw_dim()));
    }
    if slots[slot].shape() != like.shape() {
        slots[slot] = ArrayD::zeros(like.raw_dim());
    }
}

fn positive(name: &str, field: &'static str, v: f64) -> Result<()> {
    if !(v > 0.0 && v.is_finite()) {
        return Err(Error::Config {
            layer: name.into(),
            field,
            reason: format!("expected a positive finite value, got {v}"),
        });
    }
    Ok(())
}

fn unit_interval(name: &str, field: &'static str, v: f64) -> Result<()> {
    if !(0.0..1.0).contains(&v) {
        return Err(Error::Config {
            layer: name.into(),
            field,
            reason: format!("expected a value in [0, 1), got {v}"),
        });
    }
    Ok(())
}

/// Adam exactly as Keras 3 computes it: `ε` added to `sqrt(v)` ("epsilon hat"), and the
/// bias-correction powers of β rounded to float32 (as Keras casts them).
///
/// ```text
/// m ← m + (g − m)(1 − β1);  v ← v + (g² − v)(1 − β2)
/// α_t = lr·sqrt(1 − β̃2^t)/(1 − β̃1^t);  w ← w − α_t·m/(sqrt(v) + ε)
/// ```
///
/// | option | default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `beta_1` | 0.9 |
/// | `beta_2` | 0.999 |
/// | `epsilon` | 1e-7 |
/// | clipping | none |
///
/// ```
/// use rnnkit::Adam;
/// let adam = Adam::<f32>::new(0.01).clipnorm(1.0);
/// assert_eq!(adam.learning_rate, 0.01);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Adam<F: Float = f64> {
    /// Learning rate.
    pub learning_rate: f64,
    /// First-moment decay.
    pub beta_1: f64,
    /// Second-moment decay.
    pub beta_2: f64,
    /// ε̂, added to `sqrt(v)`.
    pub epsilon: f64,
    /// Gradient clipping.
    pub clip: Clip,
    t: u64,
    alpha: f64,
    m: Vec<ArrayD<F>>,
    v: Vec<ArrayD<F>>,
}

impl<F: Float> Default for Adam<F> {
    fn default() -> Self {
        Adam::new(0.001)
    }
}

impl<F: Float> Adam<F> {
    /// Adam with learning rate `lr` and Keras's other defaults.
    pub fn new(lr: f64) -> Self {
        Adam {
            learning_rate: lr,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            clip: Clip::default(),
            t: 0,
            alpha: 0.0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }
    /// Sets β1 and β2.
    pub fn betas(mut self, beta_1: f64, beta_2: f64) -> Self {
        self.beta_1 = beta_1;
        self.beta_2 = beta_2;
        self
    }
    /// Sets ε.
    pub fn epsilon(mut self, eps: f64) -> Self {
        self.epsilon = eps;
        self
    }
    /// Per-tensor norm clipping.
    pub fn clipnorm(mut self, c: f64) -> Self {
        self.clip.clipnorm = Some(c);
        self
    }
    /// Global norm clipping.
    pub fn global_clipnorm(mut self, c: f64) -> Self {
        self.clip.global_clipnorm = Some(c);
        self
    }
    /// Elementwise value clipping.
    pub fn clipvalue(mut self, v: f64) -> Self {
        self.clip.clipvalue = Some(v);
        self
    }
}

impl<F: Float> Optimizer<F> for Adam<F> {
    fn name(&self) -> &'static str {
        "adam"
    }
    fn clip(&self) -> Clip {
        self.clip
    }
    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }
    fn validate(&self) -> Result<()> {
        positive("adam", "learning_rate", self.learning_rate)?;
        unit_interval("adam", "beta_1", self.beta_1)?;
        unit_interval("adam", "beta_2", self.beta_2)?;
        positive("adam", "epsilon", self.epsilon)?;
        self.clip.check("adam")
    }
    fn begin_step(&mut self, t: u64) {
        self.t = t;
        // Keras casts the betas through float32 for the bias-correction powers.
        let b1 = f64::from(self.beta_1 as f32);
        let b2 = f64::from(self.beta_2 as f32);
        let tf = t as f64;
        self.alpha = self.learning_rate * (1.0 - b2.powf(tf)).sqrt() / (1.0 - b1.powf(tf));
    }
    fn update(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>) {
        ensure_slot(&mut self.m, slot, value);
        ensure_slot(&mut self.v, slot, value);
        let (one_b1, one_b2) = (F::c(1.0 - self.beta_1), F::c(1.0 - self.beta_2));
        let (alpha, eps) = (F::c(self.alpha), F::c(self.epsilon));
        let adam = |w: &mut F, m: &mut F, v: &mut F, g: F| {
            *m += (g - *m) * one_b1;
            *v += (g * g - *v) * one_b2;
            *w -= alpha * *m / (v.sqrt() + eps);
        };
        let (m, v) = (&mut self.m[slot], &mut self.v[slot]);
        // Contiguous weights (all of rnnkit's) take a flat loop the compiler vectorises.
        if let (Some(ws), Some(ms), Some(vs), Some(gs)) = (
            value.as_slice_memory_order_mut(),
            m.as_slice_memory_order_mut(),
            v.as_slice_memory_order_mut(),
            g.as_slice_memory_order(),
        ) {
            for (((w, m), v), &g) in ws.iter_mut().zip(ms).zip(vs).zip(gs) {
                adam(w, m, v, g);
            }
        } else {
            Zip::from(value)
                .and(m)
                .and(v)
                .and(g)
                .for_each(|w, m, v, &g| adam(w, m, v, g));
        }
    }
    fn iterations(&self) -> u64 {
        self.t
    }
    fn state(&self) -> Vec<Vec<ArrayD<F>>> {
        vec![self.m.clone(), self.v.clone()]
    }
    fn state_names(&self) -> &'static [&'static str] {
        &["m", "v"]
    }
    fn set_state(&mut self, iterations: u64, state: Vec<Vec<ArrayD<F>>>) -> Result<()> {
        self.t = iterations;
        restore("adam", state, [&mut self.m, &mut self.v])
    }
}

/// Stochastic gradient descent with optional (Nesterov) momentum, as Keras's `SGD`.
///
/// | option | default |
/// |---|---|
/// | `learning_rate` | 0.01 |
/// | `momentum` | 0.0 |
/// | `nesterov` | false |
///
/// ```
/// use rnnkit::Sgd;
/// let sgd = Sgd::<f64>::new(0.1).momentum(0.9).nesterov(true);
/// assert!(sgd.nesterov);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd<F: Float = f64> {
    /// Learning rate.
    pub learning_rate: f64,
    /// Momentum.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Gradient clipping.
    pub clip: Clip,
    t: u64,
    velocity: Vec<ArrayD<F>>,
}

impl<F: Float> Default for Sgd<F> {
    fn default() -> Self {
        Sgd::new(0.01)
    }
}

impl<F: Float> Sgd<F> {
    /// SGD with learning rate `lr`, no momentum.
    pub fn new(lr: f64) -> Self {
        Sgd {
            learning_rate: lr,
            momentum: 0.0,
            nesterov: false,
            clip: Clip::default(),
            t: 0,
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
    /// Per-tensor norm clipping.
    pub fn clipnorm(mut self, c: f64) -> Self {
        self.clip.clipnorm = Some(c);
        self
    }
}

impl<F: Float> Optimizer<F> for Sgd<F> {
    fn name(&self) -> &'static str {
        "sgd"
    }
    fn clip(&self) -> Clip {
        self.clip
    }
    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }
    fn validate(&self) -> Result<()> {
        positive("sgd", "learning_rate", self.learning_rate)?;
        unit_interval("sgd", "momentum", self.momentum)?;
        self.clip.check("sgd")
    }
    fn begin_step(&mut self, t: u64) {
        self.t = t;
    }
    fn update(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>) {
        let lr = F::c(self.learning_rate);
        if self.momentum == 0.0 {
            Zip::from(value).and(g).for_each(|w, &g| *w -= g * lr);
            return;
        }
        ensure_slot(&mut self.velocity, slot, value);
        let mom = F::c(self.momentum);
        let nesterov = self.nesterov;
        Zip::from(value)
            .and(&mut self.velocity[slot])
            .and(g)
            .for_each(|w, m, &g| {
                *m = -g * lr + *m * mom;
                if nesterov {
                    *w += -g * lr + *m * mom;
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
        restore("sgd", state, [&mut self.velocity])
    }
}

/// RMSprop as Keras's `RMSprop` (ε inside the square root).
///
/// | option | default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `rho` | 0.9 |
/// | `momentum` | 0.0 |
/// | `epsilon` | 1e-7 |
/// | `centered` | false |
///
/// ```
/// use rnnkit::RmsProp;
/// assert_eq!(RmsProp::<f32>::default().rho, 0.9);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RmsProp<F: Float = f64> {
    /// Learning rate.
    pub learning_rate: f64,
    /// Decay of the squared-gradient average.
    pub rho: f64,
    /// Momentum.
    pub momentum: f64,
    /// ε, added inside the square root.
    pub epsilon: f64,
    /// Subtract the squared mean gradient.
    pub centered: bool,
    /// Gradient clipping.
    pub clip: Clip,
    t: u64,
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
    /// RMSprop with learning rate `lr` and Keras's other defaults.
    pub fn new(lr: f64) -> Self {
        RmsProp {
            learning_rate: lr,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
            clip: Clip::default(),
            t: 0,
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
}

impl<F: Float> Optimizer<F> for RmsProp<F> {
    fn name(&self) -> &'static str {
        "rmsprop"
    }
    fn clip(&self) -> Clip {
        self.clip
    }
    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }
    fn validate(&self) -> Result<()> {
        positive("rmsprop", "learning_rate", self.learning_rate)?;
        unit_interval("rmsprop", "rho", self.rho)?;
        unit_interval("rmsprop", "momentum", self.momentum)?;
        positive("rmsprop", "epsilon", self.epsilon)?;
        self.clip.check("rmsprop")
    }
    fn begin_step(&mut self, t: u64) {
        self.t = t;
    }
    fn update(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>) {
        ensure_slot(&mut self.velocity, slot, value);
        ensure_slot(&mut self.average, slot, value);
        ensure_slot(&mut self.moment, slot, value);
        let (rho, lr, eps, mom) = (
            F::c(self.rho),
            F::c(self.learning_rate),
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
                *v = rho * *v + (F::one() - rho) * g * g;
                let denom = if centered {
                    *a = rho * *a + (F::one() - rho) * g;
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
        restore(
            "rmsprop",
            state,
            [&mut self.velocity, &mut self.average, &mut self.moment],
        )
    }
}
