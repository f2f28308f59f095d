//! LAB 10-1: windows cut from a sine curve, predict the next value; SimpleRNN, LSTM and GRU
//! compared, with the predictions over a held-out stretch of the curve plotted against it.
//!
//! ```sh
//! cargo run --release --example sine_prediction
//! ```

mod common;

use rnnkit::prelude::*;

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("sine_prediction", 100);
    let window = args.num("window", 20);
    // sin(0.1 t) for t = 0..500: the first 400 points train, the rest is held out.
    let series: Vec<f32> = (0..500).map(|t| (0.1 * t as f32).sin()).collect();
    let split = 400;
    let (x, y) = common::windows(&series[..split], window);
    let (hx, hy) = common::windows(&series[split - window..], window);

    let truth: Vec<(f64, f64)> = hy
        .iter()
        .enumerate()
        .map(|(i, &v)| ((split + i) as f64, v as f64))
        .collect();
    let mut plot = vec![("sin(0.1 t)".to_string(), truth)];
    println!("| cell | train loss | held-out MSE | fit time |");
    println!("|---|---|---|---|");
    let mut result = Vec::new();
    for cell in common::CELLS {
        let mut model = common::cell_model(cell, 16, Some(window), 1, args.seed)?;
        let mut trainer = Trainer::new(Adam::new(0.01), Loss::Mse)
            .epochs(args.epochs)
            .seed(args.seed);
        let (h, secs) = common::timed_fit(&mut trainer, &mut model, &x, &y)?;
        let held = trainer.evaluate(&model, (&hx, &hy))?["loss"];
        println!(
            "| {cell}(16) | {:.2e} | {held:.2e} | {:.2} s |",
            h.loss().last().unwrap_or(&f64::NAN),
            secs
        );
        result.push((cell, format!("{held:e}")));
        let pred = model
            .predict(Inputs::new(&hx), 32)
            .map(|mut p| p.remove(0))?;
        plot.push((
            format!("{cell} prediction"),
            pred.iter()
                .enumerate()
                .map(|(i, &v)| ((split + i) as f64, v as f64))
                .collect(),
        ));
    }
    // cell=held-out MSE
    common::result(&result);
    common::line_plot(
        &args.path("prediction.svg"),
        "Next-value prediction on a held-out stretch of sin(0.1 t)",
        "t",
        "value",
        &plot,
        false,
    );
    Ok(())
}
