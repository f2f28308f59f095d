//! `Masking`: marks steps whose features all equal `mask_value` as padding.

use super::{Dim, Layer, LayerConfig, Mask, Mode, StepWork, check_dy, check_seq, ensure};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::layers::LayerState;
use crate::layers::call::{self};
use crate::param::{Module, Param};
use ndarray::{Array2, ArrayD, ArrayView2, Axis};

/// Masks padding steps, as `keras.layers.Masking`.
///
/// `mask[b, t] = any_f(x[b, t, f] != mask_value)`; the output is `x` with masked steps set
/// to 0, and the mask travels on to the next layers (and into the loss).
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::array;
/// let m = Masking::<f64>::new(0.0);
/// let x = array![[[1.0], [0.0]]].into_dyn();
/// assert_eq!(m.infer(Inputs::new(&x))?.mask.unwrap(), array![[true, false]]);
/// # Ok::<(), rnnkit::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Masking<F: Float> {
    name: String,
    mask_value: F,
    features: Option<usize>,
    cache: Option<(Mask, Vec<usize>)>,
}

impl<F: Float> Masking<F> {
    /// A masking layer for `mask_value` (Keras default 0.0).
    pub fn new(mask_value: F) -> Self {
        Masking {
            name: "masking".into(),
            mask_value,
            features: None,
            cache: None,
        }
    }

    /// The mask value.
    pub fn mask_value(&self) -> F {
        self.mask_value
    }

    fn mask_of(&self, x: &ArrayD<F>) -> Option<Mask> {
        if x.ndim() != 3 {
            return None;
        }
        let (b, t) = (x.shape()[0], x.shape()[1]);
        Some(Array2::from_shape_fn((b, t), |(i, j)| {
            x.index_axis(Axis(0), i)
                .index_axis(Axis(0), j)
                .iter()
                .any(|&v| v != self.mask_value)
        }))
    }
}

/// Configuration of a [`Masking`] layer: `MaskingConfig::new(0.0)`.
///
/// Serialises to Keras's config keys (`{"mask_value": 0.0}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The padding value.
    #[serde(default)]
    pub mask_value: f64,
}

impl MaskingConfig {
    /// Masks steps whose features all equal `mask_value`.
    pub fn new(mask_value: f64) -> Self {
        MaskingConfig {
            mask_value,
            name: None,
        }
    }
}

impl<F: Float> LayerConfig<F> for MaskingConfig {
    fn build(&self, input: &[Dim], _rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let value = F::c(self.mask_value);
        if !value.is_finite() {
            // A NaN never equals itself (nothing would be masked), and model files are
            // JSON, which has no NaN or infinity.
            return Err(Error::Config {
                layer: self.name.clone().unwrap_or_else(|| "masking".into()),
                field: "mask_value",
                reason: format!("expected a finite number, got {}", self.mask_value),
            });
        }
        let mut m = Masking::new(value);
        match input {
            [_, Some(f)] => m.features = Some(*f),
            _ => {
                let name = self.name.clone().unwrap_or_else(|| "masking".into());
                return Err(super::wrong_input(
                    &name,
                    "Masking needs [batch, steps, features]",
                    input,
                ));
            }
        }
        if let Some(n) = &self.name {
            m.name = n.clone();
        }
        Ok(Box::new(m))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "masking"
    }
}

impl<F: Float> Masking<F> {
    /// The output and the combined mask, changing nothing in the layer.
    fn pass(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<(ArrayD<F>, Mask)> {
        let features = self
            .features
            .unwrap_or_else(|| x.shape().last().copied().unwrap_or(0));
        let xv = check_seq(&self.name, x, features)?;
        super::check_mask(&self.name, mask, xv.dim().0, xv.dim().1)?;
        let mut m = self.mask_of(x).expect("rank checked");
        if let Some(given) = mask {
            m.zip_mut_with(given, |a, &b| *a = *a && b);
        }
        let mut y = x.clone();
        for ((b, t), &keep) in m.indexed_iter() {
            if !keep {
                y.index_axis_mut(Axis(0), b)
                    .index_axis_mut(Axis(0), t)
                    .fill(F::zero());
            }
        }
        Ok((y, m))
    }
}

impl<F: Float> Layer<F> for Masking<F> {
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        "Masking"
    }
    fn box_clone(&self) -> Box<dyn Layer<F>> {
        let mut c = self.clone();
        c.cache = None;
        Box::new(c)
    }
    fn spec(&self) -> Option<super::LayerSpec> {
        Some(super::LayerSpec::Masking(MaskingConfig {
            name: Some(self.name.clone()),
            mask_value: self.mask_value.to_f64().unwrap_or(f64::NAN),
        }))
    }
    fn describe(&self) -> String {
        format!("mask_value={}", self.mask_value)
    }
    call::layer_call!(F, state);
}

impl<F: Float> call::Parts<F> for Masking<F> {
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        Ok(input.to_vec())
    }
    fn forward_x(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<ArrayD<F>> {
        self.cache = None;
        let (y, m) = self.pass(x, mask)?;
        if mode == Mode::Train {
            self.cache = Some((m, x.shape().to_vec()));
        }
        Ok(y)
    }
    fn infer_x(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<ArrayD<F>> {
        Ok(self.pass(x, mask)?.0)
    }
    fn mask_x(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Option<Mask> {
        let mut m = self.mask_of(x)?;
        if let Some(given) = mask.filter(|g| g.dim() == m.dim()) {
            m.zip_mut_with(given, |a, &b| *a = *a && b);
        }
        Some(m)
    }
    fn backward_x(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        let Some((m, shape)) = &self.cache else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        check_dy(&self.name, dy, shape)?;
        let mut dx = dy.clone();
        for ((b, t), &keep) in m.indexed_iter() {
            if !keep {
                dx.index_axis_mut(Axis(0), b)
                    .index_axis_mut(Axis(0), t)
                    .fill(F::zero());
            }
        }
        Ok(dx)
    }
}

impl<F: Float> LayerState<F> for Masking<F> {
    fn streams(&self) -> bool {
        true
    }
    /// Streaming passes the step through: a stream is fed its real steps only, so there
    /// is nothing to mask.
    fn step(
        &self,
        x: ArrayView2<'_, F>,
        _states: &mut [Array2<F>],
        _work: &mut StepWork<F>,
        out: &mut Array2<F>,
    ) -> Result<()> {
        ensure(out, x.dim()).assign(&x);
        Ok(())
    }
}

impl<F: Float> Module<F> for Masking<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param<F>)) {}
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param<F>)) {}
}
