//! [`ModelSpec`]: a model's architecture as data, what a model file stores next to the
//! weights and what [`Sequential::from_spec`](crate::Sequential::from_spec) rebuilds.

use crate::layers::{Dim, LayerSpec};
use serde::{Deserialize, Serialize};

/// A whole [`Sequential`](crate::Sequential) model: input shape and layers.
///
/// ```
/// use rnnkit::prelude::*;
/// # fn main() -> Result<(), rnnkit::Error> {
/// let model = Sequential::<f32>::new(&[3, 1])
///     .push(SimpleRnnConfig::new(20))?
///     .push(DenseConfig::new(1))?;
/// let spec = model.spec()?;
/// let json = serde_json::to_string(&spec).unwrap();
/// assert!(json.contains(r#""layer":"SimpleRNN""#));
/// let again = Sequential::<f32>::from_spec(&serde_json::from_str(&json).unwrap(), 0)?;
/// assert_eq!(again.param_count(), 461);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Model name.
    #[serde(default = "sequential")]
    pub name: String,
    /// Input shape without the batch axis; `null` for an open dimension.
    pub input_shape: Vec<Dim>,
    /// The layers, first to last.
    pub layers: Vec<LayerSpec>,
}

fn sequential() -> String {
    "sequential".into()
}
