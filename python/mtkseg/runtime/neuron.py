"""MediaTek Neuron: the stable delegate on Genio boards, its options, and delegate library kinds.

Genio IoT images (Genio 510/700/1200, Yocto or Ubuntu) install MediaTek's NPU delegate as a TFLite
*stable delegate*, ``/usr/lib/libneuron_stable_delegate.so``: it exports ``TFL_TheStableDelegate``
(a ``TfLiteStableDelegate`` whose plugin creates the delegate from a ``TFLiteSettings``
flatbuffer), not the external-delegate entry point ``tflite_plugin_create_delegate`` that
LiteRT's ``load_delegate()`` needs.  mtkseg ships a small C shim,
``libmtkseg_stable_delegate.so`` (``csrc/stable_delegate_shim.c``, installed next to ``_core``),
that *is* an external delegate: it opens the stable delegate, builds ``TFLiteSettings`` with
``mtk_neuron_settings`` and ``compilation_caching_settings`` from the options below and calls the
plugin's ``create``/``destroy``.

Options (``delegate_options=`` for ``"neuron"`` or any stable delegate; values as Python types
or strings; lists also as comma-separated strings):

==============================  ==============================================================
execution_preference            ``low_power`` | ``fast_single_answer`` | ``sustained_speed`` |
                                ``turbo_boost`` (``undefined``: the system default)
execution_priority              ``low`` | ``medium`` | ``high`` (``undefined``)
optimization_hints              list of ``low_latency``, ``deep_fusion``, ``batch_processing``
operation_check_mode            ``no_operation_check`` | ``per_node_operation_check`` |
                                ``pre_operation_check``
allow_fp16_precision_for_fp32   bool (alias ``allow_fp16``): needed for float32 models, the MDLA
                                runs int8/uint8, int16 and fp16 only
use_ahwb, use_cacheable_buffer  bool
compile_options                 list of Neuron compiler flags (e.g. ``["--opt-bw"]``) or one string
accelerator_names               list of device names (e.g. ``["mtk-mdla"]``); empty: automatic
neuron_config_path              path of a platform Neuron configuration file
inference_deadline_ms           int >= 0 (0: none)
inference_abort_time_ms         int >= 0 (0: none)
cache_dir, model_token          compilation caching (``compilation_caching_settings``)
==============================  ==============================================================

Only the options given are written: with none, the delegate gets an empty ``TFLiteSettings`` and
uses its own defaults.
"""

from __future__ import annotations

import ctypes
import os
from typing import Dict, List, Mapping, Optional, Tuple

from ..errors import DelegateError, InvalidArgumentError, InvalidTypeError

__all__ = [
    "NEURON_STABLE_DELEGATE",
    "GENIO_GPU_DELEGATE",
    "NEURON_OPTIONS",
    "library_kind",
    "shim_library",
    "stable_options",
]

#: where Genio IoT images install MediaTek's Neuron stable delegate (the bare name is looked up in
#: the system library folders, /usr/lib among them)
NEURON_STABLE_DELEGATE = "libneuron_stable_delegate.so"
#: the GPU external delegate on Genio images (/usr/lib/gpu_external_delegate.so)
GENIO_GPU_DELEGATE = "gpu_external_delegate.so"
SHIM_NAME = "libmtkseg_stable_delegate.so"

_PREFERENCES = ("undefined", "low_power", "fast_single_answer", "sustained_speed", "turbo_boost")
_PRIORITIES = ("undefined", "low", "medium", "high")
_HINTS = ("none", "low_latency", "deep_fusion", "batch_processing")
_CHECK_MODES = ("no_operation_check", "per_node_operation_check", "pre_operation_check")
_ENUMS = {"execution_preference": _PREFERENCES, "execution_priority": _PRIORITIES,
          "operation_check_mode": _CHECK_MODES}
_BOOLS = ("allow_fp16_precision_for_fp32", "use_ahwb", "use_cacheable_buffer")
_INTS = ("inference_deadline_ms", "inference_abort_time_ms")
_LISTS = ("optimization_hints", "compile_options", "accelerator_names")
_STRINGS = ("neuron_config_path", "cache_dir", "model_token")
_ALIASES = {"allow_fp16": "allow_fp16_precision_for_fp32"}

NEURON_OPTIONS: Tuple[str, ...] = tuple(_ENUMS) + _BOOLS + _INTS + _LISTS + _STRINGS


def library_kind(path: str) -> Tuple[Optional[str], str]:
    """``("external", "")``, ``("stable", "")`` or ``(None, why)`` for the library at ``path``,
    detected by its exported symbols (``tflite_plugin_create_delegate`` / ``TFL_TheStableDelegate``)."""
    try:
        handle = ctypes.CDLL(path)
    except OSError as exc:
        return None, str(exc) or f"cannot open {path}"
    if hasattr(handle, "tflite_plugin_create_delegate"):
        return "external", ""
    if hasattr(handle, "TFL_TheStableDelegate"):
        return "stable", ""
    return None, (f"{path} exports neither tflite_plugin_create_delegate (a TFLite external delegate) nor "
                  "TFL_TheStableDelegate (a TFLite stable delegate)")


def shim_library() -> str:
    """Absolute path of the stable-delegate shim built with mtkseg's native core."""
    from .. import _core  # the shim is installed next to the extension module

    path = os.path.join(os.path.dirname(os.path.abspath(_core.__file__)), SHIM_NAME)
    if not os.path.isfile(path):
        raise DelegateError(
            f"{SHIM_NAME} is missing next to {_core.__file__}: mtkseg was built without its stable-delegate shim, "
            "so stable delegates (e.g. libneuron_stable_delegate.so) cannot be loaded. Reinstall mtkseg "
            "(pip install --force-reinstall mtkseg, or rebuild from source)"
        )
    return path


def _as_list(key: str, value: object) -> List[str]:
    if isinstance(value, str):
        items = value.replace(",", " ").split() if key != "compile_options" else value.split()
    elif isinstance(value, (list, tuple)):
        items = []
        for v in value:
            if not isinstance(v, str) or not v.strip():
                raise InvalidTypeError(f"delegate_options[{key!r}]: expected a list of non-empty strings, got {value!r}")
            items.append(v.strip())
    else:
        raise InvalidTypeError(f"delegate_options[{key!r}]: expected a list of strings or one string, "
                               f"got {type(value).__name__}")
    if key != "compile_options":
        for v in items:
            if "," in v or " " in v:
                raise InvalidArgumentError(f"delegate_options[{key!r}]: {v!r} contains a separator; pass one name per item")
    return items


def stable_options(options: Optional[Mapping[str, object]], library: str) -> Dict[str, str]:
    """The shim's loader options for stable delegate ``library`` from documented Neuron options.

    Raises:
        InvalidArgumentError / InvalidTypeError: an unknown option or a bad value (the message
        lists what is accepted).
    """
    out: Dict[str, str] = {"stable_delegate_path": library}
    for raw_key, value in (options or {}).items():
        key = _ALIASES.get(str(raw_key), str(raw_key))
        where = f"delegate_options[{raw_key!r}]"
        if key in _ENUMS:
            choices = _ENUMS[key]
            text = value.strip().lower() if isinstance(value, str) else None
            if text not in choices:
                raise InvalidArgumentError(f"{where}: expected one of {list(choices)}, got {value!r}")
            out[key] = text
        elif key in _BOOLS:
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
                value = value.strip().lower() in ("true", "1")
            if not isinstance(value, bool):
                raise InvalidTypeError(f"{where}: expected True or False, got {value!r}")
            out[key] = "true" if value else "false"
        elif key in _INTS:
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
                raise InvalidArgumentError(f"{where}: expected an int >= 0 (milliseconds, 0 = none), got {value!r}")
            out[key] = str(value)
        elif key in _LISTS:
            items = _as_list(key, value)
            if key == "optimization_hints":
                bad = [h for h in items if h.lower() not in _HINTS]
                if bad:
                    raise InvalidArgumentError(f"{where}: unknown hint(s) {bad}; expected any of {list(_HINTS[1:])}")
                items = [h.lower() for h in items]
            out[key] = (" " if key == "compile_options" else ",").join(items)
        elif key in _STRINGS:
            if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
                raise InvalidTypeError(f"{where}: expected a non-empty string, got {value!r}")
            out[key] = os.fspath(value)
        elif key == "stable_delegate_path":
            raise InvalidArgumentError(f"{where}: set by mtkseg; pass the library as delegate='/path/lib.so' instead")
        else:
            raise InvalidArgumentError(
                f"{where}: unknown option for a stable delegate (Neuron); expected any of "
                f"{sorted(NEURON_OPTIONS + tuple(_ALIASES))}"
            )
    return out

