//! [`LayerState`]: what a layer carries between calls (a `stateful` layer's states, its
//! dropout streams) and its one-step streaming form, behind their own small trait, reached
//! through [`Layer::state`] and [`Layer::state_mut`].

use super::{Layer, StepWork};
use crate::error::{Error, Result};
use crate::float::Float;
use ndarray::{Array2, ArrayView2};

/// Carried state and one-step streaming. Every method has a default meaning "none":
/// a layer implements what it has.
///
/// ```
/// use rnnkit::prelude::*;
/// use rnnkit::ndarray::Array3;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let mut lstm = LstmConfig::new(3).stateful(true).build::<f64>(2, &mut seeded_rng(0))?;
/// let x = Array3::from_elem((1, 4, 2), 0.5).into_dyn();
/// lstm.forward(Inputs::new(&x))?;
/// let state = lstm.state_mut().expect("a recurrent layer has state");
/// assert_eq!(state.states().len(), 2); // h and c, carried to the next call
/// state.reset_states();
/// assert!(state.states()[0].iter().all(|&v| v == 0.0));
/// # Ok(()) }
/// ```
pub trait LayerState<F: Float>: Layer<F> {
    /// Whether the layer runs one step at a time ([`LayerState::step`]). A model streams
    /// only when every layer does; it asks once, when a stream starts.
    fn streams(&self) -> bool {
        false
    }

    /// One step of streaming inference without allocating (after the first call at a
    /// batch size): `x` `[batch, features]` → `out` `[batch, output features]` (resized on
    /// the first call only), from `states` (Keras order, as [`LayerState::zero_states`]
    /// gives them), which are replaced in place by the states after the step. `work` holds
    /// the step's scratch buffers. The output equals that step's output in one pass over
    /// the whole sequence. [`Sequential::step`](crate::Sequential::step) chains it through
    /// a model.
    ///
    /// # Errors
    /// The default: [`Error::Unsupported`] (the layer cannot run one step at a time, as a
    /// Bidirectional layer, which needs the steps to come). Recurrent and Dense layers:
    /// [`Error::Features`] for the wrong feature count, [`Error::Shape`] for states that do
    /// not fit; nothing changes then.
    fn step(
        &self,
        x: ArrayView2<'_, F>,
        states: &mut [Array2<F>],
        work: &mut StepWork<F>,
        out: &mut Array2<F>,
    ) -> Result<()> {
        let _ = (x, states, work, out);
        Err(Error::Unsupported {
            layer: self.name().to_string(),
            reason: format!("a {} layer cannot run one step at a time", self.type_name()),
        })
    }

    /// Zero states for a batch of `batch` sequences, in Keras's order (`[h]` for SimpleRNN
    /// and GRU, `[h, c]` for LSTM, each `[batch, units]`); empty for a layer without state.
    ///
    /// # Errors
    /// [`Error::Data`] for states too large for one array.
    fn zero_states(&self, batch: usize) -> Result<Vec<Array2<F>>> {
        let _ = batch;
        Ok(Vec::new())
    }

    /// The states a `stateful` layer carries (Keras order, `[batch, units]` each); empty
    /// before its first call and for other layers.
    fn states(&self) -> Vec<Array2<F>> {
        Vec::new()
    }

    /// Sets the carried states of a `stateful` layer (`None` forgets them: the next call
    /// starts from zeros and may have any batch size).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a layer that is not stateful; [`Error::Shape`] or
    /// [`Error::Data`] for bad states (nothing changes then).
    fn set_states(&mut self, states: Option<&[Array2<F>]>) -> Result<()> {
        let _ = states;
        Err(Error::Unsupported {
            layer: self.name().to_string(),
            reason: "this layer carries no state between calls".into(),
        })
    }

    /// Zeroes the carried states of a `stateful` layer (Keras's `reset_state`), keeping its
    /// batch size; nothing for other layers.
    fn reset_states(&mut self) {}

    /// Where this layer's random streams stand (dropout masks): each stream's seed and the
    /// training passes it has drawn. Checkpoints store them, so a resumed run draws the
    /// masks an uninterrupted one would. Empty for layers without randomness.
    fn rng_state(&self) -> Vec<u64> {
        Vec::new()
    }

    /// Restores [`LayerState::rng_state`].
    ///
    /// # Errors
    /// [`Error::Shape`] for another count of numbers than [`LayerState::rng_state`] gives
    /// (nothing changes then).
    fn set_rng_state(&mut self, state: &[u64]) -> Result<()> {
        let have = self.rng_state().len();
        if state.len() != have {
            return Err(Error::Shape {
                layer: self.name().to_string(),
                what: "random stream state",
                expected: format!("{have} numbers"),
                got: vec![state.len()],
            });
        }
        Ok(())
    }
}

/// A layer's zero states, empty for a layer without [`LayerState`].
pub(crate) fn zero_states_of<F: Float>(
    l: &(impl Layer<F> + ?Sized),
    batch: usize,
) -> Result<Vec<Array2<F>>> {
    l.state().map_or(Ok(Vec::new()), |s| s.zero_states(batch))
}

/// A layer's carried states, empty for a layer without [`LayerState`].
pub(crate) fn states_of<F: Float>(l: &(impl Layer<F> + ?Sized)) -> Vec<Array2<F>> {
    l.state().map_or_else(Vec::new, |s| s.states())
}

/// A layer's random streams, empty for a layer without [`LayerState`].
pub(crate) fn rng_of<F: Float>(l: &(impl Layer<F> + ?Sized)) -> Vec<u64> {
    l.state().map_or_else(Vec::new, |s| s.rng_state())
}

/// Resets a layer's carried states, if it has any.
pub(crate) fn reset_of<F: Float>(l: &mut (impl Layer<F> + ?Sized)) {
    if let Some(s) = l.state_mut() {
        s.reset_states();
    }
}

/// Whether a layer streams.
pub(crate) fn streams_of<F: Float>(l: &(impl Layer<F> + ?Sized)) -> bool {
    l.state().is_some_and(|s| s.streams())
}
