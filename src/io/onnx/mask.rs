//! Keras masks in ONNX, for post-padded sequences (the valid steps first, then padding):
//! a mask travels as the number of valid steps per sample (`sequence_lens`, int32 `[b]`),
//! which ONNX's recurrent operators take; a masked step carries the state as Keras's rule
//! says. Outputs at padded steps follow Keras: zeros with `zero_output_for_mask`, else the
//! last valid output repeated.

use super::Builder;
use super::proto::{Attr, INT64};

/// `[b]` int32 valid-step counts from a `[b, t]` float 0/1 keep-mask.
pub(super) fn lengths(b: &mut Builder, base: &str, keep: &str) -> String {
    let axes = b.i64s("axes", &[1]);
    let n = b.op1(
        "ReduceSum",
        base,
        &[keep, &axes],
        &[("keepdims", Attr::Int(0))],
    );
    b.op1("Cast", base, &[&n], &[("to", Attr::Int(6))]) // INT32
}

/// `[b, t]` float keep-mask (1 for the first `len` steps) shaped like `x`'s first two axes.
pub(super) fn keep_of(b: &mut Builder, base: &str, len: &str, x: &str) -> String {
    let r = step_indices(b, base, x);
    let l = b.op1("Cast", base, &[len], &[("to", Attr::Int(INT64))]);
    let ax1 = b.i64s("axes", &[1]);
    let l = b.op1("Unsqueeze", base, &[&l, &ax1], &[]); // [b, 1]
    let k = b.op1("Less", base, &[&r, &l], &[]);
    b.op1("Cast", base, &[&k], &[("to", Attr::Int(1))])
}

/// `[1, t]` int64 step indices `0, 1, …, t − 1` of `x` (axis 1).
fn step_indices(b: &mut Builder, base: &str, x: &str) -> String {
    let t = steps(b, base, x);
    let (zero, one) = (b.i64s("zero", &[0]), b.i64s("one", &[1]));
    let zs = scalar(b, base, &zero);
    let os = scalar(b, base, &one);
    let r = b.op1("Range", base, &[&zs, &t, &os], &[]); // [t]
    let ax0 = b.i64s("axes", &[0]);
    b.op1("Unsqueeze", base, &[&r, &ax0], &[])
}

/// The number of steps of `x` (axis 1) as an int64 scalar.
fn steps(b: &mut Builder, base: &str, x: &str) -> String {
    let shape = b.op1("Shape", base, &[x], &[]);
    let one = b.i64s("index", &[1]);
    let t = b.op1("Gather", base, &[&shape, &one], &[("axis", Attr::Int(0))]);
    scalar(b, base, &t)
}

fn scalar(b: &mut Builder, base: &str, one_element: &str) -> String {
    let axes = b.i64s("axes", &[0]);
    b.op1("Squeeze", base, &[one_element, &axes], &[])
}

/// `y[b, t]` replaced by `y[b, len − 1]` for `t ≥ len` (`y` `[b, t, u]`): Keras's output at
/// masked steps without `zero_output_for_mask`.
pub(super) fn carry(b: &mut Builder, base: &str, y: &str, len: &str) -> String {
    let r = step_indices(b, base, y); // [1, t]
    let (zero, one) = (b.i64s("zero", &[0]), b.i64s("one", &[1]));
    let l = b.op1("Cast", base, &[len], &[("to", Attr::Int(INT64))]);
    let last = b.op1("Sub", base, &[&l, &one], &[]);
    let last = b.op1("Max", base, &[&last, &zero], &[]);
    let ax1 = b.i64s("axes", &[1]);
    let last = b.op1("Unsqueeze", base, &[&last, &ax1], &[]); // [b, 1]
    let idx = b.op1("Min", base, &[&r, &last], &[]); // [b, t]
    let ax2 = b.i64s("axes", &[2]);
    let idx = b.op1("Unsqueeze", base, &[&idx, &ax2], &[]); // [b, t, 1]
    let shape = b.op1("Shape", base, &[y], &[]);
    let idx = b.op1("Expand", base, &[&idx, &shape], &[]);
    b.op1(
        "GatherElements",
        base,
        &[y, &idx],
        &[("axis", Attr::Int(1))],
    )
}
