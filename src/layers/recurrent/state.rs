//! Recurrent state between calls: converting Keras's list of states (`[h]`, `[h, c]`) to
//! and from the loop's `[batch, h | c]` block, and the slot a `stateful` layer carries.

use crate::error::{Error, Result};
use crate::float::Float;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};
use std::sync::Mutex;

/// Checks a layer's states in Keras order (`blocks` arrays of `[batch, units]`) and copies
/// them into the loop's `[batch, blocks·units]` layout `into`. States that come from the
/// user are also checked finite (`check_values`); a stream's own states need not be, on
/// every step.
pub(super) fn gather_states<F: Float>(
    layer: &str,
    states: &[Array2<F>],
    blocks: usize,
    units: usize,
    batch: usize,
    check_values: bool,
    mut into: ArrayViewMut2<'_, F>,
) -> Result<()> {
    if states.len() != blocks {
        return Err(Error::Shape {
            layer: layer.to_string(),
            what: "states (one [batch, units] array per state: h, or h and c for LSTM)",
            expected: format!("{blocks} arrays"),
            got: vec![states.len()],
        });
    }
    for (i, st) in states.iter().enumerate() {
        if st.dim() != (batch, units) {
            return Err(Error::Shape {
                layer: layer.to_string(),
                what: "a state",
                expected: format!("[{batch}, {units}]"),
                got: st.shape().to_vec(),
            });
        }
        if check_values && st.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "{layer}: state {i} has a non-finite value"
            )));
        }
    }
    for (i, st) in states.iter().enumerate() {
        into.slice_mut(s![.., i * units..(i + 1) * units])
            .assign(st);
    }
    Ok(())
}

/// Splits the loop's `[batch, blocks·units]` state into Keras's list, writing into
/// `states` (reusing its arrays when their shapes fit).
pub(super) fn scatter_states<F: Float>(
    block: ArrayView2<'_, F>,
    blocks: usize,
    units: usize,
    states: &mut Vec<Array2<F>>,
) {
    let batch = block.nrows();
    states.truncate(blocks);
    for (i, st) in states.iter_mut().enumerate() {
        if st.dim() != (batch, units) {
            *st = Array2::zeros((batch, units));
        }
        st.assign(&block.slice(s![.., i * units..(i + 1) * units]));
    }
    for i in states.len()..blocks {
        states.push(block.slice(s![.., i * units..(i + 1) * units]).to_owned());
    }
}

/// The state a `stateful` layer carries from one call to the next, `[batch, h | c]`:
/// `None` until the first call, which fixes the batch size. Behind a lock so inference
/// through `&self` can move it on, as Keras's `predict` does.
#[derive(Debug, Default)]
pub(super) struct Carried<F>(Mutex<Option<Array2<F>>>);

impl<F: Float> Carried<F> {
    /// The carried state, if any.
    pub(super) fn get(&self) -> Option<Array2<F>> {
        self.lock().clone()
    }

    /// Replaces the carried state.
    pub(super) fn set(&self, state: Option<Array2<F>>) {
        *self.lock() = state;
    }

    /// Zeroes the state, keeping the batch size (Keras's `reset_state`).
    pub(super) fn reset(&self) {
        if let Some(s) = self.lock().as_mut() {
            s.fill(F::zero());
        }
    }

    /// The slot itself, locked: a stateful call through `&self` holds it from reading the
    /// state to writing the next one, so calls from several threads each advance it once.
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Option<Array2<F>>> {
        // A panic elsewhere while holding the lock leaves a whole array: keep using it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<F: Float> Clone for Carried<F> {
    fn clone(&self) -> Self {
        Carried(Mutex::new(self.get()))
    }
}

/// The initial state of a stateful call with batch `b`: the carried one, zeros on the first
/// call, an error when the batch size changed.
pub(super) fn carried_initial<F: Float>(
    layer: &str,
    carried: Option<&Array2<F>>,
    b: usize,
    width: usize,
) -> Result<Array2<F>> {
    match carried {
        Some(s) if s.nrows() != b => Err(Error::Shape {
            layer: layer.to_string(),
            what: "input batch (a stateful layer keeps one state per sample; reset it \
                   with set_states(None) to change the batch size)",
            expected: format!("[{}, steps, features]", s.nrows()),
            got: vec![b],
        }),
        Some(s) => Ok(s.clone()),
        None => Ok(Array2::zeros((b, width))),
    }
}
