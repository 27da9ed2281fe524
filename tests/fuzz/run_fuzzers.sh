#!/usr/bin/env bash
# Runs every libFuzzer harness of a REGMIX_FUZZ=ON build for a bounded time and fails
# when one finds a crash in regmix (tests/run_all.sh calls it; tests/README.md).
#
#   bash tests/fuzz/run_fuzzers.sh BUILD_DIR [SECONDS_PER_HARNESS]     (default 30)
#
# Each harness starts from its seeds (tests/fuzz/corpus/<name>/) and its regression
# inputs, with ASan + UBSan + LeakSanitizer (suppressions: tests/lsan.supp) and a
# scratch directory on /dev/shm when there is one. The last lines give the executions
# per harness. Findings are kept under BUILD_DIR/fuzz-work/<name>/artifacts/.
#
# The run-file and checkpoint harnesses (fuzz_runfile, fuzz_checkpoint) feed HDF5 1.10
# malformed files, and HDF5 itself reads out of bounds or loops on some of them (a known
# class of bugs, e.g. HDFGroup/hdf5 issues #4434, #5329, #5382; seen here: a memcpy of a
# corrupt length in H5HG_read, a hang in H5HG__protect). Those run in libFuzzer's fork
# mode, which goes on after a crash; every crash or hang is then replayed and classified by its
# report: inside HDF5 (the faulting or hanging frame is in libhdf5 and so is the allocation
# of the memory, if named) is counted and listed, not failed; anything else (a regmix
# frame at the fault, a regmix buffer overrun by HDF5, a violated property, a leak) fails.
set -uo pipefail

build="${1:?usage: run_fuzzers.sh BUILD_DIR [SECONDS]}"
seconds="${2:-30}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="$build/tests/fuzz"
work="$build/fuzz-work"
hdf5_harnesses=" fuzz_runfile fuzz_checkpoint "

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1"
export LSAN_OPTIONS="suppressions=$repo/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_NUM_THREADS=1
if [[ -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=/dev/shm; fi

shopt -s nullglob
harnesses=("$bin"/fuzz_*)
((${#harnesses[@]})) || { echo "run_fuzzers: no harness in $bin (configure with -DREGMIX_FUZZ=ON)"; exit 1; }

# owner FILE HARNESS: prints "hdf5" when the replayed crash is inside HDF5, else "regmix"
owner() {
    local report
    # -timeout: a hang replays as a report with the stack where it hangs
    report="$("$2" -runs=1 -timeout=10 -rss_limit_mb=2048 "$1" 2>&1)"
    # the first frame of a stack that is not the sanitizer runtime, its allocator
    # interceptors (linked into the harness), libc or libFuzzer
    first_frame() {
        grep -E '^ +#[0-9]+ ' |
            grep -v -E '__interceptor_|__asan|__sanitizer|__lsan|__ubsan|libclang_rt|/libc\.so|fuzzer::' |
            grep -v -E ' in (malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|valloc) ' |
            head -n 1
    }
    local fault alloc
    fault="$(sed -n '/ERROR: /,/^$/p' <<<"$report" | first_frame)"
    alloc="$(sed -n '/allocated by thread/,/^$/p' <<<"$report" | first_frame)"
    if grep -q 'property violated\|LeakSanitizer' <<<"$report"; then
        echo regmix
    elif [[ "$fault" == *libhdf5* && ( -z "$alloc" || "$alloc" == *libhdf5* ) ]]; then
        echo hdf5
    else
        echo regmix
    fi
}

failed=0
summary=()
for h in "${harnesses[@]}"; do
    name="$(basename "$h")"
    dir="$work/$name"
    rm -rf "$dir/artifacts"   # findings of an earlier run are not this run's
    mkdir -p "$dir/corpus" "$dir/artifacts"
    inputs=("$dir/corpus" "$here/corpus/$name")
    [[ -d "$here/regressions/$name" ]] && inputs+=("$here/regressions/$name")
    log="$dir/fuzz.log"
    common=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
            -artifact_prefix="$dir/artifacts/")
    t0=$SECONDS
    if [[ "$hdf5_harnesses" == *" $name "* ]]; then
        "$h" "${common[@]}" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 "${inputs[@]}" >"$log" 2>&1
        rc=$?
        execs="$(grep -E '^#[0-9]+: cov' "$log" | tail -n 1 | sed -E 's/^#([0-9]+):.*/\1/')"
        in_hdf5=0 in_regmix=0
        for a in "$dir"/artifacts/*; do
            if [[ "$(owner "$a" "$h")" == hdf5 ]]; then
                in_hdf5=$((in_hdf5 + 1))
            else
                in_regmix=$((in_regmix + 1))
                echo "run_fuzzers: $name: crash in regmix: $a"
                "$h" -runs=1 -timeout=10 "$a" 2>&1 | sed -n '/ERROR\|violated/,/^$/p' | head -n 40
            fi
        done
        # fork mode exits with the status of its last job (a timeout's 70 too), so the
        # verdict comes from the findings; the log shows that fuzzing ran to its end
        ran=1
        grep -q '^INFO: fuzzed for' "$log" || { ran=0; echo "run_fuzzers: $name stopped early (exit $rc):"; tail -n 20 "$log"; }
        verdict=OK
        ((in_regmix == 0 && ran)) || { verdict=FAILED; failed=1; }
        note="$in_hdf5 crash(es)/hang(s) inside HDF5 (documented), $in_regmix in regmix"
    else
        "$h" "${common[@]}" "${inputs[@]}" >"$log" 2>&1
        rc=$?
        execs="$(grep -E '^stat::number_of_executed_units' "$log" | sed -E 's/.*: *//')"
        verdict=OK
        note=""
        if ((rc != 0)); then
            verdict=FAILED
            failed=1
            echo "run_fuzzers: $name found a crash (exit $rc); the report:"
            sed -n '/ERROR\|violated\|Test unit written/,/^$/p' "$log" | head -n 60
            note="input in $dir/artifacts/: fix it, then add it to tests/fuzz/regressions/$name/"
        fi
    fi
    line="$(printf '  %-20s %-6s %10s executions in %3ss  %s' "$name" "$verdict" "${execs:-?}" $((SECONDS - t0)) "$note")"
    echo "$line"
    summary+=("$line")
done
printf '\nrun_fuzzers: %d harnesses, %s s each\n' "${#harnesses[@]}" "$seconds"
printf '%s\n' "${summary[@]}"
exit "$failed"
