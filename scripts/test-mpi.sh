#!/usr/bin/env bash
# Builds golora with MPI (-tags mpi) and runs the multi-rank tests: the
# binding's and the trainer's test binaries under mpirun -np 2 (and the
# trainer's on 4 oversubscribed ranks), then the command-line tests, which
# start mpirun themselves (2 ranks matching one process, a killed rank,
# a batch that does not divide). Needs scripts/setup-mpi.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
# Open MPI refuses to run as root without these (CI runs as root);
# beyond 2 ranks on 2 cores it needs --oversubscribe.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -tags mpi ./...
go test -c -tags mpi -o "$tmp/mpi.test" ./internal/mpi
go test -c -tags mpi -o "$tmp/trainers.test" ./trainers
echo "--- internal/mpi under mpirun -np 2"
(cd internal/mpi && mpirun -np 2 "$tmp/mpi.test")
echo "--- trainers under mpirun -np 2"
(cd trainers && mpirun -np 2 "$tmp/trainers.test" -test.run MPI -test.v) | grep -E '^(--- |ok|PASS|FAIL)|rank [0-9]+ of'
echo "--- trainers under mpirun -np 4 --oversubscribe"
(cd trainers && mpirun -np 4 --oversubscribe "$tmp/trainers.test" -test.run MPI)
echo "--- golora under mpirun (the tests start it)"
go test -tags mpi ./internal/mpi ./trainers ./cmd/golora -run 'MPI|World|AllReduce|Broadcast|Pieces|Timeout|Launched'
