//! Echo state networks in the model-file format: the same container and metadata as a
//! `Sequential` file, with `model_type: EchoStateNetwork`, `architecture` =
//! `{"input_dim": F, "config": {...EsnConfig}}`, and the tensors `W_in` `[F, N]`, `W`
//! `[N, N]` (rescaled), `b` `[N]`, `state` `[N]` and, once fitted, `W_out` `[1 + F + N, O]`.

use super::{bytes_error, file_error, read_file, write_atomic, Container, Writer};
use crate::error::{FileError, Result};
use crate::float::Float;
use crate::reservoir::{EchoStateNetwork, EsnConfig, Reservoir};
use ndarray::{Ix1, Ix2};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The `model_type` metadata value of an echo state network file.
const MODEL_TYPE: &str = "EchoStateNetwork";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Architecture {
    input_dim: usize,
    config: EsnConfig,
}

impl<F: Float> EchoStateNetwork<F> {
    /// The network as a model file's bytes (see the [format](crate::io)).
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) when a weight or the state is not finite.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut w = Writer::<F>::new();
        w.meta("model_type", MODEL_TYPE.into());
        let arch = Architecture {
            input_dim: self.input_dim(),
            config: self.config().clone(),
        };
        w.meta(
            "architecture",
            serde_json::to_string(&arch).map_err(|e| crate::Error::Data(e.to_string()))?,
        );
        w.tensor("W_in".into(), &self.w_in().clone().into_dyn())?;
        w.tensor("W".into(), &self.reservoir().clone().into_dyn())?;
        w.tensor("b".into(), &self.bias().clone().into_dyn())?;
        w.tensor("state".into(), &self.state().clone().into_dyn())?;
        if let Some(r) = self.readout() {
            w.tensor("W_out".into(), &r.clone().into_dyn())?;
        }
        w.finish()
    }

    /// Saves the network (reservoir, readout and state) to one safetensors file,
    /// atomically.
    ///
    /// ```
    /// use rnnkit::{EchoStateNetwork, EsnConfig};
    /// use rnnkit::ndarray::Array2;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let x = Array2::from_shape_fn((200, 1), |(t, _)| (t as f64 * 0.1).sin());
    /// let mut esn = EsnConfig::new(20).density(0.5).washout(20).build::<f64>(1)?;
    /// esn.fit(&x, &x.mapv(|v| v * v))?;
    /// let path = std::env::temp_dir().join("rnnkit-doc-esn.safetensors");
    /// esn.save(&path)?;
    /// let mut loaded = EchoStateNetwork::<f64>::load(&path)?;
    /// assert_eq!(loaded.run(&x)?, esn.run(&x)?);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`EchoStateNetwork::to_bytes`]; [`Error::Io`](crate::Error::Io) when the file
    /// cannot be written (a previous file at `path` is then left as it was).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Loads a network saved by [`EchoStateNetwork::save`] (the float type must match).
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) when the file cannot be read;
    /// [`Error::File`](crate::Error::File) naming what is wrong otherwise.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path)?;
        Self::decode(&bytes).map_err(|e| file_error(path, e))
    }

    /// [`EchoStateNetwork::load`] from bytes in memory; never panics, whatever the bytes.
    ///
    /// # Errors
    /// [`Error::File`](crate::Error::File) naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::decode(bytes).map_err(bytes_error)
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, FileError> {
        let c = Container::open(bytes)?;
        c.expect_model(MODEL_TYPE)?;
        c.check_dtype::<F>(false)?;
        let arch: Architecture = c
            .meta
            .get("architecture")
            .ok_or(FileError::Metadata {
                key: "architecture",
                reason: "missing".into(),
            })
            .and_then(|a| {
                serde_json::from_str(a).map_err(|e| FileError::Metadata {
                    key: "architecture",
                    reason: e.to_string(),
                })
            })?;
        let (f, config) = (arch.input_dim, arch.config);
        config
            .check(f)
            .map_err(|e| FileError::Architecture(e.to_string()))?;
        let n = config.units;
        // Sizes the architecture implies must fit in what the file holds, before allocating.
        let implied = n
            .saturating_mul(n)
            .saturating_add(f.saturating_mul(n))
            .saturating_add(n.saturating_mul(2));
        if implied > c.scalars() {
            return Err(FileError::TooLarge {
                layer: config.model_name().to_string(),
                reason: format!(
                    "{n} units and {f} inputs need {implied} scalars, the file holds {}",
                    c.scalars()
                ),
            });
        }
        let two = |name: &str, shape: [usize; 2]| {
            c.array::<F>(name, &shape)?
                .into_dimensionality::<Ix2>()
                .map_err(|e| FileError::Architecture(e.to_string()))
        };
        let one = |name: &str| {
            c.array::<F>(name, &[n])?
                .into_dimensionality::<Ix1>()
                .map_err(|e| FileError::Architecture(e.to_string()))
        };
        let (w_in, w, b, state) = (
            two("W_in", [f, n])?,
            two("W", [n, n])?,
            one("b")?,
            one("state")?,
        );
        let w_out = match c.tensors.tensor("W_out") {
            Err(_) => None,
            Ok(t) => {
                let shape = t.shape();
                let rows = 1 + f + n;
                if shape.len() != 2 || shape[0] != rows || shape[1] == 0 {
                    return Err(FileError::Tensor {
                        tensor: "W_out".into(),
                        expected: format!("shape [{rows}, outputs ≥ 1]"),
                        found: format!("shape {shape:?}"),
                    });
                }
                Some(two("W_out", [rows, shape[1]])?)
            }
        };
        let known = ["W_in", "W", "b", "state", "W_out"];
        if let Some(stray) = c.names().into_iter().find(|t| !known.contains(t)) {
            return Err(FileError::UnexpectedTensor(stray.to_string()));
        }
        let mut esn = EchoStateNetwork::from_weights(config, w_in, Reservoir::Scaled(w), b)
            .map_err(|e| FileError::Architecture(e.to_string()))?;
        esn.set_state(&state)
            .map_err(|e| FileError::Architecture(e.to_string()))?;
        esn.set_readout(w_out);
        Ok(esn)
    }
}
