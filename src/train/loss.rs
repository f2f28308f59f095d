//! Losses and metrics, reduced exactly as Keras reduces them.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::float::sigmoid;
use crate::layers::{Mask, check_mask};
use ndarray::{Array1, Array2, ArrayD, IxDyn};

/// Keras's `epsilon()`: where probabilities are clipped when they do not come from a fused
/// softmax or sigmoid output.
const EPS: f64 = 1e-7;

/// A loss function, with Keras's `sum_over_batch_size` reduction: the loss of each entry is
/// reduced over the last axis, then averaged over the batch (and steps, for sequence
/// outputs); with a mask, over the unmasked steps only.
///
/// When the model's last layer ends in softmax (sigmoid) and a categorical (binary)
/// cross-entropy is not `from_logits`, the trainer evaluates it from the logits as Keras
/// does, so saturated outputs are not clipped at `1e-7`.
///
/// ```
/// use rnnkit::Loss;
/// use rnnkit::ndarray::array;
/// let (l, grad) = Loss::Mse.compute(&array![[1.0f64], [3.0]].into_dyn(), &array![[0.0], [1.0]].into_dyn(), None, None).unwrap();
/// assert_eq!(l, 2.5);                         // (1 + 4) / 2
/// assert_eq!(grad, array![[1.0], [2.0]].into_dyn()); // 2(ŷ − y)/N
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Mean squared error.
    Mse,
    /// Mean absolute error.
    Mae,
    /// Binary cross-entropy on probabilities (or logits with `from_logits`).
    BinaryCrossentropy {
        /// The model outputs logits.
        from_logits: bool,
        /// Targets move toward 0.5: `y·(1 − ls) + 0.5·ls` (Keras's `label_smoothing`).
        label_smoothing: f64,
    },
    /// Categorical cross-entropy against one-hot targets.
    CategoricalCrossentropy {
        /// The model outputs logits.
        from_logits: bool,
        /// Targets move toward uniform: `y·(1 − ls) + ls/K` (Keras's `label_smoothing`).
        label_smoothing: f64,
    },
    /// Categorical cross-entropy against integer class labels (stored as floats).
    SparseCategoricalCrossentropy {
        /// The model outputs logits.
        from_logits: bool,
    },
}

/// A metric reported by `fit` and `evaluate`, averaged like Keras's `Mean` metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Mean absolute error (`"mae"`).
    Mae,
    /// Mean squared error (`"mse"`).
    Mse,
    /// Argmax of prediction equals argmax of a one-hot target (`"categorical_accuracy"`).
    CategoricalAccuracy,
    /// Argmax of prediction equals an integer label (`"sparse_categorical_accuracy"`).
    SparseCategoricalAccuracy,
    /// Prediction > 0.5 equals a 0/1 target (`"binary_accuracy"`).
    BinaryAccuracy,
}

impl Metric {
    /// Keras's log key (`"mae"`, `"accuracy"`...).
    pub fn keras_name(self) -> &'static str {
        match self {
            Metric::Mae => "mae",
            Metric::Mse => "mse",
            Metric::CategoricalAccuracy
            | Metric::SparseCategoricalAccuracy
            | Metric::BinaryAccuracy => "accuracy",
        }
    }

    /// Sum of the per-entry values and the number of entries (masked entries left out).
    pub(crate) fn sum_count<F: Float>(
        self,
        pred: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
    ) -> Result<(f64, f64)> {
        let sparse = self == Metric::SparseCategoricalAccuracy;
        let rows = Rows::new(pred, target, mask, sparse)?;
        let mut sum = 0.0;
        let mut count = 0.0;
        for r in 0..rows.p.nrows() {
            if rows.w[r] == 0.0 {
                continue;
            }
            let p = rows.p.row(r);
            let c = p.len() as f64;
            let v = match self {
                Metric::Mae => {
                    p.iter()
                        .zip(rows.t.row(r))
                        .map(|(a, b)| (*a - *b).abs().to_f64().unwrap_or(f64::NAN))
                        .sum::<f64>()
                        / c
                }
                Metric::Mse => {
                    p.iter()
                        .zip(rows.t.row(r))
                        .map(|(a, b)| ((*a - *b) * (*a - *b)).to_f64().unwrap_or(f64::NAN))
                        .sum::<f64>()
                        / c
                }
                Metric::CategoricalAccuracy => {
                    f64::from(argmax(p.iter()) == argmax(rows.t.row(r).iter()))
                }
                Metric::SparseCategoricalAccuracy => f64::from(argmax(p.iter()) == rows.labels[r]),
                Metric::BinaryAccuracy => {
                    p.iter()
                        .zip(rows.t.row(r))
                        .map(|(a, b)| f64::from((*a > F::c(0.5)) == (*b > F::c(0.5))))
                        .sum::<f64>()
                        / c
                }
            };
            sum += v;
            count += 1.0;
        }
        Ok((sum, count))
    }
}

fn argmax<'a, F: Float>(it: impl Iterator<Item = &'a F>) -> usize {
    let mut best = (0, F::neg_infinity());
    for (i, &v) in it.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Predictions and targets as rows `[R, C]`, with a weight per row (Keras's reduction).
struct Rows<F: Float> {
    p: Array2<F>,
    t: Array2<F>,
    labels: Vec<usize>,
    /// Per-row weight: 1/R, or mask/Σmask.
    w: Array1<f64>,
    shape: Vec<usize>,
}

impl<F: Float> Rows<F> {
    /// Multiplies each row's weight by its sample weight (see [`Loss::compute`]).
    fn weigh(&mut self, sw: &ArrayD<F>) -> Result<()> {
        let lead = &self.shape[..self.shape.len() - 1];
        let (n, r) = (lead[0], self.w.len());
        let per_row: Vec<F> = if sw.len() == r
            && (sw.shape() == lead
                || (sw.ndim() == lead.len() + 1
                    && sw.shape()[..lead.len()] == *lead
                    && sw.shape()[lead.len()] == 1))
        {
            sw.iter().copied().collect()
        } else if lead.len() == 2 && (sw.shape() == [n, 1]) {
            // One weight per sample, over all its steps.
            sw.iter()
                .flat_map(|&v| std::iter::repeat_n(v, lead[1]))
                .collect()
        } else {
            let expected = if lead.len() == 2 {
                format!("[{n}, {}] or [{n}, 1] (per step, or per sample)", lead[1])
            } else {
                format!("[{n}] or [{n}, 1]")
            };
            return Err(Error::Data(format!(
                "sample_weight of shape {:?} does not fit predictions {:?}: expected {expected}",
                sw.shape(),
                self.shape
            )));
        };
        if let Some((i, v)) = per_row
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= F::zero()))
        {
            return Err(Error::Data(format!(
                "sample_weight at flat index {i} is {v}: expected finite weights ≥ 0"
            )));
        }
        for (w, v) in self.w.iter_mut().zip(per_row) {
            *w *= v.to_f64().unwrap_or(f64::NAN);
        }
        Ok(())
    }

    fn new(
        pred: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
        sparse: bool,
    ) -> Result<Self> {
        if pred.ndim() < 2 {
            return Err(Error::Data(format!(
                "predictions must be [batch, .., classes], got shape {:?}",
                pred.shape()
            )));
        }
        if mask.is_some() {
            // A mask needs a sequence output: [batch, steps] of the predictions.
            let steps = if pred.ndim() == 3 { pred.shape()[1] } else { 0 };
            check_mask("loss", mask, pred.shape()[0], steps)?;
        }
        let c = pred.shape()[pred.ndim() - 1];
        let r = pred.len() / c.max(1);
        let lead = &pred.shape()[..pred.ndim() - 1];
        let p = pred
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((r, c))
            .expect("sized");
        let (t, labels) = if sparse {
            let ok = target.shape() == lead
                || (target.ndim() == pred.ndim()
                    && target.shape()[..lead.len()] == *lead
                    && target.shape()[lead.len()] == 1);
            if !ok {
                return Err(Error::Data(format!(
                    "sparse labels must have shape {lead:?} (or with a trailing 1) for predictions {:?}, got {:?}",
                    pred.shape(),
                    target.shape()
                )));
            }
            let mut labels = Vec::with_capacity(r);
            for &v in target.iter() {
                let f = v.to_f64().unwrap_or(f64::NAN);
                if !(f >= 0.0 && f.fract() == 0.0 && (f as usize) < c) {
                    return Err(Error::Data(format!(
                        "sparse label {f} out of range: expected an integer in 0..{c}"
                    )));
                }
                labels.push(f as usize);
            }
            (Array2::zeros((0, c)), labels)
        } else {
            // Keras squeezes/expands a rank difference of 1: y [N] against ŷ [N, 1].
            let t = if target.shape() == pred.shape() {
                target.clone()
            } else if c == 1 && target.shape() == lead {
                target.clone().insert_axis(ndarray::Axis(target.ndim()))
            } else {
                return Err(Error::Data(format!(
                    "targets must have the prediction shape {:?}, got {:?}",
                    pred.shape(),
                    target.shape()
                )));
            };
            (
                t.as_standard_layout()
                    .into_owned()
                    .into_shape_with_order((r, c))
                    .expect("sized"),
                Vec::new(),
            )
        };
        let w = match mask {
            Some(m) if lead.len() == 2 => {
                if m.shape() != lead {
                    return Err(Error::Shape {
                        layer: "loss".into(),
                        what: "mask",
                        expected: format!("{lead:?}"),
                        got: m.shape().to_vec(),
                    });
                }
                let valid = m.iter().filter(|&&k| k).count() as f64;
                Array1::from_iter(
                    m.iter()
                        .map(|&k| if k && valid > 0.0 { 1.0 / valid } else { 0.0 }),
                )
            }
            _ => Array1::from_elem(r, 1.0 / r.max(1) as f64),
        };
        Ok(Rows {
            p,
            t,
            labels,
            w,
            shape: pred.shape().to_vec(),
        })
    }
}

impl Loss {
    /// Keras's name for the loss.
    pub fn keras_name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::Mae => "mae",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }

    /// Binary cross-entropy on probabilities, no label smoothing (Keras's defaults).
    pub fn binary_crossentropy() -> Loss {
        Loss::BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }
    }

    /// Categorical cross-entropy on probabilities, no label smoothing (Keras's defaults).
    pub fn categorical_crossentropy() -> Loss {
        Loss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }
    }

    /// Sets `from_logits` (cross-entropies; other losses are returned unchanged).
    pub fn from_logits(self, v: bool) -> Loss {
        match self {
            Loss::BinaryCrossentropy {
                label_smoothing, ..
            } => Loss::BinaryCrossentropy {
                from_logits: v,
                label_smoothing,
            },
            Loss::CategoricalCrossentropy {
                label_smoothing, ..
            } => Loss::CategoricalCrossentropy {
                from_logits: v,
                label_smoothing,
            },
            Loss::SparseCategoricalCrossentropy { .. } => {
                Loss::SparseCategoricalCrossentropy { from_logits: v }
            }
            other => other,
        }
    }

    /// Sets Keras's `label_smoothing` in [0, 1] (binary and categorical cross-entropy;
    /// Keras's sparse categorical cross-entropy has none, and other losses are returned
    /// unchanged).
    ///
    /// ```
    /// use rnnkit::Loss;
    /// use rnnkit::ndarray::array;
    /// // One-hot [1, 0] smoothed by 0.2 becomes [0.9, 0.1].
    /// let loss = Loss::categorical_crossentropy().from_logits(true).label_smoothing(0.2);
    /// let (l, _) = loss.compute(&array![[0.0f64, 0.0]].into_dyn(), &array![[1.0, 0.0]].into_dyn(), None, None).unwrap();
    /// assert!((l - 2f64.ln()).abs() < 1e-15);
    /// ```
    pub fn label_smoothing(self, ls: f64) -> Loss {
        match self {
            Loss::BinaryCrossentropy { from_logits, .. } => Loss::BinaryCrossentropy {
                from_logits,
                label_smoothing: ls,
            },
            Loss::CategoricalCrossentropy { from_logits, .. } => Loss::CategoricalCrossentropy {
                from_logits,
                label_smoothing: ls,
            },
            other => other,
        }
    }

    /// The label smoothing (0 for losses without one).
    fn smoothing(self) -> f64 {
        match self {
            Loss::BinaryCrossentropy {
                label_smoothing, ..
            }
            | Loss::CategoricalCrossentropy {
                label_smoothing, ..
            } => label_smoothing,
            _ => 0.0,
        }
    }

    /// The same loss reading logits: what a fused softmax/sigmoid output uses.
    pub fn with_logits(self) -> Loss {
        match self {
            Loss::BinaryCrossentropy { .. } | Loss::CategoricalCrossentropy { .. } => {
                self.from_logits(true)
            }
            Loss::SparseCategoricalCrossentropy { .. } => {
                Loss::SparseCategoricalCrossentropy { from_logits: true }
            }
            other => other,
        }
    }

    /// The output activation whose logits this loss reads when it is not `from_logits`
    /// (Keras's `_keras_logits`): softmax for categorical, sigmoid for binary.
    pub fn fuses_with(self) -> Option<crate::Activation> {
        match self {
            Loss::BinaryCrossentropy {
                from_logits: false, ..
            } => Some(crate::Activation::Sigmoid),
            Loss::CategoricalCrossentropy {
                from_logits: false, ..
            }
            | Loss::SparseCategoricalCrossentropy { from_logits: false } => {
                Some(crate::Activation::Softmax)
            }
            _ => None,
        }
    }

    /// The reduced loss and its gradient with respect to `pred` (the logits when
    /// `from_logits`). `mask` (`[batch, steps]`) restricts a sequence output to real steps.
    /// With Keras's `sample_weight`, `L = Σ w_e·ℓ_e / N`, `N` the number
    /// of loss entries (samples, or samples × steps for a sequence output; entries of
    /// weight 0 still count). Weights are `[N]` or `[N, 1]` (one per sample), or `[N, T]`
    /// or `[N, T, 1]` (one per sample and step, for a sequence output). With a mask, the
    /// weighted sum is divided by the number of real steps instead.
    ///
    /// ```
    /// use rnnkit::Loss;
    /// use rnnkit::ndarray::array;
    /// let pred = array![[1.0f64], [3.0]].into_dyn();
    /// let y = array![[0.0], [1.0]].into_dyn();
    /// let w = array![2.0, 0.0].into_dyn();
    /// let (l, _) = Loss::Mse.compute(&pred, &y, None, Some(&w)).unwrap();
    /// assert_eq!(l, (2.0 * 1.0 + 0.0 * 4.0) / 2.0); // N = 2, not Σw
    /// ```
    ///
    /// # Errors
    /// [`Error::Data`] for targets that do not fit the predictions (shape, label range), or
    /// weights of another shape, negative or not finite; [`Error::Config`] for a label
    /// smoothing outside [0, 1].
    pub fn compute<F: Float>(
        self,
        pred: &ArrayD<F>,
        target: &ArrayD<F>,
        mask: Option<&Mask>,
        sample_weight: Option<&ArrayD<F>>,
    ) -> Result<(f64, ArrayD<F>)> {
        let ls = self.smoothing();
        if !(0.0..=1.0).contains(&ls) {
            return Err(Error::Config {
                layer: self.keras_name().into(),
                field: "label_smoothing",
                reason: format!("expected a value in [0, 1], got {ls}"),
            });
        }
        let sparse = matches!(self, Loss::SparseCategoricalCrossentropy { .. });
        let mut rows = Rows::new(pred, target, mask, sparse)?;
        if let Some(sw) = sample_weight {
            rows.weigh(sw)?;
        }
        if ls > 0.0 {
            // Keras smooths in the loss's float type, before the cross-entropy.
            let k = rows.p.ncols();
            let (keep, add) = match self {
                Loss::BinaryCrossentropy { .. } => (F::c(1.0 - ls), F::c(0.5 * ls)),
                _ => (F::c(1.0 - ls), F::c(ls / k as f64)),
            };
            rows.t.mapv_inplace(|t| t * keep + add);
        }
        let (r, c) = rows.p.dim();
        let mut grad = Array2::<F>::zeros((r, c));
        let mut total = 0.0f64;
        let cf = F::c(c as f64);
        let eps = F::c(EPS);
        let one = F::one();
        for i in 0..r {
            let w = rows.w[i];
            if w == 0.0 {
                continue;
            }
            let wf = F::c(w);
            let p = rows.p.row(i);
            let mut g = grad.row_mut(i);
            let value: F = match self {
                Loss::Mse => {
                    let mut s = F::zero();
                    for k in 0..c {
                        let d = p[k] - rows.t[[i, k]];
                        s += d * d;
                        g[k] = F::c(2.0) * d / cf * wf;
                    }
                    s / cf
                }
                Loss::Mae => {
                    let mut s = F::zero();
                    for k in 0..c {
                        let d = p[k] - rows.t[[i, k]];
                        s += d.abs();
                        g[k] = sign(d) / cf * wf;
                    }
                    s / cf
                }
                Loss::BinaryCrossentropy {
                    from_logits: true, ..
                } => {
                    let mut s = F::zero();
                    for k in 0..c {
                        let (z, t) = (p[k], rows.t[[i, k]]);
                        // max(z, 0) − z·t + log(1 + e^−|z|), stable for any z
                        s += z.max(F::zero()) - z * t + (-z.abs()).exp().ln_1p();
                        g[k] = (sigmoid(z) - t) / cf * wf;
                    }
                    s / cf
                }
                Loss::BinaryCrossentropy {
                    from_logits: false, ..
                } => {
                    let mut s = F::zero();
                    for k in 0..c {
                        let (q, t) = (p[k], rows.t[[i, k]]);
                        let qc = q.max(eps).min(one - eps);
                        s -= t * qc.ln() + (one - t) * (one - qc).ln();
                        let inside = q >= eps && q <= one - eps;
                        g[k] = if inside {
                            (-t / qc + (one - t) / (one - qc)) / cf * wf
                        } else {
                            F::zero()
                        };
                    }
                    s / cf
                }
                Loss::CategoricalCrossentropy {
                    from_logits: true, ..
                } => {
                    let (lse, probs) = log_softmax_parts(p);
                    let tsum: F = rows.t.row(i).sum();
                    let mut s = F::zero();
                    for k in 0..c {
                        let t = rows.t[[i, k]];
                        s -= t * (p[k] - lse);
                        g[k] = (probs[k] * tsum - t) * wf;
                    }
                    s
                }
                Loss::CategoricalCrossentropy {
                    from_logits: false, ..
                } => {
                    // Keras: renormalise, clip to [ε, 1−ε], −Σ t log p.
                    let sum = p.sum();
                    let mut s = F::zero();
                    let mut gq = vec![F::zero(); c];
                    for k in 0..c {
                        let q = p[k] / sum;
                        let qc = q.max(eps).min(one - eps);
                        let t = rows.t[[i, k]];
                        s -= t * qc.ln();
                        gq[k] = if q >= eps && q <= one - eps {
                            -t / qc
                        } else {
                            F::zero()
                        };
                    }
                    let dot: F = (0..c).fold(F::zero(), |a, k| a + gq[k] * p[k] / sum);
                    for k in 0..c {
                        g[k] = (gq[k] - dot) / sum * wf;
                    }
                    s
                }
                Loss::SparseCategoricalCrossentropy { from_logits: true } => {
                    let (lse, probs) = log_softmax_parts(p);
                    let l = rows.labels[i];
                    for k in 0..c {
                        g[k] = (probs[k] - if k == l { one } else { F::zero() }) * wf;
                    }
                    lse - p[l]
                }
                Loss::SparseCategoricalCrossentropy { from_logits: false } => {
                    // Keras: clip to [ε, 1−ε], then softmax cross-entropy on log p.
                    let l = rows.labels[i];
                    let clipped: Vec<F> = p.iter().map(|&q| q.max(eps).min(one - eps)).collect();
                    let sum = clipped.iter().fold(F::zero(), |a, &b| a + b);
                    for k in 0..c {
                        let inside = p[k] >= eps && p[k] <= one - eps;
                        let d = one / sum - if k == l { one / clipped[l] } else { F::zero() };
                        g[k] = if inside { d * wf } else { F::zero() };
                    }
                    sum.ln() - clipped[l].ln()
                }
            };
            total += value.to_f64().unwrap_or(f64::NAN) * w;
        }
        let grad = grad
            .into_shape_with_order(IxDyn(&rows.shape))
            .expect("sized");
        Ok((total, grad))
    }
}

/// Reduces a per-row loss exactly as the built-in losses are reduced: rows of the last
/// axis, Keras's `sum_over_batch_size` (over real steps under a mask), sample weights.
/// `entry(pred_row, target_row, grad_row)` returns the row's loss and writes its gradient.
pub(crate) fn reduce_rows<F: Float>(
    pred: &ArrayD<F>,
    target: &ArrayD<F>,
    mask: Option<&Mask>,
    sample_weight: Option<&ArrayD<F>>,
    entry: impl Fn(
        ndarray::ArrayView1<'_, F>,
        ndarray::ArrayView1<'_, F>,
        ndarray::ArrayViewMut1<'_, F>,
    ) -> F,
) -> Result<(f64, ArrayD<F>)> {
    let mut rows = Rows::new(pred, target, mask, false)?;
    if let Some(sw) = sample_weight {
        rows.weigh(sw)?;
    }
    let (r, c) = rows.p.dim();
    let mut grad = Array2::<F>::zeros((r, c));
    let mut total = 0.0;
    for i in 0..r {
        let w = rows.w[i];
        if w == 0.0 {
            continue;
        }
        let mut g = grad.row_mut(i);
        let value = entry(rows.p.row(i), rows.t.row(i), g.view_mut());
        let wf = F::c(w);
        g.mapv_inplace(|v| v * wf);
        total += value.to_f64().unwrap_or(f64::NAN) * w;
    }
    let grad = grad
        .into_shape_with_order(IxDyn(&rows.shape))
        .expect("sized");
    Ok((total, grad))
}

fn sign<F: Float>(d: F) -> F {
    if d > F::zero() {
        F::one()
    } else if d < F::zero() {
        -F::one()
    } else {
        F::zero()
    }
}

/// `log Σ e^z` and `softmax(z)` of one row.
fn log_softmax_parts<F: Float>(z: ndarray::ArrayView1<'_, F>) -> (F, Vec<F>) {
    let max = z.fold(F::neg_infinity(), |m, &v| if v > m { v } else { m });
    let sum = z.fold(F::zero(), |a, &v| a + (v - max).exp());
    let lse = max + sum.ln();
    (lse, z.iter().map(|&v| (v - lse).exp()).collect())
}
