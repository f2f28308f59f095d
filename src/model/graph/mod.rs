//! Graph models, Keras's Functional API: named inputs, layer calls wired by typed handles
//! ([`Tensor`]), several inputs and outputs, recurrent states in and out, shared layers,
//! merges (layers called on lists), masks that flow as Keras's do. [`Graph`] builds; [`Functional`] runs.
//!
//! - `builder`: [`Graph`], its handles and the shape checks made while wiring;
//! - `functional`: [`Functional`], forward and backward over the wired graph;
//! - `spec`: [`GraphSpec`], the architecture as data;
//! - `summary`: Keras's functional summary.

mod builder;
mod functional;
mod spec;
mod summary;

pub use builder::{Graph, LayerId, LayerKey, RnnCall, RnnOutputs, Tensor};
pub use functional::Functional;
pub use spec::{GraphInput, GraphNode, GraphSpec, NodeLayer};

use crate::layers::{Dim, Layer};

/// What a node of the graph does.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// A model input.
    Input,
    /// A call of layer `layer` on `inputs[0]`.
    Call {
        layer: usize,
        /// The first call of the layer (it owns the weights); later calls share them.
        first: bool,
        /// The call passes states: initial states in (`initial`, possibly empty = zeros)
        /// and final states out (outputs 1..).
        states: bool,
        /// Tensors holding the initial states, in state order.
        initial: Vec<Tensor>,
        /// The tensor whose mask the layer receives explicitly.
        mask_of: Option<Tensor>,
    },
}

/// One node: an input, a layer call or a merge, with its outputs' shapes (no batch).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) op: Op,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) shapes: Vec<Vec<Dim>>,
}

/// The layers of a graph, each owned once however often it is called.
pub(crate) type Layers<F> = Vec<Box<dyn Layer<F>>>;

/// Tensor refs of a node's inputs, initial states and explicit mask: every tensor the node
/// reads.
pub(crate) fn reads(node: &Node) -> impl Iterator<Item = &Tensor> {
    let extra: &[Tensor] = match &node.op {
        Op::Call { initial, .. } => initial,
        _ => &[],
    };
    let mask = match &node.op {
        Op::Call {
            mask_of: Some(m), ..
        } => Some(m),
        _ => None,
    };
    node.inputs.iter().chain(extra).chain(mask)
}
