//! What a [`Bidirectional`](crate::layers::Bidirectional) needs of the recurrent layer it wraps,
//! and [`Recurrent`]'s answers.

use super::Recurrent;
use crate::float::Float;
use crate::layers::recurrent::Cell;
use crate::layers::recurrent::SequenceConfig;
use crate::layers::{Layer, LayerState};

/// What [`Bidirectional`](crate::layers::Bidirectional) needs of the layer it wraps.
pub trait RecurrentLayer<F: Float>: Layer<F> + LayerState<F> + Clone + 'static {
    /// Whether the layer returns every step.
    fn return_sequences(&self) -> bool;
    /// Whether the layer runs backwards in time.
    fn go_backwards(&self) -> bool;
    /// Sets `go_backwards`.
    fn set_go_backwards(&mut self, v: bool);
    /// Sets `zero_output_for_mask`.
    fn set_zero_output_for_mask(&mut self, v: bool);
    /// Output features per step.
    fn units(&self) -> usize;
    /// Input features.
    fn input_dim(&self) -> usize;
}

impl<C: Cell> RecurrentLayer<C::F> for Recurrent<C> {
    fn return_sequences(&self) -> bool {
        self.cfg().return_sequences
    }
    fn go_backwards(&self) -> bool {
        self.cfg().go_backwards
    }
    fn set_go_backwards(&mut self, v: bool) {
        let mut o = self.config.sequence();
        o.go_backwards = v;
        self.config.set_sequence(o);
        self.trained = false;
    }
    fn set_zero_output_for_mask(&mut self, v: bool) {
        let mut o = self.config.sequence();
        o.zero_output_for_mask = v;
        self.config.set_sequence(o);
    }
    fn units(&self) -> usize {
        self.cell.units()
    }
    fn input_dim(&self) -> usize {
        self.cell.input_dim()
    }
}
