#!/usr/bin/env python3
"""ONNX Runtime's time per batch on an exported rnnkit model (next to rnnkit's own
`predict` time from `cargo run --release --example throughput -- ... --mode infer --onnx
OUT.onnx`):

    python tools/onnx_bench.py OUT.onnx --batch 64 --seq 50 --input 32 [--threads 2]

Prints `ms_per_step=<median> framework=onnxruntime` (median of 7 rounds of --steps runs).
"""
import argparse
import time

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--batch", type=int, required=True)
p.add_argument("--seq", type=int, required=True)
p.add_argument("--input", type=int, required=True)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=100)
a = p.parse_args()
opts = ort.SessionOptions()
opts.intra_op_num_threads = a.threads
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).standard_normal((a.batch, a.seq, a.input)).astype(np.float32)
name = sess.get_inputs()[0].name
for _ in range(10):
    sess.run(None, {name: x})
rounds = []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(a.steps):
        sess.run(None, {name: x})
    rounds.append((time.perf_counter() - t) * 1e3 / a.steps)
print(f"ms_per_step={sorted(rounds)[3]:.4f} framework=onnxruntime onnxruntime={ort.__version__}")
