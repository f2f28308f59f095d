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
        x = np.array(case["input"]["data"], dtype=np.float64).reshape(case["input"]["shape"])
        x = x.astype(np.int64) if case["input"]["ids"] else x.astype(np.float32)
        want = np.array(case["output"]["data"], dtype=np.float32).reshape(case["output"]["shape"])
        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
        except Exception as e:  # noqa: BLE001 - any runtime refusal is a failure
            failed.append(path.stem)
            print(f"FAILED {path.stem}: {type(e).__name__}: {e}")
            continue
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
