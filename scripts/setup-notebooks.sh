#!/usr/bin/env bash
# Installs Jupyter (Debian packages), Graphviz (the quickstart draws a graph with dot)
# and a gophernotes kernel that works on Go 1.26, then registers it as the
# "gophernotes" kernelspec. Safe to run again.
#
# The kernel runs with GOPROXY=off: gomacro turns each import cell into a scratch
# module and "go get"s it; golora itself comes through a local replace, and every
# other module must already be in the module cache (run "go mod download" first).
#
# Stock gophernotes v0.7.5 dies at start-up on Go 1.26 (its 2022 gomacro cannot load
# Go 1.26's standard library), so the kernel is built inside a scratch module with a
# 2024 gomacro, GODEBUG=gotypesalias=0, and the JSONer proxy fix that gophernotes'
# master branch made after v0.7.5.
set -euo pipefail

need=()
for p in jupyter-nbconvert python3-nbclient python3-nbconvert python3-ipykernel jupyter-client \
         jupyter-notebook gcc libc6-dev graphviz; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

gobin="$(go env GOPATH)/bin"
kernel="$gobin/gophernotes"
if [ ! -x "$kernel" ] || [ "$(cat "$kernel.golora-version" 2>/dev/null)" != "v0.7.5+gomacro-20240506+jsonfix" ]; then
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  (
    cd "$build"
    go mod init gophernotes-build >/dev/null 2>&1
    go mod edit -godebug=gotypesalias=0
    GOFLAGS=-mod=mod GONOSUMDB=github.com/cosmos72 go get \
      github.com/gopherdata/gophernotes@v0.7.5 \
      github.com/cosmos72/gomacro@v0.0.0-20240506194242-2ff796e3da10 \
      golang.org/x/tools@v0.52.0
    src=$(go list -m -f '{{.Dir}}' github.com/gopherdata/gophernotes)
    cp -r "$src" ./gophernotes
    chmod -R u+w ./gophernotes
    # The JSONer proxy must return map[string]interface{} like display.JSONer.
    sed -i -e 's/JSON_  func(interface{}) string/JSON_  func(interface{}) map[string]interface{}/' \
           -e 's/func (P \*proxy_JSONer) JSON() string {/func (P *proxy_JSONer) JSON() map[string]interface{} {/' \
           ./gophernotes/x_package.go
    grep -q 'JSON() map\[string\]interface{}' ./gophernotes/x_package.go
    go mod edit -replace github.com/gopherdata/gophernotes=./gophernotes
    GOFLAGS=-mod=mod GONOSUMDB=github.com/cosmos72 go build -o "$kernel" github.com/gopherdata/gophernotes
  )
  echo "v0.7.5+gomacro-20240506+jsonfix" > "$kernel.golora-version"
fi

# The kernel runs "go mod tidy" offline (GOPROXY=off) in a fresh module for each import
# cell, so the checksum database's answers for golora's dependencies must already be in
# the module cache: tidy a scratch module that imports the notebooks' packages once,
# online (on a fresh machine nothing else has asked the checksum database for them).
repo=$(cd "$(dirname "$0")/.." && pwd)
warm=$(mktemp -d)
(
  cd "$warm"
  go mod init notebook-sums >/dev/null 2>&1
  go mod edit -require github.com/golora/golora@v0.0.0 -replace "github.com/golora/golora=$repo"
  printf 'package main\n\nimport (\n' > main.go
  for p in graph nn nn/lora models/gpt trainers safetensors experiments notebooks/plots; do
    printf '\t_ "github.com/golora/golora/%s"\n' "$p" >> main.go
  done
  printf ')\n\nfunc main() {}\n' >> main.go
  GONOSUMDB=github.com/golora/golora go mod tidy >/dev/null
)
rm -rf "$warm"

# Register the kernelspec (user-level, so no root is needed).
spec="$(jupyter --data-dir)/kernels/gophernotes"
mkdir -p "$spec"
gcc_path=$(command -v gcc)
cat > "$spec/kernel.json" <<JSON
{
  "argv": ["$kernel", "{connection_file}"],
  "display_name": "Go (gophernotes)",
  "language": "go",
  "name": "gophernotes",
  "env": {
    "GODEBUG": "gotypesalias=0",
    "GOTOOLCHAIN": "local",
    "GOPROXY": "off",
    "GONOSUMDB": "github.com/golora/golora,github.com/cosmos72",
    "CGO_ENABLED": "1",
    "CC": "$gcc_path"
  }
}
JSON
echo "gophernotes kernel: $kernel"
