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
    Functional, Graph, GraphInput, GraphNode, GraphSpec, LayerId, NodeLayer, RnnCall, RnnOutputs,
    Tensor,
};
pub use interface::{Architecture, Forward, Model};
pub use sequential::Sequential;
pub use spec::ModelSpec;
pub use stream::StreamState;
pub use summary::{Summary, SummaryRow};
