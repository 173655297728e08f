#!/usr/bin/env bash
# Sanitizer job: builds mtkseg._core once with AddressSanitizer + UndefinedBehaviorSanitizer
# into build/asan (the installed mtkseg is untouched) and runs the kernel tests against it:
# a staged copy of python/mtkseg with the sanitized _core, put first on the import path by a
# sitecustomize (also for the tests' subprocesses).  Any ASan/UBSan report fails the run.
#   scripts/asan-tests.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${MTKSEG_ASAN_BUILD:-build/asan}
py=${PYTHON:-python}
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' python/mtkseg/__init__.py)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
start=$(date +%s)
# pybind11 is a build requirement (pip's isolated build env), not a runtime one.
"$py" -m pybind11 --cmakedir >/dev/null 2>&1 || "$py" -m pip install -q "pybind11>=2.13"

cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DMTKSEG_SANITIZE=ON \
    -DPython_EXECUTABLE="$(command -v "$py")" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" \
    -DSKBUILD_PROJECT_NAME=mtkseg -DSKBUILD_PROJECT_VERSION="$version" >/dev/null
cmake --build "$build" -j"$(nproc)"

stage=$build/stage
rm -rf "$stage" && mkdir -p "$stage"
cp -r python/mtkseg "$stage/mtkseg"
rm -f "$stage"/mtkseg/_core*.so && cp "$build"/_core*.so "$stage/mtkseg/"
[ -d models ] && rm -rf "$stage/mtkseg/models" && ln -s "$root/models" "$stage/mtkseg/models"
# The editable install (if any) puts its finder first on sys.meta_path: go in front of it.
cat > "$stage/sitecustomize.py" <<PY
import sys
from importlib.machinery import PathFinder

class _SanitizedMtkseg(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "mtkseg":
            return PathFinder.find_spec(name, ["$root/$stage"])
        if name.startswith("mtkseg."):
            return PathFinder.find_spec(name, path)
        return None

sys.meta_path.insert(0, _SanitizedMtkseg)
PY

libasan=$(gcc -print-file-name=libasan.so)
libstdcxx=$(gcc -print-file-name=libstdc++.so)
export LD_PRELOAD="$libasan $libstdcxx"
# Reports go to files as well: pytest's fd capture would swallow them when the process dies.
reports=$root/$build/reports
rm -rf "$reports" && mkdir -p "$reports"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$reports/asan
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan
export PYTHONPATH="$root/$stage${PYTHONPATH:+:$PYTHONPATH}"
export MTKSEG_SANITIZE=1
"$py" -c 'import mtkseg._core as c, sys; assert "/stage/" in c.__file__, c.__file__; print("sanitized core:", c.__file__)'
status=0
"$py" -m pytest -q -p no:cacheprovider tests/test_ops_*.py tests/test_smoothing_ops.py tests/test_metrics.py \
    tests/test_bad_inputs.py tests/test_simd.py "$@" || status=$?
for report in "$reports"/*; do
    [ -e "$report" ] && { echo "== $report"; head -n 40 "$report"; status=${status/#0/1}; }
done
echo "sanitizer job: $(( $(date +%s) - start )) s (build + tests), exit $status"
exit $status
