#!/usr/bin/env bash
# regmix against PyTorch on this machine: the same training step (prior-guided FGSM with
# a regulariser: every pass, the PGI buffers and the SGD update, batch 128, random
# images), timed by `regmix bench --step` and by its PyTorch twin
# tests/pytorch/bench_step.py, back to back and interleaved REPEATS times, with the
# machine's convolution peak (f32 and bf16, oneDNN, 64->64 3x3 conv, batch 128) measured
# in the same run. Prints every measurement, then a summary per case: median images/s of
# both, their ratio, regmix's achieved GFLOP/s and its share of the conv peak.
#
# usage: bash jobscripts/bench-vs-pytorch.sh
# environment (defaults in brackets):
#   THREADS [nproc]   OpenMP / torch threads of both
#   REPEATS [3]       interleaved rounds (the summary takes medians)
#   CASES ["fmnist-cnn:f32 preact-resnet18:f32 preact-resnet18:bf16"]  model:precision
#   METHOD [pgi], REG [regmix], BATCH [128]
#   ITERS_SMALL [20], ITERS_LARGE [3]   timed steps per measurement (fmnist-cnn / others)
#   REGMIX [build/regmix, built (Release) if absent], PYTHON [/usr/bin/python3]
#   OUT [a temporary file]   where the JSON lines are kept
# A bf16 case compares with PyTorch bf16 autocast, and also with PyTorch f32. On a CPU
# without bf16 (no AVX-512 BF16 / AMX) regmix says it ran f32 and the bf16 lines are
# skipped. Figures depend on the CPU (named in the output) and on other load: run it on
# an otherwise idle machine.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
log() { printf 'bench-vs-pytorch: %s\n' "$*" >&2; }
die() { printf 'bench-vs-pytorch: error: %s\n' "$*" >&2; exit 1; }

THREADS="${THREADS:-$(nproc)}"
REPEATS="${REPEATS:-3}"
CASES="${CASES:-fmnist-cnn:f32 preact-resnet18:f32 preact-resnet18:bf16}"
METHOD="${METHOD:-pgi}"
REG="${REG:-regmix}"
BATCH="${BATCH:-128}"
ITERS_SMALL="${ITERS_SMALL:-20}"
ITERS_LARGE="${ITERS_LARGE:-3}"
PYTHON="${PYTHON:-/usr/bin/python3}"
REGMIX="${REGMIX:-$repo_root/build/regmix}"
OUT="${OUT:-$(mktemp /tmp/bench-vs-pytorch.XXXXXX.jsonl)}"

if [[ ! -x "$REGMIX" ]]; then
    log "building $REGMIX (Release)"
    cmake -S "$repo_root" -B "$repo_root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$repo_root/build" -j "$(nproc)" --target regmix >/dev/null
fi
[[ -x "$REGMIX" ]] || die "no regmix binary at $REGMIX"
"$PYTHON" -c "import torch" 2>/dev/null || die "$PYTHON cannot import torch (Debian: python3-torch)"

cpu="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
log "CPU: $cpu; $(nproc) cores; threads $THREADS; batch $BATCH; step $METHOD reg=$REG; $REPEATS rounds"
log "JSON lines go to $OUT"
: >"$OUT"

# one JSON line, tagged with who made it and for which case
tag() { sed "s/^{/{\"impl\": \"$1\", \"case\": \"$2\", \"round\": $3, /"; }

conv_peak() {
    "$REGMIX" bench --conv-peak --batch "$BATCH" --threads "$THREADS" --iters 10 --json |
        sed 's/^{/{"impl": "regmix", "case": "conv-peak", "round": '"$1"', /' >>"$OUT"
}

for ((r = 1; r <= REPEATS; r++)); do
    conv_peak "$r"
    for c in $CASES; do
        model="${c%%:*}" prec="${c##*:}"
        iters=$ITERS_LARGE
        [[ "$model" == fmnist-cnn ]] && iters=$ITERS_SMALL
        common=(--model "$model" --batch "$BATCH" --threads "$THREADS" --iters "$iters" --warmup 1)
        log "round $r/$REPEATS: $model $prec: regmix"
        "$REGMIX" bench "${common[@]}" --precision "$prec" --step "$METHOD" --reg "$REG" --no-passes --json |
            tag regmix "$c" "$r" >>"$OUT"
        log "round $r/$REPEATS: $model $prec: PyTorch"
        "$PYTHON" tests/pytorch/bench_step.py "${common[@]}" --precision "$prec" --step "$METHOD" --reg "$REG" |
            tag pytorch "$c" "$r" >>"$OUT"
        if [[ "$prec" == bf16 && " $CASES " != *" $model:f32 "* ]]; then
            log "round $r/$REPEATS: $model: PyTorch f32 (the bf16 case's second yardstick)"
            "$PYTHON" tests/pytorch/bench_step.py "${common[@]}" --precision f32 --step "$METHOD" --reg "$REG" |
                tag pytorch "$model:f32" "$r" >>"$OUT"
        fi
    done
done

"$PYTHON" - "$OUT" "$cpu" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(impl, case, key="images_per_s", prec=None):
    v = [r[key] for r in rows if r["impl"] == impl and r["case"] == case
         and (prec is None or r["precision"] == prec)]
    return statistics.median(v) if v else None
def peak_of(name):
    v = [r["gflops"] for r in rows if r["case"] == "conv-peak" and r["pass"] == name]
    return statistics.median(v) if v else None
peak = {"f32": peak_of("conv-peak-f32"), "bf16": peak_of("conv-peak-bf16")}
peak_auto = peak_of("conv-peak-f32-auto")
print()
print("CPU: %s; oneDNN ISA %s; %d thread(s); medians of %d round(s)"
      % (sys.argv[2], rows[0].get("isa", "?"), rows[0]["threads"], max(r["round"] for r in rows)))
fmt = lambda v, none="-": "%.1f" % v if v else none
print("convolution peak (64->64 3x3, batch %d, forward, direct algorithm): f32 %s GFLOP/s, bf16 %s GFLOP/s;"
      % (rows[0]["batch"], fmt(peak["f32"]), fmt(peak["bf16"], "- (no bf16 on this CPU)")))
print("  the same layer with the algorithm oneDNN picks (Winograd where faster, direct FLOP count): f32 %s GFLOP/s"
      % fmt(peak_auto))
print()
print("%-22s %-14s %12s %12s %8s %10s %9s" % ("case", "step", "regmix img/s", "PyTorch img/s", "ratio",
                                              "GFLOP/s", "% of peak"))
for case in dict.fromkeys(r["case"] for r in rows if r["case"] != "conv-peak"):
    model, prec = case.split(":")
    rg = [r for r in rows if r["impl"] == "regmix" and r["case"] == case]
    if not rg:
        continue
    ran = rg[0]["precision"]
    step = rg[0]["pass"].split(":", 1)[1]
    ips, gf = med("regmix", case), med("regmix", case, "gflops")
    pt = med("pytorch", case)
    share = "%.0f %%" % (100 * gf / peak[ran]) if peak.get(ran) else "-"
    note = "" if ran == prec else "  (regmix ran %s: no bf16 on this CPU)" % ran
    print("%-22s %-14s %12.1f %12.1f %7.2fx %10.1f %9s%s" % (case, step, ips, pt, ips / pt, gf, share, note))
    if prec == "bf16":
        pt32 = med("pytorch", model + ":f32", prec="f32")
        if pt32:
            print("%-22s %-14s %12.1f %12.1f %7.2fx   (regmix bf16 vs PyTorch f32)"
                  % (model + ":bf16/f32", step, ips, pt32, ips / pt32))
print()
print("targets (issue 12): fmnist-cnn f32 ratio >= 2.5x; preact-resnet18 f32 >= 85 % of the f32 peak;")
print("preact-resnet18 bf16 ratio >= 1.5x (AVX-512 BF16 without AMX), >= 2x and bf16/f32 >= 3x (AMX).")
print("GFLOP/s count conv and linear multiply-adds x2 of the direct algorithm: a step of pgi+regmix is")
print("10 forward passes (3 forward, 3 backward with weight gradients at 2x, 1 backward for the input).")
print("% of peak: against the direct-convolution peak of the step's precision; regmix's f32 layers may run")
print("Winograd (regmix bench prints which), so f32 can exceed 100 %.")
EOF
