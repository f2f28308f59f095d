"""Regenerates keras_export_graph.{safetensors,json}: a Keras functional seq2seq model with
attention exported with tools/keras_export.py, which tests/io_graph.rs loads and checks
against Keras's own output.

    python tests/data/make_keras_graph.py      # needs tensorflow-cpu (Keras 3)

The model: source ids → Embedding(mask_zero) → LSTM(return_sequences, return_state); target
ids → Embedding → LSTM(initial_state = the encoder's states) → Attention([decoder,
encoder]) → Concatenate → Dense(softmax), and a second output: a Dense shared by the
encoder's final h and the decoder's pooled output (GlobalAveragePooling1D) added together.
"""
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
from keras import layers

here = os.path.dirname(os.path.abspath(__file__))
keras.utils.set_random_seed(7)
src = keras.Input((5,), dtype="int32", name="src")
tgt = keras.Input((4,), dtype="int32", name="tgt")
se = layers.Embedding(9, 6, mask_zero=True, name="src_emb")(src)
enc_out, h, c = layers.LSTM(7, return_sequences=True, return_state=True, name="enc")(se)
te = layers.Embedding(9, 6, name="tgt_emb")(tgt)
dec = layers.LSTM(7, return_sequences=True, name="dec")(te, initial_state=[h, c])
ctx = layers.Attention(use_scale=True, name="att")([dec, enc_out])
both = layers.Concatenate(name="cat")([dec, ctx])
probs = layers.Dense(9, activation="softmax", name="probs")(both)
shared = layers.Dense(3, activation="tanh", name="shared")
pooled = layers.GlobalAveragePooling1D(name="pool")(dec)
side = layers.Add(name="side")([shared(h), shared(pooled)])
model = keras.Model([src, tgt], [probs, side], name="seq2seq_attention")
rng = np.random.default_rng(7)
model.set_weights([rng.uniform(-0.5, 0.5, w.shape) + (1.0 if w.shape == () else 0.0)
                   for w in model.get_weights()])
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "graph.keras")
    model.save(path)
    subprocess.run(
        [sys.executable, os.path.join(here, "..", "..", "tools", "keras_export.py"), path,
         os.path.join(here, "keras_export_graph.safetensors"),
         "--json", os.path.join(here, "keras_export_graph.json"), "--dtype", "f64"],
        check=True,
    )
