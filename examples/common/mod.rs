//! What the lecture examples share: command-line options, the lecture's data, SVG plots.
#![allow(dead_code)]

use ndarray::{Array2, Array3, ArrayD};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// `--epochs N --seed S --out DIR --quick` and example-specific `--key value` options.
pub struct Args {
    pub epochs: usize,
    pub seed: u64,
    pub out: PathBuf,
    pub quick: bool,
    rest: Vec<(String, String)>,
}

impl Args {
    /// Parses the command line; `default_epochs` applies unless `--epochs` or `--quick`.
    pub fn parse(example: &str, default_epochs: usize) -> Args {
        let mut a = Args {
            epochs: default_epochs,
            seed: 0,
            out: PathBuf::from("target/plots").join(example),
            quick: false,
            rest: Vec::new(),
        };
        let mut epochs = None;
        let mut it = std::env::args().skip(1);
        while let Some(k) = it.next() {
            let mut value = |k: &str| {
                it.next().unwrap_or_else(|| {
                    eprintln!("{k} needs a value");
                    std::process::exit(2)
                })
            };
            match k.as_str() {
                "--quick" => a.quick = true,
                "--epochs" => epochs = Some(parse_num(&k, &value(&k))),
                "--seed" => a.seed = parse_num(&k, &value(&k)) as u64,
                "--out" => a.out = PathBuf::from(value(&k)),
                "--help" | "-h" => {
                    println!(
                        "usage: {example} [--epochs N] [--seed S] [--out DIR] [--quick] [options]"
                    );
                    std::process::exit(0)
                }
                other if other.starts_with("--") => {
                    let v = value(other);
                    a.rest.push((other.trim_start_matches("--").to_string(), v));
                }
                other => {
                    eprintln!("unexpected argument {other:?} (try --help)");
                    std::process::exit(2)
                }
            }
        }
        a.epochs = epochs.unwrap_or(if a.quick {
            default_epochs.min(5)
        } else {
            default_epochs
        });
        std::fs::create_dir_all(&a.out).unwrap_or_else(|e| {
            eprintln!("cannot create {}: {e}", a.out.display());
            std::process::exit(1)
        });
        a
    }

    /// An example-specific option.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.rest
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An example-specific numeric option with a default.
    pub fn num(&self, key: &str, default: usize) -> usize {
        self.get(key).map_or(default, |v| parse_num(key, v))
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.out.join(file)
    }
}

fn parse_num(k: &str, v: &str) -> usize {
    v.parse().unwrap_or_else(|_| {
        eprintln!("{k} expects a non-negative integer, got {v:?}");
        std::process::exit(2)
    })
}

/// The lecture's linear sequence: x_i = [0.1i, 0.1i+0.1, 0.1i+0.2], y_i = 0.1i + 0.3.
pub fn linear_data() -> (ArrayD<f32>, ArrayD<f32>) {
    let x = Array3::from_shape_fn((100, 3, 1), |(i, t, _)| 0.1 * i as f32 + 0.1 * t as f32);
    let y = Array2::from_shape_fn((100, 1), |(i, _)| 0.1 * i as f32 + 0.3);
    (x.into_dyn(), y.into_dyn())
}

/// Windows of `len` consecutive values of `series` and the value after each.
pub fn windows(series: &[f32], len: usize) -> (ArrayD<f32>, ArrayD<f32>) {
    let n = series.len() - len;
    let x = Array3::from_shape_fn((n, len, 1), |(i, t, _)| series[i + t]);
    let y = Array2::from_shape_fn((n, 1), |(i, _)| series[i + len]);
    (x.into_dyn(), y.into_dyn())
}

/// One named series of (x, y) points.
pub type Series = (String, Vec<(f64, f64)>);

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn bounds(series: &[Series]) -> ((f64, f64), (f64, f64)) {
    let pts = series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts.filter(|p| p.0.is_finite() && p.1.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let pad = |a: f64, b: f64| if b > a { (b - a) * 0.05 } else { 1.0 };
    (
        (x0 - pad(x0, x1), x1 + pad(x0, x1)),
        (y0 - pad(y0, y1), y1 + pad(y0, y1)),
    )
}

/// A titled line plot with labelled axes and a legend; `log_y` for loss curves.
pub fn line_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) {
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).expect("svg");
    let ((x0, x1), (y0, y1)) = bounds(series);
    let mut builder = ChartBuilder::on(&root);
    let chart = builder
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70);
    if log_y {
        let lo = series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .filter(|v| *v > 0.0)
            .fold(f64::MAX, f64::min);
        let hi = series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .fold(f64::MIN, f64::max);
        let mut c = chart
            .build_cartesian_2d(x0..x1, (lo * 0.8..hi * 1.25).log_scale())
            .expect("chart");
        c.configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&tick)
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .expect("mesh");
        for (i, (name, pts)) in series.iter().enumerate() {
            let col = COLORS[i % COLORS.len()];
            c.draw_series(LineSeries::new(
                pts.iter().copied().filter(|p| p.1 > 0.0),
                col.stroke_width(2),
            ))
            .expect("series")
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2)));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .expect("legend");
    } else {
        let mut c = chart.build_cartesian_2d(x0..x1, y0..y1).expect("chart");
        c.configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&tick)
            .draw()
            .expect("mesh");
        for (i, (name, pts)) in series.iter().enumerate() {
            let col = COLORS[i % COLORS.len()];
            c.draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(2)))
                .expect("series")
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(2))
                });
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .expect("legend");
    }
    root.present().expect("write svg");
    println!("wrote {}", path.display());
}

/// Axis ticks: whole numbers without a decimal point.
fn tick(v: &f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Scatter of targets against predictions with the y = x line.
pub fn scatter_plot(path: &Path, title: &str, y: &[f32], y_hat: &[f32]) {
    let root = SVGBackend::new(path, (600, 600)).into_drawing_area();
    root.fill(&WHITE).expect("svg");
    let pts: Vec<(f64, f64)> = y
        .iter()
        .zip(y_hat)
        .map(|(&a, &b)| (a as f64, b as f64))
        .collect();
    let ((x0, x1), (y0, y1)) = bounds(&[("".into(), pts.clone())]);
    let (lo, hi) = (x0.min(y0), x1.max(y1));
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, lo..hi)
        .expect("chart");
    c.configure_mesh()
        .x_desc("Y (target)")
        .y_desc("Y_hat (prediction)")
        .draw()
        .expect("mesh");
    c.draw_series(LineSeries::new(vec![(lo, lo), (hi, hi)], BLACK.mix(0.5)))
        .expect("line")
        .label("y = x")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, COLORS[0].filled())))
        .expect("points")
        .label("samples")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, COLORS[0].filled()));
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .expect("legend");
    root.present().expect("write svg");
    println!("wrote {}", path.display());
}

/// `(epoch, value)` points of a history curve, epochs counted from 1.
pub fn curve(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| ((i + 1) as f64, v))
        .collect()
}

/// Trains `model` and returns (history, seconds).
pub fn timed_fit<O: rnnkit::Optimizer<f32>>(
    trainer: &mut rnnkit::Trainer<f32, O>,
    model: &mut rnnkit::Sequential<f32>,
    x: &ArrayD<f32>,
    y: &ArrayD<f32>,
) -> Result<(rnnkit::History, f64), rnnkit::Error> {
    let start = std::time::Instant::now();
    let h = trainer.fit(model, (x, y))?;
    Ok((h, start.elapsed().as_secs_f64()))
}

/// One recurrent layer of `units` (SimpleRNN, LSTM or GRU) + Dense(1) on `[steps, features]`.
pub fn cell_model(
    cell: &str,
    units: usize,
    steps: Option<usize>,
    features: usize,
    seed: u64,
) -> Result<rnnkit::Sequential<f32>, rnnkit::Error> {
    use rnnkit::prelude::*;
    let m = Sequential::<f32>::with_input_shape(vec![steps, Some(features)]).seed(seed);
    let m = match cell {
        "SimpleRNN" => m.push(SimpleRnnConfig::new(units))?,
        "LSTM" => m.push(LstmConfig::new(units))?,
        _ => m.push(GruConfig::new(units))?,
    };
    m.push(DenseConfig::new(1))
}

pub const CELLS: [&str; 3] = ["SimpleRNN", "LSTM", "GRU"];

/// Prints the example's outcome as one machine-readable line, `result: key=value ...`,
/// which tests/suite/examples.rs reads to check what the README says.
pub fn result(pairs: &[(&str, String)]) {
    let kv: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("result: {}", kv.join(" "));
}

/// Text laid out in lines of `per_line` characters, each on a cell coloured by its value
/// (blue for the lowest, white for 0, red for the highest): what one hidden unit does over
/// a text (notes 002's "what one cell learned").
pub fn text_heatmap(path: &Path, title: &str, chars: &[char], values: &[f64], per_line: usize) {
    let (cw, ch) = (14i32, 22i32);
    let lines = chars.len().div_ceil(per_line.max(1)) as i32;
    let width = (per_line as i32 * cw + 40) as u32;
    let height = (lines * ch + 70) as u32;
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).expect("svg");
    root.draw(&Text::new(
        title.to_string(),
        (20, 15),
        ("sans-serif", 16).into_font(),
    ))
    .expect("title");
    let m = values.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (&c, &v)) in chars.iter().zip(values).enumerate() {
        let (x, y) = (
            20 + (i % per_line) as i32 * cw,
            45 + (i / per_line) as i32 * ch,
        );
        let a = (v / m).clamp(-1.0, 1.0);
        let fade = |k: f64| (255.0 * (1.0 - k.abs())) as u8;
        let color = if a >= 0.0 {
            RGBColor(255, fade(a), fade(a))
        } else {
            RGBColor(fade(a), fade(a), 255)
        };
        root.draw(&Rectangle::new([(x, y), (x + cw, y + ch)], color.filled()))
            .expect("cell");
        let shown = if c == '\n' { '↵' } else { c };
        root.draw(&Text::new(
            shown.to_string(),
            (x + 3, y + 4),
            ("monospace", 15).into_font(),
        ))
        .expect("char");
    }
    root.present().expect("svg");
    println!("wrote {}", path.display());
}
