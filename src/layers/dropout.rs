//! `Dropout`: inverted dropout in training, the identity at inference.

use super::{Dim, Layer, LayerConfig, Mask, Mode, StepWork, check_dy, ensure};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{MaskStream, StdRng};
use crate::layers::LayerState;
use crate::layers::call::{self};
use crate::param::{Module, Param};
use ndarray::{Array2, ArrayD, ArrayView2};
use ndarray_rand::rand::Rng;

/// Dropout, as `keras.layers.Dropout`: in training each value is zeroed with probability
/// `rate` and the others scaled by `1/(1 − rate)` (a fresh mask per call, from the layer's
/// seeded stream); at inference the identity. Masks pass through.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::DropoutConfig;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut m = Sequential::<f64>::new(&[1000]).push(DropoutConfig::new(0.5).seed(1))?;
/// let run = |m: &mut Sequential<f64>, x, mode| -> Result<_, rnnkit::Error> {
///     Ok(m.forward(Inputs::new(x).mode(mode))?.remove(0).output)
/// };
/// let x = rnnkit::ndarray::Array2::<f64>::ones((1, 1000)).into_dyn();
/// assert_eq!(run(&mut m, &x, Mode::Infer)?, x);
/// let y = run(&mut m, &x, Mode::Train)?;
/// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
/// assert!((y.mean().unwrap() - 1.0).abs() < 0.1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Dropout<F> {
    name: String,
    rate: f64,
    seed: Option<u64>,
    rng: MaskStream,
    /// The mask of the last Train forward (scaled keep values), or `None` at inference.
    cache: Option<ArrayD<F>>,
    trained: bool,
}

/// Configuration of a [`Dropout`] layer: `rate` in `[0, 1)`, an optional `seed`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutConfig {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fraction of values dropped in training.
    pub rate: f64,
    /// Seed of the masks (`None`: drawn from the model's seed).
    #[serde(default)]
    pub seed: Option<u64>,
}

impl DropoutConfig {
    /// `Dropout(rate)`.
    pub fn new(rate: f64) -> Self {
        DropoutConfig {
            name: None,
            rate,
            seed: None,
        }
    }
    /// Sets the seed of the masks.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

impl<F: Float> LayerConfig<F> for DropoutConfig {
    fn build(&self, _input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let name = self.name.clone().unwrap_or_else(|| "dropout".into());
        if !(0.0..1.0).contains(&self.rate) {
            return Err(Error::Config {
                layer: name,
                field: "rate",
                reason: format!("expected a rate in [0, 1), got {}", self.rate),
            });
        }
        let seed = self.seed.unwrap_or_else(|| rng.random());
        Ok(Box::new(Dropout::<F> {
            name,
            rate: self.rate,
            seed: self.seed,
            rng: MaskStream::new(seed),
            cache: None,
            trained: false,
        }))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "dropout"
    }
}

impl<F: Float> Layer<F> for Dropout<F> {
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        "Dropout"
    }
    fn box_clone(&self) -> Box<dyn Layer<F>> {
        let mut c = self.clone();
        c.cache = None;
        c.trained = false;
        Box::new(c)
    }
    fn spec(&self) -> Option<super::LayerSpec> {
        Some(super::LayerSpec::Dropout(DropoutConfig {
            name: Some(self.name.clone()),
            rate: self.rate,
            seed: self.seed,
        }))
    }
    fn describe(&self) -> String {
        format!("rate={}", self.rate)
    }
    call::layer_call!(F, state);
}

impl<F: Float> call::Parts<F> for Dropout<F> {
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        Ok(input.to_vec())
    }
    fn forward_x(&mut self, x: &ArrayD<F>, _mask: Option<&Mask>, mode: Mode) -> Result<ArrayD<F>> {
        self.trained = false;
        self.cache = None;
        if mode == Mode::Train && self.rate > 0.0 {
            let keep = F::c(1.0 / (1.0 - self.rate));
            let rng = &mut self.rng.current();
            self.rng.advance();
            let m = x.mapv(|_| {
                if rng.random::<f64>() < self.rate {
                    F::zero()
                } else {
                    keep
                }
            });
            let y = x * &m;
            self.cache = Some(m);
            self.trained = true;
            return Ok(y);
        }
        self.trained = mode == Mode::Train;
        Ok(x.clone())
    }
    fn infer_x(&self, x: &ArrayD<F>, _mask: Option<&Mask>) -> Result<ArrayD<F>> {
        Ok(x.clone())
    }
    fn backward_x(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        if !self.trained {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        }
        match &self.cache {
            Some(m) => {
                check_dy(&self.name, dy, m.shape())?;
                Ok(dy * m)
            }
            None => Ok(dy.clone()),
        }
    }
}

impl<F: Float> LayerState<F> for Dropout<F> {
    fn streams(&self) -> bool {
        true
    }
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
    fn rng_state(&self) -> Vec<u64> {
        self.rng.state().to_vec()
    }
    fn set_rng_state(&mut self, state: &[u64]) -> Result<()> {
        self.rng.set_state(&self.name, state)
    }
}

impl<F: Float> Module<F> for Dropout<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, _f: &mut dyn FnMut(&str, &Param<F>)) {}
    fn visit_params_mut(&mut self, _f: &mut dyn FnMut(&str, &mut Param<F>)) {}
}
