#!/usr/bin/env bash
# Runs every test (unit, property, doc, integration, the plugins' own), installing first what a
# fresh machine lacks: the wasm32-wasip1 target (the sample plugins), nginx (the load-balancer
# test), clang with lld, wasi-libc and the wasm32 compiler-rt (the C plugin, plugins/hello-c) and
# redis-server (the key-value tests). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")"

if ! rustup target list --installed | grep -qx wasm32-wasip1; then
  rustup target add wasm32-wasip1
fi
if ! [[ -x /usr/sbin/nginx || -x /usr/bin/nginx ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    # Debian starts the packaged service; the tests run their own nginx.
    service nginx stop >/dev/null 2>&1 || true
  else
    echo "test.sh: nginx is missing and cannot be installed here: run \`sudo apt-get install -y nginx\`" >&2
    exit 1
  fi
fi
# The C toolchain is checked by building an empty reactor, which needs all four packages.
if ! printf 'int x;\n' | clang --target=wasm32-wasi -O2 -mexec-model=reactor -x c - -o /dev/null >/dev/null 2>&1; then
  c_packages="clang lld wasi-libc libclang-rt-14-dev-wasm32"
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $c_packages >/dev/null
  else
    echo "test.sh: clang for wasm32-wasi is missing and cannot be installed here: run \`sudo apt-get install -y $c_packages\`" >&2
    exit 1
  fi
fi
if ! command -v redis-server >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    # Debian starts the packaged service; the tests run their own redis-server.
    service redis-server stop >/dev/null 2>&1 || true
  else
    echo "test.sh: redis-server is missing and cannot be installed here: run \`sudo apt-get install -y redis-server\`" >&2
    exit 1
  fi
fi
exec cargo test --workspace "$@"
