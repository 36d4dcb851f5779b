#!/usr/bin/env bash
# Executes every notebook in notebooks/ headlessly with the gophernotes kernel and
# fails if any cell errors (nbconvert exits non-zero on a cell error).
#
#   scripts/run-notebooks.sh            run into a temporary folder (CI)
#   scripts/run-notebooks.sh --inplace  run and save the outputs into notebooks/
#                                       (what is committed, so readers see results)
set -euo pipefail
cd "$(dirname "$0")/.."
inplace=0
[ "${1:-}" = "--inplace" ] && inplace=1
export PYDEVD_DISABLE_FILE_VALIDATION=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
shopt -s nullglob
for nb in notebooks/*.ipynb; do
  name=$(basename "$nb")
  start=$(date +%s)
  # Run from notebooks/ so the notebooks' relative imports ("../graph") resolve.
  if (cd notebooks && jupyter nbconvert --to notebook --execute \
        --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=gophernotes \
        --output-dir "$out" "$name" >"$out/$name.log" 2>&1); then
    echo "ok   $name ($(( $(date +%s) - start ))s)"
    [ $inplace -eq 1 ] && cp "$out/$name" "$nb"
  else
    echo "FAIL $name ($(( $(date +%s) - start ))s)"
    grep -v '^zmq4:' "$out/$name.log" | tail -30
    status=1
  fi
done
exit $status
