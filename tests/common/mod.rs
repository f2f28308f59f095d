//! Loading the Keras fixtures (see tests/fixtures/README.md) and building models from them.
#![allow(dead_code)]

use ndarray::{ArrayD, IxDyn};
use rnnkit::Float;
use rnnkit::prelude::*;
use serde_json::Value;
use std::path::PathBuf;

/// The fixture directory: `$RNNKIT_FIXTURES` when set, `tests/fixtures` otherwise.
///
/// # Panics
/// When `$RNNKIT_FIXTURES` names no directory (a mistyped path must not pass every
/// runner with no case).
pub fn fixture_dir() -> PathBuf {
    match std::env::var_os("RNNKIT_FIXTURES") {
        Some(d) => {
            let d = PathBuf::from(d);
            assert!(
                d.is_dir(),
                "RNNKIT_FIXTURES={} names no directory",
                d.display()
            );
            d
        }
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
    }
}

/// Whether the runners read the repository's own `tests/fixtures` (then its manifest is
/// checked) rather than a directory given in `$RNNKIT_FIXTURES`.
pub fn default_fixtures() -> bool {
    std::env::var_os("RNNKIT_FIXTURES").is_none()
}

/// Every JSON file below `dir` (subfolders included) as (path, JSON object with a string
/// `kind`), sorted by path.
///
/// # Panics
/// On a JSON file that cannot be read, does not parse, or is not an object with a string
/// `kind`: a damaged or truncated case fails the suite rather than vanishing from it.
pub fn all_fixtures(dir: &std::path::Path) -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    collect_json(dir, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("fixture {} unreadable: {e}", p.display()));
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("fixture {} does not parse: {e}", p.display()));
            assert!(
                v["kind"].is_string(),
                "fixture {} has no string \"kind\"",
                p.display()
            );
            (p, v)
        })
        .collect()
}

/// A case's name: its `case` field, else its file name without `.json`.
fn case_name(p: &std::path::Path, v: &Value) -> String {
    v["case"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| p.file_stem().unwrap().to_string_lossy().into_owned())
}

/// The case names of `kind` in `tests/fixtures/MANIFEST`.
fn manifest(kind: &str) -> Vec<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/MANIFEST");
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{} unreadable: {e}", p.display()));
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, n) = l.split_once(' ')?;
            (k == kind).then(|| n.trim().to_string())
        })
        .collect();
    names.sort();
    names
}

/// Every fixture of `kind` below the fixture directory (subfolders included), sorted by
/// path, as (case name, JSON).
///
/// # Panics
/// On any unreadable, unparsable or kind-less JSON file below the directory; on a
/// `$RNNKIT_FIXTURES` that names no directory; and, when reading the repository's own
/// `tests/fixtures`, unless the cases of `kind` are exactly those its `MANIFEST` lists.
pub fn fixtures(kind: &str) -> Vec<(String, Value)> {
    let dir = fixture_dir();
    let cases: Vec<(String, Value)> = all_fixtures(&dir)
        .into_iter()
        .filter(|(_, v)| v["kind"] == kind)
        .map(|(p, v)| (case_name(&p, &v), v))
        .collect();
    if default_fixtures() {
        let mut found: Vec<String> = cases.iter().map(|(n, _)| n.clone()).collect();
        found.sort();
        let listed = manifest(kind);
        let missing: Vec<&String> = listed.iter().filter(|n| !found.contains(n)).collect();
        let extra: Vec<&String> = found.iter().filter(|n| !listed.contains(n)).collect();
        assert!(
            missing.is_empty() && extra.is_empty() && !listed.is_empty(),
            "`{kind}` fixtures in tests/fixtures differ from its MANIFEST: missing {missing:?}, \
             not listed {extra:?} ({} listed)",
            listed.len()
        );
    }
    cases
}

/// The one fixture named `name` of `kind` (see [`fixtures`]).
///
/// # Panics
/// As [`fixtures`], and when no case of that name exists.
pub fn fixture(kind: &str, name: &str) -> Value {
    fixtures(kind)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no `{kind}` fixture named {name}"))
        .1
}

/// Prints a line to the process's standard output directly, so that it shows in
/// `cargo test`'s output although the test harness captures `println!`.
pub fn report(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn collect_json(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if p.is_dir() {
            collect_json(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// Runs `check` on every fixture of `kind` and prints the closing line
/// `<label>: N passed, M failed` (`label` is the kind, or the kind and a variant). A
/// directory given in `$RNNKIT_FIXTURES` without such cases says so and passes; the
/// repository's own `tests/fixtures` must hold exactly the cases of its `MANIFEST` (a
/// lost or damaged fixture there is a failure, not a silent pass). Any failed case fails
/// the test.
pub fn run_fixtures(kind: &str, label: &str, check: impl FnMut(&Value) -> Result<(), String>) {
    run_cases(label, fixtures(kind), check)
}

/// [`run_fixtures`] over a chosen list of cases (a filtered subset of one kind).
pub fn run_cases(
    label: &str,
    cases: Vec<(String, Value)>,
    mut check: impl FnMut(&Value) -> Result<(), String>,
) {
    let kind = label.split(' ').next().unwrap_or(label);
    assert!(
        !(cases.is_empty() && default_fixtures()),
        "{label}: no case in tests/fixtures"
    );
    if cases.is_empty() {
        report(&format!(
            "{label}: no `{kind}` fixtures in {}\n{label}: 0 passed, 0 failed",
            fixture_dir().display()
        ));
        return;
    }
    let mut failed = Vec::new();
    for (name, case) in &cases {
        if let Err(e) = check(case) {
            failed.push(format!("{name}: {e}"));
        }
    }
    for f in &failed {
        eprintln!("FAILED [{label}] {f}");
    }
    report(&format!(
        "{label}: {} passed, {} failed",
        cases.len() - failed.len(),
        failed.len()
    ));
    assert!(
        failed.is_empty(),
        "{} of {} `{kind}` fixtures failed ({label})",
        failed.len(),
        cases.len()
    );
}

/// The repository's own fixture file `tests/fixtures/<name>.json`.
///
/// # Panics
/// When the file is missing, unreadable or does not parse.
pub fn load(name: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A fixture tensor `{"shape", "data"}` as an array.
pub fn tensor<F: Float>(t: &Value) -> ArrayD<F> {
    let shape: Vec<usize> = t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<F> = t["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| F::c(d.as_f64().unwrap()))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn b(c: &Value, k: &str, default: bool) -> bool {
    c[k].as_bool().unwrap_or(default)
}

fn act(c: &Value, k: &str, default: &str) -> Activation {
    c[k].as_str().unwrap_or(default).parse().unwrap()
}

fn units(c: &Value) -> usize {
    c["units"].as_u64().unwrap() as usize
}

fn simple_rnn(c: &Value) -> SimpleRnnConfig {
    SimpleRnnConfig::new(units(c))
        .activation(act(c, "activation", "tanh"))
        .use_bias(b(c, "use_bias", true))
        .return_sequences(b(c, "return_sequences", false))
        .go_backwards(b(c, "go_backwards", false))
}

/// A LeakyRNN as `tests/fixtures/leaky/README.md` describes it: SimpleRNN's keys, `leak` (a
/// number or one per unit) and `train_leak`.
fn leaky_rnn(c: &Value) -> LeakyRnnConfig {
    let mut l = LeakyRnnConfig::new(units(c))
        .activation(act(c, "activation", "tanh"))
        .use_bias(b(c, "use_bias", true))
        .return_sequences(b(c, "return_sequences", false))
        .go_backwards(b(c, "go_backwards", false))
        .train_leak(b(c, "train_leak", false));
    match &c["leak"] {
        Value::Number(n) => l = l.leak(n.as_f64().unwrap()),
        Value::Array(v) => {
            let a: Vec<f64> = v.iter().map(|x| x.as_f64().unwrap()).collect();
            l = l.leak_per_unit(&a);
        }
        Value::Null => {}
        other => panic!("leak: {other}"),
    }
    l
}

fn lstm(c: &Value) -> LstmConfig {
    LstmConfig::new(units(c))
        .activation(act(c, "activation", "tanh"))
        .recurrent_activation(act(c, "recurrent_activation", "sigmoid"))
        .use_bias(b(c, "use_bias", true))
        .return_sequences(b(c, "return_sequences", false))
        .go_backwards(b(c, "go_backwards", false))
}

fn gru(c: &Value) -> GruConfig {
    GruConfig::new(units(c))
        .activation(act(c, "activation", "tanh"))
        .recurrent_activation(act(c, "recurrent_activation", "sigmoid"))
        .use_bias(b(c, "use_bias", true))
        .reset_after(b(c, "reset_after", true))
        .return_sequences(b(c, "return_sequences", false))
        .go_backwards(b(c, "go_backwards", false))
}

/// The configuration of one LayerSpec.
pub fn layer_config<F: Float>(spec: &Value) -> Box<dyn LayerConfig<F>> {
    let c = &spec["config"];
    match spec["layer"].as_str().unwrap() {
        "SimpleRNN" => Box::new(simple_rnn(c)),
        "LSTM" => Box::new(lstm(c)),
        "GRU" => Box::new(gru(c)),
        "LeakyRNN" => Box::new(leaky_rnn(c)),
        "Dense" => Box::new(
            DenseConfig::new(units(c))
                .activation(act(c, "activation", "linear"))
                .use_bias(b(c, "use_bias", true)),
        ),
        "Masking" => Box::new(MaskingConfig::new(c["mask_value"].as_f64().unwrap_or(0.0))),
        "Bidirectional" => {
            let mode: MergeMode = c["merge_mode"]
                .as_str()
                .unwrap_or("concat")
                .parse()
                .unwrap();
            let inner = &c["layer"];
            let ic = &inner["config"];
            match inner["layer"].as_str().unwrap() {
                "SimpleRNN" => Box::new(BidirectionalConfig::new(simple_rnn(ic)).merge_mode(mode)),
                "LSTM" => Box::new(BidirectionalConfig::new(lstm(ic)).merge_mode(mode)),
                "GRU" => Box::new(BidirectionalConfig::new(gru(ic)).merge_mode(mode)),
                "LeakyRNN" => Box::new(BidirectionalConfig::new(leaky_rnn(ic)).merge_mode(mode)),
                other => panic!("unsupported Bidirectional layer {other}"),
            }
        }
        other => panic!("unsupported layer {other}"),
    }
}

/// One layer's weights (or gradients) in Keras `get_weights()` order.
pub fn weight_list<F: Float>(w: &Value) -> Vec<ArrayD<F>> {
    let obj = w.as_object().unwrap();
    if obj.contains_key("forward") {
        let mut v = weight_list(&w["forward"]);
        v.extend(weight_list(&w["backward"]));
        return v;
    }
    [
        "embeddings",
        "kernel",
        "recurrent_kernel",
        "bias",
        "leak_logit",
        "scale",
        "concat_score_weight",
    ]
    .iter()
    .filter_map(|k| obj.get(*k).map(tensor))
    .collect()
}

/// Builds the fixture's model with its weights, for inputs shaped like `input_shape`
/// (batch first).
pub fn build_model<F: Float>(specs: &Value, input_shape: &[usize]) -> Sequential<F> {
    let mut m = Sequential::<F>::new(&input_shape[1..]);
    for spec in specs.as_array().unwrap() {
        m.add(layer_config::<F>(spec).as_ref()).unwrap();
    }
    let weights: Vec<ArrayD<F>> = specs
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| weight_list::<F>(&s["weights"]))
        .collect();
    m.set_weights(&weights).unwrap();
    m
}

/// Elementwise `|a − e| ≤ rtol·|e| + atol`; returns the first violation.
pub fn close<F: Float>(
    actual: &ArrayD<F>,
    expected: &ArrayD<F>,
    rtol: f64,
    atol: f64,
) -> Result<(), String> {
    if actual.shape() != expected.shape() {
        return Err(format!(
            "shape {:?} != expected {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    let mut worst: Option<(usize, f64, f64)> = None;
    for (i, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
        let (a, e) = (a.to_f64().unwrap(), e.to_f64().unwrap());
        let err = (a - e).abs();
        // written so that NaN fails
        let within = err <= rtol * e.abs() + atol;
        if !within && worst.is_none_or(|w| err > (w.1 - w.2).abs()) {
            worst = Some((i, a, e));
        }
    }
    match worst {
        None => Ok(()),
        Some((i, a, e)) => Err(format!(
            "element {i}: got {a:e}, expected {e:e} (diff {:e})",
            (a - e).abs()
        )),
    }
}

/// `(rtol, atol)` of the fixture README for f64, and of the issue for f32.
pub fn tolerance<F: Float>() -> (f64, f64) {
    if std::mem::size_of::<F>() == 8 {
        (1e-9, 1e-12)
    } else {
        (1e-4, 1e-5)
    }
}

/// (header JSON, data section) of a safetensors file.
pub fn split_file(bytes: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

/// A safetensors file from a header (padded to 8 bytes, as the format asks) and data.
pub fn join_file(header: &Value, data: &[u8]) -> Vec<u8> {
    let mut h = serde_json::to_vec(header).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// The fixture's model with its weights; recurrent configs carry `"stateful": true`.
pub fn stateful_model<F: Float>(case: &Value) -> Result<Sequential<F>, String> {
    let shape = case["batch_shape"].as_array().unwrap();
    let steps = shape[1].as_u64().map(|t| t as usize);
    let features = shape[2].as_u64().unwrap() as usize;
    let mut m = Sequential::<F>::with_input_shape(vec![steps, Some(features)]);
    let mut weights = Vec::new();
    for spec in case["model"].as_array().unwrap() {
        let layer: rnnkit::layers::LayerSpec = serde_json::from_value(
            serde_json::json!({"layer": spec["layer"], "config": spec["config"]}),
        )
        .map_err(|e| format!("config: {e}"))?;
        m.add(&layer).map_err(|e| format!("add: {e}"))?;
        weights.extend(weight_list::<F>(&spec["weights"]));
    }
    m.set_weights(&weights)
        .map_err(|e| format!("weights: {e}"))?;
    Ok(m)
}

/// Runs `tools/<script>` on `dir` with the Python `$<var>` names (one with onnxruntime or
/// torch), reporting its non-`ok` lines prefixed by `label`; panics when it fails. `false`
/// (after saying so) when the variable is unset: the Python half is skipped.
pub fn python_check(var: &str, script: &str, dir: &std::path::Path, label: &str) -> bool {
    let Ok(python) = std::env::var(var) else {
        report(&format!(
            "{label}: skipped (set {var} to a python that has what {script} imports)"
        ));
        return false;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tools")
        .join(script);
    let run = std::process::Command::new(&python)
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    let stdout = String::from_utf8_lossy(&run.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with("ok ")) {
        report(&format!("{label}: {line}"));
    }
    assert!(
        run.status.success(),
        "{label}:\n{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    true
}
