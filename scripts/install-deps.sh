#!/usr/bin/env bash
# Installs the Debian 12 packages llmc needs to build and test.
# Usage: scripts/install-deps.sh   (as root, or with sudo available)
set -euo pipefail
pkgs=(
  cmake make pkg-config
  llvm-19-dev clang-19 lld-19 llvm-19-tools   # compiler: LLVM C API, kernel bitcode, linker, FileCheck
  libclang-rt-19-dev                          # tests: libFuzzer and sanitizer runtimes for clang-19
  libcjson-dev                                # JSON (model.json, metadata, config.json)
  libffi-dev                                  # llmc invoke: call entry points by signature
  libpcre2-dev                                # tokenizers: pre-tokenizer regexes (Unicode properties)
  libutf8proc-dev                             # tokenizers: Unicode normalisation (NFC/NFKC)
  libmicrohttpd-dev                           # llmc serve: the HTTP server
  libcurl4-openssl-dev                        # llmc bench-serve: the HTTP client
  python3                                     # test drivers compare logits files
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The serving tests drive llmc serve with the official `openai` npm package
# (tests/serve/package-lock.json); Node.js and npm come from Debian unless a
# node is already installed.
if ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
