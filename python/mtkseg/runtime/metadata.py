"""Model metadata: TFLite ``TFLITE_METADATA`` (metadata_schema.fbs) and mtkseg sidecar JSON.

TFLite metadata
    A ``ModelMetadata`` flatbuffer (file identifier ``M001``) stored in a model buffer named
    ``TFLITE_METADATA``; associated files (label lists) are packed as a zip archive appended
    to the model.  No metadata parser ships with the runtime packages, so this module reads
    the few fields mtkseg needs straight from the flatbuffer tables: the input tensor's
    ``NormalizationOptions`` (``(pixel - mean) / std``, pixel units) and colour space, and the
    output tensor's ``TENSOR_AXIS_LABELS`` / ``TENSOR_VALUE_LABELS`` file.

Sidecar JSON
    ``foo.tflite`` → ``foo.json`` written by ``mtkseg export``::

        {"format": "mtkseg-model/1", "labels": [...], "palette": [[r, g, b], ...],
         "normalization": {"mean": [m0, m1, m2], "std": [s0, s1, s2]},
         "color_order": "rgb", "ignore_index": 255, "input_size": [h, w]}

    ``mean``/``std`` are in 0..255 pixel units: ``model_input = (pixel - mean) / std``.
"""

from __future__ import annotations

import io
import json
import logging
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from flatbuffers import encode, number_types as N, table as fb_table

from ..errors import InvalidModelError

__all__ = ["TfliteMetadata", "Sidecar", "read_tflite_metadata", "read_sidecar", "sidecar_path", "SIDECAR_FORMAT"]

log = logging.getLogger("mtkseg.runtime")

SIDECAR_FORMAT = "mtkseg-model/1"
METADATA_IDENTIFIER = b"M001"
Triple = Tuple[float, float, float]

# metadata_schema.fbs enums
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions.NormalizationOptions
_IMAGE_PROPERTIES = 2  # ContentProperties.ImageProperties
_COLOR_SPACES = {1: "rgb", 2: "gray"}
_LABEL_FILE_TYPES = (2, 3)  # TENSOR_AXIS_LABELS, TENSOR_VALUE_LABELS


@dataclass(frozen=True)
class TfliteMetadata:
    """The parts of a TFLite ``ModelMetadata`` that mtkseg uses."""

    name: str = ""
    version: str = ""
    description: str = ""
    mean: Optional[Triple] = None
    std: Optional[Triple] = None
    color_space: Optional[str] = None
    label_file: Optional[str] = None
    labels: Optional[Tuple[str, ...]] = None
    default_size: Optional[Tuple[int, int]] = None  # (height, width) for resizable inputs


@dataclass(frozen=True)
class Sidecar:
    """A validated mtkseg sidecar JSON."""

    path: Path
    labels: Optional[Tuple[str, ...]] = None
    palette: Optional[Tuple[Tuple[int, int, int], ...]] = None
    mean: Optional[Triple] = None
    std: Optional[Triple] = None
    color_order: Optional[str] = None
    ignore_index: Optional[int] = None
    input_size: Optional[Tuple[int, int]] = None


# ----------------------------------------------------------------------------- flatbuffer reader

class _Table:
    """Minimal read access to a flatbuffer table by field slot (slot n = vtable offset 4 + 2n)."""

    def __init__(self, buf: bytes, pos: int):
        self._t = fb_table.Table(buf, pos)

    def _off(self, slot: int) -> int:
        return self._t.Offset(4 + 2 * slot)

    def string(self, slot: int) -> str:
        o = self._off(slot)
        return self._t.String(o + self._t.Pos).decode("utf-8", "replace") if o else ""

    def u8(self, slot: int, default: int = 0) -> int:
        o = self._off(slot)
        return int(self._t.Get(N.Uint8Flags, o + self._t.Pos)) if o else default

    def u32(self, slot: int, default: int = 0) -> int:
        o = self._off(slot)
        return int(self._t.Get(N.Uint32Flags, o + self._t.Pos)) if o else default

    def table(self, slot: int) -> Optional["_Table"]:
        o = self._off(slot)
        return _Table(self._t.Bytes, self._t.Indirect(o + self._t.Pos)) if o else None

    def tables(self, slot: int) -> List["_Table"]:
        o = self._off(slot)
        if not o:
            return []
        start, n = self._t.Vector(o), self._t.VectorLen(o)
        return [_Table(self._t.Bytes, self._t.Indirect(start + 4 * i)) for i in range(n)]

    def floats(self, slot: int) -> List[float]:
        o = self._off(slot)
        if not o:
            return []
        start, n = self._t.Vector(o), self._t.VectorLen(o)
        return [float(self._t.Get(N.Float32Flags, start + 4 * i)) for i in range(n)]


def _triple(values: List[float]) -> Optional[Triple]:
    if not values:
        return None
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        return None
    return (float(values[0]), float(values[1]), float(values[2]))


#: Associated files (label lists) larger than this are refused: a label file is kilobytes.
MAX_ASSOCIATED_FILE_BYTES = 16 * 1024 * 1024
#: Compression ratio above which an associated file is refused as a decompression bomb
#: (text label files compress about 3-10x; checked only above _RATIO_FLOOR bytes).
MAX_COMPRESSION_RATIO = 100
_RATIO_FLOOR = 64 * 1024
_READ_CHUNK = 256 * 1024


def _zip_file(model_data: bytes, name: str, label: str = "model") -> Optional[bytes]:
    """``name`` from the zip appended to the model (None when there is no zip or no such member).

    The sizes in the zip's central directory are checked before anything is decompressed, and
    the member is read with a cap, so a crafted archive (a zip bomb, or headers that understate
    the size) fails in milliseconds instead of inflating gigabytes.

    Raises:
        InvalidModelError: the member is larger than MAX_ASSOCIATED_FILE_BYTES, compressed more
            than MAX_COMPRESSION_RATIO times, or corrupt.
    """
    try:
        z = zipfile.ZipFile(io.BytesIO(model_data))
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # no (readable) archive appended: the caller warns that the file is missing
    with z:
        try:
            info = z.getinfo(name)
        except KeyError:
            return None
        limit = MAX_ASSOCIATED_FILE_BYTES
        if info.file_size > limit:
            raise InvalidModelError(
                f"{label}: associated file {name!r} in the model's metadata zip declares {info.file_size} bytes "
                f"uncompressed, more than the {limit}-byte limit for associated files (a decompression bomb?); "
                "rebuild the model's metadata with a normal label file"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR and ratio > MAX_COMPRESSION_RATIO:
            raise InvalidModelError(
                f"{label}: associated file {name!r} in the model's metadata zip is compressed {ratio:.0f}:1 "
                f"({info.compress_size} -> {info.file_size} bytes), more than the {MAX_COMPRESSION_RATIO}:1 limit "
                "(a decompression bomb?); rebuild the model's metadata with a normal label file"
            )
        try:
            chunks: List[bytes] = []
            total = 0
            with z.open(info) as member:
                # In small chunks (zipfile inflates up to the size asked for); zipfile stops at the
                # declared size and checks the CRC at the end, which catches an understated size.
                while total <= limit:
                    chunk = member.read(_READ_CHUNK)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
            data = b"".join(chunks)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise InvalidModelError(
                f"{label}: associated file {name!r} in the model's metadata zip is corrupt or inflates past its "
                f"declared {info.file_size} bytes ({exc}); rebuild the model's metadata"
            ) from exc
        if len(data) > limit:  # pragma: no cover - the declared size was checked above
            raise InvalidModelError(
                f"{label}: associated file {name!r} in the model's metadata zip exceeds the {limit}-byte limit"
            )
        return data


def _parse_labels(text: str) -> Tuple[str, ...]:
    names = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            names.append(line)
    return tuple(names)


def read_tflite_metadata(metadata: bytes, model_data: bytes, label: str = "model") -> TfliteMetadata:
    """Parse a ``TFLITE_METADATA`` buffer; label files are read from the zip in ``model_data``.

    Raises:
        InvalidModelError: the buffer is not a ``M001`` metadata flatbuffer or is corrupt.
    """
    if len(metadata) < 8 or metadata[4:8] != METADATA_IDENTIFIER:
        raise InvalidModelError(f"{label}: TFLITE_METADATA is not a metadata flatbuffer (identifier {metadata[4:8]!r})")
    try:
        root = _Table(metadata, encode.Get(N.UOffsetTFlags.packer_type, metadata, 0))
        name, description, version = root.string(0), root.string(1), root.string(2)
        mean = std = None
        color_space = label_file = None
        default_size = None
        subgraphs = root.tables(3)
        if subgraphs:
            sub = subgraphs[0]
            inputs = sub.tables(2)
            units = list(inputs[0].tables(4)) if inputs else []
            units += sub.tables(5)  # subgraph-level input process units
            for unit in units:
                if unit.u8(0) == _NORMALIZATION_OPTIONS:
                    opts = unit.table(1)
                    if opts is not None:
                        mean, std = _triple(opts.floats(0)), _triple(opts.floats(1))
                        break
            if inputs:
                content = inputs[0].table(3)
                if content is not None and content.u8(0) == _IMAGE_PROPERTIES:
                    props = content.table(1)
                    if props is not None:
                        color_space = _COLOR_SPACES.get(props.u8(0))
                        size = props.table(1)  # ImageSize { width:uint; height:uint; }
                        if size is not None and size.u32(0) > 0 and size.u32(1) > 0:
                            default_size = (size.u32(1), size.u32(0))
            outputs = sub.tables(3)
            files = (outputs[0].tables(6) if outputs else []) + sub.tables(4) + root.tables(6)
            for f in files:
                if f.u8(2) in _LABEL_FILE_TYPES and f.string(0):
                    label_file = f.string(0)
                    break
    except Exception as exc:  # flatbuffers raises struct.error/IndexError on corrupt offsets
        raise InvalidModelError(f"{label}: corrupt TFLITE_METADATA ({type(exc).__name__}: {exc})") from exc
    if std is not None and any(s == 0 for s in std):
        raise InvalidModelError(f"{label}: metadata NormalizationOptions has a zero std {std}")
    labels = None
    if label_file:
        raw = _zip_file(model_data, label_file, label)
        if raw is not None:
            labels = _parse_labels(raw.decode("utf-8", "replace"))
        else:
            log.warning("%s: metadata names the label file %r but the model carries no such file; "
                        "class names are generated (pass labels=[...] to name them)", label, label_file)
    return TfliteMetadata(name, version, description, mean, std, color_space, label_file, labels, default_size)


# ----------------------------------------------------------------------------- sidecar

def sidecar_path(model_path: Path) -> Path:
    """``foo.tflite`` → ``foo.json``."""
    return model_path.with_suffix(".json")


def _float_triple(value: object, what: str, path: Path) -> Triple:
    if isinstance(value, (int, float)):
        value = [value]
    if not isinstance(value, list) or len(value) not in (1, 3) or not all(isinstance(v, (int, float)) for v in value):
        raise InvalidModelError(f"sidecar {path}: {what} must be a number or a list of 3 numbers, got {value!r}")
    triple = _triple([float(v) for v in value])
    assert triple is not None
    if not all(math.isfinite(v) for v in triple):
        raise InvalidModelError(f"sidecar {path}: {what} must be finite, got {value!r}")
    return triple


def read_sidecar(model_path: Optional[Path]) -> Optional[Sidecar]:
    """Read and validate the sidecar JSON next to ``model_path`` (None when there is none).

    Raises:
        InvalidModelError: the sidecar exists but is not valid JSON or has invalid fields.
    """
    if model_path is None:
        return None
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidModelError(f"sidecar {path}: not valid JSON ({exc}); fix or delete it") from exc
    if not isinstance(doc, dict):
        raise InvalidModelError(f"sidecar {path}: expected a JSON object")
    fmt = doc.get("format", SIDECAR_FORMAT)
    if not isinstance(fmt, str) or not fmt.startswith("mtkseg-model/"):
        raise InvalidModelError(f"sidecar {path}: unknown format {fmt!r}, expected {SIDECAR_FORMAT!r}")
    if fmt != SIDECAR_FORMAT:
        raise InvalidModelError(f"sidecar {path}: format {fmt!r} is newer than this mtkseg ({SIDECAR_FORMAT}); upgrade mtkseg")
    labels = doc.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not labels or not all(isinstance(v, str) for v in labels):
            raise InvalidModelError(f"sidecar {path}: labels must be a non-empty list of strings")
        labels = tuple(labels)
    palette = doc.get("palette")
    if palette is not None:
        ok = isinstance(palette, list) and palette and all(
            isinstance(c, list) and len(c) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in c) for c in palette
        )
        if not ok:
            raise InvalidModelError(f"sidecar {path}: palette must be a list of [r, g, b] integers in 0..255")
        if len(palette) > 256:  # masks are uint8: colour 256 and up could never be drawn
            raise InvalidModelError(f"sidecar {path}: palette lists {len(palette)} colours; at most 256 (uint8 masks)")
        palette = tuple(tuple(c) for c in palette)
    mean = std = None
    norm = doc.get("normalization")
    if norm is not None:
        if not isinstance(norm, dict) or "mean" not in norm or "std" not in norm:
            raise InvalidModelError(f"sidecar {path}: normalization must be {{'mean': [...], 'std': [...]}}")
        mean = _float_triple(norm["mean"], "normalization.mean", path)
        std = _float_triple(norm["std"], "normalization.std", path)
        if any(s <= 0 for s in std):
            raise InvalidModelError(f"sidecar {path}: normalization.std must be positive, got {list(std)}")
    color = doc.get("color_order")
    if color is not None and color not in ("rgb", "bgr"):
        raise InvalidModelError(f"sidecar {path}: color_order must be 'rgb' or 'bgr', got {color!r}")
    ignore = doc.get("ignore_index")
    if ignore is not None and (not isinstance(ignore, int) or isinstance(ignore, bool)):
        raise InvalidModelError(f"sidecar {path}: ignore_index must be an integer, got {ignore!r}")
    size = doc.get("input_size")
    if size is not None:
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            raise InvalidModelError(f"sidecar {path}: input_size must be [height, width], got {size!r}")
        size = (int(size[0]), int(size[1]))
    if labels is not None and palette is not None and len(palette) < len(labels):
        raise InvalidModelError(f"sidecar {path}: {len(palette)} palette colours for {len(labels)} labels")
    return Sidecar(path, labels, palette, mean, std, color, ignore, size)
