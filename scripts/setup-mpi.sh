#!/usr/bin/env bash
# Installs Open MPI for golora's data-parallel training (build tag "mpi"):
# the headers and library (libopenmpi-dev), mpirun (openmpi-bin), and
# pkg-config, through which cgo finds them. Safe to run again.
set -euo pipefail
need=()
for p in libopenmpi-dev openmpi-bin pkg-config gcc libc6-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
pkg-config --exists ompi || { echo "setup-mpi: pkg-config cannot find Open MPI (ompi.pc)" >&2; exit 1; }
