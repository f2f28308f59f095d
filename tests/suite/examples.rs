//! The lecture examples: each runs with `--quick` and writes its plots; the outcome ones
//! reproduce the lecture. `cargo test` builds the examples; this runs those binaries.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(
        bin.exists(),
        "{} is not built: run `cargo test` (which builds the examples) or `cargo build --examples`",
        bin.display()
    );
    bin
}

fn run(name: &str, args: &[&str]) -> (String, PathBuf) {
    // One directory per run: tests running the same example side by side must not share it.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = std::env::temp_dir().join(format!(
        "rnnkit-example-{name}-{}-{run}",
        std::process::id()
    ));
    let output = Command::new(example(name))
        .args(args)
        .arg("--out")
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run example");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (stdout, out)
}

fn assert_svgs(out: &std::path::Path, files: &[&str]) {
    for f in files {
        let p = out.join(f);
        let svg = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            svg.contains("<svg") && svg.contains("<text"),
            "{} is not a labelled SVG",
            p.display()
        );
    }
}

/// The example's `result: key=value ...` line, as a map.
fn result(name: &str, stdout: &str) -> std::collections::HashMap<String, String> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("result: "))
        .unwrap_or_else(|| panic!("{name} printed no result line:\n{stdout}"));
    line.split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The `/`-separated numbers of one result value.
fn nums(r: &std::collections::HashMap<String, String>, key: &str) -> Vec<f64> {
    r.get(key)
        .unwrap_or_else(|| panic!("no {key} in {r:?}"))
        .split('/')
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{key}: {v} is not a number"))
        })
        .collect()
}

#[test]
fn the_lecture_examples_print_what_the_readme_says() {
    // deep_rnn: "model 3: SimpleRNN(34) ×4 + Dense(1), 8,297 params", and it learns.
    let (out, dir) = run("deep_rnn", &["--quick"]);
    let r = result("deep_rnn", &out);
    assert_eq!(nums(&r, "params"), [8297.0]);
    assert!(
        nums(&r, "final_loss")[0] < nums(&r, "first_loss")[0],
        "{r:?}"
    );
    let _ = std::fs::remove_dir_all(dir);

    // compare_cells: "SimpleRNN / LSTM / GRU (10 units)": their parameter counts, finite
    // train and validation losses.
    let (out, dir) = run("compare_cells", &["--quick"]);
    let r = result("compare_cells", &out);
    for (cell, params) in [("SimpleRNN", 131.0), ("LSTM", 491.0), ("GRU", 401.0)] {
        let v = nums(&r, cell);
        assert_eq!(v[0], params, "{cell}");
        assert!(v[1].is_finite() && v[2].is_finite(), "{cell}: {v:?}");
    }
    let _ = std::fs::remove_dir_all(dir);

    // sine_prediction: every cell predicts the held-out curve (README, full run: 1e-6 to
    // 1e-5; five quick epochs reach 1e-3).
    let (out, dir) = run("sine_prediction", &["--quick"]);
    let r = result("sine_prediction", &out);
    for cell in ["SimpleRNN", "LSTM", "GRU"] {
        let mse = nums(&r, cell)[0];
        assert!(mse < 1e-2, "{cell}: held-out MSE {mse}");
    }
    let _ = std::fs::remove_dir_all(dir);

    // even_index_mean: validation MSE near the README's 0.04 for every cell.
    let (out, dir) = run("even_index_mean", &["--quick"]);
    let r = result("even_index_mean", &out);
    for cell in ["SimpleRNN", "LSTM", "GRU"] {
        let mse = nums(&r, cell)[0];
        assert!(mse < 0.08, "{cell}: mean validation MSE {mse}");
    }
    let _ = std::fs::remove_dir_all(dir);

    // text_classifier: an order-dependent task where counting tokens gives chance (0.5);
    // the README's full run reaches 1.00, five quick epochs already beat chance.
    let (out, dir) = run("text_classifier", &["--quick"]);
    let acc = nums(&result("text_classifier", &out), "test_accuracy")[0];
    assert!(acc > 0.65, "test accuracy {acc}");
    let _ = std::fs::remove_dir_all(dir);

    // residual_rnn: the same stack with and without skip connections, both training.
    let (out, dir) = run("residual_rnn", &["--quick"]);
    let r = result("residual_rnn", &out);
    let (plain, residual) = (nums(&r, "plain"), nums(&r, "residual"));
    assert_eq!(plain[0], residual[0], "an Add has no weights");
    assert!(plain[2] < plain[1] && residual[2] < residual[1], "{r:?}");
    let _ = std::fs::remove_dir_all(dir);

    // seq2seq at the README's sizes (LSTM(64), 1–12 digits), quick data and epochs: the
    // table's parameter counts, and every variant's loss falls.
    let (out, dir) = run("seq2seq", &["--quick", "--units", "64", "--max-len", "12"]);
    let r = result("seq2seq", &out);
    for (variant, params) in [
        ("state", 42_733.0),
        ("input", 59_117.0),
        ("both", 59_117.0),
        ("attention", 43_565.0),
    ] {
        let v = nums(&r, variant);
        assert_eq!(v[0], params, "{variant}");
        assert!(v[2] < v[1], "{variant}: loss {} -> {}", v[1], v[2]);
        assert!((0.0..=1.0).contains(&v[3]) && (0.0..=1.0).contains(&v[4]));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_example_runs_quick_and_writes_its_plots() {
    let plots: [(&str, &[&str]); 14] = [
        ("linear_sequence", &["loss.svg", "scatter.svg"]),
        ("deep_rnn", &["loss.svg", "scatter.svg"]),
        ("compare_cells", &["loss.svg"]),
        ("sine_prediction", &["prediction.svg"]),
        ("even_index_mean", &["val_loss.svg"]),
        ("char_lm", &["loss.svg", "hidden_unit.svg"]),
        ("one_to_many", &["sequences.svg"]),
        ("long_series", &["forecast.svg"]),
        ("text_classifier", &["accuracy.svg"]),
        ("recursive_net", &["mae_by_depth.svg"]),
        (
            "long_term",
            &[
                "composition.svg",
                "gradient_flow.svg",
                "success.svg",
                "success_adding.svg",
                "cliff.svg",
            ],
        ),
        ("residual_rnn", &["loss.svg"]),
        ("seq2seq", &["accuracy_by_length.svg"]),
        (
            "echo_state",
            &["mackey_glass_forecast.svg", "sine_forecast.svg", "rho.svg"],
        ),
    ];
    for (name, files) in plots {
        let (_, out) = run(name, &["--quick"]);
        assert_svgs(&out, files);
        let _ = std::fs::remove_dir_all(out);
    }
    run("worked_example", &["--quick"]);
    let (table, _) = run("build_time", &["--units", "300", "--repeats", "1"]);
    assert!(table.contains("| 300 |"), "{table}");
}

#[test]
fn linear_sequence_model_1_reaches_the_lecture_loss() {
    let (stdout, out) = run("linear_sequence", &["--seed", "0"]);
    assert!(stdout.contains("Total params: 461"), "{stdout}");
    assert_eq!(nums(&result("linear_sequence", &stdout), "params"), [461.0]);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("final loss"))
        .expect("final loss line");
    let loss: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(loss < 0.05, "{line}");
    assert_svgs(&out, &["loss.svg", "scatter.svg"]);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn worked_example_prints_the_lecture_numbers() {
    let (stdout, _) = run("worked_example", &[]);
    for expected in [
        "t=1: a_t = (0.1000, 0.0000, 0.1000)  h_t = (0.0997, 0.0000, 0.0997)  y'_t = (0.5299, 0.4701)",
        "y'_t = (0.5260, 0.4740)",
        "y'_t = (0.5246, 0.4754)",
        "y'_t = (0.5274, 0.4726)",
        "dE/dU",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    // The notes' y'_1 = (0.5299, 0.4701), to their four decimals.
    let r = result("worked_example", &stdout);
    let y1 = nums(&r, "y1");
    assert!(
        (y1[0] - 0.5299).abs() < 5e-5 && (y1[1] - 0.4701).abs() < 5e-5,
        "{y1:?}"
    );
    assert!(nums(&r, "E")[0] > 0.0);
}

#[test]
fn char_lm_learns_hello() {
    let text = std::env::temp_dir().join(format!("rnnkit_hello_{}.txt", std::process::id()));
    std::fs::write(&text, "hello").unwrap();
    let path = text.to_str().unwrap();
    let (stdout, out) = run(
        "char_lm",
        &["--seed", "0", "--text", path, "--epochs", "200"],
    );
    assert!(stdout.contains("greedy from 'h': hello"), "{stdout}");
    let r = result("char_lm", &stdout);
    assert_eq!(r["greedy"], "hello");
    // Streaming generation: the work per character (model steps run) does not grow with
    // the length generated (100, 1,000, 10,000): one step each.
    assert_eq!(nums(&r, "steps_per_char"), [1.0, 1.0, 1.0], "{stdout}");
    let _ = std::fs::remove_file(text);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn long_series_truncated_bptt_keeps_memory_flat() {
    // Peak memory of truncated BPTT does not grow with the series (where the system says).
    let peak = |steps: &str, bptt: &str| -> Option<f64> {
        let (stdout, out) = run(
            "long_series",
            &["--steps", steps, "--bptt", bptt, "--epochs", "1"],
        );
        let _ = std::fs::remove_dir_all(out);
        let line = stdout
            .lines()
            .find(|l| l.starts_with("peak memory (VmHWM)"))?;
        let r = result("long_series", &stdout);
        assert!(nums(&r, "final_loss")[0].is_finite());
        line.split(": ").nth(1)?.split(' ').next()?.parse().ok()
    };
    if let (Some(short), Some(long), Some(full)) = (
        peak("4000", "truncated"),
        peak("40000", "truncated"),
        peak("40000", "full"),
    ) {
        assert!(
            long < short + 8.0,
            "truncated: {short} MiB at 4,000 steps, {long} at 40,000"
        );
        assert!(
            full > long + 30.0,
            "full BPTT {full} MiB, truncated {long} MiB"
        );
    }
}

#[test]
fn throughput_prints_the_ref_rnn_result_line() {
    for (cell, dtype) in [("lstm", "f32"), ("gru", "f64"), ("rnn", "f32")] {
        let output = Command::new(example("throughput"))
            .args(["--cell", cell, "--batch", "4", "--seq", "3", "--input", "2"])
            .args([
                "--hidden", "5", "--out", "1", "--mode", "train", "--steps", "2",
            ])
            .args(["--warmup", "1", "--dtype", dtype, "--threads", "1"])
            .output()
            .expect("run throughput");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "throughput failed: {stdout}");
        let ms_result = nums(&result("throughput", &stdout), "ms_per_step")[0];
        assert!(ms_result.is_finite() && ms_result > 0.0);
        let last = stdout.lines().last().expect("a result line");
        let ms: f64 = last
            .strip_prefix("ms_per_step=")
            .and_then(|r| r.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad result line: {last}"));
        assert!(ms.is_finite() && ms > 0.0, "{last}");
        let tail = format!("framework=rnnkit cell={cell} B=4 T=3 F=2 H=5 mode=train");
        assert!(last.ends_with(&tail), "{last}");
    }
}

#[test]
fn inspect_prints_a_sample_file_and_refuses_garbage_with_exit_1() {
    let dir = std::env::temp_dir().join(format!("rnnkit-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sample = dir.join("sample.safetensors");
    let out = Command::new(example("inspect"))
        .arg("--write-sample")
        .arg(&sample)
        .output()
        .expect("run inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "wrote PATH: N parameters"
    let written: f64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.strip_suffix(" parameters")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .expect("the parameter count written");

    let out = Command::new(example("inspect"))
        .arg(&sample)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("format version 1, dtype F32"), "{stdout}");
    for layer in [
        "masking (Masking)",
        "bidirectional (Bidirectional)",
        "gru (GRU)",
        "dense (Dense)",
    ] {
        assert!(stdout.contains(layer), "{layer} missing from:\n{stdout}");
    }
    assert!(
        stdout.contains("bidirectional/forward_lstm/recurrent_kernel"),
        "{stdout}"
    );
    // The sample's tensors and parameters: the file says what `--write-sample` wrote.
    let r = result("inspect", &stdout);
    assert_eq!(r["dtype"], "F32");
    assert_eq!(nums(&r, "scalars"), [written], "{r:?}");
    assert_eq!(r["model_type"], "Sequential");

    // Every model type opens: a graph and an echo state network (no longer refused).
    for (kind, model_type, row) in [
        ("functional", "Functional", "encoder (GRU)"),
        ("esn", "EchoStateNetwork", "W_out"),
    ] {
        let file = dir.join(format!("{kind}.safetensors"));
        let out = Command::new(example("inspect"))
            .arg("--write-sample")
            .arg(&file)
            .arg(kind)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(example("inspect"))
            .arg(&file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{kind}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("model type {model_type}")),
            "{stdout}"
        );
        assert!(stdout.contains(row), "{row} missing from:\n{stdout}");
        assert_eq!(result("inspect", &stdout)["model_type"], model_type);
    }

    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"\x10\0\0\0\0\0\0\0{\"a\": 1}        ").unwrap();
    for path in [garbage.as_path(), dir.join("missing").as_path()] {
        let out = Command::new(example("inspect")).arg(path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn echo_state_beats_the_lstm_on_mackey_glass_in_the_quick_run() {
    let (stdout, out) = run("echo_state", &["--quick"]);
    // | Mackey-Glass | ESN(200) | 0.14 s | 8.2e-4 | 6.3e-3 |
    let row = |model: &str| -> (f64, f64) {
        let line = stdout
            .lines()
            .find(|l| l.starts_with("| Mackey-Glass |") && l.contains(model))
            .unwrap_or_else(|| panic!("no {model} row in\n{stdout}"));
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        (cells[4].parse().unwrap(), cells[5].parse().unwrap())
    };
    let (esn, lstm) = (row("ESN"), row("LSTM"));
    let r = result("echo_state", &stdout);
    for task in ["Mackey_Glass", "sine"] {
        let v = nums(&r, task); // ESN one-step, closed loop; LSTM one-step, closed loop
        assert!(
            v[0] < v[2] && v[1] < v[3],
            "{task}: ESN beats the LSTM: {v:?}"
        );
    }
    assert!(
        esn.0 < 0.01 && esn.0 < lstm.0,
        "one-step: ESN {esn:?}, LSTM {lstm:?}"
    );
    assert!(esn.1 < lstm.1, "closed loop: ESN {esn:?}, LSTM {lstm:?}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn build_time_prints_its_result_line() {
    let out = Command::new(example("build_time"))
        .args(["--units", "16", "--repeats", "1"])
        .output()
        .expect("run build_time");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let r = result("build_time", &stdout);
    assert_eq!(nums(&r, "units"), [16.0]);
    for cell in ["simple_rnn_s", "lstm_s", "gru_s"] {
        let s = nums(&r, cell)[0];
        assert!(s.is_finite() && s >= 0.0, "{cell}: {s}");
    }
}

#[test]
fn throughput_streams_one_step_per_call() {
    for cell in ["lstm", "gru", "rnn"] {
        let output = Command::new(example("throughput"))
            .args([
                "--cell", cell, "--batch", "1", "--input", "4", "--hidden", "6",
            ])
            .args([
                "--out", "1", "--mode", "stream", "--steps", "50", "--warmup", "5",
            ])
            .output()
            .expect("run throughput");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "throughput failed: {stdout}");
        let last = stdout.lines().last().expect("a result line");
        assert!(
            last.ends_with(&format!("cell={cell} B=1 T=1 F=4 H=6 mode=stream")),
            "{last}"
        );
    }
}

/// `long_term --quick` (issue #28 item 5): the notes' toy gradient vanishes for w_hh = 3 and
/// 0.5, a success line for every cell and lag, and the cliff: unclipped SGD jumps away
/// where clipping holds.
#[test]
fn long_term_prints_the_toy_the_success_lines_and_the_cliff() {
    let (stdout, out) = run("long_term", &["--quick"]);
    let grad = |w: &str, t: usize| -> f64 {
        let key = format!("toy w_hh={w} t={t} grad=");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("{key}"));
        line[key.len()..].parse().unwrap()
    };
    for w in ["3", "0.5"] {
        assert!(grad(w, 50).abs() < 1e-10 * grad(w, 2).abs(), "{w}");
    }
    for lag in [5, 20] {
        for cell in [
            "SimpleRNN(SGD)",
            "SimpleRNN",
            "LSTM",
            "GRU",
            "LeakyRNN(a=0.1)",
            "LeakyRNN(learned)",
            "SkipRNN(d=5)",
            "Clockwork(1,2,4,8)",
            "SimpleRNN(reservoir)",
            "SimpleRNN(flow-reg)",
        ] {
            for task in ["", "task=adding "] {
                let key = format!("success {task}lag={lag} cell={cell} rate=");
                let line = stdout
                    .lines()
                    .find(|l| l.starts_with(&key))
                    .unwrap_or_else(|| panic!("{key}\n{stdout}"));
                let rate: f64 = line[key.len()..].parse().unwrap();
                assert!((0.0..=1.0).contains(&rate), "{line}");
            }
        }
    }
    let cliff = |clip: &str| -> (bool, f64) {
        let key = format!("cliff clip={clip} ");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("{key}"));
        let field = |k: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(k))
                .unwrap()
                .to_string()
        };
        (
            field("diverged=") == "true",
            field("max_loss=").parse().unwrap(),
        )
    };
    let (free, clipped) = (cliff("none"), cliff("1"));
    assert!(!clipped.0 && clipped.1 < 10.0, "{stdout}");
    assert!(free.0 || free.1 > 100.0 * clipped.1, "{stdout}");
    assert_svgs(
        &out,
        &[
            "composition.svg",
            "gradient_flow.svg",
            "success.svg",
            "success_adding.svg",
            "cliff.svg",
        ],
    );
    let _ = std::fs::remove_dir_all(out);
}

/// `recursive_net --quick` (issue #28 item 6): the user-defined tree model's backward
/// agrees with central differences, and every depth, deeper than training included, is
/// reported for both models.
#[test]
fn recursive_net_checks_its_gradient_and_reports_every_depth() {
    let (stdout, out) = run("recursive_net", &["--quick"]);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("gradient check"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let err: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(err < 1e-6, "{line}");
    for depth in 1..=5 {
        let key = format!("depth {depth} tree_mae=");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("{key}\n{stdout}"));
        assert!(line.contains("lstm_mae="), "{line}");
    }
    assert_svgs(&out, &["mae_by_depth.svg"]);
    let _ = std::fs::remove_dir_all(out);
}

/// `convert` (issue #27 item 4): a Keras file to ONNX, PyTorch and rnnkit (exit 0, the
/// written files open), an rnnkit file and a PyTorch export back; a model PyTorch cannot
/// express exits 1 naming the layer and option; a wrong command line exits 2.
#[test]
fn convert_writes_every_target_and_exits_1_on_a_refusal() {
    use rnnkit::prelude::*;
    let dir = std::env::temp_dir().join(format!("rnnkit-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keras = |n: &str| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/keras_files")
            .join(format!("{n}.keras"))
    };
    let convert = |args: &[&std::ffi::OsStr]| {
        Command::new(example("convert"))
            .args(args)
            .output()
            .expect("run convert")
    };
    let lstm = keras("seq_lstm_stack");
    let (onnx, pt, st) = (
        dir.join("m.onnx"),
        dir.join("m_pt"),
        dir.join("m.safetensors"),
    );
    for (to, out) in [("onnx", &onnx), ("pytorch", &pt), ("rnnkit", &st)] {
        let o = convert(&[
            lstm.as_os_str(),
            "--to".as_ref(),
            to.as_ref(),
            out.as_os_str(),
        ]);
        assert!(
            o.status.success(),
            "{to}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert!(std::fs::read(&onnx).unwrap().len() > 1000);
    let from_keras = rnnkit::io::AnyModel::<f32>::load(&lstm).unwrap();
    let x = ndarray::Array3::from_shape_fn((2, 6, 3), |(i, t, f)| ((i + t + f) as f32 * 0.2).sin())
        .into_dyn();
    let want = from_keras.predict(Inputs::new(&x), 8).unwrap();
    for back in [&pt, &st] {
        let m = rnnkit::io::AnyModel::<f32>::load(back).unwrap();
        assert_eq!(
            m.predict(Inputs::new(&x), 8).unwrap(),
            want,
            "{}",
            back.display()
        );
    }
    // PyTorch export directory → rnnkit file.
    let again = dir.join("again.safetensors");
    let o = convert(&[
        pt.as_os_str(),
        "--to".as_ref(),
        "rnnkit".as_ref(),
        again.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // GRU with reset_after=False: PyTorch has no such layer.
    let cho = keras("seq_embedding_gru_cho");
    let o = convert(&[
        cho.as_os_str(),
        "--to".as_ref(),
        "pytorch".as_ref(),
        dir.join("no").as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gru") && err.contains("reset_after=false"),
        "{err}"
    );
    assert_eq!(convert(&["only-one-arg".as_ref()]).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
