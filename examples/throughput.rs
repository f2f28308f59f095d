//! Speed of one training (or inference) step: one recurrent layer (last output) + Dense(O),
//! MSE, Adam, on one fixed random batch. The same command line as
//! `../shared/bench/ref_rnn.py`, so the two can be run side by side:
//!
//! ```sh
//! cargo run --release --example throughput -- --cell lstm --batch 64 --seq 50 --input 32 \
//!     --hidden 128 --out 1 --mode train --steps 100 --warmup 10 --dtype f32 --threads 2
//! ```
//! `--mode stream` times one streamed time step at batch B with the state carried
//! (`Sequential::step`: the recurrent step and the Dense; `--seq` is ignored), as
//! `ref_rnn.py --mode stream` times PyTorch's `LSTMCell`/`GRUCell`/`RNNCell` + `Linear`.
//!
//! `--onnx OUT.onnx` also writes the timed model as ONNX, for
//! `python tools/onnx_bench.py OUT.onnx --batch B --seq T --input F` (ONNX Runtime's time
//! on the same model).
//!
//! The last line printed is `ms_per_step=<float> framework=rnnkit cell=.. B=.. T=.. F=.. H=.. mode=..`
//! (mean over `--steps` timed steps after `--warmup` untimed ones).

use ndarray::ArrayD;
use ndarray_rand::RandomExt;
use ndarray_rand::rand_distr::StandardNormal;
use rnnkit::prelude::*;
use std::time::Instant;

struct Opts {
    cell: String,
    b: usize,
    t: usize,
    f: usize,
    h: usize,
    o: usize,
    mode: String,
    steps: usize,
    warmup: usize,
    f64: bool,
    threads: usize,
    /// Also write the timed model as ONNX here (`tools/onnx_bench.py` times it).
    onnx: Option<String>,
}

fn parse() -> Opts {
    let mut o = Opts {
        cell: String::new(),
        b: 0,
        t: 0,
        f: 0,
        h: 0,
        o: 0,
        mode: String::new(),
        steps: 100,
        warmup: 10,
        f64: false,
        threads: 2,
        onnx: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    let fail = |m: String| -> ! {
        eprintln!(
            "{m}\nusage: throughput --cell rnn|lstm|gru --batch B --seq T --input F --hidden H --out O --mode train|infer|stream [--steps N] [--warmup W] [--dtype f32|f64] [--threads K] [--onnx OUT.onnx]"
        );
        std::process::exit(2)
    };
    while let Some(k) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| fail(format!("{k} needs a value")));
        let n = || {
            v.parse::<usize>()
                .unwrap_or_else(|_| fail(format!("{k} expects a number, got {v}")))
        };
        match k.as_str() {
            "--cell" => o.cell = v.clone(),
            "--batch" => o.b = n(),
            "--seq" => o.t = n(),
            "--input" => o.f = n(),
            "--hidden" => o.h = n(),
            "--out" => o.o = n(),
            "--mode" => o.mode = v.clone(),
            "--steps" => o.steps = n(),
            "--warmup" => o.warmup = n(),
            "--dtype" => o.f64 = v == "f64",
            "--threads" => o.threads = n(),
            "--onnx" => o.onnx = Some(v.clone()),
            other => fail(format!("unknown option {other}")),
        }
    }
    if o.mode == "stream" && o.t == 0 {
        o.t = 1; // ignored
    }
    if !["rnn", "lstm", "gru"].contains(&o.cell.as_str()) || [o.b, o.t, o.f, o.h, o.o].contains(&0)
    {
        fail("--cell, --batch, --seq, --input, --hidden and --out are required".into());
    }
    if !["train", "infer", "stream"].contains(&o.mode.as_str()) {
        fail(format!("--mode train, infer or stream, got {:?}", o.mode));
    }
    o
}

fn run<F: Float>(o: &Opts) -> Result<f64, rnnkit::Error> {
    let m = Sequential::<F>::with_input_shape(vec![
        Some(o.t).filter(|_| o.mode != "stream"),
        Some(o.f),
    ]);
    let m = match o.cell.as_str() {
        "rnn" => m.push(SimpleRnnConfig::new(o.h))?,
        "lstm" => m.push(LstmConfig::new(o.h))?,
        _ => m.push(GruConfig::new(o.h))?,
    };
    let mut model = m.push(DenseConfig::new(o.o))?;
    if let Some(path) = &o.onnx {
        model.export(path, rnnkit::io::Format::Onnx)?;
    }
    let mut rng = seeded_rng(0);
    let x: ArrayD<F> =
        ArrayD::<f64>::random_using(ndarray::IxDyn(&[o.b, o.t, o.f]), StandardNormal, &mut rng)
            .mapv(F::c);
    let y: ArrayD<F> =
        ArrayD::<f64>::random_using(ndarray::IxDyn(&[o.b, o.o]), StandardNormal, &mut rng)
            .mapv(F::c);
    let mut trainer = Trainer::new(Adam::default(), Loss::Mse);
    let x_step = x.slice(ndarray::s![.., 0, ..]).to_owned();
    let mut stream = model.stream_state(o.b);
    let mut step = || -> Result<(), rnnkit::Error> {
        match o.mode.as_str() {
            "train" => {
                trainer.train_on_batch(&mut model, (&x, &y))?;
            }
            // Inference through &self, as predict and a model shared across threads run.
            "infer" => {
                std::hint::black_box(
                    model
                        .infer(Inputs::new(&x).mask(None))
                        .map(|mut o| o.remove(0).output)?,
                );
            }
            _ => {
                std::hint::black_box(model.step(x_step.view(), &mut stream)?);
            }
        }
        Ok(())
    };
    for _ in 0..o.warmup {
        step()?;
    }
    let start = Instant::now();
    for _ in 0..o.steps {
        step()?;
    }
    Ok(start.elapsed().as_secs_f64() * 1e3 / o.steps.max(1) as f64)
}

fn main() -> Result<(), rnnkit::Error> {
    let o = parse();
    rnnkit::set_num_threads(o.threads);
    let ms = if o.f64 {
        run::<f64>(&o)?
    } else {
        run::<f32>(&o)?
    };
    // The result line, then ref_rnn.py's line (last, as tools/bench_compare.sh reads it).
    println!("result: ms_per_step={ms}");
    println!(
        "ms_per_step={ms:.4} framework=rnnkit cell={} B={} T={} F={} H={} mode={}",
        o.cell, o.b, o.t, o.f, o.h, o.mode
    );
    Ok(())
}
