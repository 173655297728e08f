"""Root conftest.py of the mutmut scratch tree (scripts/mutmut.sh copies it to build/mutmut/,
mutmut's ``also_copy`` to build/mutmut/mutants/, where pytest runs).

An editable install of mtkseg reaches the working tree two ways: a meta-path finder that
runs before sys.path, and python/ appended to sys.path by its .pth file; a regular install
sits in site-packages.  ``mutmut run`` puts its mutated copy (mutants/src) first on sys.path,
but the finder wins over it, and mutmut commands that run pytest without that set-up
(``print-time-estimates``) would import the working tree instead.  So, before any test imports
mtkseg: the finder is removed, mutants/src is moved to the front of sys.path, any mtkseg module
imported from elsewhere is dropped, and ``mtkseg`` must then resolve to the mutated copy (an
error otherwise, never a quiet run against unmutated code).

Only modules from outside the mutated copy are dropped, never the mutated copy itself: mutmut
calls ``pytest.main`` several times in one process (stats, clean run, forced fail, then once
more in every forked mutant child), and pytest re-executes a root conftest.py on each call
(it removes a package-less ``conftest`` from sys.modules first), while the test modules stay
cached with the mtkseg objects they imported the first time.  Dropping the mutated copy again
would make every later import (``from .segmenter import Segmenter`` inside a function, a
test's ``import mtkseg.runtime.info``) load a second mtkseg beside the one the tests hold:
two SegmenterOptions classes (the isinstance checks reject one as the other) and two module
states (``runtime.info._warned_default``).
"""

import importlib.util
import sys
from pathlib import Path

_MUTATED_SRC = Path(__file__).resolve().parent / "src"


def _from_mutated_copy(module: object) -> bool:
    origin = getattr(module, "__file__", None)
    return origin is not None and Path(origin).resolve().is_relative_to(_MUTATED_SRC)


sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "ScikitBuildRedirectingFinder"]
# mutants/src goes first; entries holding another mtkseg stay (a regular install lives in
# site-packages beside numpy and the rest), the import just never reaches them.
sys.path[:] = [str(_MUTATED_SRC)] + [p for p in sys.path if Path(p or ".").resolve() != _MUTATED_SRC]
for _name in [n for n, m in list(sys.modules.items())
              if (n == "mtkseg" or n.startswith("mtkseg.")) and not _from_mutated_copy(m)]:
    del sys.modules[_name]

_spec = importlib.util.find_spec("mtkseg")
if _spec is None or _spec.origin is None or not Path(_spec.origin).resolve().is_relative_to(_MUTATED_SRC):
    raise ImportError(f"mtkseg resolves to {_spec and _spec.origin}, not to the mutated copy in {_MUTATED_SRC}")
