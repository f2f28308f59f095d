//! rnnkit's time loop does not allocate. A counting allocator compares a forward + backward
//! pass over 4 steps with one over 64, each after a warm-up pass at the same shape
//! (sequence-sized buffers are reused from call to call). The only allocations that grow
//! with the sequence are the packing buffers the matrix-multiply backend (matrixmultiply)
//! takes inside every product it computes: exactly one per per-step product, which the
//! test counts; any allocation of rnnkit's own in the loop would break the equality.

use ndarray::{ArrayD, IxDyn};
use rnnkit::LayerConfig;
use rnnkit::prelude::*;

mod counting;

// This thread's allocations: with one rnnkit thread every pass runs here, while the test
// harness's own threads allocate now and then (counting those made the test flaky: a
// count 4 off in about one run of ten).
use counting::thread_allocations as allocations;

/// Allocations made by one forward + backward pass over `steps` steps, after a warm-up
/// pass at the same shape.
fn allocations_per_pass(
    config: &dyn LayerConfig<f32>,
    batch: usize,
    steps: usize,
    masked: bool,
) -> usize {
    let mut model = Sequential::<f32>::new(&[steps, 3]);
    model.add(config).unwrap();
    let x = ArrayD::from_shape_fn(IxDyn(&[batch, steps, 3]), |i| (i[1] as f32 * 0.1).sin());
    let lengths: Vec<usize> = [steps, steps - 1, 2, 1, steps, 3, 2, 1]
        .iter()
        .cycle()
        .take(batch)
        .copied()
        .collect();
    let mask = masked.then(|| rnnkit::mask_from_lengths(&lengths, steps).unwrap());
    let mut pass = || {
        let y = model
            .forward(Inputs::new(&x).mask(mask.as_ref()).mode(Mode::Train))
            .map(|mut o| o.remove(0).output)
            .unwrap();
        model
            .backward(&[OutputGrads::new(&y)])
            .map(|mut d| d.remove(0))
            .unwrap();
    };
    pass();
    let before = allocations();
    pass();
    allocations() - before
}

#[test]
fn allocations_do_not_grow_with_sequence_length() {
    rnnkit::set_num_threads(1); // the only test in this binary: no interference
    // (layer, matrix products per step: forward + backward)
    let configs: Vec<(&str, Box<dyn LayerConfig<f32>>, usize)> = vec![
        (
            "SimpleRnn",
            Box::new(SimpleRnnConfig::new(5).return_sequences(true)),
            2,
        ),
        ("Lstm", Box::new(LstmConfig::new(5)), 2),
        ("Gru", Box::new(GruConfig::new(5).return_sequences(true)), 2),
        (
            "Gru reset_before",
            Box::new(GruConfig::new(5).reset_after(false)),
            4,
        ),
    ];
    // With AVX2 + FMA, f32 products against the recurrent kernel use rnnkit's packed kernel
    // (packed once per pass): then nothing at all is allocated per step.
    let packed = cfg!(target_arch = "x86_64") && avx2_fma();
    for (name, config, products) in &configs {
        for (batch, masked) in [(8, false), (8, true), (32, false), (32, true)] {
            let products = if packed && *name != "Gru reset_before" {
                0
            } else {
                *products
            };
            let short = allocations_per_pass(&**config, batch, 4, masked);
            let long = allocations_per_pass(&**config, batch, 64, masked);
            assert_eq!(
                long - short,
                products * 60,
                "{name} (batch {batch}, masked: {masked}): {short} allocations for 4 steps, \
                 {long} for 64; only the backend's {products} packing buffers per step may grow"
            );
            // A fixed budget per forward + backward of the model (0.2's one-call API returns
            // one Vec of outputs and one of input gradients, and each layer call a Vec of inputs:
            // three to four more than 0.1). It may not grow with the sequence (above).
            let per_call = short - products * 4;
            assert!(
                per_call < 34,
                "{name}: {per_call} allocations per pass besides packing"
            );
        }
    }
}

/// Whether rnnkit runs its AVX2 kernels here (`RNNKIT_NO_AVX2=1` turns them off).
fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::env::var_os("RNNKIT_NO_AVX2").is_none();
    #[cfg(not(target_arch = "x86_64"))]
    false
}
