//! What the trainer checks of its data before the first step, and Keras's sample and class
//! weights.

use super::objective::LossFunction;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{Dim, Mask};
use crate::model::Model;
use ndarray::{ArrayD, IxDyn};
use std::collections::BTreeMap;

/// Data checks shared by `fit` and `evaluate`.
pub(crate) fn check_data<F: Float>(
    model: &dyn Model<F>,
    loss: &dyn LossFunction<F>,
    x: &ArrayD<F>,
    y: &ArrayD<F>,
    mask: Option<&Mask>,
) -> Result<()> {
    if x.ndim() == 0 || y.ndim() == 0 || x.shape()[0] != y.shape()[0] {
        return Err(Error::Data(format!(
            "x and y must have the same number of samples, got x {:?} and y {:?}",
            x.shape(),
            y.shape()
        )));
    }
    if x.shape()[0] == 0 {
        return Err(Error::Data("no samples".into()));
    }
    // The array passed, against the model's input (not a batch of it, later).
    let ins = model.input_shapes();
    let want: &[Dim] = ins.first().map_or(&[], |s| s.as_slice());
    if !want.is_empty() && !crate::layers::fits_batched(x.shape(), want) {
        return Err(Error::Shape {
            layer: model.name().to_string(),
            what: "x",
            expected: crate::layers::format_batched("samples", want),
            got: x.shape().to_vec(),
        });
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::Data(format!(
            "x has a non-finite value at flat index {i}"
        )));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::Data(format!(
            "y has a non-finite value at flat index {i}"
        )));
    }
    if let Some(m) = mask
        && (x.ndim() != 3 || m.dim() != (x.shape()[0], x.shape()[1]))
    {
        return Err(Error::Shape {
            layer: "trainer".into(),
            what: "mask",
            expected: "[samples, steps] of x".into(),
            got: m.shape().to_vec(),
        });
    }
    // Target shape against the model's output shape, per loss.
    let outs = model.output_shapes();
    let out: &[Dim] = outs.first().map_or(&[], |s| s.as_slice());
    let fits = |got: &[usize], want: &[Dim]| {
        got.len() == want.len() && got.iter().zip(want).all(|(g, w)| w.is_none_or(|w| w == *g))
    };
    let tail = &y.shape()[1..];
    let ok = match loss.sparse_targets() {
        true => {
            let lead = &out[..out.len().saturating_sub(1)];
            let classes = out.last().copied().flatten();
            if let Some(c) = classes
                && let Some(bad) = y.iter().find(|v| {
                    let f = v.to_f64().unwrap_or(f64::NAN);
                    !(f >= 0.0 && f.fract() == 0.0 && f < c as f64)
                })
            {
                return Err(Error::Data(format!(
                    "sparse label {bad} out of range: expected an integer in 0..{c}"
                )));
            }
            fits(tail, lead) || (tail.last() == Some(&1) && fits(&tail[..tail.len() - 1], lead))
        }
        false => {
            fits(tail, out) || (out.last() == Some(&Some(1)) && fits(tail, &out[..out.len() - 1]))
        }
    };
    if !ok {
        return Err(Error::Data(format!(
            "targets of shape {:?} do not fit {} for model output {}",
            y.shape(),
            loss.name(),
            crate::layers::format_shape(out)
        )));
    }
    Ok(())
}

/// Checks `sample_weight` against the data before training: one weight per sample
/// (`[N]`, `[N, 1]`), or per sample and step for a sequence output (`[N, T]`, `[N, T, 1]`,
/// or `[N, 1]` for the whole sequence), finite and ≥ 0.
pub(crate) fn check_sample_weight<F: Float>(
    model: &dyn Model<F>,
    y: &ArrayD<F>,
    sw: &ArrayD<F>,
) -> Result<()> {
    let n = y.shape()[0];
    let per_step = model.output_shapes().first().map_or(0, Vec::len) == 2;
    let t = if per_step {
        y.shape().get(1).copied()
    } else {
        None
    };
    let s = sw.shape();
    let ok = match t {
        None => s == [n] || s == [n, 1],
        Some(t) => s == [n, t] || s == [n, t, 1] || s == [n, 1],
    };
    if !ok {
        return Err(Error::Data(format!(
            "sample_weight of shape {s:?}: expected {} for {} samples{}",
            match t {
                None => format!("[{n}] or [{n}, 1]"),
                Some(t) => format!("[{n}, {t}] (per step) or [{n}, 1] (per sample)"),
            },
            n,
            if per_step {
                " of a sequence output (a [N] vector is not per-sample there, as in Keras)"
            } else {
                ""
            }
        )));
    }
    if let Some((i, v)) = sw
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_finite() && **v >= F::zero()))
    {
        return Err(Error::Data(format!(
            "sample_weight at flat index {i} is {v}: expected finite weights ≥ 0"
        )));
    }
    Ok(())
}

/// Keras's `class_weight` → `sample_weight` (`class_weight_to_sample_weights`): the class of
/// sample `i` is `argmax y[i]` for one-hot targets `[N, K]`, `round(y[i])` for labels `[N]`
/// or `[N, 1]`; classes missing from the map weigh 1. Sequence targets are refused, as
/// Keras refuses them; so are weights for classes the model does not have, and negative or
/// non-finite weights.
pub(crate) fn class_weights<F: Float>(
    model: &dyn Model<F>,
    y: &ArrayD<F>,
    class_weight: &BTreeMap<usize, f64>,
) -> Result<ArrayD<F>> {
    let outs = model.output_shapes();
    let out: &[Dim] = outs.first().map_or(&[], |s| s.as_slice());
    if out.len() != 1 {
        return Err(Error::Data(format!(
            "class_weight needs one target per sample, but the model outputs {} (use sample_weight for sequences)",
            crate::layers::format_shape(out)
        )));
    }
    let classes = match out[0] {
        Some(1) | None => None,
        Some(k) => Some(k),
    };
    for (&c, &w) in class_weight {
        if !(w.is_finite() && w >= 0.0) {
            return Err(Error::Config {
                layer: "trainer".into(),
                field: "class_weight",
                reason: format!("class {c} has weight {w}: expected finite weights ≥ 0"),
            });
        }
        let limit = classes.unwrap_or(2);
        if c >= limit {
            return Err(Error::Config {
                layer: "trainer".into(),
                field: "class_weight",
                reason: format!("a weight for class {c}, but the model's classes are 0..{limit}"),
            });
        }
    }
    let n = y.shape()[0];
    let rows = y
        .view()
        .into_shape_with_order((n, y.len() / n.max(1)))
        .map_err(|e| Error::Data(e.to_string()))?;
    let weights = rows
        .rows()
        .into_iter()
        .map(|r| {
            let class = if r.len() > 1 {
                let mut best = (0, F::neg_infinity());
                for (k, &v) in r.iter().enumerate() {
                    if v > best.1 {
                        best = (k, v);
                    }
                }
                best.0
            } else {
                r[0].to_f64().unwrap_or(0.0).round().max(0.0) as usize
            };
            F::c(class_weight.get(&class).copied().unwrap_or(1.0))
        })
        .collect::<Vec<_>>();
    ArrayD::from_shape_vec(IxDyn(&[n]), weights).map_err(|e| Error::Data(e.to_string()))
}

/// A stateful model keeps one state per sample, so every batch must have the same size:
/// refuses, before any batch runs, sample counts that are not a multiple of `batch_size`
/// (each of `counts`: the training and the validation part).
pub(crate) fn check_stateful_batches<F: Float>(
    model: &dyn Model<F>,
    counts: &[usize],
    batch_size: usize,
) -> Result<()> {
    let ragged = counts
        .iter()
        .find(|&&n| batch_size > 0 && n > batch_size && n % batch_size != 0);
    match ragged {
        Some(&n) if crate::model::has_stateful_layer(model.architecture()) => Err(Error::Shape {
            layer: model.name().to_string(),
            what: "samples (a stateful model runs in batches of one size)",
            expected: format!("a multiple of batch_size {batch_size}"),
            got: vec![n],
        }),
        _ => Ok(()),
    }
}
