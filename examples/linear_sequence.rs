//! The lecture's models 1 and 2: SimpleRNN(20) (or `--units 256`) + Dense(1) learning the
//! linear sequence x_i = [0.1i, 0.1i+0.1, 0.1i+0.2] → y_i = 0.1i + 0.3, Adam, MSE, 300 epochs.
//!
//! ```sh
//! cargo run --release --example linear_sequence                 # model 1
//! cargo run --release --example linear_sequence -- --units 256  # model 2
//! ```
//! Writes `loss.svg` (history) and `scatter.svg` (Y vs Y_hat) under `target/plots/linear_sequence`.

mod common;

use rnnkit::prelude::*;
use std::time::Instant;

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("linear_sequence", 300);
    let units = args.num("units", 20);
    let (x, y) = common::linear_data();

    // model = Sequential([SimpleRNN(units, input_shape=[3, 1]), Dense(1)])
    let mut model = Sequential::<f32>::new(&[3, 1])
        .seed(args.seed)
        .push(SimpleRnnConfig::new(units))?
        .push(DenseConfig::new(1))?;
    println!("{}", model.summary());

    // model.compile(optimizer='adam', loss='mse'); model.fit(X, Y, epochs=300)
    let mut trainer = Trainer::new(Adam::default(), Loss::Mse)
        .epochs(args.epochs)
        .seed(args.seed);
    let start = Instant::now();
    let history = trainer.fit(&mut model, (&x, &y))?;
    let secs = start.elapsed().as_secs_f64();

    let losses = history.loss();
    for (e, l) in losses.iter().enumerate() {
        if e == 0 || (e + 1) % 30 == 0 || e + 1 == losses.len() {
            println!("epoch {:>3}: loss {l:.6}", e + 1);
        }
    }
    let y_hat = model
        .predict(Inputs::new(&x), 32)
        .map(|mut p| p.remove(0))?;
    println!(
        "final loss {:.6} after {} epochs, fit took {secs:.3} s",
        losses.last().unwrap_or(&f64::NAN),
        losses.len()
    );
    println!(
        "Y_hat[0] = {:.4} (Y = 0.3), Y_hat[99] = {:.4} (Y = 10.2)",
        y_hat[[0, 0]],
        y_hat[[99, 0]]
    );
    common::result(&[
        ("params", model.param_count().to_string()),
        (
            "final_loss",
            format!("{:e}", losses.last().unwrap_or(&f64::NAN)),
        ),
        ("y_hat_0", format!("{}", y_hat[[0, 0]])),
        ("y_hat_99", format!("{}", y_hat[[99, 0]])),
    ]);

    let title = format!("SimpleRNN({units}) + Dense(1): training loss");
    common::line_plot(
        &args.path("loss.svg"),
        &title,
        "epoch",
        "MSE loss",
        &[("loss".into(), common::curve(losses))],
        true,
    );
    let (yv, yh): (Vec<f32>, Vec<f32>) =
        (y.iter().copied().collect(), y_hat.iter().copied().collect());
    common::scatter_plot(
        &args.path("scatter.svg"),
        &format!("SimpleRNN({units}): Y vs Y_hat"),
        &yv,
        &yh,
    );
    Ok(())
}
