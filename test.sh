#!/usr/bin/env bash
# Runs every test (unit, property, doc, integration, the plugins' own), installing first what a
# fresh machine lacks: the wasm32-wasip1 target (the sample plugins) and nginx (the load-balancer
# test). Extra arguments go to `cargo test`.
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
exec cargo test --workspace "$@"
