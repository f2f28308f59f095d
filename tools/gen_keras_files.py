#!/usr/bin/env python3
"""Writes small Keras 3 `.keras` files and Keras's own predictions on a fixed input, the
ground truth of rnnkit's `.keras` reader and of the ONNX export from it:

    python tools/gen_keras_files.py OUT_DIR

For each model NAME: `NAME.keras` and the case `NAME.json` (`{"kind": "keras_file", "name",
"file": "NAME.keras", "inputs": [T...], "outputs": [T...]}`,
`T = {"shape", "data", "ids"}`; float64 values of Keras's float32 computation). Needs
keras (tensorflow-cpu) and numpy.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers as L  # noqa: E402


def tensor(a, ids=False):
    a = np.asarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "data": [float(v) for v in a.ravel()], "ids": ids}


def randomise(model, rng):
    # Non-zero biases and varied weights, so every gate and bias counts.
    model.set_weights([rng.uniform(-0.6, 0.6, size=w.shape).astype(w.dtype) for w in model.get_weights()])


def models():
    out = {}
    out["seq_lstm_stack"] = keras.Sequential([
        keras.Input((6, 3)), L.LSTM(5, return_sequences=True), L.LSTM(4), L.Dense(2, activation="softmax")])
    out["seq_bigru_sum_backwards"] = keras.Sequential([
        keras.Input((5, 2)), L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
        L.SimpleRNN(4, go_backwards=True, activation="relu"), L.Dense(1)])
    out["seq_embedding_gru_cho"] = keras.Sequential([
        keras.Input((7,), dtype="int32"), L.Embedding(11, 4), L.GRU(5, reset_after=False, return_sequences=True),
        L.GlobalAveragePooling1D(), L.Dense(3, activation="sigmoid")])
    out["seq_dropout_stateless"] = keras.Sequential([
        keras.Input((4, 3)), L.LSTM(6, dropout=0.2, recurrent_dropout=0.1, return_sequences=True),
        L.Dropout(0.3), L.Bidirectional(L.LSTM(3), merge_mode="concat"), L.RepeatVector(2),
        L.SimpleRNN(2, return_sequences=True)])
    x = keras.Input((None, 3), name="x")
    enc, h, c = L.LSTM(4, return_state=True, name="encoder")(x)
    dec = L.LSTM(4, return_sequences=True, name="decoder")(x, initial_state=[h, c])
    y = L.Dense(2, name="head")(dec)
    out["fun_encoder_decoder"] = keras.Model(x, y)
    a = keras.Input((5, 2), name="a")
    b = keras.Input((5, 2), name="b")
    shared = L.GRU(3, return_sequences=True, name="shared")
    ha, hb = shared(a), shared(b)
    att = L.Attention(use_scale=True, name="att")([ha, hb])
    cat = L.Concatenate(name="cat")([att, ha])
    out["fun_shared_attention"] = keras.Model([a, b], [L.Dense(1, name="out")(cat), L.Add(name="sum")([ha, hb])])
    out["seq_masking_lstm_sequences"] = keras.Sequential([
        keras.Input((6, 2)), L.Masking(0.0), L.LSTM(4, return_sequences=True), L.Dense(2)])
    ids = keras.Input((7,), dtype="int32", name="ids")
    e = L.Embedding(9, 3, mask_zero=True, name="emb")(ids)
    bi = L.Bidirectional(L.GRU(3, return_sequences=True), name="bi")(e)
    pooled = L.GlobalAveragePooling1D(name="pool")(bi)
    out["fun_mask_zero_bigru_pool"] = keras.Model(ids, L.Dense(1, name="head")(pooled))
    out["seq_time_distributed_dense"] = keras.Sequential([
        keras.Input((5, 3)), L.GRU(4, return_sequences=True), L.TimeDistributed(L.Dense(2, activation="tanh"))])
    out["seq_stateful_gru_unrolled_rnn"] = keras.Sequential([
        keras.Input((5, 3), batch_size=3), L.GRU(4, stateful=True, return_sequences=True),
        L.SimpleRNN(3, unroll=True), L.Dense(1)])
    x = keras.Input((None, 4), name="x")
    y = L.LSTM(3, return_sequences=True, go_backwards=True, name="back")(x)
    out["fun_backwards_softmax"] = keras.Model(x, L.Dense(2, activation="softmax", name="probs")(y))
    inp = keras.Input((6, 2), name="inp")
    o, fh, fc, bh, bc = L.Bidirectional(L.LSTM(3, return_state=True), name="enc")(inp)
    cat = L.Concatenate(name="hs")([fh, bh])
    out["fun_bilstm_returned_states"] = keras.Model(inp, [o, L.Dense(1, name="y")(cat)])
    out["seq_input_shape_kwarg"] = keras.Sequential([
        L.LSTM(4, input_shape=(7, 2), use_bias=False, return_sequences=True), L.Dropout(0.5),
        L.Dense(3, activation="softmax")])
    out["seq_bi_first_relu_rnn"] = keras.Sequential([
        keras.Input((4, 3)),
        L.Bidirectional(L.SimpleRNN(3, activation="relu", return_sequences=True), merge_mode="mul"),
        L.GRU(2)])
    ids = keras.Input((None,), dtype="int64", name="tokens")
    h = L.GRU(6, return_sequences=True, name="gru")(L.Embedding(11, 5, name="emb")(ids))
    p = L.GlobalAveragePooling1D(name="pool")(L.Dropout(0.2, name="drop")(h))
    out["fun_ids_gru_pool_two_heads"] = keras.Model(
        ids, [L.Dense(2, activation="softmax", name="cls")(p), L.Dense(1, name="reg")(p)])
    # PyTorch's nn.LSTM has no relu: its export must be refused (ONNX takes it).
    out["seq_lstm_relu_activation"] = keras.Sequential([keras.Input((5, 2)), L.LSTM(3, activation="relu"), L.Dense(1)])
    return out


# Post-padded inputs (valid steps first) for the masked models: lengths per sample.
PADDED = {"seq_masking_lstm_sequences": [6, 3, 1], "fun_mask_zero_bigru_pool": [7, 4, 2]}


def main(dirname):
    os.makedirs(dirname, exist_ok=True)
    rng = np.random.default_rng(7)
    for name, model in models().items():
        keras.utils.set_random_seed(1)
        randomise(model, rng)
        xs = []
        for t in model.inputs:
            shape = [t.shape[0] or 3] + [d if d is not None else 6 for d in t.shape[1:]]
            if "int" in str(t.dtype):
                x, ids = rng.integers(1 if name in PADDED else 0, 9, size=shape), True
            else:
                x, ids = rng.uniform(-1, 1, size=shape), False
            for i, n in enumerate(PADDED.get(name, [])):
                x[i, n:] = 0
            xs.append((x, ids))
        ys = model.predict([x.astype(t.dtype) for (x, _), t in zip(xs, model.inputs)], verbose=0)
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        model.save(os.path.join(dirname, f"{name}.keras"))
        with open(os.path.join(dirname, f"{name}.json"), "w") as f:
            json.dump({"kind": "keras_file", "name": name, "file": f"{name}.keras",
                       "inputs": [tensor(x, ids) for x, ids in xs], "outputs": [tensor(y) for y in ys]}, f)
        print(f"wrote {name}")


if __name__ == "__main__":
    main(sys.argv[1])
