"""Interpreter backends: which TFLite runtime executes models.

Tried in order: ``ai-edge-litert`` (LiteRT, the core dependency: numpy 2, XNNPACK on by
default, ``CompiledModel`` accelerators), ``tflite-runtime``, then ``tensorflow.lite`` (only
imported when neither runtime package is installed).  ``Segmenter.backend`` reports the one
in use.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import BackendError, InvalidArgumentError

__all__ = ["Backend", "BACKENDS", "get_backend", "default_num_threads"]

#: (name, interpreter module, attribute holding the Interpreter class)
BACKENDS: Tuple[Tuple[str, str], ...] = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite.python.interpreter"),
)
_DISTRIBUTIONS = {"ai-edge-litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime", "tensorflow": "tensorflow"}


@dataclass(frozen=True)
class Backend:
    """A usable interpreter backend."""

    name: str
    version: str
    interpreter_class: Any
    load_delegate: Callable[..., Any]
    has_compiled_model: bool
    #: ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`` (builtin kernels, no XNNPACK), or
    #: None when the backend cannot turn its default delegate off.
    builtin_resolver: Any = None

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


_cache: Dict[str, Backend] = {}


def _version(name: str) -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(_DISTRIBUTIONS[name])
        except PackageNotFoundError:
            if name == "tensorflow":
                try:
                    return version("tensorflow-cpu")
                except PackageNotFoundError:
                    pass
            return "unknown"
    except ImportError:  # pragma: no cover - Python < 3.8
        return "unknown"


def _load(name: str, module_name: str) -> Backend:
    module = importlib.import_module(module_name)
    has_cm = False
    if name == "ai-edge-litert":
        try:
            importlib.import_module("ai_edge_litert.compiled_model")
            has_cm = True
        except ImportError:
            has_cm = False
    resolvers = getattr(module, "OpResolverType", None)
    builtin = getattr(resolvers, "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None) if resolvers is not None else None
    return Backend(name, _version(name), module.Interpreter, module.load_delegate, has_cm, builtin)


def get_backend(name: Optional[str] = None) -> Backend:
    """The first importable backend (or the named one).

    Raises:
        BackendError: none is importable (or the named one is not); says what to install.
    """
    names = [n for n, _ in BACKENDS]
    if name is not None and name not in names:
        raise InvalidArgumentError(f"backend: expected one of {names}, got {name!r}")
    candidates = [(n, m) for n, m in BACKENDS if name is None or n == name]
    reasons: List[str] = []
    for n, module_name in candidates:
        if n in _cache:
            return _cache[n]
        try:
            backend = _load(n, module_name)
        except Exception as exc:  # ImportError, or a broken native extension
            reasons.append(f"{n}: {type(exc).__name__}: {exc}")
            continue
        _cache[n] = backend
        return backend
    raise BackendError(
        "no TFLite interpreter backend is usable (" + "; ".join(reasons) + "). "
        "Install one: pip install ai-edge-litert (recommended), or tflite-runtime, or tensorflow"
    )


def default_num_threads() -> int:
    """Usable CPU cores of this process (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
