#!/usr/bin/env bash
# Installs the system packages golora uses beyond Go itself: OpenBLAS for the
# optional cgo BLAS (build tag "openblas"), Open MPI for data-parallel
# training (build tag "mpi", scripts/setup-mpi.sh), and tmux for the test that
# drives golora chat in a terminal. Safe to run again.
set -euo pipefail
need=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
dpkg -s gcc >/dev/null 2>&1 || need+=(gcc)
dpkg -s tmux >/dev/null 2>&1 || need+=(tmux) # golora chat's terminal test drives it in tmux
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
bash "$(dirname "$0")/setup-mpi.sh"
