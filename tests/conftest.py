"""Shared fixtures: deterministic RNG, the location of the shared data folder, and the
``require_*`` helpers: what a test needs from outside (../shared, a C compiler, an installed
module) skips with its reason locally but fails under ``CI=true``, so CI never passes quietly."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

#: ../shared/data beside the repository (CI lays it out the same way).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def require_shared(path: Path) -> Path:
    """``path`` under ../shared, or skip the test — except under ``CI=true``, where it fails.

    CI lays out ../shared beside the clone, so a missing file there is a broken setup, not a
    reason to pass quietly.
    """
    if path.exists():
        return path
    message = f"{path} not present (../shared is not laid out beside the repository)"
    skip_unless_ci(message)
    raise AssertionError("unreachable")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def skip_unless_ci(message: str, *, allow_module_level: bool = False) -> None:
    """Skip with ``message`` — or fail under ``CI=true``, where what is missing is a broken setup."""
    if in_ci():
        pytest.fail(message + "; CI must provide it", pytrace=False)
    pytest.skip(message, allow_module_level=allow_module_level)


def require_compiler(purpose: str) -> str:
    """The system C compiler (cc, gcc or clang), or skip (fail under CI) naming ``purpose``."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        skip_unless_ci(f"no C compiler (cc, gcc or clang) on PATH to build {purpose}")
    return cc  # type: ignore[return-value]


def require_module(name: str, *, allow_module_level: bool = False) -> ModuleType:
    """``importlib.import_module(name)``, or skip (fail under CI): every module the tests import
    is a core or ``[test]`` dependency, so CI must have it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        skip_unless_ci(f"module {name} not importable ({exc}); install the [test] extra",
                       allow_module_level=allow_module_level)
        raise AssertionError("unreachable") from exc
