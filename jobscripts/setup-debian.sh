#!/usr/bin/env bash
# Sets up a Debian 12 (bookworm) machine for regmix and builds it:
#   1. installs the Debian packages regmix needs, only those that are missing
#      (so a second run installs nothing and needs no network);
#   2. configures and builds build/ (Release) unless --no-build is given.
#
# usage: bash jobscripts/setup-debian.sh [--no-build]
# Runs as root, or as a user with sudo (used only when a package is missing).
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash jobscripts/setup-debian.sh [--no-build] [-h|--help]

Installs the Debian 12 packages regmix needs (only the missing ones), then
configures and builds the Release binary build/regmix.

  --no-build   install packages only; do not configure or build
  -h, --help   print this help
EOF
}

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

build=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$arg'" ;;
    esac
done

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The build's dependencies (see CMakeLists.txt), Python for the PyTorch reference
# fixtures, gnuplot for reports, and the Fashion-MNIST data set of the default sweep.
# ocl-icd-opencl-dev: oneDNN's CMake config (find_package(dnnl CONFIG)) looks for OpenCL.
# libopenblas0-openmp: without an optimised BLAS PyTorch falls back to the slow
# reference BLAS, and the fixture scripts crawl.
# valgrind, clang-14 + libclang-rt-14-dev (libFuzzer): tests/run_all.sh's memcheck and fuzz phases.
packages=(
    build-essential cmake pkg-config git
    libopenmpi-dev openmpi-bin
    libdnnl-dev ocl-icd-opencl-dev
    libhdf5-dev hdf5-tools
    libcmocka-dev libyaml-dev zlib1g-dev
    gnuplot-nox
    dataset-fashion-mnist
    python3-torch python3-numpy python3-h5py libopenblas0-openmp
    valgrind clang-14 libclang-rt-14-dev
)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    die "dpkg-query/apt-get not found: this script needs Debian 12 (bookworm). Elsewhere, install the equivalents of: ${packages[*]}"
fi

if [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091
    os_id="$(. /etc/os-release && printf '%s %s' "${ID:-?}" "${VERSION_ID:-?}")"
    [[ "$os_id" == "debian 12" ]] ||
        log "warning: this is '$os_id', not Debian 12; package names may differ"
fi

is_installed() {
    # Multi-arch packages print one status per installed architecture.
    dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed
}

missing=()
for p in "${packages[@]}"; do
    is_installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    log "all ${#packages[@]} required packages are installed"
else
    log "missing packages: ${missing[*]}"
    sudo_cmd=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            die "not root and sudo not found; as root run: apt-get install ${missing[*]}"
        sudo_cmd=(sudo)
    fi
    log "running apt-get update"
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update ||
        die "apt-get update failed (network or apt sources?)"
    log "installing: ${missing[*]}"
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" ||
        die "apt-get install failed for: ${missing[*]}"
    still=()
    for p in "${missing[@]}"; do
        is_installed "$p" || still+=("$p")
    done
    ((${#still[@]} == 0)) || die "still not installed after apt-get: ${still[*]}"
    log "installed ${#missing[@]} package(s)"
fi

if ((build == 0)); then
    log "--no-build: skipping configure and build"
    exit 0
fi

jobs="$(nproc)"
log "configuring $repo_root/build (Release)"
cmake -S "$repo_root" -B "$repo_root/build" -DCMAKE_BUILD_TYPE=Release ||
    die "cmake configure failed (see the messages above; a missing package?)"
log "building with -j$jobs"
cmake --build "$repo_root/build" -j"$jobs" ||
    die "build failed (see the compiler messages above)"
log "built $repo_root/build/regmix"
