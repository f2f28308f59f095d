//! Echo state networks in the model-file format: the same container and metadata as a
//! `Sequential` file, with `model_type: EchoStateNetwork`, `architecture` =
//! `{"input_dim": F, "config": {...EsnConfig}}`, and the tensors `W_in` `[F, N]`, `W`
//! `[N, N]` (rescaled), `b` `[N]`, `state` `[N]` and, once fitted, `W_out` `[1 + F + N, O]`.

use super::header::Header;
use super::spec::EsnArchitecture;
use super::{Save, Writer, sealed::Decode};
use crate::error::{FileError, Result};
use crate::float::Float;
use crate::model::Architecture;
use crate::reservoir::{EchoStateNetwork, Reservoir};
use ndarray::{Ix1, Ix2};

/// The `model_type` metadata value of an echo state network file.
const MODEL_TYPE: &str = "EchoStateNetwork";

impl<F: Float> Save for EchoStateNetwork<F> {
    fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut w = Writer::<F>::new();
        w.meta("model_type", MODEL_TYPE.into());
        let arch = EsnArchitecture {
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
        w.tensor("state".into(), &self.reservoir_state().clone().into_dyn())?;
        if let Some(r) = self.readout() {
            w.tensor("W_out".into(), &r.clone().into_dyn())?;
        }
        w.finish()
    }
}

impl<F: Float> Decode for EchoStateNetwork<F> {
    fn decode(
        header: &Header<'_>,
        _extra: &dyn Fn(&str) -> bool,
    ) -> std::result::Result<Self, FileError> {
        let Architecture::EchoStateNetwork { input_dim, config } = &header.architecture else {
            return Err(header.wrong_type(MODEL_TYPE));
        };
        let (f, config, c) = (*input_dim, config.clone(), &header.c);
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
        esn.set_reservoir_state(&state)
            .map_err(|e| FileError::Architecture(e.to_string()))?;
        esn.set_readout(w_out);
        Ok(esn)
    }
}
