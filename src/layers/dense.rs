//! `Dense`: `y = act(x·kernel + bias)` on the last axis, 2-D or 3-D input.

use super::{Dim, Layer, LayerConfig, Mask, Mode, StepWork, check_dy, empty, ensure, positive};
use crate::activation::Activation;
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::{Init, StdRng};
use crate::layers::LayerState;
use crate::layers::call::{self};
use crate::linalg::few_rows_mm;
use crate::linalg::wide::thin_mm;
use crate::param::{Module, Param};
use ndarray::{Array2, ArrayD, ArrayView2, Axis, IxDyn, Zip};

/// Densely connected layer, numerically equal to `keras.layers.Dense`.
///
/// `y = act(x·kernel + bias)` over the last axis; a `[batch, steps, F]` input uses the same
/// weights at every step (one matrix product over all `batch·steps` rows). Softmax is over
/// the last axis. Masks pass through unchanged.
///
/// # Shapes
/// `[batch, F]` → `[batch, units]`; `[batch, steps, F]` → `[batch, steps, units]`.
/// Weights: kernel `[F, units]`, bias `[units]`.
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut d = DenseConfig::new(2).activation(Activation::Softmax).build::<f64>(3, &mut seeded_rng(0))?;
/// let x = rnnkit::ndarray::Array2::<f64>::ones((4, 3)).into_dyn();
/// let y = d.forward(Inputs::new(&x))?.output;
/// assert!((y.sum() - 4.0).abs() < 1e-12); // each row sums to 1
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Dense<F: Float> {
    name: String,
    units: usize,
    input_dim: usize,
    activation: Activation,
    kernel: Param<F>,
    bias: Option<Param<F>>,
    cache: Option<DenseCache<F>>,
    /// The last forward's logits (softmax/sigmoid only), kept in either mode: evaluation
    /// computes cross-entropy from them as training does, without training mode's dropout.
    logits: Option<Array2<F>>,
    out_shape: Vec<usize>,
}

/// What the last Train forward keeps: input rows `[N, F]` and activated output rows
/// `[N, units]`.
type DenseCache<F> = (Array2<F>, Array2<F>);

/// Configuration of a [`Dense`] layer.
///
/// | option | default |
/// |---|---|
/// | `activation` | `linear` |
/// | `use_bias` | `true` |
/// | `name` | `dense` (+ `_1`, `_2` in a model) |
///
/// Serialises to Keras's config keys (`{"units": 1, "activation": "linear", "use_bias": true}`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseConfig {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Output features.
    pub units: usize,
    /// Activation.
    #[serde(default)]
    pub activation: Activation,
    /// Whether the layer has a bias.
    #[serde(default = "crate::layers::yes")]
    pub use_bias: bool,
}

impl DenseConfig {
    /// A `Dense(units)` with Keras defaults (linear, with bias).
    pub fn new(units: usize) -> Self {
        DenseConfig {
            units,
            activation: Activation::Linear,
            use_bias: true,
            name: None,
        }
    }
    /// Sets the activation.
    pub fn activation(mut self, a: Activation) -> Self {
        self.activation = a;
        self
    }
    /// Sets `use_bias`.
    pub fn use_bias(mut self, v: bool) -> Self {
        self.use_bias = v;
        self
    }
    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Builds a typed layer for `input_dim` features (glorot_uniform kernel, zero bias).
    ///
    /// # Errors
    /// [`Error::Config`] for zero units or zero input features.
    pub fn build<F: Float>(&self, input_dim: usize, rng: &mut StdRng) -> Result<Dense<F>> {
        let name = self.name.clone().unwrap_or_else(|| "dense".into());
        positive(&name, "units", self.units)?;
        positive(&name, "input_dim", input_dim)?;
        super::check_weight_size(&name, "kernel", &[input_dim, self.units])?;
        let kernel = Init::GlorotUniform.sample::<F>(&[input_dim, self.units], rng);
        Ok(Dense {
            name,
            units: self.units,
            input_dim,
            activation: self.activation,
            kernel: Param::new(kernel),
            bias: self
                .use_bias
                .then(|| Param::new(ArrayD::zeros(IxDyn(&[self.units])))),
            cache: None,
            logits: None,
            out_shape: Vec::new(),
        })
    }
}

impl<F: Float> LayerConfig<F> for DenseConfig {
    fn build(&self, input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let name = self.name.clone().unwrap_or_else(|| "dense".into());
        match input.last() {
            Some(Some(f)) if input.len() <= 2 => {
                Ok(Box::new(DenseConfig::build::<F>(self, *f, rng)?))
            }
            _ => Err(super::wrong_input(
                &name,
                "Dense needs [batch, features] or [batch, steps, features] with known features",
                input,
            )),
        }
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "dense"
    }
}

impl<F: Float> Dense<F> {
    /// The activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// Pre-activation output `x·kernel + bias` for rows `[N, F]`.
    fn affine(&self, x2: &ArrayView2<'_, F>) -> Array2<F> {
        let mut z = Array2::<F>::zeros((x2.nrows(), self.units));
        thin_mm(x2, &self.kernel.v2(), F::zero(), &mut z.view_mut());
        if let Some(b) = &self.bias {
            z += &b.v1();
        }
        z
    }

    fn check_input<'a>(&self, x: &'a ArrayD<F>) -> Result<ArrayView2<'a, F>> {
        if x.ndim() != 2 && x.ndim() != 3 {
            return Err(Error::Rank {
                layer: self.name.clone(),
                expected: "2 or 3".into(),
                layout: "[batch, features] or [batch, steps, features]",
                got: x.ndim(),
                shape: x.shape().to_vec(),
            });
        }
        if let Some(i) = x.shape()[..x.ndim() - 1].iter().position(|&d| d == 0) {
            return Err(empty(
                &self.name,
                if i == 0 { "batch" } else { "steps" },
                x.shape(),
            ));
        }
        let f = x.shape()[x.ndim() - 1];
        if f != self.input_dim {
            return Err(Error::Features {
                layer: self.name.clone(),
                expected: self.input_dim,
                got: f,
            });
        }
        let n = x.len() / f;
        Ok(x.view().into_shape_with_order((n, f)).unwrap_or_else(|_| {
            unreachable!("standard-layout input required; callers pass owned arrays")
        }))
    }
}

/// What one forward computation gives: the input and output as rows, the logits when
/// they were asked for, and the output's shape.
struct Pass<F> {
    x: Array2<F>,
    y: Array2<F>,
    logits: Option<Array2<F>>,
    shape: Vec<usize>,
}

impl<F: Float> Dense<F> {
    /// The forward computation, changing nothing in the layer; `keep_logits` keeps the
    /// pre-activation output of a softmax or sigmoid layer (training needs it).
    fn pass(&self, x: &ArrayD<F>, mask: Option<&Mask>, keep_logits: bool) -> Result<Pass<F>> {
        let x = if x.is_standard_layout() {
            std::borrow::Cow::Borrowed(x)
        } else {
            std::borrow::Cow::Owned(x.as_standard_layout().to_owned())
        };
        let x2 = self.check_input(&x)?;
        super::check_seq_mask(&self.name, &x, mask)?;
        let mut y = self.affine(&x2);
        let keep_logits =
            keep_logits && matches!(self.activation, Activation::Softmax | Activation::Sigmoid);
        let logits = keep_logits.then(|| y.clone());
        self.activation.apply_rows(y.view_mut());
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank >= 2") = self.units;
        Ok(Pass {
            x: x2.to_owned(),
            y,
            logits,
            shape,
        })
    }
}

/// `[.., units]` gradient as rows `[n, units]`.
fn rows_of<F: Float>(d: &ArrayD<F>, n: usize, units: usize) -> Array2<F> {
    d.as_standard_layout()
        .into_owned()
        .into_shape_with_order((n, units))
        .expect("shape checked")
}

impl<F: Float> Dense<F> {
    /// Backward from the pre-activation gradient `dz` `[N, units]`.
    fn backward_dz(&mut self, dz: Array2<F>) -> Result<ArrayD<F>> {
        let Some((x2, _)) = &self.cache else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        thin_mm(&x2.t(), &dz.view(), F::one(), &mut self.kernel.g2());
        if let Some(b) = &mut self.bias {
            let mut g = b.g1();
            g += &dz.sum_axis(Axis(0));
        }
        let mut dx = Array2::<F>::zeros((x2.nrows(), self.input_dim));
        thin_mm(
            &dz.view(),
            &self.kernel.v2().t(),
            F::zero(),
            &mut dx.view_mut(),
        );
        let mut shape = self.out_shape.clone();
        *shape.last_mut().expect("rank >= 2") = self.input_dim;
        Ok(dx
            .into_shape_with_order(IxDyn(&shape))
            .expect("sized above"))
    }
}

impl<F: Float> Layer<F> for Dense<F> {
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        "Dense"
    }
    fn output_activation(&self) -> Activation {
        self.activation
    }
    fn box_clone(&self) -> Box<dyn Layer<F>> {
        let mut c = self.clone();
        c.cache = None;
        c.logits = None;
        Box::new(c)
    }
    fn spec(&self) -> Option<super::LayerSpec> {
        Some(super::LayerSpec::Dense(DenseConfig {
            name: Some(self.name.clone()),
            units: self.units,
            activation: self.activation,
            use_bias: self.bias.is_some(),
        }))
    }
    fn describe(&self) -> String {
        format!("units={}, activation={}", self.units, self.activation)
    }
    call::layer_call!(F, state);
}

impl<F: Float> call::Parts<F> for Dense<F> {
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        match input.last() {
            Some(Some(f)) if input.len() <= 2 && *f == self.input_dim => {
                let mut out = input.to_vec();
                *out.last_mut().expect("non-empty") = Some(self.units);
                Ok(out)
            }
            _ => Err(Error::Incompatible {
                layer: self.name.clone(),
                previous: "its input".into(),
                reason: format!(
                    "expected (None, {}) or (None, steps, {}), got {}",
                    self.input_dim,
                    self.input_dim,
                    super::format_shape(input)
                ),
            }),
        }
    }
    fn forward_x(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<ArrayD<F>> {
        self.cache = None;
        self.logits = None;
        let pass = self.pass(x, mask, true)?;
        self.out_shape = pass.shape.clone();
        let y = pass.y.clone().into_shape_with_order(IxDyn(&pass.shape));
        self.logits = pass.logits;
        if mode == Mode::Train {
            self.cache = Some((pass.x, pass.y));
        }
        Ok(y.expect("sized by pass"))
    }
    fn infer_x(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<ArrayD<F>> {
        let pass = self.pass(x, mask, false)?;
        Ok(pass
            .y
            .into_shape_with_order(IxDyn(&pass.shape))
            .expect("sized by pass"))
    }
    fn infer_x_logits(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
    ) -> Result<(ArrayD<F>, Option<ArrayD<F>>)> {
        let pass = self.pass(x, mask, true)?;
        let shape = IxDyn(&pass.shape);
        let logits = pass.logits.map(|z| {
            z.into_shape_with_order(shape.clone())
                .expect("sized by pass")
        });
        let y = pass.y.into_shape_with_order(shape).expect("sized by pass");
        Ok((y, logits))
    }
    fn backward_x(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        let Some((_, y2)) = &self.cache else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        check_dy(&self.name, dy, &self.out_shape)?;
        let mut dz = rows_of(dy, y2.nrows(), self.units);
        // dz = dy ⊙ act'(y); softmax: dz = y ⊙ (dy − Σ dy⊙y) per row.
        if self.activation == Activation::Softmax {
            for (mut d, y) in dz.axis_iter_mut(Axis(0)).zip(y2.axis_iter(Axis(0))) {
                let dot = d.dot(&y);
                Zip::from(&mut d)
                    .and(&y)
                    .for_each(|d, &y| *d = y * (*d - dot));
            }
        } else {
            let act = self.activation;
            Zip::from(&mut dz)
                .and(y2)
                .for_each(|d, &y| *d *= act.derivative_from_output(y));
        }
        self.backward_dz(dz)
    }
    fn logits_x(&self) -> Option<ArrayD<F>> {
        let z = self.logits.as_ref()?;
        Some(
            z.clone()
                .into_shape_with_order(IxDyn(&self.out_shape))
                .expect("sized at forward"),
        )
    }
    fn backward_x_logits(&mut self, dz: &ArrayD<F>) -> Result<ArrayD<F>> {
        let Some((_, y2)) = &self.cache else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        check_dy(&self.name, dz, &self.out_shape)?;
        let dz = rows_of(dz, y2.nrows(), self.units);
        self.backward_dz(dz)
    }
}

impl<F: Float> LayerState<F> for Dense<F> {
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
        let (b, f) = x.dim();
        if f != self.input_dim {
            return Err(Error::Features {
                layer: self.name.clone(),
                expected: self.input_dim,
                got: f,
            });
        }
        let out = ensure(out, (b, self.units));
        let bias = self.bias.as_ref().map(|p| {
            p.value()
                .view()
                .into_dimensionality::<ndarray::Ix1>()
                .expect("a bias is 1-D")
        });
        few_rows_mm(x, self.kernel.v2(), bias, out.view_mut());
        self.activation.apply_rows(out.view_mut());
        Ok(())
    }
}

impl<F: Float> Module<F> for Dense<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        f("kernel", &self.kernel);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        f("kernel", &mut self.kernel);
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
    }
}
