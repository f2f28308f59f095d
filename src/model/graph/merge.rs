//! Keras's merge layers (`Concatenate`, `Add`, `Multiply`, `Average`): values, masks and
//! gradients, as pure functions of their inputs.

use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{format_shape, Dim, Mask};
use ndarray::{concatenate, ArrayD, ArrayView2, Axis, Slice};

/// How a graph merges several tensors, with Keras's names and mask rules.
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut g = Graph::<f64>::new(0);
/// let a = g.input("a", &[Some(4)])?;
/// let b = g.input("b", &[Some(3)])?;
/// let ab = g.merge(Merge::Concatenate { axis: -1 }, &[a, b])?;
/// assert_eq!(g.shape(ab)?, vec![Some(7)]);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// `keras.layers.Concatenate(axis)`: `axis` counts the batch axis as 0 (`-1`, the
    /// features, is Keras's default; `1` is time for sequences). Output mask: none if no
    /// input has one; else the inputs' masks (an unmasked input counts as all true) joined
    /// along time for `axis = 1`, or OR-ed for the features axis.
    Concatenate {
        /// The axis, batch counted as 0; negative counts from the end.
        axis: isize,
    },
    /// `keras.layers.Add`: `Σ x_i`. Output mask: the OR of the masks if every input has one.
    Add,
    /// `keras.layers.Multiply`: `Π x_i`, masked entries of a masked input replaced by 1;
    /// when every input is masked, zero where no mask is true (and that OR as the mask).
    Multiply,
    /// `keras.layers.Average`: `(Σ x_i) / n`. Masks as `Add`.
    Average,
}

impl Merge {
    /// Keras's layer name (`"concatenate"`, `"add"`, …).
    pub fn default_name(&self) -> &'static str {
        match self {
            Merge::Concatenate { .. } => "concatenate",
            Merge::Add => "add",
            Merge::Multiply => "multiply",
            Merge::Average => "average",
        }
    }

    /// Keras's class name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Merge::Concatenate { .. } => "Concatenate",
            Merge::Add => "Add",
            Merge::Multiply => "Multiply",
            Merge::Average => "Average",
        }
    }

    /// The axis of a concatenation of rank-`rank` tensors (batch included).
    fn axis(&self, name: &str, rank: usize) -> Result<usize> {
        let Merge::Concatenate { axis } = *self else {
            return Ok(0);
        };
        let a = if axis < 0 { rank as isize + axis } else { axis };
        if a < 1 || a >= rank as isize {
            return Err(Error::Config {
                layer: name.to_string(),
                field: "axis",
                reason: format!("{axis} is not a non-batch axis of rank-{rank} tensors"),
            });
        }
        Ok(a as usize)
    }

    /// The output shape (without batch) of merging tensors of these shapes.
    pub(crate) fn output_shape(&self, name: &str, inputs: &[Vec<Dim>]) -> Result<Vec<Dim>> {
        let wrong = |reason: String| Error::Incompatible {
            layer: name.to_string(),
            previous: "its inputs".into(),
            reason,
        };
        let Some(first) = inputs.first() else {
            return Err(wrong("a merge needs at least one input".into()));
        };
        let list = || {
            inputs
                .iter()
                .map(|s| format_shape(s))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if inputs.iter().any(|s| s.len() != first.len()) {
            return Err(wrong(format!("inputs of different ranks: {}", list())));
        }
        match self {
            Merge::Concatenate { .. } => {
                let a = self.axis(name, first.len() + 1)? - 1;
                let mut out = first.clone();
                for s in &inputs[1..] {
                    for (i, (&d, &e)) in s.iter().zip(first).enumerate() {
                        if i != a && d.is_some() && e.is_some() && d != e {
                            return Err(wrong(format!(
                                "shapes differ off the concatenation axis: {}",
                                list()
                            )));
                        }
                    }
                    out[a] = match (out[a], s[a]) {
                        (Some(x), Some(y)) => Some(x + y),
                        _ => None,
                    };
                }
                Ok(out)
            }
            _ => {
                for s in &inputs[1..] {
                    let clash = s
                        .iter()
                        .zip(first)
                        .any(|(&d, &e)| d.is_some() && e.is_some() && d != e);
                    if clash {
                        return Err(wrong(format!("shapes differ: {}", list())));
                    }
                }
                Ok(first.clone())
            }
        }
    }

    /// Checks the actual batch shapes of a call.
    fn check(&self, name: &str, xs: &[&ArrayD<impl Float>]) -> Result<()> {
        let shapes: Vec<Vec<Dim>> = xs
            .iter()
            .map(|x| x.shape().iter().map(|&d| Some(d)).collect())
            .collect();
        let batch = shapes[0][0];
        if shapes.iter().any(|s| s[0] != batch) {
            return Err(Error::Incompatible {
                layer: name.to_string(),
                previous: "its inputs".into(),
                reason: format!(
                    "batch sizes differ: {}",
                    shapes
                        .iter()
                        .map(|s| format_shape(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        let no_batch: Vec<Vec<Dim>> = shapes.into_iter().map(|s| s[1..].to_vec()).collect();
        self.output_shape(name, &no_batch).map(|_| ())
    }

    /// The merged value and the mask it carries.
    pub(crate) fn forward<F: Float>(
        &self,
        name: &str,
        xs: &[&ArrayD<F>],
        masks: &[Option<&Mask>],
    ) -> Result<(ArrayD<F>, Option<Mask>)> {
        self.check(name, xs)?;
        let rank = xs[0].ndim();
        let n = F::from(xs.len()).expect("small count");
        let all_masked = masks.iter().all(|m| m.is_some());
        let or_mask = || -> Option<Mask> {
            let mut it = masks.iter().flatten();
            let first = (*it.next()?).clone();
            Some(it.fold(first, |acc, m| &acc | *m))
        };
        Ok(match self {
            Merge::Concatenate { .. } => {
                let a = self.axis(name, rank)?;
                let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
                let y = concatenate(Axis(a), &views).map_err(|e| Error::Incompatible {
                    layer: name.to_string(),
                    previous: "its inputs".into(),
                    reason: e.to_string(),
                })?;
                let mask = if rank != 3 || masks.iter().all(|m| m.is_none()) {
                    None
                } else if a == 1 {
                    let parts: Vec<Mask> = xs
                        .iter()
                        .zip(masks)
                        .map(|(x, m)| {
                            m.cloned().unwrap_or_else(|| {
                                Mask::from_elem((x.shape()[0], x.shape()[1]), true)
                            })
                        })
                        .collect();
                    let views: Vec<ArrayView2<'_, bool>> = parts.iter().map(|m| m.view()).collect();
                    concatenate(Axis(1), &views).ok()
                } else if all_masked {
                    or_mask()
                } else {
                    Some(Mask::from_elem((xs[0].shape()[0], xs[0].shape()[1]), true))
                };
                (y, mask)
            }
            Merge::Add | Merge::Average => {
                let mut y = xs[0].clone();
                for x in &xs[1..] {
                    y += *x;
                }
                if *self == Merge::Average {
                    y.mapv_inplace(|v| v / n);
                }
                (y, if all_masked { or_mask() } else { None })
            }
            Merge::Multiply => {
                let ws = mask_ones(xs, masks);
                let mut y = ws[0].clone();
                for w in &ws[1..] {
                    y *= w;
                }
                let mask = if all_masked { or_mask() } else { None };
                if let Some(m) = &mask {
                    zero_where_masked(&mut y, m);
                }
                (y, mask)
            }
        })
    }

    /// dL/d(each input) from dL/d(output).
    pub(crate) fn backward<F: Float>(
        &self,
        name: &str,
        xs: &[ArrayD<F>],
        masks: &[Option<Mask>],
        dy: &ArrayD<F>,
    ) -> Result<Vec<ArrayD<F>>> {
        let n = F::from(xs.len()).expect("small count");
        Ok(match self {
            Merge::Concatenate { .. } => {
                let a = self.axis(name, xs[0].ndim())?;
                let mut start = 0;
                xs.iter()
                    .map(|x| {
                        let len = x.shape()[a];
                        let part = dy
                            .slice_axis(Axis(a), Slice::from(start..start + len))
                            .to_owned();
                        start += len;
                        part
                    })
                    .collect()
            }
            Merge::Add => xs.iter().map(|_| dy.clone()).collect(),
            Merge::Average => xs.iter().map(|_| dy.mapv(|v| v / n)).collect(),
            Merge::Multiply => {
                let refs: Vec<&ArrayD<F>> = xs.iter().collect();
                let mrefs: Vec<Option<&Mask>> = masks.iter().map(|m| m.as_ref()).collect();
                let ws = mask_ones(&refs, &mrefs);
                let mut dy = dy.clone();
                if mrefs.iter().all(|m| m.is_some()) {
                    let or = mrefs
                        .iter()
                        .flatten()
                        .skip(1)
                        .fold((*mrefs[0].expect("all masked")).clone(), |acc, m| &acc | *m);
                    zero_where_masked(&mut dy, &or);
                }
                (0..xs.len())
                    .map(|i| {
                        let mut g = dy.clone();
                        for (j, w) in ws.iter().enumerate() {
                            if j != i {
                                g *= w;
                            }
                        }
                        // A masked entry was replaced by the constant 1.
                        if let Some(m) = &mrefs[i] {
                            zero_where_masked(&mut g, m);
                        }
                        g
                    })
                    .collect()
            }
        })
    }
}

/// Each input with its masked entries replaced by 1 (`Multiply`'s rule).
fn mask_ones<F: Float>(xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Vec<ArrayD<F>> {
    xs.iter()
        .zip(masks)
        .map(|(x, m)| {
            let mut w = (*x).clone();
            if let (Some(m), 3) = (m, x.ndim()) {
                for ((b, t, _), v) in w
                    .view_mut()
                    .into_dimensionality::<ndarray::Ix3>()
                    .expect("rank 3")
                    .indexed_iter_mut()
                {
                    if !m[[b, t]] {
                        *v = F::one();
                    }
                }
            }
            w
        })
        .collect()
}

/// Zeroes the steps of a `[B, T, F]` array where the mask is false.
fn zero_where_masked<F: Float>(y: &mut ArrayD<F>, m: &Mask) {
    if y.ndim() != 3 {
        return;
    }
    for ((b, t, _), v) in y
        .view_mut()
        .into_dimensionality::<ndarray::Ix3>()
        .expect("rank 3")
        .indexed_iter_mut()
    {
        if !m[[b, t]] {
            *v = F::zero();
        }
    }
}
