#!/usr/bin/env bash
# THE test command (README "Quick start"; .ci/run executes exactly this).
#
#   1. setup       jobscripts/setup-debian.sh --no-build (installs missing packages)
#   2. build-ci    RelWithDebInfo, warnings are errors: configure, build, ctest
#   3. build-asan  Debug + AddressSanitizer + UndefinedBehaviorSanitizer +
#                  LeakSanitizer (tests/lsan.supp), warnings are errors:
#                  configure, build, ctest
#   4. memcheck    valgrind on build-ci/regmix: a tiny training and a 2-rank sweep
#                  (tests/valgrind/memcheck.sh)
#   5. build-fuzz  clang, REGMIX_FUZZ=ON: every libFuzzer harness for
#                  REGMIX_FUZZ_SECONDS each (tests/fuzz/run_fuzzers.sh)
#
# A failed setup, configure or build stops the run at once (nothing after it could
# run, and a compile error would only repeat in the second build). Failed tests do
# not: the sanitizer build still runs, so one run shows every failure. The last
# line is "run_all: N passed, N failed"; the exit status is non-zero if any phase
# or test failed.
#
# Environment: REGMIX_TEST_JOBS (ctest -j, default 1), REGMIX_TEST_TIMEOUT (seconds
# per test, default 600), REGMIX_FUZZ_SECONDS (per harness, default 60).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

# ctest -j1 by default: each unit test uses one OpenMP thread, but the MPI tests
# launch several ranks, which busy-poll while they wait. Two tests at once on the
# 2-core CI machine would oversubscribe the cores and make those tests slow and
# their timeouts flaky; the unit tests take seconds, so -j1 costs little.
test_jobs="${REGMIX_TEST_JOBS:-1}"
test_timeout="${REGMIX_TEST_TIMEOUT:-600}"
fuzz_seconds="${REGMIX_FUZZ_SECONDS:-60}"
build_jobs="$(nproc)"

# Open MPI: allow ranks > cores, avoid the CMA single-copy path that containers
# forbid (ptrace), and allow mpirun as root (CI runs as root).
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
if [[ "$(id -u)" -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1
    export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# ASAN_OPTIONS/LSAN_OPTIONS (leak checking, tests/lsan.supp) are set per test in
# tests/CMakeLists.txt; UBSan stops at the first report.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

t_start=$SECONDS
phase_no=0
phase_total=11
summary=()       # one line per phase
tests_passed=0
tests_failed=0
failed=0

hms() { printf '%02d:%02d' $(($1 / 60)) $(($1 % 60)); }

banner() {
    phase_no=$((phase_no + 1))
    phase_name="$1"
    phase_t0=$SECONDS
    printf '\n==== [%d/%d] %s  (t+%s) ====\n' "$phase_no" "$phase_total" "$phase_name" \
        "$(hms $((SECONDS - t_start)))"
}

# phase_end STATUS: records the phase's outcome and duration.
phase_end() {
    local status="$1" dt=$((SECONDS - phase_t0))
    printf -- '---- %s: %s in %ss\n' "$phase_name" "$status" "$dt"
    summary+=("$(printf '  %-24s %-10s %5ss' "$phase_name" "$status" "$dt")")
    [[ "$status" == OK ]] || failed=1
}

finish() {
    printf '\n==== summary (total %s) ====\n' "$(hms $((SECONDS - t_start)))"
    printf '%s\n' "${summary[@]}"
    if ((failed)); then
        printf 'run_all: FAILED\n'
    else
        printf 'run_all: all phases OK\n'
    fi
    printf 'run_all: %d passed, %d failed\n' "$tests_passed" "$tests_failed"
    exit "$failed"
}

# run_phase NAME CMD...: a phase that must succeed for the run to go on.
run_phase() {
    banner "$1"
    shift
    if "$@"; then
        phase_end OK
    else
        phase_end "FAILED"
        finish
    fi
}

# test_phase DIR: runs ctest in DIR; failures are counted and the run goes on.
test_phase() {
    local dir="$1" log rc=0 line total nfail
    banner "ctest $dir"
    log="$dir/ctest-run_all.log"
    ctest --test-dir "$dir" --output-on-failure --no-tests=error -j"$test_jobs" \
        --timeout "$test_timeout" </dev/null 2>&1 | tee "$log" || rc=$?
    # ctest's closing line: "100% tests passed, 0 tests failed out of 12"
    line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)"
    if [[ -n "$line" ]]; then
        nfail="$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")"
        total="$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")"
        tests_passed=$((tests_passed + total - nfail))
        tests_failed=$((tests_failed + nfail))
    fi
    if ((rc == 0)); then
        phase_end OK
    elif [[ -n "$line" ]]; then
        phase_end "FAILED($nfail)"
    else
        phase_end FAILED   # e.g. no tests found
    fi
}

printf 'run_all: %s, %s, commit %s, build -j%s, ctest -j%s, CI=%s\n' \
    "$(date -u '+%Y-%m-%d %H:%M:%SZ')" "$(uname -m)" \
    "$(git -C "$repo_root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
    "$build_jobs" "$test_jobs" "${CI:-false}"

run_phase "setup (packages)" bash "$repo_root/jobscripts/setup-debian.sh" --no-build

run_phase "configure build-ci" cmake -S "$repo_root" -B "$repo_root/build-ci" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREGMIX_WERROR=ON -DREGMIX_SANITIZE=OFF
run_phase "build build-ci" cmake --build "$repo_root/build-ci" -j"$build_jobs"
test_phase build-ci

# Debug (-O0) for the sanitizer build: exact stack traces, and it compiles the code
# at a second optimisation level, so -Werror sees both sets of warnings.
run_phase "configure build-asan" cmake -S "$repo_root" -B "$repo_root/build-asan" \
    -DCMAKE_BUILD_TYPE=Debug -DREGMIX_WERROR=ON -DREGMIX_SANITIZE=ON
run_phase "build build-asan" cmake --build "$repo_root/build-asan" -j"$build_jobs"
test_phase build-asan

# check_phase NAME CMD...: a phase that counts as one test; the run goes on after it.
check_phase() {
    banner "$1"
    shift
    if "$@"; then
        tests_passed=$((tests_passed + 1))
        phase_end OK
    else
        tests_failed=$((tests_failed + 1))
        phase_end FAILED
    fi
}

check_phase "valgrind memcheck" bash "$repo_root/tests/valgrind/memcheck.sh" "$repo_root/build-ci"

# libFuzzer needs clang (jobscripts/setup-debian.sh installs clang-14 + libclang-rt-14-dev)
run_phase "configure build-fuzz" env CC=clang-14 cmake -S "$repo_root" -B "$repo_root/build-fuzz" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREGMIX_WERROR=ON -DREGMIX_FUZZ=ON
run_phase "build build-fuzz" cmake --build "$repo_root/build-fuzz" -j"$build_jobs"
check_phase "fuzz" bash "$repo_root/tests/fuzz/run_fuzzers.sh" "$repo_root/build-fuzz" "$fuzz_seconds"

finish
