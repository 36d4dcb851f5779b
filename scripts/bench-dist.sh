#!/usr/bin/env bash
# Measures data-parallel scaling on this machine: `golora bench` (built with
# -tags mpi) for each layout of ranks × threads, the layouts taken in turn
# within each round so that the machine's drift spreads over all of them,
# and prints the median global training tokens/s of the rounds per layout,
# with the gradient bytes each step all-reduced.
#
#   scripts/bench-dist.sh [-c "tiny small"] [-r ROUNDS] [-l "1x1 1x2 2x1 4x1"] [-o OUT.jsonl]
#
#   -c  configurations (default "tiny small")
#   -r  rounds (default 3)
#   -l  layouts RANKSxTHREADS (default "1x1 1x2 2x1 4x1"); N > 1 ranks run
#       under mpirun -np N (--oversubscribe beyond the cores), 1 rank as a
#       plain process; THREADS is GOMAXPROCS per rank
#   -o  also keep every raw JSON result, one per line
#
# Needs Open MPI (scripts/setup-mpi.sh). Each configuration's batch is the
# global batch, so it must divide by every rank count.
set -euo pipefail
cd "$(dirname "$0")/.."

configs="tiny small" rounds=3 layouts="1x1 1x2 2x1 4x1" out=""
while getopts "c:r:l:o:h" opt; do
  case $opt in
    c) configs=$OPTARG ;;
    r) rounds=$OPTARG ;;
    l) layouts=$OPTARG ;;
    o) out=$OPTARG ;;
    *) sed -n '2,19p' "$0"; exit 2 ;;
  esac
done
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags mpi -o "$tmp/golora" ./cmd/golora
raw="$tmp/raw.jsonl"
cfgs=$(echo "$configs" | tr ' ' ',')
for ((r = 1; r <= rounds; r++)); do
  for l in $layouts; do
    n=${l%x*} th=${l#*x}
    echo "round $r: $n rank(s) × $th thread(s)" >&2
    if [ "$n" -eq 1 ]; then
      "$tmp/golora" bench --configs "$cfgs" --threads "$th" --latency-runs 1 --json >"$tmp/one.json"
    else
      mpirun -np "$n" --oversubscribe "$tmp/golora" bench --configs "$cfgs" --threads "$th" --json >"$tmp/one.json"
    fi
    python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$tmp/one.json" >>"$raw"
  done
done
[ -n "$out" ] && cp "$raw" "$out"
python3 - "$raw" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    res = json.loads(line)
    for c in res["configs"]:
        key = (c["name"], res["ranks"], res["threads"])
        rows.setdefault(key, []).append(c)
print("| config | ranks × threads | LoRA tokens/s, median (min–max) | full tokens/s, median (min–max) | LoRA bytes/step | full bytes/step |")
print("|---|---|---:|---:|---:|---:|")
for (name, ranks, threads), cs in rows.items():
    def med(k):
        v = [c[k] for c in cs]
        return f"{statistics.median(v):,.0f} ({min(v):,.0f}–{max(v):,.0f})"
    lb = cs[0].get("lora_allreduced_bytes_per_step", 0)
    fb = cs[0].get("full_allreduced_bytes_per_step", 0)
    print(f"| {name} | {ranks} × {threads} | {med('lora_tokens_per_sec')} | {med('full_tokens_per_sec')} | {lb:,} | {fb:,} |")
print(f"\nmedian of {len(next(iter(rows.values())))} rounds per row")
PY
