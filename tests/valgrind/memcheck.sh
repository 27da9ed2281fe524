#!/usr/bin/env bash
# valgrind memcheck on regmix end to end (tests/run_all.sh calls it; tests/README.md):
#   1. a tiny training (fmnist-cnn, FGSM-PGI + RegMix, 8 images, 1 epoch, clean + FGSM
#      evaluation, a checkpoint) by `regmix train`;
#   2. a 2-rank `mpirun -n 2 regmix sweep` of two such runs (MPI, the sweep index).
# Every process runs under memcheck with --error-exitcode: an invalid read or write, a
# use of uninitialised memory or a definite leak fails the script. Suppressions:
# tests/valgrind/regmix.supp (oneDNN's JIT kernels, Open MPI), nothing of regmix's.
#
#   bash tests/valgrind/memcheck.sh BUILD_DIR      (a build without sanitizers)
#
# Needs the Fashion-MNIST files of the default data folder (jobscripts/setup-debian.sh
# installs them). The last lines give the error count of each process.
set -uo pipefail

build="$(cd "${1:?usage: memcheck.sh BUILD_DIR}" && pwd)"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
regmix="$build/regmix"
work="$build/memcheck-work"
[[ -x "$regmix" ]] || { echo "memcheck: no $regmix"; exit 1; }
command -v valgrind >/dev/null || { echo "memcheck: valgrind not found (apt-get install valgrind)"; exit 1; }
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1

export OMP_NUM_THREADS=1
# Open MPI as tests/run_all.sh sets it: ranks > cores, no CMA single copy, root allowed
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
if [[ "$(id -u)" -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
vg=(valgrind --tool=memcheck --error-exitcode=97 --leak-check=full
    --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
    --num-callers=30 --suppressions="$here/regmix.supp")
tiny=(model=fmnist-cnn dataset=fashion-mnist method=pgi reg=regmix epochs=1 batch=8
      train_subset=8 test_subset=8 eval_attacks=clean,fgsm threads=1)

failed=0
summary=()
# check NAME RC LOG...: the exit status and each process's error count
check() {
    local name="$1" rc="$2" log n
    shift 2
    for log in "$@"; do
        n="$(grep -E '== ERROR SUMMARY: ' "$log" | tail -n 1 | sed -E 's/.*ERROR SUMMARY: ([0-9,]+) errors.*/\1/')"
        summary+=("$(printf '  %-10s exit %-3s %s errors  (%s)' "$name" "$rc" "${n:-?}" "$(basename "$log")")")
        if [[ "$n" != 0 ]]; then
            failed=1
            echo "memcheck: $name: ${n:-no summary} errors, from $log:"
            grep -v -E '^==[0-9]+== +(at|by) 0x[0-9A-F]+: \?\?\?' "$log" | sed -n '/== [A-Z][a-z].*\(Invalid\|uninitialised\|lost\|Mismatched\)/,/==[0-9]*== $/p' | head -n 80
        fi
    done
    ((rc == 0)) || { failed=1; echo "memcheck: $name exited with $rc"; }
}

t0=$SECONDS
"${vg[@]}" --log-file=train.vg.log "$regmix" train "${tiny[@]}" outdir=train run_id=tiny >train.out 2>&1
check train $? train.vg.log
grep -q '"status":"completed"' train.out || { failed=1; echo "memcheck: the training did not complete:"; tail -n 5 train.out; }

{
    echo "name: memcheck-sweep"
    echo "base:"
    for kv in "${tiny[@]}" outdir=sweep; do echo "  ${kv%%=*}: ${kv#*=}"; done
    echo "grid:"
    echo "  seed: [0, 1]"
} >sweep.yaml
sed -i 's/^  eval_attacks: \(.*\)$/  eval_attacks: [\1]/' sweep.yaml
mpirun -n 2 "${vg[@]}" --log-file=sweep.vg.%p.log "$regmix" sweep sweep.yaml --quiet >sweep.out 2>&1
check sweep $? sweep.vg.*.log
for id in seed-0 seed-1; do
    [[ -f "sweep/$id.h5" ]] || { failed=1; echo "memcheck: the sweep wrote no sweep/$id.h5:"; tail -n 10 sweep.out; }
done

printf '\nmemcheck: %ss\n' $((SECONDS - t0))
printf '%s\n' "${summary[@]}"
exit "$failed"
