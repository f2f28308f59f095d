//! [`Functional::summary`]: Keras's functional summary, with the "Connected to" column.

use super::Op;
use super::functional::Functional;
use crate::float::Float;
use crate::layers::format_shape;
use crate::model::{Summary, SummaryRow};

impl<F: Float> Functional<F> {
    /// The summary in Keras's functional layout: the inputs, then every layer once with its
    /// output shape (of its last call), parameters and the tensors its calls read
    /// (`enc[0][1]`: output 1 of `enc`'s first call).
    ///
    /// ```
    /// use rnnkit::prelude::*;
    /// # fn main() -> Result<(), rnnkit::Error> {
    /// let mut g = Graph::<f32>::new(0);
    /// let enc_in = g.input("enc_in", &[None, Some(3)])?;
    /// let dec_in = g.input("dec_in", &[None, Some(2)])?;
    /// let enc = g.rnn(&LstmConfig::new(8).name("enc"), enc_in).call()?;
    /// let dec = g.rnn(&LstmConfig::new(8).return_sequences(true).name("dec"), dec_in)
    ///     .initial_state(&enc.states).call()?;
    /// let model = g.build(&[enc_in, dec_in], &[dec.out])?;
    /// let text = model.summary().to_string();
    /// assert!(text.contains("│ dec (LSTM)                    │ (None, None, 8)           │             352 │ dec_in[0][0], enc[0][1],   │"));
    /// assert!(text.contains(" Total params: 736 (2.88 KB)"));
    /// # Ok(()) }
    /// ```
    pub fn summary(&self) -> Summary {
        // Each needed call's index among its layer's calls.
        let mut call_index = vec![0usize; self.nodes.len()];
        let mut calls = vec![0usize; self.layers.len()];
        for (k, node) in self.nodes.iter().enumerate() {
            if let (Op::Call { layer, .. }, true) = (&node.op, self.needed[k]) {
                call_index[k] = calls[*layer];
                calls[*layer] += 1;
            }
        }
        // A call shows its state outputs (Keras's `return_state`) when something reads them.
        let mut states_read = vec![false; self.nodes.len()];
        let reads = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(k, _)| self.needed[*k])
            .flat_map(|(_, n)| super::reads(n).map(|t| (t.node, t.out)))
            .chain(self.outputs.iter().copied());
        for (n, o) in reads {
            states_read[n] |= o > 0;
        }
        let name_of = |n: usize| match &self.nodes[n].op {
            Op::Call { layer, .. } => self.layers[*layer].name().to_string(),
            Op::Input => self.nodes[n].name.clone(),
        };
        let mut rows: Vec<SummaryRow> = self
            .inputs
            .iter()
            .map(|&n| SummaryRow {
                name: self.nodes[n].name.clone(),
                type_name: "InputLayer".into(),
                output_shape: format_shape(&self.nodes[n].shapes[0]),
                params: 0,
                connected_to: Some("-".into()),
            })
            .collect();
        for (li, layer) in self.layers.iter().enumerate() {
            let mut connected = Vec::new();
            let mut shapes = None;
            for (k, node) in self.nodes.iter().enumerate() {
                let Op::Call {
                    layer: l, initial, ..
                } = &node.op
                else {
                    continue;
                };
                if *l != li || !self.needed[k] {
                    continue;
                }
                for t in node.inputs.iter().chain(initial) {
                    connected.push(format!(
                        "{}[{}][{}]",
                        name_of(t.node),
                        call_index[t.node],
                        t.out
                    ));
                }
                shapes = Some(if states_read[k] {
                    &node.shapes[..]
                } else {
                    &node.shapes[..1]
                });
            }
            let Some(shapes) = shapes else { continue };
            let output_shape = match shapes {
                [one] => format_shape(one),
                many => format!(
                    "[{}]",
                    many.iter()
                        .map(|s| format_shape(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            rows.push(SummaryRow {
                name: layer.name().to_string(),
                type_name: layer.type_name().to_string(),
                output_shape,
                params: layer.param_count(),
                connected_to: Some(connected.join(", ")),
            });
        }
        Summary {
            name: self.name.clone(),
            rows,
            bytes_per_param: std::mem::size_of::<F>(),
        }
    }
}
