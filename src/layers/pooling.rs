//! Weightless sequence layers: `GlobalAveragePooling1D` (mask-aware mean over time) and
//! `RepeatVector` (one vector at every step).

use super::{Dim, Layer, LayerConfig, Mask, Mode, check_dy, check_seq, positive, wrong_input};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::layers::call::{self};
use crate::param::{Module, Param};
use ndarray::{Array2, Array3, ArrayD, Axis, Ix2};

/// Mean over the time axis, numerically equal to `keras.layers.GlobalAveragePooling1D`:
/// `[batch, steps, F]` → `[batch, F]`. With a mask, the mean over the real steps only
/// (`Σ_t m·x / Σ_t m`); the output carries no mask. A row whose steps are all masked
/// pools to 0 with a zero gradient (Keras's 0/0 would make it NaN).
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::GlobalAveragePooling1DConfig;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let m = Sequential::<f64>::new(&[3, 1]).push(GlobalAveragePooling1DConfig::new())?;
/// let x = rnnkit::ndarray::array![[[1.0], [2.0], [6.0]]].into_dyn();
/// let mask = mask_from_lengths(&[2], 3)?;
/// assert_eq!(m.infer(Inputs::new(&x).mask(Some(&mask)))?[0].output, rnnkit::ndarray::array![[1.5]].into_dyn());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GlobalAveragePooling1D {
    name: String,
    /// The weights of each step in the last Train forward (`m / Σ m`), `[batch, steps]`.
    cache: Option<Array2<f64>>,
}

/// Configuration of a [`GlobalAveragePooling1D`] layer (name only).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalAveragePooling1DConfig {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl GlobalAveragePooling1DConfig {
    /// The layer with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

impl<F: Float> LayerConfig<F> for GlobalAveragePooling1DConfig {
    fn build(&self, input: &[Dim], _rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let layer = GlobalAveragePooling1D {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| "global_average_pooling1d".into()),
            cache: None,
        };
        call::Parts::<F>::shape_x(&layer, input)?;
        Ok(Box::new(layer))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "global_average_pooling1d"
    }
}

impl GlobalAveragePooling1D {
    /// The weight of each step, `[batch, steps]`: `m / Σ m` (`1 / T` without a mask); a row
    /// with every step masked has weight 0 everywhere (its output is 0, its gradient 0,
    /// where Keras divides 0 by 0).
    fn weights<F: Float>(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<Array2<f64>> {
        let (b, t, _) = check_seq(&self.name, x, x.shape().get(2).copied().unwrap_or(0))?.dim();
        super::check_mask(&self.name, mask, b, t)?;
        let mut w = Array2::<f64>::ones((b, t));
        if let Some(m) = mask {
            w.zip_mut_with(m, |w, &keep| *w = if keep { 1.0 } else { 0.0 });
        }
        for mut row in w.rows_mut() {
            let n = row.sum();
            if n > 0.0 {
                row.mapv_inplace(|v| v / n);
            }
        }
        Ok(w)
    }

    fn pool<F: Float>(x: &ArrayD<F>, w: &Array2<f64>) -> ArrayD<F> {
        let x3 = x
            .view()
            .into_dimensionality::<ndarray::Ix3>()
            .expect("checked");
        let (b, _, f) = x3.dim();
        let mut y = Array2::<F>::zeros((b, f));
        for (bi, mut yr) in y.rows_mut().into_iter().enumerate() {
            // Masked steps are dropped (Keras multiplies them by 0, then sums).
            let mut sum = ndarray::Array1::<F>::zeros(f);
            let mut n = 0.0;
            for (t, xt) in x3.index_axis(Axis(0), bi).rows().into_iter().enumerate() {
                if w[[bi, t]] != 0.0 {
                    sum += &xt;
                    n += 1.0;
                }
            }
            if n > 0.0 {
                yr.assign(&sum.mapv(|v| v / F::c(n)));
            }
        }
        y.into_dyn()
    }
}

impl<F: Float> Layer<F> for GlobalAveragePooling1D {
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        "GlobalAveragePooling1D"
    }
    fn box_clone(&self) -> Box<dyn Layer<F>> {
        let mut c = self.clone();
        c.cache = None;
        Box::new(c)
    }
    fn spec(&self) -> Option<super::LayerSpec> {
        Some(super::LayerSpec::GlobalAveragePooling1D(
            GlobalAveragePooling1DConfig {
                name: Some(self.name.clone()),
            },
        ))
    }
    call::layer_call!(F);
}

impl<F: Float> call::Parts<F> for GlobalAveragePooling1D {
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        match input {
            [_, f] => Ok(vec![*f]),
            _ => Err(wrong_input(
                &self.name,
                "pooling over time needs [batch, steps, features]",
                input,
            )),
        }
    }
    fn forward_x(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<ArrayD<F>> {
        self.cache = None;
        let w = self.weights(x, mask)?;
        let y = Self::pool(x, &w);
        if mode == Mode::Train {
            self.cache = Some(w);
        }
        Ok(y)
    }
    fn infer_x(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<ArrayD<F>> {
        Ok(Self::pool(x, &self.weights(x, mask)?))
    }
    fn mask_x(&self, _x: &ArrayD<F>, _mask: Option<&Mask>) -> Option<Mask> {
        None
    }
    fn backward_x(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        let Some(w) = &self.cache else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        let (b, t) = w.dim();
        let f = dy.shape().get(1).copied().unwrap_or(0);
        check_dy(&self.name, dy, &[b, f])?;
        let dy2 = dy.view().into_dimensionality::<Ix2>().expect("checked");
        let dx = Array3::from_shape_fn((b, t, f), |(bi, ti, fi)| dy2[[bi, fi]] * F::c(w[[bi, ti]]));
        Ok(dx.into_dyn())
    }
}

impl<F: Float> Module<F> for GlobalAveragePooling1D {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param<F>)) {}
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param<F>)) {}
}
/// Repeats a vector at every step, numerically equal to `keras.layers.RepeatVector`:
/// `[batch, F]` → `[batch, n, F]` (an encoder's summary as every decoder input).
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::RepeatVectorConfig;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let m = Sequential::<f64>::new(&[2]).push(RepeatVectorConfig::new(3))?;
/// let y = m.predict(Inputs::new(&rnnkit::ndarray::array![[1.0, 2.0]].into_dyn()), 32)?.remove(0);
/// assert_eq!(y, rnnkit::ndarray::array![[[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]].into_dyn());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RepeatVector {
    name: String,
    n: usize,
    trained: bool,
}

/// Configuration of a [`RepeatVector`] layer: `n`, the number of steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatVectorConfig {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Steps to repeat the vector over.
    pub n: usize,
}

impl RepeatVectorConfig {
    /// `RepeatVector(n)`.
    pub fn new(n: usize) -> Self {
        RepeatVectorConfig { name: None, n }
    }
    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

impl<F: Float> LayerConfig<F> for RepeatVectorConfig {
    fn build(&self, input: &[Dim], _rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let name = self.name.clone().unwrap_or_else(|| "repeat_vector".into());
        positive(&name, "n", self.n)?;
        let f = match input {
            [Some(f)] => *f,
            _ => 1,
        };
        if self
            .n
            .checked_mul(f)
            .is_none_or(|s| s > super::MAX_WEIGHT_LEN)
        {
            return Err(Error::Config {
                layer: name,
                field: "n",
                reason: format!(
                    "{} steps of {f} features are more than the {} scalars one sample's output \
                     may hold",
                    self.n,
                    super::MAX_WEIGHT_LEN
                ),
            });
        }
        let layer = RepeatVector {
            name,
            n: self.n,
            trained: false,
        };
        call::Parts::<F>::shape_x(&layer, input)?;
        Ok(Box::new(layer))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "repeat_vector"
    }
}

impl<F: Float> Layer<F> for RepeatVector {
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        "RepeatVector"
    }
    fn box_clone(&self) -> Box<dyn Layer<F>> {
        let mut c = self.clone();
        c.trained = false;
        Box::new(c)
    }
    fn spec(&self) -> Option<super::LayerSpec> {
        Some(super::LayerSpec::RepeatVector(RepeatVectorConfig {
            name: Some(self.name.clone()),
            n: self.n,
        }))
    }
    fn describe(&self) -> String {
        format!("n={}", self.n)
    }
    call::layer_call!(F);
}

impl<F: Float> call::Parts<F> for RepeatVector {
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        match input {
            [f] => Ok(vec![Some(self.n), *f]),
            _ => Err(wrong_input(
                &self.name,
                "RepeatVector needs [batch, features]",
                input,
            )),
        }
    }
    fn forward_x(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<ArrayD<F>> {
        self.trained = false;
        let y = call::Parts::<F>::infer_x(self, x, mask)?;
        self.trained = mode == Mode::Train;
        Ok(y)
    }
    fn infer_x(&self, x: &ArrayD<F>, _mask: Option<&Mask>) -> Result<ArrayD<F>> {
        let x2 = x
            .view()
            .into_dimensionality::<Ix2>()
            .map_err(|_| Error::Rank {
                layer: self.name.clone(),
                expected: "2".into(),
                layout: "[batch, features]",
                got: x.ndim(),
                shape: x.shape().to_vec(),
            })?;
        let (b, f) = x2.dim();
        super::check_output_size(&self.name, &[b, self.n, f])?;
        Ok(Array3::from_shape_fn((b, self.n, f), |(bi, _, fi)| x2[[bi, fi]]).into_dyn())
    }
    fn mask_x(&self, _x: &ArrayD<F>, _mask: Option<&Mask>) -> Option<Mask> {
        None
    }
    /// The gradient of a repeated vector is the sum over the steps.
    fn backward_x(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        if !self.trained || dy.ndim() != 3 {
            return Err(if self.trained {
                Error::Shape {
                    layer: self.name.clone(),
                    what: "dL/dy",
                    expected: format!("[batch, {}, features]", self.n),
                    got: dy.shape().to_vec(),
                }
            } else {
                Error::NoCache {
                    layer: self.name.clone(),
                }
            });
        }
        let (b, f) = (dy.shape()[0], dy.shape()[2]);
        check_dy(&self.name, dy, &[b, self.n, f])?;
        Ok(dy.sum_axis(Axis(1)))
    }
}

impl<F: Float> Module<F> for RepeatVector {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param<F>)) {}
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param<F>)) {}
}
