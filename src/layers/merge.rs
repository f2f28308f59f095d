//! Keras's merge layers (`Concatenate`, `Add`, `Multiply`, `Average`), called on a list of
//! tensors in a graph model: values, masks and gradients.

use super::{Layer, LayerConfig, LayerSpec, Mode};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::layers::call::{self};
use crate::layers::{Dim, Mask, format_shape};
use crate::param::{Module, Param};
use ndarray::{ArrayD, ArrayView2, Axis, Slice, concatenate};

/// Which merge a [`MergeLayer`] computes, with Keras's names and mask rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Merge {
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
    pub(crate) fn default_name(&self) -> &'static str {
        match self {
            Merge::Concatenate { .. } => "concatenate",
            Merge::Add => "add",
            Merge::Multiply => "multiply",
            Merge::Average => "average",
        }
    }

    /// Keras's class name.
    pub(crate) fn type_name(&self) -> &'static str {
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
        if xs.is_empty() || xs.iter().any(|x| x.ndim() < 2) {
            return Err(Error::Incompatible {
                layer: name.to_string(),
                previous: "its inputs".into(),
                reason: format!(
                    "a merge takes one or more [batch, ...] tensors, got shapes {:?}",
                    xs.iter().map(|x| x.shape().to_vec()).collect::<Vec<_>>()
                ),
            });
        }
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

    /// The mask the merged output carries (Keras's `compute_mask` of each merge layer).
    pub(crate) fn output_mask(
        &self,
        xs: &[&ArrayD<impl Float>],
        masks: &[Option<&Mask>],
    ) -> Option<Mask> {
        let rank = xs.first()?.ndim();
        let all_masked = masks.iter().all(|m| m.is_some());
        let or_mask = || -> Option<Mask> {
            let mut it = masks.iter().flatten();
            let first = (*it.next()?).clone();
            Some(it.fold(first, |acc, m| &acc | *m))
        };
        match self {
            Merge::Concatenate { .. } => {
                let a = self.axis("concatenate", rank).ok()?;
                if rank != 3 || masks.iter().all(|m| m.is_none()) {
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
                }
            }
            _ if all_masked => or_mask(),
            _ => None,
        }
    }

    /// The merged value.
    pub(crate) fn forward<F: Float>(
        &self,
        name: &str,
        xs: &[&ArrayD<F>],
        masks: &[Option<&Mask>],
    ) -> Result<ArrayD<F>> {
        self.check(name, xs)?;
        let n = F::from(xs.len()).expect("small count");
        Ok(match self {
            Merge::Concatenate { .. } => {
                let a = self.axis(name, xs[0].ndim())?;
                let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
                concatenate(Axis(a), &views).map_err(|e| Error::Incompatible {
                    layer: name.to_string(),
                    previous: "its inputs".into(),
                    reason: e.to_string(),
                })?
            }
            Merge::Add | Merge::Average => {
                let mut y = xs[0].clone();
                for x in &xs[1..] {
                    y += *x;
                }
                if *self == Merge::Average {
                    y.mapv_inplace(|v| v / n);
                }
                y
            }
            Merge::Multiply => {
                let ws = mask_ones(xs, masks);
                let mut y = ws[0].clone();
                for w in &ws[1..] {
                    y *= w;
                }
                if masks.iter().all(|m| m.is_some())
                    && let Some(m) = self.output_mask(xs, masks)
                {
                    zero_where_masked(&mut y, &m);
                }
                y
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

/// A call's inputs and their masks.
type Cached<F> = (Vec<ArrayD<F>>, Vec<Option<Mask>>);

/// A merge layer (Keras's `Concatenate`, `Add`, `Multiply`, `Average`): a [`Layer`] called
/// on a list of tensors, built by [`ConcatenateConfig`], [`AddConfig`], [`MultiplyConfig`]
/// or [`AverageConfig`] (`g.apply_list(&AddConfig::new(), &[a, b])`).
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::{LayerConfig, layers::MultiplyConfig};
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut m = LayerConfig::<f64>::build(&MultiplyConfig::new(), &[Some(2)], &mut seeded_rng(0))?;
/// let (a, b) = (rnnkit::ndarray::array![[2.0, 3.0]].into_dyn(), rnnkit::ndarray::array![[4.0, 5.0]].into_dyn());
/// assert_eq!(m.forward(Inputs::list(&[&a, &b]))?.output, rnnkit::ndarray::array![[8.0, 15.0]].into_dyn());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MergeLayer<F: Float> {
    name: String,
    kind: Merge,
    /// The inputs and their masks of the last training pass.
    cache: Option<Cached<F>>,
}

impl<F: Float> Layer<F> for MergeLayer<F> {
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        self.kind.type_name()
    }
    fn box_clone(&self) -> Box<dyn Layer<F>> {
        Box::new(self.clone())
    }
    fn spec(&self) -> Option<LayerSpec> {
        let name = Some(self.name.clone());
        Some(match self.kind {
            Merge::Concatenate { axis } => LayerSpec::Concatenate(ConcatenateConfig { name, axis }),
            Merge::Add => LayerSpec::Add(AddConfig { name }),
            Merge::Multiply => LayerSpec::Multiply(MultiplyConfig { name }),
            Merge::Average => LayerSpec::Average(AverageConfig { name }),
        })
    }
    call::layer_call!(F);
}

impl<F: Float> call::Parts<F> for MergeLayer<F> {
    fn takes_list(&self) -> bool {
        true
    }
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        self.shape_xs(&[input.to_vec()])
    }
    fn shape_xs(&self, inputs: &[Vec<Dim>]) -> Result<Vec<Dim>> {
        self.kind.output_shape(&self.name, inputs)
    }
    fn forward_x(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<ArrayD<F>> {
        self.forward_xs(&[x], &[mask], mode)
    }
    fn forward_xs(
        &mut self,
        xs: &[&ArrayD<F>],
        masks: &[Option<&Mask>],
        mode: Mode,
    ) -> Result<ArrayD<F>> {
        self.cache = None;
        let y = self.infer_xs(xs, masks)?;
        if mode == Mode::Train {
            self.cache = Some((
                xs.iter().map(|x| (*x).clone()).collect(),
                masks.iter().map(|m| m.cloned()).collect(),
            ));
        }
        Ok(y)
    }
    fn infer_xs(&self, xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Result<ArrayD<F>> {
        let masks: Vec<Option<&Mask>> = (0..xs.len())
            .map(|i| masks.get(i).copied().flatten())
            .collect();
        self.kind.forward(&self.name, xs, &masks)
    }
    fn mask_xs(&self, xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Option<Mask> {
        let masks: Vec<Option<&Mask>> = (0..xs.len())
            .map(|i| masks.get(i).copied().flatten())
            .collect();
        self.kind.output_mask(xs, &masks)
    }
    fn backward_x(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        Ok(self.backward_xs(dy)?.remove(0))
    }
    fn backward_xs(&mut self, dy: &ArrayD<F>) -> Result<Vec<ArrayD<F>>> {
        let Some((xs, masks)) = &self.cache else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        let mut out = xs[0].shape().to_vec();
        if let Merge::Concatenate { .. } = self.kind {
            let a = self.kind.axis(&self.name, out.len())?;
            out[a] = xs.iter().map(|x| x.shape()[a]).sum();
        }
        super::check_dy(&self.name, dy, &out)?;
        self.kind.backward(&self.name, xs, masks, dy)
    }
}

impl<F: Float> Module<F> for MergeLayer<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param<F>)) {}
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param<F>)) {}
}
/// Builds the merge layer of `kind`.
fn build_merge<F: Float>(kind: Merge, name: &Option<String>) -> Box<dyn Layer<F>> {
    Box::new(MergeLayer::<F> {
        name: name.clone().unwrap_or_else(|| kind.default_name().into()),
        kind,
        cache: None,
    })
}

fn minus_one() -> isize {
    -1
}

/// Configuration of a `Concatenate` layer (Keras's `keras.layers.Concatenate(axis)`).
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::layers::ConcatenateConfig;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut g = Graph::<f64>::new(0);
/// let a = g.input("a", &[Some(5), Some(2)])?;
/// let b = g.input("b", &[Some(3), Some(2)])?;
/// let ab = g.apply_list(&ConcatenateConfig::new().axis(1), &[a, b])?;
/// assert_eq!(g.shape(ab)?, vec![Some(8), Some(2)]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcatenateConfig {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The axis, batch counted as 0 (Keras default −1, the features).
    #[serde(default = "minus_one")]
    pub axis: isize,
}

impl Default for ConcatenateConfig {
    fn default() -> Self {
        ConcatenateConfig {
            name: None,
            axis: -1,
        }
    }
}

impl ConcatenateConfig {
    /// Keras's default: the last axis.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the axis (batch counted as 0; negative from the end).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }
    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

impl<F: Float> LayerConfig<F> for ConcatenateConfig {
    fn build(&self, _input: &[Dim], _rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        Ok(build_merge(
            Merge::Concatenate { axis: self.axis },
            &self.name,
        ))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "concatenate"
    }
}

/// Defines the configuration of a merge layer without options.
macro_rules! merge_config {
    ($(#[$doc:meta])* $name:ident, $kind:expr, $default:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Layer name.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub name: Option<String>,
        }

        impl $name {
            /// The layer (it has no options).
            pub fn new() -> Self {
                Self::default()
            }
            /// Sets the layer name.
            pub fn name(mut self, name: &str) -> Self {
                self.name = Some(name.to_string());
                self
            }
        }

        impl<F: Float> LayerConfig<F> for $name {
            fn build(&self, _input: &[Dim], _rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
                Ok(build_merge($kind, &self.name))
            }
            fn name(&self) -> Option<&str> {
                self.name.as_deref()
            }
            fn default_name(&self) -> &'static str {
                $default
            }
        }
    };
}

merge_config!(
    /// Configuration of an `Add` layer (Keras's `keras.layers.Add`): `Σ x_i`.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::layers::AddConfig;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let mut g = Graph::<f64>::new(0);
    /// let a = g.input("a", &[Some(2)])?;
    /// let sum = g.apply_list(&AddConfig::new(), &[a, a])?;
    /// let m = g.build(&[a], &[sum])?;
    /// let y = m.infer(Inputs::new(&rnnkit::ndarray::array![[1.0, 2.0]].into_dyn()))?;
    /// assert_eq!(y[0].output, rnnkit::ndarray::array![[2.0, 4.0]].into_dyn());
    /// # Ok(()) }
    /// ```
    AddConfig,
    Merge::Add,
    "add"
);
merge_config!(
    /// Configuration of a `Multiply` layer (Keras's `keras.layers.Multiply`): `Π x_i`,
    /// masked entries of a masked input taken as 1.
    ///
    /// ```
    /// use rnnkit::layers::MultiplyConfig;
    /// assert_eq!(MultiplyConfig::new().name("gate").name.as_deref(), Some("gate"));
    /// ```
    MultiplyConfig,
    Merge::Multiply,
    "multiply"
);
merge_config!(
    /// Configuration of an `Average` layer (Keras's `keras.layers.Average`): `(Σ x_i)/n`.
    ///
    /// ```
    /// use rnnkit::layers::AverageConfig;
    /// assert_eq!(AverageConfig::new().name, None);
    /// ```
    AverageConfig,
    Merge::Average,
    "average"
);
