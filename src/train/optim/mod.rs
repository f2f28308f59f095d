//! Optimizers with Keras's exact update rules, Keras's gradient clipping and decoupled
//! weight decay, and learning-rate schedules.
//!
//! - `mod.rs`: the [`Optimizer`] trait and the step every optimizer shares (clipping,
//!   weight decay, slots);
//! - `schedule`: [`LearningRate`] and Keras's schedules;
//! - `adam`, `sgd`, `rmsprop`: the update rules.

/// The builder methods every optimizer shares (Keras's common optimizer arguments).
macro_rules! common_builders {
    () => {
        /// Keras's decoupled `weight_decay` (see [`Optimizer::weight_decay`]).
        pub fn weight_decay(mut self, wd: f64) -> Self {
            self.weight_decay = Some(wd);
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
    };
}

/// The `Optimizer` methods every built-in optimizer implements the same way, from its
/// `learning_rate`, `lr`, `weight_decay` and `clip` fields.
macro_rules! common_optimizer_methods {
    ($name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn clip(&self) -> Clip {
            self.clip
        }
        fn learning_rate(&self) -> f64 {
            self.lr
        }
        fn next_learning_rate(&self) -> f64 {
            self.learning_rate.at(self.t)
        }
        fn weight_decay(&self) -> Option<f64> {
            self.weight_decay
        }
        fn bind(&mut self, params: &[u64]) -> Result<()> {
            super::bind_ids(&mut self.bound, params, $name)
        }
        fn set_learning_rate(&mut self, lr: LearningRate) -> Result<()> {
            lr.validate($name)?;
            self.learning_rate = lr;
            Ok(())
        }
    };
}

mod adam;
mod rmsprop;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamW};
pub use rmsprop::RmsProp;
pub use schedule::{CosineDecay, ExponentialDecay, LearningRate, PiecewiseConstantDecay};
pub use sgd::Sgd;

use crate::error::{Error, Result};
use crate::float::Float;
use crate::model::Model;
use crate::param::Param;
use ndarray::ArrayD;

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
    pub(crate) fn check(&self, name: &str) -> Result<()> {
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
            if let Some(v) = v
                && !(v > 0.0 && v.is_finite())
            {
                return Err(Error::Config {
                    layer: name.into(),
                    field,
                    reason: format!("expected a positive finite value, got {v}"),
                });
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
    /// The learning rate of the step being taken (between steps: of the last one taken,
    /// or of the first before any).
    fn learning_rate(&self) -> f64;
    /// The learning rate of the next step (Keras's `optimizer.learning_rate` between
    /// steps: the schedule at the current `iterations`). Defaults to
    /// [`Optimizer::learning_rate`], right for a constant rate.
    fn next_learning_rate(&self) -> f64 {
        self.learning_rate()
    }
    /// Keras's `weight_decay`: before each update every weight moves by `−w·wd·lr`
    /// (decoupled from the gradient; `wd` rounded through float32 as Keras does). `None`
    /// (the default) for none.
    fn weight_decay(&self) -> Option<f64> {
        None
    }
    /// Replaces the learning rate from the next step on (what `ReduceLROnPlateau` and
    /// callbacks use). The default refuses: an optimizer must opt in.
    ///
    /// # Errors
    /// [`Error::Config`] when the optimizer cannot change its rate.
    fn set_learning_rate(&mut self, lr: LearningRate) -> Result<()> {
        let _ = lr;
        Err(Error::Config {
            layer: self.name().into(),
            field: "learning_rate",
            reason: "this optimizer does not let its learning rate be changed".into(),
        })
    }
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

    /// Ties the optimizer's slots to the parameters it steps, by their
    /// [`Param::id`](crate::Param::id): the first call binds, a later call with other
    /// parameters (another model, a copy of it) is refused, as Keras refuses a variable
    /// its optimizer was not built for. [`Optimizer::set_state`] unbinds (a resumed run
    /// binds to the model it resumes). The default binds nothing.
    ///
    /// # Errors
    /// [`Error::Config`] for parameters other than the bound ones.
    fn bind(&mut self, params: &[u64]) -> Result<()> {
        let _ = params;
        Ok(())
    }

    /// Applies one step to every weight of `model` from the gradients in its parameters,
    /// clipping as configured. Slots are the model's parameters in visiting order, so one
    /// optimizer serves one model.
    ///
    /// # Errors
    /// [`Optimizer::validate`]'s and [`Optimizer::bind`]'s errors; nothing is changed then.
    fn apply(&mut self, model: &mut dyn Model<F>) -> Result<()> {
        self.validate()?;
        let mut ids = Vec::new();
        model.visit_params(&mut |_, p| ids.push(p.id()));
        self.bind(&ids)?;
        let mut norms = 0.0;
        if self.clip().global_clipnorm.is_some() {
            model.visit_params(&mut |_, p| norms += norm2(&p.grad));
        }
        step(self, norms, &mut |f| model.visit_params_mut(f));
        Ok(())
    }
}

/// [`Optimizer::bind`] over an optimizer's `bound` identities.
pub(super) fn bind_ids(bound: &mut Vec<u64>, params: &[u64], name: &str) -> Result<()> {
    if bound.is_empty() {
        bound.extend_from_slice(params);
        return Ok(());
    }
    if bound != params {
        return Err(Error::Config {
            layer: name.into(),
            field: "model",
            reason: format!(
                "this optimizer holds state for another model's {} weights (got {} weights \
                 that are not those): use a new optimizer for this model",
                bound.len(),
                params.len()
            ),
        });
    }
    Ok(())
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
    // Keras casts weight_decay through float32; the decay uses this step's rate.
    let decay = opt
        .weight_decay()
        .map(|wd| (F::c(f64::from(wd as f32)), F::c(opt.learning_rate())));
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
        if let Some((wd, lr)) = decay {
            // w ← w − (w·wd)·lr, before the update, on the weights the gradient was taken at.
            p.value.mapv_inplace(|w| w - w * wd * lr);
        }
        opt.update(slot, &mut p.value, clipped.as_ref().unwrap_or(&p.grad));
        slot += 1;
    });
}

/// Moves checkpointed state groups into an optimizer's slots.
pub(crate) fn restore<F: Float, const N: usize>(
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

pub(crate) fn norm2<F: Float>(g: &ArrayD<F>) -> f64 {
    g.iter()
        .map(|v| v.to_f64().unwrap_or(f64::NAN).powi(2))
        .sum()
}

pub(crate) fn ensure_slot<F: Float>(slots: &mut Vec<ArrayD<F>>, slot: usize, like: &ArrayD<F>) {
    while slots.len() <= slot {
        slots.push(ArrayD::zeros(like.raw_dim()));
    }
    if slots[slot].shape() != like.shape() {
        slots[slot] = ArrayD::zeros(like.raw_dim());
    }
}

pub(crate) fn positive(name: &str, field: &'static str, v: f64) -> Result<()> {
    if !(v > 0.0 && v.is_finite()) {
        return Err(Error::Config {
            layer: name.into(),
            field,
            reason: format!("expected a positive finite value, got {v}"),
        });
    }
    Ok(())
}

pub(crate) fn unit_interval(name: &str, field: &'static str, v: f64) -> Result<()> {
    if !(0.0..1.0).contains(&v) {
        return Err(Error::Config {
            layer: name.into(),
            field,
            reason: format!("expected a value in [0, 1), got {v}"),
        });
    }
    Ok(())
}

/// A boxed optimizer is an optimizer: choose one at run time.
///
/// ```
/// use rnnkit::{Adam, Optimizer, Sgd};
/// let opt: Box<dyn Optimizer<f64>> = if true { Box::new(Sgd::new(0.1)) } else { Box::new(Adam::new(0.01)) };
/// assert_eq!(opt.name(), "sgd");
/// ```
impl<F: Float> Optimizer<F> for Box<dyn Optimizer<F>> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn clip(&self) -> Clip {
        (**self).clip()
    }
    fn learning_rate(&self) -> f64 {
        (**self).learning_rate()
    }
    fn next_learning_rate(&self) -> f64 {
        (**self).next_learning_rate()
    }
    fn weight_decay(&self) -> Option<f64> {
        (**self).weight_decay()
    }
    fn set_learning_rate(&mut self, lr: LearningRate) -> Result<()> {
        (**self).set_learning_rate(lr)
    }
    fn validate(&self) -> Result<()> {
        (**self).validate()
    }
    fn begin_step(&mut self, t: u64) {
        (**self).begin_step(t)
    }
    fn update(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>) {
        (**self).update(slot, value, g)
    }
    fn iterations(&self) -> u64 {
        (**self).iterations()
    }
    fn state(&self) -> Vec<Vec<ArrayD<F>>> {
        (**self).state()
    }
    fn state_names(&self) -> &'static [&'static str] {
        (**self).state_names()
    }
    fn set_state(&mut self, iterations: u64, state: Vec<Vec<ArrayD<F>>>) -> Result<()> {
        (**self).set_state(iterations, state)
    }
    fn bind(&mut self, params: &[u64]) -> Result<()> {
        (**self).bind(params)
    }
}

/// Checks an optimizer's rate and weight decay (shared by every optimizer's `validate`).
pub(crate) fn check_common(name: &str, lr: &LearningRate, weight_decay: Option<f64>) -> Result<()> {
    lr.validate(name)?;
    if let Some(wd) = weight_decay
        && !(wd >= 0.0 && wd.is_finite())
    {
        return Err(Error::Config {
            layer: name.into(),
            field: "weight_decay",
            reason: format!("expected a finite value ≥ 0, got {wd}"),
        });
    }
    Ok(())
}
