//! The checked header every model file starts with (container, model type, architecture,
//! checkpoint state), and the shared steps of rebuilding a model from it.

use super::container::Container;
use super::spec;
use super::{CheckpointInfo, FileInfo};
use crate::error::FileError;
use crate::float::Float;
use crate::model::{Architecture, Model, ModelSpec, Sequential};

/// A parsed and checked header of a model file (or checkpoint) of any model type: the
/// container, and the architecture and training state its metadata describes.
pub struct Header<'a> {
    pub(crate) c: Container<'a>,
    pub(crate) architecture: Architecture,
    pub(crate) checkpoint: Option<CheckpointInfo>,
}

impl<'a> Header<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> std::result::Result<Self, FileError> {
        let c = Container::open(bytes)?;
        let json = c.meta.get("architecture").ok_or(FileError::Metadata {
            key: "architecture",
            reason: "missing".into(),
        })?;
        let architecture = match c.model_type() {
            "Sequential" => Architecture::Sequential(spec::parse_model_spec(json)?),
            "Functional" => Architecture::Graph(spec::parse_graph_spec(json)?),
            "EchoStateNetwork" => spec::parse_esn_spec(json)?,
            other => {
                return Err(FileError::Metadata {
                    key: "model_type",
                    reason: format!(
                        "{other:?} is not a model type this build reads (Sequential, \
                         Functional, EchoStateNetwork)"
                    ),
                });
            }
        };
        let checkpoint = match c.meta.get("checkpoint") {
            None => None,
            Some(s) => Some(
                serde_json::from_str(s)
                    .map_err(|e| FileError::Checkpoint(format!("metadata: {e}")))?,
            ),
        };
        Ok(Header {
            c,
            architecture,
            checkpoint,
        })
    }

    /// The error for a file holding another model type than `want`, naming how to open it.
    pub(crate) fn wrong_type(&self, want: &str) -> FileError {
        let found = self.architecture.model_type();
        FileError::Architecture(format!(
            "the file holds a {found} model, not a {want} one: load it with {found}::load \
             or AnyModel::load"
        ))
    }

    pub(crate) fn info(&self) -> FileInfo {
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
            architecture: self.architecture.clone(),
            tensors,
            checkpoint: self.checkpoint.clone(),
        }
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
                    });
                }
            }
        }
        model
            .add(layer)
            .map_err(|e| FileError::Architecture(e.to_string()))?;
    }
    Ok(model)
}
