#!/usr/bin/env bash
# The README's second command: install what is missing, build, and run every
# test: unit and loopback tests (release build), the same under ASan+UBSan,
# the formatting check, a bounded fuzzing run, and the benchmark's smoke mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)
# Each step line carries the time since the start, so a slow step shows in
# CI's log (the whole command must stay under 40 minutes on 2 cores).
step() { printf '\n==== [%dm%02ds] %s ====\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "format check (clang-format, Google style)"
mapfile -t sources < <(git ls-files '*.cc' '*.h')
clang-format --dry-run -Werror "${sources[@]}"

step "build (RelWithDebInfo)"
BUILD_DIR=build scripts/build.sh
step "tests"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 900

step "VM appliance and packaging (image/): package check, boot test under qemu"
image/test-package.sh
timeout 900 image/test-boot.sh --bin build/spamsink

step "build with ASan+UBSan"
# Line tables only (-g1): the sanitizers' reports keep file:line; about 10 %
# less compile time than full debug info.
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DSPAMSINK_SANITIZE=ON \
  -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCMAKE_C_FLAGS_DEBUG=-g1
step "tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 1800 \
  -E "${ASAN_EXCLUDE:-netns_|differential_}"
# The differential suites replay ~600 dialogues against real Postfix and
# Exim to compare replies; the session engine they drive is covered under
# ASan by its own tests and fuzzed by session_fuzz, so by default they run
# in the release build only (about 1.5 min saved; ASAN_EXCLUDE=netns_ runs
# them under ASan too).

step "fuzz every parser (libFuzzer, bounded: FUZZ_SECONDS each, nproc at once)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPAMSINK_FUZZ=ON >/dev/null
fuzzers=(session_fuzz bdat_fuzz command_fuzz proxy_fuzz config_fuzz api_fuzz dns_fuzz)
cmake --build build-fuzz -j"$jobs" --target "${fuzzers[@]}"
# Each fuzzer is one process on one core: they run $jobs at a time, each for
# FUZZ_SECONDS (60 by default), so seven cost four minutes on two cores.
declare -A fuzzing=()
fuzz_failed=""
reap_fuzzer() {
  local pid="" rc=0
  wait -n -p pid "${!fuzzing[@]}" || rc=$?
  local f=${fuzzing[$pid]}
  unset "fuzzing[$pid]"
  echo "-- $f"
  if ((rc != 0)); then
    tail -60 "build-fuzz/$f.log"
    echo "$f found a crash: the input is in the log above (crash-*)" >&2
    fuzz_failed="$fuzz_failed $f"
  fi
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)" "build-fuzz/$f.log" || true
}
for f in "${fuzzers[@]}"; do
  name=${f%_fuzz}
  mkdir -p "build-fuzz/corpus/$name"
  build-fuzz/$f -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/$f-" \
    "build-fuzz/corpus/$name" "fuzz/corpus/$name" >"build-fuzz/$f.log" 2>&1 &
  fuzzing[$!]=$f
  while ((${#fuzzing[@]} >= jobs)); do reap_fuzzer; done
done
while ((${#fuzzing[@]} > 0)); do reap_fuzzer; done
[[ -z $fuzz_failed ]] || exit 1

if [[ -f bench/run.py ]]; then
  step "benchmark smoke run (checks the benchmark works; not a measurement)"
  /usr/bin/python3 bench/run.py --smoke --no-write  # keep docs/BENCHMARKS.md
fi
step "soak: the binary under mixed hostile load (SOAK_SECONDS, default 120)"
/usr/bin/python3 bench/soak.py --seconds "${SOAK_SECONDS:-120}"
step "soak under ASan+UBSan (shorter)"
# Under ASan the soak checks crashes, sanitizer reports, descriptors,
# threads and that every session got its replies; RSS is not meaningful
# (ASan's quarantine holds freed memory), so the release soak above is the
# one that bounds its slope.
ASAN_OPTIONS=detect_leaks=1 /usr/bin/python3 bench/soak.py --build build-asan \
  --seconds "${SOAK_ASAN_SECONDS:-45}" --max-rss-slope 100000

step "export memory (EXPORT_SOURCES, 300,000 by default; figures, not a gate)"
# docs/BENCHMARKS*.md's figures are at 1,000,000 and 10,000,000 sources:
# EXPORT_SOURCES=1000000 scripts/test.sh, or build/export_bench directly.
build/export_bench --sources "${EXPORT_SOURCES:-300000}" \
  --db build/export-bench.db

echo
echo "all tests passed in $((SECONDS / 60))m$((SECONDS % 60))s"
