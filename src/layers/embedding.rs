//! `Embedding`: integer token ids to learnt vectors, with Keras's `mask_zero`.

use super::{Dim, Layer, LayerConfig, Mask, Mode, StepWork, check_dy, ensure, positive};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::layers::LayerState;
use crate::layers::call::{self};
use crate::param::{Module, Param};
use ndarray::{Array2, ArrayD, ArrayView2, Axis, IxDyn};
use ndarray_rand::rand::Rng;

/// What an Embedding takes, for shape errors.
const READS: &str = "an Embedding reads token ids [batch, steps]";

/// Turns token ids into vectors, numerically equal to `keras.layers.Embedding`: row `id` of
/// the `embeddings` matrix for each id. Ids are given as floats holding whole numbers in
/// `0..input_dim` (so they travel in the model's arrays); anything else is a typed error
/// naming the id. With `mask_zero`, id 0 is padding: the output carries the mask `id ≠ 0`
/// to the layers after it (a recurrent layer then skips those steps), as in Keras.
///
/// # Shapes
/// `[batch, steps]` → `[batch, steps, output_dim]`. Weights: embeddings
/// `[input_dim, output_dim]`, initialised `U(−0.05, 0.05)` (Keras's `"uniform"`).
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::EmbeddingConfig;
/// # fn main() -> Result<(), rnnkit::Error> {
/// // A text classifier over token ids (0 = padding).
/// let model = Sequential::<f32>::with_input_shape(vec![None])
///     .push(EmbeddingConfig::new(100, 8).mask_zero(true))?
///     .push(LstmConfig::new(16))?
///     .push(DenseConfig::new(1).activation(Activation::Sigmoid))?;
/// let ids = rnnkit::ndarray::array![[5.0f32, 17.0, 3.0, 0.0, 0.0], [42.0, 9.0, 0.0, 0.0, 0.0]];
/// let p = model.predict(Inputs::new(&ids.into_dyn()), 32)?.remove(0); // [2, 1]
/// assert_eq!(p.shape(), &[2, 1]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Embedding<F: Float> {
    name: String,
    input_dim: usize,
    output_dim: usize,
    mask_zero: bool,
    embeddings: Param<F>,
    /// The ids of the last Train forward, as indices.
    cache: Option<(Vec<usize>, Vec<usize>)>,
}

/// Configuration of an [`Embedding`] layer.
///
/// | option | default |
/// |---|---|
/// | `input_dim` | (required) size of the vocabulary: ids are `0..input_dim` |
/// | `output_dim` | (required) length of each vector |
/// | `mask_zero` | `false`: id 0 is padding, masked for the layers after |
/// | `name` | `embedding` |
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// Layer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Vocabulary size.
    pub input_dim: usize,
    /// Vector length.
    pub output_dim: usize,
    /// Treat id 0 as padding and mask it.
    #[serde(default)]
    pub mask_zero: bool,
}

impl EmbeddingConfig {
    /// An `Embedding(input_dim, output_dim)` with Keras's defaults.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        EmbeddingConfig {
            name: None,
            input_dim,
            output_dim,
            mask_zero: false,
        }
    }
    /// Sets `mask_zero`.
    pub fn mask_zero(mut self, v: bool) -> Self {
        self.mask_zero = v;
        self
    }
    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Builds the typed layer.
    ///
    /// # Errors
    /// [`Error::Config`] for a zero `input_dim` or `output_dim`, or a table too large to
    /// allocate.
    pub fn build<F: Float>(&self, rng: &mut StdRng) -> Result<Embedding<F>> {
        let name = self.name.clone().unwrap_or_else(|| "embedding".into());
        positive(&name, "input_dim", self.input_dim)?;
        positive(&name, "output_dim", self.output_dim)?;
        super::check_weight_size(&name, "embeddings", &[self.input_dim, self.output_dim])?;
        let table = ArrayD::from_shape_simple_fn(IxDyn(&[self.input_dim, self.output_dim]), || {
            F::c(rng.random_range(-0.05..0.05))
        });
        Ok(Embedding {
            name,
            input_dim: self.input_dim,
            output_dim: self.output_dim,
            mask_zero: self.mask_zero,
            embeddings: Param::new(table),
            cache: None,
        })
    }
}

impl<F: Float> LayerConfig<F> for EmbeddingConfig {
    fn build(&self, input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        if input.len() != 1 {
            let name = self.name.clone().unwrap_or_else(|| "embedding".into());
            return Err(super::wrong_input(&name, READS, input));
        }
        Ok(Box::new(EmbeddingConfig::build::<F>(self, rng)?))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "embedding"
    }
}

impl<F: Float> Embedding<F> {
    /// The ids of `x` `[batch, steps]` as row indices, checked.
    fn ids(&self, x: &ArrayD<F>) -> Result<(Vec<usize>, Vec<usize>)> {
        if x.ndim() != 2 {
            return Err(Error::Shape {
                layer: self.name.clone(),
                what: "token ids",
                expected: "[batch, steps]".into(),
                got: x.shape().to_vec(),
            });
        }
        if x.is_empty() {
            return Err(super::empty(&self.name, "input", x.shape()));
        }
        let ids = x
            .iter()
            .enumerate()
            .map(|(i, v)| self.id(*v, i))
            .collect::<Result<Vec<_>>>()?;
        Ok((ids, x.shape().to_vec()))
    }

    /// One id, checked: a whole number in `0..input_dim`.
    fn id(&self, v: F, at: usize) -> Result<usize> {
        let f = v.to_f64().unwrap_or(f64::NAN);
        if f.fract() == 0.0 && f >= 0.0 && f < self.input_dim as f64 {
            Ok(f as usize)
        } else {
            Err(Error::Data(format!(
                "{}: token id {f} at flat index {at} is not a whole number in 0..{} \
                 (input_dim)",
                self.name, self.input_dim
            )))
        }
    }

    /// Rows of the table for `ids`, shaped `shape + [output_dim]`.
    fn lookup(&self, ids: &[usize], shape: &[usize]) -> ArrayD<F> {
        let table = self.embeddings.v2();
        let mut out = Array2::<F>::zeros((ids.len(), self.output_dim));
        for (mut row, &id) in out.rows_mut().into_iter().zip(ids) {
            row.assign(&table.row(id));
        }
        let mut dims = shape.to_vec();
        dims.push(self.output_dim);
        out.into_shape_with_order(IxDyn(&dims))
            .expect("sized from the ids")
    }
}

impl<F: Float> Layer<F> for Embedding<F> {
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        "Embedding"
    }
    fn box_clone(&self) -> Box<dyn Layer<F>> {
        let mut c = self.clone();
        c.cache = None;
        Box::new(c)
    }
    fn spec(&self) -> Option<super::LayerSpec> {
        Some(super::LayerSpec::Embedding(EmbeddingConfig {
            name: Some(self.name.clone()),
            input_dim: self.input_dim,
            output_dim: self.output_dim,
            mask_zero: self.mask_zero,
        }))
    }
    fn describe(&self) -> String {
        format!(
            "input_dim={}, output_dim={}, mask_zero={}",
            self.input_dim, self.output_dim, self.mask_zero
        )
    }
    call::layer_call!(F, state);
}

impl<F: Float> call::Parts<F> for Embedding<F> {
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        match input {
            [steps] => Ok(vec![*steps, Some(self.output_dim)]),
            _ => Err(super::wrong_input(&self.name, READS, input)),
        }
    }
    fn forward_x(&mut self, x: &ArrayD<F>, _mask: Option<&Mask>, mode: Mode) -> Result<ArrayD<F>> {
        self.cache = None;
        let (ids, shape) = self.ids(x)?;
        let y = self.lookup(&ids, &shape);
        if mode == Mode::Train {
            self.cache = Some((ids, shape));
        }
        Ok(y)
    }
    fn infer_x(&self, x: &ArrayD<F>, _mask: Option<&Mask>) -> Result<ArrayD<F>> {
        let (ids, shape) = self.ids(x)?;
        Ok(self.lookup(&ids, &shape))
    }
    fn mask_x(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Option<Mask> {
        if !self.mask_zero || x.ndim() != 2 {
            return mask.cloned();
        }
        x.view()
            .into_dimensionality::<ndarray::Ix2>()
            .ok()
            .map(|x| x.mapv(|v| v != F::zero()))
    }
    /// The gradient reaches the table rows of the ids; the ids themselves get a zero
    /// gradient (they are not differentiable).
    fn backward_x(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        let Some((ids, shape)) = &self.cache else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        let mut out_shape = shape.clone();
        out_shape.push(self.output_dim);
        check_dy(&self.name, dy, &out_shape)?;
        let dy2 = dy
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((ids.len(), self.output_dim))
            .expect("shape checked");
        let mut g = self.embeddings.g2();
        for (row, &id) in dy2.rows().into_iter().zip(ids) {
            let mut gr = g.row_mut(id);
            gr += &row;
        }
        Ok(ArrayD::zeros(IxDyn(shape)))
    }
}

impl<F: Float> LayerState<F> for Embedding<F> {
    fn streams(&self) -> bool {
        true
    }
    /// One streamed step: `x` `[batch, 1]` ids → `[batch, output_dim]`. With `mask_zero`
    /// the padding id 0 is refused: a masked step would have to carry the states of the
    /// layers after it, which one step cannot tell them (feed real tokens, or run whole
    /// padded sequences through `infer`).
    fn step(
        &self,
        x: ArrayView2<'_, F>,
        _states: &mut [Array2<F>],
        _work: &mut StepWork<F>,
        out: &mut Array2<F>,
    ) -> Result<()> {
        if x.ncols() != 1 {
            return Err(Error::Features {
                layer: self.name.clone(),
                expected: 1,
                got: x.ncols(),
            });
        }
        // Check every id before writing anything.
        for (i, &v) in x.iter().enumerate() {
            if self.id(v, i)? == 0 && self.mask_zero {
                return Err(Error::Mask {
                    layer: self.name.clone(),
                    reason: format!(
                        "row {i} feeds the padding id 0 to a stream; with mask_zero a padded \
                         step has no one-step form (run padded sequences through infer)"
                    ),
                });
            }
        }
        let table = self.embeddings.v2();
        let out = ensure(out, (x.nrows(), self.output_dim));
        for (mut row, &v) in out.axis_iter_mut(Axis(0)).zip(x.iter()) {
            let id = v.to_f64().map_or(0, |f| f as usize);
            row.assign(&table.row(id));
        }
        Ok(())
    }
}

impl<F: Float> Module<F> for Embedding<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        f("embeddings", &self.embeddings);
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        f("embeddings", &mut self.embeddings);
    }
}
