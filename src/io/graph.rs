//! Graph models in the model-file format: the same container and metadata as a
//! `Sequential` file, with `model_type: Functional`, `architecture` = the [`GraphSpec`] as
//! JSON, and every weight as `<layer>/<weight>` (a shared layer's once).

use super::spec::check_layer_type;
use super::{bytes_error, file_error, load_weights, read_file, write_atomic, Container, Writer};
use crate::error::{FileError, Result};
use crate::float::Float;
use crate::model::{Functional, GraphSpec};
use std::path::Path;

/// The `model_type` metadata value of a graph model file.
pub(crate) const MODEL_TYPE: &str = "Functional";

impl<F: Float> Functional<F> {
    /// The model as a model file's bytes (see the [format](crate::io)).
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) for a layer without a saved form; [`Error::File`](crate::Error::File) when a
    /// weight is not finite.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        Writer::model(self)?.finish()
    }

    /// Saves the model (architecture and weights) to one safetensors file, atomically.
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let mut g = Graph::<f32>::new(0);
    /// let x = g.input("x", &[None, Some(2)])?;
    /// let enc = g.rnn(&GruConfig::new(4), x).call()?;
    /// let y = g.apply(&DenseConfig::new(1), enc.states[0])?;
    /// let model = g.build(&[x], &[y])?;
    /// let path = std::env::temp_dir().join("rnnkit-doc-graph.safetensors");
    /// model.save(&path)?;
    /// let loaded = Functional::<f32>::load(&path)?;
    /// assert_eq!(loaded.get_weights(), model.get_weights());
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Functional::to_bytes`]; [`Error::Io`](crate::Error::Io) when the file cannot be written (a
    /// previous file at `path` is then left as it was).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Loads a model saved by [`Functional::save`] (the float type must match).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when the file cannot be read; [`Error::File`](crate::Error::File) naming what is wrong
    /// otherwise (another model type, an unknown layer, a wiring error, a missing,
    /// misshapen, extra or non-finite tensor).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        Self::decode(&bytes, false).map_err(|e| file_error(path, e))
    }

    /// [`Functional::load`], converting an `f64` file to `f32` (rounding) or an `f32` file
    /// to `f64` (exact) when the file holds the other float type, as
    /// [`Sequential::load_converted`](crate::Sequential::load_converted) does.
    ///
    /// # Errors
    /// As [`Functional::load`]; an `f64` weight beyond `f32`'s range is refused.
    pub fn load_converted(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        Self::decode(&bytes, true).map_err(|e| file_error(path, e))
    }

    /// [`Functional::load`] from bytes in memory; never panics, whatever the bytes.
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, false).map_err(bytes_error)
    }

    /// [`Functional::from_bytes`] converting the float type if needed.
    ///
    /// # Errors
    /// As [`Functional::from_bytes`].
    pub fn from_bytes_converted(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes, true).map_err(bytes_error)
    }

    fn decode(bytes: &[u8], convert: bool) -> std::result::Result<Self, FileError> {
        let c = Container::open(bytes)?;
        if c.meta.contains_key("checkpoint") {
            // A checkpoint loads as its model; the optimizer state is for the trainer.
            return Self::from_container_as(
                &c,
                &|n| n.starts_with(super::OPTIMIZER_PREFIX),
                convert,
            );
        }
        Self::from_container_as(&c, &|_| false, convert)
    }

    /// The model a checked container holds; `extra` accepts tensors outside the model.
    pub(crate) fn from_container(
        c: &Container<'_>,
        extra: &dyn Fn(&str) -> bool,
    ) -> std::result::Result<Self, FileError> {
        Self::from_container_as(c, extra, false)
    }

    /// [`Self::from_container`], converting the float type when `convert`.
    fn from_container_as(
        c: &Container<'_>,
        extra: &dyn Fn(&str) -> bool,
        convert: bool,
    ) -> std::result::Result<Self, FileError> {
        c.expect_model(MODEL_TYPE)?;
        c.check_dtype::<F>(convert)?;
        let json = c.meta.get("architecture").ok_or(FileError::Metadata {
            key: "architecture",
            reason: "missing".into(),
        })?;
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| FileError::Architecture(e.to_string()))?;
        for node in value
            .get("nodes")
            .and_then(|n| n.as_array())
            .into_iter()
            .flatten()
        {
            check_layer_type(node)?;
        }
        let spec: GraphSpec =
            serde_json::from_value(value).map_err(|e| FileError::Architecture(e.to_string()))?;
        let mut model = Functional::<F>::from_spec_within(&spec, 0, c.scalars())
            .map_err(|e| FileError::Architecture(e.to_string()))?;
        load_weights(c, &mut model, extra)?;
        Ok(model)
    }
}
