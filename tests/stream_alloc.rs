//! Streaming one step at a time allocates nothing after the first step: a counting
//! allocator watches 50 steps of every cell type through a model. (With AVX2 and FMA the
//! recurrent products use rnnkit's packed kernel; elsewhere, and for GRU with
//! `reset_after = false`, the matrix-multiply backend allocates one packing buffer inside
//! each recurrent product: exactly one per step, two for GRU reset_before, counted. The
//! second test runs the first again with `RNNKIT_NO_AVX2=1`, so an AVX2 machine checks the
//! path of CPUs without it too.)

use ndarray::Array2;
use rnnkit::LayerConfig;
use rnnkit::prelude::*;

mod counting;

use counting::thread_allocations as allocations;

fn packed() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::env::var_os("RNNKIT_NO_AVX2").is_none();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn steps_allocate<F: rnnkit::Float>(cell: Box<dyn LayerConfig<F>>, batch: usize) -> usize {
    let mut model = Sequential::<F>::with_input_shape(vec![None, Some(3)]);
    model.add(&MaskingConfig::new(0.0)).unwrap();
    model.add(cell.as_ref()).unwrap();
    model
        .add(&DenseConfig::new(4).activation(Activation::Softmax))
        .unwrap();
    let mut state = model.stream_state(batch);
    let x = Array2::from_shape_fn((batch, 3), |(b, f)| F::c(0.1 * (b + f) as f64 + 0.3));
    model.step(x.view(), &mut state).unwrap();
    let before = allocations();
    for _ in 0..50 {
        model.step(x.view(), &mut state).unwrap();
    }
    allocations() - before
}

/// A cell to stream: name, configuration, recurrent products per step, and whether the
/// packed kernel serves them.
type Cell = (&'static str, Box<dyn LayerConfig<f32>>, usize, bool);

/// The thread count is process-wide: the two tests do not run side by side.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn no_allocation_per_step_after_the_first() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    rnnkit::set_num_threads(1);
    for batch in [1, 8] {
        let cells: Vec<Cell> = vec![
            ("SimpleRnn", Box::new(SimpleRnnConfig::new(6)), 1, true),
            ("Lstm", Box::new(LstmConfig::new(6)), 1, true),
            ("Gru", Box::new(GruConfig::new(6)), 1, true),
            (
                "Gru reset_before",
                Box::new(GruConfig::new(6).reset_after(false)),
                2,
                false,
            ),
        ];
        // (name, config, recurrent products per step, whether the packed kernel serves them)
        for (name, cell, products, uses_packed) in cells {
            let n = steps_allocate(cell, batch);
            let want = if packed() && uses_packed {
                0
            } else {
                50 * products
            };
            assert_eq!(
                n, want,
                "{name}, batch {batch}: {n} allocations in 50 steps"
            );
        }
        let n = steps_allocate::<f64>(Box::new(LstmConfig::new(6)), batch);
        let want = if packed() { 0 } else { 50 };
        assert_eq!(
            n, want,
            "Lstm f64, batch {batch}: {n} allocations in 50 steps"
        );
    }
}

#[test]
fn the_portable_path_is_counted_too() {
    if std::env::var_os("RNNKIT_NO_AVX2").is_some() {
        return; // this is the child below: the test above checks the portable path
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .env("RNNKIT_NO_AVX2", "1")
        .args(["--exact", "no_allocation_per_step_after_the_first"])
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "without AVX2:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
