#!/usr/bin/env bash
# THE run command (README "Quick start"): sets the machine up, builds build/regmix,
# then runs the default Fashion-MNIST sweep over MPI ranks and prints its ablation table
# (plots in results/<sweep>/plots). Exits 0 only if every run completed.
#
# Environment: REGMIX_SWEEP (sweep file, default sweeps/fmnist-quick.yaml),
# REGMIX_RANKS (MPI ranks, default: number of cores).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() { printf 'quickstart: %s\n' "$*"; }
die() { printf 'quickstart: error: %s\n' "$*" >&2; exit 1; }

t0=$SECONDS
bash "$repo_root/jobscripts/setup-debian.sh" || die "setup failed (see above)"

regmix="$repo_root/build/regmix"
[[ -x "$regmix" ]] || die "$regmix was not built"

data_dir=/usr/share/datasets/fashion-mnist
[[ -r "$data_dir/train-images-idx3-ubyte.gz" ]] ||
    die "Fashion-MNIST not found in $data_dir (Debian package dataset-fashion-mnist)"

# Open MPI: allow ranks > cores, avoid the CMA single-copy path that containers
# forbid, and allow mpirun as root.
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
if [[ "$(id -u)" -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1
    export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

sweep="${REGMIX_SWEEP:-sweeps/fmnist-quick.yaml}"
ranks="${REGMIX_RANKS:-$(nproc)}"
[[ -r "$sweep" ]] || die "sweep file '$sweep' not found (set REGMIX_SWEEP)"
name="$(sed -n 's/^name:[[:space:]]*//p' "$sweep" | head -n 1)"
log "running the sweep $sweep on $ranks MPI rank(s), data from $data_dir"
log "(re-running this command resumes an interrupted sweep and skips finished runs)"
rc=0
mpirun -n "$ranks" "$regmix" sweep "$sweep" </dev/null || rc=$?
if ((rc == 0)) && [[ -n "$name" ]]; then
    log "the ablation table (regmix report results/$name):"
    "$regmix" report "results/$name" --plot "results/$name/plots" </dev/null || rc=$?
fi

if ((rc == 0)); then
    log "done in $((SECONDS - t0))s"
else
    log "FAILED with exit status $rc after $((SECONDS - t0))s"
fi
exit "$rc"
