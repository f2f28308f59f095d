//! Writing and reading the bytes of model files: the safetensors writer every model type
//! uses, atomic saves, and the errors that name the file.

use super::FORMAT_VERSION;
use crate::error::{Error, FileError, Result};
use crate::float::Float;
use crate::model::{Architecture, Model};
use ndarray::ArrayD;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

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
            Architecture::Sequential(spec) => serde_json::to_string(&spec).map_err(unsupported)?,
            Architecture::Graph(spec) => {
                w.meta.insert("model_type".into(), "Functional".into());
                serde_json::to_string(&spec).map_err(unsupported)?
            }
            Architecture::EchoStateNetwork { .. } => {
                return Err(Error::Unsupported {
                    layer: model.name().to_string(),
                    reason: "an echo state network is fitted in one solve, not trained by \
                             the trainer: it saves with Save::save, without a checkpoint"
                        .into(),
                });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Load, Save};
    use crate::layers::dense::DenseConfig;
    use crate::model::Sequential;
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
