#!/usr/bin/env bash
# Runs golora's benchmarks and their PyTorch twin (tools/bench_torch.py) side
# by side on this machine and prints, for each configuration, golora's and
# PyTorch's figures and the ratio golora/PyTorch.
#
#   scripts/bench-compare.sh [-c "tiny small gpt2-124M"] [-r ROUNDS] [-t THREADS] [-o OUT.jsonl]
#
#   -c  configurations (default "tiny small"; gpt2-124M and the Llama shape
#       smollm2-135M add minutes a round)
#   -r  rounds (default 3); the table shows the median of the rounds, and
#       golora and PyTorch alternate which goes first
#   -t  threads for both sides (default: the number of CPUs): GOMAXPROCS for
#       golora, torch.set_num_threads for PyTorch (with OMP_WAIT_POLICY=PASSIVE,
#       PyTorch's faster setting on a busy machine)
#   -o  also write every raw row as JSON lines to this file
#
# golora's training throughput comes from `golora bench --json` (one process
# per configuration), its latencies from package benchmarks' BenchmarkLatency
# (base, unmerged and merged models run in turn in one process, so that drift
# cannot bias their comparison; PyTorch's --mode latency does the same) and
# its peak RSS from BenchmarkTrain (one process per training mode, once).
# PyTorch runs one process per training row. golora is built with -tags
# openblas when OpenBLAS is installed (scripts/setup.sh), else with gonum's
# pure-Go BLAS. PyTorch comes from python3 (PYTHON overrides), which must
# import torch.
set -euo pipefail
cd "$(dirname "$0")/.."

configs="tiny small" rounds=3 threads=$(nproc) out=""
while getopts "c:r:t:o:h" opt; do
  case $opt in
    c) configs=$OPTARG ;;
    r) rounds=$OPTARG ;;
    t) threads=$OPTARG ;;
    o) out=$OPTARG ;;
    *) sed -n '2,25p' "$0"; exit 2 ;;
  esac
done

py=${PYTHON:-}
if [ -z "$py" ]; then
  for cand in python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import torch' 2>/dev/null; then py=$cand; break; fi
  done
fi
[ -n "$py" ] || { echo "bench-compare: no python3 that imports torch (set PYTHON)" >&2; exit 1; }

tags=()
case "$(ldconfig -p 2>/dev/null || true)" in *libopenblas*) tags=(-tags openblas) ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build "${tags[@]}" -o "$work/golora" ./cmd/golora
go test -c "${tags[@]}" -o "$work/bench.test" ./benchmarks
rows="$work/rows.jsonl"

# passes CONFIG: batch-1 forward passes per latency figure
passes() {
  case $1 in tiny) echo 200 ;; small) echo 60 ;; *) echo 8 ;; esac
}

# golora_train CONFIG: the training rows of `golora bench --json`.
golora_train() {
  GOMAXPROCS=$threads "$work/golora" bench --configs "$1" --latency-runs 1 --json 2>/dev/null | "$py" -c '
import json, sys
threads = int(sys.argv[1])
for c in json.load(sys.stdin)["configs"]:
    for mode in ("lora", "full"):
        print(json.dumps({"side": "golora", "config": c["name"], "mode": mode, "threads": threads,
                          "tokens_per_sec": c[mode + "_tokens_per_sec"], "ms_per_step": c[mode + "_ms_per_step"],
                          "peak_heap_mib": c[mode + "_peak_heap_mib"]}))
' "$threads"
}

# golora_latency CONFIG: BenchmarkLatency, the three models in turn in one process.
golora_latency() {
  GOMAXPROCS=$threads "$work/bench.test" -test.run '^$' -test.bench "^BenchmarkLatency/$1\$" \
    -test.benchtime "$(passes "$1")x" | "$py" -c '
import json, sys
cfg, threads = sys.argv[1], int(sys.argv[2])
for line in sys.stdin:
    f = line.split()
    if line.startswith("Benchmark"):
        for mode in ("base", "unmerged", "merged"):
            ms = float(f[f.index(mode + "-ms") - 1])
            print(json.dumps({"side": "golora", "config": cfg, "mode": mode, "threads": threads, "ms_per_pass": ms}))
' "$1" "$threads"
}

# golora_rss CONFIG MODE: the peak RSS of one training run in its own process.
golora_rss() {
  GOMAXPROCS=$threads "$work/bench.test" -test.run '^$' -test.bench "^BenchmarkTrain/$1/$2\$" -test.benchtime 2x |
    "$py" -c '
import json, sys
for line in sys.stdin:
    f = line.split()
    if line.startswith("Benchmark") and "peak-RSS-MiB" in f:
        rss = float(f[f.index("peak-RSS-MiB") - 1])
        print(json.dumps({"side": "golora", "config": sys.argv[1], "mode": sys.argv[2], "peak_rss_mib": rss}))
' "$1" "$2"
}

# torch_rows CONFIG: training rows (one process each) and the latency rows.
torch_rows() {
  local mode
  for mode in lora full; do
    OMP_WAIT_POLICY=PASSIVE "$py" tools/bench_torch.py --config "$1" --mode $mode --threads "$threads"
  done
  OMP_WAIT_POLICY=PASSIVE "$py" tools/bench_torch.py --config "$1" --mode latency --threads "$threads" \
    --steps "$(passes "$1")"
}

golora_rows() { golora_train "$1"; golora_latency "$1"; }

tag_pytorch() { "$py" -c 'import json, sys
for line in sys.stdin: print(json.dumps(dict(json.loads(line), side="pytorch")))'; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; threads $threads"
echo "golora:  $(go version | cut -d' ' -f3), BLAS $([ ${#tags[@]} -gt 0 ] && echo openblas || echo gonum)"
echo "pytorch: $("$py" -c 'import torch; print(torch.__version__)')"
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  for cfg in $configs; do
    echo "round $r/$rounds: $cfg" >&2
    if [ $((r % 2)) -eq 1 ]; then
      golora_rows "$cfg" >>"$rows"; torch_rows "$cfg" | tag_pytorch >>"$rows"
    else
      torch_rows "$cfg" | tag_pytorch >>"$rows"; golora_rows "$cfg" >>"$rows"
    fi
  done
done
for cfg in $configs; do
  echo "peak RSS: $cfg" >&2
  for mode in lora full; do golora_rss "$cfg" "$mode" >>"$rows"; done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -z "$out" ] || cp "$rows" "$out"

"$py" - "$rows" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(cfg, mode, side, key):
    v = [r[key] for r in rows if r["config"] == cfg and r["mode"] == mode and r["side"] == side and key in r]
    return statistics.median(v) if v else float("nan")
configs = list(dict.fromkeys(r["config"] for r in rows))
metrics = [("lora", "tokens_per_sec", "LoRA training tokens/s"),
           ("full", "tokens_per_sec", "full FT training tokens/s"),
           ("lora", "peak_rss_mib", "LoRA training peak RSS MiB"),
           ("full", "peak_rss_mib", "full FT training peak RSS MiB"),
           ("base", "ms_per_pass", "inference ms, base"),
           ("unmerged", "ms_per_pass", "inference ms, unmerged LoRA"),
           ("merged", "ms_per_pass", "inference ms, merged LoRA")]
print()
print("| config | measure | golora | PyTorch | golora/PyTorch |")
print("|---|---|---:|---:|---:|")
for cfg in configs:
    for mode, key, label in metrics:
        g, t = med(cfg, mode, "golora", key), med(cfg, mode, "pytorch", key)
        print(f"| {cfg} | {label} | {g:,.2f} | {t:,.2f} | {g / t:.2f} |")
print()
print("Within each side (medians):")
for cfg in configs:
    for side in ("golora", "pytorch"):
        lora_ms, full_ms = med(cfg, "lora", side, "ms_per_step"), med(cfg, "full", side, "ms_per_step")
        lr, fr = med(cfg, "lora", side, "peak_rss_mib"), med(cfg, "full", side, "peak_rss_mib")
        b, u, m = (med(cfg, x, side, "ms_per_pass") for x in ("base", "unmerged", "merged"))
        line = (f"  {cfg} {side}: LoRA step {full_ms / lora_ms:.2f}x faster than full FT; "
                f"LoRA peak RSS {lr / fr:.0%} of full FT's; ")
        if side == "golora":
            lh, fh = med(cfg, "lora", side, "peak_heap_mib"), med(cfg, "full", side, "peak_heap_mib")
            line += f"peak Go heap {lh / fh:.0%}; "
        line += f"inference unmerged {u / b - 1:+.1%}, merged {m / b - 1:+.1%} vs base"
        print(line)
EOF
