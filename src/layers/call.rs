//! The one layer call: what goes in ([`Inputs`]), what comes out ([`Outputs`]), and the
//! gradients that flow back ([`OutputGrads`] in, [`InputGrads`] out), as Keras's
//! `layer(inputs, mask=, training=, initial_state=)` carries them in its arguments.

use super::{Dim, Layer, Mask, Mode};
use crate::error::{Error, Result};
use crate::float::Float;
use ndarray::{Array, Array2, ArrayD, Dimension};
use std::borrow::Cow;

/// Integer token ids of any shape (as [`pad_sequences`](crate::utils::pad_sequences) and
/// Keras's tokenizers give them) as a tensor of the model's float type, converted once
/// (exact below 2^24 for `f32`, 2^53 for `f64`; an
/// [`Embedding`](crate::layers::Embedding) refuses ids outside its table).
macro_rules! id_tensors {
    ($($t:ty),*) => {$(
        impl<'a, F: Float, D: Dimension> From<&'a Array<$t, D>> for Inputs<'a, F> {
            /// Integer token ids, converted once to the model's float type:
            /// `model.predict(Inputs::from(&ids), 32)`.
            fn from(ids: &'a Array<$t, D>) -> Self {
                Inputs {
                    xs: vec![Cow::Owned(ids.mapv(|i| F::c(i as f64)).into_dyn())],
                    ..Inputs::list(&[])
                }
            }
        }
    )*};
}
id_tensors!(usize, u32, i32, i64);

/// What a layer is called on: one tensor or several (a merge, attention's `[query, value]`),
/// a mask per tensor, optional initial recurrent states, and the [`Mode`] (Keras's
/// `training`). Built from one tensor and refined:
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::{Array2, Array3};
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut gru = GruConfig::new(3).build::<f64>(2, &mut seeded_rng(0))?;
/// let x = Array3::from_elem((1, 4, 2), 0.5).into_dyn();
/// let h0 = [Array2::from_elem((1, 3), 0.1)];
/// let out = gru.forward(Inputs::new(&x).states(&h0).mode(Mode::Train))?;
/// assert_eq!((out.output.shape(), out.states.len()), (&[1, 3][..], 1)); // y and h_T
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Inputs<'a, F: Float> {
    /// The tensors, in the order the layer takes them (borrowed, or converted from integer
    /// token ids: `Inputs::from(&ids)`).
    pub xs: Vec<Cow<'a, ArrayD<F>>>,
    /// One `[batch, steps]` mask (or `None`) per tensor; missing entries are `None`.
    pub masks: Vec<Option<&'a Mask>>,
    /// Initial recurrent states in Keras's order (`[h]`, `[h, c]`, each `[batch, units]`);
    /// the call then returns the states after its last step in [`Outputs::states`]. `None`:
    /// zeros, or a `stateful` layer's carried states.
    pub states: Option<&'a [Array2<F>]>,
    /// Training (keep what `backward` needs, draw dropout) or inference.
    pub mode: Mode,
}

impl<'a, F: Float> Inputs<'a, F> {
    /// One tensor, no mask, no states, [`Mode::Infer`]. Integer token ids come in through
    /// `Inputs::from(&ids)`:
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::Array2;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let ids = Array2::from_shape_vec((2, 3), vec![1usize, 4, 2, 3, 0, 0]).unwrap();
    /// let model = Sequential::<f32>::new(&[3])
    ///     .push(EmbeddingConfig::new(5, 2).mask_zero(true))?
    ///     .push(GruConfig::new(4))?;
    /// let y = model.predict(Inputs::from(&ids), 32)?; // no conversion by hand
    /// assert_eq!(y[0].shape(), &[2, 4]);
    /// # Ok(()) }
    /// ```
    pub fn new(x: &'a ArrayD<F>) -> Self {
        Self::list(&[x])
    }

    /// Several tensors (a merge's inputs, attention's `[query, value]`).
    pub fn list(xs: &[&'a ArrayD<F>]) -> Self {
        Inputs {
            xs: xs.iter().map(|&x| Cow::Borrowed(x)).collect(),
            masks: Vec::new(),
            states: None,
            mode: Mode::Infer,
        }
    }

    /// The mask of the first (for most layers, the only) tensor.
    pub fn mask(mut self, mask: Option<&'a Mask>) -> Self {
        if self.masks.is_empty() {
            if mask.is_some() {
                self.masks.push(mask);
            }
        } else {
            self.masks[0] = mask;
        }
        self
    }

    /// One mask per tensor.
    pub fn masks(mut self, masks: &[Option<&'a Mask>]) -> Self {
        self.masks = masks.to_vec();
        self
    }

    /// Initial recurrent states (Keras's `initial_state`).
    pub fn states(mut self, states: &'a [Array2<F>]) -> Self {
        self.states = Some(states);
        self
    }

    /// Training or inference.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The mask of tensor `i`, `None` when not given.
    pub(crate) fn mask_at(&self, i: usize) -> Option<&'a Mask> {
        self.masks.get(i).copied().flatten()
    }
}

impl<'a, F: Float> From<&'a [ArrayD<F>]> for Inputs<'a, F> {
    /// One tensor per array, as a model with several inputs takes them.
    fn from(xs: &'a [ArrayD<F>]) -> Self {
        Inputs {
            xs: xs.iter().map(Cow::Borrowed).collect(),
            ..Inputs::list(&[])
        }
    }
}

impl<'a, F: Float, const N: usize> From<&'a [ArrayD<F>; N]> for Inputs<'a, F> {
    /// One tensor per array, as a model with several inputs takes them.
    fn from(xs: &'a [ArrayD<F>; N]) -> Self {
        Inputs::from(xs.as_slice())
    }
}

impl<'a, F: Float> From<&'a Vec<ArrayD<F>>> for Inputs<'a, F> {
    /// One tensor per array, as a model with several inputs takes them.
    fn from(xs: &'a Vec<ArrayD<F>>) -> Self {
        Inputs::from(xs.as_slice())
    }
}

impl<'a, F: Float> From<&'a ArrayD<F>> for Inputs<'a, F> {
    fn from(x: &'a ArrayD<F>) -> Self {
        Inputs::new(x)
    }
}

/// What a layer call returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs<F: Float> {
    /// The output tensor.
    pub output: ArrayD<F>,
    /// The mask the output carries (Keras's `compute_mask`): a sequence output keeps its
    /// input's mask, a last-step output has none.
    pub mask: Option<Mask>,
    /// The states after the last step, when the call was given [`Inputs::states`]; empty
    /// otherwise.
    pub states: Vec<Array2<F>>,
    /// The pre-activation output, kept by a layer whose output activation is softmax or
    /// sigmoid (cross-entropy losses work from it, as Keras's do).
    pub logits: Option<ArrayD<F>>,
}

impl<F: Float> Outputs<F> {
    /// An output with no mask, states or logits.
    pub fn new(output: ArrayD<F>) -> Self {
        Outputs {
            output,
            mask: None,
            states: Vec::new(),
            logits: None,
        }
    }
}

/// The gradients a backward pass starts from: dL/d(output) and, for a call given initial
/// states, dL/d(final states) (empty for none).
#[derive(Debug, Clone, Copy)]
pub struct OutputGrads<'a, F: Float> {
    /// dL/d(output), the shape of the output.
    pub dy: &'a ArrayD<F>,
    /// dL/d(final states), in state order; empty when they carry no gradient.
    pub states: &'a [Array2<F>],
    /// `dy` is dL/d(pre-activation) (see [`Outputs::logits`]): the layer skips its output
    /// activation.
    pub from_logits: bool,
    /// Whether dL/d(input) is wanted (the default). Without it a layer may skip that
    /// product and return empty arrays in its place (the recurrent layers do): a model
    /// passes it on to the layers that read the model's own inputs, and the trainer,
    /// which never reads the input gradients, clears it.
    pub input_grads: bool,
}

impl<'a, F: Float> OutputGrads<'a, F> {
    /// dL/d(output) alone.
    pub fn new(dy: &'a ArrayD<F>) -> Self {
        OutputGrads {
            dy,
            states: &[],
            from_logits: false,
            input_grads: true,
        }
    }

    /// With dL/d(final states).
    pub fn states(mut self, d_states: &'a [Array2<F>]) -> Self {
        self.states = d_states;
        self
    }

    /// `dy` is taken with respect to the logits.
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Whether dL/d(input) is wanted (see [`OutputGrads::input_grads`](Self#structfield.input_grads)).
    ///
    /// # Example
    /// ```
    /// use ndarray::ArrayD;
    /// use rnnkit::OutputGrads;
    /// let dy = ArrayD::<f32>::zeros(vec![2, 3]);
    /// assert!(!OutputGrads::new(&dy).input_grads(false).input_grads);
    /// ```
    pub fn input_grads(mut self, wanted: bool) -> Self {
        self.input_grads = wanted;
        self
    }
}

impl<'a, F: Float> From<&'a ArrayD<F>> for OutputGrads<'a, F> {
    fn from(dy: &'a ArrayD<F>) -> Self {
        OutputGrads::new(dy)
    }
}

/// What a backward pass returns: dL/d(input), one per tensor the call took, and
/// dL/d(initial states) when the call was given states.
#[derive(Debug, Clone, PartialEq)]
pub struct InputGrads<F: Float> {
    /// dL/d(input) per input tensor.
    pub dxs: Vec<ArrayD<F>>,
    /// dL/d(initial states), in state order, when the call was given states; empty
    /// otherwise.
    pub states: Vec<Array2<F>>,
}

impl<F: Float> InputGrads<F> {
    /// dL/d(input) of a one-tensor call.
    ///
    /// # Panics
    /// Never for a gradient a layer returned: every backward returns one gradient per input.
    pub fn dx(self) -> ArrayD<F> {
        self.dxs
            .into_iter()
            .next()
            .expect("a backward pass returns one gradient per input")
    }
}

/// The layers rnnkit defines are written as these one-tensor and list pieces; the public
/// call ([`Layer::forward`], [`Layer::infer`], [`Layer::backward`]) is assembled from them
/// once, in [`forward_parts`], [`infer_parts`] and [`backward_parts`].
pub(crate) trait Parts<F: Float>: Layer<F> + Clone {
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>>;
    fn shape_xs(&self, inputs: &[Vec<Dim>]) -> Result<Vec<Dim>> {
        match inputs {
            [one] => self.shape_x(one),
            _ => Err(takes_one(self, inputs.len())),
        }
    }
    fn forward_x(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<ArrayD<F>>;
    fn infer_x(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<ArrayD<F>> {
        self.clone().forward_x(x, mask, Mode::Infer)
    }
    /// [`Parts::infer_x`] with the logits of a softmax or sigmoid output.
    fn infer_x_logits(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
    ) -> Result<(ArrayD<F>, Option<ArrayD<F>>)> {
        Ok((self.infer_x(x, mask)?, None))
    }
    fn forward_x_states(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
        states: &mut Vec<Array2<F>>,
    ) -> Result<ArrayD<F>> {
        let _ = states;
        self.forward_x(x, mask, mode)
    }
    fn infer_x_states(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        states: &mut Vec<Array2<F>>,
    ) -> Result<ArrayD<F>> {
        let _ = states;
        self.infer_x(x, mask)
    }
    fn forward_xs(
        &mut self,
        xs: &[&ArrayD<F>],
        masks: &[Option<&Mask>],
        mode: Mode,
    ) -> Result<ArrayD<F>> {
        let _ = (masks, mode);
        Err(takes_one(self, xs.len()))
    }
    fn infer_xs(&self, xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Result<ArrayD<F>> {
        let _ = masks;
        Err(takes_one(self, xs.len()))
    }
    fn mask_x(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Option<Mask> {
        let _ = x;
        mask.cloned()
    }
    fn mask_xs(&self, xs: &[&ArrayD<F>], masks: &[Option<&Mask>]) -> Option<Mask> {
        let _ = (xs, masks);
        None
    }
    fn logits_x(&self) -> Option<ArrayD<F>> {
        None
    }
    fn backward_x(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>>;
    fn backward_x_logits(&mut self, dz: &ArrayD<F>) -> Result<ArrayD<F>> {
        self.backward_x(dz)
    }
    /// The backward of a one-tensor call from `g` (`g.dy`, `g.states`; `g.input_grads`
    /// may be honoured).
    fn backward_x_states(&mut self, g: &OutputGrads<'_, F>) -> Result<(ArrayD<F>, Vec<Array2<F>>)> {
        let (dy, d_states) = (g.dy, g.states);
        if !d_states.is_empty() {
            return Err(Error::Unsupported {
                layer: self.name().to_string(),
                reason: format!(
                    "a {} layer has no states to take gradients",
                    self.type_name()
                ),
            });
        }
        Ok((self.backward_x(dy)?, Vec::new()))
    }
    /// Whether the last forward took a list (merges and attention always do).
    fn takes_list(&self) -> bool {
        false
    }
    fn backward_xs(&mut self, dy: &ArrayD<F>) -> Result<Vec<ArrayD<F>>> {
        Ok(vec![self.backward_x(dy)?])
    }
}

/// The [`Layer`] call methods of a layer written as [`Parts`] (and, given `state`, its
/// [`LayerState`](super::LayerState) accessors): one definition for every rnnkit layer.
macro_rules! layer_call {
    ($f:ty) => {
        fn output_shape(
            &self,
            inputs: &[Vec<$crate::layers::Dim>],
        ) -> $crate::Result<Vec<$crate::layers::Dim>> {
            $crate::layers::call::shape_parts::<$f, _>(self, inputs)
        }
        fn forward(
            &mut self,
            inputs: $crate::layers::Inputs<'_, $f>,
        ) -> $crate::Result<$crate::layers::Outputs<$f>> {
            $crate::layers::call::forward_parts(self, inputs)
        }
        fn infer(
            &self,
            inputs: $crate::layers::Inputs<'_, $f>,
        ) -> $crate::Result<$crate::layers::Outputs<$f>> {
            $crate::layers::call::infer_parts(self, inputs)
        }
        fn backward(
            &mut self,
            grads: $crate::layers::OutputGrads<'_, $f>,
        ) -> $crate::Result<$crate::layers::InputGrads<$f>> {
            $crate::layers::call::backward_parts(self, grads)
        }
    };
    ($f:ty, state) => {
        $crate::layers::call::layer_call!($f);
        fn state(&self) -> Option<&dyn $crate::layers::LayerState<$f>> {
            Some(self)
        }
        fn state_mut(&mut self) -> Option<&mut dyn $crate::layers::LayerState<$f>> {
            Some(self)
        }
    };
}
pub(crate) use layer_call;

/// The error of a one-tensor layer called on another count of tensors.
pub(crate) fn takes_one<F: Float>(layer: &(impl Layer<F> + ?Sized), got: usize) -> Error {
    Error::Unsupported {
        layer: layer.name().to_string(),
        reason: format!("a {} layer takes one tensor, not {got}", layer.type_name()),
    }
}

/// A list call given initial states: no list layer has states.
fn no_list_states<F: Float>(layer: &(impl Layer<F> + ?Sized)) -> Error {
    Error::Unsupported {
        layer: layer.name().to_string(),
        reason: format!(
            "a {} layer called on several tensors takes no initial states",
            layer.type_name()
        ),
    }
}

/// [`Layer::output_shape`] from the parts.
pub(crate) fn shape_parts<F: Float, L: Parts<F>>(l: &L, inputs: &[Vec<Dim>]) -> Result<Vec<Dim>> {
    if l.takes_list() {
        l.shape_xs(inputs)
    } else {
        match inputs {
            [one] => l.shape_x(one),
            _ => l.shape_xs(inputs),
        }
    }
}

/// [`Layer::forward`] from the parts.
pub(crate) fn forward_parts<F: Float, L: Parts<F>>(
    l: &mut L,
    inputs: Inputs<'_, F>,
) -> Result<Outputs<F>> {
    let Inputs {
        xs, states, mode, ..
    } = &inputs;
    match (xs.as_slice(), states) {
        ([x], _) if !l.takes_list() => {
            let mask = inputs.mask_at(0);
            let (output, states) = match states {
                Some(s) => {
                    let mut st = s.to_vec();
                    (l.forward_x_states(x, mask, *mode, &mut st)?, st)
                }
                None => (l.forward_x(x, mask, *mode)?, Vec::new()),
            };
            Ok(Outputs {
                output,
                mask: l.mask_x(x, mask),
                states,
                logits: l.logits_x(),
            })
        }
        (_, Some(_)) => Err(no_list_states(l)),
        (xs, None) => {
            let masks = list_masks(&inputs);
            let xs = refs(xs);
            let output = l.forward_xs(&xs, &masks, *mode)?;
            Ok(Outputs {
                mask: l.mask_xs(&xs, &masks),
                ..Outputs::new(output)
            })
        }
    }
}

/// [`Layer::infer`] from the parts.
pub(crate) fn infer_parts<F: Float, L: Parts<F>>(
    l: &L,
    inputs: Inputs<'_, F>,
) -> Result<Outputs<F>> {
    let Inputs { xs, states, .. } = &inputs;
    match (xs.as_slice(), states) {
        ([x], _) if !l.takes_list() => {
            let mask = inputs.mask_at(0);
            let (output, states, logits) = match states {
                Some(s) => {
                    let mut st = s.to_vec();
                    (l.infer_x_states(x, mask, &mut st)?, st, None)
                }
                None => {
                    let (y, z) = l.infer_x_logits(x, mask)?;
                    (y, Vec::new(), z)
                }
            };
            Ok(Outputs {
                output,
                mask: l.mask_x(x, mask),
                states,
                logits,
            })
        }
        (_, Some(_)) => Err(no_list_states(l)),
        (xs, None) => {
            let masks = list_masks(&inputs);
            let xs = refs(xs);
            let output = l.infer_xs(&xs, &masks)?;
            Ok(Outputs {
                mask: l.mask_xs(&xs, &masks),
                ..Outputs::new(output)
            })
        }
    }
}

/// The tensors as plain references.
pub(crate) fn refs<'a, F: Float>(xs: &'a [Cow<'_, ArrayD<F>>]) -> Vec<&'a ArrayD<F>> {
    xs.iter().map(|x| x.as_ref()).collect()
}

/// One mask entry per tensor.
fn list_masks<'a, F: Float>(inputs: &Inputs<'a, F>) -> Vec<Option<&'a Mask>> {
    (0..inputs.xs.len()).map(|i| inputs.mask_at(i)).collect()
}

/// [`Layer::backward`] from the parts.
pub(crate) fn backward_parts<F: Float, L: Parts<F>>(
    l: &mut L,
    grads: OutputGrads<'_, F>,
) -> Result<InputGrads<F>> {
    if grads.from_logits {
        return Ok(InputGrads {
            dxs: vec![l.backward_x_logits(grads.dy)?],
            states: Vec::new(),
        });
    }
    if l.takes_list() {
        return Ok(InputGrads {
            dxs: l.backward_xs(grads.dy)?,
            states: Vec::new(),
        });
    }
    let (dx, states) = l.backward_x_states(&grads)?;
    Ok(InputGrads {
        dxs: vec![dx],
        states,
    })
}
