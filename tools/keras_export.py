#!/usr/bin/env python3
"""Export a Keras Sequential model to rnnkit's model file (safetensors + architecture JSON).

    python tools/keras_export.py MODEL.keras OUT.safetensors [--json OUT.json] [--dtype f32|f64]

Supported layers: SimpleRNN, LSTM, GRU, Dense, Masking, Bidirectional (around SimpleRNN,
LSTM or GRU), with the options rnnkit has (units, activation, recurrent_activation,
use_bias, return_sequences, go_backwards, zero_output_for_mask, reset_after; merge_mode
concat/sum/mul/ave). Anything else stops the export with a message naming the layer and
the option. Load the result in Rust with `Sequential::<f32>::load("OUT.safetensors")`.

`--json` also writes the Keras-JSON form (config + weights, read by
`Sequential::from_keras_json`) with a random input batch and Keras's output on it, so the
Rust side can check the import against Keras itself.

Needs numpy and keras (tensorflow-cpu); the safetensors file is written directly (no
safetensors package needed), in the format of `safetensors.numpy.save_file`.
"""
import argparse
import json
import struct
import sys

import numpy as np

FORMAT_VERSION = 1
ACTIVATIONS = {"linear", "tanh", "sigmoid", "relu", "softmax"}
RECURRENT = {"SimpleRNN", "LSTM", "GRU"}


class Unsupported(Exception):
    pass


def act_name(a):
    name = a if isinstance(a, str) else getattr(a, "__name__", str(a))
    return "linear" if name in (None, "None") else name


def check(cond, layer, what):
    if not cond:
        raise Unsupported(f"layer {layer.name!r} ({type(layer).__name__}): {what}")


def recurrent_spec(layer):
    cls = type(layer).__name__
    c = layer.get_config()
    check(not c.get("stateful"), layer, "stateful=True is not supported")
    check(not c.get("return_state"), layer, "return_state=True is not supported")
    check(not c.get("dropout") and not c.get("recurrent_dropout"), layer,
          "dropout / recurrent_dropout are not supported (rnnkit trains without dropout); set them to 0")
    for k in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
              "activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint"):
        check(c.get(k) is None, layer, f"{k} is not supported")
    spec = {
        "name": layer.name,
        "units": int(c["units"]),
        "activation": act_name(c.get("activation", "tanh")),
        "use_bias": bool(c.get("use_bias", True)),
        "return_sequences": bool(c.get("return_sequences", False)),
        "go_backwards": bool(c.get("go_backwards", False)),
        "zero_output_for_mask": bool(c.get("zero_output_for_mask", False)),
    }
    check(spec["activation"] in ACTIVATIONS - {"softmax"}, layer,
          f"activation {spec['activation']!r} is not supported")
    if cls in ("LSTM", "GRU"):
        spec["recurrent_activation"] = act_name(c.get("recurrent_activation", "sigmoid"))
        check(spec["recurrent_activation"] in ACTIVATIONS - {"softmax"}, layer,
              f"recurrent_activation {spec['recurrent_activation']!r} is not supported")
    if cls == "LSTM":
        spec["unit_forget_bias"] = bool(c.get("unit_forget_bias", True))
    if cls == "GRU":
        spec["reset_after"] = bool(c.get("reset_after", True))
    return {"layer": cls, "config": spec}


def rnn_weights(layer):
    names = ["kernel", "recurrent_kernel", "bias"]
    return dict(zip(names, layer.get_weights()))


def export_layer(layer):
    """(spec, {weight path: array}, fixture-style weights dict)"""
    cls = type(layer).__name__
    if cls in RECURRENT:
        w = rnn_weights(layer)
        return recurrent_spec(layer), {f"{layer.name}/{k}": v for k, v in w.items()}, w
    if cls == "Dense":
        c = layer.get_config()
        a = act_name(c.get("activation", "linear"))
        check(a in ACTIVATIONS, layer, f"activation {a!r} is not supported")
        for k in ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                  "kernel_constraint", "bias_constraint"):
            check(c.get(k) is None, layer, f"{k} is not supported")
        spec = {"layer": "Dense", "config": {"name": layer.name, "units": int(c["units"]),
                                             "activation": a, "use_bias": bool(c.get("use_bias", True))}}
        w = dict(zip(["kernel", "bias"], layer.get_weights()))
        return spec, {f"{layer.name}/{k}": v for k, v in w.items()}, w
    if cls == "Masking":
        spec = {"layer": "Masking", "config": {"name": layer.name,
                                               "mask_value": float(layer.get_config().get("mask_value", 0.0))}}
        return spec, {}, {}
    if cls == "Bidirectional":
        fwd, bwd = layer.forward_layer, layer.backward_layer
        check(type(fwd).__name__ in RECURRENT, layer,
              f"wraps {type(fwd).__name__}; rnnkit's Bidirectional wraps SimpleRNN, LSTM or GRU")
        check(type(bwd).__name__ == type(fwd).__name__, layer, "a backward_layer of another type is not supported")
        mode = layer.merge_mode
        check(mode in ("concat", "sum", "mul", "ave"), layer,
              f"merge_mode {mode!r} is not supported (a Sequential model carries one output)")
        inner = recurrent_spec(fwd)
        fname = fwd.name
        inner["config"]["name"] = fname[len("forward_"):] if fname.startswith("forward_") else fname
        inner["config"]["zero_output_for_mask"] = False
        bspec = recurrent_spec(bwd)["config"]
        for k in ("units", "activation", "use_bias", "return_sequences"):
            check(bspec[k] == inner["config"][k], layer, f"backward layer differs in {k}")
        spec = {"layer": "Bidirectional", "config": {"name": layer.name, "merge_mode": mode, "layer": inner}}
        wf, wb = rnn_weights(fwd), rnn_weights(bwd)
        tensors = {f"{layer.name}/{fwd.name}/{k}": v for k, v in wf.items()}
        tensors.update({f"{layer.name}/{bwd.name}/{k}": v for k, v in wb.items()})
        return spec, tensors, {"forward": wf, "backward": wb}
    if cls == "InputLayer":
        return None, {}, {}
    raise Unsupported(f"layer {layer.name!r} is a {cls}; rnnkit reads SimpleRNN, LSTM, GRU, Dense, "
                      "Masking and Bidirectional")


def save_safetensors(path, tensors, metadata, dtype):
    """The safetensors layout: u64 header length, JSON header, little-endian row-major data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f8" if dtype == "F64" else "<f4")
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def tensor_json(a):
    a = np.asarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


def export(model, out, json_out=None, dtype="F32"):
    if type(model).__name__ != "Sequential":
        raise Unsupported(f"{type(model).__name__} models are not supported; rnnkit reads Sequential models")
    input_shape = [None if d is None else int(d) for d in model.input_shape[1:]]
    layers, tensors, json_layers = [], {}, []
    for layer in model.layers:
        spec, t, w = export_layer(layer)
        if spec is None:
            continue
        layers.append(spec)
        tensors.update(t)
        json_layers.append(dict(spec, weights={k: ({kk: tensor_json(vv) for kk, vv in v.items()}
                                                   if isinstance(v, dict) else tensor_json(v))
                                               for k, v in w.items()}))
    arch = {"name": model.name, "input_shape": input_shape, "layers": layers}
    metadata = {"format": "rnnkit", "format_version": str(FORMAT_VERSION), "dtype": dtype,
                "rnnkit_version": "keras_export.py", "architecture": json.dumps(arch)}
    save_safetensors(out, tensors, metadata, dtype)
    if json_out:
        rng = np.random.default_rng(0)
        shape = [2] + [d if d is not None else 5 for d in input_shape]
        x = rng.uniform(-1, 1, size=shape)
        y = model.predict(x.astype(model.inputs[0].dtype if hasattr(model, "inputs") else "float32"), verbose=0)
        with open(json_out, "w") as f:
            json.dump({"name": model.name, "input_shape": input_shape, "layers": json_layers,
                       "input": tensor_json(x), "output": tensor_json(y)}, f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a .keras (or .h5) file holding a Sequential model")
    p.add_argument("out", help="the rnnkit model file to write (.safetensors)")
    p.add_argument("--json", help="also write the Keras-JSON form with a sample input and Keras's output")
    p.add_argument("--dtype", choices=["f32", "f64"], default="f32")
    a = p.parse_args()
    import keras  # imported late: --help works without TensorFlow

    model = keras.saving.load_model(a.model)
    try:
        export(model, a.out, a.json, a.dtype.upper())
    except Unsupported as e:
        sys.exit(f"keras_export: {e}")
    print(f"wrote {a.out}" + (f" and {a.json}" if a.json else ""))


if __name__ == "__main__":
    main()
