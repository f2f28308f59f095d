"""Regenerates keras_export_sample.{safetensors,json}: a Keras model exported with
tools/keras_export.py, which tests/io.rs loads and checks against Keras's own output.

    python tests/data/make_keras_sample.py      # needs tensorflow-cpu (Keras 3)
"""
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
keras.utils.set_random_seed(7)
model = keras.Sequential(
    [
        keras.Input((6, 3)),
        keras.layers.Masking(0.0),
        keras.layers.Bidirectional(keras.layers.LSTM(5, return_sequences=True), merge_mode="concat"),
        keras.layers.GRU(4),
        keras.layers.Dense(2, activation="tanh"),
    ]
)
# Non-default weights, so every entry matters (zero biases would hide layout mistakes).
rng = np.random.default_rng(7)
model.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in model.get_weights()])
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "sample.keras")
    model.save(path)
    subprocess.run(
        [sys.executable, os.path.join(here, "..", "..", "tools", "keras_export.py"), path,
         os.path.join(here, "keras_export_sample.safetensors"),
         "--json", os.path.join(here, "keras_export_sample.json")],
        check=True,
    )
