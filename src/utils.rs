//! Keras's data one-liners: [`pad_sequences`], [`to_categorical`] and
//! [`timeseries_windows`] (Keras's `timeseries_dataset_from_array`, without the batching).

use crate::error::{Error, Result};
use crate::float::Float;
use crate::layers::Mask;
use ndarray::{Array2, ArrayD, Axis, IxDyn, Slice};

/// Which end of a sequence padding is added to, or truncation removes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Side {
    /// The start (Keras's default, `"pre"`).
    #[default]
    Pre,
    /// The end (`"post"`).
    Post,
}

/// Keras's `pad_sequences` options: `maxlen` (default: the longest sequence), `padding` and
/// `truncating` (default `Pre`, as Keras).
///
/// ```
/// use rnnkit::utils::{PadSequences, Side};
/// let seqs = vec![vec![1, 2, 3], vec![4], vec![5, 6, 7, 8, 9]];
/// let (padded, mask) = PadSequences::new()
///     .maxlen(4)
///     .padding(Side::Post)
///     .apply_with_mask(&seqs, 0)?;
/// assert_eq!(padded, rnnkit::ndarray::array![[1, 2, 3, 0], [4, 0, 0, 0], [6, 7, 8, 9]]);
/// assert_eq!(mask.row(1).to_vec(), [true, false, false, false]);
/// # Ok::<(), rnnkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PadSequences {
    /// Length of every output row (`None`: the longest input).
    pub maxlen: Option<usize>,
    /// Where padding goes.
    pub padding: Side,
    /// Which end of a longer sequence is cut.
    pub truncating: Side,
}

impl PadSequences {
    /// Keras's defaults: pad and truncate at the start, to the longest sequence.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `maxlen`.
    pub fn maxlen(mut self, n: usize) -> Self {
        self.maxlen = Some(n);
        self
    }
    /// Sets `padding`.
    pub fn padding(mut self, side: Side) -> Self {
        self.padding = side;
        self
    }
    /// Sets `truncating`.
    pub fn truncating(mut self, side: Side) -> Self {
        self.truncating = side;
        self
    }

    /// The sequences as one `[n, maxlen]` array, padded with `value`.
    ///
    /// # Errors
    /// [`Error::Data`] for an array of more than
    /// [`MAX_WEIGHT_LEN`](crate::layers::MAX_WEIGHT_LEN) entries.
    pub fn apply<T: Clone, S: AsRef<[T]>>(&self, sequences: &[S], value: T) -> Result<Array2<T>> {
        Ok(self.apply_with_mask(sequences, value)?.0)
    }

    /// [`PadSequences::apply`] and the `[n, maxlen]` mask of the real entries (for
    /// `Data::mask`, `Inputs::mask`).
    ///
    /// # Errors
    /// As [`PadSequences::apply`].
    pub fn apply_with_mask<T: Clone, S: AsRef<[T]>>(
        &self,
        sequences: &[S],
        value: T,
    ) -> Result<(Array2<T>, Mask)> {
        let len = self.maxlen.unwrap_or_else(|| {
            sequences
                .iter()
                .map(|s| s.as_ref().len())
                .max()
                .unwrap_or(0)
        });
        crate::layers::check_output_size("pad_sequences", &[sequences.len(), len])?;
        let mut out = Array2::from_elem((sequences.len(), len), value);
        let mut mask = Mask::from_elem((sequences.len(), len), false);
        for (i, s) in sequences.iter().enumerate() {
            let s = s.as_ref();
            let kept = match self.truncating {
                Side::Pre => &s[s.len().saturating_sub(len)..],
                Side::Post => &s[..s.len().min(len)],
            };
            let start = match self.padding {
                Side::Pre => len - kept.len(),
                Side::Post => 0,
            };
            for (k, v) in kept.iter().enumerate() {
                out[[i, start + k]] = v.clone();
                mask[[i, start + k]] = true;
            }
        }
        Ok((out, mask))
    }
}

/// Keras's `pad_sequences` with its defaults (pad and truncate at the start, to the
/// longest sequence): `pad_sequences(&seqs, 0)`.
///
/// ```
/// let x = rnnkit::utils::pad_sequences(&[vec![1.0f32, 2.0], vec![3.0]], 0.0)?;
/// assert_eq!(x, rnnkit::ndarray::array![[1.0, 2.0], [0.0, 3.0]]);
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// As [`PadSequences::apply`].
pub fn pad_sequences<T: Clone, S: AsRef<[T]>>(sequences: &[S], value: T) -> Result<Array2<T>> {
    PadSequences::new().apply(sequences, value)
}

/// Keras's `to_categorical`: class indices to one-hot rows `[n, num_classes]`
/// (`num_classes` `None`: the largest label + 1).
///
/// ```
/// let y = rnnkit::utils::to_categorical::<f32>(&[0, 2, 1], None)?;
/// assert_eq!(y, rnnkit::ndarray::array![[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]);
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// [`Error::Data`] for a label ≥ `num_classes`, naming it, or a one-hot array larger
/// than [`MAX_WEIGHT_LEN`](crate::layers::MAX_WEIGHT_LEN) scalars.
pub fn to_categorical<F: Float>(labels: &[usize], num_classes: Option<usize>) -> Result<Array2<F>> {
    let k = match num_classes {
        Some(k) => k,
        None => match labels.iter().max() {
            None => 0,
            Some(&m) => m.checked_add(1).ok_or_else(|| {
                Error::Data(format!("label {m} leaves no room for a class count"))
            })?,
        },
    };
    if let Some((i, l)) = labels.iter().enumerate().find(|&(_, &l)| l >= k) {
        return Err(Error::Data(format!(
            "label {l} at index {i} is out of range: expected 0..{k}"
        )));
    }
    if labels
        .len()
        .checked_mul(k)
        .is_none_or(|n| n > crate::layers::MAX_WEIGHT_LEN)
    {
        return Err(Error::Data(format!(
            "{} labels of {k} classes make a one-hot array beyond the {} scalars one array may \
             hold",
            labels.len(),
            crate::layers::MAX_WEIGHT_LEN
        )));
    }
    let mut y = Array2::zeros((labels.len(), k));
    for (i, &l) in labels.iter().enumerate() {
        y[[i, l]] = F::one();
    }
    Ok(y)
}

/// Keras's `timeseries_dataset_from_array` without the batching: windows of
/// `sequence_length` steps (taken every `sampling_rate` steps) of `data` `[T, ...]`,
/// starting every `sequence_stride` steps, as `[n, sequence_length, ...]`; with `targets`,
/// the target of each window is `targets[start]` (offset the targets yourself, as in Keras:
/// to predict the next value, pass `data[L..]`).
///
/// ```
/// use rnnkit::ndarray::{Array2, Axis, s};
/// let series = Array2::from_shape_fn((10, 1), |(t, _)| t as f64).into_dyn();
/// let targets = series.slice(s![3.., ..]).to_owned().into_dyn(); // the value after each window
/// let (x, y) = rnnkit::utils::timeseries_windows(&series, Some(&targets), 3, 1, 1)?;
/// assert_eq!(x.shape(), &[7, 3, 1]);
/// assert_eq!(x.index_axis(Axis(0), 2).iter().copied().collect::<Vec<_>>(), [2.0, 3.0, 4.0]);
/// assert_eq!(y.unwrap()[[2, 0]], 5.0);
/// # Ok::<(), rnnkit::Error>(())
/// ```
///
/// # Errors
/// [`Error::Config`] for a zero length, stride or rate; [`Error::Data`] when `data` is too
/// short for one window.
pub fn timeseries_windows<F: Float>(
    data: &ArrayD<F>,
    targets: Option<&ArrayD<F>>,
    sequence_length: usize,
    sequence_stride: usize,
    sampling_rate: usize,
) -> Result<(ArrayD<F>, Option<ArrayD<F>>)> {
    for (field, v) in [
        ("sequence_length", sequence_length),
        ("sequence_stride", sequence_stride),
        ("sampling_rate", sampling_rate),
    ] {
        if v == 0 {
            return Err(Error::Config {
                layer: "timeseries_windows".into(),
                field,
                reason: "expected a positive integer, got 0".into(),
            });
        }
    }
    let t = data.shape().first().copied().unwrap_or(0);
    let span = (sequence_length - 1)
        .checked_mul(sampling_rate)
        .filter(|&s| s < t)
        .ok_or_else(|| {
            Error::Data(format!(
                "{t} steps are too few for one window of {sequence_length} steps every {sampling_rate}"
            ))
        })?;
    let mut num = t - span;
    if let Some(y) = targets {
        num = num.min(y.shape().first().copied().unwrap_or(0));
    }
    let starts: Vec<usize> = (0..num).step_by(sequence_stride).collect();
    let mut shape = vec![starts.len(), sequence_length];
    shape.extend_from_slice(&data.shape()[1..]);
    let mut x = ArrayD::zeros(IxDyn(&shape));
    for (w, &start) in starts.iter().enumerate() {
        let window = data.slice_axis(
            Axis(0),
            Slice::new(
                start as isize,
                Some((start + span + 1) as isize),
                sampling_rate as isize,
            ),
        );
        x.index_axis_mut(Axis(0), w).assign(&window);
    }
    let y = targets.map(|y| y.select(Axis(0), &starts));
    Ok((x, y))
}
