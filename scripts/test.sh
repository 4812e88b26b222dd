#!/usr/bin/env bash
# The test command (README, .ci/run): installs dependencies, builds everything from nothing and
# runs every test.
#   1. Release build with gcc (the CUDA kernels compile too when nvcc is present) and every
#      CTest label: unit, sandbox, slow, cuda (cuda tests skip without a device).
#   2. ASan+UBSan build with clang of the unit tests and the libFuzzer targets; runs the unit
#      tests, then each fuzzer briefly on its seed corpus.
# Environment: V4_JOBS (default 2), V4_FUZZ_SECONDS (default 10), V4_SKIP_ASAN=1, V4_SKIP_SLOW=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${V4_JOBS:-2}
FUZZ_SECONDS=${V4_FUZZ_SECONDS:-10}
START=$SECONDS

bash scripts/setup.sh

# Each stage's start, in seconds since this script began: CI's budget is 30 minutes.
step() { printf '\n=== %s (at %ds) ===\n' "$*" $((SECONDS - START)); }
# The ten longest tests of a build directory, from CTest's timing file (a running average over
# the directory's runs; on CI's clean checkout, this run's times), so a test that grew shows up
# in the log of the run that made it grow.
slowest() {
  echo "longest tests (seconds):"
  awk 'NF == 3 { printf "  %8.1f  %s\n", $3, $1 }' "$1/Testing/Temporary/CTestCostData.txt" \
    2>/dev/null | sort -g -r | head -10 || true
}

step "release build (build/)"
# -g1 (functions and lines, enough for perf and backtraces) compiles about a fifth faster than -g.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  >/dev/null
ninja -C build -j"$JOBS"

step "tests: release build"
label_args=()
if [ "${V4_SKIP_SLOW:-0}" = "1" ]; then label_args=(-LE slow); fi
(cd build && ctest -j"$JOBS" --output-on-failure --timeout 900 "${label_args[@]}")
slowest build

if [ "${V4_SKIP_ASAN:-0}" != "1" ]; then
  step "ASan+UBSan build with clang (build-asan/): unit tests and fuzzers"
  # Line tables only (reports keep file:line) compile about a quarter faster than -g; -O1,
  # not -O0: at -O0 the engine and grammar tests of this stage ran 5-8x longer than the
  # compile time it saved.
  CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DCMAKE_C_FLAGS_DEBUG="-O1 -gline-tables-only" \
    -DV4_SANITIZE=ON -DV4_FUZZ=ON -DV4_ENABLE_CUDA=OFF -DV4_BUILD_BENCH=OFF >/dev/null
  # Only what this stage runs: the unit-labelled test binaries and the fuzzers.
  ninja -C build-asan -j"$JOBS" unit_tests fuzzers

  step "tests: unit label under ASan+UBSan"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # Left to the release stage, where they run too: the eight largest twin tests and the five
  # largest fast-bf16 twins (V4-width matrices of 2M to 33M weights through the scalar oracle
  # or emulation, 8 s to 1.5 minutes each under ASan; the smaller and odd-size twins cover
  # the same kernels here), the fast-bf16 golden reports (a release figure; its kernels run
  # here in its twins, invariance and session tests), the exact-numerics variants of the
  # longest chunking and session-file tests (30-36 s each under ASan; their fast-numerics
  # variants and the other boundaries run here), and the real Flash and Pro
  # layouts bound from header-only checkpoints (12 and 22 s under ASan; the same layout code
  # binds the mini checkpoints here).
  (cd build-asan && ctest -j"$JOBS" --output-on-failure --timeout 900 -L unit -LE slow \
    -E 'TwinOfTheExactKernel.*/(fp8_32768x1024|fp8_4096x8192|fp8_8192x1024|bf16_129280x256|fp4_2048x4096|fp4_4096x2048|fp8_1024x4096|fp8_512x4096)|VectorKernelIsTheEmulation.*/(fp8_1024x4096|fp8_4096x1024|fp8_512x4096|fp4_2048x4096|fp4_4096x2048)|PrefillAndDecode/.*_fast_bf16|ChunkingNeverChangesABit/mini_L130_exact|RestoreContinuesBitExactAcrossModelsAndThreadCounts/exact|HeaderOnlyTest.RealLayoutsBindAndCount/(flash|pro)')
  slowest build-asan

  step "fuzzers: ${FUZZ_SECONDS}s each under ASan+UBSan, $JOBS at a time"
  fuzz_one() {  # name: runs build-asan/fuzz/fuzz_<name> on a copy of its corpus
    local name=$1 work
    work=$(mktemp -d)
    if [ -d "fuzz/corpus/$name" ]; then cp -r "fuzz/corpus/$name/." "$work/"; fi
    # -timeout: one input that runs for 30 s is a finding (a hang on malformed input), and
    # libFuzzer checks max_total_time only between inputs.
    if "build-asan/fuzz/fuzz_$name" -max_total_time="$FUZZ_SECONDS" -timeout=30 \
         -rss_limit_mb=2048 -print_final_stats=0 -artifact_prefix="$work.crash-" "$work" \
         >"$work.log" 2>&1; then
      echo "fuzz $name: ok ($(grep -c . "$work.log") log lines)"
      rm -rf "$work" "$work.log"
    else
      echo "fuzz $name: FAILED"; tail -40 "$work.log"
      rm -rf "$work" "$work.log"
      return 1
    fi
  }
  fuzz_failed=0
  fuzz_ran=0
  running=0
  for f in build-asan/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    fuzz_ran=$((fuzz_ran + 1))
    if [ "$running" -ge "$JOBS" ]; then
      wait -n || fuzz_failed=1
      running=$((running - 1))
    fi
    fuzz_one "$(basename "$f" | sed 's/^fuzz_//')" &
    running=$((running + 1))
  done
  while [ "$running" -gt 0 ]; do
    wait -n || fuzz_failed=1
    running=$((running - 1))
  done
  [ "$fuzz_failed" -eq 0 ] || { echo "a fuzzer found a crash"; exit 1; }
  # A build that made no fuzzer (a CMake option lost, a compiler without libFuzzer) is a
  # failure, not a pass.
  expected=$(ls fuzz/*_fuzz.cpp 2>/dev/null | wc -l)
  if [ "$fuzz_ran" -lt "$expected" ] || [ "$fuzz_ran" -eq 0 ]; then
    echo "only $fuzz_ran of $expected fuzz targets were built"; exit 1
  fi
fi

step "all tests passed"
