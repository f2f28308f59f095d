//! Graph models in the model-file format: the same container and metadata as a
//! `Sequential` file, with `model_type: Functional`, `architecture` = the
//! [`GraphSpec`](crate::model::GraphSpec) as JSON, and every weight as `<layer>/<weight>`
//! (a shared layer's once).

use super::header::{Header, load_weights};
use super::{Save, Writer, sealed::Decode};
use crate::error::{FileError, Result};
use crate::float::Float;
use crate::model::{Architecture, Functional};

impl<F: Float> Save for Functional<F> {
    fn to_bytes(&self) -> Result<Vec<u8>> {
        Writer::model(self)?.finish()
    }
    fn to_format(&self, format: super::Format) -> Result<Vec<u8>> {
        match format {
            super::Format::Onnx => super::onnx::functional(self),
            super::Format::PyTorch => super::pytorch::export_graph(self),
            super::Format::OnnxStream => Err(crate::Error::Unsupported {
                layer: crate::param::Module::name(self).to_string(),
                reason: "no one-step streaming form for graph models: it is written for \
                         Sequential models"
                    .into(),
            }),
        }
    }
}

impl<F: Float> Decode for Functional<F> {
    fn decode(
        header: &Header<'_>,
        extra: &dyn Fn(&str) -> bool,
    ) -> std::result::Result<Self, FileError> {
        let Architecture::Graph(spec) = &header.architecture else {
            return Err(header.wrong_type("Functional"));
        };
        let mut model = Functional::<F>::from_spec_within(spec, 0, header.c.scalars())
            .map_err(|e| FileError::Architecture(e.to_string()))?;
        load_weights(&header.c, &mut model, extra)?;
        Ok(model)
    }
}
