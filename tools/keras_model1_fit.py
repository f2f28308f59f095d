"""The lecture's model 1 in Keras: SimpleRNN(20) + Dense(1), Adam, MSE, 300 epochs; prints fit time.

The Keras side of BENCHMARKS.md's model-1 row (rnnkit: cargo run --release --example linear_sequence)."""
import os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"
import numpy as np, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)
X = np.array([[[0.1*i],[0.1*i+0.1],[0.1*i+0.2]] for i in range(100)], dtype=np.float32)
Y = np.array([0.1*i+0.3 for i in range(100)], dtype=np.float32)
m = tf.keras.Sequential([tf.keras.Input((3,1)), tf.keras.layers.SimpleRNN(20), tf.keras.layers.Dense(1)])
m.compile(optimizer="adam", loss="mse")
t=time.perf_counter(); h=m.fit(X,Y,epochs=300,verbose=0); s=time.perf_counter()-t
print(f"keras model1 fit 300 epochs: {s:.2f} s, final loss {h.history['loss'][-1]:.6f}")
