//! The checked container every rnnkit model file is: a valid safetensors file whose
//! metadata says `format: rnnkit`, with a readable version and dtype, and its tensors read
//! back as arrays (converted between `f32` and `f64` where asked, refused when not finite).

use super::{FORMAT_VERSION, dtype_of};
use crate::error::FileError;
use crate::float::Float;
use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;

/// The parts of a file every rnnkit model type shares, checked: a valid safetensors
/// container whose metadata says `format: rnnkit`, a readable version and a dtype.
pub(crate) struct Container<'a> {
    pub(crate) tensors: SafeTensors<'a>,
    pub(crate) meta: HashMap<String, String>,
    pub(crate) version: u64,
    pub(crate) dtype: Dtype,
}

impl<'a> Container<'a> {
    pub(crate) fn open(bytes: &'a [u8]) -> std::result::Result<Self, FileError> {
        // A file that is not safetensors at all (text, another format) most often fails on
        // its first 8 bytes, read as the header length: say what they were read as.
        if let Some(head) = bytes.get(..8) {
            let n = u64::from_le_bytes(head.try_into().expect("8 bytes"));
            let fits = usize::try_from(n).is_ok_and(|n| n <= bytes.len() - 8);
            if !fits || bytes.get(8) != Some(&b'{') {
                return Err(FileError::Container(format!(
                    "not a safetensors file: its first 8 bytes ({:?}) give a header length of \
                     {n} bytes, {} a JSON header of {} bytes left in the file",
                    String::from_utf8_lossy(head),
                    if fits { "but no" } else { "beyond" },
                    bytes.len() - 8
                )));
            }
        } else {
            return Err(FileError::Container(format!(
                "{} bytes: too short for a safetensors file (8-byte header length first)",
                bytes.len()
            )));
        }
        let container = |e: safetensors::SafeTensorError| FileError::Container(e.to_string());
        let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(container)?;
        let tensors = SafeTensors::deserialize(bytes).map_err(container)?;
        let meta = metadata.metadata().clone().unwrap_or_default();
        match meta.get("format").map(String::as_str) {
            Some("rnnkit") => {}
            Some(other) => {
                return Err(FileError::NotRnnkit(format!(
                    "metadata `format` is {other:?}, expected \"rnnkit\""
                )));
            }
            None => {
                return Err(FileError::NotRnnkit(
                    "no `format: rnnkit` entry in the header metadata".into(),
                ));
            }
        }
        let get = |key: &'static str| {
            meta.get(key).ok_or(FileError::Metadata {
                key,
                reason: "missing".into(),
            })
        };
        let version: u64 = get("format_version")?
            .parse()
            .map_err(|e| FileError::Metadata {
                key: "format_version",
                reason: format!("not a version number: {e}"),
            })?;
        if version > FORMAT_VERSION {
            return Err(FileError::Version {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let dtype = match get("dtype")?.as_str() {
            "F32" => Dtype::F32,
            "F64" => Dtype::F64,
            other => {
                return Err(FileError::Metadata {
                    key: "dtype",
                    reason: format!("expected \"F32\" or \"F64\", got {other:?}"),
                });
            }
        };
        Ok(Container {
            tensors,
            meta,
            version,
            dtype,
        })
    }

    /// The model type the file holds: `Sequential` unless its metadata says otherwise.
    pub(crate) fn model_type(&self) -> &str {
        self.meta
            .get("model_type")
            .map_or("Sequential", String::as_str)
    }

    /// Number of scalars the file holds: the budget every size the architecture implies
    /// must fit in before anything is allocated.
    pub(crate) fn scalars(&self) -> usize {
        let size = if self.dtype == Dtype::F64 { 8 } else { 4 };
        self.tensors
            .iter()
            .map(|(_, t)| t.data().len() / size)
            .sum()
    }

    /// One tensor as an array of `F`, checked: present, the file's dtype, the expected
    /// shape, finite.
    pub(crate) fn array<F: Float>(
        &self,
        name: &str,
        shape: &[usize],
    ) -> std::result::Result<ArrayD<F>, FileError> {
        let t = self
            .tensors
            .tensor(name)
            .map_err(|_| FileError::MissingTensor(name.to_string()))?;
        if t.dtype() != self.dtype {
            return Err(FileError::Tensor {
                tensor: name.into(),
                expected: format!("dtype {:?} (the file's dtype)", self.dtype),
                found: format!("dtype {:?}", t.dtype()),
            });
        }
        if t.shape() != shape {
            return Err(FileError::Tensor {
                tensor: name.into(),
                expected: format!("shape {shape:?}"),
                found: format!("shape {:?}", t.shape()),
            });
        }
        let values: Vec<f64> = match t.dtype() {
            Dtype::F64 => t
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
            _ => t
                .data()
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
                .collect(),
        };
        // Checked after the conversion too: a finite f64 such as 1e300 is inf as an f32.
        let data: Vec<F> = values.iter().map(|&v| F::c(v)).collect();
        let bad = values
            .iter()
            .zip(&data)
            .position(|(v, c)| !v.is_finite() || !c.is_finite());
        if let Some(index) = bad {
            let v = values[index];
            return Err(FileError::NonFinite {
                tensor: name.into(),
                index,
                value: if v.is_finite() {
                    format!(
                        "{v} (beyond the range of {})",
                        dtype_of::<F>().to_lowercase()
                    )
                } else {
                    v.to_string()
                },
            });
        }
        ArrayD::from_shape_vec(IxDyn(shape), data).map_err(|e| FileError::Tensor {
            tensor: name.into(),
            expected: format!("shape {shape:?}"),
            found: e.to_string(),
        })
    }

    /// Names of the file's tensors.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.tensors.names()
    }
}
