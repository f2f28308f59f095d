//! Looks inside an rnnkit model file.
//!
//! ```text
//! cargo run --release --example inspect -- FILE                  # summary, version, dtype
//! cargo run --release --example inspect -- --write-sample FILE   # a small model to try it on
//! cargo run --release --example inspect -- --write-sample FILE functional   # or esn
//! ```
//!
//! Any rnnkit model file: a `Sequential`, a `Functional` graph or an echo state network,
//! or a checkpoint of one, opened by the one call `AnyModel::load`.
//!
//! A file that does not load prints the loader's error and exits with status 1.

use ndarray::{Array2, Array3};
use rnnkit::prelude::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["--write-sample", path] => write_sample(path),
        ["--write-sample", path, "sequential"] => write_sample(path),
        ["--write-sample", path, "functional"] => write_graph_sample(path),
        ["--write-sample", path, "esn"] => write_esn_sample(path),
        [path] if !path.starts_with("--") => inspect(path),
        _ => {
            eprintln!(
                "usage: inspect FILE | inspect --write-sample FILE [sequential|functional|esn]"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn inspect(path: &str) -> Result<(), rnnkit::Error> {
    let info = FileInfo::read(path)?;
    // An f32 file opens as f64 exactly, so one float type shows every file.
    let summary = AnyModel::<f64>::load(path)?.summary().to_string();
    let model_type = info.architecture.model_type();
    println!("{path}");
    println!("model type {model_type}");
    println!(
        "format version {}, dtype {}, written by rnnkit {}",
        info.format_version,
        info.dtype,
        info.rnnkit_version.as_deref().unwrap_or("(unknown)")
    );
    if let Some(c) = &info.checkpoint {
        println!(
            "checkpoint: epoch {}, optimizer {} after {} steps, seed {}",
            c.epoch, c.optimizer, c.iterations, c.seed
        );
    }
    println!("{summary}");
    println!("Tensors:");
    for (name, shape) in &info.tensors {
        println!("  {name:<45} {shape:?}");
    }
    println!(
        "result: model_type={model_type} dtype={} tensors={} scalars={}",
        info.dtype,
        info.tensors.len(),
        info.tensors
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum::<usize>()
    );
    Ok(())
}

/// A Bidirectional LSTM over a masked input, then a GRU and a Dense.
fn write_sample(path: &str) -> Result<(), rnnkit::Error> {
    let model = Sequential::<f32>::new(&[6, 3])
        .push(MaskingConfig::new(0.0))?
        .push(BidirectionalConfig::new(
            LstmConfig::new(8).return_sequences(true),
        ))?
        .push(GruConfig::new(4))?
        .push(DenseConfig::new(1))?;
    let x = Array3::from_shape_fn((2, 6, 3), |(b, t, f)| {
        if b == 1 && t >= 4 {
            0.0 // padding: masked
        } else {
            ((b + 2 * t + 3 * f) as f32 * 0.37).sin()
        }
    })
    .into_dyn();
    let y = model
        .predict(Inputs::new(&x), 32)
        .map(|mut p| p.remove(0))?;
    model.save(path)?;
    println!("wrote {path}: {} parameters", model.param_count());
    println!(
        "predictions on a sample batch: {:?}",
        y.iter().collect::<Vec<_>>()
    );
    Ok(())
}

/// A graph model: a GRU encoder whose final state feeds a Dense.
fn write_graph_sample(path: &str) -> Result<(), rnnkit::Error> {
    let mut g = Graph::<f32>::new(0);
    let x = g.input("x", &[Some(6), Some(3)])?;
    let enc = g.rnn(&GruConfig::new(4).name("encoder"), x).call()?;
    let y = g.apply(&DenseConfig::new(1), enc.states[0])?;
    let model = g.build(&[x], &[y])?;
    model.save(path)?;
    println!("wrote {path}: {} parameters", model.param_count());
    Ok(())
}

/// A fitted echo state network: reservoir, readout and state.
fn write_esn_sample(path: &str) -> Result<(), rnnkit::Error> {
    let s = Array2::from_shape_fn((200, 1), |(t, _)| (t as f32 * 0.1).sin());
    let mut esn = EsnConfig::new(20)
        .density(0.5)
        .washout(20)
        .build::<f32>(1)?;
    esn.fit(&s, &s.mapv(|v| v * v))?;
    esn.save(path)?;
    let scalars = esn.w_in().len()
        + esn.reservoir().len()
        + esn.bias().len()
        + esn.units()
        + esn.readout().map_or(0, |r| r.len());
    println!("wrote {path}: {scalars} scalars (weights and state)");
    Ok(())
}
