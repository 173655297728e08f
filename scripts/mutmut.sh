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
#   scripts/mutmut.sh estimate               # mutants and worst-case test seconds per module
# Arguments are passed to mutmut (default: run --max-children 2).  `estimate` reads what a run
# recorded (mutants/mutmut-stats.json, the .meta files) and starts nothing; it replaces mutmut's
# print-time-estimates, which in mutmut 3.8.1 drops every test-to-function association from
# mutmut-stats.json (its stale-stats clean-up compares against function hashes only `run`
# computes), saves that and prints "<no tests>" for every mutant, so it is refused here.
set -euo pipefail
cd "$(dirname "$0")/.."
work=build/mutmut
case "${1:-}" in
print-time-estimates)
    echo "mutmut 3.8.1's print-time-estimates wipes mutants/mutmut-stats.json; use: $0 estimate" >&2
    exit 2 ;;
estimate)
    cd "$work/mutants"
    exec python - <<'PY'
import collections, json, pathlib, re
stats = json.loads(pathlib.Path("mutmut-stats.json").read_text())
tests, duration = stats["tests_by_mangled_function_name"], stats["duration_by_test"]
rows = collections.defaultdict(lambda: [0, 0, 0.0, collections.Counter()])
for meta in sorted(pathlib.Path("src").rglob("*.py.meta")):
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        row = rows[str(meta)[len("src/"):-len(".py.meta")].replace("/", ".")]
        covering = tests.get(re.sub(r"__mutmut_\d+$", "", name), [])
        row[0] += 1
        row[1] += not covering
        row[2] += sum(duration.get(t, 0.0) for t in covering)
        row[3][{None: "not checked", 0: "survived", 1: "killed", 33: "no tests"}.get(code, f"exit {code}")] += 1
print(f"stats (clean run under trampolines): {len(duration)} tests, {sum(duration.values()):.0f} s of test calls")
for module, (n, untested, seconds, verdicts) in sorted(rows.items()):
    print(f"{module:22} {n:5} mutants, {untested:4} without tests, {seconds:7.0f} s worst case;",
          ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
print(f"{'total':22} {sum(r[0] for r in rows.values()):5} mutants, {sum(r[2] for r in rows.values()):.0f} s worst case"
      " (sum of the covering tests' call times, before --max-children)")
PY
    ;;
esac
mkdir -p "$work/src"
rm -rf "$work/src/mtkseg" "$work/tests"
# -p keeps the modification times: mutmut regenerates (and forgets the results of) every module
# whose source is newer than its mutants, so a plain copy would reset all of them on each call.
cp -rp python/mtkseg "$work/src/mtkseg"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
core=$(cd /tmp && python -c "import mtkseg._core as c; print(c.__file__)")
cp "$core" "$work/src/mtkseg/"
cp -rp tests "$work/tests"
find "$work/tests" -name __pycache__ -prune -exec rm -rf {} +
cp pyproject.toml "$work/pyproject.toml"
cp scripts/mutmut_conftest.py "$work/conftest.py"
# The tests find ../shared (CamVid images, external models) two folders above their own file,
# which from build/mutmut/mutants/tests is build/mutmut/: link it there, or those tests skip
# and every mutant only they would kill survives.
if [ -d ../shared ]; then ln -sfn "$(cd ../shared && pwd)" "$work/shared"; fi
cd "$work"
if [ $# -eq 0 ]; then set -- run --max-children 2; fi
exec mutmut "$@"
