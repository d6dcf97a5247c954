#!/usr/bin/env bash
# Fuzz smoke run: every cargo-fuzz target for FUZZ_SECONDS (default 30) each, starting from the
# committed seeds (fuzz/seeds/TARGET) plus whatever corpus earlier runs left in fuzz/corpus/TARGET.
# Exits non-zero on the first crash; the input is kept in fuzz/artifacts/TARGET/ (turn it into a
# regression test, see docs/security.md "Fuzzing").
#
# Long runs (to plateau), from the repository root:
#   cargo +nightly fuzz run -s none parse_request fuzz/corpus/parse_request fuzz/seeds/parse_request \
#     -- -dict=fuzz/http.dict -max_len=4096 -max_total_time=600
#   cargo +nightly fuzz run -s none guest_response fuzz/corpus/guest_response fuzz/seeds/guest_response \
#     -- -max_total_time=600
#
# Needs the nightly toolchain; installs cargo-fuzz from crates.io when missing. The targets depend
# only on the protocol and ABI crates (no wasmtime), so the first build is quick.
set -euo pipefail
cd "$(dirname "$0")"
FUZZ_SECONDS=${FUZZ_SECONDS:-30}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz smoke: the nightly toolchain is required (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

# `-s none`: no sanitizer. The code under test is safe Rust (the host's `unsafe` is all in sys.rs,
# not reached from here), so ASan would add cost and find nothing; debug assertions stay on.
cargo +nightly fuzz build -s none

run() { # run TARGET [libFuzzer flags...]
  local target=$1
  shift
  mkdir -p "corpus/$target" "artifacts/$target"
  echo "fuzz smoke: $target for ${FUZZ_SECONDS}s"
  local log status=0
  log=$(mktemp)
  cargo +nightly fuzz run -s none "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "$@" >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|ERROR|panicked|SUMMARY' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    echo "fuzz smoke: $target FAILED; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  rm -f "$log"
}

run parse_request -dict=http.dict -max_len=4096
run guest_response
echo "fuzz smoke: ok"
