//! Adam (with amsgrad) and AdamW as Keras 3 computes them.

use super::{
    Clip, LearningRate, Optimizer, check_common, ensure_slot, positive, restore, unit_interval,
};
use crate::error::Result;
use crate::float::Float;
use ndarray::{ArrayD, Zip};

/// Adam exactly as Keras 3 computes it: `ε` added to `sqrt(v)` ("epsilon hat"), and the
/// bias-correction powers of β rounded to float32 (as Keras casts them).
///
/// ```text
/// m ← m + (g − m)(1 − β1);  v ← v + (g² − v)(1 − β2)
/// α_t = lr·sqrt(1 − β̃2^t)/(1 − β̃1^t);  w ← w − α_t·m/(sqrt(v) + ε)
/// amsgrad: v̂ ← max(v̂, v), and sqrt(v̂) in place of sqrt(v)
/// ```
///
/// | option | default |
/// |---|---|
/// | `learning_rate` | 0.001 |
/// | `beta_1` | 0.9 |
/// | `beta_2` | 0.999 |
/// | `epsilon` | 1e-7 |
/// | `amsgrad` | false |
/// | `weight_decay` | none |
/// | clipping | none |
///
/// ```
/// use rnnkit::{Adam, train::LearningRate};
/// let adam = Adam::<f32>::new(0.01).clipnorm(1.0).amsgrad(true);
/// assert_eq!(adam.learning_rate, LearningRate::Constant(0.01));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Adam<F: Float = f64> {
    /// Learning rate, constant or scheduled.
    pub learning_rate: LearningRate,
    /// First-moment decay.
    pub beta_1: f64,
    /// Second-moment decay.
    pub beta_2: f64,
    /// ε̂, added to `sqrt(v)`.
    pub epsilon: f64,
    /// Use the running maximum of `v` (Reddi et al.'s AMSGrad).
    pub amsgrad: bool,
    /// Decoupled weight decay (see [`Optimizer::weight_decay`]).
    pub weight_decay: Option<f64>,
    /// Gradient clipping.
    pub clip: Clip,
    t: u64,
    lr: f64,
    /// The identities of the parameters this optimizer steps (empty until the first).
    bound: Vec<u64>,
    alpha: f64,
    m: Vec<ArrayD<F>>,
    v: Vec<ArrayD<F>>,
    v_hat: Vec<ArrayD<F>>,
}

impl<F: Float> Default for Adam<F> {
    fn default() -> Self {
        Adam::new(0.001)
    }
}

impl<F: Float> Adam<F> {
    common_builders!();
    /// Adam with learning rate `lr` (a number or a schedule) and Keras's other defaults.
    pub fn new(lr: impl Into<LearningRate>) -> Self {
        let learning_rate = lr.into();
        Adam {
            lr: learning_rate.at(0),
            learning_rate,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            weight_decay: None,
            clip: Clip::default(),
            t: 0,
            bound: Vec::new(),
            alpha: 0.0,
            m: Vec::new(),
            v: Vec::new(),
            v_hat: Vec::new(),
        }
    }
    /// Sets `amsgrad`.
    pub fn amsgrad(mut self, v: bool) -> Self {
        self.amsgrad = v;
        self
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
}

impl<F: Float> Optimizer<F> for Adam<F> {
    common_optimizer_methods!("adam");
    fn validate(&self) -> Result<()> {
        check_common("adam", &self.learning_rate, self.weight_decay)?;
        unit_interval("adam", "beta_1", self.beta_1)?;
        unit_interval("adam", "beta_2", self.beta_2)?;
        positive("adam", "epsilon", self.epsilon)?;
        self.clip.check("adam")
    }
    fn begin_step(&mut self, t: u64) {
        self.t = t;
        self.lr = self.learning_rate.at(t - 1);
        // Keras casts the betas through float32 for the bias-correction powers.
        let b1 = f64::from(self.beta_1 as f32);
        let b2 = f64::from(self.beta_2 as f32);
        let tf = t as f64;
        self.alpha = self.lr * (1.0 - b2.powf(tf)).sqrt() / (1.0 - b1.powf(tf));
    }
    fn update(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>) {
        ensure_slot(&mut self.m, slot, value);
        ensure_slot(&mut self.v, slot, value);
        if self.amsgrad {
            return self.update_amsgrad(slot, value, g);
        }
        let k = AdamConsts {
            one_b1: F::c(1.0 - self.beta_1),
            one_b2: F::c(1.0 - self.beta_2),
            alpha: F::c(self.alpha),
            eps: F::c(self.epsilon),
        };
        let adam = |w: &mut F, m: &mut F, v: &mut F, g: F| k.step(w, m, v, g);
        let (m, v) = (&mut self.m[slot], &mut self.v[slot]);
        // Contiguous weights (all of rnnkit's) take a flat loop the compiler vectorises,
        // as wide as the CPU allows.
        if let (Some(ws), Some(ms), Some(vs), Some(gs)) = (
            value.as_slice_memory_order_mut(),
            m.as_slice_memory_order_mut(),
            v.as_slice_memory_order_mut(),
            g.as_slice_memory_order(),
        ) {
            // Long weights split over the threads (elementwise: the same numbers).
            crate::parallel::over_pieces(
                ws.len(),
                |size| {
                    (ws.chunks_mut(size).zip(ms.chunks_mut(size)))
                        .zip(vs.chunks_mut(size).zip(gs.chunks(size)))
                },
                |((w, m), (v, g))| adam_flat(k, w, m, v, g),
            );
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
        if self.amsgrad {
            vec![self.m.clone(), self.v.clone(), self.v_hat.clone()]
        } else {
            vec![self.m.clone(), self.v.clone()]
        }
    }
    fn state_names(&self) -> &'static [&'static str] {
        if self.amsgrad {
            &["m", "v", "v_hat"]
        } else {
            &["m", "v"]
        }
    }
    fn set_state(&mut self, iterations: u64, state: Vec<Vec<ArrayD<F>>>) -> Result<()> {
        self.t = iterations;
        self.bound.clear();
        self.lr = self.learning_rate.at(iterations.saturating_sub(1));
        if self.amsgrad {
            restore("adam", state, [&mut self.m, &mut self.v, &mut self.v_hat])
        } else {
            restore("adam", state, [&mut self.m, &mut self.v])
        }
    }
}

/// The constants of one Adam step.
#[derive(Clone, Copy)]
struct AdamConsts<F> {
    one_b1: F,
    one_b2: F,
    alpha: F,
    eps: F,
}

impl<F: Float> AdamConsts<F> {
    #[inline(always)]
    fn step(&self, w: &mut F, m: &mut F, v: &mut F, g: F) {
        *m += (g - *m) * self.one_b1;
        *v += (g * g - *v) * self.one_b2;
        *w -= self.alpha * *m / (v.sqrt() + self.eps);
    }
}

crate::linalg::wide::wide_fn!(
    /// [`AdamConsts::step`] over flat slices, as wide as the CPU allows (the same
    /// operations in the same order: the numbers do not depend on the width).
    fn adam_flat(k: AdamConsts<F>, ws: &mut [F], ms: &mut [F], vs: &mut [F], gs: &[F]) = adam_flat_body
);

#[inline(always)]
fn adam_flat_body<F: Float>(k: AdamConsts<F>, ws: &mut [F], ms: &mut [F], vs: &mut [F], gs: &[F]) {
    for (((w, m), v), &g) in ws.iter_mut().zip(ms).zip(vs).zip(gs) {
        k.step(w, m, v, g);
    }
}

impl<F: Float> Adam<F> {
    /// The AMSGrad update: `v̂ ← max(v̂, v)`; `m` and `v` themselves are never replaced.
    fn update_amsgrad(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>) {
        ensure_slot(&mut self.v_hat, slot, value);
        let (one_b1, one_b2) = (F::c(1.0 - self.beta_1), F::c(1.0 - self.beta_2));
        let (alpha, eps) = (F::c(self.alpha), F::c(self.epsilon));
        Zip::from(value)
            .and(&mut self.m[slot])
            .and(&mut self.v[slot])
            .and(&mut self.v_hat[slot])
            .and(g)
            .for_each(|w, m, v, vh, &g| {
                *m += (g - *m) * one_b1;
                *v += (g * g - *v) * one_b2;
                *vh = vh.max(*v);
                *w -= *m * alpha / (vh.sqrt() + eps);
            });
    }
}

/// AdamW as Keras's `AdamW`: [`Adam`] with decoupled weight decay, 0.004 by default. Before
/// each update every weight (biases too) moves by `−w·wd·lr`, with `wd` rounded through
/// float32 and the step's learning rate, as Keras does.
///
/// ```
/// use rnnkit::{AdamW, Optimizer};
/// let opt = AdamW::<f64>::new(0.001).weight_decay(0.01);
/// assert_eq!((opt.name(), Optimizer::weight_decay(&opt)), ("adamw", Some(0.01)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AdamW<F: Float = f64>(Adam<F>);

impl<F: Float> AdamW<F> {
    /// AdamW with learning rate `lr`, weight decay 0.004 and Keras's other defaults.
    pub fn new(lr: impl Into<LearningRate>) -> Self {
        AdamW(Adam::new(lr).weight_decay(0.004))
    }
    /// Sets the weight decay.
    pub fn weight_decay(self, wd: f64) -> Self {
        AdamW(self.0.weight_decay(wd))
    }
    /// Sets β1 and β2.
    pub fn betas(self, beta_1: f64, beta_2: f64) -> Self {
        AdamW(self.0.betas(beta_1, beta_2))
    }
    /// Sets ε.
    pub fn epsilon(self, eps: f64) -> Self {
        AdamW(self.0.epsilon(eps))
    }
    /// Sets `amsgrad`.
    pub fn amsgrad(self, v: bool) -> Self {
        AdamW(self.0.amsgrad(v))
    }
    /// Per-tensor norm clipping.
    pub fn clipnorm(self, c: f64) -> Self {
        AdamW(self.0.clipnorm(c))
    }
    /// Global norm clipping.
    pub fn global_clipnorm(self, c: f64) -> Self {
        AdamW(self.0.global_clipnorm(c))
    }
}

impl<F: Float> Optimizer<F> for AdamW<F> {
    fn name(&self) -> &'static str {
        "adamw"
    }
    fn clip(&self) -> Clip {
        self.0.clip
    }
    fn learning_rate(&self) -> f64 {
        self.0.lr
    }
    fn next_learning_rate(&self) -> f64 {
        self.0.learning_rate.at(self.0.t)
    }
    fn weight_decay(&self) -> Option<f64> {
        self.0.weight_decay
    }
    fn set_learning_rate(&mut self, lr: LearningRate) -> Result<()> {
        self.0.set_learning_rate(lr)
    }
    fn validate(&self) -> Result<()> {
        self.0.validate()
    }
    fn begin_step(&mut self, t: u64) {
        self.0.begin_step(t)
    }
    fn update(&mut self, slot: usize, value: &mut ArrayD<F>, g: &ArrayD<F>) {
        self.0.update(slot, value, g)
    }
    fn iterations(&self) -> u64 {
        self.0.t
    }
    fn state(&self) -> Vec<Vec<ArrayD<F>>> {
        self.0.state()
    }
    fn state_names(&self) -> &'static [&'static str] {
        self.0.state_names()
    }
    fn set_state(&mut self, iterations: u64, state: Vec<Vec<ArrayD<F>>>) -> Result<()> {
        self.0.set_state(iterations, state)
    }
    fn bind(&mut self, params: &[u64]) -> Result<()> {
        self.0.bind(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weight long enough to be updated in pieces over the threads gets, value for
    /// value, the bits of the one-element step, step after step.
    #[test]
    fn a_split_update_is_the_elementwise_step() {
        crate::set_num_threads(2); // split even on a one-core machine
        let len = 256 * 256;
        assert!(
            crate::parallel::flat_piece(len) < len,
            "the update is split"
        );
        let shape = [256, 256];
        let mut w =
            ArrayD::from_shape_fn(&shape[..], |i| ((i[0] * 7 + i[1]) % 23) as f32 * 0.1 - 1.0);
        let g = ArrayD::from_shape_fn(&shape[..], |i| {
            ((i[0] + i[1] * 3) % 17) as f32 * 0.01 - 0.08
        });
        let (mut w_ref, mut m_ref, mut v_ref) = (w.clone(), vec![0.0; len], vec![0.0; len]);
        let mut adam = Adam::<f32>::new(0.01);
        for t in 1..=3 {
            adam.begin_step(t);
            adam.update(0, &mut w, &g);
            let k = AdamConsts::<f32> {
                one_b1: f32::c(1.0 - adam.beta_1),
                one_b2: f32::c(1.0 - adam.beta_2),
                alpha: f32::c(adam.alpha),
                eps: f32::c(adam.epsilon),
            };
            for (((w, m), v), &g) in w_ref.iter_mut().zip(&mut m_ref).zip(&mut v_ref).zip(&g) {
                AdamConsts::step(&k, w, m, v, g);
            }
            assert_eq!(w, w_ref, "step {t}");
        }
    }
}
