//! Model files: one [safetensors](https://huggingface.co/docs/safetensors) file per model,
//! one way in and one way out for every model type.
//!
//! - [`Save`]: `model.save(path)` / `model.to_bytes()` for a [`Sequential`], a
//!   [`Functional`](crate::Functional), an [`EchoStateNetwork`](crate::EchoStateNetwork) and
//!   an [`AnyModel`].
//! - [`Load`]: `Sequential::<f32>::load(path)`, `Functional::load`, `EchoStateNetwork::load`,
//!   or [`AnyModel`]`::load`, which opens any rnnkit model file and says what it holds. An
//!   `f32` file loads into an `f64` model exactly and an `f64` file into an `f32` model
//!   rounded to nearest, as Keras casts saved weights to a layer's dtype
//!   ([`FileInfo::dtype`] says what the file holds).
//! - [`FileInfo`]: a file's header (model type, architecture, dtype, tensors, checkpoint
//!   state) without building the model.
//! - Checkpoints ([`Trainer::save_checkpoint`](crate::Trainer::save_checkpoint),
//!   [`Trainer::resume`](crate::Trainer::resume)) are model files with the trainer's state
//!   added: every loader above opens them as their model.
//!
//! # Format (version 1)
//!
//! A standard safetensors file, so any safetensors reader opens it (Python:
//! `safetensors.numpy.load_file("model.safetensors")`):
//!
//! - every weight as a tensor named `<layer>/<weight>` in Keras's `get_weights()` layout:
//!   `lstm/kernel`, `lstm/recurrent_kernel`, `lstm/bias`, `dense/kernel`, and for
//!   Bidirectional `bidirectional/forward_lstm/kernel`, ..., `bidirectional/backward_lstm/bias`;
//!   all tensors `F32` or all `F64`, little-endian, row-major;
//! - header metadata (`__metadata__`, string values): `format` = `"rnnkit"`,
//!   `format_version` = `"1"`, `dtype` = `"F32"` or `"F64"`, `rnnkit_version`, `model_type`
//!   (`"Functional"`, `"EchoStateNetwork"`; absent or `"Sequential"` for a stack of layers)
//!   and `architecture`: for a `Sequential` the [`ModelSpec`] as JSON
//!   (`{"name", "input_shape", "layers": [{"layer": "LSTM", "config": {...}}, ...]}`), for
//!   a `Functional` the [`GraphSpec`](crate::model::GraphSpec);
//! - an echo state network's `architecture` is `{"input_dim", "config"}` and its tensors
//!   are `W_in`, `W`, `b`, `state` and (once fitted) `W_out`;
//! - checkpoints add `checkpoint` (JSON: epoch, optimizer, step count, seed) and the
//!   optimizer's state as tensors `optimizer/<group>/<slot>` (`optimizer/m/0`, ...), slots in
//!   `get_weights()` order.
//!
//! Loading trusts nothing: see [`FileError`] for what is checked.
//! Saving is atomic: the bytes go to a temporary file in the target's directory, which is
//! flushed, synced and renamed over the target, so a failed save leaves the old file intact.

mod any;
mod container;
mod graph;
mod header;
mod keras;
mod keras_file;
pub mod onnx;
pub(crate) mod pytorch;
mod reservoir;
mod sequential;
mod spec;
mod write;

pub use crate::layers::{LAYER_TYPES, LayerSpec};
pub use crate::model::ModelSpec;
pub use any::AnyModel;
pub(crate) use container::Container;
pub(crate) use header::Header;
pub(crate) use write::{Writer, dtype_of, file_error, read_file, write_atomic};

use crate::error::{FileError, Result};
use crate::model::Architecture;
#[cfg(doc)]
use crate::model::Sequential;
use std::path::Path;
use write::bytes_error;

/// The newest format version this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// Name prefix of the optimizer-state tensors in a checkpoint.
pub(crate) const OPTIMIZER_PREFIX: &str = "optimizer/";

/// Every model saves through this trait: the same two calls for a `Sequential`, a
/// `Functional`, an echo state network and an [`AnyModel`]. A user's own model can
/// implement [`Save::to_bytes`] and get [`Save::save`] with it.
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let model = Sequential::<f32>::new(&[3, 1])
///     .push(LstmConfig::new(8))?
///     .push(DenseConfig::new(1))?;
/// let path = std::env::temp_dir().join("rnnkit-doc-save.safetensors");
/// model.save(&path)?;
/// let loaded = Sequential::<f32>::load(&path)?;
/// assert_eq!(loaded.get_weights(), model.get_weights());
/// # std::fs::remove_file(&path).ok();
/// # Ok(()) }
/// ```
pub trait Save {
    /// The model as a model file's bytes (see the [format](crate::io)).
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) for a layer or model without a
    /// saved form; [`Error::File`](crate::Error::File) with [`FileError::NonFinite`] when a
    /// weight is NaN or infinite.
    fn to_bytes(&self) -> Result<Vec<u8>>;

    /// Saves the model to one safetensors file, atomically: on any failure a previous
    /// file at `path` is left as it was.
    ///
    /// # Errors
    /// As [`Save::to_bytes`]; [`Error::Io`](crate::Error::Io) when the file cannot be
    /// written.
    fn save(&self, path: impl AsRef<Path>) -> Result<()>
    where
        Self: Sized,
    {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// The model in another framework's [`Format`], as bytes (ONNX: one `ModelProto`).
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) naming the layer and option with
    /// no exact form in that format (see [`onnx`]), or a model type not exported yet.
    fn to_format(&self, format: Format) -> Result<Vec<u8>> {
        Err(crate::Error::Unsupported {
            layer: "model".into(),
            reason: format!("{format:?} export is written for Sequential models so far"),
        })
    }

    /// Writes the model in another framework's [`Format`] to `path`, atomically.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// use rnnkit::io::Format;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let model = Sequential::<f32>::new(&[10, 3])
    ///     .push(LstmConfig::new(8))?
    ///     .push(DenseConfig::new(1))?;
    /// let path = std::env::temp_dir().join("rnnkit_doc_export.onnx");
    /// model.export(&path, Format::Onnx)?; // serve it with ONNX Runtime
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Save::to_format`]; [`Error::Io`](crate::Error::Io) when the file cannot be
    /// written.
    fn export(&self, path: impl AsRef<Path>, format: Format) -> Result<()>
    where
        Self: Sized,
    {
        let (path, bytes) = (path.as_ref(), self.to_format(format)?);
        match format {
            Format::Onnx | Format::OnnxStream => write_atomic(path, &bytes),
            Format::PyTorch => {
                std::fs::create_dir_all(path).map_err(|e| crate::Error::Io {
                    path: path.display().to_string(),
                    op: "create the directory",
                    reason: e.to_string(),
                })?;
                write_atomic(&path.join("model.safetensors"), &bytes)?;
                write_atomic(&path.join("model.py"), pytorch::MODEL_PY.as_bytes())
            }
        }
    }
}

/// Sets weights of `model`'s layers from a PyTorch `state_dict` saved as safetensors
/// (`safetensors.torch.save_file(module.state_dict(), path)`): `modules` pairs each rnnkit
/// layer (by name) with the prefix of the PyTorch module holding its weights, `("lstm",
/// "encoder.")` for `self.encoder = nn.LSTM(...)` (`""` for a bare module). Reads
/// `nn.RNN` / `nn.LSTM` / `nn.GRU` (`weight_ih_l0`, ..., `_reverse` into a
/// Bidirectional; gate orders converted, the two biases summed into Keras's one, a GRU's
/// kept apart as `reset_after=True` needs), `nn.Linear` and `nn.Embedding` (`weight`,
/// `bias`). The rnnkit layers must compute what the modules do (same sizes, tanh/sigmoid
/// gates, GRU `reset_after=True`, `batch_first` inputs). A PyTorch export directory loads
/// whole with [`Load::load`] instead.
///
/// ```no_run
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// // class Net(nn.Module): self.encoder = nn.LSTM(3, 16, batch_first=True); self.fc = nn.Linear(16, 1)
/// let mut model = Sequential::<f32>::new(&[20, 3])
///     .push(LstmConfig::new(16))?
///     .push(DenseConfig::new(1))?;
/// rnnkit::io::load_state_dict(&mut model, "net.safetensors", &[("lstm", "encoder."), ("dense", "fc.")])?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) when the file cannot be read;
/// [`Error::File`](crate::Error::File) naming a layer the model lacks, a missing or
/// misshapen tensor, a dtype other than F32/F64, a non-finite value, or a layer PyTorch
/// cannot express. On error the model is unchanged.
pub fn load_state_dict<F: crate::Float, M: crate::Model<F> + ?Sized>(
    model: &mut M,
    path: impl AsRef<Path>,
    modules: &[(&str, &str)],
) -> Result<()> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    pytorch::load_state_dict(model, &bytes, modules).map_err(|e| file_error(path, e))
}

/// A format other frameworks read, for [`Save::export`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// ONNX (opset [`onnx::OPSET`], float32), for ONNX Runtime and other ONNX runtimes.
    Onnx,
    /// ONNX, the one-step streaming form of a Sequential model: inputs `input`
    /// `[batch, features]` and each recurrent layer's states (`<layer>_h`, `<layer>_c`),
    /// outputs `output` and the new states (`<layer>_h_out`, ...), as
    /// [`Sequential::step`](crate::Sequential::step) runs it.
    OnnxStream,
    /// PyTorch: a directory with `model.safetensors` (PyTorch's names and layouts) and
    /// `model.py`, whose `load(dir)` returns the model as an `nn.Module`; [`Load::load`]
    /// reads such a directory back. [`Save::to_format`] gives the `model.safetensors`.
    PyTorch,
}

/// Every model loads through this trait: [`Load::load`] a file, [`Load::from_bytes`] bytes
/// in memory, for `Sequential`, `Functional`, `EchoStateNetwork` or [`AnyModel`] (any of
/// them, saying which). A checkpoint loads as its model. The float type converts: an `f32`
/// file into an `f64` model exactly, an `f64` file into an `f32` one rounded to nearest
/// (a value beyond `f32`'s range is refused).
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let model = Sequential::<f32>::new(&[3, 1]).push(GruConfig::new(4))?;
/// let wide = Sequential::<f64>::from_bytes(&model.to_bytes()?)?; // f32 file, f64 model
/// assert_eq!(wide.get_weights()[0], model.get_weights()[0].mapv(f64::from));
/// # Ok(()) }
/// ```
///
/// This trait is sealed: the models rnnkit can rebuild from a file implement it.
pub trait Load: Sized + sealed::Decode {
    /// Loads a model file (or checkpoint) written by [`Save::save`].
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when the file cannot be read;
    /// [`Error::File`](crate::Error::File) naming what is wrong otherwise: not an rnnkit
    /// file, another model type, an unknown layer, a missing, misshapen, extra or
    /// non-finite tensor.
    fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        // A PyTorch export is a directory; its weights are in `model.safetensors`.
        let bytes = if path.is_dir() {
            read_file(&path.join("model.safetensors"))?
        } else {
            read_file(path)?
        };
        Self::decode_bytes(&bytes).map_err(|e| file_error(path, e))
    }

    /// [`Load::load`] from bytes in memory; never panics, whatever the bytes.
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) naming what is wrong.
    fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode_bytes(bytes).map_err(bytes_error)
    }
}

impl<T: sealed::Decode> Load for T {}

pub(crate) mod sealed {
    use super::{FileError, Header, OPTIMIZER_PREFIX};

    /// Rebuilds a model from a checked file header.
    pub trait Decode: Sized {
        /// The model the header describes with its weights; `extra` accepts tensor names
        /// outside the model (a checkpoint's optimizer state).
        fn decode(
            header: &Header<'_>,
            extra: &dyn Fn(&str) -> bool,
        ) -> std::result::Result<Self, FileError>;

        /// Parses and decodes; a checkpoint loads as its model.
        fn decode_bytes(bytes: &[u8]) -> std::result::Result<Self, FileError> {
            if super::keras_file::is_zip(bytes) {
                // A Keras `.keras` archive: read as the rnnkit file it amounts to.
                return Self::decode_bytes(&super::keras_file::to_rnnkit_file(bytes)?);
            }
            if let Some(file) = super::pytorch_layout(bytes)? {
                return Self::decode_bytes(&file);
            }
            let header = Header::parse(bytes)?;
            let checkpoint = header.checkpoint.is_some();
            Self::decode(&header, &|n| checkpoint && n.starts_with(OPTIMIZER_PREFIX))
        }
    }
}

/// A PyTorch export's `model.safetensors` as the rnnkit file it amounts to; `None` for
/// any other file.
fn pytorch_layout(bytes: &[u8]) -> std::result::Result<Option<Vec<u8>>, FileError> {
    let Ok(c) = container::Container::open(bytes) else {
        return Ok(None);
    };
    if c.meta.get("layout").map(String::as_str) != Some("pytorch") {
        return Ok(None);
    }
    let get = |name: &str| {
        let t = c.tensors.tensor(name).ok()?;
        c.array::<f32>(name, t.shape()).ok()
    };
    pytorch::to_rnnkit_file(&c.meta, &get).map(Some)
}

/// What a model file holds, read without building the model.
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let model = Sequential::<f32>::new(&[3, 1])
///     .push(SimpleRnnConfig::new(4))?
///     .push(DenseConfig::new(1))?;
/// let info = FileInfo::from_bytes(&model.to_bytes()?)?;
/// assert_eq!((info.format_version, info.dtype.as_str()), (1, "F32"));
/// assert_eq!(info.architecture.model_type(), "Sequential");
/// assert_eq!(info.tensors[0].0, "dense/bias");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    /// Format version the file was written with.
    pub format_version: u64,
    /// `"F32"` or `"F64"`.
    pub dtype: String,
    /// The rnnkit version that wrote the file, if recorded.
    pub rnnkit_version: Option<String>,
    /// The model type and its architecture.
    pub architecture: Architecture,
    /// Every tensor's name and shape, sorted by name.
    pub tensors: Vec<(String, Vec<usize>)>,
    /// The training state, for checkpoints.
    pub checkpoint: Option<CheckpointInfo>,
}

/// The training state a checkpoint records next to the model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointInfo {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer name (`"adam"`).
    pub optimizer: String,
    /// Optimizer steps taken.
    pub iterations: u64,
    /// The trainer's shuffle seed.
    pub seed: u64,
    /// The optimizer's state groups (`["m", "v"]`).
    pub state: Vec<String>,
    /// Every layer's random stream state (dropout masks: seed and passes drawn), one list
    /// per layer ([`ModelState::rng_state`](crate::ModelState::rng_state)); empty in files written
    /// before 0.2, which resume with fresh streams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rng: Vec<Vec<u64>>,
}

impl FileInfo {
    /// Reads and checks the header of a model file of any type.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when the file cannot be read,
    /// [`Error::File`](crate::Error::File) when it is not a valid rnnkit file.
    pub fn read(path: impl AsRef<Path>) -> Result<FileInfo> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        FileInfo::parse(&bytes).map_err(|e| file_error(path, e))
    }

    /// The header's information; a `.keras` archive as the rnnkit file it amounts to.
    fn parse(bytes: &[u8]) -> std::result::Result<FileInfo, FileError> {
        if keras_file::is_zip(bytes) {
            let file = keras_file::to_rnnkit_file(bytes)?;
            return Header::parse(&file).map(|h| h.info());
        }
        Header::parse(bytes).map(|h| h.info())
    }

    /// [`FileInfo::read`] on bytes in memory.
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) when the bytes are not a valid rnnkit file.
    pub fn from_bytes(bytes: &[u8]) -> Result<FileInfo> {
        FileInfo::parse(bytes).map_err(bytes_error)
    }
}
