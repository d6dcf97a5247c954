#!/usr/bin/env bash
# Rolling plugin update across a fleet of wasmgate instances, one at a time.
#
#   deploy/rolling-update.sh PLUGIN NEW_MODULE DEST@ADDR [DEST@ADDR ...]
#
# For each instance in turn: copies NEW_MODULE next to DEST and renames it into place (an atomic
# replace the instance's watcher sees; instances run with `--watch` or `[server] watch = true`),
# then polls http://ADDR/metrics until the instance reports the new module's SHA-256 for PLUGIN
# (`wasmgate_plugin_info{plugin="PLUGIN",hash="..."}`). Only then does it move on, so at most one
# instance is between versions at any time. An instance that does not confirm within
# ROLL_TIMEOUT seconds (default 30) stops the roll with exit status 1, leaving the rest untouched.
#
# With SIGHUP instead of watching: set ROLL_SIGHUP_PIDS="pid1 pid2 ..." in instance order.
set -euo pipefail

if (( $# < 3 )); then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
plugin=$1 module=$2
shift 2
[[ -f $module ]] || { echo "rolling-update: no such module: $module" >&2; exit 2; }
hash=$(sha256sum "$module" | cut -d' ' -f1)
timeout=${ROLL_TIMEOUT:-30}
read -r -a pids <<< "${ROLL_SIGHUP_PIDS:-}"

i=0
for instance in "$@"; do
  dest=${instance%@*} addr=${instance##*@}
  tmp="$(dirname "$dest")/.$(basename "$dest").rolling-$$"
  cp "$module" "$tmp"
  mv -f "$tmp" "$dest"
  if (( ${#pids[@]} > i )); then kill -HUP "${pids[$i]}"; fi
  started=$(date +%s)
  until curl -fsS "http://$addr/metrics" 2>/dev/null | grep -qF "wasmgate_plugin_info{plugin=\"$plugin\",hash=\"$hash\"}"; do
    if (( $(date +%s) - started >= timeout )); then
      echo "rolling-update: $addr did not serve $plugin $hash within ${timeout}s; stopping the roll" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "rolling-update: $addr serves $plugin ${hash:0:12} ($(( $(date +%s) - started ))s)"
  i=$((i + 1))
done
echo "rolling-update: all $# instances serve $plugin ${hash:0:12}"
