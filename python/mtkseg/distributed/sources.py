"""What a distributed run reads: image files, folders, globs and video files, turned into work
rows (one per image, one per frame range of a video) with the output names of ``mtkseg run``.

No Ray here: the rows are plain dictionaries that :func:`~mtkseg.distributed._ray.dataset_from_rows`
turns into a Ray Dataset.  Paths are absolute, so workers on other nodes of a cluster read the
same files (which must lie on storage every node sees).
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import cv2

from ..errors import InvalidArgumentError, SourceError

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "WorkItem", "expand_sources", "output_names", "work_items", "frame_count",
           "work_rows"]

#: The image files a folder contributes: the same list as ``mtkseg run`` (cli/run.py).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: Files read as videos (split into frame ranges); anything else is read as an image.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class WorkItem:
    """One input file and the stem of its outputs (``<name>_mask.png``; for a video
    ``<name>_<frame:06d>_mask.png``)."""

    path: Path
    name: str
    kind: str  #: ``"image"`` or ``"video"``


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def expand_sources(sources: Union[PathLike, Sequence[PathLike]]) -> List[Path]:
    """Files in the order ``mtkseg run`` takes them: files as given, folders expanded to their
    image files (sorted), and glob patterns (``"frames/*.png"``, not an existing path)
    expanded to the matching files (sorted).  Missing files are kept: they become error rows."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    out: List[Path] = []
    for item in sources:
        if not isinstance(item, (str, os.PathLike)):
            raise InvalidArgumentError(f"sources: expected paths, folders or glob patterns, got {type(item).__name__}")
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        elif not path.exists() and _is_glob(os.fspath(item)):
            out.extend(sorted(Path(p) for p in glob.glob(os.fspath(item), recursive=True) if Path(p).is_file()))
        else:
            out.append(path)
    return out


def output_names(paths: Iterable[Path]) -> List[str]:
    """Output stems as ``mtkseg run`` names them: the file stem, then ``stem_2``, ``stem_3``...
    for later files with the same stem."""
    used: Dict[str, int] = {}
    names = []
    for path in paths:
        n = used.get(path.stem, 0)
        used[path.stem] = n + 1
        names.append(path.stem if n == 0 else f"{path.stem}_{n + 1}")
    return names


def work_items(sources: Union[PathLike, Sequence[PathLike]]) -> List[WorkItem]:
    """:func:`expand_sources` with output names and the kind of each file."""
    paths = expand_sources(sources)
    return [WorkItem(p, name, "video" if p.suffix.lower() in VIDEO_SUFFIXES else "image")
            for p, name in zip(paths, output_names(paths))]


def frame_count(path: Path) -> int:
    """Frames of a video file as its container declares them (may be a few off: the last range
    of a video is read to its end)."""
    cap = cv2.VideoCapture(os.fspath(path))
    try:
        if not cap.isOpened():
            raise SourceError(f"{path}: cannot open as a video (missing file or no OpenCV/FFmpeg codec for it)")
        return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


def work_rows(items: Sequence[WorkItem], *, frames_per_task: Optional[int] = None, workers: int = 1) -> List[dict]:
    """One row per image and one per frame range of each video: ``{"item", "path", "name",
    "kind", "start", "stop"}`` (``stop`` -1: to the end of the file; images have 0/-1).

    ``frames_per_task`` (default: enough ranges for 4 per worker, at least 8 frames each)
    sets the range length; each task decodes its own range with OpenCV.
    """
    rows: List[dict] = []
    for index, item in enumerate(items):
        base = {"item": index, "path": os.fspath(item.path.absolute()), "name": item.name, "kind": item.kind}
        if item.kind != "video":
            rows.append({**base, "start": 0, "stop": -1})
            continue
        total = frame_count(item.path)
        step = frames_per_task or max(8, math.ceil(total / max(1, 4 * workers)))
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise InvalidArgumentError(f"frames_per_task: expected a positive int, got {frames_per_task!r}")
        starts = list(range(0, max(total, 1), step))
        for k, start in enumerate(starts):
            last = k == len(starts) - 1
            rows.append({**base, "start": start, "stop": -1 if last else start + step})
    return rows
