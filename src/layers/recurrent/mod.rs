//! Recurrent layers: one time loop ([`Recurrent<C>`]) runs any [`Cell`] over a sequence.
//!
//! - `config`: [`RecurrentLayerConfig`], what the three plain configuration structs share
//!   (the options the loop reads, the shared builder methods, the checked construction);
//! - `cell`: the [`Cell`] contract (one step, forward and backward);
//! - `state`: states between calls (Keras's list `[h, c]` and the loop's block), the
//!   slot a `stateful` layer carries;
//! - `flow`: the gradient-flow regulariser's per-step factor and weight gradient;
//! - `time_loop`: the loop itself, forwards and backwards through time;
//! - `layer`: [`Recurrent<C>`], the loop as a [`Layer`](crate::Layer);
//! - `workspace`: sequence-sized buffers and the split of a batch across threads;
//! - `weights`: the weights every cell has, with the packed recurrent kernel.

mod cell;
pub(crate) mod config;
mod flow;
mod lanes;
mod layer;
mod state;
mod time_loop;
mod weights;
mod workspace;

pub use cell::Cell;
pub(crate) use cell::sealed as cell_sealed;
pub use cell::{BackwardStep, SequenceGrads};
pub(crate) use cell::{sl, sl_mut};
pub use config::{CellOptions, RecurrentLayerConfig, SequenceConfig, SequenceOptions};
pub(crate) use config::{build_recurrent, name_or_default, seq_input, sequence_builders};
pub(crate) use flow::{add_flow_grad, flow_row};
pub(crate) use lanes::{avx2_twin, zip_lanes};
pub use layer::{Recurrent, RecurrentLayer};
pub use weights::CellWeights;
