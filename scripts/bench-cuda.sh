#!/usr/bin/env bash
# The CUDA measurements of docs/benchmarks.md for one weight type, on a
# machine with the lumen binary and a backend directory (make cuda's
# bin/lib, or build-cuda.sh's output from a make cuda-src tarball); it
# needs no Go. Everything it prints also goes to REPORT.
#
#   scripts/bench-cuda.sh f16|q8_0 LUMEN BACKEND_DIR WORK_DIR REPORT
#
# In order: the devices lumen sees; the GPU's copy bandwidth (PyTorch, if
# installed); a generated ~1.1B-parameter model
# (preset 1b, context 16384 so that 32 slots get 512 tokens each) and its
# tensor bytes; `lumen generate` (256 tokens, greedy); `lumen bench engine`
# at 1, 8 and 32 sequences; `lumen serve` with 32 slots and
# `lumen bench serve` at concurrency 1, 8 and 32 (128-token prompts,
# 128 new tokens, greedy, gRPC streaming).
#
# Environment: GPU_LAYERS (default all; 0 runs the same steps on the CPU,
# which is how the script is checked without a GPU), PRESET (default 1b),
# THREADS (CPU threads, default 8), PORT (gRPC, default 19090).
set -euo pipefail

[ $# -eq 5 ] || { echo "usage: $0 f16|q8_0 LUMEN BACKEND_DIR WORK_DIR REPORT" >&2; exit 2; }
type=$1 lumen=$2 lib=$3 work=$4 report=$5
layers=${GPU_LAYERS:-all} preset=${PRESET:-1b} threads=${THREADS:-8} port=${PORT:-19090}
mkdir -p "$work"
: >"$report"
step() { echo "== $*" | tee -a "$report"; }
load=(--backend-dir "$lib" --gpu-layers "$layers" --threads "$threads")

step "devices"
"$lumen" devices --backend-dir "$lib" 2>&1 | tee -a "$report"

model=$work/$preset-$type.gguf
# The memory-bandwidth bound needs the device's bandwidth: a large
# device-to-device copy through PyTorch where it is installed (bytes read
# plus bytes written, per second).
if [ "$layers" != 0 ] && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
	step "device copy bandwidth (PyTorch)"
	python3 - <<'PY' 2>&1 | tee -a "$report"
import time, torch
x = torch.empty(4 << 30, dtype=torch.uint8, device="cuda")
y = torch.empty_like(x)
for _ in range(3):
    y.copy_(x)
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(20):
    y.copy_(x)
torch.cuda.synchronize()
dt = (time.perf_counter() - t) / 20
print(f"{torch.cuda.get_device_name()}: {2 * x.numel() / dt / 1e12:.2f} TB/s (read + write, 4 GiB copies)")
PY
fi

step "model $model"
if [ ! -f "$model" ]; then
	"$lumen" model synth --out "$model" --preset "$preset" --type "$type" --ctx 16384 2>&1 | tail -1 | tee -a "$report"
fi
"$lumen" model info "$model" 2>&1 | grep -E 'parameters|file size|layers' | tee -a "$report"
"$lumen" model info --json "$model" | grep -E '"(TensorBytes|ParamCount)"' | tee -a "$report"

step "generate (256 tokens, greedy)"
"$lumen" generate "${load[@]}" --model "$model" --ctx-size 2048 --prompt "Once upon a time" \
	--max-tokens 256 --temperature 0 2>&1 >/dev/null | grep -v '^loading model' | tee -a "$report"

step "bench engine"
"$lumen" bench engine "${load[@]}" --model "$model" --ctx-size 16384 --sequences 1,8,32 \
	--steps 64 --prompt-tokens 512 2>&1 | grep -v '^loading model' | tee -a "$report"

step "serve + bench serve"
log=$work/serve-$type.log
"$lumen" serve "${load[@]}" --model "$model" --parallel 32 --ctx-size 16384 \
	--http-addr 127.0.0.1:0 --grpc-addr "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
	if grep -q 'msg=serving' "$log"; then break; fi
	if ! kill -0 "$server" 2>/dev/null; then cat "$log" >&2; echo "server exited" >&2; exit 1; fi
	sleep 0.5
done
grep 'msg=serving' "$log" | tee -a "$report"
for c in 1 8 32; do
	step "bench serve --concurrency $c"
	"$lumen" bench serve --addr "127.0.0.1:$port" --concurrency "$c" --requests $((c < 4 ? 16 : 8 * c)) \
		--prompt-tokens 128 --max-tokens 128 --temperature 0 2>&1 | tee -a "$report"
done
kill -TERM "$server"
wait "$server" || true
trap - EXIT
step "done"
