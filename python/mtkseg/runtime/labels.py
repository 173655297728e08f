"""Class names given as ``labels=``: a list of names, or a text label map beside the model.

Label maps are the plain text files model zoos ship next to their ``.tflite`` files, one
label per line, optionally with a leading class index (Coral / TF Object Detection style)::

    background          0 background        0: background
    aeroplane           1 aeroplane         1: aeroplane
    ...                 ...                 ...

With indices, a missing index becomes ``class_<i>``.  Without them, the labels are the first
block of lines: text after a blank line is a note (Coral's PASCAL VOC file ends with one about
the 255 ignore label), skipped with a log message.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = ["LabelsArg", "read_label_map", "resolve_labels"]

LabelsArg = Union[Sequence[str], str, "os.PathLike[str]", None]

log = logging.getLogger("mtkseg.runtime")

_INDEXED = re.compile(r"^\s*(\d+)\s*[:,\t ]\s*(\S.*?)\s*$")
_MAX_INDEX = 65535


def read_label_map(path: Union[str, "os.PathLike[str]"]) -> Tuple[str, ...]:
    """Class names from a text label map (see the module doc for the formats).

    Raises:
        InvalidArgumentError: the file is missing, unreadable, empty or lists an index twice.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InvalidArgumentError(f"labels: label file not found: {p} (pass a text file, one label per line)")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeError) as exc:
        raise InvalidArgumentError(f"labels: cannot read label file {p}: {exc}") from exc
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InvalidArgumentError(f"labels: label file {p} is empty")
    matches = [_INDEXED.match(line) for line in lines]
    if not all(matches):
        block = []
        for line in text.splitlines():
            if line.strip():
                block.append(line.strip())
            elif block:
                break
        if len(block) < len(lines):
            log.info("labels: %s: %d line(s) after the first blank line are not labels; skipped", p,
                     len(lines) - len(block))
        return tuple(block)
    by_index = {}
    for m in matches:
        assert m is not None
        index = int(m.group(1))
        if index in by_index:
            raise InvalidArgumentError(f"labels: {p} lists index {index} twice; fix the label map")
        if index > _MAX_INDEX:
            raise InvalidArgumentError(f"labels: {p} lists index {index}; expected class indices below {_MAX_INDEX}")
        by_index[index] = m.group(2)
    return tuple(by_index.get(i, f"class_{i}") for i in range(max(by_index) + 1))


def _looks_like_path(value: str) -> bool:
    return os.path.exists(value) or os.sep in value or "/" in value or Path(value).suffix.lower() in (".txt", ".labels")


def resolve_labels(labels: LabelsArg) -> Optional[Tuple[str, ...]]:
    """``labels=`` as a tuple of names: a sequence of strings, or the path of a label map.

    Raises:
        InvalidTypeError: neither a sequence of strings nor a path (a bare string that names
            no file is refused rather than split into characters).
        InvalidArgumentError: the label file is missing or malformed.
    """
    if labels is None:
        return None
    if isinstance(labels, os.PathLike) or (isinstance(labels, str) and _looks_like_path(labels)):
        return read_label_map(labels)
    if isinstance(labels, str) or not all(isinstance(v, str) for v in labels):
        raise InvalidTypeError(
            "labels: expected a sequence of class-name strings or the path of a text label map "
            f"(one label per line), got {labels!r}"
        )
    return tuple(labels)
