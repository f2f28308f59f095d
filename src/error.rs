//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong in rnnkit's public API.
///
/// Every variant names the layer (or model part) at fault, what was expected and what was
/// received, so a message can be acted on without a debugger.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// An input of the wrong rank (number of axes).
    #[error(
        "{layer}: expected input of rank {expected} ({layout}), got rank {got} with shape {shape:?}"
    )]
    Rank {
        /// Layer name.
        layer: String,
        /// Accepted rank(s), e.g. "3" or "2 or 3".
        expected: String,
        /// The layout the layer wants, e.g. `[batch, steps, features]`.
        layout: &'static str,
        /// Received rank.
        got: usize,
        /// Received shape.
        shape: Vec<usize>,
    },
    /// The last axis of the input does not match the layer's input features.
    #[error("{layer}: expected {expected} input features (last axis), got {got}")]
    Features {
        /// Layer name.
        layer: String,
        /// Features the layer was built for.
        expected: usize,
        /// Features received.
        got: usize,
    },
    /// A shape that does not match what a layer or model expects.
    #[error("{layer}: expected {what} of shape {expected}, got {got:?}")]
    Shape {
        /// Layer or model part.
        layer: String,
        /// What had the wrong shape (`"dL/dy"`, `"mask"`, ...).
        what: &'static str,
        /// The expected shape, written out (`[3, 4]`, `[batch, 5]`).
        expected: String,
        /// Received shape.
        got: Vec<usize>,
    },
    /// A batch with no samples, or a sequence with no steps.
    #[error("{layer}: empty input: {what} is 0 in shape {shape:?}")]
    Empty {
        /// Layer name.
        layer: String,
        /// Which axis is empty (`"batch"`, `"steps"`).
        what: &'static str,
        /// Received shape.
        shape: Vec<usize>,
    },
    /// An invalid configuration value.
    #[error("{layer}: invalid `{field}`: {reason}")]
    Config {
        /// Layer or component name.
        layer: String,
        /// The offending field.
        field: &'static str,
        /// Why it is invalid, with the received value.
        reason: String,
    },
    /// A weight array of the wrong shape in `set_weights`.
    #[error("{layer}: weight `{name}` expected shape {expected:?}, got {got:?}")]
    WeightShape {
        /// Layer name.
        layer: String,
        /// Weight name (`kernel`, `recurrent_kernel`, `bias`).
        name: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Received shape.
        got: Vec<usize>,
    },
    /// The wrong number of weight arrays in `set_weights`.
    #[error("{layer}: expected {expected} weight arrays, got {got}")]
    WeightCount {
        /// Layer or model name.
        layer: String,
        /// Expected count.
        expected: usize,
        /// Received count.
        got: usize,
    },
    /// `backward` called without a preceding `Mode::Train` forward.
    #[error("{layer}: backward called without a Mode::Train forward pass")]
    NoCache {
        /// Layer name.
        layer: String,
    },
    /// Two layers that cannot be stacked.
    #[error("cannot stack {layer} after {previous}: {reason}")]
    Incompatible {
        /// The layer being added.
        layer: String,
        /// The layer before it (or `input`).
        previous: String,
        /// Why they do not fit.
        reason: String,
    },
    /// A mask given to a layer that cannot take one, or a mask that does not fit.
    #[error("{layer}: {reason}")]
    Mask {
        /// Layer name.
        layer: String,
        /// What is wrong.
        reason: String,
    },
    /// Data that cannot be trained on (mismatched lengths, non-finite values, bad labels).
    #[error("data: {0}")]
    Data(String),
    /// Training produced a non-finite loss or weight.
    #[error(
        "training diverged at epoch {epoch}, batch {batch}: loss is {loss}; weights of the last finite step were kept"
    )]
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The offending loss value (printed).
        loss: String,
    },
    /// A file could not be read, written or renamed.
    #[error("{path}: cannot {op}: {reason}")]
    Io {
        /// The path.
        path: String,
        /// What was being done (`"read"`, `"write"`, `"rename into place"`).
        op: &'static str,
        /// The operating system's message.
        reason: String,
    },
    /// A model file that is invalid, corrupt or from a newer version.
    #[error("{path}: {error}")]
    File {
        /// Where the bytes came from (a path, or `<bytes>`).
        path: String,
        /// What is wrong.
        error: FileError,
    },
    /// Prediction asked of a model whose readout has not been fitted yet.
    #[error("{model}: not fitted yet: call fit first")]
    NotFitted {
        /// Model name.
        model: String,
    },
    /// Something a model or layer cannot do: be saved (a layer type without a saved
    /// form), be trained by gradients (a reservoir), give logits it claims.
    #[error("{layer}: unsupported: {reason}")]
    Unsupported {
        /// Layer name.
        layer: String,
        /// Why.
        reason: String,
    },
}

/// What is wrong with a model file (see [`Error::File`]).
///
/// The loader checks everything before it trusts it: the container, the metadata, the
/// architecture, every tensor's dtype, shape and values, and the sizes the architecture
/// implies against the size of the file.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum FileError {
    /// The bytes are not a valid safetensors container (bad header length, header past the
    /// end of the file, invalid JSON, overlapping or out-of-range offsets, ...).
    #[error("not a valid safetensors file: {0}")]
    Container(String),
    /// A valid safetensors file that was not written by rnnkit (no `format: rnnkit`).
    #[error("not an rnnkit model file: {0}")]
    NotRnnkit(String),
    /// A metadata entry that is missing or malformed.
    #[error("metadata `{key}`: {reason}")]
    Metadata {
        /// The metadata key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A file written by a newer rnnkit.
    #[error(
        "format version {found} is newer than this rnnkit reads (up to {supported}); upgrade rnnkit"
    )]
    Version {
        /// The file's format version.
        found: u64,
        /// The newest version this build reads.
        supported: u64,
    },
    /// The architecture JSON names a layer type rnnkit does not have.
    #[error("unknown layer type {found:?} (supported: {supported})")]
    UnknownLayer {
        /// The type found.
        found: String,
        /// The supported types.
        supported: &'static str,
    },
    /// The architecture JSON does not describe a valid model.
    #[error("architecture: {0}")]
    Architecture(String),
    /// A tensor the architecture needs is not in the file.
    #[error("tensor `{0}` is missing")]
    MissingTensor(String),
    /// A tensor in the file that the architecture does not account for.
    #[error("tensor `{0}` is not part of the architecture")]
    UnexpectedTensor(String),
    /// A tensor whose dtype or shape disagrees with the architecture.
    #[error("tensor `{tensor}`: expected {expected}, found {found}")]
    Tensor {
        /// Tensor name.
        tensor: String,
        /// What the architecture implies.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// A weight that is NaN or infinite.
    #[error("tensor `{tensor}` holds a non-finite value ({value}) at flat index {index}")]
    NonFinite {
        /// Tensor name.
        tensor: String,
        /// Flat (row-major) index of the first bad value.
        index: usize,
        /// The value, printed.
        value: String,
    },
    /// The architecture implies more weights than the file holds (refused before allocating).
    #[error("layer {layer}: {reason}")]
    TooLarge {
        /// Layer name.
        layer: String,
        /// The sizes that do not fit.
        reason: String,
    },
    /// A checkpoint whose training state does not fit the trainer or the model.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
}

/// `Result` with rnnkit's [`Error`](enum@Error).
pub type Result<T> = std::result::Result<T, Error>;
