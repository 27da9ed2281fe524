#!/usr/bin/env bash
# The Fashion-MNIST attack-strength study (sweeps/fmnist-eps.yaml, 63 runs): runs the
# sweep, then writes its report into results/studies/fmnist-eps/ with `regmix report`:
#   final.md/.csv/.tex   the final evaluation per training eps x method: clean, PGD-20 at
#                        the budgets 0.1-0.4, CW-20 and aa-fast at the training budget, CO
#   curves-eps<E>.md     per training eps: the per-epoch accuracies at the best epoch
#   plots-by-method/     robust_vs_eps: CW-20 at the training budget against eps, one
#                        curve per method; co_flags: runs flagged per method (all eps)
#   plots-eps<E>/        per training eps: robust_vs_eps (PGD-20 against the attack
#                        budget), accuracy_vs_epoch (clean and PGD-10 per epoch), co_flags
# Re-running resumes the sweep (completed runs are skipped) and rewrites the report.
#
# usage: bash jobscripts/study-fmnist-eps.sh
# environment (defaults in brackets):
#   RANKS [2]                MPI ranks (the sweep file sets 1 thread per rank)
#   REGMIX [build/regmix, built (Release) if absent]
#   RUNS [results/fmnist-eps] where the sweep writes its run files (the sweep's outdir)
#   DEST [results/studies/fmnist-eps] where the report goes
#   SKIP_SWEEP [0]           1: only rewrite the report from the run files in RUNS
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
log() { printf 'study-fmnist-eps: %s\n' "$*" >&2; }

RANKS="${RANKS:-2}"
REGMIX="${REGMIX:-$repo_root/build/regmix}"
RUNS="${RUNS:-results/fmnist-eps}"
DEST="${DEST:-results/studies/fmnist-eps}"

if [[ ! -x "$REGMIX" ]]; then
    log "building $REGMIX (Release)"
    cmake -S "$repo_root" -B "$repo_root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$repo_root/build" -j "$(nproc)" --target regmix >/dev/null
fi

if [[ "${SKIP_SWEEP:-0}" != 1 ]]; then
    # containers and oversubscribed nodes need these; root needs Open MPI's consent
    export OMPI_MCA_rmaps_base_oversubscribe=1
    export OMPI_MCA_btl_vader_single_copy_mechanism=none
    if [[ "$(id -u)" == 0 ]]; then
        export OMPI_ALLOW_RUN_AS_ROOT=1
        export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    fi
    log "sweep: mpirun -n $RANKS $REGMIX sweep sweeps/fmnist-eps.yaml --set outdir=$RUNS"
    start=$(date +%s)
    mpirun -n "$RANKS" "$REGMIX" sweep sweeps/fmnist-eps.yaml --set "outdir=$RUNS" </dev/null
    log "sweep took $(( $(date +%s) - start )) s on $RANKS ranks"
fi

mkdir -p "$DEST"
final=final_clean,final_pgd20_eps0.1,final_pgd20_eps0.2,final_pgd20_eps0.3,final_pgd20_eps0.4,final_cw20,final_aa-fast,co
log "report: final evaluation -> $DEST/final.{md,csv,tex}"
# bold within each eps: accuracies at the run's own budget do not compete across budgets
"$REGMIX" report "$RUNS" --epoch last --rows eps,method,reg --best-within eps --metric "$final" \
    --csv "$DEST/final.csv" --latex "$DEST/final.tex" >"$DEST/final.md"
log "report: robust accuracy at the training budget against eps -> $DEST/plots-by-method"
"$REGMIX" report "$RUNS" --epoch last --rows method,reg --metric final_cw20,final_aa-fast,final_clean,co \
    --plot "$DEST/plots-by-method" >"$DEST/by-method.md"
# its accuracy_vs_epoch would average runs of different eps: the per-eps folders have it
rm -f "$DEST/plots-by-method"/accuracy_vs_epoch.*
for e in 0.1 0.2 0.3; do
    log "report: training eps $e -> $DEST/plots-eps$e, $DEST/curves-eps$e.md"
    "$REGMIX" report "$RUNS" --epoch last --rows method,reg --select "eps=$e" \
        --metric "$final" --plot "$DEST/plots-eps$e" >/dev/null
    "$REGMIX" report "$RUNS" --rows method,reg --select "eps=$e" \
        --metric clean,fgsm,pgd10,gap,co,epoch_s >"$DEST/curves-eps$e.md"
done
log "done: $DEST"
