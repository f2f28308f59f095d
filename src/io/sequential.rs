//! `Sequential` models in the model-file format.

use super::header::{Header, build_checked, load_weights};
use super::{Save, Writer, sealed::Decode};
use crate::error::{FileError, Result};
use crate::float::Float;
use crate::model::{Architecture, Sequential};

impl<F: Float> Save for Sequential<F> {
    fn to_bytes(&self) -> Result<Vec<u8>> {
        Writer::model(self)?.finish()
    }
    fn to_format(&self, format: super::Format) -> Result<Vec<u8>> {
        match format {
            super::Format::Onnx => super::onnx::sequential(self),
            super::Format::OnnxStream => super::onnx::sequential_stream(self),
            super::Format::PyTorch => super::pytorch::export(self),
        }
    }
}

impl<F: Float> Decode for Sequential<F> {
    fn decode(
        header: &Header<'_>,
        extra: &dyn Fn(&str) -> bool,
    ) -> std::result::Result<Self, FileError> {
        let Architecture::Sequential(spec) = &header.architecture else {
            return Err(header.wrong_type("Sequential"));
        };
        let mut model = build_checked::<F>(spec, header.c.scalars())?;
        load_weights(&header.c, &mut model, extra)?;
        Ok(model)
    }
}
