#!/usr/bin/env bash
# Mutation testing with mutmut 3 ([tool.mutmut] in pyproject.toml): segmenter.py, result.py,
# evaluate.py, metrics.py and runtime/info.py, against the tests that check them.
#
# mutmut only maps mutants back to modules for a ./, src/ or source/ layout, so this runs in a
# scratch copy, build/mutmut/, with python/mtkseg as src/mtkseg plus the built mtkseg._core; its
# conftest.py (scripts/mutmut_conftest.py) drops the editable install's import redirect so the
# tests import the mutated copy.  The working tree is never modified.
#   scripts/mutmut.sh                        # all five modules (hours on 2 cores)
#   scripts/mutmut.sh run "mtkseg.metrics*"  # one module's mutants
#   scripts/mutmut.sh results                # survivors; `scripts/mutmut.sh show NAME` for a diff
# Arguments are passed to mutmut (default: run --max-children 2).
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/mutmut
mkdir -p "$work/src"
rm -rf "$work/src/mtkseg" "$work/tests"
cp -r python/mtkseg "$work/src/mtkseg"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
core=$(cd /tmp && python -c "import mtkseg._core as c; print(c.__file__)")
cp "$core" "$work/src/mtkseg/"
cp -r tests "$work/tests"
find "$work/tests" -name __pycache__ -prune -exec rm -rf {} +
cp pyproject.toml "$work/pyproject.toml"
cp scripts/mutmut_conftest.py "$work/conftest.py"
cd "$work"
if [ $# -eq 0 ]; then set -- run --max-children 2; fi
exec mutmut "$@"
