#!/usr/bin/env python3
"""Export a Keras model to rnnkit's model file (safetensors + architecture JSON).

rnnkit also reads `.keras` files itself (`AnyModel::<f32>::load("model.keras")`, or
`cargo run --release --example convert -- model.keras --to rnnkit out.safetensors`); this
script remains for `.h5` files and for the `--json` sample with Keras's own output.

    python tools/keras_export.py MODEL.keras OUT.safetensors [--json OUT.json] [--dtype f32|f64]

Sequential models load in Rust with `Sequential::<f32>::load("OUT.safetensors")`;
functional models (`keras.Model(inputs, outputs)`: several inputs and outputs, shared
layers, `return_state` / `initial_state`, explicit masks) with
`Functional::<f32>::load("OUT.safetensors")`, their graph stored as the architecture.

Supported layers: SimpleRNN, LSTM, GRU, Dense, Masking, Bidirectional (around SimpleRNN,
LSTM or GRU), Embedding, Dropout, RepeatVector, GlobalAveragePooling1D, Concatenate, Add,
Multiply, Average, Attention, AdditiveAttention, with the options rnnkit has (units,
activation, recurrent_activation, use_bias, return_sequences, go_backwards,
zero_output_for_mask, reset_after; merge_mode concat/sum/mul/ave; mask_zero; axis;
use_scale, score_mode). Anything else stops the export with a message naming the layer
and the option.

`--json` also writes a random input batch and Keras's output on it (for a Sequential
model, with the Keras-JSON form read by `Sequential::from_keras_json`), so the Rust side can
check the import against Keras itself.

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


def recurrent_spec(layer, functional=False):
    cls = type(layer).__name__
    c = layer.get_config()
    check(functional or not c.get("return_state"), layer,
          "return_state=True needs a functional model (keras.Model(inputs, outputs))")
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
        "stateful": bool(c.get("stateful", False)),
        "dropout": float(c.get("dropout", 0.0)),
        "recurrent_dropout": float(c.get("recurrent_dropout", 0.0)),
    }
    if c.get("seed") is not None:
        spec["seed"] = int(c["seed"])
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


def export_layer(layer, functional=False):
    """(spec, {weight path: array}, fixture-style weights dict)"""
    cls = type(layer).__name__
    if cls in RECURRENT:
        w = rnn_weights(layer)
        return recurrent_spec(layer, functional), {f"{layer.name}/{k}": v for k, v in w.items()}, w
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
        inner = recurrent_spec(fwd, functional)
        fname = fwd.name
        inner["config"]["name"] = fname[len("forward_"):] if fname.startswith("forward_") else fname
        inner["config"]["zero_output_for_mask"] = False
        bspec = recurrent_spec(bwd, functional)["config"]
        for k in ("units", "activation", "use_bias", "return_sequences"):
            check(bspec[k] == inner["config"][k], layer, f"backward layer differs in {k}")
        spec = {"layer": "Bidirectional", "config": {"name": layer.name, "merge_mode": mode, "layer": inner}}
        wf, wb = rnn_weights(fwd), rnn_weights(bwd)
        tensors = {f"{layer.name}/{fwd.name}/{k}": v for k, v in wf.items()}
        tensors.update({f"{layer.name}/{bwd.name}/{k}": v for k, v in wb.items()})
        return spec, tensors, {"forward": wf, "backward": wb}
    if cls == "InputLayer":
        return None, {}, {}
    c = layer.get_config()
    if cls == "Embedding":
        spec = {"layer": cls, "config": {"name": layer.name, "input_dim": int(c["input_dim"]),
                                         "output_dim": int(c["output_dim"]),
                                         "mask_zero": bool(c.get("mask_zero", False))}}
        w = {"embeddings": layer.get_weights()[0]}
        return spec, {f"{layer.name}/embeddings": w["embeddings"]}, w
    if cls == "Dropout":
        return {"layer": cls, "config": {"name": layer.name, "rate": float(c["rate"])}}, {}, {}
    if cls == "RepeatVector":
        return {"layer": cls, "config": {"name": layer.name, "n": int(c["n"])}}, {}, {}
    if cls == "GlobalAveragePooling1D":
        return {"layer": cls, "config": {"name": layer.name}}, {}, {}
    if cls == "Concatenate":
        return {"layer": cls, "config": {"name": layer.name, "axis": int(c.get("axis", -1))}}, {}, {}
    if cls in ("Add", "Multiply", "Average"):
        return {"layer": cls, "config": {"name": layer.name}}, {}, {}
    if cls in ("Attention", "AdditiveAttention"):
        check(not c.get("dropout"), layer, "attention dropout is not supported")
        check(cls == "AdditiveAttention" or c.get("score_mode", "dot") in ("dot", "concat"), layer,
              f"score_mode {c.get('score_mode')!r} is not supported")
        cfg = {"name": layer.name, "use_scale": bool(c.get("use_scale", cls == "AdditiveAttention"))}
        names = []
        if cls == "Attention":
            cfg["score_mode"] = c.get("score_mode", "dot")
            names = (["scale"] if cfg["use_scale"] else []) + \
                (["concat_score_weight"] if cfg["score_mode"] == "concat" else [])
        elif cfg["use_scale"]:
            names = ["scale"]
        w = dict(zip(names, layer.get_weights()))
        return {"layer": cls, "config": cfg}, {f"{layer.name}/{k}": v for k, v in w.items()}, w
    raise Unsupported(f"layer {layer.name!r} is a {cls}; rnnkit reads SimpleRNN, LSTM, GRU, Dense, "
                      "Masking, Bidirectional, Embedding, Dropout, RepeatVector, "
                      "GlobalAveragePooling1D, Concatenate, Add, Multiply, Average, Attention and "
                      "AdditiveAttention")


def export_graph(model):
    """A functional model's graph in rnnkit's GraphSpec form, and its weight tensors."""
    import keras

    # Our node names: a layer's first call is named after the layer; later calls get
    # `<layer>_call<k>`. Keras tensors are found by (layer, node index, tensor index).
    node_name = {}
    inputs = []
    for t in model.inputs:
        layer, _, _ = t._keras_history
        node_name[(id(layer), 0)] = layer.name
        inputs.append({"name": layer.name, "shape": [None if d is None else int(d) for d in t.shape[1:]]})

    def ref(t):
        layer, node_index, tensor_index = t._keras_history
        key = (id(layer), node_index)
        if key not in node_name:
            raise Unsupported(f"tensor of layer {layer.name!r} (call {node_index}) is used before its call")
        name = node_name[key]
        return name if tensor_index == 0 else f"{name}:{tensor_index}"

    def flat(x):
        return list(x) if isinstance(x, (list, tuple)) else [x]

    # Every call of every layer, in an order where each reads only earlier ones.
    model_nodes = set()
    for nodes in model._nodes_by_depth.values():
        model_nodes.update(id(n) for n in nodes)
    calls = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if type(node.operation).__name__ == "InputLayer":
                continue
            if not isinstance(node.operation, keras.layers.Layer):
                # Keras records the masks it computes (`NotEqual` of ids and 0, for an
                # Embedding with mask_zero) as operations; rnnkit computes them itself.
                check(type(node.operation).__name__ == "NotEqual", node.operation,
                      "only layers (and Keras's own mask computations) can be exported")
                continue
            calls.append(node)

    def mask_ref(m):
        """The tensor carrying the mask `m`: the Embedding(mask_zero) output on the same ids."""
        op = m._keras_history[0]
        if type(op).__name__ != "NotEqual":
            return ref(m)
        ids = op._inbound_nodes[m._keras_history[1]].arguments.args[0]
        for node in calls:
            layer = node.operation
            if (type(layer).__name__ == "Embedding" and layer.get_config().get("mask_zero")
                    and node.arguments.args[0] is ids):
                return ref(node.outputs[0])
        raise Unsupported("a mask that is not an Embedding's (mask_zero) cannot be exported")
    nodes, tensors, seen_layers = [], {}, {}
    for node in calls:
        layer = node.operation
        index = layer._inbound_nodes.index(node)
        first = id(layer) not in seen_layers
        name = layer.name if first else f"{layer.name}_call{index}"
        args, kwargs = node.arguments.args, node.arguments.kwargs
        entry = {"name": name, "inputs": [ref(t) for t in flat(args[0])]}
        initial = kwargs.get("initial_state")
        if initial is not None:
            entry["initial_state"] = [ref(t) for t in flat(initial)]
        if kwargs.get("mask") is not None:
            m = kwargs["mask"]
            check(hasattr(m, "_keras_history"), layer, "an explicit mask must be a Keras tensor's mask")
            # The mask Keras would give the layer anyway (its input's) needs no entry.
            carried = getattr(flat(args[0])[0], "_keras_mask", None)
            if carried is not m:
                entry["mask"] = mask_ref(m)
        for k in kwargs:
            check(k in ("initial_state", "mask", "training"), layer, f"call argument {k!r} is not supported")
        c = layer.get_config()
        inner_state = type(layer).__name__ == "Bidirectional" and layer.forward_layer.get_config().get("return_state")
        if c.get("return_state") or inner_state or initial is not None or "mask" in entry:
            entry["return_state"] = True
        if first:
            spec, t, _ = export_layer(layer, functional=True)
            spec["config"].pop("return_state", None)
            entry["layer"], entry["config"] = spec["layer"], spec["config"]
            tensors.update(t)
            seen_layers[id(layer)] = name
        else:
            entry["shares"] = seen_layers[id(layer)]
        node_name[(id(layer), index)] = name
        nodes.append(entry)
    outputs = [ref(t) for t in model.outputs]
    return {"name": model.name, "inputs": inputs, "nodes": nodes, "outputs": outputs}, tensors


def save_safetensors(path, tensors, metadata, dtype):
    """The safetensors layout: u64 header length, JSON header, little-endian row-major data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        # np.array keeps a 0-d weight 0-d (np.ascontiguousarray would make it [1]).
        a = np.array(tensors[name], dtype="<f8" if dtype == "F64" else "<f4", order="C")
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


def export_functional(model, out, json_out, dtype):
    arch, tensors = export_graph(model)
    metadata = {"format": "rnnkit", "format_version": str(FORMAT_VERSION), "dtype": dtype,
                "rnnkit_version": "keras_export.py", "model_type": "Functional",
                "architecture": json.dumps(arch)}
    save_safetensors(out, tensors, metadata, dtype)
    if json_out:
        rng = np.random.default_rng(0)
        xs = []
        for t in model.inputs:
            shape = [2] + [d if d is not None else 5 for d in t.shape[1:]]
            if "int" in str(t.dtype):
                emb = [l for l in model.layers if type(l).__name__ == "Embedding"]
                high = min(int(l.get_config()["input_dim"]) for l in emb) if emb else 2
                x = rng.integers(0, high, size=shape).astype(np.float64)
                x[:, 0] = np.maximum(x[:, 0], 1)  # no all-padding row
            else:
                x = rng.uniform(-1, 1, size=shape)
            xs.append(x)
        ys = model.predict([x.astype(t.dtype) for x, t in zip(xs, model.inputs)], verbose=0)
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        with open(json_out, "w") as f:
            json.dump({"name": model.name, "inputs": [tensor_json(x) for x in xs],
                       "outputs": [tensor_json(y) for y in ys]}, f)


def export(model, out, json_out=None, dtype="F32"):
    if type(model).__name__ == "Functional":
        return export_functional(model, out, json_out, dtype)
    if type(model).__name__ != "Sequential":
        raise Unsupported(f"{type(model).__name__} models are not supported; rnnkit reads Sequential "
                          "and functional models")
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
    p.add_argument("model", help="a .keras (or .h5) file holding a Sequential or functional model")
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
