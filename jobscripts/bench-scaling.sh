#!/usr/bin/env bash
# How regmix scales over MPI ranks on this machine, two measurements:
#  A. a sweep of 4 equal runs (fmnist-cnn, pgi + regmix, seeds 0-3) on 2 ranks of
#     1 thread against 1 rank of 1 thread: the sweep's wall time (target: >= 1.8x);
#  B. one preact-resnet18 run (pgi + regmix), data-parallel with `--ranks-per-run 2`
#     (2 ranks of 1 thread) against 1 rank of 2 threads: training images/s, evaluation
#     and epoch time from the run files (the group splits its evaluation).
# Every measurement starts from empty output folders. Prints both, with the CPU.
#
# usage: bash jobscripts/bench-scaling.sh
# environment (defaults in brackets):
#   PART [AB]              which measurements (A, B or AB)
#   SUBSET_A [10000]       training images per run of A; EPOCHS_A [2]
#   SUBSET_B [2048]        training images of B (1 epoch); TEST_B [512]
#   CIFAR_DIR [/usr/share/datasets/cifar-10-batches-bin]: B uses random images in the
#                          CIFAR-10 file format instead when it is absent (timing only)
#   REGMIX [build/regmix, built (Release) if absent], PYTHON [/usr/bin/python3]
#   WORK [a temporary folder, removed at the end unless KEEP=1]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
log() { printf 'bench-scaling: %s\n' "$*" >&2; }
die() { printf 'bench-scaling: error: %s\n' "$*" >&2; exit 1; }

PART="${PART:-AB}"
SUBSET_A="${SUBSET_A:-10000}"
EPOCHS_A="${EPOCHS_A:-2}"
SUBSET_B="${SUBSET_B:-2048}"
TEST_B="${TEST_B:-512}"
CIFAR_DIR="${CIFAR_DIR:-/usr/share/datasets/cifar-10-batches-bin}"
PYTHON="${PYTHON:-/usr/bin/python3}"
REGMIX="${REGMIX:-$repo_root/build/regmix}"
WORK="${WORK:-$(mktemp -d /tmp/bench-scaling.XXXXXX)}"
[[ "${KEEP:-0}" == 1 ]] || trap 'rm -rf "$WORK"' EXIT

if [[ ! -x "$REGMIX" ]]; then
    log "building $REGMIX (Release)"
    cmake -S "$repo_root" -B "$repo_root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$repo_root/build" -j "$(nproc)" --target regmix >/dev/null
fi
[[ -x "$REGMIX" ]] || die "no regmix binary at $REGMIX"
REGMIX="$(cd "$(dirname "$REGMIX")" && pwd)/$(basename "$REGMIX")" # the sweeps run in WORK

export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
if [[ "$(id -u)" -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1
    export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

cpu="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
log "CPU: $cpu, $(nproc) cores; work folder $WORK"

# sweep DIR NAME RANKS PER_RUN [THREADS]: runs DIR/NAME.yaml, prints its wall time in
# seconds. Each rank gets THREADS cores (--map-by slot:PE): Open MPI's default binds every
# rank to one core when it starts 2 ranks or fewer, and 2 threads would share it.
sweep() {
    local dir=$1 name=$2 ranks=$3 per_run=$4 threads=${5:-1} t0 t1
    t0=$(date +%s.%N)
    (cd "$dir" && mpirun -n "$ranks" --map-by "slot:PE=$threads" "$REGMIX" sweep "$name.yaml" --ranks-per-run "$per_run" \
        >"$name.log" 2>&1) || { tail -n 20 "$dir/$name.log" >&2; die "sweep $name failed (log: $dir/$name.log)"; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

summary=()

if [[ "$PART" == *A* ]]; then
    dir="$WORK/a" && mkdir -p "$dir"
    for ranks in 1 2; do
        cat >"$dir/a$ranks.yaml" <<EOF
name: a$ranks
base:
  model: fmnist-cnn
  reg: regmix
  train_subset: $SUBSET_A
  epochs: $EPOCHS_A
  threads: 1
  test_subset: 1000
  eval_every: $EPOCHS_A
  eval_attacks: [clean, pgd20]
  outdir: $dir/out$ranks
grid:
  seed: [0, 1, 2, 3]
EOF
    done
    log "A: 4-run sweep on 1 rank x 1 thread"
    ta1=$(sweep "$dir" a1 1 1)
    log "A: 4-run sweep on 2 ranks x 1 thread"
    ta2=$(sweep "$dir" a2 2 1)
    summary+=("$(printf 'A  4-run sweep (fmnist-cnn, %d images x %d epochs each): 1 rank x 1 thread %.1f s, 2 ranks x 1 thread %.1f s: speed-up %.2fx (target >= 1.8x)' \
        "$SUBSET_A" "$EPOCHS_A" "$ta1" "$ta2" "$(awk -v a="$ta1" -v b="$ta2" 'BEGIN { print a / b }')")")
fi

if [[ "$PART" == *B* ]]; then
    dir="$WORK/b" && mkdir -p "$dir"
    data="$CIFAR_DIR" source="CIFAR-10"
    if [[ ! -r "$CIFAR_DIR/data_batch_1.bin" ]]; then
        data="$dir/cifar" source="random images in the CIFAR-10 format (CIFAR-10 not installed; timing only)"
        mkdir -p "$data"
        "$PYTHON" - "$data" "$SUBSET_B" "$TEST_B" <<'EOF'
import os, sys
d, n_train, n_test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = -(-n_train // 5)
rng = __import__("random").Random(0)
def records(n):  # label byte in [0, 10), then 3072 pixel bytes
    return b"".join(bytes([rng.randrange(10)]) + os.urandom(3072) for _ in range(n))
for i in range(1, 6):
    open(os.path.join(d, "data_batch_%d.bin" % i), "wb").write(records(per))
open(os.path.join(d, "test_batch.bin"), "wb").write(records(n_test))
EOF
    fi
    for v in 1 2; do
        threads=$((3 - v)) # 1 rank x 2 threads, 2 ranks x 1 thread
        cat >"$dir/b$v.yaml" <<EOF
name: b$v
base:
  model: preact-resnet18
  dataset: cifar10
  data_dir: $data
  reg: regmix
  train_subset: $SUBSET_B
  epochs: 1
  threads: $threads
  test_subset: $TEST_B
  eval_attacks: [clean, pgd10]
  outdir: $dir/out$v
EOF
    done
    log "B: preact-resnet18 on 1 rank x 2 threads ($source)"
    tb1=$(sweep "$dir" b1 1 1 2)
    log "B: preact-resnet18 on 2 ranks x 1 thread, --ranks-per-run 2"
    tb2=$(sweep "$dir" b2 2 2)
    line=$("$PYTHON" - "$dir/out1" "$dir/out2" <<'EOF'
import glob, sys, h5py
def metrics(d):
    path = [p for p in glob.glob(d + "/*.h5") if not p.endswith((".ckpt.h5", "sweep.h5"))][0]
    with h5py.File(path, "r") as f:
        m = f["metrics"]
        return {k: float(m[k][-1]) for k in ("images_per_s", "train_seconds", "eval_seconds", "epoch_seconds")}
a, b = metrics(sys.argv[1]), metrics(sys.argv[2])
print("training %.2f vs %.2f images/s (%.2fx); evaluation %.1f vs %.1f s (%.2fx); epoch %.1f vs %.1f s (%.2fx)"
      % (a["images_per_s"], b["images_per_s"], b["images_per_s"] / a["images_per_s"],
         a["eval_seconds"], b["eval_seconds"], a["eval_seconds"] / b["eval_seconds"],
         a["epoch_seconds"], b["epoch_seconds"], a["epoch_seconds"] / b["epoch_seconds"]))
EOF
)
    summary+=("$(printf 'B  preact-resnet18, %d images, 1 epoch, test %d (%s): 1 rank x 2 threads vs --ranks-per-run 2 (2 x 1 thread): %s; whole sweep %.1f vs %.1f s' \
        "$SUBSET_B" "$TEST_B" "$source" "$line" "$tb1" "$tb2")")
fi

echo
echo "CPU: $cpu, $(nproc) cores (figures depend on other load: run on an idle machine)"
for s in "${summary[@]}"; do echo "$s"; done
