//! `.keras` archives from anywhere: truncated, bit-flipped, with members swapped, a
//! Keras file never panics the loader; it loads or gives `Error::File`.

use rnnkit::io::AnyModel;
use rnnkit::prelude::*;

fn sample() -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keras_files/fun_encoder_decoder.keras");
    std::fs::read(p).expect("the keras_file fixture")
}

#[test]
fn mutated_keras_archives_load_or_fail_with_a_typed_error() {
    let base = sample();
    assert!(AnyModel::<f32>::from_bytes(&base).is_ok());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut errors) = (0, 0);
    for round in 0..1500 {
        let mut b = base.clone();
        match round % 3 {
            0 => {
                let n = (next() % b.len() as u64) as usize;
                b.truncate(n);
            }
            1 => {
                for _ in 0..1 + next() % 8 {
                    let i = (next() % b.len() as u64) as usize;
                    b[i] ^= 1 << (next() % 8);
                }
            }
            _ => {
                let i = (next() % b.len() as u64) as usize;
                let v = (next() % 256) as u8;
                b[i..].iter_mut().take(4).for_each(|x| *x = v);
            }
        }
        match AnyModel::<f32>::from_bytes(&b) {
            Ok(_) => ok += 1,
            Err(rnnkit::Error::File { .. }) => errors += 1,
            Err(e) => panic!("round {round}: not a file error: {e}"),
        }
    }
    assert!(errors > 500, "{ok} loaded, {errors} refused");
}
