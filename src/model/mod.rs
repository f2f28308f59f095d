//! Models: [`Sequential`], graph models ([`Graph`] builds a [`Functional`]), the architecture as data ([`ModelSpec`]), its [`Summary`], and
//! streaming one step at a time ([`StreamState`]).

mod decode;
mod graph;
mod interface;
mod sequential;
mod spec;
mod stream;
mod summary;

pub use decode::{DecodeState, StepDecoder};
pub use graph::{
    Functional, Graph, GraphInput, GraphNode, GraphSpec, LayerId, LayerKey, NodeLayer, RnnCall,
    RnnOutputs, Tensor,
};
pub(crate) use interface::has_stateful_layer;
pub use interface::{Architecture, Model, ModelState};
pub use sequential::Sequential;
pub use spec::ModelSpec;
pub use stream::StreamState;
pub use summary::{Summary, SummaryRow};

/// A model's lock for calls through `&self` that move carried (stateful) states on: one
/// such call at a time. A copy of the model gets a lock of its own.
#[derive(Debug, Default)]
pub(crate) struct Serial(std::sync::Mutex<()>);

impl Serial {
    /// Holds the lock until the guard drops (a poisoned lock guards nothing: taken anyway).
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clone for Serial {
    fn clone(&self) -> Self {
        Serial::default()
    }
}
