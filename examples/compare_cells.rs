//! The lecture's model 4: SimpleRNN vs LSTM vs GRU (10 units + Dense(1)) on windows of 16
//! values of the sequence 0.0, 0.1, 0.2, ...: [0.0 .. 1.5] → 1.6, [0.1 .. 1.6] → 1.7, ...
//! (8 training windows), validated on [1.0 .. 2.5] → 2.6 ... [1.3 .. 2.8] → 2.9.
//!
//! ```sh
//! cargo run --release --example compare_cells
//! ```

mod common;

use ndarray::{Array2, Array3};
use rnnkit::prelude::*;

/// `n` windows of 16 values starting at `start`, step 0.1, and the value after each.
fn windows(start: f32, n: usize) -> (ndarray::ArrayD<f32>, ndarray::ArrayD<f32>) {
    let x = Array3::from_shape_fn((n, 16, 1), |(i, t, _)| start + 0.1 * (i + t) as f32);
    let y = Array2::from_shape_fn((n, 1), |(i, _)| start + 0.1 * (i + 16) as f32);
    (x.into_dyn(), y.into_dyn())
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("compare_cells", 300);
    let (x, y) = windows(0.0, 8);
    let (vx, vy) = windows(1.0, 4);
    let mut curves = Vec::new();
    let mut rows = Vec::new();
    for cell in common::CELLS {
        let mut model = common::cell_model(cell, 10, Some(16), 1, args.seed)?;
        let mut trainer = Trainer::new(Adam::default(), Loss::Mse)
            .epochs(args.epochs)
            .seed(args.seed)
            .validation_data((&vx.clone(), &vy.clone()));
        let (h, secs) = common::timed_fit(&mut trainer, &mut model, &x, &y)?;
        let val = h.val_loss().unwrap_or(&[]);
        rows.push((
            cell,
            *h.loss().last().unwrap_or(&f64::NAN),
            *val.last().unwrap_or(&f64::NAN),
            model.param_count(),
            secs,
        ));
        curves.push((format!("{cell} train"), common::curve(h.loss())));
        curves.push((format!("{cell} val"), common::curve(val)));
    }
    println!("| cell | train loss | val loss | params | fit time |");
    println!("|---|---|---|---|---|");
    let mut result = Vec::new();
    for (cell, train, val, params, secs) in rows {
        println!(
            "| {cell}(10) | {train:.5} | {val:.5} | {params} | {:.1} ms |",
            secs * 1e3
        );
        result.push((cell, format!("{params}/{train:e}/{val:e}")));
    }
    // cell=params/train loss/val loss
    common::result(&result);
    common::line_plot(
        &args.path("loss.svg"),
        "SimpleRNN vs LSTM vs GRU (10 units): loss",
        "epoch",
        "MSE loss",
        &curves,
        true,
    );
    Ok(())
}
