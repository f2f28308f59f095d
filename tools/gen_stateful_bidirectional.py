"""Keras reference cases for stateful Bidirectional layers (`"kind": "stateful"`).

Writes tests/fixtures/stateful/stateful_bidirectional_*.json in the schema of
../shared/fixtures/graph/README.md section 4 ("Stateful cases"), with Keras 3 in float64:

    python -m venv /tmp/keras && /tmp/keras/bin/pip install tensorflow-cpu
    /tmp/keras/bin/python tools/gen_stateful_bidirectional.py

Deterministic (seeded numpy draws): two runs give byte-identical files. Each case runs the
chunks through `model.predict_on_batch` one after another, records the output and every
state of every stateful layer after each chunk (a Bidirectional layer: the forward
direction's states, then the backward direction's), and calls `reset_state()` on every
stateful layer after the chunks listed in `reset_after`.
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

keras.config.set_floatx("float64")
TF = ".".join(tf.__version__.split(".")[:2])
GENERATOR = f"keras {keras.__version__} / tensorflow {TF} float64"
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "stateful")


def tensor(a):
    a = np.asarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def rnn_config(kind, units, return_sequences, go_backwards, extra):
    c = {
        "units": units,
        "activation": "tanh",
        "use_bias": True,
        "return_sequences": return_sequences,
        "return_state": False,
        "go_backwards": go_backwards,
        "stateful": True,
    }
    if kind in ("LSTM", "GRU"):
        c["recurrent_activation"] = "sigmoid"
    c.update(extra)
    return c


def keras_rnn(kind, config):
    cls = {"SimpleRNN": keras.layers.SimpleRNN, "LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU}[kind]
    return cls(**config)


def weights_of(layer):
    names = ["kernel", "recurrent_kernel", "bias"]
    return {n: tensor(w) for n, w in zip(names, layer.get_weights())}


def case(name, description, kind, units, merge_mode, return_sequences, go_backwards,
         extra, batch, features, chunks, reset_after, dense, seed):
    rng = np.random.default_rng(seed)
    cfg = rnn_config(kind, units, return_sequences, go_backwards, extra)
    inp = keras.Input(batch_shape=(batch, None, features))
    bi = keras.layers.Bidirectional(keras_rnn(kind, dict(cfg)), merge_mode=merge_mode)
    y = bi(inp)
    layers = [bi]
    if dense:
        d = keras.layers.Dense(dense)
        y = d(y)
        layers.append(d)
    model = keras.Model(inp, y)
    for layer in layers:
        layer.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])
    spec = [{
        "layer": "Bidirectional",
        "config": {"merge_mode": merge_mode, "layer": {"layer": kind, "config": cfg}},
        "weights": {"forward": weights_of(bi.forward_layer),
                    "backward": weights_of(bi.backward_layer)},
    }]
    if dense:
        k, b = layers[1].get_weights()
        spec.append({"layer": "Dense",
                     "config": {"units": dense, "activation": "linear", "use_bias": True},
                     "weights": {"kernel": tensor(k), "bias": tensor(b)}})
    per_state = ["h", "c"] if kind == "LSTM" else ["h"]
    state_names = [f"0:{d}_{s}" for d in ("forward", "backward") for s in per_state]
    batches, outputs, states = [], [], []
    for k, t in enumerate(chunks):
        x = rng.uniform(-1.0, 1.0, (batch, t, features))
        batches.append(tensor(x))
        outputs.append(tensor(model.predict_on_batch(x)))
        now = []
        for direction in (bi.forward_layer, bi.backward_layer):
            for s in direction.states:
                now.append(tensor(np.array(s)))
        states.append(now)
        if k in reset_after:
            bi.reset_state()
    return {
        "case": name,
        "kind": "stateful",
        "description": description,
        "generator": GENERATOR,
        "model": spec,
        "batch_shape": [batch, None, features],
        "batches": batches,
        "reset_after": reset_after,
        "outputs": outputs,
        "state_names": state_names,
        "states": states,
    }


CASES = [
    dict(name="stateful_bidirectional_lstm_concat_sequences",
         description="Bidirectional(LSTM(3, return_sequences, stateful), concat) -> Dense(2); "
                     "batch 2, 3 features; chunks of lengths [3, 2, 4]; reset after chunk 1.",
         kind="LSTM", units=3, merge_mode="concat", return_sequences=True, go_backwards=False,
         extra={}, batch=2, features=3, chunks=[3, 2, 4], reset_after=[1], dense=2, seed=1),
    dict(name="stateful_bidirectional_gru_sum_last",
         description="Bidirectional(GRU(4, reset_after=True, stateful), sum), last output; "
                     "batch 3, 2 features; chunks of lengths [2, 3, 2]; no reset.",
         kind="GRU", units=4, merge_mode="sum", return_sequences=False, go_backwards=False,
         extra={"reset_after": True}, batch=3, features=2, chunks=[2, 3, 2], reset_after=[],
         dense=0, seed=2),
    # (Keras 3.15 refuses an inner layer with go_backwards=True in Bidirectional.)
    dict(name="stateful_bidirectional_simple_rnn_mul_sequences",
         description="Bidirectional(SimpleRNN(3, return_sequences, stateful), mul); batch 2, "
                     "2 features; chunks of lengths [2, 2, 3]; reset after chunk 0.",
         kind="SimpleRNN", units=3, merge_mode="mul", return_sequences=True, go_backwards=False,
         extra={}, batch=2, features=2, chunks=[2, 2, 3], reset_after=[0], dense=0, seed=3),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for c in CASES:
        data = case(**c)
        path = os.path.join(OUT, c["name"] + ".json")
        with open(path, "w") as f:
            json.dump(data, f, separators=(",", ":"))
            f.write("\n")
        print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
