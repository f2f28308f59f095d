"""An rnnkit model as a PyTorch module, written by rnnkit's PyTorch export.

    import model                      # this file, from the export directory
    net = model.load("EXPORT_DIR")    # an nn.Module in eval mode
    y = net(x)                        # x: [batch, time, features] float32 (token ids: int64)

`model.safetensors` holds the weights under PyTorch's own names and layouts
(`layers.<name>.weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, `_reverse` for
a Bidirectional's backward direction; gate orders i, f, g, o and r, z, n;
`layers.<name>.weight` / `bias` for Linear and Embedding) and, in its metadata, the
architecture rnnkit wrote. Continue training it like any module (for example under
`torch.nn.parallel.DistributedDataParallel`); `state_dict()` keys are the file's names.
Needs only torch (the safetensors file is read here).
"""
import json
import os
import struct

import torch
from torch import nn

ACT = {
    "linear": lambda x: x,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "softmax": lambda x: torch.softmax(x, dim=-1),
}


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    dtypes = {"F32": torch.float32, "F64": torch.float64}
    tensors = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        raw = bytearray(data[8 + n + a:8 + n + b])
        tensors[name] = torch.frombuffer(raw, dtype=dtypes[t["dtype"]]).reshape(t["shape"]).clone()
    return tensors, meta


class Recurrent(nn.Module):
    """SimpleRNN, LSTM or GRU (Keras semantics: go_backwards, return_sequences, merges)."""

    def __init__(self, kind, cfg, input_size, bidirectional=False, merge="concat"):
        super().__init__()
        cls = {"SimpleRNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[kind]
        kw = {"nonlinearity": cfg.get("activation", "tanh")} if kind == "SimpleRNN" else {}
        self.rnn = cls(input_size, cfg["units"], batch_first=True, bias=cfg.get("use_bias", True),
                       bidirectional=bidirectional, **kw)
        self.seq = cfg.get("return_sequences", False)
        self.backwards = cfg.get("go_backwards", False)
        self.bidirectional, self.merge = bidirectional, merge

    def forward(self, x):
        if self.backwards:
            x = torch.flip(x, dims=[1])  # Keras outputs a backwards layer in processing order
        y, h = self.rnn(x)
        h = h[0] if isinstance(h, tuple) else h
        if not self.bidirectional:
            return y if self.seq else h[-1]
        if self.seq:
            u = y.shape[-1] // 2
            fw, bw = y[..., :u], y[..., u:]
        else:
            fw, bw = h[0], h[1]
        if self.merge == "concat":
            return torch.cat([fw, bw], dim=-1)
        if self.merge == "sum":
            return fw + bw
        if self.merge == "mul":
            return fw * bw
        return (fw + bw) / 2


class Dense(nn.Module):
    def __init__(self, cfg, input_size):
        super().__init__()
        self.linear = nn.Linear(input_size, cfg["units"], bias=cfg.get("use_bias", True))
        self.act = ACT[cfg.get("activation", "linear")]

    def forward(self, x):
        return self.act(self.linear(x))


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class Sequential(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.layers = nn.ModuleDict()
        size = spec["input_shape"][-1] if spec["input_shape"] else None
        for layer in spec["layers"]:
            kind, cfg = layer["layer"], layer["config"]
            name = cfg["name"]
            if kind in ("SimpleRNN", "LSTM", "GRU"):
                m = Recurrent(kind, cfg, size)
                size = cfg["units"]
            elif kind == "Bidirectional":
                inner = cfg["layer"]
                m = Recurrent(inner["layer"], inner["config"], size, True, cfg.get("merge_mode", "concat"))
                size = inner["config"]["units"] * (2 if cfg.get("merge_mode", "concat") == "concat" else 1)
            elif kind == "Dense":
                m = Dense(cfg, size)
                size = cfg["units"]
            elif kind == "Embedding":
                m = nn.Embedding(cfg["input_dim"], cfg["output_dim"])
                size = cfg["output_dim"]
            elif kind == "Dropout":
                m = nn.Dropout(cfg.get("rate", 0.0))
            elif kind == "RepeatVector":
                n = cfg["n"]
                m = Lambda(lambda x, n=n: x.unsqueeze(1).repeat(1, n, 1))
            elif kind == "GlobalAveragePooling1D":
                m = Lambda(lambda x: x.mean(dim=1))
            else:
                raise ValueError(f"layer {name} ({kind}) has no PyTorch form here")
            self.layers[name] = m

    def forward(self, x):
        for m in self.layers.values():
            x = m(x)
        return x


def _state_names(module):
    """This module's state_dict names as the file writes them (Recurrent's `rnn.` and
    Dense's `linear.` levels are not in the file)."""
    out = {}
    for k in module.state_dict():
        parts = k.split(".")
        if len(parts) == 4 and parts[2] in ("rnn", "linear"):
            del parts[2]
        out[".".join(parts)] = k
    return out


def load(directory):
    """The exported model as an nn.Module in eval mode."""
    tensors, meta = read_safetensors(os.path.join(directory, "model.safetensors"))
    spec = json.loads(meta["architecture"])
    if meta.get("model_type", "Sequential") != "Sequential":
        raise ValueError("this model.py builds Sequential models")
    net = Sequential(spec)
    names = _state_names(net)
    missing = set(names) - set(tensors)
    if missing:
        raise ValueError(f"model.safetensors lacks {sorted(missing)}")
    net.load_state_dict({names[k]: v.to(torch.float32) for k, v in tensors.items()})
    return net.eval()
