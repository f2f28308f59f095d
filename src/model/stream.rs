//! Streaming inference through a [`Sequential`]: one step at a time from a state value,
//! at constant cost and without allocating per step.

use super::{ModelState, Sequential};
use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::{StepWork, state};
use crate::param::Module;
use ndarray::{Array2, ArrayView2};

/// Where a stream through a [`Sequential`] stands: every layer's recurrent states (Keras
/// order, `[batch, units]` each) with the buffers a step needs. A value: clone it to branch
/// (beam search), keep a clone to come back to, or take the states out
/// ([`StreamState::states`]) and rebuild it later ([`Sequential::stream_state_from`]).
#[derive(Debug, Clone)]
pub struct StreamState<F> {
    batch: usize,
    /// The first layer that cannot run one step at a time, if any (asked once, here).
    /// (layer, why) when this stream cannot step.
    refused: Option<(String, String)>,
    states: Vec<Vec<Array2<F>>>,
    work: Vec<StepWork<F>>,
    outs: Vec<Array2<F>>,
}

impl<F: Float> StreamState<F> {
    /// Every layer's states, one list per layer (empty for layers without state).
    pub fn states(&self) -> &[Vec<Array2<F>>] {
        &self.states
    }

    /// The number of sequences streamed side by side.
    pub fn batch_size(&self) -> usize {
        self.batch
    }
}

impl<F: Float> Sequential<F> {
    /// The start of a stream of `batch` sequences: zero states.
    pub fn stream_state(&self, batch: usize) -> StreamState<F> {
        // A batch whose states would pass the size limit: a stream that refuses to step
        // (this returns no Result), instead of an allocation that aborts.
        let mut states = Vec::new();
        let mut too_large = None;
        for l in self.layers() {
            match state::zero_states_of(l.as_ref(), batch) {
                Ok(z) => states.push(z),
                Err(_) => {
                    too_large = Some(l);
                    break;
                }
            }
        }
        if let Some(l) = too_large {
            return StreamState {
                batch,
                refused: Some((
                    format!("{} ({})", l.name(), l.type_name()),
                    format!(
                        "the states of {batch} sequences would pass the size limit of {} \
                         scalars",
                        crate::layers::MAX_WEIGHT_LEN
                    ),
                )),
                states: Vec::new(),
                work: Vec::new(),
                outs: Vec::new(),
            };
        }
        StreamState {
            batch,
            refused: self
                .layers()
                .iter()
                .find(|l| !state::streams_of(l.as_ref()))
                .map(|l| {
                    (
                        format!("{} ({})", l.name(), l.type_name()),
                        "this layer cannot run one step at a time (a Bidirectional or \
                         go_backwards layer needs the steps to come), so the model cannot \
                         stream"
                            .to_string(),
                    )
                }),
            states,
            work: vec![StepWork::default(); self.layers().len()],
            outs: vec![Array2::zeros((0, 0)); self.layers().len()],
        }
    }

    /// A stream resumed from saved states (one list per layer, as
    /// [`StreamState::states`] gives them).
    ///
    /// # Errors
    /// [`Error::Shape`] when the states do not fit the model's layers, [`Error::Data`] for a
    /// non-finite value.
    pub fn stream_state_from(&self, states: Vec<Vec<Array2<F>>>) -> Result<StreamState<F>> {
        let batch = states
            .iter()
            .flatten()
            .next()
            .map_or(0, |s: &Array2<F>| s.nrows());
        let want = ModelState::zero_states(self, batch)?;
        let fits = states.len() == want.len()
            && states.iter().zip(&want).all(|(s, w)| {
                s.len() == w.len() && s.iter().zip(w).all(|(a, b)| a.dim() == b.dim())
            });
        if !fits {
            return Err(Error::Shape {
                layer: self.name().to_string(),
                what: "stream states (one list per layer, [batch, units] each)",
                expected: format!("{:?}", shapes(&want)),
                got: states
                    .iter()
                    .flatten()
                    .flat_map(|s| s.shape().to_vec())
                    .collect(),
            });
        }
        if let Some(i) = states
            .iter()
            .flatten()
            .position(|s| s.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Data(format!(
                "{}: stream state {i} has a non-finite value",
                self.name()
            )));
        }
        let mut st = self.stream_state(batch);
        st.states = states;
        Ok(st)
    }

    /// One step of streaming inference: `x` `[batch, features]` through every layer from
    /// `state`, which moves on by one step. The output `[batch, output features]` is what
    /// one pass over the whole sequence so far would output at this step (the last step's
    /// output for a model that returns only the last). After the first step nothing is
    /// allocated: per-character cost of a language model stays flat however long the
    /// generated text.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::ndarray::{s, Array3};
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let model = Sequential::<f64>::with_input_shape(vec![None, Some(2)])
    ///     .push(LstmConfig::new(8))?
    ///     .push(DenseConfig::new(1))?;
    /// let x = Array3::from_shape_fn((1, 10, 2), |(_, t, f)| ((t + f) as f64).sin()).into_dyn();
    /// let whole = model.infer(Inputs::new(&x))?.remove(0).output; // [1, 1]: after the last step
    /// let mut state = model.stream_state(1);
    /// let mut last = 0.0;
    /// for t in 0..10 {
    ///     let xt = x.slice(s![.., t, ..]).into_dimensionality::<rnnkit::ndarray::Ix2>().unwrap();
    ///     last = model.step(xt, &mut state)?[[0, 0]];
    /// }
    /// assert!((last - whole[[0, 0]]).abs() < 1e-12);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Features`] for the wrong feature count, [`Error::Shape`] for a batch other
    /// than the state's, [`Error::Unsupported`] for a layer that cannot stream
    /// (Bidirectional). `state` is unchanged then.
    pub fn step<'s>(
        &self,
        x: ArrayView2<'_, F>,
        state: &'s mut StreamState<F>,
    ) -> Result<ArrayView2<'s, F>> {
        if x.nrows() != state.batch {
            return Err(Error::Shape {
                layer: self.name().to_string(),
                what: "streamed step (the batch size of the stream)",
                expected: format!("[{}, features]", state.batch),
                got: x.shape().to_vec(),
            });
        }
        if let Some((layer, reason)) = &state.refused {
            return Err(Error::Unsupported {
                layer: layer.clone(),
                reason: reason.clone(),
            });
        }
        if self.layers().is_empty() || state.outs.len() != self.layers().len() {
            return Err(Error::Unsupported {
                layer: self.name().to_string(),
                reason: "the stream state is not this model's (or the model has no layers)".into(),
            });
        }
        let layers = self.layers();
        for (i, layer) in layers.iter().enumerate() {
            let (done, rest) = state.outs.split_at_mut(i);
            let input = if i == 0 { x.view() } else { done[i - 1].view() };
            let Some(layer) = layer.state() else {
                return Err(Error::Unsupported {
                    layer: layer.name().to_string(),
                    reason: "this layer cannot run one step at a time".into(),
                });
            };
            layer.step(
                input,
                &mut state.states[i],
                &mut state.work[i],
                &mut rest[0],
            )?;
        }
        Ok(state
            .outs
            .last()
            .expect("invariant: a model with layers")
            .view())
    }
}

fn shapes<F>(states: &[Vec<Array2<F>>]) -> Vec<Vec<[usize; 2]>> {
    states
        .iter()
        .map(|l| l.iter().map(|s| [s.nrows(), s.ncols()]).collect())
        .collect()
}
