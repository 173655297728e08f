#!/usr/bin/env bash
# Cross-compile the native kernels (csrc/*.cpp except the Python bindings) for aarch64 with a
# plain C++ known-answer driver (scripts/aarch64/kernel_tests.cpp: preprocess, argmax and its
# tie rule, confusion matrix, overlay, at every SIMD level: scalar and NEON) and run it under
# qemu-aarch64.  No Python for the target is needed: scripts/aarch64/shim/ stands in for the
# few pybind11 array calls the kernels make.
#
#   scripts/aarch64-check.sh            # installs g++-aarch64-linux-gnu/qemu-user if missing (root + apt)
#   AARCH64_CXX=... QEMU=... scripts/aarch64-check.sh
#
# Exit status: 0 all checks passed; 1 a check failed or the build broke; 2 no toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=${AARCH64_CXX:-aarch64-linux-gnu-g++}
QEMU=${QEMU:-qemu-aarch64}
SYSROOT=${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}
start=$(date +%s)

if ! command -v "$CXX" >/dev/null || ! command -v "$QEMU" >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "aarch64-check: installing g++-aarch64-linux-gnu qemu-user"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++-aarch64-linux-gnu qemu-user >/dev/null
    else
        echo "aarch64-check: $CXX or $QEMU missing; apt-get install g++-aarch64-linux-gnu qemu-user" >&2
        exit 2
    fi
fi

out=build/aarch64
mkdir -p "$out"
sources=$(ls csrc/*.cpp | grep -v '/bindings\.cpp$')
# The flags of the shipped build (CMakeLists.txt): -O3, no -march, fast-math off.
# shellcheck disable=SC2086
"$CXX" -std=c++17 -O3 -Wall -Wextra -fno-math-errno -pthread -Iscripts/aarch64/shim -Icsrc \
    scripts/aarch64/kernel_tests.cpp $sources -o "$out/kernel_tests"
built=$(date +%s)
kind=$(command -v file >/dev/null && file -b "$out/kernel_tests" | cut -d, -f1-2 || echo "aarch64 executable")
echo "aarch64-check: built $out/kernel_tests ($kind) in $((built - start)) s"
"$QEMU" -L "$SYSROOT" "$out/kernel_tests"
echo "aarch64-check: passed in $(( $(date +%s) - start )) s"
