"""An rnnkit model as a PyTorch module, written by rnnkit's PyTorch export.

    import model                      # this file, from the export directory
    net = model.load("EXPORT_DIR")    # an nn.Module in eval mode
    y = net(x)                        # x: [batch, time, features] float32 (token ids: int64)
                                      # graph models: net(x1, x2, ...), several outputs a tuple

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
        self.zero_output = cfg.get("zero_output_for_mask", False) or bidirectional
        self.bidirectional, self.merge = bidirectional, merge

    def forward(self, x, initial=None, states=False, lengths=None):
        """`initial`: Keras's initial states (h, and c for LSTM; per direction, forward
        first). With `states`, also the final states in that order. `lengths`: Keras's
        mask of post-padded sequences as valid-step counts (a masked step carries the
        state; outputs there are zeros, or the last output repeated)."""
        if self.backwards:
            x = torch.flip(x, dims=[1])  # Keras outputs a backwards layer in processing order
        lstm = isinstance(self.rnn, nn.LSTM)
        hx = None
        if initial:
            per = 2 if lstm else 1
            h0 = torch.stack(initial[0::per])
            hx = (h0, torch.stack(initial[1::per])) if lstm else h0
        if lengths is None:
            y, hn = self.rnn(x, hx)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(
                x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
            y, hn = self.rnn(packed, hx)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
            if self.seq and not self.zero_output:
                t = torch.arange(x.shape[1]).unsqueeze(0)
                idx = torch.minimum(t, (lengths.clamp(min=1) - 1).unsqueeze(1))
                y = y.gather(1, idx.unsqueeze(2).expand(-1, -1, y.shape[2]))
        finals = []
        for d in range(2 if self.bidirectional else 1):
            if lstm:
                finals += [hn[0][d], hn[1][d]]
            else:
                finals.append(hn[d])
        h = hn[0] if isinstance(hn, tuple) else hn
        out = self._output(y, h)
        return (out, finals) if states else out

    def _output(self, y, h):
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


def masked_lengths(kind, cfg, x, out, lengths):
    """Keras's mask after a layer, as valid-step counts (post-padded sequences)."""
    if kind == "Masking":
        return (x != cfg.get("mask_value", 0.0)).any(-1).sum(1)
    if kind == "Embedding":
        return (x != 0).sum(1) if cfg.get("mask_zero") else None
    if kind in ("Dense", "Dropout"):
        return lengths
    if kind in ("SimpleRNN", "LSTM", "GRU"):
        return lengths if cfg.get("return_sequences") else None
    if kind == "Bidirectional":
        return lengths if cfg["layer"]["config"].get("return_sequences") else None
    return None


def apply(kind, cfg, m, x, lengths):
    """One single-input layer call with the mask (as lengths) it receives."""
    if kind in ("SimpleRNN", "LSTM", "GRU", "Bidirectional"):
        return m(x, lengths=lengths)
    if kind == "Masking":
        keep = (x != cfg.get("mask_value", 0.0)).any(-1, keepdim=True)
        return x * keep
    if kind == "GlobalAveragePooling1D" and lengths is not None:
        keep = (torch.arange(x.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).to(x.dtype).unsqueeze(2)
        return (x * keep).sum(1) / keep.sum(1)
    return m(x)


class Sequential(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.spec = spec
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
            elif kind == "Masking":
                m = Lambda(lambda x: x)
            else:
                raise ValueError(f"layer {name} ({kind}) has no PyTorch form here")
            self.layers[name] = m

    def forward(self, x):
        lengths = None
        for layer, m in zip(self.spec["layers"], self.layers.values()):
            kind, cfg = layer["layer"], layer["config"]
            out = apply(kind, cfg, m, x, lengths)
            lengths = masked_lengths(kind, cfg, x, out, lengths)
            x = out
        return x


class Attention(nn.Module):
    """Keras's Attention (dot or concat scores) and AdditiveAttention, without masks."""

    def __init__(self, kind, cfg, tensors, name):
        super().__init__()
        self.additive = kind == "AdditiveAttention"
        self.concat = cfg.get("score_mode", "dot") == "concat"
        for k in ("scale", "concat_score_weight"):
            t = tensors.get(f"layers.{name}.{k}")
            setattr(self, k, nn.Parameter(t.clone()) if t is not None else None)

    def forward(self, q, v, k=None):
        k = v if k is None else k
        if self.additive or self.concat:
            pre = q.unsqueeze(2) + k.unsqueeze(1)
            if self.additive:
                t = torch.tanh(pre)
                s = (t * self.scale).sum(-1) if self.scale is not None else t.sum(-1)
            else:
                c = self.scale if self.scale is not None else 1.0
                s = torch.tanh(c * pre).sum(-1) * self.concat_score_weight
        else:
            s = q @ k.transpose(1, 2)
            if self.scale is not None:
                s = s * self.scale
        return torch.softmax(s, dim=-1) @ v


def _layer(kind, cfg, size, tensors, name):
    """(module, output features) of one layer."""
    if kind in ("SimpleRNN", "LSTM", "GRU"):
        return Recurrent(kind, cfg, size), cfg["units"]
    if kind == "Bidirectional":
        inner, merge = cfg["layer"], cfg.get("merge_mode", "concat")
        units = inner["config"]["units"]
        return Recurrent(inner["layer"], inner["config"], size, True, merge), units * (2 if merge == "concat" else 1)
    if kind == "Dense":
        return Dense(cfg, size), cfg["units"]
    if kind == "Embedding":
        return nn.Embedding(cfg["input_dim"], cfg["output_dim"]), cfg["output_dim"]
    if kind == "Dropout":
        return nn.Dropout(cfg.get("rate", 0.0)), size
    if kind == "RepeatVector":
        n = cfg["n"]
        return Lambda(lambda x, n=n: x.unsqueeze(1).repeat(1, n, 1)), size
    if kind == "GlobalAveragePooling1D":
        return Lambda(lambda x: x.mean(dim=1)), size
    if kind == "Masking":
        return Lambda(lambda x: x), size
    if kind in ("Attention", "AdditiveAttention"):
        return Attention(kind, cfg, tensors, name), size
    if kind == "Concatenate":
        axis = cfg.get("axis", -1)
        return Lambda(lambda xs, a=axis: torch.cat(xs, dim=a)), None
    if kind == "Add":
        return Lambda(lambda xs: sum(xs[1:], xs[0])), size
    if kind == "Multiply":
        def mul(xs):
            out = xs[0]
            for x in xs[1:]:
                out = out * x
            return out
        return Lambda(mul), size
    if kind == "Average":
        return Lambda(lambda xs: sum(xs[1:], xs[0]) / len(xs)), size
    raise ValueError(f"layer {name} ({kind}) has no PyTorch form here")


class Graph(nn.Module):
    """A graph (functional) model: one tensor per model input, in order; several outputs
    as a tuple."""

    LIST = ("Concatenate", "Add", "Multiply", "Average")

    def __init__(self, spec, tensors):
        super().__init__()
        self.spec = spec
        self.layers = nn.ModuleDict()
        self.kinds, self.configs = {}, {}
        for node in spec["nodes"]:
            if "layer" not in node:
                continue
            kind, cfg = node["layer"], node["config"]
            size = None
            w = tensors.get(f"layers.{node['name']}.weight_ih_l0")
            if w is not None:
                size = w.shape[1]
            elif kind == "Dense":
                size = tensors[f"layers.{node['name']}.weight"].shape[1]
            self.layers[node["name"]], _ = _layer(kind, cfg, size, tensors, node["name"])
            self.kinds[node["name"]] = kind
            self.configs[node["name"]] = cfg

    def forward(self, *xs):
        env = {i["name"]: x for i, x in zip(self.spec["inputs"], xs)}
        lens = {}  # tensor ref → its mask as valid-step counts
        for node in self.spec["nodes"]:
            owner = node.get("shares", node["name"])
            m, kind = self.layers[owner], self.kinds[owner]
            cfg = self.configs[owner]
            args = [env[r] for r in node["inputs"]]
            lengths = lens.get(node["inputs"][0])
            if kind in ("SimpleRNN", "LSTM", "GRU", "Bidirectional"):
                initial = [env[r] for r in node.get("initial_state", [])]
                # Keras: a layer called with initial states gets no mask (its output still
                # carries the input's).
                out, finals = m(args[0], initial, states=True, lengths=None if initial else lengths)
                for k, st in enumerate(finals):
                    env[f"{node['name']}:{k + 1}"] = st
            elif kind in ("Attention", "AdditiveAttention"):
                out = m(*args)
            elif kind in self.LIST:
                out = m(args)
            else:
                out = apply(kind, cfg, m, args[0], lengths)
            nl = masked_lengths(kind, cfg, args[0], out, lengths)
            if nl is not None:
                lens[node["name"]] = nl
            env[node["name"]] = out
        outs = tuple(env[r] for r in self.spec["outputs"])
        return outs[0] if len(outs) == 1 else outs


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
    net = Graph(spec, tensors) if meta.get("model_type") == "Functional" else Sequential(spec)
    names = _state_names(net)
    missing = set(names) - set(tensors)
    if missing:
        raise ValueError(f"model.safetensors lacks {sorted(missing)}")
    net.load_state_dict({names[k]: v.to(torch.float32) for k, v in tensors.items()})
    return net.eval()
