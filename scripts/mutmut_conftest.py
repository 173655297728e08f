"""Root conftest.py of the mutmut scratch tree (scripts/mutmut.sh copies it to build/mutmut/).

An editable install of mtkseg redirects ``import mtkseg`` to the working tree through a
meta-path finder that runs before sys.path; mutmut puts its mutated copy (mutants/src) on
sys.path, so the redirect is removed here, before any test imports mtkseg.
"""

import sys

sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "ScikitBuildRedirectingFinder"]
for name in [m for m in sys.modules if m == "mtkseg" or m.startswith("mtkseg.")]:
    del sys.modules[name]
