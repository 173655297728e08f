"""Hardware delegates and LiteRT accelerators: names, libraries, fallback order.

``delegate=`` takes one of

* ``"cpu"`` / ``"xnnpack"``: the interpreter's own CPU kernels (XNNPACK is on by default in
  LiteRT); always available.
* ``"gpu"``: the TFLite GPU delegate (OpenCL/OpenGL ES).
* ``"nnapi"``: Android's Neural Networks API (Android only).
* ``"neuron"``: MediaTek NeuroPilot's Neuron delegate (APU/NPU on MediaTek SoCs).
* a path to any external delegate ``.so`` exporting ``tflite_plugin_create_delegate``, or to a
  TFLite *stable* delegate exporting ``TFL_TheStableDelegate`` (loaded through mtkseg's shim, see
  :mod:`mtkseg.runtime.neuron`); the kind is detected from the exported symbols.
* ``"auto"`` (default), per platform: x86-64 Linux: the CPU (XNNPACK) only, never Neuron or
  NNAPI (there is no MediaTek NPU there; the GPU only when asked: ``delegate="gpu"`` or
  ``accelerator="gpu"``); Arm Linux (Genio boards): ``neuron`` (the stable delegate) → ``gpu``
  (Genio's ``gpu_external_delegate.so``) → cpu; Android: LiteRT's ``CompiledModel`` on NPU|CPU →
  ``gpu`` → cpu (NNAPI, deprecated since Android 15, only when asked).  Each skip is logged with
  its reason.
* an ordered list of the above: each is tried in turn; a failure is logged with its reason
  and the next one is tried.

A single named delegate that cannot load raises :class:`~mtkseg.errors.DelegateError` with
the loader's message and what to try instead.

Library names tried for each name (first found wins; ``MTKSEG_<NAME>_DELEGATE=/path/lib.so``
overrides them, e.g. ``MTKSEG_NEURON_DELEGATE``; it must be an absolute path):

============  ======================================================  ======================
name          Android                                                  Linux
============  ======================================================  ======================
gpu           libtensorflowlite_gpu_delegate.so,                       gpu_external_delegate.so,
              libtensorflowlite_gpu_jni.so                             libtensorflowlite_gpu_
                                                                       delegate.so
nnapi         libtensorflowlite_nnapi_delegate.so,                     (not available)
              libnnapi_delegate.so
neuron        libneuron_delegate.so,                                   libneuron_stable_delegate.so
              libtensorflowlite_neuron_delegate.so                     (stable), libneuron_delegate.so,
                                                                       libtensorflowlite_neuron
                                                                       _delegate.so (Arm only)
============  ======================================================  ======================

``gpu``/``nnapi`` names are those of the TFLite source tree's external-delegate build targets;
``neuron`` on Linux is the stable delegate Genio IoT images install as
``/usr/lib/libneuron_stable_delegate.so`` (then NeuroPilot's older external-delegate names), and
``gpu_external_delegate.so`` is Genio's GPU delegate.
Vendors sometimes rename them: pass the path (or set the environment variable) then.

Where libraries are looked for: a bare name (``libneuron_delegate.so``) is resolved to an
absolute path in the system library directories only (``/etc/ld.so.conf``, the standard
``lib`` folders, ``/vendor`` and ``/system`` on Android) and in *absolute* ``LD_LIBRARY_PATH``
entries, never in the current directory (an empty or relative ``LD_LIBRARY_PATH`` entry would
let a library planted there run its constructor).  Only the resolved absolute path is opened,
and it is logged.  A path given explicitly (``delegate="./lib.so"``) is used as given.

``delegate_options=`` is passed to an external delegate's loader as strings (booleans as
``"true"``/``"false"``); for a stable delegate (Neuron on Genio) the documented options of
:mod:`mtkseg.runtime.neuron` become its ``TFLiteSettings``, e.g. ``{"execution_preference":
"sustained_speed", "allow_fp16_precision_for_fp32": True, "cache_dir": "/var/cache/mtkseg"}``.  With several delegates, a dict keyed by
delegate name gives each its own options: ``{"neuron": {...}, "gpu": {...}}``.

``accelerator=`` uses LiteRT's ``CompiledModel`` API instead of the Interpreter:
``"npu"``, ``"npu|cpu"`` (the NPU with CPU kernels for what it cannot run), ``"gpu"``, ``"cpu"``,
``"auto"`` (npu → gpu → cpu) or a list, with the same fallback rules.
"""

from __future__ import annotations

import glob
import logging
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import DelegateError, InvalidArgumentError, InvalidTypeError
from .neuron import GENIO_GPU_DELEGATE, NEURON_STABLE_DELEGATE, library_kind

__all__ = [
    "DelegateCandidate",
    "DELEGATE_NAMES",
    "ACCELERATOR_NAMES",
    "LIBRARIES",
    "is_android",
    "delegate_candidates",
    "accelerator_candidates",
    "options_for",
    "raw_options_for",
    "preflight",
    "preflight_library",
    "resolve_library",
    "library_dirs",
]

log = logging.getLogger("mtkseg.runtime")

CPU_NAMES = ("cpu", "xnnpack")
DELEGATE_NAMES = ("auto", "cpu", "xnnpack", "gpu", "nnapi", "neuron")
ACCELERATOR_NAMES = ("auto", "npu", "npu|cpu", "gpu", "cpu")

LIBRARIES: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "gpu": {
        "android": ("libtensorflowlite_gpu_delegate.so", "libtensorflowlite_gpu_jni.so"),
        "linux": (GENIO_GPU_DELEGATE, "libtensorflowlite_gpu_delegate.so"),
    },
    "nnapi": {
        "android": ("libtensorflowlite_nnapi_delegate.so", "libnnapi_delegate.so"),
        "linux": (),
    },
    "neuron": {
        "android": ("libneuron_delegate.so", "libtensorflowlite_neuron_delegate.so"),
        "linux": (NEURON_STABLE_DELEGATE, "libneuron_delegate.so", "libtensorflowlite_neuron_delegate.so"),
    },
}

DelegateSpec = Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]], None]


@dataclass(frozen=True)
class DelegateCandidate:
    """One entry of the fallback chain: a name (``cpu``/``gpu``/...) or a library path."""

    name: str
    libraries: Tuple[str, ...] = ()  # empty for cpu
    #: why no library is tried on this machine (when ``libraries`` is empty and not cpu)
    unavailable: str = ""

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


_ARM_MACHINES = frozenset({"aarch64", "arm64", "armv8l", "armv8b", "armv7l", "armv7", "arm"})


def _unavailable(name: str) -> str:
    """Why delegate ``name`` cannot exist on this machine ("" when it can)."""
    if name == "nnapi" and not is_android():
        return "no delegate library for this platform (NNAPI exists only on Android)"
    machine = platform.machine().lower()
    if name == "neuron" and not is_android() and machine not in _ARM_MACHINES:
        return (f"there is no MediaTek NPU on this platform ({machine or 'unknown machine'} Linux): MediaTek's "
                f"Neuron delegate exists only on MediaTek Arm SoCs (Genio boards: /usr/lib/{NEURON_STABLE_DELEGATE}; "
                "Android: accelerator='npu'); use delegate='auto' or 'cpu' here, or set "
                "MTKSEG_NEURON_DELEGATE=/absolute/path.so to force a library")
    return ""


def _is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _env_library(name: str) -> Optional[str]:
    var = f"MTKSEG_{name.upper()}_DELEGATE"
    env = os.environ.get(var)
    if not env:
        return None
    if not os.path.isabs(env):
        raise DelegateError(
            f"{var}={env!r} is not an absolute path; a bare name or relative path would be looked up in the "
            f"current directory or the loader's search path. Set it to the library's absolute path, e.g. "
            f"{var}=/opt/lib/{(LIBRARIES[name]['android'] + ('lib.so',))[0]}"
        )
    return env


def _candidate_for(name: str) -> DelegateCandidate:
    env = _env_library(name)
    if env is not None:
        return DelegateCandidate(name, (env,))
    why = _unavailable(name)
    if why:
        return DelegateCandidate(name, (), why)
    return DelegateCandidate(name, LIBRARIES[name][_platform()])


def _auto_chain() -> List[str]:
    """Interpreter delegates ``"auto"`` probes here, in order (the CompiledModel NPU step on
    Android is tried before these by :func:`mtkseg.runtime.session.open_session`):

    * Android: gpu → cpu (NNAPI only when asked: deprecated since Android 15);
    * x86-64 Linux: cpu (XNNPACK) only: no MediaTek NPU, NNAPI or GPU delegate probing;
    * other Linux (Arm: Genio boards): neuron → gpu → cpu.

    A delegate whose ``MTKSEG_<NAME>_DELEGATE`` is set is probed everywhere (an explicit choice)."""
    forced = [n for n in ("neuron", "gpu") if os.environ.get(f"MTKSEG_{n.upper()}_DELEGATE")]
    if is_android():
        chain = ["gpu"]
    elif _is_x86():
        chain = []
    else:
        chain = ["neuron", "gpu"]
    chain = [n for n in ("neuron", "gpu") if n in chain or n in forced]
    chain.append("cpu")
    return chain


def _ld_so_conf(path: str, depth: int = 0) -> List[str]:
    """Directories listed in an ld.so.conf file (following ``include`` globs)."""
    dirs: List[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return dirs
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include") and depth < 4:
            pattern = line[len("include"):].strip()
            if not os.path.isabs(pattern):
                pattern = os.path.join(os.path.dirname(path), pattern)
            for conf in sorted(glob.glob(pattern)):
                dirs.extend(_ld_so_conf(conf, depth + 1))
        elif os.path.isabs(line):
            dirs.append(line)
    return dirs


def library_dirs() -> List[str]:
    """Where bare delegate library names are looked for, in order: absolute ``LD_LIBRARY_PATH``
    entries, the Android vendor/system folders, ``/etc/ld.so.conf`` and the standard folders.
    Never the current directory: empty and relative entries are left out."""
    dirs = [e for e in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if e and os.path.isabs(e)]
    if is_android():
        bits = "64" if sys.maxsize > 2**32 else ""
        dirs += [f"/vendor/lib{bits}", f"/system/lib{bits}", f"/odm/lib{bits}", f"/system_ext/lib{bits}"]
    dirs += _ld_so_conf("/etc/ld.so.conf")
    multiarch = f"{platform.machine()}-linux-gnu"
    dirs += [f"/lib/{multiarch}", f"/usr/lib/{multiarch}", "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"]
    return [d for d in dict.fromkeys(os.path.normpath(d) for d in dirs) if os.path.isdir(d)]


def resolve_library(library: str) -> Tuple[Optional[str], str]:
    """(absolute path, "") of a delegate library, or (None, why not).

    A path (absolute, or relative with a ``/``, given explicitly) is made absolute; a bare
    name is looked up in :func:`library_dirs` only, never in the current directory."""
    if os.sep in library or (os.altsep and os.altsep in library):
        path = os.path.abspath(library)
        if not os.path.isfile(path):
            return None, f"{path}: No such file"
        return path, ""
    dirs = library_dirs()
    for d in dirs:
        path = os.path.join(d, library)
        if os.path.isfile(path):
            return path, ""
    shown = ", ".join(dirs[:8]) + (", ..." if len(dirs) > 8 else "")
    return None, (f"{library} not found in the system library directories ({shown}); the current directory is "
                  "never searched: pass the library's absolute path")


def _candidate(item: object) -> DelegateCandidate:
    if isinstance(item, os.PathLike):
        item = os.fspath(item)
    if not isinstance(item, str):
        raise InvalidTypeError(f"delegate: expected a name, a .so path or a list of them, got {type(item).__name__}")
    key = item.strip().lower()
    if key in CPU_NAMES:
        return DelegateCandidate("cpu")
    if key in LIBRARIES:
        return _candidate_for(key)
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


def raw_options_for(candidate: DelegateCandidate,
                    options: Optional[Mapping[str, object]]) -> Optional[Mapping[str, object]]:
    """The options for one delegate from ``delegate_options`` (flat or keyed by name), as given."""
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
        return sub
    return options


def options_for(candidate: DelegateCandidate, options: Optional[Mapping[str, object]]) -> Optional[Dict[str, str]]:
    """The external-delegate loader options (strings) for one delegate from ``delegate_options``."""
    sub = raw_options_for(candidate, options)
    return None if sub is None else {str(k): _stringify(v) for k, v in sub.items()}


def preflight(library: str) -> Tuple[Optional[str], str]:
    """``(kind, "")`` for a loadable delegate library (an absolute path from :func:`resolve_library`):
    ``"external"`` (exports ``tflite_plugin_create_delegate``) or ``"stable"`` (exports
    ``TFL_TheStableDelegate``); ``(None, why)`` otherwise.  Checked before the backend's loader so
    a bad library fails with a clear message instead of the loader's noisy traceback."""
    if not os.path.isabs(library):
        raise InvalidArgumentError(f"preflight_library: expected an absolute path, got {library!r} (use resolve_library)")
    log.info("loading delegate library %s", library)
    return library_kind(library)


def preflight_library(library: str) -> Optional[str]:
    """Why ``library`` cannot be loaded as a TFLite external or stable delegate (None when it can)."""
    kind, why = preflight(library)
    return None if kind else why


def raise_delegate_error(what: str, reasons: List[Tuple[str, str]], hint: str) -> None:
    """Raise a DelegateError listing every attempt and its reason."""
    detail = "; ".join(f"{name}: {reason}" for name, reason in reasons)
    raise DelegateError(f"{what} could not be used ({detail}). {hint}")
