#!/usr/bin/env python3
"""Loads every PyTorch export `NAME/` (written by rnnkit: `model.safetensors` + `model.py`)
in a directory through its own `model.py` and compares the module's output with the
expected output in `NAME.json` ({"input": {"shape", "data", "ids"}, "output": {"shape",
"data"}, "rtol"?, "atol"?}; defaults 1e-5 and 1e-6).

Then, for each that passed, the import direction: the module's weights redrawn by PyTorch,
its output on them written to `NAME.torch.json` and its `state_dict()` written back to
`NAME/model.safetensors` (metadata kept), for rnnkit to read and reproduce.

Prints one line per model and closes with `pytorch: N passed, M failed`; exits 1 when any
failed or none was found.

    python tools/pytorch_check.py DIR
"""
import importlib.util
import json
import pathlib
import struct
import sys

import numpy as np
import torch


def load_module(directory):
    spec = importlib.util.spec_from_file_location(f"rnnkit_export_{directory.name}", directory / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def save_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        b = tensors[name].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def tensor(t):
    return np.array(t["data"], dtype=np.float64).reshape(t["shape"])


def reweight(net, d, xs):
    """The import direction: new weights drawn by PyTorch, the module's own output on them,
    and its state_dict written back under the file's names (`NAME.torch.json` holds the
    output for rnnkit to reproduce after reading the directory)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.5, 0.5)
        ys = net(*xs)
        ys = [y.numpy() for y in (ys if isinstance(ys, tuple) else (ys,))]
    mod = load_module(d)
    names = {v: k for k, v in mod._state_names(net).items()}
    _, meta = mod.read_safetensors(str(d / "model.safetensors"))
    save_safetensors(d / "model.safetensors", {names[k]: v for k, v in net.state_dict().items()}, meta)
    out = [{"shape": list(y.shape), "data": [float(v) for v in y.ravel()]} for y in ys]
    (d.parent / f"{d.name}.torch.json").write_text(json.dumps({"output": out[0], "outputs": out}))


def main(dirname):
    root = pathlib.Path(dirname)
    cases = sorted(p for p in root.iterdir() if p.is_dir() and (p / "model.py").exists())
    failed = []
    for d in cases:
        case = json.loads((root / f"{d.name}.json").read_text())
        rtol, atol = case.get("rtol", 1e-5), case.get("atol", 1e-6)
        xs = [torch.tensor(tensor(t).astype(np.int64) if t.get("ids") else tensor(t).astype(np.float32))
              for t in case.get("inputs", [case.get("input")])]
        wants = [tensor(t).astype(np.float32) for t in case.get("outputs", [case.get("output")])]
        try:
            net = load_module(d).load(str(d))
            assert not net.training, "load() must return the module in eval mode"
            with torch.no_grad():
                gots = net(*xs)
            gots = [g.numpy() for g in (gots if isinstance(gots, tuple) else (gots,))]
        except Exception as e:  # noqa: BLE001 - any failure to load or run is a failure
            failed.append(d.name)
            print(f"FAILED {d.name}: {type(e).__name__}: {e}")
            continue
        if [g.shape for g in gots] != [w.shape for w in wants]:
            failed.append(d.name)
            print(f"FAILED {d.name}: shapes {[g.shape for g in gots]}, expected {[w.shape for w in wants]}")
            continue
        got = np.concatenate([g.ravel() for g in gots])
        want = np.concatenate([w.ravel() for w in wants])
        err = np.abs(got - want)
        if (err > rtol * np.abs(want) + atol).any():
            failed.append(d.name)
            print(f"FAILED {d.name}: max |diff| {err.max():.2e}")
        else:
            print(f"ok {d.name}: max |diff| {err.max():.2e}")
            reweight(net, d, xs)
    print(f"pytorch: {len(cases) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or not cases else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
