//! The lecture's model 3: a deep RNN, SimpleRNN(34, return_sequences) ×3 → SimpleRNN(34) →
//! Dense(1) (8,297 parameters), on the linear sequence of model 1, Adam, MSE, 300 epochs.
//!
//! ```sh
//! cargo run --release --example deep_rnn
//! ```

mod common;

use rnnkit::prelude::*;

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("deep_rnn", 300);
    let (x, y) = common::linear_data();
    let mut model = Sequential::<f32>::new(&[3, 1])
        .seed(args.seed)
        .push(SimpleRnnConfig::new(34).return_sequences(true))?
        .push(SimpleRnnConfig::new(34).return_sequences(true))?
        .push(SimpleRnnConfig::new(34).return_sequences(true))?
        .push(SimpleRnnConfig::new(34))?
        .push(DenseConfig::new(1))?;
    println!("{}", model.summary());

    let mut trainer = Trainer::new(Adam::default(), Loss::Mse)
        .epochs(args.epochs)
        .seed(args.seed);
    let (history, secs) = common::timed_fit(&mut trainer, &mut model, &x, &y)?;
    let losses = history.loss();
    for (e, l) in losses
        .iter()
        .enumerate()
        .filter(|(e, _)| e % 30 == 29 || *e == 0)
    {
        println!("epoch {:>3}: loss {l:.6}", e + 1);
    }
    println!(
        "final loss {:.6} after {} epochs, fit took {secs:.3} s",
        losses.last().unwrap_or(&f64::NAN),
        losses.len()
    );
    common::result(&[
        ("params", model.param_count().to_string()),
        (
            "first_loss",
            format!("{:e}", losses.first().unwrap_or(&f64::NAN)),
        ),
        (
            "final_loss",
            format!("{:e}", losses.last().unwrap_or(&f64::NAN)),
        ),
    ]);

    let y_hat = model
        .predict(Inputs::new(&x), 32)
        .map(|mut p| p.remove(0))?;
    common::line_plot(
        &args.path("loss.svg"),
        "Deep RNN (4 × SimpleRNN(34)): training loss",
        "epoch",
        "MSE loss",
        &[("loss".into(), common::curve(losses))],
        true,
    );
    let (yv, yh): (Vec<f32>, Vec<f32>) =
        (y.iter().copied().collect(), y_hat.iter().copied().collect());
    common::scatter_plot(&args.path("scatter.svg"), "Deep RNN: Y vs Y_hat", &yv, &yh);
    Ok(())
}
