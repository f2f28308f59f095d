//! Model files: one [safetensors](https://huggingface.co/docs/safetensors) file per model.
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
//!   `format_version` = `"1"`, `dtype` = `"F32"` or `"F64"`, `rnnkit_version`, and
//!   `architecture`: the [`ModelSpec`] as JSON
//!   (`{"name", "input_shape", "layers": [{"layer": "LSTM", "config": {...}}, ...]}`);
//! - an [`EchoStateNetwork`](crate::EchoStateNetwork) file has `model_type` =
//!   `"EchoStateNetwork"`, `architecture` = `{"input_dim", "config"}` and the tensors `W_in`,
//!   `W`, `b`, `state` and (once fitted) `W_out`; a `Sequential` file has no `model_type`
//!   (or `"Sequential"`), and each loader refuses the other's files by name;
//! - checkpoints add `checkpoint` (JSON: epoch, optimizer, step count, seed) and the
//!   optimizer's state as tensors `optimizer/<group>/<slot>` (`optimizer/m/0`, ...), slots in
//!   `get_weights()` order.
//!
//! Loading trusts nothing: see [`FileError`] for what is checked.
//! Saving is atomic: the bytes go to a temporary file in the target's directory, which is
//! flushed, synced and renamed over the target, so a failed save leaves the old file intact.

mod container;
mod graph;
mod keras;
mod reservoir;
mod spec;

pub use crate::layers::{LayerSpec, LAYER_TYPES};
pub use crate::model::ModelSpec;
pub(crate) use container::Container;

use crate::error::{Error, FileError, Result};
use crate::float::Float;
use crate::model::{Model, Sequential};
use ndarray::ArrayD;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The newest format version this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// Name prefix of the optimizer-state tensors in a checkpoint.
pub(crate) const OPTIMIZER_PREFIX: &str = "optimizer/";

/// What a model file holds, read without building the model.
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let model = Sequential::<f32>::new(&[3, 1])
///     .push(SimpleRnnConfig::new(4))?
///     .push(DenseConfig::new(1))?;
/// let info = rnnkit::io::FileInfo::from_bytes(&model.to_bytes()?)?;
/// assert_eq!((info.format_version, info.dtype.as_str()), (1, "F32"));
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
    /// The architecture.
    pub architecture: ModelSpec,
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
    /// Reads and checks the header of a model file.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, [`Error::File`] when it is not a valid
    /// rnnkit file.
    pub fn read(path: impl AsRef<Path>) -> Result<FileInfo> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        Header::parse(&bytes)
            .map(|h| h.info())
            .map_err(|e| file_error(path, e))
    }

    /// [`FileInfo::read`] on bytes in memory.
    ///
    /// # Errors
    /// [`Error::File`] when the bytes are not a valid rnnkit file.
    pub fn from_bytes(bytes: &[u8]) -> Result<FileInfo> {
        Header::parse(bytes).map(|h| h.info()).map_err(bytes_error)
    }
}

/// The safetensors dtype of `F`: `"F32"` or `"F64"` (the only two `Float` types).
pub(crate) fn dtype_of<F: Float>() -> &'static str {
    if std::mem::size_of::<F>() == 8 {
        "F64"
    } else {
        "F32"
    }
}

/// Appends the little-endian bytes of every value in `F`'s own width (the safetensors data
/// layout); widening an f32 to f64 and back is exact.
fn extend_le_bytes<F: Float>(values: impl ExactSizeIterator<Item = F>, out: &mut Vec<u8>) {
    let wide = std::mem::size_of::<F>() == 8;
    out.reserve(values.len() * if wide { 8 } else { 4 });
    for v in values {
        let v = v.to_f64().unwrap_or(f64::NAN);
        if wide {
            out.extend_from_slice(&v.to_le_bytes());
        } else {
            out.extend_from_slice(&(v as f32).to_le_bytes());
        }
    }
}

pub(crate) fn file_error(path: &Path, error: FileError) -> Error {
    Error::File {
        path: path.display().to_string(),
        error,
    }
}

pub(crate) fn bytes_error(error: FileError) -> Error {
    Error::File {
        path: "<bytes>".into(),
        error,
    }
}

fn io_error(path: &Path, op: &'static str, e: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        op,
        reason: e.to_string(),
    }
}

/// Reads a whole file.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_error(path, "read", e))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed
/// and synced, then renamed over `path`. On any failure the temporary file is removed and
/// whatever was at `path` is untouched.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().ok_or_else(|| Error::Io {
        path: path.display().to_string(),
        op: "write",
        reason: "the path does not name a file".into(),
    })?;
    if path.is_dir() {
        return Err(Error::Io {
            path: path.display().to_string(),
            op: "write",
            reason: "the path is a directory".into(),
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_error(&tmp, "create", e))?;
        fail_point()?;
        f.write_all(bytes)
            .and_then(|()| f.flush())
            .and_then(|()| f.sync_all())
            .map_err(|e| io_error(&tmp, "write", e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io_error(path, "rename into place", e))
    })();
    match result {
        Ok(()) => {
            // Make the rename durable; not every platform can sync a directory.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Tests make the write after the temporary file's creation fail with this.
#[cfg(test)]
pub(crate) static FAIL_WRITES: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn fail_point() -> Result<()> {
    #[cfg(test)]
    if FAIL_WRITES.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::Io {
            path: "<test>".into(),
            op: "write",
            reason: "injected failure".into(),
        });
    }
    Ok(())
}

/// Collects named tensors and metadata, then writes them as one safetensors buffer with
/// sorted keys, so the same model always gives the same bytes.
pub(crate) struct Writer<F: Float> {
    tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)>,
    meta: BTreeMap<String, String>,
    _f: std::marker::PhantomData<F>,
}

impl<F: Float> Writer<F> {
    /// A writer with the metadata every rnnkit file has (format, version, dtype) and no
    /// tensor yet.
    pub(crate) fn new() -> Self {
        let mut w = Writer {
            tensors: BTreeMap::new(),
            meta: BTreeMap::new(),
            _f: std::marker::PhantomData,
        };
        for (k, v) in [
            ("format", "rnnkit".to_string()),
            ("format_version", FORMAT_VERSION.to_string()),
            ("dtype", dtype_of::<F>().to_string()),
            ("rnnkit_version", env!("CARGO_PKG_VERSION").to_string()),
        ] {
            w.meta.insert(k.into(), v);
        }
        w
    }

    /// A writer holding the model's weights and architecture.
    pub(crate) fn model(model: &dyn Model<F>) -> Result<Self> {
        let mut w = Self::new();
        let unsupported = |e: serde_json::Error| Error::Unsupported {
            layer: model.name().to_string(),
            reason: e.to_string(),
        };
        let arch = match model.architecture()? {
            crate::model::Architecture::Sequential(spec) => {
                serde_json::to_string(&spec).map_err(unsupported)?
            }
            crate::model::Architecture::Graph(spec) => {
                w.meta.insert("model_type".into(), graph::MODEL_TYPE.into());
                serde_json::to_string(&spec).map_err(unsupported)?
            }
        };
        let mut err = None;
        model.visit_params(&mut |path, p| {
            if err.is_none() {
                err = w.tensor(path.to_string(), &p.value).err();
            }
        });
        if let Some(e) = err {
            return Err(e);
        }
        w.meta.insert("architecture".into(), arch);
        Ok(w)
    }

    /// Adds a tensor; refuses non-finite values (the loader would refuse the file).
    pub(crate) fn tensor(&mut self, name: String, value: &ArrayD<F>) -> Result<()> {
        if let Some((index, v)) = value.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(bytes_error(FileError::NonFinite {
                tensor: name,
                index,
                value: v.to_string(),
            }));
        }
        let std = value.as_standard_layout();
        let mut data = Vec::new();
        extend_le_bytes(std.iter().copied(), &mut data);
        self.tensors.insert(name, (value.shape().to_vec(), data));
        Ok(())
    }

    /// Adds a metadata entry.
    pub(crate) fn meta(&mut self, key: &str, value: String) {
        self.meta.insert(key.into(), value);
    }

    /// The file's bytes: the header length (u64 little-endian), the JSON header padded
    /// with spaces to a multiple of 8, then the tensors' bytes back to back in name order.
    pub(crate) fn finish(self) -> Result<Vec<u8>> {
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!(self.meta));
        let mut offset = 0;
        for (name, (shape, data)) in &self.tensors {
            header.insert(
                name.clone(),
                serde_json::json!({
                    "dtype": dtype_of::<F>(),
                    "shape": shape,
                    "data_offsets": [offset, offset + data.len()],
                }),
            );
            offset += data.len();
        }
        let mut h = serde_json::to_vec(&header).expect("strings and numbers serialise");
        h.resize(h.len().next_multiple_of(8), b' ');
        let mut out = Vec::with_capacity(8 + h.len() + offset);
        out.extend_from_slice(&(h.len() as u64).to_le_bytes());
        out.extend_from_slice(&h);
        for (_, data) in self.tensors.values() {
            out.extend_from_slice(data);
        }
        Ok(out)
    }
}

/// A parsed and checked header of a `Sequential` file (or checkpoint): the container, and
/// the architecture and training state its metadata describes.
pub(crate) struct Header<'a> {
    pub(crate) c: Container<'a>,
    pub(crate) spec: ModelSpec,
    pub(crate) checkpoint: Option<CheckpointInfo>,
}

impl<'a> Header<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> std::result::Result<Self, FileError> {
        let c = Container::open(bytes)?;
        let meta = &c.meta;
        let get = |key: &'static str| {
            meta.get(key).ok_or(FileError::Metadata {
                key,
                reason: "missing".into(),
            })
        };
        if let Some(other) = meta.get("model_type").filter(|t| *t != "Sequential") {
            return Err(FileError::Architecture(format!(
                "the file holds a {other}, not a Sequential model: load it with {other}::load"
            )));
        }
        let spec = spec::parse_model_spec(get("architecture")?)?;
        let checkpoint = match meta.get("checkpoint") {
            None => None,
            Some(c) => Some(
                serde_json::from_str(c)
                    .map_err(|e| FileError::Checkpoint(format!("metadata: {e}")))?,
            ),
        };
        Ok(Header {
            c,
            spec,
            checkpoint,
        })
    }

    fn info(&self) -> FileInfo {
        let mut tensors: Vec<_> = self
            .c
            .tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.shape().to_vec()))
            .collect();
        tensors.sort();
        FileInfo {
            format_version: self.c.version,
            dtype: format!("{:?}", self.c.dtype),
            rnnkit_version: self.c.meta.get("rnnkit_version").cloned(),
            architecture: self.spec.clone(),
            tensors,
            checkpoint: self.checkpoint.clone(),
        }
    }

    /// Builds the model the header describes and loads its weights. `extra` accepts
    /// tensor names outside the model (a checkpoint's optimizer state).
    pub(crate) fn model<F: Float>(
        &self,
        convert: bool,
        extra: &dyn Fn(&str) -> bool,
    ) -> std::result::Result<Sequential<F>, FileError> {
        self.c.check_dtype::<F>(convert)?;
        let mut model = build_checked::<F>(&self.spec, self.c.scalars())?;
        load_weights(&self.c, &mut model, extra)?;
        Ok(model)
    }
}

/// Loads every weight of `model` from the file's tensors named `<layer>/<weight>`
/// (checked: present, shape, dtype, finite), refusing duplicate names and tensors the model
/// does not have (unless `extra` accepts them).
pub(crate) fn load_weights<F: Float>(
    c: &Container<'_>,
    model: &mut dyn Model<F>,
    extra: &dyn Fn(&str) -> bool,
) -> std::result::Result<(), FileError> {
    let mut expected = Vec::new();
    model.visit_params(&mut |path, p| {
        expected.push((path.to_string(), p.value.shape().to_vec()));
    });
    let mut seen = std::collections::HashSet::new();
    for (name, _) in &expected {
        if !seen.insert(name.as_str()) {
            return Err(FileError::Architecture(format!(
                "two weights named `{name}` (duplicate layer names)"
            )));
        }
    }
    let arrays = expected
        .iter()
        .map(|(n, s)| c.array::<F>(n, s))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if let Some(name) = c
        .names()
        .into_iter()
        .find(|n| !seen.contains(n) && !extra(n))
    {
        return Err(FileError::UnexpectedTensor(name.to_string()));
    }
    let mut values = arrays.into_iter();
    model.visit_params_mut(&mut |_, p| {
        if let Some(v) = values.next() {
            p.value = v;
        }
    });
    Ok(())
}

/// Builds the model `spec` describes, refusing before any allocation a layer whose
/// weights cannot fit in `budget` scalars (the number the file holds). Every layer's
/// weights are at least units·inputs (kernel) plus, for recurrent layers, units²
/// (recurrent kernel), so an honest file always passes.
pub(crate) fn build_checked<F: Float>(
    spec: &ModelSpec,
    budget: usize,
) -> std::result::Result<Sequential<F>, FileError> {
    let mut model = Sequential::<F>::with_input_shape(spec.input_shape.clone()).named(&spec.name);
    let mut left = budget;
    for layer in &spec.layers {
        if let Some((units, _)) = layer.size() {
            let inputs = model.output_shape().last().copied().flatten().unwrap_or(1);
            match layer.min_weights(inputs).filter(|&n| n <= left) {
                Some(n) => left -= n,
                None => {
                    return Err(FileError::TooLarge {
                        layer: layer.name().unwrap_or(layer.type_name()).to_string(),
                        reason: format!(
                            "{units} units on {inputs} inputs need more weights than the \
                             file's {budget} scalars"
                        ),
                    })
                }
            }
        }
        model
            .add(layer)
            .map_err(|e| FileError::Architecture(e.to_string()))?;
    }
    Ok(model)
}

impl<F: Float> Sequential<F> {
    /// The model as a model file's bytes (see the [format](crate::io)).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a layer without a saved form; [`Error::File`] with
    /// [`FileError::NonFinite`] when a weight is NaN or infinite.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Writer::model(self)?.finish()
    }

    /// Saves the model to one safetensors file, atomically (see the [format](crate::io)).
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
    ///
    /// # Errors
    /// As [`Sequential::to_bytes`], and [`Error::Io`] when the file cannot be written (the
    /// previous file at `path`, if any, is then left as it was).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Loads a model saved by [`Sequential::save`], ready for `predict`.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::File`] naming what is wrong
    /// when it is not a valid model file, or holds the other float type.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_impl(path.as_ref(), false)
    }

    /// [`Sequential::load`], converting an `f64` file to `f32` (rounding) or an `f32` file
    /// to `f64` (exact) when the file holds the other float type.
    ///
    /// # Errors
    /// As [`Sequential::load`].
    pub fn load_converted(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_impl(path.as_ref(), true)
    }

    fn load_impl(path: &Path, convert: bool) -> Result<Self> {
        let bytes = read_file(path)?;
        Self::decode(&bytes, convert).map_err(|e| file_error(path, e))
    }

    /// [`Sequential::load`] from bytes in memory; never panics, whatever the bytes.
    ///
    /// # Errors
    /// [`Error::File`] naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, false).map_err(bytes_error)
    }

    /// [`Sequential::from_bytes`] converting the float type if needed.
    ///
    /// # Errors
    /// As [`Sequential::from_bytes`].
    pub fn from_bytes_converted(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, true).map_err(bytes_error)
    }

    fn decode(bytes: &[u8], convert: bool) -> std::result::Result<Self, FileError> {
        let header = Header::parse(bytes)?;
        // A checkpoint loads as its model; the optimizer state is for `Trainer::resume`.
        let checkpoint = header.checkpoint.is_some();
        header.model(convert, &|n| checkpoint && n.starts_with(OPTIMIZER_PREFIX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::dense::DenseConfig;
    use crate::param::Module;
    use std::sync::atomic::Ordering;

    /// A write that fails after the temporary file exists (as a full disk would) leaves the
    /// previous file loadable and no temporary file behind.
    #[test]
    fn a_write_failing_midway_keeps_the_old_file() {
        let dir = std::env::temp_dir().join(format!("rnnkit-failpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        let old = Sequential::<f64>::new(&[2])
            .push(DenseConfig::new(3))
            .unwrap();
        old.save(&path).unwrap();
        let new = Sequential::<f64>::new(&[2])
            .seed(9)
            .push(DenseConfig::new(3))
            .unwrap();
        FAIL_WRITES.store(true, Ordering::SeqCst);
        let result = new.save(&path);
        FAIL_WRITES.store(false, Ordering::SeqCst);
        assert!(
            matches!(result, Err(Error::Io { op: "write", .. })),
            "{result:?}"
        );
        let loaded = Sequential::<f64>::load(&path).unwrap();
        assert_eq!(loaded.get_weights(), old.get_weights());
        assert_ne!(loaded.get_weights(), new.get_weights());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m.safetensors"]);
        std::fs::remove_dir_all(&dir).ok();
    }
}
