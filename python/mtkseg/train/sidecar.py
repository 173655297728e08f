"""The sidecar JSON that travels next to an exported model (``foo.tflite`` -> ``foo.json``).

Format ``mtkseg-model/1``::

    {"format": "mtkseg-model/1", "labels": [...], "palette": [[r, g, b], ...],
     "normalization": {"mean": [0, 0, 0], "std": [255, 255, 255]},   # model_input = (pixel - mean) / std
     "color_order": "rgb", "ignore_index": 255, "input_size": [h, w],
     "dataset": "...", "license": "...", "metrics": {...}, ...}

mean/std are in 0..255 pixel units on RGB input; the recipe feeds [0, 1] images (mean 0, std 255).
This module needs no TensorFlow.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence, Union

from ..errors import InvalidArgumentError

__all__ = ["SIDECAR_FORMAT", "sidecar_path", "build_sidecar", "write_sidecar"]

SIDECAR_FORMAT = "mtkseg-model/1"
PathLike = Union[str, "os.PathLike[str]"]


def sidecar_path(model_path: PathLike) -> Path:
    """``foo.tflite`` -> ``foo.json``."""
    return Path(model_path).with_suffix(".json")


def build_sidecar(
    classes: dict,
    input_size: Sequence[int],
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (255.0, 255.0, 255.0),
    metrics: Optional[dict] = None,
    dataset: Optional[str] = None,
    license_text: Optional[str] = None,
    extra: Optional[dict] = None,
) -> dict:
    """The sidecar dictionary from a ``classes.json``-style dict (``{"classes": {"0": {name, color}}}``)."""
    try:
        ignore = int(classes.get("ignore_index", 255))
        ids = sorted(int(k) for k in classes["classes"] if int(k) != ignore)
        labels = [str(classes["classes"][str(i)]["name"]) for i in ids]
        palette = [[int(c) for c in classes["classes"][str(i)].get("color", (0, 0, 0))][:3] for i in ids]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidArgumentError(f"classes: expected a classes.json dictionary ({exc})") from exc
    if len(input_size) != 2 or len(mean) != 3 or len(std) != 3 or any(s == 0 for s in std):
        raise InvalidArgumentError("input_size needs (h, w); mean/std need 3 values and std must be non-zero")
    doc = {
        "format": SIDECAR_FORMAT,
        "labels": labels,
        "palette": palette,
        "normalization": {"mean": [float(v) for v in mean], "std": [float(v) for v in std]},
        "color_order": "rgb",
        "ignore_index": ignore,
        "input_size": [int(input_size[0]), int(input_size[1])],
    }
    if dataset:
        doc["dataset"] = dataset
    if license_text:
        doc["license"] = license_text
    if metrics:
        doc["metrics"] = metrics
    if extra:
        doc.update(extra)
    return doc


def write_sidecar(path: PathLike, classes: dict, input_size: Sequence[int], overwrite: bool = True, **kwargs) -> Path:
    """Write :func:`build_sidecar` output to ``path`` atomically; returns the path."""
    p = Path(path)
    from .._io import write_text

    write_text(p, json.dumps(build_sidecar(classes, input_size, **kwargs), indent=1) + "\n", overwrite=overwrite)
    return p
