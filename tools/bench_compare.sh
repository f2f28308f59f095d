#!/usr/bin/env bash
# The table of BENCHMARKS.md: every workload, rnnkit / PyTorch / Keras one after another,
# median of 3 runs each. Needs ../shared/bench/ref_rnn.py and a Python with torch and
# tensorflow-cpu (PYTHON=/path/to/python).
#   WHICH="rnnkit torch keras" DT=f32 bash tools/bench_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example throughput -q
PY=${PYTHON:-python3}
REF=${REF_RNN:-../shared/bench/ref_rnn.py}
W=(
"W1 rnn 32 3 1 20 400"
"W2 rnn 32 3 1 256 200"
"W3 rnn 32 16 1 10 200"
"W3 lstm 32 16 1 10 200"
"W3 gru 32 16 1 10 200"
"W4 lstm 64 50 32 128 20"
"W4 gru 64 50 32 128 20"
"W5 lstm 64 100 64 256 6"
)
med() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for w in "${W[@]}"; do
  set -- $w
  for mode in train infer; do
    line="$1 $2 $mode"
    for fw in ${WHICH:-rnnkit torch}; do
      vals=""
      for rep in 1 2 3; do
        args="--cell $2 --batch $3 --seq $4 --input $5 --hidden $6 --out 1 --mode $mode --steps $7 --warmup 3 --dtype ${DT:-f32} --threads 2"
        if [ "$fw" = rnnkit ]; then
          out=$(target/release/examples/throughput $args | tail -1)
        else
          out=$("$PY" "$REF" --framework "$fw" $args 2>/dev/null | tail -1)
        fi
        vals="$vals $(echo "$out" | sed 's/ms_per_step=\([0-9.]*\).*/\1/')"
      done
      line="$line $fw=$(echo $vals | tr ' ' '\n' | med)"
    done
    echo "$line"
  done
done
