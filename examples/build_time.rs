//! How long building a large recurrent layer takes (the orthogonal initialiser of its
//! recurrent kernel dominates): SimpleRNN, LSTM and GRU of 512, 1,024 and 2,048 units on
//! 32 input features, median of `--repeats` builds (default 3). Compare with Keras's
//! `layer.build((None, 10, 32))` on the same host.
//!
//! ```sh
//! cargo run --release --example build_time
//! cargo run --release --example build_time -- --units 512 --repeats 5
//! ```

use rnnkit::prelude::*;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), rnnkit::Error> {
    let args: Vec<String> = std::env::args().collect();
    let opt = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let units: Vec<usize> = opt("--units").map_or(vec![512, 1024, 2048], |u| vec![u]);
    let repeats = opt("--repeats").unwrap_or(3).max(1);
    println!("| units | SimpleRNN | LSTM | GRU |");
    println!("|---|---|---|---|");
    for u in units {
        let time = |build: &dyn Fn() -> Result<(), rnnkit::Error>| -> Result<f64, rnnkit::Error> {
            let mut t = Vec::new();
            for _ in 0..repeats {
                let start = Instant::now();
                build()?;
                t.push(start.elapsed().as_secs_f64());
            }
            Ok(median(t))
        };
        let input = || Sequential::<f32>::new(&[10, 32]);
        let rnn = time(&|| input().push(SimpleRnnConfig::new(u)).map(drop))?;
        let lstm = time(&|| input().push(LstmConfig::new(u)).map(drop))?;
        let gru = time(&|| input().push(GruConfig::new(u)).map(drop))?;
        println!("| {u} | {rnn:.3} s | {lstm:.3} s | {gru:.3} s |");
        println!("result: units={u} simple_rnn_s={rnn} lstm_s={lstm} gru_s={gru}");
    }
    Ok(())
}
