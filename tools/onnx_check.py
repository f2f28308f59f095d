#!/usr/bin/env python3
"""Runs every `NAME.onnx` in a directory with ONNX Runtime and compares its output with
the expected output in `NAME.json` ({"input": {"shape", "data", "ids"}, "output":
{"shape", "data"}, "rtol"?, "atol"?}): float32, |ort - expected| <= rtol * |expected| + atol
(defaults 1e-5 and 1e-6: rnnkit's own predictions; Keras's are checked to 1e-4).

Prints one line per model and closes with `onnx runtime: N passed, M failed`; exits 1 when
any failed or no model was found.

    python tools/onnx_check.py DIR
"""
import json
import pathlib
import sys

import numpy as np
import onnxruntime as ort


def main(directory: str) -> int:
    models = sorted(pathlib.Path(directory).glob("*.onnx"))
    failed = []
    for path in models:
        case = json.loads(path.with_suffix(".json").read_text())
        ins = case.get("inputs", [case.get("input")])
        outs = case.get("outputs", [case.get("output")])
        feeds, wants = [], []
        for t in ins:
            x = np.array(t["data"], dtype=np.float64).reshape(t["shape"])
            feeds.append(x.astype(np.int64) if t.get("ids") else x.astype(np.float32))
        for t in outs:
            wants.append(np.array(t["data"], dtype=np.float32).reshape(t["shape"]))
        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            # Token ids go in as the model declares them (int64).
            gots = sess.run(None, {i.name: (x.astype(np.int64) if i.type == "tensor(int64)" else x)
                                   for i, x in zip(sess.get_inputs(), feeds)})
        except Exception as e:  # noqa: BLE001 - any runtime refusal is a failure
            failed.append(path.stem)
            print(f"FAILED {path.stem}: {type(e).__name__}: {e}")
            continue
        if len(gots) != len(wants):
            failed.append(path.stem)
            print(f"FAILED {path.stem}: {len(gots)} outputs, expected {len(wants)}")
            continue
        shapes = [(g.shape, w.shape) for g, w in zip(gots, wants) if g.shape != w.shape]
        if shapes:
            failed.append(path.stem)
            print(f"FAILED {path.stem}: shapes (onnxruntime, expected) {shapes}")
            continue
        (got, want), rest = (gots[0], wants[0]), list(zip(gots[1:], wants[1:]))
        if rest:
            got = np.concatenate([got.ravel()] + [g.ravel() for g, _ in rest])
            want = np.concatenate([want.ravel()] + [w.ravel() for _, w in rest])
        if got.shape != want.shape:
            failed.append(path.stem)
            print(f"FAILED {path.stem}: shape {got.shape}, rnnkit {want.shape}")
            continue
        err = np.abs(got - want)
        rtol, atol = case.get("rtol", 1e-5), case.get("atol", 1e-6)
        bad = err > rtol * np.abs(want) + atol
        if bad.any():
            failed.append(path.stem)
            i = np.unravel_index(np.argmax(err - rtol * np.abs(want)), err.shape)
            print(f"FAILED {path.stem}: at {i} onnxruntime {got[i]}, rnnkit {want[i]}")
        else:
            print(f"ok {path.stem}: max |diff| {err.max():.2e}")
    print(f"onnx runtime: {len(models) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not models else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
