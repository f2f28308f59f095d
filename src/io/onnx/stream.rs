//! The streaming form of a Sequential model: one time step per call, the recurrent states
//! in and out, as [`Sequential::step`](crate::Sequential::step) runs it. Inputs `input`
//! `[batch, features]` and, per recurrent layer, `<layer>_h` (and `<layer>_c` for LSTM)
//! `[batch, units]`; outputs `output` and the new states `<layer>_h_out` (`_c_out`). Zeros
//! for the states start a stream.

use super::proto::{self, DimP};
use super::{Builder, Flow, emit_layer, unsupported, weights_of};
use crate::error::Result;
use crate::float::Float;
use crate::layers::LayerSpec;
use crate::model::Sequential;

pub(crate) fn sequential_stream<F: Float>(model: &Sequential<F>) -> Result<Vec<u8>> {
    let spec = model.spec()?;
    let mut b = Builder::default();
    let features = match spec.input_shape.last() {
        Some(Some(f)) if spec.input_shape.len() == 2 => *f,
        _ => {
            return Err(unsupported(
                model.layers().first().map_or("model", |l| l.name()),
                "a streaming form needs float inputs [steps, features] with the features known",
            ));
        }
    };
    let mut inputs = vec![proto::value_info(
        "input",
        proto::FLOAT,
        &[DimP::Named("batch".into()), DimP::Fixed(features)],
    )];
    let mut outputs = Vec::new();
    // One step: [b, F] → [b, 1, F].
    let axes = b.i64s("axes", &[1]);
    let x1 = b.op1("Unsqueeze", "input", &["input", &axes], &[]);
    let mut x = Flow {
        name: x1,
        rank: 3,
        len: None,
    };
    let mut state_outs = Vec::new();
    for (layer, ls) in model.layers().iter().zip(&spec.layers) {
        let name = layer.name().to_string();
        let (units, blocks) = match ls {
            LayerSpec::SimpleRnn(c) => (Some(c.units), 1),
            LayerSpec::Gru(c) => (Some(c.units), 1),
            LayerSpec::Lstm(c) => (Some(c.units), 2),
            LayerSpec::Dense(_) | LayerSpec::Dropout(_) => (None, 0),
            other => {
                return Err(unsupported(
                    &name,
                    format!("{} has no one-step form", other.type_name()),
                ));
            }
        };
        let backwards = match ls {
            LayerSpec::SimpleRnn(c) => c.go_backwards,
            LayerSpec::Gru(c) => c.go_backwards,
            LayerSpec::Lstm(c) => c.go_backwards,
            _ => false,
        };
        if backwards {
            return Err(unsupported(&name, "go_backwards has no one-step form"));
        }
        let initial: Vec<String> = (0..blocks)
            .map(|k| format!("{name}_{}", ["h", "c"][k]))
            .collect();
        for s in &initial {
            let dims = [DimP::Named("batch".into()), DimP::Fixed(units.unwrap_or(0))];
            inputs.push(proto::value_info(s, proto::FLOAT, &dims));
        }
        let (out, states) = emit_layer(
            &mut b,
            &name,
            ls,
            weights_of(layer.as_ref()),
            &[x],
            &initial,
            blocks > 0,
        )?;
        for (s, st) in initial.iter().zip(states) {
            state_outs.push((format!("{s}_out"), st, units.unwrap_or(0)));
        }
        // A recurrent layer's one-step sequence feeds the next layer as a sequence.
        x = out;
    }
    let y = if x.rank == 3 {
        let axes = b.i64s("axes", &[1]);
        b.op1("Squeeze", "output", &[&x.name, &axes], &[])
    } else {
        x.name
    };
    b.nodes
        .push(proto::node("Identity", "output", &[&y], &["output"], &[]));
    outputs.push(proto::value_info(
        "output",
        proto::FLOAT,
        &[DimP::Named("batch".into()), DimP::Named("out".into())],
    ));
    for (name, st, units) in &state_outs {
        b.nodes
            .push(proto::node("Identity", name, &[st], &[name], &[]));
        let dims = [DimP::Named("batch".into()), DimP::Fixed(*units)];
        outputs.push(proto::value_info(name, proto::FLOAT, &dims));
    }
    Ok(b.model_bytes(
        &spec.name,
        &inputs,
        &outputs,
        "exported by rnnkit (one-step streaming form)",
    ))
}
