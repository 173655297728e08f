#!/usr/bin/env bash
# Developer build: compiles mtkseg._core with CMake and drops it next to the Python sources,
# so `PYTHONPATH=python` (or a .pth file) imports the working tree without reinstalling.
# Users and CI install with `pip install .` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" \
    -DSKBUILD_PROJECT_NAME=mtkseg -DSKBUILD_PROJECT_VERSION=0.1.0 >/dev/null
cmake --build build/dev -j2
# Replace atomically: overwriting a loaded .so in place crashes Python processes that use it.
for so in build/dev/_core*.so; do
    cp "$so" "python/mtkseg/.$(basename "$so").tmp"
    mv -f "python/mtkseg/.$(basename "$so").tmp" "python/mtkseg/$(basename "$so")"
done
echo "built $(ls python/mtkseg/_core*.so)"
