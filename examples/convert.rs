//! Models in and out of rnnkit, one command:
//!
//! ```text
//! cargo run --release --example convert -- IN --to onnx OUT.onnx
//! cargo run --release --example convert -- IN --to pytorch OUT_DIR
//! cargo run --release --example convert -- IN --to rnnkit OUT.safetensors
//! ```
//!
//! IN is an rnnkit model file, a Keras 3 `.keras` file or a PyTorch export directory (all
//! read by `AnyModel::load`). Exit 0 on success; exit 1 with a message naming the layer
//! and the option when the target format has no exact form for the model (or IN cannot be
//! read), exit 2 on a wrong command line.

use rnnkit::io::{AnyModel, Format};
use rnnkit::prelude::*;
use std::process::ExitCode;

const USAGE: &str = "usage: convert IN --to onnx|pytorch|rnnkit OUT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, to, out) = match args.as_slice() {
        [input, flag, to, out] if flag == "--to" => (input, to.as_str(), out),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let model = match AnyModel::<f32>::load(input) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("convert: cannot read {input}: {e}");
            return ExitCode::from(1);
        }
    };
    let written = match to {
        "onnx" => model.export(out, Format::Onnx),
        "pytorch" => model.export(out, Format::PyTorch),
        "rnnkit" => model.save(out),
        other => {
            eprintln!("convert: unknown target {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match written {
        Ok(()) => {
            let kind = model
                .architecture()
                .map(|a| a.model_type())
                .unwrap_or("model");
            println!(
                "wrote {out} ({to}) from {input} ({kind}, {} weights)",
                model.param_count()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("convert: {input} cannot be written as {to}: {e}");
            ExitCode::from(1)
        }
    }
}
