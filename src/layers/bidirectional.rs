//! `Bidirectional`: a forward and a `go_backwards` copy of any recurrent layer, merged.

use super::gru::GruConfig;
use super::leaky_rnn::LeakyRnnConfig;
use super::lstm::LstmConfig;
use super::recurrent::{
    Recurrent, RecurrentLayer, RecurrentLayerConfig, build_recurrent, seq_input,
};
use super::simple_rnn::SimpleRnnConfig;
use super::spec::take_key;
use super::{Dim, Layer, LayerConfig, LayerSpec, Mask, Mode};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::init::StdRng;
use crate::layers::LayerState;
use crate::layers::call::{self, Inputs, OutputGrads};
use crate::param::{Module, Param};
use ndarray::{Array2, ArrayD, Axis, Slice, concatenate};
use serde::de;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How the two directions are combined (Keras `merge_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeMode {
    /// `[forward, backward]` on the last axis (Keras default).
    #[default]
    Concat,
    /// `forward + backward`.
    Sum,
    /// `forward ⊙ backward`.
    Mul,
    /// `(forward + backward) / 2`.
    Ave,
    /// No merge: both outputs, through [`Bidirectional::forward_both`] only.
    None,
}

impl MergeMode {
    /// Keras's name (`"concat"`); `None` for no merge.
    pub fn keras_name(self) -> Option<&'static str> {
        match self {
            MergeMode::Concat => Some("concat"),
            MergeMode::Sum => Some("sum"),
            MergeMode::Mul => Some("mul"),
            MergeMode::Ave => Some("ave"),
            MergeMode::None => None,
        }
    }
}

impl std::str::FromStr for MergeMode {
    type Err = Error;
    /// Parses `"concat"`, `"sum"`, `"mul"`, `"ave"` or `"none"`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "concat" => MergeMode::Concat,
            "sum" => MergeMode::Sum,
            "mul" => MergeMode::Mul,
            "ave" => MergeMode::Ave,
            "none" | "None" => MergeMode::None,
            other => {
                return Err(Error::Config {
                    layer: "bidirectional".into(),
                    field: "merge_mode",
                    reason: format!("expected one of concat, sum, mul, ave, none; got {other:?}"),
                });
            }
        })
    }
}

/// Bidirectional wrapper over any recurrent layer, numerically equal to
/// `keras.layers.Bidirectional`.
///
/// The forward copy runs as configured; the backward copy is the same layer with
/// `go_backwards` flipped and its own weights. With `return_sequences` the backward output
/// is flipped back along time so both halves refer to input step `t` at position `t`, and
/// (as Keras forces) masked steps output zeros in both directions.
///
/// Weights in Keras order: forward kernel, recurrent_kernel, bias, then backward.
///
/// # Example
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut bi = BidirectionalConfig::new(LstmConfig::new(8)).build::<f64>(2, &mut seeded_rng(0))?;
/// assert_eq!(bi.param_count(), 704);
/// let x = rnnkit::ndarray::Array3::<f64>::zeros((3, 5, 2)).into_dyn();
/// let y = bi.forward(Inputs::new(&x))?.output;
/// assert_eq!(y.shape(), &[3, 16]); // concat: forward then backward
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Bidirectional<F: Float, L> {
    name: String,
    /// The wrapped layer's own name (the directions are `forward_<it>`, `backward_<it>`).
    wrapped: String,
    forward: L,
    backward: L,
    merge_mode: MergeMode,
    /// Both directions' outputs of the last Train forward (backward already flipped).
    cache: Option<(ArrayD<F>, ArrayD<F>)>,
}

/// The layer a recurrent layer configuration `L` builds for element type `F` (`Lstm<F>` for
/// `LstmConfig`).
pub type LayerOf<L, F> = Recurrent<<L as RecurrentLayerConfig>::Cell<F>>;

/// Configuration of a [`Bidirectional`] layer around a recurrent layer configuration.
///
/// | option | default |
/// |---|---|
/// | `merge_mode` | [`MergeMode::Concat`] |
/// | `name` | `bidirectional` |
#[derive(Debug, Clone, PartialEq)]
pub struct BidirectionalConfig<L> {
    /// The wrapped layer.
    pub layer: L,
    /// How the directions are merged.
    pub merge_mode: MergeMode,
    /// Layer name.
    pub name: Option<String>,
}

impl<L: RecurrentLayerConfig> BidirectionalConfig<L> {
    /// Wraps `layer` with the default merge mode (concat).
    pub fn new(layer: L) -> Self {
        BidirectionalConfig {
            layer,
            merge_mode: MergeMode::Concat,
            name: None,
        }
    }
    /// Sets the merge mode.
    pub fn merge_mode(mut self, m: MergeMode) -> Self {
        self.merge_mode = m;
        self
    }
    /// Sets the layer name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Builds the typed layer: forward weights drawn first, then backward.
    ///
    /// # Errors
    /// As the wrapped layer's `init`.
    pub fn build<F: Float>(
        &self,
        input_dim: usize,
        rng: &mut StdRng,
    ) -> Result<Bidirectional<F, LayerOf<L, F>>> {
        let forward = build_recurrent::<L, F>(&self.layer, input_dim, rng)?;
        let backward = build_recurrent::<L, F>(&self.layer, input_dim, rng)?;
        let mut bi = Bidirectional::from_pair(forward, backward, self.merge_mode)?;
        if let Some(n) = &self.name {
            bi.name = n.clone();
        }
        Ok(bi)
    }
}

impl<F: Float, L: RecurrentLayerConfig> LayerConfig<F> for BidirectionalConfig<L> {
    fn build(&self, input: &[Dim], rng: &mut StdRng) -> Result<Box<dyn Layer<F>>> {
        let name = self.name.clone().unwrap_or_else(|| "bidirectional".into());
        let (_, f) = seq_input(&name, input)?;
        if self.merge_mode == MergeMode::None {
            return Err(Error::Incompatible {
                layer: name,
                previous: "its input".into(),
                reason: "merge_mode None gives two outputs, which a Sequential model cannot carry; use Bidirectional::forward_both".into(),
            });
        }
        Ok(Box::new(BidirectionalConfig::build::<F>(self, f, rng)?))
    }
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    fn default_name(&self) -> &'static str {
        "bidirectional"
    }
}

impl<F: Float, L> Bidirectional<F, L> {
    /// The merge mode.
    pub fn merge_mode(&self) -> MergeMode {
        self.merge_mode
    }
}

/// Both directions' states from `[forward states, backward states]`.
type StatePair<F> = (Vec<Array2<F>>, Vec<Array2<F>>);

/// Splits `[forward states, backward states]` into the two directions' lists.
fn split_states<F: Float>(name: &str, states: &[Array2<F>]) -> Result<StatePair<F>> {
    if !states.len().is_multiple_of(2) {
        return Err(Error::Shape {
            layer: name.to_string(),
            what: "states (both directions' states, forward first)",
            expected: "an even number of arrays".into(),
            got: vec![states.len()],
        });
    }
    let half = states.len() / 2;
    Ok((states[..half].to_vec(), states[half..].to_vec()))
}

/// A recurrent layer's configuration without what may differ between the two directions
/// of a Bidirectional (name, `go_backwards`, `zero_output_for_mask`, the dropout seed).
fn plain_spec(spec: Option<LayerSpec>) -> Option<LayerSpec> {
    let mut spec = spec?;
    macro_rules! plain {
        ($c:expr) => {{
            let c = $c;
            c.name = None;
            c.go_backwards = false;
            c.zero_output_for_mask = false;
            c.seed = None;
        }};
    }
    match &mut spec {
        LayerSpec::SimpleRnn(c) => plain!(c),
        LayerSpec::Lstm(c) => plain!(c),
        LayerSpec::Gru(c) => plain!(c),
        LayerSpec::LeakyRnn(c) => plain!(c),
        _ => {}
    }
    Some(spec)
}

/// Flips a `[batch, steps, ..]` array along time.
fn flip_time<F: Float>(a: &ArrayD<F>) -> ArrayD<F> {
    a.slice_axis(Axis(1), Slice::new(0, None, -1)).to_owned()
}

impl<F: Float, L: RecurrentLayer<F>> Bidirectional<F, L> {
    /// Wraps two layers: `backward` gets `go_backwards` opposite to `forward`; both get
    /// `zero_output_for_mask = return_sequences`, as Keras forces, and are renamed
    /// `forward_<name>` and `backward_<name>` after `forward`'s name.
    ///
    /// # Errors
    /// [`Error::Incompatible`] when the two layers differ in units, input features or
    /// `return_sequences`.
    pub fn from_pair(mut forward: L, mut backward: L, merge_mode: MergeMode) -> Result<Self> {
        let (f, b) = (&forward, &backward);
        let mismatch = [
            ("units", f.units(), b.units()),
            ("input features", f.input_dim(), b.input_dim()),
            (
                "return_sequences",
                usize::from(f.return_sequences()),
                usize::from(b.return_sequences()),
            ),
        ]
        .into_iter()
        .find(|(_, x, y)| x != y);
        if let Some((what, x, y)) = mismatch {
            return Err(Error::Incompatible {
                layer: "bidirectional".into(),
                previous: format!("forward layer {}", f.name()),
                reason: format!(
                    "both directions need the same {what}: forward has {x}, backward {} has {y}",
                    b.name()
                ),
            });
        }
        // The model file keeps one configuration for both directions (and Keras refuses a
        // stateful/non-stateful pair): every other option must agree.
        let (fs, bs) = (plain_spec(f.spec()), plain_spec(b.spec()));
        if fs != bs {
            return Err(Error::Incompatible {
                layer: "bidirectional".into(),
                previous: format!("forward layer {}", f.name()),
                reason: format!(
                    "both directions need the same options (all but name, go_backwards and \
                     seed): forward has {fs:?}, backward {} has {bs:?}",
                    b.name()
                ),
            });
        }
        let inner = forward.name().to_string();
        forward.set_name(&format!("forward_{inner}"));
        backward.set_name(&format!("backward_{inner}"));
        backward.set_go_backwards(!forward.go_backwards());
        let rs = forward.return_sequences();
        forward.set_zero_output_for_mask(rs);
        backward.set_zero_output_for_mask(rs);
        Ok(Bidirectional {
            name: "bidirectional".into(),
            wrapped: inner,
            forward,
            backward,
            merge_mode,
            cache: None,
        })
    }

    /// Both directions' outputs, unmerged (backward flipped into input order when returning
    /// sequences): what Keras returns for `merge_mode=None`.
    ///
    /// # Errors
    /// As the wrapped layer's forward.
    pub fn forward_both(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
    ) -> Result<(ArrayD<F>, ArrayD<F>)> {
        let call = || Inputs::new(x).mask(mask).mode(mode);
        let yf = self.forward.forward(call())?.output;
        let mut yb = self.backward.forward(call())?.output;
        if self.forward.return_sequences() {
            yb = flip_time(&yb);
        }
        Ok((yf, yb))
    }

    /// [`Bidirectional::forward_both`] through a shared reference (inference).
    ///
    /// # Errors
    /// As the wrapped layer's forward.
    pub fn infer_both(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<(ArrayD<F>, ArrayD<F>)> {
        let yf = self.forward.infer(Inputs::new(x).mask(mask))?.output;
        let mut yb = self.backward.infer(Inputs::new(x).mask(mask))?.output;
        if self.forward.return_sequences() {
            yb = flip_time(&yb);
        }
        Ok((yf, yb))
    }

    /// The merged output of both directions.
    fn merge(&self, yf: &ArrayD<F>, yb: &ArrayD<F>) -> Result<ArrayD<F>> {
        let half = F::c(0.5);
        Ok(match self.merge_mode {
            MergeMode::Concat => concatenate(Axis(yf.ndim() - 1), &[yf.view(), yb.view()])
                .expect("both directions have the same shape"),
            MergeMode::Sum => yf + yb,
            MergeMode::Mul => yf * yb,
            MergeMode::Ave => (yf + yb) * half,
            MergeMode::None => return Err(self.unmerged()),
        })
    }

    /// The error of a merged pass with `merge_mode` None.
    fn unmerged(&self) -> Error {
        Error::Config {
            layer: self.name.clone(),
            field: "merge_mode",
            reason: "None gives two outputs: call Bidirectional::forward_both".into(),
        }
    }

    /// The merged output's shape, from the forward direction's output.
    fn out_shape(&self, yf: &ArrayD<F>) -> Vec<usize> {
        let mut out_shape = yf.shape().to_vec();
        if self.merge_mode == MergeMode::Concat {
            *out_shape.last_mut().expect("rank >= 2") *= 2;
        }
        out_shape
    }

    /// Each direction's output gradient from the merged output's.
    fn split_dy(&self, dy: &ArrayD<F>, yf: &ArrayD<F>, yb: &ArrayD<F>) -> (ArrayD<F>, ArrayD<F>) {
        let half = F::c(0.5);
        match self.merge_mode {
            MergeMode::Concat => {
                let u = yf.shape()[yf.ndim() - 1];
                let last = Axis(dy.ndim() - 1);
                (
                    dy.slice_axis(last, Slice::from(..u)).to_owned(),
                    dy.slice_axis(last, Slice::from(u..)).to_owned(),
                )
            }
            MergeMode::Sum => (dy.clone(), dy.clone()),
            MergeMode::Mul => (dy * yb, dy * yf),
            MergeMode::Ave | MergeMode::None => (dy * half, dy * half),
        }
    }

    /// Backward pass from both directions' output gradients (the counterpart of
    /// [`Bidirectional::forward_both`]).
    ///
    /// # Errors
    /// As the wrapped layer's backward.
    pub fn backward_both(&mut self, dyf: &ArrayD<F>, dyb: &ArrayD<F>) -> Result<ArrayD<F>> {
        let dyb = if self.forward.return_sequences() {
            flip_time(dyb)
        } else {
            dyb.clone()
        };
        let mut dx = self.forward.backward(OutputGrads::new(dyf))?.dx();
        dx += &self.backward.backward(OutputGrads::new(&dyb))?.dx();
        Ok(dx)
    }
}

impl<F: Float, L: RecurrentLayer<F>> Layer<F> for Bidirectional<F, L> {
    fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }
    fn type_name(&self) -> &'static str {
        "Bidirectional"
    }
    fn box_clone(&self) -> Box<dyn Layer<F>> {
        let mut c = self.clone();
        c.cache = None;
        Box::new(c)
    }
    fn spec(&self) -> Option<LayerSpec> {
        // The wrapped layer as configured: its own name; Bidirectional sets
        // zero_output_for_mask itself.
        fn wrap<L: RecurrentLayerConfig>(
            mut layer: L,
            bi: (&str, &str, MergeMode),
        ) -> BidirectionalSpec {
            layer.set_layer_name(Some(bi.1.to_string()));
            let mut o = layer.sequence();
            o.zero_output_for_mask = false;
            layer.set_sequence(o);
            L::bidirectional_spec(BidirectionalConfig {
                layer,
                merge_mode: bi.2,
                name: Some(bi.0.to_string()),
            })
        }
        let bi = (self.name.as_str(), self.wrapped.as_str(), self.merge_mode);
        Some(LayerSpec::Bidirectional(match self.forward.spec()? {
            LayerSpec::SimpleRnn(c) => wrap(c, bi),
            LayerSpec::Lstm(c) => wrap(c, bi),
            LayerSpec::Gru(c) => wrap(c, bi),
            LayerSpec::LeakyRnn(c) => wrap(c, bi),
            _ => return None,
        }))
    }
    fn describe(&self) -> String {
        format!(
            "{}({}), merge_mode={}",
            self.forward.type_name(),
            self.forward.describe(),
            self.merge_mode.keras_name().unwrap_or("None")
        )
    }
    call::layer_call!(F, state);
}

impl<F: Float, L: RecurrentLayer<F>> call::Parts<F> for Bidirectional<F, L> {
    fn shape_x(&self, input: &[Dim]) -> Result<Vec<Dim>> {
        let mut out = self.forward.output_shape(&[input.to_vec()])?;
        if self.merge_mode == MergeMode::Concat {
            let last = out.last_mut().expect("recurrent output has a feature axis");
            *last = last.map(|u| 2 * u);
        }
        Ok(out)
    }
    fn forward_x(&mut self, x: &ArrayD<F>, mask: Option<&Mask>, mode: Mode) -> Result<ArrayD<F>> {
        self.cache = None;
        if self.merge_mode == MergeMode::None {
            return Err(self.unmerged());
        }
        let (yf, yb) = self.forward_both(x, mask, mode)?;
        let y = self.merge(&yf, &yb)?;
        if mode == Mode::Train {
            self.cache = Some((yf, yb));
        }
        Ok(y)
    }
    fn infer_x(&self, x: &ArrayD<F>, mask: Option<&Mask>) -> Result<ArrayD<F>> {
        if self.merge_mode == MergeMode::None {
            return Err(self.unmerged());
        }
        let (yf, yb) = self.infer_both(x, mask)?;
        self.merge(&yf, &yb)
    }
    /// States `[fwd_h, (fwd_c,) bwd_h, (bwd_c)]`, Keras's order: each direction runs from
    /// its own and leaves its final state there (the backward one reads the chunk from its
    /// end, as a stateful Keras Bidirectional does).
    fn infer_x_states(
        &self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        states: &mut Vec<Array2<F>>,
    ) -> Result<ArrayD<F>> {
        if self.merge_mode == MergeMode::None {
            return Err(self.unmerged());
        }
        let (fwd, bwd) = split_states(&self.name, states)?;
        let of = self.forward.infer(Inputs::new(x).mask(mask).states(&fwd))?;
        let ob = self
            .backward
            .infer(Inputs::new(x).mask(mask).states(&bwd))?;
        let (yf, mut yb, fwd, bwd) = (of.output, ob.output, of.states, ob.states);
        if self.forward.return_sequences() {
            yb = flip_time(&yb);
        }
        let y = self.merge(&yf, &yb)?;
        *states = fwd.into_iter().chain(bwd).collect();
        Ok(y)
    }
    fn forward_x_states(
        &mut self,
        x: &ArrayD<F>,
        mask: Option<&Mask>,
        mode: Mode,
        states: &mut Vec<Array2<F>>,
    ) -> Result<ArrayD<F>> {
        self.cache = None;
        if self.merge_mode == MergeMode::None {
            return Err(self.unmerged());
        }
        let (fwd, bwd) = split_states(&self.name, states)?;
        let call = |s| Inputs::new(x).mask(mask).mode(mode).states(s);
        let of = self.forward.forward(call(&fwd))?;
        let ob = self.backward.forward(call(&bwd))?;
        let (yf, mut yb, fwd, bwd) = (of.output, ob.output, of.states, ob.states);
        if self.forward.return_sequences() {
            yb = flip_time(&yb);
        }
        let y = self.merge(&yf, &yb)?;
        if mode == Mode::Train {
            self.cache = Some((yf, yb));
        }
        *states = fwd.into_iter().chain(bwd).collect();
        Ok(y)
    }
    fn mask_x(&self, _x: &ArrayD<F>, mask: Option<&Mask>) -> Option<Mask> {
        if self.forward.return_sequences() {
            mask.cloned()
        } else {
            None
        }
    }
    fn backward_x(&mut self, dy: &ArrayD<F>) -> Result<ArrayD<F>> {
        let Some((yf, yb)) = &self.cache else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        super::check_dy(&self.name, dy, &self.out_shape(yf))?;
        let (dyf, dyb) = self.split_dy(dy, yf, yb);
        self.backward_both(&dyf, &dyb)
    }
    fn backward_x_states(&mut self, g: &OutputGrads<'_, F>) -> Result<(ArrayD<F>, Vec<Array2<F>>)> {
        let (dy, d_states) = (g.dy, g.states);
        let Some((yf, yb)) = &self.cache else {
            return Err(Error::NoCache {
                layer: self.name.clone(),
            });
        };
        super::check_dy(&self.name, dy, &self.out_shape(yf))?;
        let (dfwd, dbwd) = split_states(&self.name, d_states)?;
        let (dyf, dyb) = self.split_dy(dy, yf, yb);
        let dyb = if self.forward.return_sequences() {
            flip_time(&dyb)
        } else {
            dyb
        };
        let wanted = g.input_grads;
        let gf = self
            .forward
            .backward(OutputGrads::new(&dyf).states(&dfwd).input_grads(wanted))?;
        let gb = self
            .backward
            .backward(OutputGrads::new(&dyb).states(&dbwd).input_grads(wanted))?;
        let (mut dx, mut d_init) = (gf.dxs, gf.states);
        if dx[0].shape() == gb.dxs[0].shape() {
            dx[0] += &gb.dxs[0];
        } else {
            // One direction skipped dL/dx as asked, the other did not.
            dx[0] = ArrayD::zeros(ndarray::IxDyn(&[0]));
        }
        d_init.extend(gb.states);
        let dx = dx.swap_remove(0);
        Ok((dx, d_init))
    }
}

impl<F: Float, L: RecurrentLayer<F>> LayerState<F> for Bidirectional<F, L> {
    fn zero_states(&self, batch: usize) -> Result<Vec<Array2<F>>> {
        let mut z = self.forward.zero_states(batch)?;
        z.extend(self.backward.zero_states(batch)?);
        Ok(z)
    }
    fn reset_states(&mut self) {
        self.forward.reset_states();
        self.backward.reset_states();
    }
    fn states(&self) -> Vec<Array2<F>> {
        let mut s = self.forward.states();
        s.extend(self.backward.states());
        s
    }
    fn set_states(&mut self, states: Option<&[Array2<F>]>) -> Result<()> {
        let Some(states) = states else {
            self.forward.set_states(None)?;
            return self.backward.set_states(None);
        };
        let half = states.len() / 2;
        // Check both halves before changing either.
        let (mut f, mut b) = (self.forward.clone(), self.backward.clone());
        f.set_states(Some(&states[..half]))?;
        b.set_states(Some(&states[half..]))?;
        self.forward = f;
        self.backward = b;
        Ok(())
    }
    fn rng_state(&self) -> Vec<u64> {
        let mut p = self.forward.rng_state();
        p.extend(self.backward.rng_state());
        p
    }
    fn set_rng_state(&mut self, state: &[u64]) -> Result<()> {
        let n = self.forward.rng_state().len();
        if state.len() != n + self.backward.rng_state().len() {
            return Err(Error::Shape {
                layer: self.name.clone(),
                what: "random stream state (both directions')",
                expected: format!("{} numbers", 2 * n),
                got: vec![state.len()],
            });
        }
        self.forward.set_rng_state(&state[..n])?;
        self.backward.set_rng_state(&state[n..])
    }
}

impl<F: Float, L: RecurrentLayer<F>> Module<F> for Bidirectional<F, L> {
    fn name(&self) -> &str {
        &self.name
    }
    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param<F>)) {
        for layer in [&self.forward, &self.backward] {
            let prefix = layer.name().to_string();
            layer.visit_params(&mut |n, p| f(&format!("{prefix}/{n}"), p));
        }
    }
    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param<F>)) {
        for layer in [&mut self.forward, &mut self.backward] {
            let prefix = layer.name().to_string();
            layer.visit_params_mut(&mut |n, p| f(&format!("{prefix}/{n}"), p));
        }
    }
}
/// A [`BidirectionalConfig`] around any of the three recurrent layers: the saved form of a
/// `Bidirectional` (`{"name", "merge_mode", "layer": {"layer": "LSTM", "config": {...}}}`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum BidirectionalSpec {
    /// Around a `SimpleRNN`.
    SimpleRnn(BidirectionalConfig<SimpleRnnConfig>),
    /// Around an `LSTM`.
    Lstm(BidirectionalConfig<LstmConfig>),
    /// Around a `GRU`.
    Gru(BidirectionalConfig<GruConfig>),
    /// Around a `LeakyRNN`.
    LeakyRnn(BidirectionalConfig<LeakyRnnConfig>),
}

/// `$e` with `$c` bound to the typed configuration, whichever cell it wraps.
macro_rules! each_config {
    ($spec:expr, $c:ident => $e:expr) => {
        match $spec {
            BidirectionalSpec::SimpleRnn($c) => $e,
            BidirectionalSpec::Lstm($c) => $e,
            BidirectionalSpec::Gru($c) => $e,
            BidirectionalSpec::LeakyRnn($c) => $e,
        }
    };
}

impl BidirectionalSpec {
    pub(crate) fn config<F: Float>(&self) -> &dyn LayerConfig<F> {
        each_config!(self, c => c)
    }

    /// The Bidirectional layer's name, if given.
    pub(crate) fn name(&self) -> Option<&str> {
        each_config!(self, c => c.name.as_deref())
    }

    /// Units of the wrapped layer.
    pub(crate) fn units(&self) -> usize {
        each_config!(self, c => c.layer.units)
    }
}

impl<L: RecurrentLayerConfig> Serialize for BidirectionalConfig<L> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(n) = &self.name {
            m.serialize_entry("name", n)?;
        }
        m.serialize_entry("merge_mode", &self.merge_mode)?;
        m.serialize_entry(
            "layer",
            &serde_json::json!({ "layer": L::TYPE_NAME, "config": &self.layer }),
        )?;
        m.end()
    }
}

impl Serialize for BidirectionalSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        each_config!(self, c => c.serialize(s))
    }
}

impl<'de> Deserialize<'de> for BidirectionalSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let name: Option<String> = take_key(&mut map, "name")?;
        let merge_mode: MergeMode = take_key(&mut map, "merge_mode")?.unwrap_or_default();
        let mut inner: serde_json::Map<String, serde_json::Value> =
            take_key(&mut map, "layer")?.ok_or_else(|| de::Error::missing_field("layer"))?;
        if let Some(key) = map.keys().next() {
            return Err(de::Error::custom(format!(
                "Bidirectional has no `{key}` option"
            )));
        }
        let ty: String =
            take_key(&mut inner, "layer")?.ok_or_else(|| de::Error::missing_field("layer"))?;
        let config = inner
            .remove("config")
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(key) = inner.keys().next() {
            return Err(de::Error::custom(format!(
                "unknown key `{key}` in the wrapped layer"
            )));
        }
        fn make<L: RecurrentLayerConfig, E: de::Error>(
            config: serde_json::Value,
            name: Option<String>,
            merge_mode: MergeMode,
        ) -> std::result::Result<BidirectionalConfig<L>, E> {
            let layer: L = serde_json::from_value(config).map_err(E::custom)?;
            Ok(BidirectionalConfig {
                layer,
                merge_mode,
                name,
            })
        }
        Ok(match ty.as_str() {
            "SimpleRNN" => BidirectionalSpec::SimpleRnn(make(config, name, merge_mode)?),
            "LSTM" => BidirectionalSpec::Lstm(make(config, name, merge_mode)?),
            "GRU" => BidirectionalSpec::Gru(make(config, name, merge_mode)?),
            "LeakyRNN" => BidirectionalSpec::LeakyRnn(make(config, name, merge_mode)?),
            other => {
                return Err(de::Error::custom(format!(
                    "Bidirectional wraps SimpleRNN, LSTM, GRU or LeakyRNN, not {other}"
                )));
            }
        })
    }
}

impl Serialize for MergeMode {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.keras_name().unwrap_or("none"))
    }
}

impl<'de> Deserialize<'de> for MergeMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}
