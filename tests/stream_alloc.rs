//! Streaming one step at a time allocates nothing after the first step: a counting
//! allocator watches 50 steps of every cell type through a model. (With AVX2 and FMA the
//! recurrent products use rnnkit's packed kernel; elsewhere, and for GRU with
//! `reset_after = false`, the matrix-multiply backend allocates its packing buffers inside
//! each product, which is counted and allowed.)

use ndarray::Array2;
use rnnkit::prelude::*;
use rnnkit::LayerConfig;

mod counting;

use counting::allocations;

fn packed() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
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

#[test]
fn no_allocation_per_step_after_the_first() {
    rnnkit::set_num_threads(1);
    for batch in [1, 8] {
        let cells: Vec<(&str, Box<dyn LayerConfig<f32>>, bool)> = vec![
            ("SimpleRnn", Box::new(SimpleRnnConfig::new(6)), true),
            ("Lstm", Box::new(LstmConfig::new(6)), true),
            ("Gru", Box::new(GruConfig::new(6)), true),
            (
                "Gru reset_before",
                Box::new(GruConfig::new(6).reset_after(false)),
                false,
            ),
        ];
        for (name, cell, uses_packed) in cells {
            let n = steps_allocate(cell, batch);
            if packed() && uses_packed {
                assert_eq!(n, 0, "{name}, batch {batch}: {n} allocations in 50 steps");
            } else {
                // Only the backend's packing buffers: at most a few per product.
                assert!(
                    n <= 50 * 4,
                    "{name}, batch {batch}: {n} allocations in 50 steps"
                );
            }
        }
        let n = steps_allocate::<f64>(Box::new(LstmConfig::new(6)), batch);
        if packed() {
            assert_eq!(n, 0, "Lstm f64, batch {batch}: {n} allocations in 50 steps");
        }
    }
}
