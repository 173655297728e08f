"""Ahead-of-time NPU compilation of a .tflite model (``mtkseg export ... --npu mediatek:MT6991``).

On Android the MediaTek NPU is reached through LiteRT's ``CompiledModel`` with MediaTek's dispatch
library; a model compiled ahead of time for one SoC skips the on-device compilation.
``ai_edge_litert.aot`` does the compilation with MediaTek's compiler plugin, which needs the
NeuroPilot SDK: ``pip install ai-edge-litert-sdk-mediatek`` (Linux x86-64 hosts only), whose
installation downloads MediaTek's NeuroPilot SDK libraries (several hundred MB, from MediaTek's
download server).  Without it, :func:`compile_for_npu` raises :class:`~mtkseg.errors.ExportError`
saying so, before anything is written.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Tuple, Union

from .errors import ExportError, InvalidArgumentError

__all__ = ["VENDORS", "mediatek_socs", "parse_npu_target", "check_sdk", "compile_for_npu"]

PathLike = Union[str, "os.PathLike[str]"]
VENDORS = ("mediatek",)
SDK_PACKAGE = "ai-edge-litert-sdk-mediatek"


def mediatek_socs() -> Tuple[str, ...]:
    """MediaTek SoCs ``ai_edge_litert.aot`` can compile for (e.g. ``MT6991``)."""
    try:
        from ai_edge_litert.aot.vendors.mediatek.target import SocModel  # type: ignore[import-not-found]
    except Exception as exc:  # an ai-edge-litert without the AOT module
        raise ExportError(f"this ai-edge-litert has no ahead-of-time compiler (ai_edge_litert.aot): {exc}; "
                          "pip install -U ai-edge-litert") from exc
    return tuple(m.value for m in SocModel if m.value != "ALL")


def parse_npu_target(spec: str) -> Tuple[str, str]:
    """``("mediatek", "MT6991")`` from ``"mediatek:MT6991"`` (SoC names are case-insensitive)."""
    vendor, sep, soc = str(spec).partition(":")
    vendor = vendor.strip().lower()
    if vendor not in VENDORS or not sep or not soc.strip():
        raise InvalidArgumentError(f"--npu: expected VENDOR:SOC with VENDOR in {list(VENDORS)}, e.g. mediatek:MT6991; "
                                   f"got {spec!r}")
    socs = mediatek_socs()
    soc = soc.strip().upper()
    if soc not in socs:
        raise InvalidArgumentError(f"--npu: unknown MediaTek SoC {soc!r}; ai_edge_litert.aot targets {list(socs)}")
    return vendor, soc


def check_sdk(vendor: str = "mediatek") -> None:
    """Raise :class:`ExportError` unless the vendor's compiler SDK is installed and usable here."""
    try:
        import ai_edge_litert_sdk_mediatek  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        where = "" if sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64") else (
            f" It installs on Linux x86-64 only (this is {sys.platform} {platform.machine()}).")
        raise ExportError(
            f"ahead-of-time compilation for MediaTek NPUs needs MediaTek's NeuroPilot compiler SDK, which is not "
            f"installed: pip install {SDK_PACKAGE} (installing it downloads MediaTek's NeuroPilot SDK libraries, "
            f"several hundred MB, from MediaTek's download server).{where} Without AOT, ship the plain .tflite: "
            "LiteRT's CompiledModel compiles it on the device (accelerator='npu')"
        ) from None


def compile_for_npu(model: PathLike, npu: str, output: PathLike) -> Path:
    """Compile ``model`` (.tflite) for ``npu`` (``"mediatek:MT6991"``) and write it to ``output``.

    Raises:
        InvalidArgumentError: a malformed target or an unknown SoC.
        ExportError: the SDK is missing, or the compiler failed or left part of the model uncompiled.
    """
    vendor, soc = parse_npu_target(npu)
    check_sdk(vendor)
    src = Path(model)
    if not src.is_file():
        raise ExportError(f"{src}: no such model to compile")
    from ai_edge_litert.aot import aot_compile  # type: ignore[import-not-found]
    from ai_edge_litert.aot.vendors.mediatek import target as mtk  # type: ignore[import-not-found]

    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mtkseg-aot-") as work:
        try:
            result = aot_compile.aot_compile(str(src), output_dir=work, target=mtk.Target(mtk.SocModel(soc)),
                                             keep_going=False)
        except Exception as exc:  # the vendor compiler's own errors
            raise ExportError(f"{src}: MediaTek AOT compilation for {soc} failed: {' '.join(str(exc).split())}") from exc
        models = [m for _, m in getattr(result, "models_with_backend", [])]
        if not models:
            raise ExportError(f"{src}: MediaTek AOT compilation for {soc} produced no model "
                              f"({getattr(result, 'failed_backends', '') or 'no reason given'})")
        compiled = models[0]
        data = compiled.model_bytes if getattr(compiled, "in_memory", False) else Path(compiled.path).read_bytes()
    out.write_bytes(data)
    return out
