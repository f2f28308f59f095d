//! Keras's data one-liners against values worked out from Keras's documented semantics.

use ndarray::{Array2, Axis, array, s};
use rnnkit::Error;
use rnnkit::utils::{PadSequences, Side, pad_sequences, timeseries_windows, to_categorical};

#[test]
fn pad_sequences_pads_and_truncates_at_either_end() {
    let seqs = vec![vec![1, 2, 3, 4], vec![5], vec![]];
    // Keras defaults: padding="pre", truncating="pre", maxlen = longest.
    assert_eq!(
        pad_sequences(&seqs, 0).unwrap(),
        array![[1, 2, 3, 4], [0, 0, 0, 5], [0, 0, 0, 0]]
    );
    let p = |padding, truncating| {
        PadSequences::new()
            .maxlen(3)
            .padding(padding)
            .truncating(truncating)
            .apply(&seqs, -1)
            .unwrap()
    };
    assert_eq!(
        p(Side::Pre, Side::Pre),
        array![[2, 3, 4], [-1, -1, 5], [-1, -1, -1]]
    );
    assert_eq!(
        p(Side::Post, Side::Post),
        array![[1, 2, 3], [5, -1, -1], [-1, -1, -1]]
    );
    assert_eq!(
        p(Side::Pre, Side::Post),
        array![[1, 2, 3], [-1, -1, 5], [-1, -1, -1]]
    );
    let (_, mask) = PadSequences::new()
        .maxlen(3)
        .apply_with_mask(&seqs, 0)
        .unwrap();
    // A padded array past the size limit is an error, not an abort.
    assert!(PadSequences::new().maxlen(1 << 62).apply(&seqs, 0).is_err());
    assert!(rnnkit::mask_from_lengths(&[1, 2], 1 << 62).is_err());
    assert_eq!(
        mask,
        array![
            [true, true, true],
            [false, false, true],
            [false, false, false]
        ]
    );
}

#[test]
fn to_categorical_one_hot_and_range_errors() {
    let y = to_categorical::<f64>(&[1, 0, 3], Some(4)).unwrap();
    assert_eq!(y.sum_axis(Axis(1)), array![1.0, 1.0, 1.0]);
    assert_eq!(y[[2, 3]], 1.0);
    assert_eq!(to_categorical::<f32>(&[2], None).unwrap().shape(), &[1, 3]);
    assert!(matches!(
        to_categorical::<f32>(&[0, 5], Some(3)),
        Err(Error::Data(_))
    ));
}

#[test]
fn timeseries_windows_follow_keras_start_positions() {
    // Keras: num_seqs = T − (L − 1)·rate, limited by len(targets); starts 0, stride, ...
    let data = Array2::from_shape_fn((10, 2), |(t, f)| (10 * t + f) as f32).into_dyn();
    let (x, y) = timeseries_windows(&data, None, 3, 2, 2).unwrap();
    // span (3 − 1)·2 = 4: starts 0, 2, 4 (< 10 − 4 = 6)
    assert_eq!(x.shape(), &[3, 3, 2]);
    assert_eq!(
        x.slice(s![1, .., 0]).to_vec(),
        vec![20.0, 40.0, 60.0],
        "steps 2, 4, 6"
    );
    assert!(y.is_none());
    let targets = data.slice(s![5.., ..]).to_owned().into_dyn(); // 5 targets
    let (x, y) = timeseries_windows(&data, Some(&targets), 3, 1, 1).unwrap();
    assert_eq!(x.shape()[0], 5, "limited by the targets");
    assert_eq!(
        y.unwrap().slice(s![.., 0]).to_vec(),
        vec![50.0, 60.0, 70.0, 80.0, 90.0]
    );
    assert!(matches!(
        timeseries_windows(&data, None, 11, 1, 1),
        Err(Error::Data(_))
    ));
    assert!(matches!(
        timeseries_windows(&data, None, 3, 0, 1),
        Err(Error::Config {
            field: "sequence_stride",
            ..
        })
    ));
}
