"""Hardware delegates and LiteRT accelerators: names, libraries, fallback order.

``delegate=`` takes one of

* ``"cpu"`` / ``"xnnpack"``: the interpreter's own CPU kernels (XNNPACK is on by default in
  LiteRT); always available.
* ``"gpu"``: the TFLite GPU delegate (OpenCL/OpenGL ES).
* ``"nnapi"``: Android's Neural Networks API (Android only).
* ``"neuron"``: MediaTek NeuroPilot's Neuron delegate (APU/NPU on MediaTek SoCs).
* a path to any external delegate ``.so`` exporting ``tflite_plugin_create_delegate``.
* ``"auto"`` (default): ``neuron → gpu → [nnapi on Android] → cpu``.
* an ordered list of the above: each is tried in turn; a failure is logged with its reason
  and the next one is tried.

A single named delegate that cannot load raises :class:`~mtkseg.errors.DelegateError` with
the loader's message and what to try instead.

Library names tried for each name (first found wins; ``MTKSEG_<NAME>_DELEGATE=/path/lib.so``
overrides them, e.g. ``MTKSEG_NEURON_DELEGATE``):

============  ======================================================  ======================
name          Android                                                  Linux
============  ======================================================  ======================
gpu           libtensorflowlite_gpu_delegate.so,                       libtensorflowlite_gpu_
              libtensorflowlite_gpu_jni.so                             delegate.so
nnapi         libtensorflowlite_nnapi_delegate.so,                     (not available)
              libnnapi_delegate.so
neuron        libneuron_delegate.so,                                   libneuron_delegate.so,
              libtensorflowlite_neuron_delegate.so                     libtensorflowlite_neuron
                                                                       _delegate.so
============  ======================================================  ======================

``gpu``/``nnapi`` names are those of the TFLite source tree's external-delegate build targets;
``neuron`` is the name MediaTek's NeuroPilot SDK ships for Android and Genio (Yocto) boards.
Vendors sometimes rename them: pass the path (or set the environment variable) then.

``delegate_options=`` is passed to the delegate loader as strings (booleans as
``"true"``/``"false"``), e.g. ``{"execution_preference": "sustained_speed", "allow_fp16": True,
"cache_dir": "/data/local/tmp"}`` for Neuron.  With several delegates, a dict keyed by
delegate name gives each its own options: ``{"neuron": {...}, "gpu": {...}}``.

``accelerator=`` uses LiteRT's ``CompiledModel`` API instead of the Interpreter:
``"npu"``, ``"gpu"``, ``"cpu"``, ``"auto"`` (npu → gpu → cpu) or a list, with the same
fallback rules.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import DelegateError, InvalidArgumentError, InvalidTypeError

__all__ = [
    "DelegateCandidate",
    "DELEGATE_NAMES",
    "ACCELERATOR_NAMES",
    "LIBRARIES",
    "is_android",
    "delegate_candidates",
    "accelerator_candidates",
    "options_for",
    "preflight_library",
]

log = logging.getLogger("mtkseg.runtime")

CPU_NAMES = ("cpu", "xnnpack")
DELEGATE_NAMES = ("auto", "cpu", "xnnpack", "gpu", "nnapi", "neuron")
ACCELERATOR_NAMES = ("auto", "npu", "gpu", "cpu")

LIBRARIES: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "gpu": {
        "android": ("libtensorflowlite_gpu_delegate.so", "libtensorflowlite_gpu_jni.so"),
        "linux": ("libtensorflowlite_gpu_delegate.so",),
    },
    "nnapi": {
        "android": ("libtensorflowlite_nnapi_delegate.so", "libnnapi_delegate.so"),
        "linux": (),
    },
    "neuron": {
        "android": ("libneuron_delegate.so", "libtensorflowlite_neuron_delegate.so"),
        "linux": ("libneuron_delegate.so", "libtensorflowlite_neuron_delegate.so"),
    },
}

DelegateSpec = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], None]


@dataclass(frozen=True)
class DelegateCandidate:
    """One entry of the fallback chain: a name (``cpu``/``gpu``/...) or a library path."""

    name: str
    libraries: Tuple[str, ...] = ()  # empty for cpu

    @property
    def is_cpu(self) -> bool:
        return self.name == "cpu"


def is_android() -> bool:
    """True when running on Android (Termux, embedded Python...)."""
    return (
        sys.platform == "android"
        or hasattr(sys, "getandroidapilevel")
        or "ANDROID_ROOT" in os.environ
        or "ANDROID_DATA" in os.environ
    )


def _platform() -> str:
    return "android" if is_android() else "linux"


def _libraries(name: str) -> Tuple[str, ...]:
    env = os.environ.get(f"MTKSEG_{name.upper()}_DELEGATE")
    if env:
        return (env,)
    return LIBRARIES[name][_platform()]


def _auto_chain() -> List[str]:
    chain = ["neuron", "gpu"]
    if is_android():
        chain.append("nnapi")
    chain.append("cpu")
    return chain


def _candidate(item: object) -> DelegateCandidate:
    if isinstance(item, os.PathLike):
        item = os.fspath(item)
    if not isinstance(item, str):
        raise InvalidTypeError(f"delegate: expected a name, a .so path or a list of them, got {type(item).__name__}")
    key = item.strip().lower()
    if key in CPU_NAMES:
        return DelegateCandidate("cpu")
    if key in LIBRARIES:
        return DelegateCandidate(key, _libraries(key))
    if "/" in item or item.endswith(".so") or ".so." in item or item.endswith(".dylib") or item.endswith(".dll"):
        return DelegateCandidate(item, (item,))
    raise InvalidArgumentError(
        f"delegate: unknown delegate {item!r}; expected one of {list(DELEGATE_NAMES)}, a path to a delegate .so, "
        "or a list of these"
    )


def delegate_candidates(spec: DelegateSpec) -> Tuple[List[DelegateCandidate], bool]:
    """The fallback chain for ``delegate=`` and whether a failure should raise (a single
    explicitly named delegate) rather than fall back."""
    if spec is None:
        spec = "auto"
    if isinstance(spec, (str, os.PathLike)):
        if isinstance(spec, str) and spec.strip().lower() == "auto":
            return [_candidate(n) for n in _auto_chain()], False
        return [_candidate(spec)], True
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise InvalidArgumentError("delegate: the list of delegates is empty")
        out: List[DelegateCandidate] = []
        for item in spec:
            if isinstance(item, str) and item.strip().lower() == "auto":
                out.extend(_candidate(n) for n in _auto_chain())
            else:
                out.append(_candidate(item))
        unique = list(dict.fromkeys(out))
        return unique, len(unique) == 1
    raise InvalidTypeError(f"delegate: expected a name, a .so path or a list of them, got {type(spec).__name__}")


def accelerator_candidates(spec: Union[str, Sequence[str]]) -> Tuple[List[str], bool]:
    """The fallback chain for ``accelerator=`` and whether a failure should raise."""
    items = [spec] if isinstance(spec, str) else list(spec) if isinstance(spec, (list, tuple)) else None
    if items is None:
        raise InvalidTypeError(f"accelerator: expected 'npu', 'gpu', 'cpu', 'auto' or a list, got {type(spec).__name__}")
    if not items:
        raise InvalidArgumentError("accelerator: the list of accelerators is empty")
    out: List[str] = []
    for item in items:
        if not isinstance(item, str) or item.lower() not in ACCELERATOR_NAMES:
            raise InvalidArgumentError(f"accelerator: expected one of {list(ACCELERATOR_NAMES)}, got {item!r}")
        out.extend(["npu", "gpu", "cpu"] if item.lower() == "auto" else [item.lower()])
    unique = list(dict.fromkeys(out))
    explicit = len(items) == 1 and items[0].lower() != "auto"
    return unique, explicit


def _stringify(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def options_for(candidate: DelegateCandidate, options: Optional[Mapping[str, object]]) -> Optional[Dict[str, str]]:
    """The loader options for one delegate from ``delegate_options`` (flat or keyed by name)."""
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise InvalidTypeError(f"delegate_options: expected a dict, got {type(options).__name__}")
    keyed = options and all(isinstance(v, Mapping) for v in options.values())
    if keyed:
        sub = options.get(candidate.name)
        if sub is None:
            sub = options.get(Path(candidate.name).name)
        if not isinstance(sub, Mapping) or not sub:
            return None
        return {str(k): _stringify(v) for k, v in sub.items()}
    return {str(k): _stringify(v) for k, v in options.items()}


def preflight_library(library: str) -> Optional[str]:
    """Why ``library`` cannot be a TFLite external delegate (None when it can be opened and
    exports ``tflite_plugin_create_delegate``).  Checked before the backend's loader so a
    missing library fails with a clear message instead of the loader's noisy traceback."""
    try:
        handle = ctypes.CDLL(library)
    except OSError as exc:
        return str(exc) or f"cannot open {library}"
    if not hasattr(handle, "tflite_plugin_create_delegate"):
        return f"{library} does not export tflite_plugin_create_delegate (not a TFLite external delegate)"
    return None


def raise_delegate_error(what: str, reasons: List[Tuple[str, str]], hint: str) -> None:
    """Raise a DelegateError listing every attempt and its reason."""
    detail = "; ".join(f"{name}: {reason}" for name, reason in reasons)
    raise DelegateError(f"{what} could not be used ({detail}). {hint}")
