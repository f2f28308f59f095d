//! Reading a model's architecture JSON (a stack, a graph, a reservoir): the layer types are checked first, so an unknown one
//! is named as such (serde alone would only say "unknown variant").

use crate::error::FileError;
use crate::layers::{LAYER_TYPES, LayerSpec};
use crate::model::{Architecture, GraphSpec, ModelSpec};
use crate::reservoir::EsnConfig;
use serde::{Deserialize, Serialize};

/// Parses architecture JSON, naming an unknown layer type as such (serde would only say
/// "unknown variant").
pub(crate) fn parse_model_spec(json: &str) -> std::result::Result<ModelSpec, FileError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| FileError::Architecture(e.to_string()))?;
    let layers = value.get("layers").and_then(|l| l.as_array());
    for l in layers.into_iter().flatten() {
        check_layer_type(l)?;
    }
    serde_json::from_value(value).map_err(|e| FileError::Architecture(e.to_string()))
}

/// One layer from its `layer` and `config` JSON values.
pub(crate) fn parse_layer_spec(
    layer: Option<&serde_json::Value>,
    config: Option<&serde_json::Value>,
) -> std::result::Result<LayerSpec, FileError> {
    let v = serde_json::json!({
        "layer": layer.cloned().unwrap_or_default(),
        "config": config.cloned().unwrap_or_else(|| serde_json::json!({})),
    });
    check_layer_type(&v)?;
    serde_json::from_value(v).map_err(|e| FileError::Architecture(e.to_string()))
}

/// Refuses a layer type rnnkit does not have, also inside a Bidirectional.
pub(crate) fn check_layer_type(spec: &serde_json::Value) -> std::result::Result<(), FileError> {
    let known: Vec<&str> = LAYER_TYPES.split(", ").collect();
    let mut cur = Some(spec);
    // Iterative, so the depth is bounded by the JSON parser's own limit.
    while let Some(spec) = cur {
        if let Some(ty) = spec.get("layer").and_then(|t| t.as_str())
            && !known.contains(&ty)
        {
            return Err(FileError::UnknownLayer {
                found: ty.to_string(),
                supported: LAYER_TYPES,
            });
        }
        cur = spec.get("config").and_then(|c| c.get("layer"));
    }
    Ok(())
}

/// Parses a graph model's architecture JSON, naming an unknown layer type as such.
pub(crate) fn parse_graph_spec(json: &str) -> std::result::Result<GraphSpec, FileError> {
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
    serde_json::from_value(value).map_err(|e| FileError::Architecture(e.to_string()))
}

/// An echo state network's architecture as its file stores it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EsnArchitecture {
    pub(crate) input_dim: usize,
    pub(crate) config: EsnConfig,
}

/// Parses an echo state network's architecture JSON.
pub(crate) fn parse_esn_spec(json: &str) -> std::result::Result<Architecture, FileError> {
    let a: EsnArchitecture = serde_json::from_str(json).map_err(|e| FileError::Metadata {
        key: "architecture",
        reason: e.to_string(),
    })?;
    Ok(Architecture::EchoStateNetwork {
        input_dim: a.input_dim,
        config: a.config,
    })
}
