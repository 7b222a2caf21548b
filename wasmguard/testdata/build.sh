#!/bin/sh
# Rebuilds the hostile and test guests from their WebAssembly text with
# wabt's wat2wasm (Debian package "wabt"). Run by `go generate ./wasmguard`.
set -eu
cd "$(dirname "$0")"
for f in *.wat; do
	flags=""
	[ "$f" = twomemories.wat ] && flags=--enable-multi-memory
	wat2wasm $flags "$f" -o "${f%.wat}.wasm"
done
