"""Crafted model files: runtime/modelfile.py and runtime/metadata.py must refuse them with a
typed error before LiteRT (or zipfile) trusts what they declare.

* associated-file zip bombs appended to a model's metadata (bounded size and ratio, capped read);
* quantisation parameters, tensor/buffer indices and per-channel arrays that LiteRT's kernels
  trust (a bad scale aborts in QuantizeMultiplierSmallerThanOneExp, an output index of -1
  segfaults in strided_slice::Prepare).  Models are mutated through the flatbuffer object API
  (``ModelT``) and every interpreter-touching check runs in a subprocess, so a crash fails the
  test instead of killing pytest.
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest
from fixtures.reference import model_path

from mtkseg import runtime
from mtkseg.errors import InvalidModelError
from mtkseg.runtime import metadata as md

MiB = 1024 * 1024


# ----------------------------------------------------------------------------- zip bombs

def _zeros_deflate(total: int, chunk: int = MiB) -> bytes:
    """A raw deflate stream of ``total`` zero bytes, built without compressing them all: after
    a full flush the compressor's output for the same chunk repeats."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(b"\0" * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    repeat = c.compress(b"\0" * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(b"\0" * chunk) + c.flush()
    n = total // chunk
    assert n >= 3
    return first + repeat * (n - 2) + last


def _zip(name: str, payload: bytes, declared_size: int, crc: int = 0) -> bytes:
    """A one-member deflate zip whose headers declare ``declared_size`` uncompressed bytes
    (ZIP64 extra fields when it does not fit 32 bits)."""
    fname = name.encode()
    zip64 = declared_size >= 0xFFFFFFFF
    size32 = 0xFFFFFFFF if zip64 else declared_size
    csize32 = 0xFFFFFFFF if zip64 else len(payload)
    extra = struct.pack("<HHQQ", 1, 16, declared_size, len(payload)) if zip64 else b""
    version = 45 if zip64 else 20
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, version, 0, 8, 0, 0x21, crc, csize32, size32,
                        len(fname), len(extra)) + fname + extra
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, 0, 8, 0, 0x21, crc, csize32,
                          size32, len(fname), len(extra), 0, 0, 0, 0, 0) + fname + extra
    body = local + payload
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(body), 0)
    return body + central + eocd


def _bomb_model(tmp_path: Path, kind: str) -> Path:
    """tests/fixtures/models/metadata.tflite with a crafted zip appended (zipfile reads the last
    archive in the file, so its labels.txt replaces the fixture's)."""
    base = Path(model_path("metadata")).read_bytes()
    if kind == "declared_10GiB":  # headers say 10 GiB; ~1 MiB of real deflate data
        payload = _zeros_deflate(1024 * MiB)
        archive = _zip("labels.txt", payload, 10 * 1024 * MiB)
    elif kind == "ratio_1000":  # honest headers: 12 MiB (under the size cap) compressed ~1000:1
        payload = _zeros_deflate(12 * MiB)
        archive = _zip("labels.txt", payload, 12 * MiB, crc=zlib.crc32(b"\0" * 12 * MiB))
    else:  # "understated": headers claim a plausible 4 MiB, the data inflates to 1 GiB
        payload = _zeros_deflate(1024 * MiB)
        archive = _zip("labels.txt", payload, 4 * MiB)
    path = tmp_path / f"bomb_{kind}.tflite"
    path.write_bytes(base + archive)
    return path


@pytest.mark.parametrize("kind, match", [
    ("declared_10GiB", r"'labels\.txt'.*10737418240 bytes.*16777216-byte limit"),
    ("ratio_1000", r"'labels\.txt'.*compressed \d+:1.*100:1 limit"),
    ("understated", r"'labels\.txt'.*inflates past its declared 4194304 bytes"),
])
def test_metadata_zip_bomb_fails_fast_with_bounded_memory(tmp_path, kind, match):
    path = _bomb_model(tmp_path, kind)
    assert path.stat().st_size < 1.2 * MiB
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InvalidModelError, match=match):
            runtime.inspect_model(str(path))
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Measured (x86-64, 2 cores shared with a training job): 4-22 ms and 0.1-1.1 MiB traced for the
    # header checks, 14 ms and 5.8 MiB for the understated member (inflated to its declared 4 MiB).
    # Before the fix the understated and ratio cases took ~5 s each (1 GiB / 12 MiB inflated).
    assert elapsed < 0.5, f"{kind}: {elapsed:.2f} s"
    assert peak < 16 * MiB, f"{kind}: peak {peak / MiB:.1f} MiB"


def test_associated_file_limits_keep_real_label_files():
    info = runtime.inspect_model(model_path("metadata"))
    assert info.class_names == ("road", "lane marking", "vehicle", "other")
    text = "\n".join(f"class {i}" for i in range(20000)).encode()  # ~200 KB, compresses well
    archive = zlib.compress(text)
    assert len(text) / len(archive) < md.MAX_COMPRESSION_RATIO
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("labels.txt", text)
    assert md._zip_file(buf.getvalue(), "labels.txt") == text
    assert md._zip_file(buf.getvalue(), "other.txt") is None
    assert md._zip_file(b"not a zip", "labels.txt") is None
