//! The notes' worked example: an Elman network with U, W, V, b, c given by hand, run on
//! x = ([0,1], [0,0.1], [0.1,−0.2], [0.5,0]). Prints a_t, h_t and y'_t for t = 1..4 (the
//! notes: y'_1 = (0.5299, 0.4701) ...), then the gradients of one BPTT step against the
//! notes' labels y = ([0.7,0.4], [0.3,0.4], [0.2,0.4], [0.4,0.5]) with E = MSE(y, y').
//!
//! ```sh
//! cargo run --release --example worked_example
//! ```

mod common;

use ndarray::{Array2, Ix2, Ix3, array};
use rnnkit::prelude::*;

fn show(name: &str, m: &Array2<f64>) {
    println!("{name} =");
    for row in m.rows() {
        println!(
            "  [{}]",
            row.iter()
                .map(|v| format!("{v:>9.5}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn main() -> Result<(), rnnkit::Error> {
    let args = common::Args::parse("worked_example", 1);
    // The notes' matrices (course notation: a_t = U x_t + W h_{t-1} + b, y'_t = softmax(V h_t + c)).
    let u = array![[0.1, 0.1], [0.0, 0.0], [0.0, -0.1]];
    let w = array![[0.1, 0.1, 0.0], [0.0, 0.0, 0.0], [0.2, -0.1, -0.1]];
    let v = array![[0.0, 0.1, 0.0], [-0.2, 0.0, 0.0]];
    let b = array![0.0, 0.0, 0.2];
    let c = array![0.2, 0.1];
    let x = array![[[0.0, 1.0], [0.0, 0.1], [0.1, -0.2], [0.5, 0.0]]].into_dyn();
    let y = array![[[0.7, 0.4], [0.3, 0.4], [0.2, 0.4], [0.4, 0.5]]].into_dyn();

    let mut model = Sequential::<f64>::new(&[4, 2])
        .push(SimpleRnnConfig::new(3).return_sequences(true))?
        .push(DenseConfig::new(2).activation(Activation::Softmax))?;
    // Keras stores the transposes: kernel = Uᵀ, recurrent_kernel = Wᵀ, Dense kernel = Vᵀ.
    model.set_weights(&[
        u.t().to_owned().into_dyn(),
        w.t().to_owned().into_dyn(),
        b.clone().into_dyn(),
        v.t().to_owned().into_dyn(),
        c.clone().into_dyn(),
    ])?;

    let h = model.layers_mut()[0]
        .forward(Inputs::new(&x).mode(Mode::Infer))
        .map(|o| o.output)?
        .into_dimensionality::<Ix3>()
        .expect("[1, 4, 3]");
    let y_hat = model
        .forward(Inputs::new(&x).mode(Mode::Train))
        .map(|mut o| o.remove(0).output)?;
    let y3 = y_hat
        .view()
        .into_dimensionality::<Ix3>()
        .expect("[1, 4, 2]");
    let x3 = x.view().into_dimensionality::<Ix3>().expect("[1, 4, 2]");
    let mut h_prev = ndarray::Array1::<f64>::zeros(3);
    for t in 0..4 {
        let a: ndarray::Array1<f64> = u.dot(&x3.slice(ndarray::s![0, t, ..])) + w.dot(&h_prev) + &b;
        let ht = h.slice(ndarray::s![0, t, ..]).to_owned();
        let fmt = |s: ndarray::ArrayView1<f64>| {
            s.iter()
                .map(|v| format!("{v:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "t={}: a_t = ({})  h_t = ({})  y'_t = ({})",
            t + 1,
            fmt(a.view()),
            fmt(ht.view()),
            fmt(y3.slice(ndarray::s![0, t, ..]))
        );
        h_prev = ht;
    }

    // One BPTT step: E = MSE(y, y') over all steps and outputs (Keras's mse).
    let (e, de) = Loss::Mse.compute(&y_hat, &y, None, None)?;
    model.zero_grad();
    model
        .backward(&[OutputGrads::new(&de)])
        .map(|mut d| d.remove(0))?;
    println!("\nE = MSE(y, y') = {e:.6}");
    println!("result: y1={}/{} E={e}", y3[[0, 0, 0]], y3[[0, 0, 1]]);
    let mut grads = Vec::new();
    model.visit_params(&mut |name, p| grads.push((name.to_string(), p.grad().clone())));
    let g2 = |i: usize| {
        grads[i]
            .1
            .clone()
            .into_dimensionality::<Ix2>()
            .expect("2-D")
            .t()
            .to_owned()
    };
    let g1 = |i: usize| {
        grads[i]
            .1
            .clone()
            .insert_axis(ndarray::Axis(1))
            .into_dimensionality::<Ix2>()
            .expect("column")
    };
    println!("gradients in the notes' notation (transposes of Keras's kernels):");
    show("dE/dU", &g2(0));
    show("dE/dW", &g2(1));
    show("dE/db", &g1(2));
    show("dE/dV", &g2(3));
    show("dE/dc", &g1(4));
    let _ = args;
    Ok(())
}
